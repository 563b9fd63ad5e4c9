"""Which of the paper's claims hold in a run, and whether its generators fit: one table read off the run's outputs.

Every check compares numbers that the run wrote (Tables 1 and 2, the paired CD-mean difference, the generation
metrics, ``training_fit.json`` and Fig. 3's values) and states them beside its verdict, so that a reader of a run
sees at once which orderings hold and by how much, without copying numbers by hand. Nothing here changes a number.

The paper's claims, for each method with topological terms against its baseline (the method without them that
shares its geometric regularizer, :func:`toposdf.tables.paired_baselines`):

- ``pd_lap``: PD-LAP lower, with mean ± std over the z-draws apart (Table 1).
- ``gap_closed``: the share of the way from the baseline's PD-LAP to the held-out training shapes' (the floor) that
  the method covers; the target is :data:`GAP_TARGET`.
- ``pd_lap_h0``, ``pd_lap_h1``: Table 2's columns lower (means).
- ``cd_mean``: CD-mean not worse, read from the paired per-shape difference: its 95% interval reaches 0 or below.
- ``ablation``: No PD Smoothness (``lambda_smooth: 0``) and No PD Training (``from_scratch``) worse on PD-LAP than
  the full method of the same geometry (Sec. 6.3).
- ``fig3``: the PD generator's diagrams nearer the training diagrams than the implicit generator's (Fig. 3).
- ``vecset_cd``, ``vecset_pd_lap`` (where the run has the 3DShape2VecSet row), against each full method: a stronger
  representation with a better distribution model closes the gap in CD-mean but not in PD-LAP (Sec. 6.2). Its
  CD-mean within the paired difference's interval of ours or better (the interval of CD(3DShape2VecSet) - CD(ours)
  reaches 0 or below), and its PD-LAP worse than ours, mean ± std apart.

Whether the generators fit (``training_fit.json``; the thresholds are :data:`FIT`):

- ``fit_iou``: a baseline decodes its training shapes at IoU >= 0.85 and above the nearest other training shape.
- ``fit_retrieval``: a baseline's decoded shape is nearest its own ground truth for >= 95% of the shapes without a
  near-twin; ``fit_volume``: its volume ratio within 1 ± 0.1.
- ``fit_kept``: a method with topological terms decodes within 0.03 IoU of its baseline.
- ``prior_std``: the training codes' aggregate std within [0.8, 1.2], so that z ~ N(0, I) samples shapes.

And whether the samples read like the test set, against the held-out training shapes' row (generation metrics):

- ``blobs``: the share of one-piece genus-0 samples at most 10 points above the held-out shapes'.
- ``cov_cd``: COV-CD within 15 points of the held-out row; ``nna_cd``: 1-NNA-CD within 20 points of it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .io import atomic_open, read_json
from .layout import CALIBRATION_ROWS
from .tables import (DISPLAY_NAMES, PAPER_ROWS, collect, full_method, paired_baselines, preferred_row,
                     representation_pairs)

log = logging.getLogger(__name__)

#: The share of the gap to the floor that a method with topological terms should close on PD-LAP.
GAP_TARGET = 0.5
#: Thresholds of the fit and sample checks.
FIT = {"iou": 0.85, "retrieval": 0.95, "volume": 0.1, "kept": 0.03, "std": (0.8, 1.2), "blobs": 0.10,
       "cov": 0.15, "nna": 0.20}
COLUMNS = ["category", "check", "method", "against", "value", "reference", "holds", "detail"]


def _name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


def _ablation_references(methods: dict[str, dict]) -> dict[str, str]:
    """Each ablation (``lambda_smooth`` 0, or ``from_scratch``) -> the full method of its geometry (learned
    topology, PD data, a smoothness weight, pretrained): the paper's row where there are several, else the first."""
    refs = {}
    for name, block in methods.items():
        if block.get("topology") != "learned" or full_method(block):
            continue
        candidates = [m for m, b in methods.items() if full_method(b) and b["geometry"] == block["geometry"]]
        if candidates:
            refs[name] = preferred_row(candidates)
    return refs


def claim_pairs(methods: dict[str, dict]) -> dict[str, str]:
    """Each full method with topological terms -> its baseline (:func:`toposdf.tables.paired_baselines` without the
    ablations, which are compared with the full method instead): the pairs of the ``pd_lap`` claim."""
    ablations = _ablation_references(methods)
    return {m: b for m, b in paired_baselines(methods).items() if m not in ablations}


def _row(category, check, method, against, value, reference, holds, detail) -> dict:
    """One check; ``holds`` None (n/a) where its value or reference is missing (NaN: a row not run, a paired
    difference over one test shape, a baseline already at the floor), not a claim that failed."""
    missing = any(isinstance(x, float) and math.isnan(x) for x in (value, reference))
    return dict(zip(COLUMNS, (category, check, method, against, value, reference, None if missing else bool(holds),
                              detail)))


