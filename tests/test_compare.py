"""toposdf.compare and tools/compare_runs.py: where a run departs from a reference, on the committed references."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from conftest import load_tool
from toposdf.compare import (CellDifference, Departure, FileComparison, RunComparison, compare_runs,
                             comparison_markdown, same_value, stage_of)

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference" / "cpu_default" / "seed0" / "synthetic"
FILES = ["chair/split.json", "chair/train/stage1/eikonal/implicit_log.csv", "chair/train/deepsdf_vad/joint_log.csv",
         "chair/train/ours_deepsdf/joint_log.csv", "chair/eval/ours_deepsdf/metrics.json", "tables/table1.csv",
         "tables/claims.csv"]


def _copy(files, to: Path) -> Path:
    for name in files:
        (to / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REFERENCE / name, to / name)
    return to


def _edit_csv(path: Path, edit) -> None:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = reader.fieldnames, list(reader)
    edit(rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def test_a_reference_is_identical_to_itself_and_the_tool_exits_0(capsys):
    comparison = compare_runs(REFERENCE, REFERENCE)
    assert comparison.identical and comparison.first_departures() == [] and len(comparison.files) > 50
    assert {f.stage for f in comparison.files} >= {"data", "stage 1", "stage 1b", "stage 2", "evaluation", "tables"}
    assert load_tool("compare_runs").main([str(REFERENCE), str(REFERENCE)]) == 0
    assert "**Identical**" in capsys.readouterr().out


def test_the_first_departure_the_changed_cells_and_the_flipped_claim_are_found(tmp_path, capsys):
    reference, run = _copy(FILES, tmp_path / "reference"), _copy(FILES, tmp_path / "run")
    (run / "chair" / "meshes").mkdir()
    (run / "chair" / "meshes" / "0.json").write_text("{}")  # only in the run: a packed reference leaves it out

    def times_and_row_3(rows):
        for row in rows:
            row["seconds_theta"] = "99.0"  # job times differ between any two runs
        rows[2]["theta_sdf"] = repr(float(rows[2]["theta_sdf"]) * (1 + 1e-7))

    _edit_csv(run / "chair/train/deepsdf_vad/joint_log.csv", lambda rows: [r.update(seconds_theta="1") for r in rows])
    _edit_csv(run / "chair/train/ours_deepsdf/joint_log.csv", times_and_row_3)
    metrics = json.loads((run / "chair/eval/ours_deepsdf/metrics.json").read_text())
    metrics["metrics"]["pd_lap"]["draws"][4] += 1e-3
    metrics["metrics"]["pd_lap"]["mean"] += 2 * metrics["metrics"]["pd_lap"]["std"]
    metrics["provenance"] |= {"commit": "0000000", "train_seed": 7}
    (run / "chair/eval/ours_deepsdf/metrics.json").write_text(json.dumps(metrics))
    std = {}

    def one_std_up(rows):
        row = next(r for r in rows if r["method"] == "ours_deepsdf")
        std["pd_lap"] = float(row["chair/pd_lap/std"])
        row["chair/pd_lap/mean"] = repr(float(row["chair/pd_lap/mean"]) + std["pd_lap"])

    _edit_csv(run / "tables/table1.csv", one_std_up)
    _edit_csv(run / "tables/claims.csv", lambda rows: rows[0].update(holds="False"))

    comparison = compare_runs(run, reference)
    status = {f.path: f for f in comparison.files}
    assert status["chair/train/deepsdf_vad/joint_log.csv"].status == "identical"
    assert status["chair/train/stage1/eikonal/implicit_log.csv"].status == "identical"
    assert status["chair/meshes/0.json"].status == "only in run" and not comparison.identical
    [first] = comparison.first_departures()
    assert first.path == "chair/train/ours_deepsdf/joint_log.csv" and first.stage == "stage 2"
    assert (first.departure.where, first.departure.field, first.departure.differing) == ("row 3", "theta_sdf", 1)
    evaluated = status["chair/eval/ours_deepsdf/metrics.json"]
    assert evaluated.status == "differs" and evaluated.settings_differ
    assert (evaluated.departure.where, evaluated.departure.field, evaluated.departure.differing) == (
        "key metrics/pd_lap", "mean", 2)  # and draw 4
    [cell] = comparison.cells
    assert (cell.table, cell.method, cell.column) == ("table1", "ours_deepsdf", "chair/pd_lap")
    assert cell.in_std == pytest.approx(1.0)
    [claim] = comparison.claims
    assert (claim["run"], claim["reference"]) == ("False", "True") and comparison.claims_compared > 10
    text = comparison_markdown(comparison)
    assert "departs first at" in text and "Other settings recorded" in text and "row 3, theta_sdf" in text

    (reference / "tables" / "table2.csv").write_text("method\n")  # a file of the reference the run has not made
    missing = compare_runs(run, reference)
    assert {f.path: f.status for f in missing.files}["tables/table2.csv"] == "only in reference"
    assert load_tool("compare_runs").main([str(run), str(reference)]) == 1
    assert "1 of the reference's files are not in the run" in capsys.readouterr().out
    assert load_tool("compare_runs").main([str(run), str(tmp_path / "nowhere")]) == 2

    for root in (run, reference):  # a run of some jobs only: Table 1's numbers come from the metrics files
        shutil.rmtree(root / "tables")
    [cell] = compare_runs(run, reference).cells
    assert (cell.table, cell.method, cell.column, cell.in_std) == ("metrics", "ours_deepsdf", "chair/pd_lap",
                                                                   pytest.approx(2.0))


def test_values_and_stages():
    assert same_value("1", "1.0") and same_value("nan", "nan") and not same_value("1", "1.0000001")
    assert same_value("/a/results/x", "/b/results/y") and not same_value("a", "b") and not same_value(True, 1.0)
    assert [stage_of(Path(p)) for p in ("chair/manifest.csv", "chair/train/stage1/steik/implicit_log.csv",
                                        "chair/train/ours/pdgen_log.csv", "chair/train/ours/joint_log.csv",
                                        "chair/train/vecset/diffusion_log.csv", "chair/eval/training_fit.json",
                                        "chair/figures/fig3_pd_matrices.json", "tables/table1.csv")] == [
        "data", "stage 1", "stage 1b", "stage 2", "training", "evaluation", "figures", "tables"]


def test_cells_without_a_finite_number_are_listed_without_a_std():
    cells = [CellDifference("table1", "ours", "chair/pd_lap", float("nan"), 0.01, 0.001),
             CellDifference("metrics", "ours", "chair/cd_mean", None, 0.004, None),
             CellDifference("table1", "base", "chair/pd_lap", 0.012, 0.01, 0.001)]
    assert [c.in_std for c in cells] == [None, None, pytest.approx(2.0)]
    table = FileComparison("tables/table1.csv", "tables", "differs", Departure("row 1", "chair/pd_lap/mean", "nan",
                                                                               "0.01", 2))
    text = comparison_markdown(RunComparison("run", "reference", [table], 3, cells))
    assert "| table1 | ours | chair/pd_lap | nan | 0.01 |  |  |" in text and "| None | 0.004 |" in text
