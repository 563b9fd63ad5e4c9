"""Two finished runs compared file by file: where a run departs from a reference, and by how much.

A run is exact within one kind of CPU: a fresh clone reproduces a reference made on the same kind to the byte. On
another kind, or after a change to the code, some jobs round differently, and ``diff -r`` then shows every file
downstream of the first such job without saying where it began or whether it matters. :func:`compare_runs` walks
the numbers that two ``results/<dataset>`` folders hold (a reference's ``synthetic/`` folder is one), in the
pipeline's order: the data (split, manifest), stage 1's logs, stage 1b's logs and smoothness selections, stage 2's
logs, the other training logs, the evaluation (metrics, reconstructions, the fit, the calibration rows), Fig. 3's
numbers and the tables. Per file it says whether it is identical, leaving out what differs between any two runs
(job times, paths, commits), and where it is not, the first row or key that differs. For Tables 1 and 2 and the
generation table it gives each cell's difference (in the reference's standard deviations where the cell has
one), and it lists the paper's claims (``claims.csv``) that hold in one run and not in the other.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .io import flatten, read_json

STAGES = ("data", "stage 1", "stage 1b", "stage 2", "training", "evaluation", "figures", "tables", "other")
SKIPPED_FOLDERS = {"logs", "benchmarks"}  # job logs and times: they differ between any two runs
IGNORED_NAMES = {"commit", "checkpoint", "wall", "wall_s"}  # commits, paths and times, not numbers
SETTINGS_KEYS = {"config_sha256", "train_seed", "seed"}  # a job's settings and seeds in its provenance record
TABLES = ("table1.csv", "table2.csv", "generation.csv")


def ignored(name: str) -> bool:
    """Whether a column or key is left out of the comparison: job times (``seconds*``, ``*_seconds``), paths and
    commits."""
    return name.startswith("seconds") or name.endswith("_seconds") or name in IGNORED_NAMES


def stage_of(relative: Path) -> str:
    """The pipeline stage that writes a file, from its path relative to the dataset folder."""
    parts, name = relative.parts, relative.name
    if parts[0] == "tables":
        return "tables"
    if "stage1" in parts:
        return "stage 1"
    if name in ("pdgen_log.csv", "smoothness_selection.json"):
        return "stage 1b"
    if name == "joint_log.csv":
        return "stage 2"
    for folder, stage in (("train", "training"), ("eval", "evaluation"), ("figures", "figures")):
        if folder in parts:
            return stage
    return "data" if name in ("manifest.csv", "split.json") else "other"


def numeric_files(root: Path) -> dict[str, Path]:
    """Every CSV and JSON file under ``root`` by its relative path, without job logs, benchmarks and hidden
    folders (kept attempts, working files)."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.suffix not in (".csv", ".json") or not path.is_file():
            continue
        if SKIPPED_FOLDERS & set(relative.parts[:-1]) or any(p.startswith(".") for p in relative.parts):
            continue
        files[relative.as_posix()] = path
    return files


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def same_value(a, b) -> bool:
    """Equal as written, or as numbers (``1`` and ``1.0``; NaN equals NaN); two absolute paths count as equal (a
    run's folder is not a number); a boolean equals only a boolean."""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if a == b or (isinstance(a, str) and isinstance(b, str) and a.startswith("/") and b.startswith("/")):
        return True
    x, y = _number(a), _number(b)
    if x is None or y is None or isinstance(a, bool):
        return False
    return x == y or (math.isnan(x) and math.isnan(y))


def relative_difference(a, b) -> float | None:
    """``|a - b| / max(|a|, |b|)`` for two numbers, None otherwise."""
    x, y = _number(a), _number(b)
    if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
        return None
    scale = max(abs(x), abs(y))
    return abs(x - y) / scale if scale else 0.0


@dataclass
class Departure:
    """The first place a file differs: ``where`` (``row 3`` or a key), the ``field`` (column or key), the run's and
    the reference's values there, and how many fields differ in the whole file."""

    where: str
    field: str
    run: object
    reference: object
    differing: int

    def describe(self) -> str:
        rel = relative_difference(self.run, self.reference)
        size = f", relative {rel:.1e}" if rel is not None else ""
        more = f"; {self.differing} values differ in all" if self.differing > 1 else ""
        return f"{self.where}, {self.field}: {self.run} against {self.reference}{size}{more}"