#: What a check may be compared with besides a row of the tables.
NOT_ROWS = ("", "implicit generator", "nearest other shape")


def _paper_check(method: str, against: str) -> bool:
    """Whether a check is one of the paper's: its row, and the row it is compared with, are the paper's (or a
    calibration row, the implicit generator, nothing)."""
    return method in PAPER_ROWS and (against in PAPER_ROWS or against in CALIBRATION_ROWS or against in NOT_ROWS)


def check_claims(long: pd.DataFrame, cd_paired: pd.DataFrame, fits: dict[str, dict], fig3: dict[str, dict],
                 methods: dict[str, dict], categories: Sequence[str], pd_lap_scale: float,
                 cd_scale: float) -> pd.DataFrame:
    """Every check of the module docstring, one row each: ``category``, ``check``, ``method``, ``against`` (the
    method or row it is compared with), ``value`` and ``reference`` (raw numbers), ``holds`` and a readable
    ``detail`` (scaled as the tables are). ``long``: :func:`toposdf.tables.collect` of the run's metrics and
    calibration files; ``cd_paired``: ``tables/cd_paired.csv``; ``fits``: category -> ``training_fit.json``;
    ``fig3``: category -> ``fig3_pd_matrices.json``; ``methods``: the config's methods with defaults filled in."""
    stats = long.set_index(["category", "method", "metric"])[["mean", "std"]]

    def get(category, method, metric):
        key = (category, method, metric)
        return tuple(stats.loc[key]) if key in stats.index else (math.nan, math.nan)

    ablations = _ablation_references(methods)
    pairs = claim_pairs(methods)
    compared = [m for m in methods if m not in ablations]  # the baselines and the full methods
    rows_present = set(long["method"])
    representation = representation_pairs(methods, rows_present)
    sampled = compared + (["vecset"] if "vecset" in rows_present else [])  # its samples against the same rows
    rows = []
    for category in categories:
        floor, _ = get(category, "heldout_training", "pd_lap")
        for method, baseline in pairs.items():
            (m, ms), (b, bs) = get(category, method, "pd_lap"), get(category, baseline, "pd_lap")
            s = pd_lap_scale
            overlap = (m + ms) - (b - bs)  # below 0: the intervals are apart
            rows.append(_row(category, "pd_lap", method, baseline, m, b, overlap < 0,
                             f"{m * s:.2f} ± {ms * s:.2f} against {b * s:.2f} ± {bs * s:.2f}"
                             + ("" if overlap < 0 else f" (overlapping by {overlap * s:.2f})")))
            gap = (b - m) / (b - floor) if b > floor else math.nan
            rows.append(_row(category, "gap_closed", method, baseline, gap, GAP_TARGET, gap >= GAP_TARGET,
                             f"{gap:.0%} of the way from {b * s:.2f} to the floor {floor * s:.2f}"))
            for dim in ("h0", "h1"):
                (mh, _), (bh, _) = get(category, method, f"pd_lap_{dim}"), get(category, baseline, f"pd_lap_{dim}")
                rows.append(_row(category, f"pd_lap_{dim}", method, baseline, mh, bh, mh < bh,
                                 f"{bh * s:.2f} -> {mh * s:.2f}"))
            cd = cd_paired[(cd_paired["category"] == category) & (cd_paired["method"] == method)]
            if len(cd):
                r = cd.iloc[0]
                rows.append(_row(category, "cd_mean", method, baseline, r["mean"], 0.0, r["low"] <= 0,
                                 f"CD(method) - CD(baseline) {r['mean'] * cd_scale:+.2f} "
                                 f"[{r['low'] * cd_scale:+.2f}, {r['high'] * cd_scale:+.2f}]"))
        for ablation, full in ablations.items():
            (a, _), (f, _) = get(category, ablation, "pd_lap"), get(category, full, "pd_lap")
            rows.append(_row(category, "ablation", ablation, full, a, f, a > f,
                             f"{a * pd_lap_scale:.2f} against {f * pd_lap_scale:.2f}"))
        if category in fig3:
            g, i = fig3[category]["pd_lap_training_vs_pd_generator"], fig3[category]["pd_lap_training_vs_synthetic"]
            rows.append(_row(category, "fig3", fig3[category]["method"], "implicit generator", g, i, g < i,
                             f"PD generator {g * pd_lap_scale:.2f} against the implicit generator's "
                             f"{i * pd_lap_scale:.2f}"))
        rows += _representation_rows(category, get, cd_paired, representation, pd_lap_scale, cd_scale)
        fit_rows = [r for r in fits.get(category, {}).get("rows", []) if r["method"] in compared]
        rows += fit_checks(category, fit_rows, pairs)
        rows += _sample_rows(category, get, sampled)
    return pd.DataFrame(rows, columns=COLUMNS)


