"""Persistence diagrams drawn on 2D Axes (:func:`plot_diagrams`) and a collection's overview
(:func:`diagram_overview`). Conventions: :mod:`toposdf.plotting`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from toposdf.plotting.save import save_figure

import matplotlib.ticker  # noqa: E402, I001  (after save, which selects the Agg backend)
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: (label, colour, marker) for H0, H1, H2.
DIM_STYLE: list[tuple[str, str, str]] = [
    ("H0", "#1f77b4", "o"),
    ("H1", "#d62728", "^"),
    ("H2", "#2ca02c", "s"),
]


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
    lo, hi, top = _diagram_frame([points[k] for k in shown], tau)
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1.0, zorder=0)
    any_essential = False
    for k in shown:
        any_essential |= _scatter_dimension(ax, points[k], k, tau, top, alpha)
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


def _diagram_frame(points: Sequence[np.ndarray], tau: float | None) -> tuple[float, float, float]:
    """``(lo, hi, top)``: the padded extent of both axes for the diagrams ``points`` and the height ``top`` at
    which points dying at ``tau`` or at infinity are drawn (see :func:`plot_diagrams`)."""
    # Every finite coordinate (births of points with infinite death included) sets the frame.
    coords = np.concatenate([p[np.isfinite(p)] for p in points] + [np.zeros(0)])
    has_inf = any((~np.isfinite(p[:, 1])).any() for p in points)
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
    return lo - pad, hi + pad, top


def _scatter_dimension(ax: Axes, d: np.ndarray, k: int, tau: float | None, top: float, alpha: float) -> bool:
    """Draw ``PD_k`` ``d`` ``(n, 2)``: dots, and stars at ``top`` for the points dying at ``tau`` or at infinity,
    with a legend proxy ``Hk (n)``. Returns whether there were stars."""
    label, colour, marker = DIM_STYLE[k % len(DIM_STYLE)]
    d = d.copy()
    essential = ~np.isfinite(d[:, 1])
    if tau is not None:
        # Tolerance covers float32 data clamped at tau (float32(0.1) - 0.1 ~ 1.5e-9).
        essential |= np.isclose(d[:, 1], tau, rtol=0.0, atol=1e-6 * max(abs(tau), 1.0))
    d[~np.isfinite(d[:, 1]), 1] = top
    ax.scatter(d[~essential, 0], d[~essential, 1], s=22, color=colour, marker=marker, alpha=alpha,
               edgecolors="none", zorder=2)
    if essential.any():
        ax.scatter(d[essential, 0], d[essential, 1], s=110, color=colour, marker="*", edgecolors="k",
                   linewidths=0.6, zorder=3, alpha=max(alpha, 0.6))
    # Legend proxy: opaque, whatever alpha the points have.
    ax.scatter([], [], s=28, color=colour, marker=marker, label=f"{label} ({len(d)})")
    return bool(essential.any())


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