@dataclass
class FileComparison:
    """One file of the two runs: ``status`` is ``identical``, ``differs``, ``other columns``, ``only in run`` or
    ``only in reference``; ``settings_differ``: the job that wrote it recorded other settings or seeds (its
    provenance record), so the two runs were not made from the same config."""

    path: str
    stage: str
    status: str
    departure: Departure | None = None
    settings_differ: bool = False


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def compare_csv(run: Path, reference: Path) -> tuple[str, Departure | None]:
    """``(status, first departure)`` of two CSV files, row by row, leaving out :func:`ignored` columns."""
    (columns, rows), (ref_columns, ref_rows) = _read_csv(run), _read_csv(reference)
    kept = [c for c in columns if not ignored(c)]
    if kept != [c for c in ref_columns if not ignored(c)]:
        return "other columns", Departure("header", ", ".join(sorted(set(kept) ^ set(ref_columns))) or "order",
                                          len(columns), len(ref_columns), 1)
    first, differing = None, 0
    for index, (row, ref) in enumerate(zip(rows, ref_rows)):
        for column in kept:
            if not same_value(row[column], ref[column]):
                differing += 1
                first = first or Departure(f"row {index + 1}", column, row[column], ref[column], 0)
    if len(rows) != len(ref_rows):
        differing += 1
        first = first or Departure("rows", "count", len(rows), len(ref_rows), 0)
    if first is None:
        return "identical", None
    first.differing = differing
    return "differs", first


def compare_json(run: Path, reference: Path) -> tuple[str, Departure | None, bool]:
    """``(status, first departure, settings differ)`` of two JSON files, leaf by leaf, leaving out :func:`ignored`
    keys. What a ``provenance`` record holds (settings' and checkpoints' hashes, seeds) is not a number of the
    run: it decides only the third value, whether the job's settings or seeds differ (``config_sha256``,
    ``train_seed``, ``seed``)."""
    a, b = (flatten(read_json(p), "/", lists=True) for p in (run, reference))
    keys = [k for k in dict.fromkeys([*a, *b]) if not ignored(k.rsplit("/", 1)[-1])]
    differing = [k for k in keys if k not in a or k not in b or not same_value(a[k], b[k])]
    settings = any(k.rsplit("/", 1)[-1] in SETTINGS_KEYS for k in differing)
    numbers = [k for k in differing if "provenance" not in k.split("/")]
    if not numbers:
        return "identical", None, settings
    where, _, name = numbers[0].rpartition("/")
    departure = Departure(f"key {where or '.'}", name, a.get(numbers[0], "(none)"), b.get(numbers[0], "(none)"),
                          len(numbers))
    return "differs", departure, settings


def compare_file(relative: str, run: Path | None, reference: Path | None) -> FileComparison:
    stage = stage_of(Path(relative))
    if run is None or reference is None:
        return FileComparison(relative, stage, "only in reference" if run is None else "only in run")
    if run.suffix == ".csv":
        return FileComparison(relative, stage, *compare_csv(run, reference))
    return FileComparison(relative, stage, *compare_json(run, reference))


@dataclass
class CellDifference:
    """A cell of Tables 1 and 2 or the generation table (``table``, ``method``, ``column``) that differs; ``std``:
    the reference's standard deviation of the cell, where it has one."""

    table: str
    method: str
    column: str
    run: float
    reference: float
    std: float | None

    @property
    def in_std(self) -> float | None:
        """``|run - reference| / std``; None without a (finite, positive) std or a finite difference."""
        if not self.std or not math.isfinite(self.std) or _number(self.run) is None or _number(self.reference) is None:
            return None
        difference = abs(float(self.run) - float(self.reference))
        return difference / self.std if math.isfinite(difference) else None