def _representation_rows(category: str, get, cd_paired: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                         pd_lap_scale: float, cd_scale: float) -> list[dict]:
    """Sec. 6.2's two checks of each ``(vecset, method)`` pair (module docstring)."""
    rows = []
    for other, method in pairs:
        cd = cd_paired[(cd_paired["category"] == category) & (cd_paired["method"] == other)
                       & (cd_paired["baseline"] == method)]
        if len(cd):
            r = cd.iloc[0]
            rows.append(_row(category, "vecset_cd", other, method, r["mean"], 0.0, r["low"] <= 0,
                             f"CD({_name(other)}) - CD({_name(method)}) {r['mean'] * cd_scale:+.2f} "
                             f"[{r['low'] * cd_scale:+.2f}, {r['high'] * cd_scale:+.2f}]"))
        (v, vs), (m, ms) = get(category, other, "pd_lap"), get(category, method, "pd_lap")
        apart = (m + ms) < (v - vs)
        rows.append(_row(category, "vecset_pd_lap", other, method, v, m, apart,
                         f"{v * pd_lap_scale:.2f} ± {vs * pd_lap_scale:.2f} against {m * pd_lap_scale:.2f} ± "
                         f"{ms * pd_lap_scale:.2f}" + ("" if apart or v <= m else " (overlapping)")))
    return rows


def fit_checks(category: str, fit_rows: list[dict], pairs: dict[str, str]) -> list[dict]:
    """The fit checks of one category (``fit_iou``, ``fit_retrieval``, ``fit_volume`` for each baseline,
    ``fit_kept`` for each method of ``pairs``, ``prior_std`` for all) from ``training_fit.json``'s ``rows``."""
    by_method = {r["method"]: r for r in fit_rows}
    rows = []
    for method, r in by_method.items():
        if method not in pairs:  # a baseline (or a method without one): the fit gates
            iou, other = r["decoded_iou"], r["nearest_other_iou"]
            rows.append(_row(category, "fit_iou", method, "nearest other shape", iou, other,
                             iou >= FIT["iou"] and iou > other,
                             f"IoU {iou:.3f}; the nearest other training shape {other:.3f}; test shapes' "
                             f"reconstructions {r.get('test_decoded_iou', math.nan):.3f}"))
            ret = r["retrieval_no_twin"]
            rows.append(_row(category, "fit_retrieval", method, "", ret, FIT["retrieval"], ret >= FIT["retrieval"],
                             f"{ret:.0%} of {r['shapes_no_twin']} shapes without a near-twin ({r['retrieval']:.0%} "
                             f"of all {r['training_shapes']})"))
            vol = r["volume_ratio"]
            rows.append(_row(category, "fit_volume", method, "", vol, 1.0, abs(vol - 1) <= FIT["volume"],
                             f"volume ratio {vol:.3f}"))
        elif pairs[method] in by_method:
            base = by_method[pairs[method]]["decoded_iou"]
            iou = r["decoded_iou"]
            rows.append(_row(category, "fit_kept", method, pairs[method], iou, base, iou >= base - FIT["kept"],
                             f"IoU {iou:.3f} against {base:.3f} ({iou - base:+.3f}); test shapes' reconstructions "
                             f"{r.get('test_decoded_iou', math.nan):.3f}"))
        std = r["latent_aggregate_std"]
        lo, hi = FIT["std"]
        rows.append(_row(category, "prior_std", method, "", std, 1.0, lo <= std <= hi, f"aggregate std {std:.3f}"))
    return rows


def _sample_rows(category: str, get, methods: Sequence[str]) -> list[dict]:
    (blob_ref, _), (cov_ref, _), (nna_ref, _) = (get(category, "heldout_training", k)
                                                for k in ("blob_fraction", "cov_cd", "1_nna_cd"))
    rows = []
    for method in methods:
        (blob, _), (cov, _), (nna, _) = (get(category, method, k) for k in ("blob_fraction", "cov_cd", "1_nna_cd"))
        rows.append(_row(category, "blobs", method, "heldout_training", blob, blob_ref, blob <= blob_ref + FIT["blobs"],
                         f"{blob:.0%} against {blob_ref:.0%}"))
        rows.append(_row(category, "cov_cd", method, "heldout_training", cov, cov_ref, cov >= cov_ref - FIT["cov"],
                         f"{cov:.0%} against {cov_ref:.0%}"))
        rows.append(_row(category, "nna_cd", method, "heldout_training", nna, nna_ref, nna <= nna_ref + FIT["nna"],
                         f"{nna:.0%} against {nna_ref:.0%}"))
    return rows


