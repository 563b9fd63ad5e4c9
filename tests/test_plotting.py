"""Figures are written at the expected size, are not blank, and are robust to empty input."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import trimesh

from toposdf.plotting import decimate, diagram_overview, mesh_contact_sheet, plot_diagrams, render_mesh

EMPTY_MESH = (np.zeros((0, 3)), np.zeros((0, 3), int))


def _not_blank(path, min_std=0.02):
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > min_std
    return image


def _legend_labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _axes_3d():
    fig = plt.figure(figsize=(3, 3))
    return fig, fig.add_subplot(projection="3d")


def test_contact_sheet_size_labels_and_empty_mesh(tmp_path):
    torus = trimesh.creation.torus(0.5, 0.2)
    box = trimesh.creation.box([1, 2, 0.5])
    items = [(torus.vertices, torus.faces, "torus\nβ = (1, 1, 0)"), (box.vertices, box.faces, "box"),
             (*EMPTY_MESH, "empty mesh")]
    path = tmp_path / "nested" / "dir" / "sheet.png"  # parent folders are created
    mesh_contact_sheet(path, items, ncols=2, title="test", panel_size=2.0, dpi=100)
    image = _not_blank(path)
    assert image.shape[1] == 400  # 2 columns of 2 inches at 100 dpi, no trimming
    assert 2 * 200 < image.shape[0] < 2 * 200 + 150  # 2 rows of panels + labels + title
    mesh_contact_sheet(tmp_path / "none.png", [])
    assert mpimg.imread(tmp_path / "none.png").size > 0


def test_contact_sheet_of_24_meshes(tmp_path):
    """A full default-sized sheet (its speed is a benchmark matter, not asserted here)."""
    torus = trimesh.creation.torus(0.6, 0.2, major_sections=40, minor_sections=25)  # 2,000 faces
    assert len(torus.faces) == 2000
    mesh_contact_sheet(tmp_path / "24.png", [(torus.vertices, torus.faces, f"shape {i}") for i in range(24)])
    image = _not_blank(tmp_path / "24.png")
    assert image.shape[0] > 3 * image.shape[1] / 6  # four rows of six panels


def test_render_mesh_shades_per_face_and_maps_y_up():
    cone = trimesh.creation.cone(0.5, 1.5)  # apex at +z: rotate it so the apex points to +y
    cone.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    assert cone.vertices[:, 1].max() == pytest.approx(1.5)
    fig, ax = _axes_3d()
    render_mesh(ax, cone.vertices, cone.faces)
    (collection,) = ax.collections
    colours = collection.get_facecolor()
    assert len(colours) == len(cone.faces)
    assert np.ptp(colours[:, :3], axis=0).max() > 0.1  # shaded, not one flat colour
    plt.close(fig)
    # Mesh y is the plot's vertical (z) axis: a mesh centred at (1, 5, -2) is centred at z = 5 in the plot.
    fig, ax = _axes_3d()
    box = trimesh.creation.box([0.2, 0.4, 0.3])
    render_mesh(ax, box.vertices + [1.0, 5.0, -2.0], box.faces)
    assert np.mean(ax.get_zlim()) == pytest.approx(5.0)
    assert np.mean(ax.get_xlim()) == pytest.approx(1.0) and np.mean(ax.get_ylim()) == pytest.approx(2.0)
    assert not ax.axison
    plt.close(fig)


def test_render_mesh_empty_draws_text():
    fig, ax = _axes_3d()
    render_mesh(ax, *EMPTY_MESH)
    assert not ax.collections and [t.get_text() for t in ax.texts] == ["empty"]
    fig.canvas.draw()
    plt.close(fig)


def test_large_meshes_are_decimated_for_display():
    sphere = trimesh.creation.icosphere(subdivisions=6)  # 81,920 faces
    fig, ax = _axes_3d()
    render_mesh(ax, sphere.vertices, sphere.faces, max_faces=5000)
    (collection,) = ax.collections
    assert 2500 < len(collection.get_facecolor()) <= 5000  # one shaded colour per drawn face
    fig.canvas.draw()
    plt.close(fig)
    for max_faces in (20000, 2000, 7):
        v, f = decimate(sphere.vertices, sphere.faces, max_faces)
        assert 0.5 * max_faces < len(f) <= max_faces
        assert f.min() >= 0 and f.max() < len(v)
    v, f = decimate(sphere.vertices, sphere.faces, 2000)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=0.1)  # still a unit sphere, within a grid cell
    small = trimesh.creation.box()
    v, f = decimate(small.vertices, small.faces, 100)
    assert np.array_equal(f, small.faces)  # small meshes untouched


def test_plot_diagrams_legend_counts():
    rng = np.random.default_rng(0)
    diagrams = [np.array([[-0.1, 0.1], [-0.05, -0.01]]), rng.uniform(-0.1, 0, (5, 2)) + [0, 0.05], np.zeros((0, 2))]
    fig, ax = plt.subplots()
    plot_diagrams(ax, diagrams, tau=0.1, title="shape")
    assert _legend_labels(ax) == ["H0 (2)", "H1 (5)", "H2 (0)", "death = τ"]
    assert ax.get_xlabel() == "birth" and ax.get_ylabel() == "death" and ax.get_title() == "shape"
    lo, hi = ax.get_xlim()
    assert lo < -0.1 and hi > 0.1  # the frame is [-tau, tau] with a margin
    plt.close(fig)


def test_plot_diagrams_edge_cases():
    fig, axes = plt.subplots(1, 4)
    plot_diagrams(axes[0], [np.zeros((0, 2))] * 3, tau=0.1)  # empty diagrams
    assert _legend_labels(axes[0]) == ["H0 (0)", "H1 (0)", "H2 (0)"]  # no essential entry without such points
    plot_diagrams(axes[1], [[], [], []])  # empty lists, no tau
    # float32 data clamped at tau: the essential class is still recognised.
    pd0 = np.array([[-0.1, 0.1], [-0.05, 0.0]], np.float32)
    plot_diagrams(axes[2], [pd0, np.zeros((0, 2), np.float32)], tau=0.1)
    assert _legend_labels(axes[2])[-1] == "death = τ"
    # Infinite death without tau: drawn above the finite points, and its birth is inside the frame.
    plot_diagrams(axes[3], [np.array([[-0.3, np.inf], [-0.05, -0.01]]), np.array([[-0.03, 0.02]])])
    assert _legend_labels(axes[3]) == ["H0 (2)", "H1 (1)", "death = ∞"]
    assert axes[3].get_xlim()[0] < -0.3 and axes[3].get_ylim()[1] > 0.02
    fig.canvas.draw()
    plt.close(fig)


def test_diagram_overview(tmp_path):
    rng = np.random.default_rng(0)
    diagrams = [np.array([[-0.1, 0.1], [-0.05, -0.01]]), rng.uniform(-0.1, 0, (5, 2)) + [0, 0.05], np.zeros((0, 2))]
    shapes = [[d + rng.normal(0, 0.005, d.shape) for d in diagrams] for _ in range(5)]
    diagram_overview(tmp_path / "a" / "overview.png", shapes, tau=0.1, betti=[(1, 2, 0)] * 5, title="five shapes")
    image = _not_blank(tmp_path / "a" / "overview.png")
    assert image.shape[1] > 2.5 * image.shape[0]  # four panels side by side
    diagram_overview(tmp_path / "no_betti.png", shapes, tau=0.1)
    _not_blank(tmp_path / "no_betti.png")
    diagram_overview(tmp_path / "empty.png", [], tau=0.1, betti=[])
    _not_blank(tmp_path / "empty.png", min_std=0.0)


def test_a_narrow_contact_sheet_is_widened_to_its_title(tmp_path):
    """One shape under a long title (an external row's folder in it): the sheet widens so the title is not cut."""
    import matplotlib.image as mpimg
    import trimesh

    from toposdf.plotting.meshes import mesh_contact_sheet

    box = trimesh.creation.box()
    title = "chair, copy (/tmp/extmeshes/g2/chair/): shapes drawn from z ~ N(0, I) (first draw), Betti numbers"
    mesh_contact_sheet(tmp_path / "one.png", [(box.vertices, box.faces, "#0")], ncols=8, title=title,
                       panel_size=1.8, dpi=50)
    mesh_contact_sheet(tmp_path / "short.png", [(box.vertices, box.faces, "#0")], ncols=8, title="t",
                       panel_size=1.8, dpi=50)
    assert mpimg.imread(tmp_path / "short.png").shape[1] == 90  # one panel: 1.8 in at 50 dpi
    assert mpimg.imread(tmp_path / "one.png").shape[1] >= 0.08 * len(title) * 50