def table_differences(run: Path, reference: Path) -> tuple[int, list[CellDifference]]:
    """``(cells compared, the cells that differ)`` of the mean cells of the two runs' ``tables/`` CSVs: the cells
    with a standard deviation first, the largest difference in the reference's standard deviations first, then the
    others by relative difference."""
    compared, cells = 0, []
    for name in TABLES:
        if not ((run / name).is_file() and (reference / name).is_file()):
            continue
        ref_rows = {r["method"]: r for r in _read_csv(reference / name)[1]}
        for row in _read_csv(run / name)[1]:
            ref = ref_rows.get(row["method"])
            for column in (c for c in row if ref is not None and c.endswith("/mean") and c in ref):
                x, y = _number(row[column]), _number(ref[column])
                if x is None or y is None:
                    continue
                compared += 1
                if not same_value(x, y):
                    std = _number(ref.get(column[: -len("mean")] + "std"))
                    cells.append(CellDifference(name.removesuffix(".csv"), row["method"], column[: -len("/mean")], x,
                                                y, std))
    cells.sort(key=lambda c: (c.in_std is None, -(c.in_std or relative_difference(c.run, c.reference) or 0.0)))
    return compared, cells


def metric_differences(files: list[FileComparison], run: Path, reference: Path) -> list[CellDifference]:
    """PD-LAP and CD-mean of every method whose ``<category>/eval/<method>/metrics.json`` differs: for a run of
    some jobs only (no tables), the numbers Table 1 would hold."""
    cells = []
    for f in files:
        parts = Path(f.path).parts
        if f.status != "differs" or len(parts) != 4 or parts[1] != "eval" or parts[3] != "metrics.json":
            continue
        a, b = (read_json(root / f.path).get("metrics", {}) for root in (run, reference))
        for metric in ("pd_lap", "cd_mean"):
            if metric in a and metric in b and not same_value(a[metric]["mean"], b[metric]["mean"]):
                cells.append(CellDifference("metrics", parts[2], f"{parts[0]}/{metric}", a[metric]["mean"],
                                            b[metric]["mean"], b[metric].get("std")))
    return cells


def claim_differences(run: Path, reference: Path) -> tuple[int, list[dict]]:
    """``(claims compared, the claims that hold in one run and not in the other)`` of the two ``claims.csv``."""
    if not ((run / "claims.csv").is_file() and (reference / "claims.csv").is_file()):
        return 0, []
    key = ("category", "check", "method", "against")
    ref_rows = {tuple(r[k] for k in key): r for r in _read_csv(reference / "claims.csv")[1]}
    compared, flips = 0, []
    for row in _read_csv(run / "claims.csv")[1]:
        ref = ref_rows.get(tuple(row[k] for k in key))
        if ref is None:
            continue
        compared += 1
        if row["holds"] != ref["holds"]:  # an empty cell: n/a (a number missing, toposdf.claims)
            flips.append({k: row[k] for k in key} | {"run": row["holds"] or "n/a", "reference": ref["holds"] or "n/a",
                                                      "run_detail": row["detail"], "reference_detail": ref["detail"]})
    return compared, flips


@dataclass
class RunComparison:
    """What :func:`compare_runs` found; ``identical``: every file of the reference is in the run, identical (files
    only in the run do not count: a packed reference leaves out meshes, grids and the like)."""

    run: str
    reference: str
    files: list[FileComparison]
    cells_compared: int = 0  # mean cells of the tables compared; 0: the cells are metrics.json's (no tables)
    cells: list[CellDifference] = field(default_factory=list)
    claims_compared: int = 0
    claims: list[dict] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return all(f.status in ("identical", "only in run") for f in self.files)

    def first_departures(self) -> list[FileComparison]:
        """The files that differ in the earliest stage where any does (every one of that stage; files missing from
        either run are not departures)."""
        differing = [f for f in self.files if f.status in ("differs", "other columns")]
        if not differing:
            return []
        first = min(STAGES.index(f.stage) for f in differing)
        return [f for f in differing if STAGES.index(f.stage) == first]

    def to_dict(self) -> dict:
        return asdict(self) | {"identical": self.identical}


