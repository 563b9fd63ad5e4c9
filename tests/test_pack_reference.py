"""tools/pack_reference.py: what a reference folder keeps, its thumbnails, README and listing."""

from pathlib import Path

import pytest
from PIL import Image

from conftest import load_tool

pack_reference = load_tool("pack_reference")


def _touch(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    results = tmp_path / "run" / "results" / "synthetic"
    _touch(results / "tables" / "table1.csv", "method,pd_lap\nours,1.0\n")
    _touch(results / "chair" / "eval" / "ours" / "metrics.json", "{}")
    _touch(results / "chair" / "meshes" / "0.json", "{}")
    _touch(results / "chair" / "generate" / "ours" / "shapes.json", "{}")
    _touch(results / "chair" / "train" / "ours" / "model.pt")
    _touch(results / "logs" / "generate" / "chair" / "ours.log", "log")
    _touch(results / "benchmarks" / "generate" / "chair" / "ours.tsv", "s\n1\n")
    sheets = results / "chair" / "figures" / "prior_samples"
    sheets.mkdir(parents=True)
    Image.new("RGB", (200, 100), "white").save(sheets / "ours.png")
    Image.new("RGB", (200, 100), "white").save(results / "chair" / "figures" / "contact_sheet.png")
    (tmp_path / "run" / "config.yaml").write_text("train: {seed: 0}\n")
    return tmp_path / "run"


def test_keeps_records_and_leaves_out_bulk(run: Path) -> None:
    kept = {p.as_posix() for p in pack_reference.kept_files(run / "results")}
    assert "synthetic/tables/table1.csv" in kept
    assert "synthetic/chair/eval/ours/metrics.json" in kept
    assert "synthetic/logs/generate/chair/ours.log" in kept          # a log named after a left-out folder
    assert "synthetic/benchmarks/generate/chair/ours.tsv" in kept
    assert "synthetic/chair/meshes/0.json" not in kept
    assert "synthetic/chair/generate/ours/shapes.json" not in kept
    assert not any(name.endswith(".pt") for name in kept)


def test_pack_writes_thumbnails_only_where_asked(run: Path, tmp_path: Path) -> None:
    dest = tmp_path / "reference" / "cpu_default" / "seed0"
    count, size = pack_reference.pack(run / "results", dest)
    assert count == 6 and size > 0
    assert Image.open(dest / "synthetic/chair/figures/prior_samples/ours.png").size == (100, 50)
    assert Image.open(dest / "synthetic/chair/figures/contact_sheet.png").size == (200, 100)
    assert (dest / "synthetic/tables/table1.csv").read_text() == "method,pd_lap\nours,1.0\n"


def test_main_writes_readme_and_listing(run: Path, tmp_path: Path) -> None:
    root = tmp_path / "reference"
    for seed in (1, 0, 1):
        dest = root / "cpu_default" / f"seed{seed}"
        if dest.exists():
            with pytest.raises(SystemExit, match="not empty"):
                pack_reference.main([str(run), str(dest), "--command", "snakemake", "--commit", "abc", "--wall", "1 h"])
            continue
        pack_reference.main([str(run), str(dest), "--command", "snakemake --cores all", "--commit", "abc1234",
                             "--wall", "106 min"])
    assert (root / "current.txt").read_text() == "cpu_default/seed0\ncpu_default/seed1\n"
    elsewhere = tmp_path / "packs" / "sofa"  # one category's pack, to be copied in: nothing listed above it
    pack_reference.main([str(run), str(elsewhere), "--command", "s", "--commit", "abc", "--wall", "1 h"])
    assert (elsewhere / "README.md").is_file() and not (tmp_path / "current.txt").exists()
    readme = (root / "cpu_default" / "seed0" / "README.md").read_text()
    assert "`snakemake --cores all`" in readme and "abc1234" in readme and "106 min" in readme
    assert "machine:" in readme
    assert (root / "cpu_default" / "seed0" / "config.yaml").read_text() == "train: {seed: 0}\n"


def test_missing_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="does not exist"):
        pack_reference.pack(tmp_path / "nowhere" / "results", tmp_path / "dest")
