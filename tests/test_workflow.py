"""The real Snakemake workflow on the tiny preset, in a temporary directory, through persistence."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toposdf.topology import load_diagrams

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "workflow_scripts", "envs", "report", "presets"]
# The tiny preset's chairs alone: its 136 jobs for two categories spent 10-13 minutes of the suite, mostly starting
# Python; the second category exercised the same rules again. Two categories meet in the tables, Fig. 1 and Fig. 4,
# which their own tests build from several categories.
TINY = ("presets/tiny.yaml", "one_category.yaml")
CATEGORIES = ("chair",)
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
METHODS = ["deepsdf_vad", "deepsdf_se_vad", "ours_deepsdf", "ours_deepsdf_se", "no_pd_smoothness", "no_pd_training",
           "deepsdf_topoprior"]

pytestmark = pytest.mark.workflow


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    (dest / "one_category.yaml").write_text(f"dataset:\n  categories: [{', '.join(CATEGORIES)}]\n")
    return dest


def _snakemake(workdir: Path, *args: str, timeout: int = 1800, configfiles=TINY
               ) -> subprocess.CompletedProcess:
    # the tiny run's chairs take 3-5 minutes on 2 cores; the limit leaves room for cores shared with other work
    return subprocess.run(
        # --max-threads 1: two single-threaded jobs at a time instead of one with two threads; the tiny jobs'
        # time is mostly Python start-up, so this halves the run. --configfile takes several values, so it comes last.
        SNAKEMAKE + [*args, "--cores", "2", "--max-threads", "1", "--configfile", *configfiles],
        cwd=workdir, capture_output=True, text=True, timeout=timeout,
    )


def _planned(workdir: Path, *args: str, configfiles=TINY) -> set[str]:
    """The outputs a dry run of ``all`` would make (one entry per output file of every job it lists)."""
    run = _snakemake(workdir, "all", "--dry-run", *args, configfiles=configfiles)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = (run.stdout + run.stderr).splitlines()
    return {path for line in lines if line.startswith("    output: ") for path in line[12:].split(", ")}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = _copy_workflow(tmp_path_factory.mktemp("tiny"))
    run = _snakemake(workdir, "all")
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir, run


def test_tiny_preset_runs_through_persistence(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    for category, synset in [("chair", "03001627")]:
        meshes = sorted((results / "shapes" / synset).glob("*/models/model_normalized.obj"))
        assert len(meshes) == 6
        manifest = pd.read_csv(results / category / "manifest.csv")
        assert len(manifest) == 6 and set(manifest["status"]) == {"ok"}
        assert sorted(manifest["split"].value_counts().to_dict().items()) == [("test", 1), ("train", 5)]
        # Every synthetic shape is one connected piece, and that is what its diagrams say.
        assert set(manifest["b0"]) == {1}
        ids = []
        for shard in range(2):
            with np.load(results / category / "sdf" / f"{shard}.npz") as f:
                assert f["points"].shape[1:] == (2000, 3) and f["sdf"].shape[1] == 2000
                assert np.all(np.isfinite(f["sdf"])) and (f["sdf"] < 0).mean() > 0.1
            with np.load(results / category / "grids" / f"{shard}.npz") as f:
                assert f["grids"].shape[1:] == (24, 24, 24)
                grids = f["grids"]
            shard_ids, diagrams, meta = load_diagrams(results / category / "diagrams" / f"{shard}.npz")
            assert meta["tau"] == 0.1 and len(shard_ids) == len(grids)
            for d in diagrams:
                assert all(x.shape[1] == 2 and np.all(x[:, 0] <= x[:, 1]) for x in d)
            ids += shard_ids
        assert sorted(ids) == sorted(manifest["model_id"])
        for figure in ["diagrams", "contact_sheet"]:
            png = results / category / "figures" / f"{figure}.png"
            assert png.stat().st_size > 10_000
        assert (results / "logs" / "persistence" / category / "0.log").read_text().strip()


def test_training_rules_write_every_methods_checkpoints_and_curves(tiny_run):
    import torch

    workdir, _ = tiny_run
    train = workdir / "results" / "tiny" / "chair" / "train"
    manifest = pd.read_csv(workdir / "results" / "tiny" / "chair" / "manifest.csv")
    train_ids = sorted(manifest.loc[manifest["split"] == "train", "model_id"])
    # Stage 1: once per geometric regularizer, shared by the methods that name it.
    for geometry, steik in [("eikonal", False), ("steik", True)]:
        state = torch.load(train / "stage1" / geometry / "implicit.pt", weights_only=True)
        assert state["epoch"] == 2 and state["geometry"] == geometry and (state["config"]["lambda_steik"] > 0) == steik
        assert state["ids"] == train_ids
        curve = pd.read_csv(train / "stage1" / geometry / "implicit_log.csv")
        assert list(curve["epoch"]) == [1, 2] and np.isfinite(curve.drop(columns="epoch").to_numpy()).all()
    # Stage 1b only for methods with pretrained PD generators; stage 2 for every method.
    pretrained = {"ours_deepsdf", "ours_deepsdf_se", "no_pd_smoothness"}
    for method in METHODS:
        assert (train / method / "pdgen.pt").exists() == (method in pretrained), method
        state = torch.load(train / method / "model.pt", weights_only=True)
        # from scratch (No PD Training): stage 1's 2 epochs and stage 2's round, all in stage 2
        rounds = 3 if method == "no_pd_training" else 1
        assert state["method"] == method and state["ids"] == train_ids and state["epoch"] == rounds
        assert ("pd_generators" in state) == (method in pretrained | {"no_pd_training"})
        curve = pd.read_csv(train / method / "joint_log.csv")
        # a warm round without eq. 8 (train.joint.scratch_consistency_rounds) logs its consistency and phi terms as nan
        skipped = [c for c in curve if c.startswith("phi_") or "consistency" in c or c.startswith("seconds_")
                   or c == "grid_evaluated_fraction"] if method == "no_pd_training" else []
        assert len(curve) == rounds and np.isfinite(curve.drop(columns=["epoch", *skipped]).to_numpy()).all()
        assert np.isfinite(curve[["theta_sdf", "z_sdf", "loss"]].to_numpy()).all()
        assert not list((train / method).glob(".*work"))
        assert (workdir / "results" / "tiny" / "benchmarks" / "joint_train" / "chair" / f"{method}.tsv").exists()


def test_evaluation_writes_metrics_with_provenance_tables_and_figures(tiny_run):
    import json

    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    for category in CATEGORIES:
        for method in METHODS:
            metrics = json.loads((results / category / "eval" / method / "metrics.json").read_text())
            assert metrics["category"] == category and metrics["method"] == method
            assert metrics["metrics"]["pd_lap"]["n"] == 2  # the preset's draws
            assert np.isfinite(metrics["metrics"]["pd_lap"]["mean"]) and metrics["metrics"]["pd_lap"]["mean"] >= 0
            assert 0 <= metrics["metrics"]["cov_cd"]["mean"] <= 1 and 0 <= metrics["metrics"]["1_nna_cd"]["mean"] <= 1
            record = metrics["provenance"]
            assert record["checkpoint"].endswith(f"{category}/train/{method}/model.pt") and record["seed"] == 0
            assert record["train_seed"] == 0  # the tiny preset's train.seed, read from the checkpoint
            assert len(record["config_sha256"]) == 64
            chamfer = pd.read_csv(results / category / "eval" / method / "reconstruction.csv")
            assert len(chamfer) == 1 and list(chamfer.columns[:2]) == ["model_id", "chamfer"]
    table1 = pd.read_csv(results / "tables" / "table1.csv", index_col="method")
    # the methods in the merged config's order, then the 3DShape2VecSet row, then the calibration rows. Snakemake
    # starts from the --configfile and merges config.yaml into it, so the preset's extra method comes before
    # config.yaml's six.
    assert list(table1.index[:-2]) == ["deepsdf_topoprior", *METHODS[:-1], "vecset"]
    assert list(table1.index[-2:]) == ["heldout_training", "blob"]
    assert table1.shape[1] == len(CATEGORIES) * 2 * 2  # categories x metrics x (mean, std)
    assert table1.loc[METHODS].notna().all().all()
    pd_lap = table1["chair/pd_lap/mean"]
    # (on 6 tiny shapes at 24^3 the floor need not lie below the ceiling: test_evaluation checks that on real cases)
    assert np.isfinite(pd_lap[["heldout_training", "blob"]]).all() and table1.loc["blob", "chair/pd_lap/std"] == 0
    generation = pd.read_csv(results / "tables" / "generation.csv", index_col="method")
    assert {"chair/mean_b1/mean", "chair/blob_fraction/mean", "chair/thick_fraction/mean"} <= set(generation.columns)
    assert generation.loc["blob", "chair/thick_fraction/mean"] == 1.0  # the ceiling's ball is solid
    assert generation.loc[METHODS, "chair/thick_fraction/mean"].between(0, 1).all()
    for category in CATEGORIES:
        for method in METHODS + ["vecset"]:
            assert (results / category / "figures" / "prior_samples" / f"{method}.png").stat().st_size > 10_000
        # the 3DShape2VecSet row: its two trained models, its fit, its draws scored as a method's, its CD-mean
        vecset = results / category / "train" / "vecset"
        assert {p.name for p in vecset.iterdir()} >= {"autoencoder.pt", "autoencoder_log.csv", "autoencoder_fit.json",
                                                      "diffusion.pt", "diffusion_log.csv"}
        fit = json.loads((vecset / "autoencoder_fit.json").read_text())
        assert fit["train"]["shapes"] == 5 and fit["test"]["shapes"] == 1 and 0 <= fit["test"]["decoded_iou"] <= 1
        metrics = json.loads((results / category / "eval" / "vecset" / "metrics.json").read_text())
        assert metrics["metrics"]["pd_lap"]["n"] == 2 and np.isfinite(metrics["metrics"]["pd_lap"]["mean"])
        assert len(pd.read_csv(results / category / "eval" / "vecset" / "reconstruction.csv")) == 1
    claims = pd.read_csv(results / "tables" / "claims.csv")
    for category in CATEGORIES:  # Table 1's pairs (the preset's prior row too), Fig. 3, the ablations, the fit
        checks = claims[claims["category"] == category]
        paired = {"ours_deepsdf", "ours_deepsdf_se", "deepsdf_topoprior"}
        assert set(checks.loc[checks["check"] == "pd_lap", "method"]) == paired
        assert set(checks.loc[checks["check"] == "ablation", "method"]) == {"no_pd_smoothness", "no_pd_training"}
        for check in ("vecset_cd", "vecset_pd_lap"):  # Sec. 6.2, against each full method
            assert set(checks.loc[checks["check"] == check, "against"]) == {"ours_deepsdf", "ours_deepsdf_se"}
        assert (checks["check"] == "fig3").sum() == 1 and (checks["check"] == "fit_iou").sum() >= 2
    assert "checks hold" in (results / "tables" / "claims.md").read_text()
    for name in ["table1", "table2"]:
        assert (results / "tables" / f"{name}.md").read_text().count("\n| ") >= len(METHODS) + 1
        assert "\\begin{tabular}" in (results / "tables" / f"{name}.tex").read_text()
    figures = [results / "figures" / f"{f}.png" for f in ("fig1_samples", "fig4_methods")]
    figures += [results / c / "figures" / f"{f}.png" for c in CATEGORIES
                for f in ("fig2_interpolation", "fig3_pd_matrices", "training_curves")]
    for png in figures:
        assert png.stat().st_size > 10_000, png
    values = json.loads((results / "chair" / "figures" / "fig3_pd_matrices.json").read_text())
    assert values["shapes"] == 5 and values["pd_lap_training_vs_synthetic"] >= 0
    study = pd.read_csv(results / "study_1d" / "study_1d.csv")
    assert set(study["decay"]) == {0.0, 2.0} and np.isfinite(study["rel_error"]).all()
    assert (results / "study_1d" / "study_1d.png").stat().st_size > 10_000


def test_report_gathers_tables_and_figures(tiny_run):
    workdir, _ = tiny_run
    run = _snakemake(workdir, "--report", "report.html")
    assert run.returncode == 0, run.stderr[-3000:]
    html = (workdir / "report.html").read_text(errors="replace")
    assert "fig1_samples.png" in html and "table1.md" in html


def test_rerun_has_nothing_to_do(tiny_run):
    workdir, _ = tiny_run
    run = _snakemake(workdir, "--dry-run", "all")
    assert run.returncode == 0 and "Nothing to be done" in run.stdout + run.stderr


def test_a_packed_run_assembles_the_same_tables_without_its_checkpoints(tiny_run, tmp_path):
    """tools/assemble_reference.py, for references made one category at a time: from what tools/pack_reference.py
    keeps of the tiny run, the tables and claims of the run to the byte, the methods in the run's order."""
    workdir, _ = tiny_run
    dest = tmp_path / "tiny" / "seed0"
    tool = [sys.executable, str(ROOT / "tools" / "pack_reference.py"), str(workdir), str(dest), "--command", "x",
            "--commit", "x", "--wall", "x", "--configs", "config.yaml", *TINY]
    assert subprocess.run(tool, capture_output=True, text=True).returncode == 0
    assert not list(dest.rglob("*.pt"))
    shutil.rmtree(dest / "tiny" / "tables")
    assemble = subprocess.run([sys.executable, str(ROOT / "tools" / "assemble_reference.py"), str(dest),
                               "--configfile", *(Path(name).name for name in TINY)], capture_output=True, text=True)
    assert assemble.returncode == 0, assemble.stderr[-3000:]
    made, assembled = workdir / "results" / "tiny" / "tables", dest / "tiny" / "tables"
    assert sorted(p.name for p in made.iterdir()) == sorted(p.name for p in assembled.iterdir())
    assert all((made / p.name).read_bytes() == p.read_bytes() for p in assembled.iterdir())
    (dest / "tiny" / "chair" / "eval" / "calibration.json").unlink()
    missing = subprocess.run([sys.executable, str(ROOT / "tools" / "assemble_reference.py"), str(dest),
                              "--configfile", *(Path(name).name for name in TINY)], capture_output=True, text=True)
    assert missing.returncode != 0 and "no records of chair" in missing.stderr


