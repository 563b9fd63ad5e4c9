"""The README's PD-LAP table is the committed reference runs' Table 1, cell for cell (it cannot drift from them)."""

import csv
import re
from pathlib import Path

from toposdf.tables import DISPLAY_NAMES

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference" / "cpu_default"
LABELS = {name.lower(): key for key, name in DISPLAY_NAMES.items()}
LABELS |= {"held-out training shapes (floor)": "heldout_training", "one fixed blob (ceiling)": "blob"}


def readme_table() -> tuple[list[tuple[str, int]], dict[str, list[str]]]:
    """The README's PD-LAP table: its columns as ``(category, seed)`` and its cells by method key."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| method | chair, seed 0"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")][1:]
    columns = [(m.group(1), int(m.group(2))) for m in (re.fullmatch(r"(\w+), seed (\d+)", h) for h in header)]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip().strip("*") for cell in line.strip("|").split("|")]
        rows[LABELS[cells[0].lower()]] = cells[1:]
    return columns, rows


def reference_cell(category: str, seed: int, method: str) -> str:
    """PD-LAP ×10³ of ``method`` in the reference run at ``seed``, as the README writes it."""
    path = REFERENCE / f"seed{seed}" / "synthetic" / "tables" / "table1.csv"
    row = next(r for r in csv.DictReader(path.open()) if r["method"] == method)
    mean, std = 1e3 * float(row[f"{category}/pd_lap/mean"]), 1e3 * float(row[f"{category}/pd_lap/std"])
    return f"{mean:.2f}" if method == "blob" else f"{mean:.2f} ± {std:.2f}"


def test_the_readme_pd_lap_table_is_the_reference_runs_table_1():
    columns, rows = readme_table()
    assert columns and set(rows) >= {"deepsdf_vad", "ours_deepsdf", "deepsdf_se_vad", "ours_deepsdf_se"}
    for method, cells in rows.items():
        assert len(cells) == len(columns), method
        for (category, seed), cell in zip(columns, cells):
            assert cell == reference_cell(category, seed, method), (method, category, seed)


def test_every_readme_column_is_a_current_reference_run():
    """Each (category, seed) column names a reference folder listed in results/reference/current.txt."""
    current = (ROOT / "results" / "reference" / "current.txt").read_text().split()
    columns, _ = readme_table()
    assert columns
    for _, seed in columns:
        assert f"cpu_default/seed{seed}" in current
