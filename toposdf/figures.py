"""The paper's figures (matplotlib, Agg, CPU): samples (Fig. 1), interpolation (Fig. 2), pairwise PD distance
matrices (Fig. 3), methods by category (Fig. 4), and training curves.

Meshes are drawn with :func:`toposdf.plotting.render_mesh` and diagrams with
:func:`toposdf.plotting.plot_diagrams`; every function here writes one PNG and closes its figure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .data import category_meshes, load_normalized_mesh, split_ids
from .plotting import _save, plot_diagrams, render_mesh

import matplotlib.pyplot as plt  # noqa: E402  (after plotting, which selects the Agg backend)

Mesh = tuple[np.ndarray, np.ndarray]


def mesh_rows(path: str | Path, rows: Sequence[tuple[str, Sequence[Mesh]]], title: str, *,
              column_titles: Sequence[str] | None = None, colors: Sequence[str] | None = None,
              panel: float = 1.9, dpi: int = 110) -> None:
    """A grid of rendered meshes: one labelled row per ``(label, meshes)``; shorter rows leave blanks."""
    ncols = max(1, max(len(m) for _, m in rows))
    top = 0.85 if column_titles is not None else 0.5  # inches for the title (and the column titles)
    fig = plt.figure(figsize=(panel * ncols + 1.6, panel * len(rows) + top + 0.1))
    fig.subplots_adjust(left=1.5 / fig.get_figwidth(), right=0.99, bottom=0.1 / fig.get_figheight(),
                        top=1 - top / fig.get_figheight(), wspace=0.02, hspace=0.05)
    for r, (label, meshes) in enumerate(rows):
        for c in range(ncols):
            ax = fig.add_subplot(len(rows), ncols, r * ncols + c + 1, projection="3d")
            if c < len(meshes):
                render_mesh(ax, *meshes[c], color=(colors[r] if colors else "#8fa8c8"))
            else:
                ax.set_axis_off()
            if r == 0 and column_titles is not None and c < len(column_titles):
                ax.set_title(column_titles[c], fontsize=9)
            if c == 0:
                box = ax.get_position()
                fig.text(0.01, box.y0 + box.height / 2, label, ha="left", va="center", fontsize=9)
    fig.suptitle(title, fontsize=11)
    _save(fig, path, dpi, tight=False)
    plt.close(fig)


def interpolation_figure(path: str | Path, t: np.ndarray, meshes: Sequence[Mesh], diagrams, generator_diagrams,
                         tau: float, title: str, dpi: int = 110) -> None:
    """Fig. 2: along one latent path, the implicit generator's shapes and diagrams (rows 1-2) and the PD
    generator's diagrams (row 3)."""
    steps = len(t)
    rows = 3 if generator_diagrams is not None else 2
    fig = plt.figure(figsize=(2.3 * steps, 2.4 * rows + 0.4))
    for i in range(steps):
        ax = fig.add_subplot(rows, steps, i + 1, projection="3d")
        render_mesh(ax, *meshes[i])
        ax.set_title(f"t = {t[i]:.2f}", fontsize=9)
        plot_diagrams(fig.add_subplot(rows, steps, steps + i + 1), diagrams[i], tau=tau, legend=i == 0,
                      title="implicit generator" if i == 0 else None)
        if generator_diagrams is not None:
            plot_diagrams(fig.add_subplot(rows, steps, 2 * steps + i + 1), _off_diagonal(generator_diagrams[i]),
                          tau=tau, legend=i == 0, title="PD generator" if i == 0 else None)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path, dpi)
    plt.close(fig)


def _off_diagonal(diagrams, eps: float = 1e-6) -> list[np.ndarray]:
    """A PD generator's diagrams without the slots it parked on the diagonal (unused, zero cost in eq. 1)."""
    return [np.asarray(d).reshape(-1, 2)[np.asarray(d).reshape(-1, 2) @ [-1, 1] > eps] for d in diagrams]


def pd_matrices_figure(path: str | Path, matrices: Sequence[tuple[str, np.ndarray, float, np.ndarray]],
                       title: str, dpi: int = 110) -> None:
    """Fig. 3: pairwise ``d_PD`` matrices (rows: training shapes), each with its PD-LAP (eq. 2) in the title.

    ``matrices``: ``(label, W, value, assignment)``; columns are permuted by the optimal assignment, so that a
    good match shows as a dark diagonal. Both panels share one colour scale.
    """
    vmax = max(float(np.nanmax(w)) for _, w, _, _ in matrices)
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.4 * len(matrices) + 0.8, 4.2), squeeze=False)
    image = None
    for ax, (label, w, value, assignment) in zip(axes[0], matrices):
        image = ax.imshow(w[:, assignment], cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{label}\nPD-LAP (eq. 2) = {value:.4f}", fontsize=10)
        ax.set_xlabel("shape (columns in assignment order)", fontsize=9)
        ax.set_ylabel("training shape", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.85, label="$d_{PD}$ (eq. 1, summed over H0-H2)")
    fig.suptitle(title, fontsize=11)
    _save(fig, path, dpi)
    plt.close(fig)


# Columns of the training CSVs that are not loss terms: the x axis, timings, the narrow band's evaluated fraction
NOT_LOSS_TERMS = ("epoch", "grid_evaluated_fraction")


def loss_terms(curves: dict[str, pd.DataFrame]) -> list[str]:
    """The loss-term columns of the training CSVs, sorted (timings and :data:`NOT_LOSS_TERMS` left out)."""
    return sorted({c for df in curves.values() for c in df.columns
                   if c not in NOT_LOSS_TERMS and not c.startswith("seconds")})


def training_curves(path: str | Path, curves: dict[str, pd.DataFrame], title: str, dpi: int = 100) -> None:
    """One panel per loss term (log scale), one line per method and stage; stage 2's rounds continue stage 1's
    epochs on the x axis. A panel whose term is 0 throughout says so (a log axis cannot show it)."""
    terms = loss_terms(curves)
    ncols = min(4, len(terms)) or 1
    nrows = math.ceil(len(terms) / ncols) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.6 * nrows + 0.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, term in zip(axes.ravel(), terms):
        drawn = False
        for i, (label, df) in enumerate(curves.items()):
            if term not in df:
                continue
            rows = df[df[term] > 0]  # a log axis: a term that is 0 (switched off) is not drawn
            if len(rows):
                ax.plot(rows["epoch"], rows[term], lw=1.2, marker="o", ms=2.5, label=label,
                        color=colours[i % len(colours)])
                drawn = True
        if drawn:
            ax.set_yscale("log")  # matplotlib labels minor ticks itself when the curves span less than a decade
        else:
            ax.text(0.5, 0.5, "0 for every method", ha="center", va="center", fontsize=8, transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(terms):]:
        ax.set_axis_off()
    handles: dict = {}
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=min(4, len(handles)),
               fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.04 + 0.02 * math.ceil(len(handles) / 4), 1, 0.97))
    _save(fig, path, dpi)
    plt.close(fig)