def test_changing_one_methods_weight_reruns_exactly_its_stage_two_and_what_follows(tiny_run):
    """A config change reruns what it changes (rules pass their settings as params): lambda_con of one method
    reruns that method's stage 2 in each category and every job downstream of it, as --forcerun would, and no
    other method's training, generation or metrics."""
    workdir, _ = tiny_run
    (workdir / "changed.yaml").write_text("methods:\n  ours_deepsdf:\n    lambda_con: 0.4\n")
    changed = _planned(workdir, configfiles=(*TINY, "changed.yaml"))
    stage2 = [f"results/tiny/{c}/train/ours_deepsdf/model.pt" for c in CATEGORIES]
    assert changed == _planned(workdir, "--forcerun", *stage2)
    assert set(stage2) <= changed
    assert "results/tiny/tables/table1.csv" in changed and "results/tiny/figures/fig4_methods.png" in changed
    for other in METHODS:
        if other != "ours_deepsdf":
            assert not any(f"/{other}/" in path for path in changed), other
    assert not any("/stage1/" in path or path.endswith("pdgen.pt") for path in changed)


def test_changing_stage_1b_schedule_reruns_the_learned_methods_only(tiny_run):
    """train.pdgen.lr is read by stage 1b alone: it reruns the learned methods' stage 1b and what follows (their
    stage 2 through pdgen.pt), and neither the baselines' nor No PD Training's stage 2 (no stage 1b)."""
    workdir, _ = tiny_run
    (workdir / "lr.yaml").write_text("train:\n  pdgen:\n    lr: 0.0001\n")
    changed = _planned(workdir, configfiles=(*TINY, "lr.yaml"))
    assert changed == _planned(workdir, "--forcerun", "pretrain_pdgen")
    learned = ("ours_deepsdf", "ours_deepsdf_se", "no_pd_smoothness")
    assert {f"results/tiny/{c}/train/{m}/model.pt" for c in CATEGORIES for m in learned} <= changed
    for other in set(METHODS) - set(learned):
        assert not any(f"/{other}/" in path for path in changed), other


