"""The paper's figures (matplotlib, Agg, CPU): samples (Fig. 1), interpolation (Fig. 2), pairwise PD distance
matrices (Fig. 3), methods by category (Fig. 4), training curves, and the 1D study's figure (Sec. 4.1).

Meshes are drawn with :func:`toposdf.plotting.render_mesh` and diagrams with
:func:`toposdf.plotting.plot_diagrams`; every function here writes one PNG and closes its figure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .data import category_meshes, load_normalized_mesh, split_ids
from .plotting import mesh_contact_sheet, plot_diagrams, render_mesh, save_figure
from .study1d import representative_trial
from .tables import DISPLAY_NAMES, rows_of
from .topology import betti_numbers, load_diagrams, off_diagonal
from .trigpd import align_to_reference, design_matrix

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
    save_figure(fig, path, dpi, tight=False)
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
            plot_diagrams(fig.add_subplot(rows, steps, 2 * steps + i + 1), off_diagonal(generator_diagrams[i]),
                          tau=tau, legend=i == 0, title="PD generator" if i == 0 else None)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, dpi)
    plt.close(fig)


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
    save_figure(fig, path, dpi)
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
    save_figure(fig, path, dpi)
    plt.close(fig)


def prior_samples_sheet(path: str | Path, shapes_path: str | Path, diagrams_path: str | Path, title: str,
                        n: int = 24) -> None:
    """A contact sheet of the first draw's shapes ``z ~ N(0, I)`` of one method (the samples of Figs. 1 and 4),
    each labelled with its Betti numbers (from its diagrams at the ground truth's settings)."""
    from .generation import draws_of, load_meshes  # here: generation imports torch, which study_1d's env lacks

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
    from .generation import load_meshes  # here: generation imports torch, which study_1d's env lacks

    rows, colours = [], []
    for category in categories:
        rows.append((f"{category}\ntraining", _training_meshes(*training[category], n)))
        rows.append((f"{category}\n{DISPLAY_NAMES.get(baseline, baseline)}", load_meshes(generated[category, baseline])[:n]))
        rows.append((f"{category}\n{DISPLAY_NAMES.get(ours, ours)}", load_meshes(generated[category, ours])[:n]))
        colours += ["#a0a0a0", "#c89f8f", "#8fa8c8"]
    mesh_rows(path, rows, "Training shapes, baseline samples and ours (z ~ N(0, I), first draw)", colors=colours)


def methods_figure(path, categories: Sequence[str], methods: Sequence[str], generated: dict, n: int) -> None:
    """Fig. 4: one row per method, ``n`` samples of each category side by side."""
    from .generation import load_meshes  # here: generation imports torch, which study_1d's env lacks

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
    its own epochs. A method trained from scratch has no stage 1 (``stage1_csv`` None): its stage 2 starts at 0."""
    parts, offset = [], 0
    if stage1_csv is not None:
        stage1 = pd.read_csv(stage1_csv).rename(columns=_STAGE1_AS_STAGE2)
        parts.append(stage1)
        offset = stage1["epoch"].max()
    if joint_csv is not None and Path(joint_csv).exists():
        joint = pd.read_csv(joint_csv)
        joint["epoch"] = joint["epoch"] + offset
        parts.append(joint)
    if pdgen_csv is not None and Path(pdgen_csv).exists():
        pdgen = pd.read_csv(pdgen_csv)
        parts.append(pdgen.rename(columns={c: f"pdgen_{c}" for c in pdgen.columns if c != "epoch"}))
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------------------------- the 1D study
def _coefficients(df: pd.DataFrame, prefix: str) -> np.ndarray:
    """``(rows, 2n + 1)`` the coefficients ``{prefix}_a0..`` of the rows of ``df``."""
    cols = sorted((c for c in df.columns if c.startswith(f"{prefix}_a")), key=lambda c: int(c.rsplit("a", 1)[1]))
    return df[cols].to_numpy(dtype=np.float64)


def _tex_profile(name: str) -> str:
    """Mathtext for a profile name: ``k^-2`` -> ``$\\lambda_k \\propto k^{-2}$``."""
    if name == "equal":
        return r"equal $\lambda_k$"
    if name.startswith("k^"):
        return rf"$\lambda_k \propto k^{{{name[2:]}}}$"
    return name


def profile_label(name: str, lambdas: np.ndarray) -> str:
    """Legend text for a profile: its name and its weights ``lambda_1..lambda_n``."""
    return f"{_tex_profile(name)}  (λ = {', '.join(f'{v:.3g}' for v in lambdas)})"


def _study_errors_panel(ax, at: pd.DataFrame, names: list[str], colours: dict, title: str) -> None:
    """Panel (a): box plot of each profile's relative error over the trials of one decay, means marked."""
    data = [at.loc[at["profile"] == name, "rel_error"].to_numpy() for name in names]
    box = ax.boxplot(data, patch_artist=True, widths=0.55, medianprops={"color": "white", "linewidth": 1.5},
                     flierprops={"markersize": 3})
    for patch, name in zip(box["boxes"], names):
        patch.set_facecolor(colours[name])
        patch.set_alpha(0.85)
    means = [d.mean() for d in data]
    ax.scatter(range(1, len(names) + 1), means, marker="D", s=30, color="gold", edgecolor="black", zorder=3,
               label="mean (white line: median)")
    for i, value in enumerate(means):
        ax.annotate(f"{value:.3f}", (i + 1, value), textcoords="offset points", xytext=(0, -14), fontsize=8,
                    ha="center", va="center", color="black",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_xticks(range(1, len(names) + 1), [_tex_profile(n).replace("  ", "\n") for n in names], fontsize=9)
    ax.set_ylabel(r"relative coefficient error  $\|a^\star - a_{gt}\| \,/\, \|a_{gt}\|$")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(bottom=0)


def _study_example_panel(ax, example: pd.DataFrame, colours: dict, degree: int, trial: int, n_samples: int) -> None:
    """Panel (b): one ground truth, the start and each profile's fit, aligned to the ground truth."""
    x = np.linspace(0.0, 2.0 * np.pi, n_samples)
    phi = design_matrix(x, degree)
    truth = _coefficients(example.iloc[[0]], "true")[0]
    ax.plot(x, phi @ truth, color="0.55", linewidth=5, alpha=0.55, label=r"ground truth $f(a_{gt}, x)$")
    ax.plot(x, phi @ align_to_reference(_coefficients(example.iloc[[0]], "init")[0], truth), color="0.3",
            linestyle=":", linewidth=1.3, label="start")
    for (_, row), coefs in zip(example.iterrows(), _coefficients(example, "fit")):
        ax.plot(x, phi @ align_to_reference(coefs, truth), color=colours[row["profile"]], linewidth=1.4,
                label=f"{_tex_profile(row['profile'])}: error {row['rel_error']:.2f}, $d_{{PD}}$ "
                      f"{row['pd_distance']:.1e}")
    ax.set_xlim(0, 2 * np.pi)
    ax.set_xticks(np.arange(5) * np.pi / 2, ["0", "π/2", "π", "3π/2", "2π"])
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title(f"(b) one ground truth and its fits (trial {trial}, degree n = {degree})\n"
                 "fits shown after the best shift / reflection of the circle", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)


def _study_decays_panel(ax, df: pd.DataFrame, names: list[str], colours: dict, lambdas: dict, decay: float) -> None:
    """Panel (c): each profile's mean error (± s.e.m.) against the decay of the ground truth's spectrum."""
    summary = df.groupby(["profile", "decay"])["rel_error"].agg(["mean", "sem"]).reset_index()
    for name in names:
        s = summary[summary["profile"] == name].sort_values("decay")
        ax.plot(s["decay"], s["mean"], marker="o", markersize=4, color=colours[name],
                linewidth=2.4 if name == "equal" else 1.4, label=profile_label(name, lambdas[name]))
        ax.fill_between(s["decay"], s["mean"] - s["sem"], s["mean"] + s["sem"], color=colours[name], alpha=0.12,
                        linewidth=0)
    ax.axvline(decay, color="0.6", linestyle="--", linewidth=1)
    ax.set_xlabel(r"decay $s$ of the ground truth's spectrum, $a_k \sim N(0, k^{-2s})$")
    ax.set_ylabel("mean relative coefficient error (± s.e.m.)")
    ax.set_title("(c) the best profile depends on the spectrum\n(dashed: the decay of panels a and b)",
                 fontsize=10)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    ax.set_ylim(bottom=0)


def plot_study(df: pd.DataFrame, path: str | Path, *, decay: float | None = None, example_trial: int | None = None,
               n_samples: int = 512, dpi: int = 120) -> None:
    """The 1D study's figure (:func:`toposdf.study1d.run_study`), saved as a PNG.

    (a) the relative coefficient error of each profile over the trials at one ground-truth decay (box plot, mean
    marked); (b) one example: the ground truth, the start and each profile's fit (aligned to the ground truth by the
    circle symmetry of the error); (c) the mean error (± s.e.m.) against the decay of the ground truth's spectrum.

    Args:
        df: what :func:`toposdf.study1d.run_study` returns.
        path: output PNG.
        decay: the ground-truth decay of panels (a) and (b); default: the median of the decays in ``df``.
        example_trial: the trial shown in (b); default: :func:`toposdf.study1d.representative_trial`.
        n_samples: points at which the functions of (b) are drawn.
    """
    if df.empty:
        raise ValueError("the study's table is empty")
    decays = np.sort(df["decay"].unique())
    if decay is None:
        decay = float(decays[len(decays) // 2])
    if not np.any(np.isclose(decays, decay)):
        raise ValueError(f"decay {decay} is not in the study (decays: {decays.tolist()})")
    if example_trial is None:
        example_trial = representative_trial(df, decay)
    names = list(dict.fromkeys(df["profile"]))
    lambda_cols = sorted((c for c in df.columns if c.startswith("lambda_")), key=lambda c: int(c.split("_")[1]))
    lambdas = {name: df.loc[df["profile"] == name, lambda_cols].iloc[0].to_numpy() for name in names}
    cmap = plt.get_cmap("coolwarm")
    colours = {name: cmap(i / max(1, len(names) - 1)) for i, name in enumerate(names)}
    if "equal" in colours:
        colours["equal"] = "black"
    degree = len(lambda_cols)
    spectrum = rf"$a_k \sim N(0, k^{{{-2 * decay:g}}})$"

    fig, axes = plt.subplots(1, 3, figsize=(17.0, 5.6), gridspec_kw={"width_ratios": [1.0, 1.3, 1.15]})
    at = df[np.isclose(df["decay"], decay)]
    _study_errors_panel(axes[0], at, names, colours, f"(a) error per $\\lambda_k$ profile\nground truth {spectrum}, "
                        f"{df['trial'].nunique()} trials")
    example = at[at["trial"] == example_trial]
    if example.empty:
        raise ValueError(f"trial {example_trial} is not in the study")
    _study_example_panel(axes[1], example, colours, degree, example_trial, n_samples)
    _study_decays_panel(axes[2], df, names, colours, lambdas, decay)
    fig.suptitle(r"Sec. 4.1: fitting $a$ by $\min_a\, d_{PD}(PD(f_a), PD_{gt}) + \sum_k k^2 \lambda_k "
                 r"(a_{2k-1}^2 + a_{2k}^2)$, trigonometric polynomials of degree " + f"{degree}, "
                 r"profiles $\lambda_k$ with equal median", fontsize=11.5)
    fig.tight_layout()
    save_figure(fig, path, dpi)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------------------
# The figure rules' entry points (a toposdf.jobs.Job each: inputs per category and method are named
# "{category}__{method}" and "{category}__manifests", "{category}__split")

def run_figure_samples(job: Any) -> None:
    """Fig. 1 from the job's training shapes and the baseline's and ours' generated shapes."""
    cfg, inputs = job.cfg, job.input
    training = {c: (list(getattr(inputs, f"{c}__manifests")), getattr(inputs, f"{c}__split"))
                for c in cfg.dataset.categories}
    methods = (cfg.figures.baseline, cfg.figures.ours)
    generated = {(c, m): getattr(inputs, f"{c}__{m}") for c in cfg.dataset.categories for m in methods}
    samples_figure(job.output[0], cfg.dataset.categories, training, generated, *methods, cfg.figures.samples)


def run_figure_methods(job: Any) -> None:
    """Fig. 4 from every method's generated shapes."""
    cfg, rows = job.cfg, rows_of(job.cfg)
    generated = {(c, m): getattr(job.input, f"{c}__{m}") for c in cfg.dataset.categories for m in rows}
    methods_figure(job.output[0], cfg.dataset.categories, rows, generated, min(2, cfg.figures.samples))


def run_figure_interpolation(job: Any) -> None:
    """Fig. 2 from the job's interpolation (``meshes``) and the diagrams of its steps and of the PD generators."""
    from .generation import load_meshes  # here: generation imports torch, which study_1d's env lacks

    with np.load(job.input.meshes) as f:
        t, (a, b) = f["t"], [str(s) for s in f["shape_ids"]]
    ours = job.cfg.figures.ours
    interpolation_figure(job.output[0], t, load_meshes(job.input.meshes), load_diagrams(job.input.diagrams)[1],
                         load_diagrams(job.input.generator)[1], job.cfg.persistence.tau,
                         f"{job.wildcards.category}, {DISPLAY_NAMES.get(ours, ours)}: interpolation between "
                         f"training shapes {a} and {b}")
