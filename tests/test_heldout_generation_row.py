"""The calibration rows' generation metrics (MMD/COV/1-NNA-CD): the held-out training shapes over their draws and
the blob, computed as a method's, with the calibration rows' PD-LAP left as it was."""

import json

import numpy as np
import pytest
import trimesh

from toposdf.jobs import Job
from toposdf.calibration import calibration_draws, calibration_picks, run_calibrate, subset_generation_metrics
from toposdf.evaluation import shape_clouds
from toposdf.field import sample_surface
from toposdf.metrics import mmd_cov_1nna, pd_lap_summary
from toposdf.tables import write_tables
from toposdf.topology import load_diagrams, save_diagrams

RAW = {"evaluation": {"generated_shapes": None, "draws": 3, "seed": 0, "cloud_points": 128},
       "grid": {"resolution": 16}, "persistence": {"tau": 0.1, "min_persistence": 0.02}}


def _ring(holes: int) -> list[np.ndarray]:
    return [np.array([[-0.1, 0.1]]), np.array([[-0.02 * (i + 1), 0.05] for i in range(holes)]).reshape(-1, 2),
            np.zeros((0, 2))]


def _category(root, train: list[trimesh.Trimesh], test: list[trimesh.Trimesh]):
    """What preprocessing leaves for one category: a manifest of normalized meshes, the split and the diagrams
    (training shape k and test shape k share their diagrams)."""
    (root / "meshes").mkdir(parents=True)
    train_ids, test_ids = [f"a{k}" for k in range(len(train))], [f"b{k}" for k in range(len(test))]
    records = []
    for shape_id, mesh in zip(train_ids + test_ids, train + test):
        mesh.export(root / "meshes" / f"{shape_id}.obj")
        records.append({"model_id": shape_id, "status": "ok", "mesh": f"{shape_id}.obj"})
    (root / "meshes" / "0.json").write_text(json.dumps({"shapes": records}))
    (root / "split.json").write_text(json.dumps({"train": train_ids, "test": test_ids}))
    diagrams = [_ring(k) for k in range(len(train))] + [_ring(k) for k in range(len(test))]
    save_diagrams(root / "diagrams.npz", train_ids + test_ids, diagrams, tau=0.1, min_persistence=0.02)
    return root / "split.json", [root / "diagrams.npz"], [root / "meshes" / "0.json"]


def _calibrate(root, train, test, raw=RAW):
    split, diagrams, manifests = _category(root, train, test)
    run_calibrate(Job.of(raw, dict(split=split, diagrams=diagrams, manifests=manifests),
                         dict(calibration=root / "calibration.json"), category="chair"))
    return {row["method"]: row["metrics"] for row in json.loads((root / "calibration.json").read_text())["rows"]}


def _spheres(radii) -> list[trimesh.Trimesh]:
    return [trimesh.creation.icosphere(subdivisions=2, radius=r) for r in radii]


def test_held_out_shapes_that_are_the_test_shapes_cover_all_at_no_distance_and_the_blob_covers_one(tmp_path):
    """Training shapes identical to the test shapes, with clouds seeded alike: every draw (a permutation of them)
    has MMD 0, COV 100% and 1-NNA 0% (each shape's nearest neighbour is its copy in the other set, PointFlow's
    "two identical sets"). The blob's copies all sit nearest one test shape (COV 1/3) and nearest each other
    (1-NNA 100%); a method's table rows are not shown differently."""
    radii = (0.80, 0.85, 0.90)
    rows = _calibrate(tmp_path, _spheres(radii), _spheres(radii))
    floor, blob = rows["heldout_training"], rows["blob"]
    assert floor["pd_lap"] == {"mean": 0.0, "std": 0.0, "n": 3, "draws": [0.0, 0.0, 0.0]}
    assert floor["mmd_cd"] == {"mean": 0.0, "std": 0.0, "n": 3}
    assert floor["cov_cd"] == {"mean": 1.0, "std": 0.0, "n": 3}
    assert floor["1_nna_cd"] == {"mean": 0.0, "std": 0.0, "n": 3}
    assert blob["cov_cd"] == {"mean": pytest.approx(1 / 3), "std": None, "n": 1}
    assert blob["1_nna_cd"] == {"mean": 1.0, "std": None, "n": 1}
    # the blob, a ball of radius 0.5, is about 2 (0.3)^2 = 0.18 from the nearest sphere in DeepSDF's Chamfer
    assert 0.1 < blob["mmd_cd"]["mean"] < 0.3 and blob["mmd_cd"]["std"] is None

    method = {"category": "chair", "method": "ours_deepsdf",
              "metrics": {"mmd_cd": {"mean": 0.05, "std": None, "n": 1}, "cov_cd": {"mean": 0.5, "std": None, "n": 1},
                          "1_nna_cd": {"mean": 0.7, "std": None, "n": 1}}}
    (tmp_path / "metrics.json").write_text(json.dumps(method))
    write_tables([tmp_path / "metrics.json", tmp_path / "calibration.json"], ["ours_deepsdf"], ["chair"],
                 tmp_path / "tables", 1000, 10)
    table = (tmp_path / "tables" / "generation.md").read_text()
    assert "| Ours-DeepSDF | **50.00** | **50.00** | **70.00** |" in table
    assert "| Held-out training shapes (floor) | 0.00 ± 0.00 | 100.00 ± 0.00 | 0.00 ± 0.00 |" in table
    assert "| One fixed blob (ceiling) | " in table and "| 33.33 | 100.00 |" in table