def prior_samples_sheet(path: str | Path, shapes_path: str | Path, diagrams_path: str | Path, title: str,
                        n: int = 24) -> None:
    """A contact sheet of the first draw's shapes ``z ~ N(0, I)`` of one method (the samples of Figs. 1 and 4),
    each labelled with its Betti numbers (from its diagrams at the ground truth's settings)."""
    from .generation import draws_of, load_meshes
    from .plotting import mesh_contact_sheet
    from .topology import betti_numbers

    meshes, diagrams = load_meshes(shapes_path)[:n], draws_of(diagrams_path)[0][:n]
    items = [(v, f, f"#{i}  β = {betti_numbers(d)}") for i, ((v, f), d) in enumerate(zip(meshes, diagrams))]
    mesh_contact_sheet(path, items, ncols=8, title=title, panel_size=1.8)


# ---------------------------------------------------------------------------------------------- entry points
def _training_meshes(manifest_paths, split_path, n: int) -> list[Mesh]:
    ids = split_ids(split_path, "train")[:n]
    paths = category_meshes(manifest_paths, ids)
    meshes = [load_normalized_mesh(paths[i]) for i in ids if i in paths]
    return [(np.asarray(m.vertices), np.asarray(m.faces)) for m in meshes]


def samples_figure(path, categories: Sequence[str], training: dict, generated: dict, baseline: str, ours: str,
                   n: int) -> None:
    """Fig. 1: per category, training shapes, the baseline's samples and ours (first z-draw)."""
    from .generation import load_meshes
    from .tables import DISPLAY_NAMES

    rows, colours = [], []
    for category in categories:
        rows.append((f"{category}\ntraining", _training_meshes(*training[category], n)))
        rows.append((f"{category}\n{DISPLAY_NAMES.get(baseline, baseline)}", load_meshes(generated[category, baseline])[:n]))
        rows.append((f"{category}\n{DISPLAY_NAMES.get(ours, ours)}", load_meshes(generated[category, ours])[:n]))
        colours += ["#a0a0a0", "#c89f8f", "#8fa8c8"]
    mesh_rows(path, rows, "Training shapes, baseline samples and ours (z ~ N(0, I), first draw)", colors=colours)


def methods_figure(path, categories: Sequence[str], methods: Sequence[str], generated: dict, n: int) -> None:
    """Fig. 4: one row per method, ``n`` samples of each category side by side."""
    from .generation import load_meshes
    from .tables import DISPLAY_NAMES

    per_cell = {(c, m): load_meshes(generated[c, m])[:n] for c in categories for m in methods}
    counts = {c: min(len(per_cell[c, m]) for m in methods) for c in categories}  # equal columns in every row
    rows = [(DISPLAY_NAMES.get(m, m), [mesh for c in categories for mesh in per_cell[c, m][: counts[c]]])
            for m in methods]
    titles = [c for c in categories for _ in range(counts[c])]
    mesh_rows(path, rows, "Samples of every method by category (z ~ N(0, I), first draw)", column_titles=titles)


#: Stage 1's terms under the names of the stage-2 block that continues them.
_STAGE1_AS_STAGE2 = {"sdf": "theta_sdf", "eikonal": "theta_eikonal", "steik": "theta_steik", "kl": "z_kl"}


def method_curve(stage1_csv, pdgen_csv, joint_csv) -> pd.DataFrame:
    """One method's training as one table: stage 1's epochs, then stage 2's rounds continuing its count (stage-1
    terms renamed after the stage-2 block that continues them), and stage 1b's terms as ``pdgen_*`` columns over
    its own epochs."""
    parts = []
    stage1 = pd.read_csv(stage1_csv).rename(columns=_STAGE1_AS_STAGE2)
    parts.append(stage1)
    if joint_csv is not None and Path(joint_csv).exists():
        joint = pd.read_csv(joint_csv)
        joint["epoch"] = joint["epoch"] + stage1["epoch"].max()
        parts.append(joint)
    if pdgen_csv is not None and Path(pdgen_csv).exists():
        pdgen = pd.read_csv(pdgen_csv)
        parts.append(pdgen.rename(columns={c: f"pdgen_{c}" for c in pdgen.columns if c != "epoch"}))
    return pd.concat(parts, ignore_index=True)