def compare_runs(run: str | Path, reference: str | Path) -> RunComparison:
    """Compare two runs' ``results/<dataset>`` folders; files in pipeline order (stage, then path)."""
    run, reference = Path(run), Path(reference)
    for folder in (run, reference):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder (give a run's results/<dataset> folder)")
    ours, theirs = numeric_files(run), numeric_files(reference)
    names = sorted(set(ours) | set(theirs), key=lambda n: (STAGES.index(stage_of(Path(n))), n))
    files = [compare_file(n, ours.get(n), theirs.get(n)) for n in names]
    compared, cells = table_differences(run / "tables", reference / "tables")
    if not compared:
        cells = metric_differences(files, run, reference)
    claims_compared, claims = claim_differences(run / "tables", reference / "tables")
    return RunComparison(str(run), str(reference), files, compared, cells, claims_compared, claims)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _difference(cell: CellDifference) -> str:
    x, y = _number(cell.run), _number(cell.reference)
    return f"{x - y:+.3g}" if x is not None and y is not None and math.isfinite(x - y) else ""


def comparison_markdown(comparison: RunComparison, limit: int = 12) -> str:
    """The comparison as Markdown: the verdict and the first departure, the files that differ by stage, the
    largest table differences and the claims that flip."""
    shared = [f for f in comparison.files if f.status not in ("only in run", "only in reference")]
    missing = [f for f in comparison.files if f.status == "only in reference"]
    same = sum(f.status == "identical" for f in shared)
    lines = [f"# {comparison.run} against {comparison.reference}", ""]
    verdict = "**Identical**" if comparison.identical else f"**{same} of {len(shared)} shared files identical**"
    lines.append(f"{verdict}: the files of numbers both runs hold, job times, paths and commits left out"
                 + (f"; {len(missing)} of the reference's files are not in the run." if missing else "."))
    settings = [f.path for f in comparison.files if f.settings_differ]
    if settings:
        lines.append(f"**Other settings recorded**: {len(settings)} files' jobs recorded other settings or seeds than "
                     f"the reference's ({', '.join(settings[:3])}{' ...' if len(settings) > 3 else ''}): another "
                     "config, or code that records a job's settings otherwise; where their numbers differ, that may "
                     "be why.")
    departures = comparison.first_departures()
    if departures:
        lines += ["", "The run departs first at:", ""]
        lines += [f"- {f.path} ({f.stage}): {f.status}, {f.departure.describe()}" for f in departures[:limit]]
    if comparison.identical:
        return "\n".join(lines) + "\n"
    lines += ["", "## Files by stage", "", "| stage | identical | differ | not in the run | what differs |",
              "| --- | --- | --- | --- | --- |"]
    for stage in STAGES:
        staged = [f for f in shared if f.stage == stage]
        absent = [f for f in missing if f.stage == stage]
        if staged or absent:
            other = [f for f in staged if f.status != "identical"]
            names = ", ".join(f"{f.path} ({f.status})" for f in other[:limit]) + (" ..." if len(other) > limit else "")
            lines.append(f"| {stage} | {len(staged) - len(other)} | {len(other)} | {len(absent)} | {names} |")
    if comparison.cells_compared or comparison.cells:
        lines += ["", "## Tables 1 and 2, generation" if comparison.cells_compared else
                  "## PD-LAP and CD-mean of the methods evaluated (no tables to compare)", ""]
        if comparison.cells_compared:
            lines += [f"{comparison.cells_compared - len(comparison.cells)} of {comparison.cells_compared} mean cells "
                      "equal." + (" The largest differences:" if comparison.cells else ""), ""]
        if comparison.cells:
            lines += ["| table | method | column | run | reference | difference | in reference std |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            lines += [f"| {c.table} | {c.method} | {c.column} | {_fmt(c.run)} | {_fmt(c.reference)} | "
                      f"{_difference(c)} | {'' if c.in_std is None else f'{c.in_std:.2f}'} |"
                      for c in comparison.cells[:limit]]
    if comparison.claims_compared:
        flips = comparison.claims
        lines += ["", "## The paper's claims (claims.csv)", "",
                  f"{comparison.claims_compared - len(flips)} of {comparison.claims_compared} checks agree."]
        if flips:
            lines += ["", "| category | check | method | against | run | reference |", "| --- | --- | --- | --- | --- | --- |"]
            lines += [f"| {c['category']} | {c['check']} | {c['method']} | {c['against']} | {c['run']}: "
                      f"{c['run_detail']} | {c['reference']}: {c['reference_detail']} |" for c in flips]
    return "\n".join(lines) + "\n"