def test_changing_tau_reruns_everything_from_the_diagrams_down(tiny_run):
    workdir, _ = tiny_run
    (workdir / "tau.yaml").write_text("persistence:\n  tau: 0.12\n")
    changed = _planned(workdir, configfiles=(*TINY, "tau.yaml"))
    # the 3DShape2VecSet samples take no ground-truth diagrams but compute theirs at tau
    assert changed == _planned(workdir, "--forcerun", "persistence", "vecset_samples")
    assert {f"results/tiny/{c}/diagrams/{s}.npz" for c in CATEGORIES for s in (0, 1)} <= changed
    assert not any("/sdf/" in path or "/grids/" in path or "/stage1/" in path for path in changed)


def test_an_external_folder_adds_its_row_and_a_changed_file_reruns_that_row_only(tiny_run, tmp_path):
    """external: two training meshes per category as another generator's samples (tiny: 2 draws of 1 shape). The
    entry plans only its row's jobs and what aggregates the rows (tables, claims, Fig. 4); the row runs, with its
    contact sheet, and Table 1 shows it; rewriting one chair file (another mesh: a file rewritten unchanged is no
    change to Snakemake, which compares checksums) then reruns the chair's row and the aggregates alone, no method's
    jobs."""
    workdir, _ = tiny_run
    import json

    for category in CATEGORIES:
        folder = tmp_path / "external" / category
        folder.mkdir(parents=True)
        train = json.loads((workdir / f"results/tiny/{category}/split.json").read_text())["train"]
        for k, model_id in enumerate(train[:2]):
            shutil.copy(workdir / f"results/tiny/{category}/meshes/{model_id}.obj", folder / f"{k:02d}.obj")
    (workdir / "external.yaml").write_text(f"external:\n  copy:\n    samples: {tmp_path}/external/{{category}}\n"
                                           "    normalize: false\n")
    configs = (*TINY, "external.yaml")
    row = {f"results/tiny/{c}/{path}" for c in CATEGORIES for path in (
        "generate/copy/diagrams.npz", "generate/copy/shapes.npz", "generate/copy/manifest.json",
        "eval/copy/reconstruction.csv", "eval/copy/metrics.json", "figures/prior_samples/copy.png")}
    aggregates = {f"results/tiny/tables/{t}.{e}" for t in ("table1", "table2", "generation") for e in ("csv", "md", "tex")}
    aggregates |= {"results/tiny/tables/cd_paired.csv", "results/tiny/tables/cd_paired.md",
                   "results/tiny/tables/claims.csv", "results/tiny/tables/claims.md",
                   "results/tiny/figures/fig4_methods.png"}
    assert _planned(workdir, configfiles=configs) == row | aggregates
    # the row and Table 1 (not Fig. 4 and the claims, which take a minute of the suite's time)
    run = _snakemake(workdir, *sorted(row), "results/tiny/tables/table1.md", configfiles=configs)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| copy |" in (workdir / "results/tiny/tables/table1.md").read_text()
    chair = json.loads((workdir / "results/tiny/chair/split.json").read_text())["train"][2]  # another mesh
    shutil.copy(workdir / f"results/tiny/chair/meshes/{chair}.obj", tmp_path / "external" / "chair" / "01.obj")
    rerun = _planned(workdir, configfiles=configs)
    assert {path for path in row if "/chair/" in path and "reconstruction" not in path} <= rerun
    assert rerun - row <= aggregates


