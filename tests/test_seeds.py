"""The PD-LAP claim over several runs (toposdf.seeds, tools/seeds_summary.py), on hand-made metrics files."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toposdf.claims import claim_pairs
from toposdf.metrics import pd_lap_summary
from toposdf.seeds import (add_paired_draws, draw_values, every_pair_apart, pair_rows, read_runs, seeds_summary,
                           sign_test, unlisted_pairs)
from toposdf.topology import pd_lap, save_diagrams

ROOT = Path(__file__).resolve().parents[1]
PAIRS = {"ours_deepsdf": "deepsdf_vad", "ours_deepsdf_se": "deepsdf_se_vad"}


def _write(run: Path, category: str, method: str, pd_lap: float, std: float, h0: float, h1: float, seed: int,
           sha: str | None = None) -> None:
    path = run / category / "eval" / method / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {"pd_lap": {"mean": pd_lap, "std": std}, "pd_lap_h0": {"mean": h0, "std": 0.0},
               "pd_lap_h1": {"mean": h1, "std": 0.0}, "cd_mean": {"mean": 0.01, "std": None}}
    path.write_text(json.dumps({"category": category, "method": method, "metrics": metrics,
                                "provenance": {"train_seed": seed, "commit": "abc",
                                               "checkpoint_sha256": sha or f"{run}-{category}-{method}"}}))


# (baseline, its std, ours, its std) per run and pair, and Table 2's columns: ours' H1 lower in run 0 only
RUNS = {
    0: {"ours_deepsdf": (12.0, 0.5, 9.0, 0.5), "ours_deepsdf_se": (12.0, 1.0, 10.0, 1.0)},   # apart by 2.0, 0.0
    1: {"ours_deepsdf": (11.0, 1.0, 10.0, 0.5), "ours_deepsdf_se": (11.5, 0.5, 9.5, 0.5)},   # -0.5, +1.0
    2: {"ours_deepsdf": (10.0, 0.5, 10.5, 0.5), "ours_deepsdf_se": (13.0, 0.5, 9.0, 0.5)},   # ours higher; +3.0
}


@pytest.fixture
def runs(tmp_path):
    paths = []
    for seed, pairs in RUNS.items():
        run = tmp_path / f"seed{seed}" / "results" / "synthetic"
        for method, (b, bs, m, ms) in pairs.items():
            _write(run, "table", PAIRS[method], b / 1e3, bs / 1e3, 0.004, 0.007, seed)
            _write(run, "table", method, m / 1e3, ms / 1e3, 0.002, 0.006 if seed == 0 else 0.008, seed)
        paths.append(run)
    return paths


def test_pair_rows_apart_by_and_table2(runs):
    table = pair_rows(read_runs(runs), PAIRS)
    assert len(table) == 6
    apart = {(r.train_seed, r.method): round(r.apart_by * 1e3, 6) for r in table.itertuples()}
    assert apart == {(0, "ours_deepsdf"): 2.0, (0, "ours_deepsdf_se"): 0.0, (1, "ours_deepsdf"): -0.5,
                     (1, "ours_deepsdf_se"): 1.0, (2, "ours_deepsdf"): -1.5, (2, "ours_deepsdf_se"): 3.0}
    assert table["h0_lower"].all()
    assert table.groupby("train_seed")["h1_lower"].all().to_dict() == {0: True, 1: False, 2: False}


def test_summary_counts_interval_and_sign_test(runs, tmp_path):
    result, _ = seeds_summary(runs, PAIRS, out=tmp_path / "s.json", markdown=tmp_path / "s.md")
    eik = next(r for r in result["summary"] if r["method"] == "ours_deepsdf")
    assert (eik["runs"], eik["ours_lower"], eik["apart"], eik["h1_lower"]) == (3, 2, 1, 1)
    assert eik["train_seeds"] == [0, 1, 2]
    diffs = [-3.0, -1.0, 0.5]  # ours - baseline, x1e3
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2)
    d = eik["difference"]
    assert d["mean"] * 1e3 == pytest.approx(mean)
    assert (d["low"] * 1e3, d["high"] * 1e3) == pytest.approx((mean - half, mean + half))
    assert d["resolved"] == 0.0
    assert eik["sign_test_p"] == pytest.approx(0.5)  # P(X >= 2), X ~ B(3, 1/2)
    assert eik["min_apart_by"] * 1e3 == pytest.approx(-1.5)
    se = next(r for r in result["summary"] if r["method"] == "ours_deepsdf_se")
    assert (se["ours_lower"], se["apart"], se["sign_test_p"]) == (3, 2, pytest.approx(0.125))
    # a pair exactly touching (apart_by 0) is not apart; runs with both pairs apart: none
    assert result["every_pair_apart"] == {"table": {"runs": 3, "all_apart": 0}}
    assert json.loads((tmp_path / "s.json").read_text())["summary"][0]["runs"] == 3
    md = (tmp_path / "s.md").read_text()
    assert "| table | Ours-DeepSDF | DeepSDF-VAD | 3 | 2 | 0.5 | 1 |" in md
    assert "table 0 of 3" in md


def test_copied_run_counted_once_and_missing_rows_skipped(runs, tmp_path):
    copy = tmp_path / "copy" / "results" / "synthetic"
    for method, baseline in PAIRS.items():  # seed 0's models again, under another folder
        for name in (method, baseline):
            src = json.loads((runs[0] / "table" / "eval" / name / "metrics.json").read_text())
            _write(copy, "table", name, src["metrics"]["pd_lap"]["mean"], src["metrics"]["pd_lap"]["std"], 0.004,
                   0.007, 0, sha=src["provenance"]["checkpoint_sha256"])
    (runs[2] / "table" / "eval" / "deepsdf_se_vad" / "metrics.json").unlink()
    table = pair_rows(read_runs([*runs, copy]), PAIRS)
    assert len(table) == 5  # the copy's two pairs dropped, run 2's StEik pair has no baseline
    assert every_pair_apart(table, list(PAIRS)) == {"table": {"runs": 2, "all_apart": 0}}


def _fit(method: str, iou: float, sha: str) -> dict:
    return {"method": method, "decoded_iou": iou, "nearest_other_iou": 0.72, "retrieval": 0.9,
            "retrieval_no_twin": 0.96, "shapes_no_twin": 48, "training_shapes": 64, "volume_ratio": 1.04,
            "latent_aggregate_std": 1.0,
            "provenance": {"checkpoint_sha256": sha}}


def test_fit_checks_over_runs(runs, tmp_path):
    ious = {0: (0.87, 0.86), 1: (0.86, 0.82), 2: (0.84, 0.83)}  # (DeepSDF-VAD, Ours-DeepSDF) per run
    for seed, (base, ours) in ious.items():
        rows = [_fit("deepsdf_vad", base, f"b{seed}"), _fit("ours_deepsdf", ours, f"o{seed}"),
                _fit("no_pd_training", 0.5, f"n{seed}")]
        (runs[seed] / "table" / "eval" / "training_fit.json").write_text(json.dumps({"category": "table",
                                                                                     "rows": rows}))
    result, md = seeds_summary(runs, PAIRS)
    fits = {(r["check"], r["method"]): r for r in result["fit"]}
    assert ("fit_iou", "no_pd_training") not in fits  # only the pairs' methods
    iou, kept = fits[("fit_iou", "deepsdf_vad")], fits[("fit_kept", "ours_deepsdf")]
    assert (iou["runs"], iou["holds"], iou["min"], iou["max"]) == (3, 2, 0.84, 0.87)
    assert (kept["runs"], kept["holds"]) == (3, 2)  # run 1: 0.04 below its baseline
    assert (kept["min"], kept["max"]) == pytest.approx((-0.04, -0.01))
    assert fits[("fit_retrieval", "deepsdf_vad")]["holds"] == 3
    assert "| table | within 0.03 IoU of the baseline | Ours-DeepSDF | 3 | 2 | -0.040 | -0.010 |" in md


def test_errors_name_the_problem(tmp_path, runs):
    with pytest.raises(ValueError, match="no {category}/eval/{method}/metrics.json"):
        read_runs([tmp_path / "nothing"])
    with pytest.raises(ValueError, match="no run holds both rows"):
        seeds_summary(runs, {"ours_x": "baseline_x"})


def test_sign_test_values():
    assert sign_test(10, 10) == pytest.approx(1 / 1024)
    assert sign_test(0, 4) == pytest.approx(1.0)
    assert math.isnan(sign_test(0, 0))


def test_claim_pairs_are_the_configs_full_methods():
    methods = {"deepsdf_vad": {"geometry": "eikonal", "topology": "none"},
               "deepsdf_se_vad": {"geometry": "steik", "topology": "none"},
               "ours_deepsdf": {"geometry": "eikonal", "topology": "learned", "lambda_pd": 1.0,
                                "lambda_smooth": "auto", "from_scratch": False},
               "ours_deepsdf_se": {"geometry": "steik", "topology": "learned", "lambda_pd": 1.0,
                                   "lambda_smooth": "auto", "from_scratch": False},
               "no_pd_smoothness": {"geometry": "steik", "topology": "learned", "lambda_pd": 1.0,
                                    "lambda_smooth": 0.0, "from_scratch": False}}
    assert claim_pairs(methods) == PAIRS


def test_command_line(runs, tmp_path):
    out = tmp_path / "cli.json"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "seeds_summary.py"), *map(str, runs),
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "Runs with every pair apart: table 0 of 3" in done.stdout
    assert {r["method"] for r in json.loads(out.read_text())["summary"]} == set(PAIRS)
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "seeds_summary.py"), str(tmp_path / "none")],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "metrics.json" in bad.stderr


def test_pairs_a_run_checked_that_the_config_lacks_are_named(runs):
    """A run made with another config (the tiny preset's prior row, say) checked pairs that the config given does
    not have: the tool says so on stderr instead of leaving them out in silence."""
    rows = [("table", "pd_lap", "ours_deepsdf", "deepsdf_vad"), ("table", "pd_lap", "ours_prior", "deepsdf_vad"),
            ("table", "cd_mean", "ours_other", "deepsdf_vad")]
    (runs[0] / "tables").mkdir()
    pd.DataFrame(rows, columns=["category", "check", "method", "against"]).to_csv(runs[0] / "tables" / "claims.csv")
    assert unlisted_pairs(runs, PAIRS) == {str(runs[0]): [("ours_prior", "deepsdf_vad")]}
    assert unlisted_pairs(runs, PAIRS | {"ours_prior": "deepsdf_vad"}) == {}
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "seeds_summary.py"), *map(str, runs)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "ours_prior against deepsdf_vad, which the config" in done.stderr


def _shape(rng: np.random.Generator, spurious: float) -> list[np.ndarray]:
    """[PD0, PD1, PD2]: one essential-like component, one tunnel, and a spurious piece of persistence ``spurious``."""
    b = rng.uniform(-0.05, 0.0)
    pd0 = np.array([[b, 0.08]] + ([[0.01, 0.01 + spurious]] if spurious else []), np.float32)
    pd1 = np.array([[rng.uniform(-0.02, 0.0), rng.uniform(0.02, 0.04)]], np.float32)
    return [pd0, pd1, np.zeros((0, 2), np.float32)]


def _run_with_draws(root: Path, draws: int = 4, n: int = 3) -> Path:
    """A run's table folder: 3 test shapes' diagrams, a baseline whose draws carry spurious pieces and ours whose
    draws carry smaller ones, at the same draw seeds, and metrics.json written from their PD-LAP."""
    run = root / "results" / "synthetic"
    category = run / "table"
    category.mkdir(parents=True)
    (category / "split.json").write_text(json.dumps({"train": ["t"], "test": ["a", "b", "c"]}))
    (category / "diagrams").mkdir()
    save_diagrams(category / "diagrams" / "0.npz", ["a", "b", "c"], [_shape(np.random.default_rng(i), 0) for i in
                                                                      range(3)])
    for method, spurious in (("deepsdf_vad", 0.06), ("ours_deepsdf", 0.02)):
        shapes = [[_shape(np.random.default_rng(100 * d + i), spurious + 0.01 * d) for i in range(n)]
                  for d in range(draws)]
        path = category / "generate" / method / "diagrams.npz"
        path.parent.mkdir(parents=True)
        save_diagrams(path, [f"{d:02d}/{i:04d}" for d in range(draws) for i in range(n)], sum(shapes, []))
        reference = [_shape(np.random.default_rng(i), 0) for i in range(3)]
        values = pd_lap_summary(shapes, reference, 1).values
        _write(run, "table", method, float(values.mean()), float(values.std()), 0.0, 0.0, 0)
    return run


def test_paired_draws_recompute_each_draw_and_check_the_run(tmp_path):
    run = _run_with_draws(tmp_path)
    table = add_paired_draws(pair_rows(read_runs([run]), PAIRS))
    (row,) = table.itertuples()
    assert row.draws_lower == 4 and row.draws_high < 0
    per_draw = []
    for method in ("ours_deepsdf", "deepsdf_vad"):
        values = draw_values(run, "table", method)
        assert values.shape == (4,)
        per_draw.append(values)
    assert row.draws_mean == pytest.approx(float(np.mean(per_draw[0] - per_draw[1])))
    reference = [_shape(np.random.default_rng(i), 0) for i in range(3)]  # the baseline's draw 1 by hand
    draw1 = [[_shape(np.random.default_rng(100 + i), 0.07) for i in range(3)]]
    assert per_draw[1][1] == pytest.approx(pd_lap(draw1[0], reference, 1).value)
    result, md = seeds_summary([run], PAIRS, paired_draws=True)
    assert result["summary"][0]["draws_below_zero"] == 1
    assert "| 4 |" in md.splitlines()[-1]
    metrics = run / "table" / "eval" / "ours_deepsdf" / "metrics.json"
    written = json.loads(metrics.read_text())
    written["metrics"]["pd_lap"]["mean"] += 1e-9  # a metrics file from another run
    metrics.write_text(json.dumps(written))
    with pytest.raises(ValueError, match="says"):
        draw_values(run, "table", "ours_deepsdf")
    (run / "table" / "generate" / "deepsdf_vad" / "diagrams.npz").unlink()
    with pytest.raises(ValueError, match="missing"):
        draw_values(run, "table", "deepsdf_vad")


def test_paired_draws_read_the_values_a_run_wrote_without_its_generate_folder(tmp_path):
    """A run that wrote each draw's PD-LAP into metrics.json (the evaluate rule does) needs no generate/ folder,
    as a committed reference keeps none: the same values as recomputed, and a file whose draws do not give its own
    mean is refused."""
    run = _run_with_draws(tmp_path)
    recomputed = {m: draw_values(run, "table", m) for m in ("ours_deepsdf", "deepsdf_vad")}
    before = add_paired_draws(pair_rows(read_runs([run]), PAIRS))
    for method, values in recomputed.items():
        path = run / "table" / "eval" / method / "metrics.json"
        written = json.loads(path.read_text())
        written["metrics"]["pd_lap"]["draws"] = values.tolist()
        path.write_text(json.dumps(written))
    shutil.rmtree(run / "table" / "generate")
    for method, values in recomputed.items():
        assert draw_values(run, "table", method).tolist() == values.tolist()
    after = add_paired_draws(pair_rows(read_runs([run]), PAIRS))
    assert after["draws_mean"].tolist() == before["draws_mean"].tolist() and after["draws_lower"].iloc[0] == 4
    path = run / "table" / "eval" / "deepsdf_vad" / "metrics.json"
    written = json.loads(path.read_text())
    written["metrics"]["pd_lap"]["draws"][0] += 1e-6
    path.write_text(json.dumps(written))
    with pytest.raises(ValueError, match="says"):
        draw_values(run, "table", "deepsdf_vad")
