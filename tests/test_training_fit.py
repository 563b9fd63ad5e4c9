"""The decoder's fit of its own shapes (rule training_fit, toposdf.diagnostics.training_fit): retrieval without the
near-twins, the test shapes' reconstructions decoded on the grid, the sample of training shapes, and the rule in
the workflow's DAG."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from test_evaluation import SphereDecoder, _model
from test_workflow import METHODS, _copy_workflow, _snakemake

from toposdf.data import grid_points
from toposdf.diagnostics import (TWIN_IOU, fitted_test_codes, occupancy_fit, run_training_fit, training_fit,
                                 training_sample)
from toposdf.evaluation import run_reconstruct
from toposdf.generation import TrainedModel, save_meshes
from toposdf.jobs import Job

RESOLUTION = 20


def _segments(*spans: tuple[int, int], size: int = 100) -> np.ndarray:
    """One occupancy per span: voxels ``[start, stop)`` of ``size`` inside."""
    out = np.zeros((len(spans), size), bool)
    for row, (start, stop) in zip(out, spans):
        row[start:stop] = True
    return out


def test_near_twins_are_left_out_of_retrieval_no_twin():
    """a and b are identical, so twins: b decoded exactly is tied with a and fails retrieval, and both are left
    out of retrieval_no_twin. c and d overlap at IoU 0.75, below the threshold: c decoded as d fails both
    retrievals, until the threshold drops to 0.75 and makes them twins too. e is alone and found."""
    truth = _segments((0, 20), (0, 20), (30, 50), (30, 45), (60, 80))  # IoU(c, d) = 15 / 20
    decoded = truth.copy()
    decoded[2] = truth[3]
    fit = occupancy_fit(decoded, truth)
    assert TWIN_IOU == 0.85
    assert fit["retrieval"] == pytest.approx(3 / 5)  # a, d, e
    assert fit["shapes_no_twin"] == 3 and fit["retrieval_no_twin"] == pytest.approx(2 / 3)  # c, d, e: d and e
    looser = occupancy_fit(decoded, truth, twin_iou=0.75)  # at the threshold: twins
    assert looser["shapes_no_twin"] == 1 and looser["retrieval_no_twin"] == 1.0
    assert looser["retrieval"] == fit["retrieval"]  # the all-shape share does not look for twins
    twins = occupancy_fit(truth[:2], truth[:2])
    assert twins["retrieval"] == 0.5 and twins["shapes_no_twin"] == 0 and np.isnan(twins["retrieval_no_twin"])
    one = occupancy_fit(truth[:1], truth[:1])  # no other shape: no twin, and no nearest other
    assert one["shapes_no_twin"] == 1 and one["retrieval_no_twin"] == 1.0 and np.isnan(one["nearest_other_iou"])
    with pytest.raises(ValueError, match="same shape"):
        occupancy_fit(decoded[:2], truth)


def test_occupancy_fit_matches_a_double_loop():
    rng = np.random.default_rng(0)
    truth = rng.random((9, 4, 4, 4)) < 0.5
    truth[3] = truth[1]  # a twin pair
    truth[5] = truth[4] ^ (rng.random((4, 4, 4)) < 0.03)  # a near-twin
    decoded = truth ^ (rng.random(truth.shape) < 0.2)
    decoded[6] = truth[7]

    def iou(a, b):
        return (a & b).sum() / max((a | b).sum(), 1)

    n = len(truth)
    nearest = [max(iou(truth[i], truth[j]) for j in range(n) if j != i) for i in range(n)]
    closest = [max(range(n), key=lambda j: (iou(decoded[i], truth[j]), -j)) for i in range(n)]
    alone = [i for i in range(n) if nearest[i] < TWIN_IOU]
    fit = occupancy_fit(decoded, truth)
    assert fit["decoded_iou"] == pytest.approx(np.mean([iou(decoded[i], truth[i]) for i in range(n)]))
    assert fit["nearest_other_iou"] == pytest.approx(np.mean(nearest))
    assert fit["retrieval"] == pytest.approx(np.mean([closest[i] == i for i in range(n)]))
    assert fit["shapes_no_twin"] == len(alone) < n
    assert fit["retrieval_no_twin"] == pytest.approx(np.mean([closest[i] == i for i in alone]))
    assert fit["volume_ratio"] == pytest.approx(decoded.sum() / truth.sum())


def _torus(n: int = 24, cut: bool = False) -> np.ndarray:
    """A solid torus (major radius 0.5, minor 0.2) on the n^3 grid over [-1, 1]^3, optionally cut through at x > 0.3
    near y = 0: a ring broken into one bent bar."""
    p = grid_points(n).reshape(n, n, n, 3)
    ring = (np.hypot(p[..., 0], p[..., 1]) - 0.5) ** 2 + p[..., 2] ** 2 < 0.2 ** 2
    if cut:
        ring &= ~((p[..., 0] > 0.3) & (np.abs(p[..., 1]) < 0.15))
    return ring


def test_topology_fit_counts_tunnels_kept_and_pieces_on_the_grid():
    """Truth: a torus, a torus, a ball. Decoded: the first torus as is, the second broken through (its tunnel lost,
    still one piece), the ball with a second ball beside it. Half the tunnels kept; b1 right for two of three,
    b0 for two of three; the Betti numbers are those of the shapes."""
    from toposdf.diagnostics import occupancy_betti, topology_fit

    p = grid_points(24).reshape(24, 24, 24, 3)
    ball = np.linalg.norm(p, axis=-1) < 0.4
    two_balls = ball | (np.linalg.norm(p - [0.75, 0, 0], axis=-1) < 0.15)
    truth = np.stack([_torus(), _torus(), ball])
    decoded = np.stack([_torus(), _torus(cut=True), two_balls])
    assert occupancy_betti(truth).tolist() == [[1, 1, 0], [1, 1, 0], [1, 0, 0]]
    assert occupancy_betti(decoded).tolist() == [[1, 1, 0], [1, 0, 0], [2, 0, 0]]
    fit = topology_fit(decoded, truth)
    assert fit["tunnels_kept"] == 0.5
    assert fit["b1_exact"] == pytest.approx(2 / 3) and fit["b0_exact"] == pytest.approx(2 / 3)
    assert topology_fit(truth, truth) == {"tunnels_kept": 1.0, "b1_exact": 1.0, "b0_exact": 1.0}
    assert np.isnan(topology_fit(ball[None], ball[None])["tunnels_kept"])  # no tunnel to keep
    with pytest.raises(ValueError, match="same shape"):
        topology_fit(decoded[:2], truth)


def _radius() -> np.ndarray:
    return np.linalg.norm(grid_points(RESOLUTION), axis=1).reshape((RESOLUTION,) * 3)


def _sphere_grids(path: Path, radii: dict[str, float]) -> Path:
    """A grids/{shard}.npz of spheres: id -> radius."""
    grids = np.stack([_radius() - r for r in radii.values()]).astype(np.float32)
    np.savez(path, ids=np.array(list(radii)), grids=grids, resolution=RESOLUTION)
    return path


def _spheres(n: int) -> TrainedModel:
    """n training spheres of radius 0.3, 0.35, ... (SphereDecoder: 0.5 + 0.1 z_0), ids s0, s1, ..."""
    mu = torch.zeros(n, 2)
    mu[:, 0] = torch.arange(n) * 0.5 - 2.0
    return TrainedModel(SphereDecoder(), mu, None, [f"s{i}" for i in range(n)], "sphere", torch.device("cpu"), 0.9)


def test_test_shapes_are_decoded_from_their_fitted_codes_and_scored_against_their_own_grid(tmp_path):
    """The sphere decoder at code 0 is the ball of radius 0.5: test shape c (radius 0.5) scores IoU 1, d (radius
    0.6) the share of its voxels within 0.5. The narrow band gives the full grid's signs."""
    grids = _sphere_grids(tmp_path / "0.npz", {"a": 0.4, "b": 0.6, "c": 0.5, "d": 0.6})
    codes = (["c", "d"], np.zeros((2, 2), np.float32))
    fit = training_fit(_model(), [grids], test_codes=codes)
    radius = _radius()
    assert fit["test_shapes"] == 2
    assert fit["test_decoded_iou"] == pytest.approx((1 + (radius < 0.5).sum() / (radius < 0.6).sum()) / 2)
    assert fit["decoded_iou"] == 1.0 and fit["training_shapes"] == 2 and fit["shapes_no_twin"] == 2
    # spheres have no tunnel: tunnels_kept is NaN, which only approx's nan_ok counts as equal to itself
    assert training_fit(_model(), [grids], test_codes=codes, tau=0.1) == pytest.approx(fit, nan_ok=True)
    assert "test_shapes" not in training_fit(_model(), [grids])  # no codes, no test numbers
    empty = training_fit(_model(), [grids], test_codes=([], np.zeros((0, 0), np.float32)))
    assert empty["test_shapes"] == 0 and np.isnan(empty["test_decoded_iou"])
    with pytest.raises(ValueError, match="no ground-truth grid for 1 shapes"):
        training_fit(_model(), [grids], test_codes=(["e"], np.zeros((1, 2), np.float32)))