def test_the_gpu_preset_plans_every_method_with_its_rehearsal_on_top(tmp_path):
    """tools/gpu_reference.sh's workflow call on the GPU preset with the CPU rehearsal's sizes: a dry run plans
    every method of both categories (the rehearsal itself runs the script: presets/gpu_rehearsal.yaml)."""
    workdir = _copy_workflow(tmp_path)
    run = subprocess.run(
        SNAKEMAKE + ["--dry-run", "--cores", "16", "--resources", "gpu=6", "--set-threads", "pretrain_implicit=2",
                     "joint_train=3", "generate=2", "reconstruct=2", "--configfile", "presets/gpu_reference.yaml",
                     "presets/gpu_rehearsal.yaml"], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    planned = {p for line in run.stdout.splitlines() if line.startswith("    output: ") for p in line[12:].split(", ")}
    for category in CATEGORIES:
        for method in METHODS:
            assert f"results/gpu_rehearsal/{category}/eval/{method}/metrics.json" in planned
    assert "results/gpu_rehearsal/chair/sdf/15.npz" in planned  # the preset's 16 shards


def test_the_data_target_plans_preprocessing_and_no_training(tmp_path):
    """docs/cluster.md's workstation step: `snakemake data` makes the data and nothing from training on."""
    workdir = _copy_workflow(tmp_path)
    run = _snakemake(workdir, "data", "--dry-run")
    assert run.returncode == 0, run.stderr[-3000:]
    rules = {line.split()[1].rstrip(":") for line in (run.stdout + run.stderr).splitlines()
             if line.startswith("rule ")}
    assert {"normalize", "sample_sdf", "sdf_grid", "persistence", "contact_sheet", "plot_diagrams"} <= rules
    assert not rules & {"pretrain_implicit", "pretrain_pdgen", "joint_train", "generate", "calibrate", "evaluate"}


def test_invalid_config_fails_before_any_job_naming_the_key(tmp_path):
    workdir = _copy_workflow(tmp_path)
    (workdir / "bad.yaml").write_text("persistence:\n  tau: -1\n")
    run = subprocess.run(SNAKEMAKE + ["--cores", "1", "--configfile", "bad.yaml"], cwd=workdir,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "error: invalid configuration:\n  persistence.tau: -1" in run.stderr
    assert "File \"" not in run.stderr and "Traceback" not in run.stderr  # the message alone
    assert not (workdir / "results").exists()


def test_shapenet_layout_with_a_broken_mesh_is_skipped_and_recorded(tmp_path):
    """dataset.kind: shapenet on a ShapeNetCore.v2-layout folder, one corrupt model, skip_invalid: true."""
    from toposdf.data import mesh_path
    from toposdf.synthetic import write_synthetic_dataset

    root = tmp_path / "ShapeNetCore.v2"
    write_synthetic_dataset(root, "chair", 5, seed=3, progress=False)
    broken = mesh_path(root, "chair", "broken_model")
    broken.parent.mkdir(parents=True)
    broken.write_text("v 0 0 0\nf 1 2 3 4 5\n")
    (broken.parents[2] / "model_without_mesh").mkdir()  # a model folder whose mesh is missing is named too
    workdir = _copy_workflow(tmp_path / "wf")
    (workdir / "shapenet_test.yaml").write_text(
        f"dataset:\n  kind: shapenet\n  name: sn\n  root: {root}\n  categories: [chair]\n"
        "  shapes_per_category: null\n  test_fraction: 0.2\n  skip_invalid: true\n"
        "sdf:\n  n_points: 1000\ngrid:\n  resolution: 24\nshards: 2\npreview:\n  n_shapes: 4\n"
    )
    # Only what preprocessing makes: "all" would train the default config's models on these shapes.
    target = "results/sn/chair/manifest.csv"
    run = subprocess.run(SNAKEMAKE + [target, "--cores", "2", "--configfile", "shapenet_test.yaml"], cwd=workdir,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-5000:]
    manifest = pd.read_csv(workdir / "results" / "sn" / "chair" / "manifest.csv")
    assert len(manifest) == 7
    skipped = manifest[manifest["status"] == "skipped"].set_index("model_id")
    assert sorted(skipped.index) == ["broken_model", "model_without_mesh"]
    assert "broken_model" in skipped.loc["broken_model", "reason"]
    assert "no such mesh file" in skipped.loc["model_without_mesh", "reason"]
    ok = manifest[manifest["status"] == "ok"]
    assert ok["b0"].notna().all() and (ok["sign"] == "winding").all() and (ok["inside_fraction"] > 0.001).all()
    log = (workdir / "results" / "sn" / "logs" / "category_manifest" / "chair.log").read_text()
    assert "skipped broken_model" in log
