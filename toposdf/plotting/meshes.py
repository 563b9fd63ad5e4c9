"""Meshes drawn on 3D Axes with flat shading (:func:`render_mesh`), reduced for display (:func:`decimate`), and
contact sheets of many meshes (:func:`mesh_contact_sheet`). Conventions: :mod:`toposdf.plotting`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from toposdf.plotting.save import save_figure

import matplotlib.colors  # noqa: E402, I001  (after save, which selects the Agg backend)
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

# Mesh (x, y, z) with y up -> plot (x, -z, y), the plot's z being matplotlib's vertical axis. A rotation
# (det = +1), not a mirror, so shapes are not flipped left to right.
_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Face colour = base colour * (_AMBIENT + _DIFFUSE * |n . l|): faces lit edge-on at 0.42, facing the light at
# 1.12 (slightly lighter than the base colour, clipped to white).
_AMBIENT, _DIFFUSE = 0.42, 0.70


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
    colours = _shaded_colours(tri, color, elev, azim)
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


def _shaded_colours(tri: np.ndarray, color: str, elev: float, azim: float) -> np.ndarray:
    """``(nf, 3)`` RGB of the triangles ``tri`` ``(nf, 3, 3)`` (plot coordinates): ``color * (0.42 + 0.70 |n . l|)``
    for the light ``l`` fixed relative to the camera of the view ``(elev, azim)``."""
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    eye, right, up = _camera_frame(elev, azim)
    light = 0.55 * eye - 0.35 * right + 0.75 * up
    light /= np.linalg.norm(light)
    shade = _AMBIENT + _DIFFUSE * np.abs(normals @ light)
    rgb = np.asarray(matplotlib.colors.to_rgb(color))
    return np.clip(rgb[None] * shade[:, None], 0.0, 1.0)


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
    grid_w = ncols * panel_size
    width = max(grid_w, 0.095 * len(title) + 0.3) if title else grid_w  # a narrow sheet is widened to its title
    height = nrows * cell_h + title_h
    x0 = (width - grid_w) / 2  # the grid centred under it
    fig = Figure(figsize=(width, height))
    try:
        for i, (vertices, faces, label) in enumerate(items):
            r, c = divmod(i, ncols)
            bottom = height - title_h - (r + 1) * cell_h + label_h
            ax = fig.add_axes(((x0 + c * panel_size) / width, bottom / height, panel_size / width,
                               panel_size / height), projection="3d")
            render_mesh(ax, vertices, faces, color=color, max_faces=max_faces)
            fig.text((x0 + (c + 0.5) * panel_size) / width, (bottom - 0.02) / height, str(label), ha="center",
                     va="top", fontsize=fontsize, linespacing=1.15)
        if not items:
            fig.text(0.5, 0.5, "no shapes", ha="center", va="center", color="0.5", fontsize=11)
        if title:
            fig.text(0.5, 1 - 0.5 * title_h / height, title, ha="center", va="center", fontsize=11)
        # Fixed layout (the Axes tile the figure), no bbox trimming: the grid keeps its exact size.
        save_figure(fig, path, dpi, tight=False)
    finally:
        fig.clear()