def test_at_most_the_configured_number_of_training_shapes_is_measured(tmp_path):
    assert list(training_sample(5, None, 0)) == list(training_sample(5, 5, 0)) == list(range(5))
    sample = training_sample(100, 10, 3)
    assert len(set(sample)) == 10 and list(sample) == sorted(sample) and sample.max() < 100
    assert np.array_equal(sample, training_sample(100, 10, 3))
    assert not np.array_equal(sample, training_sample(100, 10, 4))
    with pytest.raises(ValueError, match=">= 1"):
        training_sample(5, 0, 0)

    model = _spheres(8)
    grids = _sphere_grids(tmp_path / "0.npz", {f"s{i}": 0.3 + 0.05 * i for i in range(8)})
    fit = training_fit(model, [grids], shapes=3, seed=1)
    radius = _radius()
    picked = np.stack([radius < 0.3 + 0.05 * i for i in training_sample(8, 3, 1)])
    assert fit["training_shapes"] == 3 and fit["latent_aggregate_std"] == 0.9
    assert fit["nearest_other_iou"] == occupancy_fit(picked, picked)["nearest_other_iou"]  # among the sample only
    assert fit["nearest_other_iou"] != training_fit(model, [grids])["nearest_other_iou"]


class TrainableSphere(SphereDecoder):
    """The sphere decoder with one (unused) parameter: the latent fit finds the device from the parameters."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))


def _obj_sphere(path: Path, radius: float) -> None:
    trimesh.creation.icosphere(subdivisions=3, radius=radius).export(path)


def test_reconstruct_keeps_the_fitted_codes_that_training_fit_decodes(tmp_path, monkeypatch):
    """run_reconstruct saves each test shape's code beside its mesh; run_training_fit decodes them and writes one
    row per method with its provenance; a reconstruction from before the codes were kept gives no test shapes."""
    import toposdf.diagnostics as diagnostics
    import toposdf.evaluation as evaluation

    model = TrainedModel(TrainableSphere(), torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), None, ["a", "b"], "sphere",
                         torch.device("cpu"), 1.0)
    monkeypatch.setattr(evaluation, "load_model", lambda path, device=None: model)
    monkeypatch.setattr(diagnostics, "load_model", lambda path, device=None: model)
    (tmp_path / "split.json").write_text(json.dumps({"train": ["a", "b"], "test": ["c", "d"]}))
    points = np.random.default_rng(0).uniform(-1, 1, (2, 400, 3)).astype(np.float32)
    sdf = np.linalg.norm(points, axis=-1) - np.array([[0.5], [0.6]], np.float32)
    np.savez(tmp_path / "sdf.npz", ids=np.array(["c", "d"]), points=points, sdf=sdf)
    for shape_id, radius in [("c", 0.5), ("d", 0.6)]:
        _obj_sphere(tmp_path / f"{shape_id}.obj", radius)
    (tmp_path / "meshes.json").write_text(json.dumps({"shapes": [
        {"model_id": i, "status": "ok", "mesh": f"{i}.obj"} for i in ("c", "d")]}))
    settings = {"evaluation": {"seed": 0, "surface_points": 500, "training_fit_shapes": 256,
                               "reconstruct": {"iterations": 60, "lr": 0.05, "reg": 0.0, "samples_per_iteration": 400}},
                "grid": {"resolution": RESOLUTION}, "persistence": {"tau": 0.1}}
    (tmp_path / "model.pt").write_bytes(b"checkpoint")
    run_reconstruct(Job.of(settings, dict(model=tmp_path / "model.pt", split=tmp_path / "split.json",
                                          samples=[tmp_path / "sdf.npz"], manifests=[tmp_path / "meshes.json"]),
                           dict(chamfer=tmp_path / "reconstruction.csv", meshes=tmp_path / "reconstruction.npz")))
    ids, codes = fitted_test_codes(tmp_path / "reconstruction.npz")
    assert ids == ["c", "d"] and codes.shape == (2, 2)
    np.testing.assert_allclose(0.5 + 0.1 * codes[:, 0], [0.5, 0.6], atol=0.02)  # the spheres' radii

    grids = _sphere_grids(tmp_path / "0.npz", {"a": 0.4, "b": 0.6, "c": 0.5, "d": 0.6})
    save_meshes(tmp_path / "old.npz", [], ids=np.array(["c", "d"]))  # no latents
    out = tmp_path / "training_fit.json"
    run_training_fit(Job.of(settings, dict(models=[tmp_path / "model.pt"] * 2, grids=[grids],
                                           reconstructions=[tmp_path / "reconstruction.npz", tmp_path / "old.npz"]),
                            dict(fit=out), category="chair"))
    result = json.loads(out.read_text())
    assert result["category"] == "chair" and result["twin_iou"] == TWIN_IOU and result["training_fit_shapes"] == 256
    new, old = result["rows"]
    assert new["method"] == "sphere" and new["test_shapes"] == 2 and new["test_decoded_iou"] > 0.8
    assert new["decoded_iou"] == 1.0 and new["latent_aggregate_std"] == 1.0
    assert old["test_shapes"] == 0 and old["test_decoded_iou"] is None  # NaN as null
    record = new["provenance"]
    assert record["checkpoint"] == str(tmp_path / "model.pt") and record["seed"] == 0
    assert len(record["config_sha256"]) == 64 and len(record["checkpoint_sha256"]) == 64
    with pytest.raises(ValueError, match="one reconstruction per model"):
        run_training_fit(Job.of(settings, dict(models=[tmp_path / "model.pt"], reconstructions=[], grids=[grids]),
                                dict(fit=out), category="chair"))


def test_the_tool_reads_the_test_codes_of_a_finished_run(tmp_path, monkeypatch):
    run = tmp_path / "run" / "chair"
    for folder in ("grids", "train/sphere", "eval/sphere"):
        (run / folder).mkdir(parents=True)
    _sphere_grids(run / "grids" / "0.npz", {"a": 0.4, "b": 0.6, "c": 0.5})
    (run / "train" / "sphere" / "model.pt").write_bytes(b"")
    save_meshes(run / "eval" / "sphere" / "reconstruction.npz", [(np.zeros((0, 3)), np.zeros((0, 3)))],
                ids=np.array(["c"]), latents=np.zeros((1, 2), np.float32))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "tools"))
    import training_fit as tool

    monkeypatch.setattr(tool, "load_model", lambda path, device: _model())
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    tool.main([str(tmp_path / "run"), "--out", str(tmp_path / "fit.json")])
    (row,) = json.loads((tmp_path / "fit.json").read_text())["rows"]
    assert row["method"] == "sphere" and row["test_shapes"] == 1 and row["test_decoded_iou"] == 1.0
    assert row["retrieval_no_twin"] == 1.0 and row["shapes_no_twin"] == 2


def test_the_rule_measures_every_method_of_a_category_in_one_job(tmp_path):
    """A dry run of the tiny preset's ``all`` plans one training_fit job per category, from every method's final
    model and test-shape reconstruction of that category and its grids, and nothing of the other category."""
    workdir = _copy_workflow(tmp_path)
    run = _snakemake(workdir, "all", "--dry-run", configfiles=("presets/tiny.yaml",))  # both categories
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = {}
    for block in (run.stdout + run.stderr).split("rule training_fit:")[1:]:
        fields = dict(line.strip().split(": ", 1) for line in block.splitlines()[1:4] if ": " in line)
        jobs[fields["output"]] = set(fields["input"].split(", "))
    assert set(jobs) == {f"results/tiny/{c}/eval/training_fit.json" for c in ("chair", "table")}
    for category in ("chair", "table"):
        results = f"results/tiny/{category}"
        assert jobs[f"{results}/eval/training_fit.json"] == (
            {f"{results}/train/{m}/model.pt" for m in METHODS}
            | {f"{results}/eval/{m}/reconstruction.npz" for m in METHODS}
            | {f"{results}/grids/{s}.npz" for s in (0, 1)})
