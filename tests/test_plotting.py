"""Figures are written, not blank, and robust to empty input."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import trimesh

from toposdf.plotting import decimate, diagram_overview, mesh_contact_sheet, plot_diagrams, render_mesh


def _not_blank(path, min_std=0.02):
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > min_std
    return image


def test_contact_sheet(tmp_path):
    torus = trimesh.creation.torus(0.5, 0.2)
    box = trimesh.creation.box([1, 2, 0.5])
    items = [(torus.vertices, torus.faces, "torus\nβ = (1, 1, 0)"), (box.vertices, box.faces, "box"),
             (np.zeros((0, 3)), np.zeros((0, 3), int), "empty mesh")]
    mesh_contact_sheet(tmp_path / "sheet.png", items, ncols=2, title="test")
    image = _not_blank(tmp_path / "sheet.png")
    assert image.shape[0] > image.shape[1] * 0.9  # two rows of two columns
    mesh_contact_sheet(tmp_path / "none.png", [])
    assert mpimg.imread(tmp_path / "none.png").size > 0


def test_large_meshes_are_decimated_for_display():
    sphere = trimesh.creation.icosphere(subdivisions=6)  # 81,920 faces
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    render_mesh(ax, sphere.vertices, sphere.faces, max_faces=5000)
    (collection,) = ax.collections
    assert 1000 < len(collection.get_facecolor()) <= 5000  # one shaded colour per drawn face
    plt.close(fig)
    v, f = decimate(sphere.vertices, sphere.faces, 2000)
    assert len(f) <= 2000 and np.allclose(np.linalg.norm(v, axis=1), 1, atol=0.1)


def test_diagram_plots_count_points(tmp_path):
    rng = np.random.default_rng(0)
    diagrams = [np.array([[-0.1, 0.1], [-0.05, -0.01]]), rng.uniform(-0.1, 0, (5, 2)) + [0, 0.05], np.zeros((0, 2))]
    fig, ax = plt.subplots()
    plot_diagrams(ax, diagrams, tau=0.1)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["H0 (2)", "H1 (5)", "H2 (0)", "death = τ"]
    plt.close(fig)
    shapes = [[d + rng.normal(0, 0.005, d.shape) for d in diagrams] for _ in range(5)]
    diagram_overview(tmp_path / "overview.png", shapes, tau=0.1, betti=[(1, 2, 0)] * 5, title="five shapes")
    _not_blank(tmp_path / "overview.png")
    diagram_overview(tmp_path / "empty.png", [], tau=0.1, betti=[])
    _not_blank(tmp_path / "empty.png", min_std=0.0)
