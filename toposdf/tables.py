"""The paper's Tables 1 and 2 from the per-method metric files, as CSV, Markdown and LaTeX (pandas).

Every metric file (``metrics.json``, written by the ``evaluate`` rule) holds one category and method:
``cd_mean`` and ``pd_lap`` as ``{"mean", "std"}`` (CD over the test shapes, PD-LAP over the z-draws), the
per-dimension PD-LAP (``pd_lap_h0`` ...), the generation metrics and the provenance. The CSVs keep the raw
numbers (mean and std columns, unscaled); Markdown and LaTeX show ``mean ± std`` times the scale that their
header states, the best (lowest) value of each column in bold.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .io import atomic_open, read_json
from .layout import CALIBRATION_ROWS

log = logging.getLogger(__name__)

#: How the methods are called in the paper's tables.
DISPLAY_NAMES = {
    "deepsdf_vad": "DeepSDF-VAD",
    "deepsdf_se_vad": "DeepSDF-SE-VAD",
    "ours_deepsdf": "Ours-DeepSDF",
    "ours_deepsdf_se": "Ours-DeepSDF-SE",
    "no_pd_smoothness": "No PD Smoothness",
    "no_pd_training": "No PD Training",
    "deepsdf_topoprior": "DeepSDF-TopoPrior",
    "vecset": "3DShape2VecSet",
    "heldout_training": "Held-out training shapes (floor)",
    "blob": "One fixed blob (ceiling)",
}

#: The rows of the paper's Table 1 (config.yaml's methods and 3DShape2VecSet's row): their claims are the paper's.
PAPER_ROWS = ("deepsdf_vad", "deepsdf_se_vad", "ours_deepsdf", "ours_deepsdf_se", "no_pd_smoothness", "no_pd_training",
              "vecset")



#: Metrics where more is better (the rest: less is better; for 1-NNA, 50% is ideal and below 50% only happens
#: when samples copy the references, so less is better in practice, as ShapeGF reports it).
HIGHER_IS_BETTER = {"cov_cd"}
#: Descriptive columns: no best value to mark.
NO_BEST = {"mean_b0", "mean_b1", "mean_b2", "blob_fraction", "thick_fraction"}


def rows_of(cfg: Any) -> list[str]:
    """The rows of the tables and of Fig. 4: the configured methods, then the external rows (``external``, scored
    from another generator's meshes, :mod:`toposdf.external`), in the config's order, then 3DShape2VecSet's
    (``vecset``, where it is set)."""
    from .stages import optional

    return (list(cfg.methods) + list(optional(cfg, "external") or [])
            + (["vecset"] if optional(cfg, "vecset") is not None else []))


def collect(metrics_paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per (category, method, metric) with ``mean``, ``std`` and the provenance's checkpoint."""
    rows = []
    for path in metrics_paths:
        m = read_json(path)
        for entry in m.get("rows", [m]):  # a calibration file holds several rows
            for metric, value in entry["metrics"].items():
                rows.append({"category": entry["category"], "method": entry["method"], "metric": metric,
                             "mean": _number(value["mean"]), "std": _number(value["std"]), "n": value.get("n")})
    return pd.DataFrame(rows, columns=["category", "method", "metric", "mean", "std", "n"])


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def wide(long: pd.DataFrame, metrics: Sequence[str], methods: Sequence[str], categories: Sequence[str]) -> pd.DataFrame:
    """Methods as rows, ``(category, metric, mean|std)`` as columns, in the given orders."""
    frame = long[long["metric"].isin(metrics)].pivot_table(index="method", columns=["category", "metric"],
                                                          values=["mean", "std"], dropna=False)
    frame = frame.reorder_levels([1, 2, 0], axis=1)
    columns = pd.MultiIndex.from_tuples([(c, m, s) for c in categories for m in metrics for s in ("mean", "std")])
    return frame.reindex(index=[m for m in methods if m in set(long["method"])], columns=columns)


def formatted(frame: pd.DataFrame, scales: dict[str, float], labels: dict[str, str], markup: str) -> pd.DataFrame:
    """``mean ± std`` strings (scaled; the mean alone where there is no std), the best value of each column in
    bold (``markup``: ``"md"`` or ``"tex"``)."""
    out = {}
    for category, metric in dict.fromkeys((c, m) for c, m, _ in frame.columns):
        mean, std = frame[(category, metric, "mean")] * scales[metric], frame[(category, metric, "std")] * scales[metric]
        competing = mean[[m not in CALIBRATION_ROWS for m in frame.index]]
        best = competing.max(skipna=True) if metric in HIGHER_IS_BETTER else competing.min(skipna=True)
        best = float("nan") if metric in NO_BEST else best
        pm = " ± " if markup == "md" else " $\\pm$ "
        cells = []
        for method, mu, sd in zip(frame.index, mean, std):
            text = "n/a" if pd.isna(mu) else f"{mu:.2f}" if pd.isna(sd) else f"{mu:.2f}{pm}{sd:.2f}"
            if not pd.isna(mu) and mu == best and method not in CALIBRATION_ROWS:
                text = f"**{text}**" if markup == "md" else f"\\textbf{{{text}}}"
            cells.append(text)
        out[(category, labels[metric])] = cells
    result = pd.DataFrame(out, index=[DISPLAY_NAMES.get(m, m) for m in frame.index])
    result.columns = pd.MultiIndex.from_tuples(result.columns)
    result.index.name = "method"
    return result


def _markdown(frame: pd.DataFrame, title: str) -> str:
    header = ["method"] + [f"{c} {m}" for c, m in frame.columns]
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "| --- " * len(header) + "|"]
    lines += ["| " + " | ".join([name, *row]) + " |" for name, row in zip(frame.index, frame.to_numpy().tolist())]
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, scales: dict[str, float], labels: dict[str, str], stem: str | Path,
                title: str) -> list[Path]:
    """``stem.csv`` (raw numbers), ``stem.md`` and ``stem.tex`` (scaled ``mean ± std``, the title as caption)."""
    stem = Path(stem)
    paths = [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
    raw = frame.copy()
    raw.columns = [f"{c}/{m}/{s}" for c, m, s in raw.columns]
    with atomic_open(paths[0], "w") as fh:
        raw.to_csv(fh, index_label="method")
    with atomic_open(paths[1], "w") as fh:
        fh.write(_markdown(formatted(frame, scales, labels, "md"), title))
    latex = formatted(frame, scales, labels, "tex").to_latex(
        caption=title.replace("±", "$\\pm$").replace("×", "$\\times$").replace("^3", "$^3$").replace("^2", "$^2$"),
        multicolumn_format="c", escape=False)
    with atomic_open(paths[2], "w") as fh:
        fh.write(latex)
    return paths


def full_method(block: dict) -> bool:
    """Whether a method block is a full method of the paper (learned PD generators pretrained on PD data, with a
    smoothness weight), not a baseline or an ablation."""
    return (block.get("topology") == "learned" and not block.get("from_scratch") and block.get("lambda_pd", 1) > 0
            and block.get("lambda_smooth") != 0)


def representation_pairs(methods: dict[str, dict], rows: Sequence[str]) -> list[tuple[str, str]]:
    """Sec. 6.2's comparison: the 3DShape2VecSet row (where ``rows`` has it) against each full method
    (:func:`full_method`), as ``(vecset, method)`` pairs."""
    return [("vecset", name) for name, block in methods.items() if full_method(block)] if "vecset" in rows else []


def preferred_row(candidates: Sequence[str]) -> str:
    """Of rows that could take one role (a geometry's baseline, an ablation's full method): the paper's row, else
    the first configured, so that a row of one's own does not take the paper's pairs."""
    return next((name for name in candidates if name in PAPER_ROWS), candidates[0])


def paired_baselines(methods: dict[str, dict]) -> dict[str, str]:
    """Each method with topological terms (``topology`` not ``"none"``) -> the method without them that shares its
    geometric regularizer (Ours-DeepSDF -> DeepSDF-VAD, Ours-DeepSDF-SE and the ablations -> DeepSDF-SE-VAD; where a
    geometry has several such methods, the paper's row, else the first configured); a method whose geometry has no
    such baseline is left out. ``methods``: the config's ``methods`` block with the
    schema's defaults."""
    by_geometry: dict[str, list[str]] = {}
    for name, block in methods.items():
        if block.get("topology", "none") == "none":
            by_geometry.setdefault(block["geometry"], []).append(name)
    baselines = {geometry: preferred_row(names) for geometry, names in by_geometry.items()}
    return {name: baselines[block["geometry"]] for name, block in methods.items()
            if block.get("topology", "none") != "none" and block["geometry"] in baselines}


def write_paired_cd(reconstructions: dict[tuple[str, str], str | Path], pairs: Sequence[tuple[str, str]],
                    categories: Sequence[str], stem: str | Path, cd_scale: float) -> list[Path]:
    """The paired per-shape difference of CD-mean between each method and its baseline (``pairs``: ``(method,
    baseline)``; 3DShape2VecSet's against each full method, :func:`representation_pairs`), per category:
    ``CD(method) - CD(baseline)`` on the same test shapes, mean and 95% t-interval
    (:func:`toposdf.metrics.paired_difference`), below zero where the method reconstructs better. ``reconstructions``:
    ``(category, method)`` -> its ``reconstruction.csv``. Writes ``stem.csv`` (raw) and ``stem.md``."""
    from .metrics import paired_difference

    rows = []
    for method, baseline in pairs:
        for category in categories:
            a, b = (pd.read_csv(reconstructions[(category, m)]).set_index("model_id")["chamfer"]
                    for m in (method, baseline))
            shared = a.index.intersection(b.index)
            diff = paired_difference(a[shared].to_numpy(), b[shared].to_numpy())
            rows.append({"category": category, "method": method, "baseline": baseline, **diff})
    frame = pd.DataFrame(rows, columns=["category", "method", "baseline", "mean", "low", "high", "n", "resolved"])
    stem = Path(stem)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md")]
    with atomic_open(paths[0], "w") as fh:
        frame.to_csv(fh, index=False)
    lines = [f"**Paired CD-mean difference against the baseline: CD(method) - CD(baseline) ×{cd_scale:g} over the same "
             "test shapes, mean [95% t-interval]; below 0: the method reconstructs better; resolved: the interval "
             "excludes 0 (3DShape2VecSet's rows: against each of ours, Sec. 6.2)**", "",
             "| method | baseline | " + " | ".join(categories) + " |",
             "| --- " * (2 + len(categories)) + "|"]
    for (method, baseline), group in frame.groupby(["method", "baseline"], sort=False):
        cells = []
        for category in categories:
            r = group[group["category"] == category].iloc[0]
            mark = "" if r["resolved"] else " (unresolved)"
            cells.append(f"{r['mean'] * cd_scale:+.2f} [{r['low'] * cd_scale:+.2f}, {r['high'] * cd_scale:+.2f}]{mark}")
        lines.append("| " + " | ".join([DISPLAY_NAMES.get(method, method), DISPLAY_NAMES.get(baseline, baseline),
                                         *cells]) + " |")
    with atomic_open(paths[1], "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return paths


def write_tables(metrics_paths: Sequence[str | Path], methods: Sequence[str], categories: Sequence[str],
                 out_dir: str | Path, cd_scale: float, pd_lap_scale: float, external: Sequence[str] = ()) -> list[Path]:
    """Table 1 (CD-mean and PD-LAP), Table 2 (PD-LAP per homology dimension) and the generation metrics
    (MMD-CD, COV-CD, 1-NNA-CD, ShapeGF's definitions) under ``out_dir``. ``external``: the rows of ``methods``
    scored from another generator's meshes, which the captions name."""
    long = collect(metrics_paths)
    out_dir = Path(out_dir)
    scales = {"cd_mean": cd_scale, "pd_lap": pd_lap_scale, "pd_lap_h0": pd_lap_scale, "pd_lap_h1": pd_lap_scale,
              "pd_lap_h2": pd_lap_scale, "mmd_cd": cd_scale, "cov_cd": 100, "1_nna_cd": 100, "mean_b0": 1,
              "mean_b1": 1, "mean_b2": 1, "blob_fraction": 100, "thick_fraction": 100}
    labels = {"cd_mean": "CD-mean", "pd_lap": "PD-LAP", "pd_lap_h0": "PD-LAP-H0", "pd_lap_h1": "PD-LAP-H1",
              "pd_lap_h2": "PD-LAP-H2", "mmd_cd": "MMD-CD", "cov_cd": "COV-CD (%)", "1_nna_cd": "1-NNA-CD (%)",
              "mean_b0": "mean b0", "mean_b1": "mean b1", "mean_b2": "mean b2", "blob_fraction": "blobs (%)",
              "thick_fraction": "thick (%)"}
    methods = list(methods) + [row for row in CALIBRATION_ROWS if row in set(long["method"])]
    lap_note = (f"PD-LAP ×{pd_lap_scale:g} (mean ± std over z-draws); a method's PD-LAP means something between the "
                "two calibration rows: held-out training shapes against the test shapes (floor) and one fixed blob "
                "(ceiling)")
    if external:
        lap_note += (f"; {', '.join(external)}: scored from another generator's meshes through the ground truth's "
                     "path (docs/external.md), draws of its files in name order, CD-mean n/a without reconstructions")
    if "vecset" in methods:
        lap_note += ("; 3DShape2VecSet: trained here per category (docs/vecset.md), its samples and its "
                     "reconstructions (the test shapes' surface clouds encoded) scored from their meshes")
    tables = [
        ("table1", ["cd_mean", "pd_lap"],
         f"Table 1: CD-mean and PD-LAP (lower is better); CD-mean ×{cd_scale:g} (mean ± std over test shapes), {lap_note}"),
        ("table2", ["pd_lap_h0", "pd_lap_h1", "pd_lap_h2"],
         f"Table 2: PD-LAP per homology dimension (lower is better); {lap_note}"),
        ("generation", ["mmd_cd", "cov_cd", "1_nna_cd", "mean_b0", "mean_b1", "blob_fraction", "thick_fraction"],
         f"Generation (first z-draw against the test shapes): MMD-CD ×{cd_scale:g} (lower is better), "
         "COV-CD in % (higher is better), 1-NNA-CD in % (50% is ideal), for the held-out training shapes the "
         "mean ± std over their draws and for the blob those of as many copies of it; Betti numbers of the samples "
         "of every draw (mean b0, mean b1, blobs: one component, no tunnel, no void), with the training shapes' in "
         "the held-out row; thick: a point more than tau inside (the deepest component born at the clamp, where "
         "eq. 8 has no gradient; n/a in metrics written before it was measured)"),
    ]
    paths: list[Path] = []
    for stem, metrics, title in tables:
        paths += write_table(wide(long, metrics, methods, categories), scales, labels, out_dir / stem, title)
    return paths


def run_tables(job: Any) -> list[Path]:
    """The ``tables`` rule (a :class:`~toposdf.jobs.Job`): Tables 1-2 and the generation table from every
    ``metrics.json`` and ``calibration.json`` (:func:`write_tables`), then each topological method's paired CD
    against its baseline from the ``reconstruction.csv`` files (:func:`write_paired_cd`)."""
    from .stages import optional

    cfg, categories = job.cfg, list(job.cfg.dataset.categories)
    paths = write_tables(list(job.input.metrics) + list(job.input.calibration), rows_of(cfg), categories,
                         Path(job.output.table1[0]).parent, cfg.evaluation.cd_scale, cfg.evaluation.pd_lap_scale,
                         list(optional(cfg, "external") or []))
    # results/{dataset}/{category}/eval/{method}/reconstruction.csv
    reconstructions = {(Path(path).parts[-4], Path(path).parts[-2]): path for path in job.input.reconstructions}
    methods = {method: asdict(block) for method, block in cfg.methods.items()}
    pairs = [*paired_baselines(methods).items(), *representation_pairs(methods, rows_of(cfg))]
    paths += write_paired_cd(reconstructions, pairs, categories, Path(job.output.cd_paired[0]).with_suffix(""),
                             cfg.evaluation.cd_scale)
    log.info("wrote %s", ", ".join(map(str, paths)))
    return paths
