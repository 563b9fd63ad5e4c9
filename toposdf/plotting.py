"""Headless figures of meshes and persistence diagrams (matplotlib, Agg, CPU only).

Meshes are ``(V, F)`` with ``V`` ``(nv, 3)`` float and ``F`` ``(nf, 3)`` int, y up (ShapeNet's convention).
Diagrams are ``(n, 2)`` arrays of (birth, death); a shape's diagrams are ``[PD0, PD1, PD2]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

DIM_STYLE = [  # (label, colour, marker) for H0, H1, H2
    ("H0", "#1f77b4", "o"),
    ("H1", "#d62728", "^"),
    ("H2", "#2ca02c", "s"),
]
LIGHT = np.array([0.4, -0.6, 0.7]) / np.linalg.norm([0.4, -0.6, 0.7])
# Mesh (x, y, z) with y up -> plot (x, -z, y) with the plot's z up: a rotation, not a mirror.
_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def decimate(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertex-clustering decimation for display: snap vertices to ever coarser grids until at most
    ``max_faces`` non-degenerate faces remain. The silhouette is kept to within one grid cell."""
    vertices, faces = np.asarray(vertices, float), np.asarray(faces, np.int64)
    if len(faces) <= max_faces:
        return vertices, faces
    lo, extent = vertices.min(axis=0), np.ptp(vertices, axis=0).max() or 1.0
    cells = 256
    while True:
        keys = np.floor((vertices - lo) / extent * cells).astype(np.int64)
        _, cluster, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        cluster = cluster.ravel()
        centers = np.zeros((len(counts), 3))
        np.add.at(centers, cluster, vertices)
        centers /= counts[:, None]
        f = cluster[faces]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
        f = np.unique(np.sort(f, axis=1), axis=0) if len(f) > max_faces else f
        if len(f) <= max_faces or cells <= 4:
            return centers, f[:max_faces]
        cells //= 2


def render_mesh(
    ax,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    color: str = "#8fa8c8",
    elev: float = 20.0,
    azim: float = -50.0,
    max_faces: int = 20000,
) -> None:
    """Draw a mesh on a 3D Axes with Lambertian shading from a fixed light, y up, equal aspect, no axes.

    An empty mesh draws the word "empty". Meshes with more than ``max_faces`` faces are reduced by
    :func:`decimate` for display. Sorting is the painter's algorithm of matplotlib (good for compact shapes).
    """
    ax.set_axis_off()
    ax.view_init(elev=elev, azim=azim)
    vertices, faces = np.asarray(vertices, float).reshape(-1, 3), np.asarray(faces, np.int64).reshape(-1, 3)
    if len(faces) == 0:
        ax.text2D(0.5, 0.5, "empty", transform=ax.transAxes, ha="center", va="center", color="0.5")
        return
    vertices, faces = decimate(vertices, faces, max_faces)
    v = vertices @ _Y_UP.T
    tri = v[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    # Two-sided lighting: a face seen from behind is lit like its front (meshes of unknown orientation).
    shade = 0.3 + 0.7 * np.abs(normals @ LIGHT)
    rgb = np.asarray(matplotlib.colors.to_rgb(color))
    collection = Poly3DCollection(tri, facecolors=np.clip(rgb[None] * shade[:, None], 0, 1), edgecolors="none")
    ax.add_collection3d(collection)
    center = 0.5 * (v.min(axis=0) + v.max(axis=0))
    radius = 0.5 * np.ptp(v, axis=0).max()
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), center):
        setter(c - radius, c + radius)
    ax.set_box_aspect((1, 1, 1))


