"""Headless figures of meshes and persistence diagrams (matplotlib with the Agg backend, CPU only).

Conventions
-----------
* A mesh is ``(V, F)``: ``V`` an ``(nv, 3)`` float array, ``F`` an ``(nf, 3)`` int array of vertex indices.
  y is up (ShapeNet's convention); coordinates are normalised to the unit sphere, but nothing here relies on it.
* A persistence diagram is an ``(n, 2)`` float array of (birth, death) with birth <= death. A shape's diagrams
  are ``[PD0, PD1, PD2]`` (components, loops/tunnels, voids). Values are signed distances clamped to
  ``[-tau, tau]``; the one essential H0 class dies at ``tau``.

Every function that creates a figure closes it; functions that take an ``ax`` draw on it and leave the figure
to the caller.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

__all__ = [
    "DIM_STYLE",
    "decimate",
    "save_figure",
    "render_mesh",
    "plot_diagrams",
    "mesh_contact_sheet",
    "diagram_overview",
]

#: (label, colour, marker) for H0, H1, H2.
DIM_STYLE: list[tuple[str, str, str]] = [
    ("H0", "#1f77b4", "o"),
    ("H1", "#d62728", "^"),
    ("H2", "#2ca02c", "s"),
]

# Mesh (x, y, z) with y up -> plot (x, -z, y), the plot's z being matplotlib's vertical axis. A rotation
# (det = +1), not a mirror, so shapes are not flipped left to right.
_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Face colour = base colour * (_AMBIENT + _DIFFUSE * |n . l|): faces lit edge-on at 0.42, facing the light at
# 1.12 (slightly lighter than the base colour, clipped to white).
_AMBIENT, _DIFFUSE = 0.42, 0.70


# --------------------------------------------------------------------------------------------------- meshes


def decimate(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a mesh for display by vertex clustering.

    Vertices are snapped to a regular grid over the bounding box and each occupied cell is replaced by the
    mean of its vertices; faces that collapse (two corners in one cell) and duplicates are dropped. The grid
    is coarsened until at most ``max_faces`` faces remain, so the result is within one cell of the input
    surface (thin parts may close or vanish at coarse grids). This is display-only, with no guarantee on
    topology. As a last resort (a grid of 2 cells per side still too fine) faces are subsampled evenly.

    Args:
        vertices: ``(nv, 3)`` float.
        faces: ``(nf, 3)`` int.
        max_faces: the most faces to keep, >= 1.

    Returns:
        ``(vertices', faces')``: ``(nv', 3)`` float and ``(nf', 3)`` int64 with ``nf' <= max_faces``. Returned
        unchanged (as arrays) when ``nf <= max_faces``.
    """
    vertices = np.asarray(vertices, float).reshape(-1, 3)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    max_faces = max(int(max_faces), 1)
    if len(faces) <= max_faces:
        return vertices, faces
    lo = vertices.min(axis=0)
    extent = float(np.ptp(vertices, axis=0).max()) or 1.0
    unit = (vertices - lo) / extent  # in [0, 1]

    def cluster(cells: int) -> tuple[np.ndarray, np.ndarray]:
        k = np.minimum((unit * cells).astype(np.int64), cells - 1)
        key = (k[:, 0] * cells + k[:, 1]) * cells + k[:, 2]
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        centres = np.zeros((len(counts), 3))
        np.add.at(centres, inverse, vertices)
        centres /= counts[:, None]
        f = inverse[faces]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
        # Drop duplicates (either orientation) while keeping each survivor's orientation.
        _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
        return centres, f[np.sort(first)]

    # Surface meshes keep about c * cells**2 faces: aim the grid from the previous count, a bit below target.
    cells = 512
    while True:
        centres, f = cluster(cells)
        if len(f) <= max_faces:
            return centres, f
        if cells <= 2:
            keep = np.linspace(0, len(f) - 1, max_faces).round().astype(np.int64)
            return centres, f[np.unique(keep)]
        cells = max(2, min(cells - 1, int(cells * math.sqrt(max_faces / len(f)) * 0.97)))


