"""The paper's PD-LAP claim over several runs (training seeds, machines): one table instead of one verdict per run.

One run's claims (:mod:`toposdf.claims`) test each pair of a method with topological terms and its baseline on that
run's 10 z-draws: "mean ± std apart". Whether that test passes is partly the run's luck: a training seed moves a
row's PD-LAP by as much as the effect at small scales. Over several runs of the same config the question is the
effect itself, and this module reads it from the runs' ``metrics.json`` files:

- per run and pair: both rows' mean ± std, the difference ``ours - baseline`` and ``apart_by``, the room between
  the two ``mean ± std`` intervals (``(b - b_std) - (m + m_std)``, above 0 where they are apart);
- per pair over the runs: how many runs have ours lower, how many apart, the paired difference over the runs (mean
  and t-interval, :func:`toposdf.metrics.paired_difference`, each run one pair of values), the same relative to the
  baseline, a one-sided sign test of "ours lower", and the runs where Table 2's H0 and H1 columns are lower;
- per category: the runs whose every pair is apart (a one-run claim's unit);
- on request, per run and pair, the difference paired over the run's z-draws (every method decodes the same codes
  in draw ``d``), from the ``draws`` of its ``metrics.json``, or recomputed from its ``generate/`` diagrams where
  an older run has none, and checked against the file's mean and std;
- where a run has ``{category}/eval/training_fit.json``: the fit checks of :mod:`toposdf.claims` over the runs.

The runs are ``results/<dataset>`` folders (or a reference run's ``synthetic/`` folder) holding
``{category}/eval/{method}/metrics.json``; a run that lacks one of a pair's two rows leaves that pair out for that
run. ``tools/seeds_summary.py`` is the command line.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .io import atomic_open, atomic_write_json, json_safe, read_json
from .metrics import paired_difference
from .tables import DISPLAY_NAMES

log = logging.getLogger(__name__)

#: The metrics read from each ``metrics.json`` (their means; ``pd_lap`` with its std over the draws).
READ = ("pd_lap", "pd_lap_h0", "pd_lap_h1", "cd_mean")


def read_runs(runs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per (run, category, method): ``run`` (its position in ``runs``), ``path``, ``train_seed``,
    ``commit`` and ``checkpoint_sha256`` (the metrics' provenance), each of :data:`READ`'s means and
    ``pd_lap_std``. Raises ``ValueError`` for a folder without any ``*/eval/*/metrics.json``."""
    rows = []
    for index, run in enumerate(map(Path, runs)):
        paths = sorted(run.glob("*/eval/*/metrics.json"))
        if not paths:
            raise ValueError(f"{run}: no {{category}}/eval/{{method}}/metrics.json (give a results/<dataset> folder "
                             "of a finished run)")
        for path in paths:
            m = read_json(path)
            if "metrics" not in m or "pd_lap" not in m["metrics"]:
                continue  # a calibration row's file or another layout
            prov = m.get("provenance", {})
            row = {"run": index, "path": str(run), "category": m["category"], "method": m["method"],
                   "train_seed": prov.get("train_seed"), "commit": prov.get("commit"),
                   "checkpoint_sha256": prov.get("checkpoint_sha256")}
            for metric in READ:
                value = m["metrics"].get(metric, {})
                row[metric] = _number(value.get("mean"))
            row["pd_lap_std"] = _number(m["metrics"]["pd_lap"].get("std"))
            rows.append(row)
    return pd.DataFrame(rows)