def plot_diagrams(
    ax,
    diagrams: Sequence[np.ndarray],
    *,
    tau: float | None = None,
    title: str | None = None,
    alpha: float = 0.8,
    dims: Sequence[int] | None = None,
) -> None:
    """Scatter PD0, PD1, PD2 on one Axes with the diagonal and a legend with counts.

    Points that die at ``tau`` (the clamp: the essential class, and features that outlive the clamp) are
    stars. ``dims`` restricts the drawing and the legend to some dimensions (default: all).
    """
    points = [np.asarray(d, float).reshape(-1, 2) for d in diagrams]
    values = np.concatenate(points) if any(len(p) for p in points) else np.zeros((0, 2))
    lo = min(values.min(), 0.0) if len(values) else -(tau or 1.0)
    hi = max(values.max(), 0.0) if len(values) else (tau or 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1, zorder=0)
    for k, d in enumerate(points):
        if dims is not None and k not in dims:
            continue
        label, colour, marker = DIM_STYLE[k]
        essential = np.isclose(d[:, 1], tau) if tau is not None else np.zeros(len(d), bool)
        ax.scatter(d[~essential, 0], d[~essential, 1], s=22, c=colour, marker=marker, alpha=alpha,
                   label=f"{label} ({len(d)})", edgecolors="none")
        if essential.any():
            ax.scatter(d[essential, 0], d[essential, 1], s=90, c=colour, marker="*", edgecolors="k", linewidths=0.5)
    if tau is not None:
        ax.axhline(tau, color="0.8", lw=0.8, ls="--", zorder=0)
        ax.scatter([], [], s=90, c="white", marker="*", edgecolors="k", linewidths=0.5, label="death = τ")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)


def _save(fig: Figure, path: str | Path, dpi: int) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def mesh_contact_sheet(
    path: str | Path,
    items: Sequence[tuple[np.ndarray, np.ndarray, str]],
    *,
    ncols: int = 6,
    title: str | None = None,
    panel_size: float = 2.2,
    dpi: int = 110,
) -> None:
    """A grid of rendered meshes ``(vertices, faces, label)``, each labelled underneath, saved as a PNG."""
    n = max(len(items), 1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = plt.figure(figsize=(panel_size * ncols, panel_size * nrows * 1.15 + (0.4 if title else 0)))
    for i, (vertices, faces, label) in enumerate(items):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
        render_mesh(ax, vertices, faces)
        ax.text2D(0.5, 0.0, label, transform=ax.transAxes, ha="center", va="top", fontsize=8)
    if not items:
        fig.text(0.5, 0.5, "no shapes", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(wspace=0.02, hspace=0.25)
    _save(fig, path, dpi)


def diagram_overview(
    path: str | Path,
    diagrams: Sequence[Sequence[np.ndarray]],
    *,
    tau: float,
    title: str | None = None,
    betti: Sequence[tuple[int, int, int]] | None = None,
    dpi: int = 110,
) -> None:
    """All shapes' diagrams overlaid, one panel per homology dimension, plus the Betti-number histogram."""
    n_panels = 3 + (betti is not None)
    fig, axes = plt.subplots(1, n_panels, figsize=(4.0 * n_panels, 4.2))
    alpha = float(np.clip(8.0 / max(len(diagrams), 1), 0.15, 0.8))
    for k in range(3):
        per_shape = [np.asarray(d[k], float).reshape(-1, 2) for d in diagrams]
        stacked = np.concatenate(per_shape) if per_shape else np.zeros((0, 2))
        only_k = [np.zeros((0, 2))] * 3
        only_k[k] = stacked
        plot_diagrams(axes[k], only_k, tau=tau, alpha=alpha, dims=[k])
        axes[k].set_title(f"{DIM_STYLE[k][0]}: {len(stacked)} points, {len(per_shape)} shapes", fontsize=10)
    if betti is not None:
        ax = axes[3]
        b = np.asarray(betti, int).reshape(-1, 3)
        top = int(b.max()) if len(b) else 0
        bins = np.arange(top + 2)
        width = 0.27
        for k in range(3):
            counts = np.bincount(b[:, k], minlength=top + 1) if len(b) else np.zeros(top + 1)
            ax.bar(bins[:-1] + (k - 1) * width, counts, width, color=DIM_STYLE[k][1], label=f"b{k}")
        ax.set_xticks(bins[:-1])
        ax.set_xlabel("Betti number")
        ax.set_ylabel("shapes")
        ax.legend(frameon=False)
        ax.set_title("Betti numbers at level 0", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path, dpi)