def _camera_frame(elev: float, azim: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (towards the viewer, screen right, screen up) in plot coordinates for a matplotlib view."""
    e, a = np.radians(elev), np.radians(azim)
    eye = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    right = np.cross([0.0, 0.0, 1.0], eye)
    right = right / (np.linalg.norm(right) or 1.0)
    up = np.cross(eye, right)
    return eye, right, up


def render_mesh(
    ax: Axes,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    color: str = "#8fa8c8",
    elev: float = 20.0,
    azim: float = -50.0,
    max_faces: int = 20000,
) -> None:
    """Draw a mesh on a 3D Axes with flat Lambertian shading, y up, equal aspect and no axes.

    Each face gets its own colour ``color * (0.42 + 0.70 |n . l|)`` (two-sided, so meshes of either
    orientation look the same) for a directional light ``l`` fixed relative to the camera: above, to the
    left of and slightly behind the viewer, so tops are brightest and the two visible sides of a box differ.
    Mesh y is mapped to the plot's vertical axis. The view is fitted to the mesh's bounding sphere, so any
    ``azim`` keeps the whole shape in frame. Faces are depth-sorted by matplotlib (painter's algorithm per
    face), which is right for the compact, closed shapes of this project.

    Meshes with more than ``max_faces`` faces are reduced for display by vertex clustering
    (:func:`decimate`). An empty mesh (0 faces) draws a centred "empty" instead.

    Args:
        ax: a 3D Axes (``fig.add_subplot(projection="3d")``).
        vertices: ``(nv, 3)`` float, y up.
        faces: ``(nf, 3)`` int.
        color: base colour of the surface (any matplotlib colour).
        elev, azim: matplotlib view angles in degrees (of the plot frame, whose vertical axis is mesh y).
        max_faces: the most faces drawn.
    """
    ax.set_axis_off()
    ax.view_init(elev=elev, azim=azim)
    ax.set_box_aspect((1, 1, 1), zoom=1.45)
    vertices = np.asarray(vertices, float).reshape(-1, 3)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if len(faces) == 0 or len(vertices) == 0:
        ax.text2D(0.5, 0.5, "empty", transform=ax.transAxes, ha="center", va="center", color="0.55",
                  fontsize=10, style="italic")
        return
    vertices, faces = decimate(vertices, faces, max_faces)
    v = vertices @ _Y_UP.T
    tri = v[faces]  # (nf, 3 corners, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    eye, right, up = _camera_frame(elev, azim)
    light = 0.55 * eye - 0.35 * right + 0.75 * up
    light /= np.linalg.norm(light)
    shade = _AMBIENT + _DIFFUSE * np.abs(normals @ light)
    rgb = np.asarray(matplotlib.colors.to_rgb(color))
    colours = np.clip(rgb[None] * shade[:, None], 0.0, 1.0)
    # Edges in the face colour hide the hairline seams that antialiasing leaves between adjacent triangles.
    collection = Poly3DCollection(tri, facecolors=colours, edgecolors=colours, linewidths=0.25)
    ax.add_collection3d(collection)
    centre = 0.5 * (v.min(axis=0) + v.max(axis=0))
    radius = float(np.linalg.norm(v - centre, axis=1).max()) or 1.0
    # Limits from the bounding sphere: its projection is the same disc from every direction. matplotlib
    # fits the projected limit cube (wider than the sphere) into the Axes; zoom=1.45 above undoes most of that
    # margin: the sphere then fills about 88% of the Axes from any view (measured), leaving a thin border.
    ax.set_xlim(centre[0] - radius, centre[0] + radius)
    ax.set_ylim(centre[1] - radius, centre[1] + radius)
    ax.set_zlim(centre[2] - radius, centre[2] + radius)


# ------------------------------------------------------------------------------------------------ diagrams


def _as_diagram(d: np.ndarray | Sequence) -> np.ndarray:
    """Any (n, 2)-shaped input (including empty lists) as an ``(n, 2)`` float array."""
    return np.asarray(d, float).reshape(-1, 2)


def plot_diagrams(
    ax: Axes,
    diagrams: Sequence[np.ndarray],
    *,
    tau: float | None = None,
    title: str | None = None,
    alpha: float = 0.8,
    dims: Sequence[int] | None = None,
    legend: bool = True,
) -> None:
    """Scatter persistence diagrams PD0, PD1, PD2 on one 2D Axes.

    Each dimension k has its own colour and marker (:data:`DIM_STYLE`); the legend reads ``Hk (count)``
    with the count of all of that dimension's points. The diagonal is drawn in grey. Points dying at ``tau``
    (the essential H0 class, and anything that outlived the clamp) and points with infinite death are drawn
    as large outlined stars on a dashed line: ``death = tau`` (infinite deaths are placed there too), or
    without ``tau`` a line just above all finite values (``death = ∞``); the legend gains an entry for it
    when there are any such points.

    The frame is ``[-tau, tau]`` on both axes when ``tau`` is given (values are clamped to it, so panels and
    shapes share one frame), widened if points lie outside; without ``tau`` it fits the points and 0.

    Args:
        ax: a 2D Axes.
        diagrams: ``[PD0, PD1, PD2]`` (or fewer), each ``(n_k, 2)`` (birth, death).
        tau: the clamp value of the signed distances, or None.
        title: Axes title.
        alpha: opacity of the points (legend markers are opaque).
        dims: draw (and list in the legend) only these dimensions; default all.
        legend: whether to draw the legend.
    """
    points = [_as_diagram(d) for d in diagrams]
    shown = [k for k in range(len(points)) if dims is None or k in dims]
    # Every finite coordinate (births of points with infinite death included) sets the frame.
    coords = np.concatenate([points[k][np.isfinite(points[k])] for k in shown] + [np.zeros(0)])
    has_inf = any((~np.isfinite(points[k][:, 1])).any() for k in shown)
    if tau is not None:
        lo, hi = -float(tau), float(tau)
        if len(coords):
            lo, hi = min(lo, float(coords.min())), max(hi, float(coords.max()))
        top = float(tau)  # where infinite deaths are drawn
    else:
        lo, hi = (min(float(coords.min()), 0.0), max(float(coords.max()), 0.0)) if len(coords) else (-1.0, 1.0)
        top = hi + 0.1 * ((hi - lo) or 1.0) if has_inf else hi
        hi = top
    pad = 0.05 * ((hi - lo) or 1.0)
    lo, hi = lo - pad, hi + pad

    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1.0, zorder=0)
    any_essential = False
    for k in shown:
        label, colour, marker = DIM_STYLE[k % len(DIM_STYLE)]
        d = points[k].copy()
        essential = ~np.isfinite(d[:, 1])
        if tau is not None:
            # Tolerance covers float32 data clamped at tau (float32(0.1) - 0.1 ~ 1.5e-9).
            essential |= np.isclose(d[:, 1], tau, rtol=0.0, atol=1e-6 * max(abs(tau), 1.0))
        d[~np.isfinite(d[:, 1]), 1] = top
        ax.scatter(d[~essential, 0], d[~essential, 1], s=22, color=colour, marker=marker, alpha=alpha,
                   edgecolors="none", zorder=2)
        if essential.any():
            any_essential = True
            ax.scatter(d[essential, 0], d[essential, 1], s=110, color=colour, marker="*", edgecolors="k",
                       linewidths=0.6, zorder=3, alpha=max(alpha, 0.6))
        # Legend proxy: opaque, whatever alpha the points have.
        ax.scatter([], [], s=28, color=colour, marker=marker, label=f"{label} ({len(d)})")
    if any_essential:
        ax.axhline(top, color="0.75", lw=0.8, ls="--", zorder=0)
        ax.scatter([], [], s=110, color="white", marker="*", edgecolors="k", linewidths=0.6,
                   label="death = τ" if tau is not None else "death = ∞")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    ax.tick_params(labelsize=8)
    ax.set_xlabel("birth", fontsize=9)
    ax.set_ylabel("death", fontsize=9)
    if legend:
        # Below the diagonal is always empty (birth <= death): the lower-right corner is free.
        ax.legend(loc="lower right", fontsize=8, frameon=False, handletextpad=0.3, borderaxespad=0.3)
    if title:
        ax.set_title(title, fontsize=10)


# ------------------------------------------------------------------------------------------------- figures


def save_figure(fig: Figure, path: str | Path, dpi: int, *, tight: bool = True) -> None:
    """Write ``fig`` as a PNG at ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white", **({"bbox_inches": "tight", "pad_inches": 0.08} if tight else {}))


def mesh_contact_sheet(
    path: str | Path,
    items: Sequence[tuple[np.ndarray, np.ndarray, str]],
    *,
    ncols: int = 6,
    title: str | None = None,
    panel_size: float = 2.2,
    dpi: int = 110,
    color: str = "#8fa8c8",
    max_faces: int = 20000,
) -> None:
    """A grid of rendered meshes, each with its label underneath, saved as a PNG.

    Args:
        path: output PNG; parent folders are created.
        items: ``(vertices (nv, 3), faces (nf, 3), label)`` per shape, in reading order. Labels may span
            several lines (``"syn_chair_00003\\nβ = (1, 4, 0)"``); every row reserves room for the longest.
        ncols: columns (fewer if there are fewer items).
        title: figure title.
        panel_size: side of one rendered panel in inches.
        dpi: resolution.
        color, max_faces: passed to :func:`render_mesh`.
    """
    n = len(items)
    ncols = max(1, min(ncols, max(n, 1)))
    nrows = max(1, math.ceil(n / ncols))
    fontsize = 8.0
    lines = max([str(label).count("\n") + 1 for *_, label in items] + [1])
    label_h = (lines * 1.25 * fontsize + 4) / 72  # inches
    title_h = 0.45 if title else 0.0
    cell_h = panel_size + label_h
    width, height = ncols * panel_size, nrows * cell_h + title_h
    fig = Figure(figsize=(width, height))
    try:
        for i, (vertices, faces, label) in enumerate(items):
            r, c = divmod(i, ncols)
            bottom = height - title_h - (r + 1) * cell_h + label_h
            ax = fig.add_axes((c * panel_size / width, bottom / height, panel_size / width, panel_size / height),
                              projection="3d")
            render_mesh(ax, vertices, faces, color=color, max_faces=max_faces)
            fig.text((c + 0.5) * panel_size / width, (bottom - 0.02) / height, str(label), ha="center", va="top",
                     fontsize=fontsize, linespacing=1.15)
        if not items:
            fig.text(0.5, 0.5, "no shapes", ha="center", va="center", color="0.5", fontsize=11)
        if title:
            fig.text(0.5, 1 - 0.5 * title_h / height, title, ha="center", va="center", fontsize=11)
        # Fixed layout (the Axes tile the figure), no bbox trimming: the grid keeps its exact size.
        save_figure(fig, path, dpi, tight=False)
    finally:
        fig.clear()


def diagram_overview(
    path: str | Path,
    diagrams: Sequence[Sequence[np.ndarray]],
    *,
    tau: float,
    title: str | None = None,
    betti: Sequence[tuple[int, int, int]] | None = None,
    dpi: int = 110,
) -> None:
    """One PNG summarising a collection's persistence diagrams.

    Three panels (H0, H1, H2) overlay every shape's points of that dimension on the common frame
    ``[-tau, tau]``, semi-transparent (more transparent the more shapes), titled with point and shape counts.
    With ``betti`` a fourth panel shows, for each of b0, b1, b2, how many shapes have each value.

    Args:
        path: output PNG; parent folders are created.
        diagrams: per shape ``[PD0, PD1, PD2]``, each ``(n, 2)`` (birth, death).
        tau: the clamp value (essential class dies at ``tau``).
        title: figure title.
        betti: per shape ``(b0, b1, b2)``, or None for no histogram.
        dpi: resolution.
    """
    n_panels = 3 + (betti is not None)
    fig = Figure(figsize=(3.6 * n_panels, 3.9 + (0.3 if title else 0.0)))
    try:
        axes = fig.subplots(1, n_panels)
        n_points = sum(len(_as_diagram(d[k])) for d in diagrams for k in range(min(3, len(d))))
        alpha = float(np.clip(15.0 / math.sqrt(max(n_points, 1)), 0.12, 0.8))
        for k in range(3):
            per_shape = [_as_diagram(d[k]) if k < len(d) else np.zeros((0, 2)) for d in diagrams]
            stacked = np.concatenate(per_shape + [np.zeros((0, 2))])
            only_k = [np.zeros((0, 2))] * 3
            only_k[k] = stacked
            plot_diagrams(axes[k], only_k, tau=tau, alpha=alpha, dims=[k])
            n_with = sum(len(p) > 0 for p in per_shape)
            axes[k].set_title(f"{DIM_STYLE[k][0]}: {len(stacked)} points in {n_with} of {len(per_shape)} shapes",
                              fontsize=10)
        if betti is not None:
            _betti_histogram(axes[3], betti)
        if title:
            fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        save_figure(fig, path, dpi)
    finally:
        fig.clear()


def _betti_histogram(ax: Axes, betti: Sequence[tuple[int, int, int]]) -> None:
    """Grouped bars: for each value v and each k, the number of shapes with b_k = v. ``betti``: ``(n, 3)``."""
    b = np.asarray(betti, np.int64).reshape(-1, 3)
    top = int(b.max()) if len(b) else 0
    values = np.arange(top + 1)
    width = 0.8 / 3
    for k in range(3):
        counts = np.bincount(b[:, k], minlength=top + 1) if len(b) else np.zeros(top + 1, int)
        ax.bar(values + (k - 1) * width, counts, width, color=DIM_STYLE[k][1], label=f"b{k}")
    ax.xaxis.set_major_locator(matplotlib.ticker.MultipleLocator(1) if top <= 12
                               else matplotlib.ticker.MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlim(-0.6, top + 0.6)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("Betti number", fontsize=9)
    ax.set_ylabel("shapes", fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"Betti numbers of {len(b)} shapes", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