def unlisted_pairs(runs: Sequence[str | Path], pairs: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Per run, the PD-LAP pairs its ``tables/claims.csv`` checked that ``pairs`` (the config given) lacks: a sign
    that the runs were made with another config, whose pairs the summary would silently leave out. Runs without a
    ``claims.csv`` (a pilot of some jobs) are not checked."""
    found = {}
    for run in map(Path, runs):
        claims = run / "tables" / "claims.csv"
        if not claims.is_file():
            continue
        frame = pd.read_csv(claims)
        checked = frame.loc[frame["check"] == "pd_lap", ["method", "against"]].drop_duplicates()
        missing = [(m, b) for m, b in checked.itertuples(index=False) if pairs.get(m) != b]
        if missing:
            found[str(run)] = missing
    return found


def _number(value) -> float:
    return math.nan if value is None else float(value)


def pair_rows(frame: pd.DataFrame, pairs: dict[str, str]) -> pd.DataFrame:
    """One row per (run, category, method) of ``pairs`` (method -> its baseline) where the run has both rows:
    ``ours``/``ours_std`` and ``baseline``/``baseline_std`` (PD-LAP), ``difference`` (ours - baseline),
    ``apart_by`` (above 0 where mean ± std are apart), ``h0_lower``, ``h1_lower``. A pair whose two checkpoints
    (``checkpoint_sha256``) an earlier run already has (a copied run folder) is left out, with a warning."""
    keyed = frame.set_index(["run", "category", "method"])
    rows, seen = [], {}
    for (run, category), group in frame.groupby(["run", "category"], sort=True):
        present = set(group["method"])
        for method, baseline in pairs.items():
            if method not in present or baseline not in present:
                continue
            m, b = keyed.loc[(run, category, method)], keyed.loc[(run, category, baseline)]
            models = (category, m["checkpoint_sha256"], b["checkpoint_sha256"])
            if None not in models and models in seen:  # a copied folder: the same two models counted once
                log.warning("%s: %s's %s and %s are the models of %s; counted once", m["path"], category, method,
                            baseline, seen[models])
                continue
            seen[models] = m["path"]
            rows.append({"run": run, "path": m["path"], "train_seed": m["train_seed"], "category": category,
                         "method": method, "baseline": baseline, "ours": m["pd_lap"], "ours_std": m["pd_lap_std"],
                         "baseline_value": b["pd_lap"], "baseline_std": b["pd_lap_std"],
                         "difference": m["pd_lap"] - b["pd_lap"],
                         "apart_by": (b["pd_lap"] - b["pd_lap_std"]) - (m["pd_lap"] + m["pd_lap_std"]),
                         "h0_lower": bool(m["pd_lap_h0"] < b["pd_lap_h0"]),
                         "h1_lower": bool(m["pd_lap_h1"] < b["pd_lap_h1"])})
    return pd.DataFrame(rows)


def draw_values(run: str | Path, category: str, method: str, processes: int = 1) -> np.ndarray:
    """``(draws,)`` PD-LAP of each z-draw of ``method`` in the finished run ``run`` (a ``results/<dataset>`` folder
    or a reference's): its ``metrics.json``'s ``pd_lap.draws`` where the run wrote them, else recomputed as the
    evaluate rule does, from ``{category}/generate/{method}/diagrams.npz`` against the test shapes' diagrams
    (``split.json``, ``diagrams/<shard>.npz``). Raises ``ValueError`` where a file is missing or where the values'
    mean and std are not the ``metrics.json``'s to the last bit (the files are not one run's)."""
    from .diagnostics import run_test_diagrams
    from .generation import draws_of
    from .metrics import pd_lap_summary

    root = Path(run) / category
    generated, metrics_path = root / "generate" / method / "diagrams.npz", root / "eval" / method / "metrics.json"
    if not metrics_path.exists():
        raise ValueError(f"{metrics_path}: missing")
    written = read_json(metrics_path)["metrics"]["pd_lap"]
    if "draws" in written:
        values, source = np.asarray(written["draws"], np.float64), metrics_path
    else:
        for path in (generated, root / "split.json"):
            if not path.exists():
                raise ValueError(f"{path}: missing ({metrics_path} has no per-draw values, and recomputing them "
                                 "needs the run's generate/ and diagrams/ folders)")
        values, source = np.asarray(pd_lap_summary(draws_of(generated), run_test_diagrams(root), processes).values,
                                    np.float64), generated
    if values.mean() != written["mean"] or values.std() != written["std"]:
        raise ValueError(f"{source}: its draws give PD-LAP {values.mean()!r} ± {values.std()!r}, "
                         f"{metrics_path} says {written['mean']!r} ± {written['std']!r}")
    return values


def add_paired_draws(pairs: pd.DataFrame, processes: int = 1, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`pair_rows` with the difference paired over the z-draws: every method draws its shapes at the same
    codes (``evaluation.seed``), so draw ``d`` of ours and of its baseline decode the same ``z``. Adds
    ``draws_mean``, ``draws_low``, ``draws_high`` (the paired difference over the draws, :func:`toposdf.metrics.
    paired_difference`) and ``draws_lower`` (the draws where ours is lower) from :func:`draw_values`."""
    cache: dict[tuple, np.ndarray] = {}

    def values(path, category, method):
        if (path, category, method) not in cache:
            cache[(path, category, method)] = draw_values(path, category, method, processes)
        return cache[(path, category, method)]

    out = pairs.copy()
    for column in ("draws_mean", "draws_low", "draws_high", "draws_lower"):
        out[column] = math.nan
    for i, r in pairs.iterrows():
        ours, base = values(r["path"], r["category"], r["method"]), values(r["path"], r["category"], r["baseline"])
        if len(ours) != len(base):
            raise ValueError(f"{r['path']}: {r['method']} has {len(ours)} draws, {r['baseline']} {len(base)}")
        d = paired_difference(ours, base, confidence)
        out.loc[i, ["draws_mean", "draws_low", "draws_high", "draws_lower"]] = (
            d["mean"], d["low"], d["high"], int((ours < base).sum()))
    return out


def sign_test(lower: int, runs: int) -> float:
    """One-sided p-value of ``lower`` of ``runs`` runs having ours below its baseline if either order were as
    likely (a binomial test at 1/2); ``nan`` without runs."""
    if runs == 0:
        return math.nan
    from scipy import stats

    return float(stats.binomtest(lower, runs, 0.5, alternative="greater").pvalue)


def summarize(pairs: pd.DataFrame, confidence: float = 0.95) -> list[dict]:
    """Per (category, method, baseline) over the runs of :func:`pair_rows`: ``runs``, ``train_seeds``,
    ``ours_lower``, ``apart``, ``sign_test_p``, ``difference`` (mean, low, high, n, resolved: the paired difference
    over the runs at ``confidence``), ``relative`` (the same divided by the baseline, per run),
    ``min_apart_by``, ``h0_lower``, ``h1_lower``; with :func:`add_paired_draws`' columns, ``draws_below_zero``:
    the runs whose difference paired over the draws has its interval below 0."""
    out = []
    for (category, method, baseline), g in pairs.groupby(["category", "method", "baseline"], sort=False):
        lower = int((g["difference"] < 0).sum())
        out.append({
            "category": category, "method": method, "baseline": baseline, "runs": len(g),
            "train_seeds": [None if pd.isna(s) else int(s) for s in g["train_seed"]],
            "ours_lower": lower, "apart": int((g["apart_by"] > 0).sum()), "sign_test_p": sign_test(lower, len(g)),
            "difference": paired_difference(g["ours"], g["baseline_value"], confidence),
            "relative": paired_difference(g["ours"] / g["baseline_value"], [1.0] * len(g), confidence),
            "min_apart_by": float(g["apart_by"].min()),
            "h0_lower": int(g["h0_lower"].sum()), "h1_lower": int(g["h1_lower"].sum())}
            | ({"draws_below_zero": int((g["draws_high"] < 0).sum())} if "draws_high" in g else {}))
    return out


def every_pair_apart(pairs: pd.DataFrame, methods: Sequence[str]) -> dict[str, dict]:
    """Per category: ``runs`` having every one of ``methods``' pairs and ``all_apart``, those of them where each
    pair's mean ± std are apart (one run's claim passing for the whole category)."""
    out = {}
    for category, g in pairs.groupby("category", sort=False):
        complete = [r for r, rows in g.groupby("run") if set(methods) <= set(rows["method"])]
        apart = [r for r in complete if (g[(g["run"] == r) & g["method"].isin(methods)]["apart_by"] > 0).all()]
        out[category] = {"runs": len(complete), "all_apart": len(apart)}
    return out


def fit_summary(runs: Sequence[str | Path], pairs: dict[str, str]) -> list[dict]:
    """The fit checks of :func:`toposdf.claims.fit_checks` over the runs that have ``{category}/eval/
    training_fit.json``: per (category, check, method), ``runs``, ``holds`` (how many of them pass) and the value's
    ``min`` and ``max`` (for ``fit_kept``: the method's IoU minus its baseline's). A row whose checkpoint an earlier
    run already has is counted once."""
    from .claims import fit_checks

    checks, seen = {}, set()
    for run in map(Path, runs):
        for path in sorted(run.glob("*/eval/training_fit.json")):
            fit = read_json(path)
            rows = []
            for row in fit["rows"]:
                sha = row.get("provenance", {}).get("checkpoint_sha256")
                if sha is None or (fit["category"], sha) not in seen:
                    rows.append(row)
                    seen.add((fit["category"], sha))
            compared = [r for r in rows if r["method"] in pairs or r["method"] in pairs.values()]
            for check in fit_checks(fit["category"], compared, pairs):
                checks.setdefault((check["category"], check["check"], check["method"]), []).append(check)
    values = {key: [x["value"] - x["reference"] if key[1] == "fit_kept" else x["value"] for x in v]
              for key, v in checks.items()}
    return [{"category": c, "check": k, "method": m, "runs": len(v), "holds": sum(bool(x["holds"]) for x in v),
             "min": min(values[(c, k, m)]), "max": max(values[(c, k, m)])} for (c, k, m), v in checks.items()]


def _name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


def summary_markdown(summary: list[dict], categories: dict[str, dict], pairs: pd.DataFrame, scale: float,
                     confidence: float = 0.95, fits: Sequence[dict] = ()) -> str:
    """The summary over runs (one line per pair), the fit checks over runs (:func:`fit_summary`), each category's
    runs with every pair apart, and the per-run numbers (PD-LAP ×``scale``); the difference paired over the draws
    where ``pairs`` has :func:`add_paired_draws`' columns."""
    s, level, draws = scale, f"{confidence:.0%}", "draws_high" in pairs
    lines = [f"**PD-LAP over several runs** (×{s:g}; difference = ours - baseline, each run one pair of values, "
             f"{level} t-interval over the runs; apart: mean ± std over the run's draws do not overlap"
             + ("; paired over draws: the runs whose difference paired over their z-draws has its interval below 0"
                if draws else "") + ")", "",
             f"| category | method | against | runs | ours lower | sign test p | apart | difference [{level}] | "
             "relative | H0 lower | H1 lower |" + (" paired over draws |" if draws else ""),
             "|" + " --- |" * (12 if draws else 11)]
    for r in summary:
        d, rel = r["difference"], r["relative"]
        lines.append(f"| {r['category']} | {_name(r['method'])} | {_name(r['baseline'])} | {r['runs']} | "
                     f"{r['ours_lower']} | {r['sign_test_p']:.2g} | {r['apart']} | {d['mean'] * s:+.2f} "
                     f"[{d['low'] * s:+.2f}, {d['high'] * s:+.2f}] | {rel['mean']:+.0%} | {r['h0_lower']} | "
                     f"{r['h1_lower']} |" + (f" {r['draws_below_zero']} |" if draws else ""))
    lines += _fit_markdown(fits)
    lines += ["", "Runs with every pair apart: " + "; ".join(
        f"{c} {v['all_apart']} of {v['runs']}" for c, v in categories.items()), ""]
    return "\n".join(lines + _per_run_markdown(pairs, s, level, draws)) + "\n"


def _per_run_markdown(pairs: pd.DataFrame, s: float, level: str, draws: bool) -> list[str]:
    lines = ["| run | train seed | category | method | baseline | ours | apart by |"
             + (f" paired over draws [{level}] | draws lower |" if draws else ""), "|" + " --- |" * (9 if draws else 7)]
    for r in pairs.itertuples():
        seed = "" if pd.isna(r.train_seed) else int(r.train_seed)
        line = (f"| {r.path} | {seed} | {r.category} | {_name(r.method)} | "
                f"{r.baseline_value * s:.2f} ± {r.baseline_std * s:.2f} | "
                f"{r.ours * s:.2f} ± {r.ours_std * s:.2f} | {r.apart_by * s:+.2f} |")
        if draws:
            line += (f" {r.draws_mean * s:+.2f} [{r.draws_low * s:+.2f}, {r.draws_high * s:+.2f}] | "
                     f"{r.draws_lower:.0f} |")
        lines.append(line)
    return lines


def _fit_markdown(fits: Sequence[dict]) -> list[str]:
    if not fits:
        return []
    from .claims import TITLES

    lines = ["", "**Whether the generators fit, over the runs with a `training_fit.json`** (toposdf.claims' checks; "
             "min and max of the value, for the IoU kept: the method's IoU minus its baseline's)",
             "", "| category | check | method | runs | holds | min | max |", "|" + " --- |" * 7]
    for r in fits:
        lines.append(f"| {r['category']} | {TITLES[r['check']]} | {_name(r['method'])} | {r['runs']} | "
                     f"{r['holds']} | {r['min']:.3f} | {r['max']:.3f} |")
    return lines


def seeds_summary(runs: Sequence[str | Path], pairs: dict[str, str], scale: float = 1000.0,
                  confidence: float = 0.95, out: str | Path | None = None, markdown: str | Path | None = None,
                  paired_draws: bool = False, processes: int = 1) -> tuple[dict, str]:
    """Read ``runs`` (:func:`read_runs`), pair them (``pairs``: method -> baseline, e.g.
    :func:`toposdf.claims.claim_pairs` of the config's methods) and summarize, with the difference paired over each
    run's draws if ``paired_draws`` (:func:`add_paired_draws`, ``processes`` for its PD-LAP); write the JSON to
    ``out`` and the markdown to ``markdown`` where given. Returns the JSON's dict and the markdown. Raises
    ``ValueError`` when no run has a pair."""
    table = pair_rows(read_runs(runs), pairs)
    if table.empty:
        raise ValueError(f"no run holds both rows of any pair {pairs}; are these finished runs of the same config?")
    if paired_draws:
        table = add_paired_draws(table, processes, confidence)
    summary = summarize(table, confidence)
    categories = every_pair_apart(table, list(pairs))
    fits = fit_summary(runs, pairs)
    result = json_safe({"runs": [str(r) for r in runs], "pairs": pairs, "confidence": confidence,
                        "summary": summary, "every_pair_apart": categories, "fit": fits,
                        "per_run": table.to_dict(orient="records")})
    if out is not None:
        atomic_write_json(out, result)
    text = summary_markdown(summary, categories, table, scale, confidence, fits)
    if markdown is not None:
        with atomic_open(markdown, "w") as fh:
            fh.write(text)
    return result, text