TITLES = {
    "pd_lap": "PD-LAP below the baseline, mean ± std apart (Table 1)",
    "gap_closed": f"share of the gap to the floor closed (target {GAP_TARGET:.0%})",
    "pd_lap_h0": "Table 2's H0 below the baseline", "pd_lap_h1": "Table 2's H1 below the baseline",
    "cd_mean": "CD-mean not worse than the baseline (paired difference, 95% interval)",
    "ablation": "the ablation worse than the full method on PD-LAP (Sec. 6.3)",
    "fig3": "Fig. 3: the PD generator nearer the training diagrams than the implicit generator",
    "vecset_cd": "Sec. 6.2: 3DShape2VecSet's CD-mean as good as ours (paired difference, 95% interval reaches 0)",
    "vecset_pd_lap": "Sec. 6.2: 3DShape2VecSet's PD-LAP worse than ours, mean ± std apart",
    "fit_iou": f"training shapes decoded at IoU >= {FIT['iou']} and above the nearest other shape",
    "fit_retrieval": f"retrieval >= {FIT['retrieval']:.0%} without near-twins",
    "fit_volume": f"volume ratio within 1 ± {FIT['volume']}", "fit_kept": f"within {FIT['kept']} IoU of the baseline",
    "prior_std": f"codes' aggregate std within {list(FIT['std'])}",
    "blobs": f"blobs at most {FIT['blobs'] * 100:g} points above the held-out shapes'",
    "cov_cd": f"COV-CD within {FIT['cov'] * 100:g} points of the held-out shapes'",
    "nna_cd": f"1-NNA-CD within {FIT['nna'] * 100:g} points of the held-out shapes'",
}


def claims_markdown(frame: pd.DataFrame, pd_lap_scale: float, cd_scale: float) -> str:
    """One section per category, one line per check: the verdict, the method, what it is compared with, the
    numbers (PD-LAP ×``pd_lap_scale``, CD ×``cd_scale``)."""
    lines = [f"**Which of the paper's claims hold in this run, and whether its generators fit** (PD-LAP "
             f"×{pd_lap_scale:g}, CD ×{cd_scale:g}; `claims.csv` holds the raw numbers; `toposdf.claims` defines "
             "each check; the ablations are compared with the full method only)", ""]
    for category, group in frame.groupby("category", sort=False):
        paper = [_paper_check(r.method, r.against if isinstance(r.against, str) else "") for r in group.itertuples()]
        for title, part in ((f"### {category}", group[paper]),
                            (f"#### {category}, rows that are not the paper's", group[[not p for p in paper]])):
            if part.empty and title.startswith("####"):
                continue
            unresolved = int(part["holds"].isna().sum())
            lines += [f"{title}: {int(part['holds'].eq(True).sum())} of {len(part)} checks hold"
                      + (f" ({unresolved} n/a: a number missing)" if unresolved else ""), "",
                      "| check | method | against | holds | numbers |", "| --- | --- | --- | --- | --- |"]
            for r in part.itertuples():
                against = _name(r.against) if isinstance(r.against, str) and r.against else ""
                verdict = "n/a" if r.holds is None or r.holds != r.holds else "yes" if r.holds else "**no**"
                lines.append(f"| {TITLES[r.check]} | {_name(r.method)} | {against} | {verdict} | {r.detail} |")
            lines.append("")
    return "\n".join(lines)


def run_claims(job: Any) -> list[Path]:
    """The ``claims`` rule (a :class:`~toposdf.jobs.Job`): read the run's metrics, calibration rows, paired CD
    table, training fits and Fig. 3 summaries, run :func:`check_claims` and write ``claims.csv`` and ``claims.md``."""
    cfg = job.cfg
    fits = {(d := read_json(p))["category"]: d for p in job.input.fits}
    fig3 = {(d := read_json(p))["category"]: d for p in job.input.fig3}
    scales = cfg.evaluation.pd_lap_scale, cfg.evaluation.cd_scale
    frame = check_claims(collect(list(job.input.metrics) + list(job.input.calibration)),
                         pd.read_csv(job.input.cd_paired), fits, fig3,
                         {method: asdict(block) for method, block in cfg.methods.items()},
                         list(cfg.dataset.categories), *scales)
    stem = Path(job.output.claims[0]).with_suffix("")
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md")]
    with atomic_open(paths[0], "w") as fh:
        frame.to_csv(fh, index=False)
    with atomic_open(paths[1], "w") as fh:
        fh.write(claims_markdown(frame, *scales))
    log.info("wrote %s", ", ".join(map(str, paths)))
    return paths