def test_the_calibration_rows_pd_lap_is_that_of_the_calibration_draws(tmp_path):
    """The PD-LAP rows come from calibration_draws, whose training shapes are calibration_picks' (the clouds'
    indices), unchanged by the generation metrics; the held-out row's draws differ, so its metrics have a std."""
    rows = _calibrate(tmp_path, _spheres((0.5, 0.6, 0.7, 0.8, 0.9)), _spheres((0.55, 0.75)))
    ids, diagrams, _ = load_diagrams(tmp_path / "diagrams.npz")
    by_id = dict(zip(ids, diagrams))
    train, test = [by_id[f"a{k}"] for k in range(5)], [by_id[f"b{k}"] for k in range(2)]
    # the draws the floor has always had for seed 0 (before calibration_picks was split out of calibration_draws)
    picks = [pick.tolist() for pick in calibration_picks(5, 2, 0, 3)]
    assert picks == [[0, 2], [0, 2], [1, 4]]
    assert [pick.tolist() for pick in calibration_picks(5, 7, 0, 2)] == [[3, 0, 0, 4, 1, 3, 0], [0, 2, 3, 4, 0, 2, 2]]
    floor = calibration_draws(train, 2, 0, 3)
    assert all(shape is train[i] for draw, pick in zip(floor, picks) for shape, i in zip(draw, pick))
    summary = pd_lap_summary(floor, test)
    stats, values = summary.stats(), summary.values.tolist()
    assert rows["heldout_training"]["pd_lap"] == {"mean": stats["total"][0], "std": stats["total"][1], "n": 3,
                                                  "draws": values}
    assert rows["heldout_training"]["pd_lap_h1"]["draws"] == summary.per_dimension[:, 1].tolist()
    assert len(set(values)) > 1  # three different draws, kept in order
    assert rows["heldout_training"]["mmd_cd"]["std"] > 0 and rows["heldout_training"]["mmd_cd"]["n"] == 3


def test_subset_metrics_equal_mmd_cov_1nna_on_each_subset_bit_for_bit():
    """One distance matrix sliced per draw gives what mmd_cov_1nna gives on the draw's clouds, repeats (a draw
    with replacement) and an empty cloud included."""
    rng = np.random.default_rng(0)
    clouds = [rng.normal(size=(rng.integers(20, 40), 3)) * s for s in (0.5, 0.8, 1.0, 1.3)] + [np.zeros((0, 3))]
    references = [rng.normal(size=(30, 3)) * s for s in (0.6, 0.9, 1.2)]
    picks = calibration_picks(len(clouds), 3, 1, 4) + [np.array([2, 2, 0, 4])]
    for pick, got in zip(picks, subset_generation_metrics(clouds, references, picks)):
        expected = mmd_cov_1nna([clouds[i] for i in pick], references)
        assert got == {key: value for key, value in expected.items() if key != "empty_samples"}


def test_shapes_from_one_distribution_are_told_apart_by_chance_alone():
    """Clouds of one sphere drawn with different seeds: the sets differ by sampling alone, and 1-NNA is near 50%."""
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.7)
    clouds = [sample_surface(sphere.vertices, sphere.faces, 64, seed) for seed in range(32)]
    (metrics,) = subset_generation_metrics(clouds[:16], clouds[16:], [np.arange(16)])
    assert 0.3 < metrics["1-NNA-CD"] < 0.7 and metrics["COV-CD"] > 0.3


def test_ground_truth_clouds_are_seeded_by_their_place_among_the_sorted_ids(tmp_path):
    *_, manifests = _category(tmp_path, _spheres((0.5, 0.6)), _spheres((0.7,)))
    clouds = shape_clouds(manifests, ["a1", "b0", "a0", "missing"], 16, 5)
    assert list(clouds) == ["a0", "a1", "b0"]
    mesh = trimesh.load(tmp_path / "meshes" / "b0.obj", process=False)
    np.testing.assert_array_equal(clouds["b0"], sample_surface(mesh.vertices, mesh.faces, 16, 5 + 2))


def test_a_training_shape_without_a_mesh_is_an_error_naming_it(tmp_path):
    split, diagrams, manifests = _category(tmp_path, _spheres((0.5, 0.6)), _spheres((0.7,)))
    shapes = json.loads(manifests[0].read_text())
    shapes["shapes"][1]["status"] = "skipped"
    manifests[0].write_text(json.dumps(shapes))
    with pytest.raises(ValueError, match=r"no normalized mesh for 1 training shapes.*a1"):
        run_calibrate(Job.of(RAW, dict(split=split, diagrams=diagrams, manifests=manifests),
                             dict(calibration=tmp_path / "c.json"), category="chair"))


@pytest.mark.workflow
def test_the_calibrate_rule_reads_the_meshes_and_the_cloud_size(tmp_path):
    from test_workflow import _copy_workflow, _snakemake

    workdir = _copy_workflow(tmp_path / "wf")
    target = "results/tiny/chair/eval/calibration.json"
    run = _snakemake(workdir, target, "--dry-run")
    assert run.returncode == 0, run.stderr[-3000:]
    lines = (run.stdout + run.stderr).splitlines()
    job = lines[next(i for i, line in enumerate(lines) if line.startswith("rule calibrate")):]
    inputs = next(line for line in job if line.startswith("    input: "))
    assert "results/tiny/chair/meshes/0.json" in inputs and "results/tiny/chair/diagrams/0.npz" in inputs
