"""benchmarks/bench_train_step.py: ``--full``'s data sizes (the shapenet preset's) for every ``--steps`` (a
regression: ``--full --steps 4`` once built 300 codes for 256 sample sets), checked at tiny point counts on the CPU
without a full-size step; the anchor; the JSON."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_train_step as bench  # noqa: E402
from toposdf.models import DecoderConfig, LatentCodes, LatentConfig, SDFDecoder  # noqa: E402

STEPS = [1, 2, 3, 4, 5, 7]
FULL = bench.config_scale(preset=bench.FULL_PRESET)
CPU = bench.config_scale()
TINY = dict(batch=4, points=32, hidden=16, layers=4, latent=8, grid=12, synthetic=1, max_points=4, regularizer_shapes=2,
            regularizer_points=16)


def test_full_sizes_are_the_shapenet_presets():
    """The benchmark reads the preset, not a copy of it: 64 shapes x 16,384 points per step, the regularizer on
    8 x 16,384 points (the old hard-coded sizes had 4 x 1,024 there)."""
    assert FULL == dict(batch=64, points=16384, hidden=512, layers=8, latent=256, grid=64, synthetic=8, max_points=64,
                        regularizer_shapes=8, regularizer_points=16384)


@pytest.mark.parametrize("steps", STEPS)
def test_full_epoch_sizes_are_steps_full_batches(steps):
    sizes = bench.epoch_sizes(FULL, steps)
    assert sizes == {"steps": steps, "shapes": steps * FULL["batch"]}
    assert FULL["batch"] == 64  # the GPU measurement's size: 64 shapes per step


def test_default_steps_of_full_is_256_shapes():
    # the case that failed: --full with the default --steps 4 trained 256 sample sets against 300 codes
    assert bench.epoch_sizes(FULL, 4)["shapes"] == 256


@pytest.mark.parametrize("shapes, batch, steps", [(300, 64, 5), (256, 64, 4), (26, 8, 4), (1, 8, 1)])
def test_category_epoch_is_all_its_shapes(shapes, batch, steps):
    assert bench.epoch_sizes({"batch": batch}, 99, data_shapes=shapes) == {"steps": steps, "shapes": shapes}


def test_epoch_sizes_reject_no_steps():
    with pytest.raises(ValueError):
        bench.epoch_sizes(FULL, 0)
    with pytest.raises(ValueError):
        bench.epoch_sizes(FULL, 3, data_shapes=0)


@pytest.mark.parametrize("steps", [1, 3, 4, 5])
def test_full_trainers_get_one_code_per_sample_set_and_diagram(steps, tmp_path):
    """Every variant's JointTrainer at --full's batch, latent and network (8 points per shape instead of 16,384):
    as many codes as sample sets and diagrams, and an epoch of exactly ``steps`` full batches."""
    scale = FULL | {"points": 8}
    sizes = bench.epoch_sizes(scale, steps)
    data = bench.sphere_data(np.random.default_rng(0), sizes["shapes"], scale["points"])
    assert [len(part) for part in data] == [steps * 64] * 3
    for name, (topology, band) in bench.VARIANTS.items():
        trainer = bench.build(topology, band, scale, data, steps, 1, torch.device("cpu"), tmp_path, None)
        try:
            assert trainer.codes.mu.shape == (steps * 64, scale["latent"]), name
            assert len(trainer.points) == len(trainer.sdf) == len(trainer.diagrams) == steps * 64, name
            batches = trainer._batches()
            assert len(batches) == steps and all(len(b) == 64 for b in batches), name
            assert (trainer.generators is not None) == (topology == "learned")
        finally:
            trainer.close()


def test_build_rejects_data_that_is_not_an_epoch_of_steps(tmp_path):
    # the old sizing: 300 shapes (more than --steps 4 batches of 64) for a 4-step epoch
    scale = FULL | {"points": 4}
    data = bench.sphere_data(np.random.default_rng(0), 300, scale["points"])
    with pytest.raises(ValueError, match="not an epoch of 4 steps"):
        bench.build("none", False, scale, data, 4, 1, torch.device("cpu"), tmp_path, None)


def _checkpoint(latent: dict | None, variational: bool) -> dict:
    model = dict(latent_size=4, hidden=16, n_layers=4, geometric_init=True)
    codes = LatentCodes(3, 4, LatentConfig(prior="per_code" if variational else "set", variational=variational))
    checkpoint = {"model": model, "decoder": SDFDecoder(DecoderConfig(**model)).state_dict(),
                  "codes": codes.state_dict()}
    if latent is not None:
        checkpoint["latent"] = latent
    return checkpoint


@pytest.mark.parametrize("latent, variational", [(None, True), (None, False),
                                                 ({"prior": "set", "variational": False}, False),
                                                 ({"prior": "per_code", "variational": True}, True)])
def test_network_loads_checkpoints_with_and_without_a_latent_entry(latent, variational):
    checkpoint = _checkpoint(latent, variational)
    decoder, codes = bench.network(CPU, 3, checkpoint)
    assert torch.equal(codes.mu.detach(), checkpoint["codes"]["mu"])
    assert (codes.logvar is not None) == variational
    assert decoder.cfg.latent_size == 4


def test_main_runs_full_at_tiny_sizes(tmp_path, monkeypatch):
    """The whole script, ``--full`` with its sizes shrunk (batch 4, so that the epoch sizing still matters): the
    JSON records an epoch of --steps batches and all three variants."""
    presets = []
    monkeypatch.setattr(bench, "config_scale", lambda preset=None: presets.append(preset) or TINY)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # keep the test's thread count
    out = tmp_path / "step.json"
    bench.main(["--full", "--steps", "3", "--repeats", "1", "--device", "cpu", "--workers", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert presets == [bench.FULL_PRESET]
    assert result["scale"] == "shapenet" and result["steps"] == 3 and result["device_name"] is None
    assert result["sizes"] == TINY | {"shapes": 12}
    assert set(result["targets"]) == {"plain_over_anchor", "topological_over_plain", "wait_share"}
    assert result["ratios"]["plain_over_anchor"] == pytest.approx(
        result["plain"]["seconds_per_step"] / result["anchor"]["seconds_per_step"])
    for key in ("anchor", "plain", "topological", "topological_full_grid"):
        assert len(result[key]["seconds_per_step_all"]) == 1
        assert result[key]["seconds_per_step"] > 0
    assert "grid" in result["topological"]["parts_per_step"]
    assert result["topological_full_grid"]["grid_evaluated_fraction"] == 1.0
    assert 0 < result["topological"]["grid_evaluated_fraction"] <= 1.0
    assert result["narrow_band_diagrams_equal_every_vertex"]["equal"] is True


def test_check_band_raises_when_the_band_changes_a_diagram(tmp_path, monkeypatch):
    """The benchmark's equality check can fail: a narrow band that drops a vertex's value is caught."""
    scale = TINY
    data = bench.sphere_data(np.random.default_rng(0), 4, scale["points"])
    trainer = bench.build("learned", True, scale, data, 1, 1, torch.device("cpu"), tmp_path, None)
    try:
        assert bench.check_band(trainer, scale)["equal"] is True
        monkeypatch.setattr(bench, "evaluate_grid_band", lambda *args, **kwargs: np.zeros((4, 12, 12, 12)))
        with pytest.raises(SystemExit, match="narrow band"):
            bench.check_band(trainer, scale)
    finally:
        trainer.close()


def test_loss_curve_check_runs_and_compares_the_three_runs(tmp_path, monkeypatch):
    """benchmarks/loss_curve.py at a few steps of the tiny preset: three curves of --steps values each; the fast
    and reference paths give the same diagrams, so their curves are identical this early. The reference really
    filters the whole grid: the pool's persistence sees crop=False there."""
    import loss_curve
    import toposdf.training.pool as pool

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    crops, persistence = [], pool.joining_diagrams
    monkeypatch.setattr(pool, "joining_diagrams", lambda *args: crops.append(args[-1]) or persistence(*args))
    out = tmp_path / "curve.json"
    loss_curve.main(["--steps", "6", "--window", "3", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["curves"]) == {"fast", "reference", "noise"}
    assert all(len(curve["loss"]) == 6 for curve in result["curves"].values())
    assert result["result"]["loss"]["steps_bit_identical"] == 6 and result["within_noise"]
    assert result["curves"]["noise"]["loss"] != result["curves"]["reference"]["loss"]
    assert crops.count(True) and crops.count(False) == 2 * crops.count(True)  # fast; reference and noise


def test_the_cpu_scale_is_the_default_configs_stage_two():
    import yaml

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    joint, model = raw["train"]["joint"], raw["model"]
    assert CPU == dict(batch=joint["batch_shapes"], points=joint["points_per_shape"],
                                       hidden=model["hidden"], layers=model["n_layers"], latent=model["latent_size"],
                                       grid=raw["grid"]["resolution"], synthetic=joint["synthetic_shapes"],
                                       max_points=raw["train"]["pdgen"]["max_points"],
                                       regularizer_shapes=raw["train"]["implicit"]["regularizer_shapes"],
                                       regularizer_points=raw["train"]["implicit"]["regularizer_points"])
    stage2 = bench.stage2_config("learned", True, CPU, 1)
    assert stage2.regularizer_points == raw["train"]["implicit"]["regularizer_points"]


def test_the_profile_names_the_steps_phases_at_tiny_sizes(tmp_path, monkeypatch):
    """benchmarks/profile_train_step.py on the same trainers: operators with shares, the trainer's named phases
    (the consistency term's forward only in the topological step), and a Chrome trace per variant."""
    import profile_train_step as prof

    monkeypatch.setattr(bench, "config_scale", lambda preset=None: TINY)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    out = tmp_path / "profile.json"
    prof.main(["--steps", "2", "--device", "cpu", "--trace", "--out", str(out)])
    result = json.loads(out.read_text())
    for variant in ("plain", "topological"):
        phases = result["variants"][variant]["phases_ms"]
        assert {"toposdf::data_term", "toposdf::regularizer", "toposdf::backward", "toposdf::optimizer"} <= set(phases)
        assert ("toposdf::critical_forward" in phases) == (variant == "topological")
        operators = result["variants"][variant]["operators"]
        assert operators and 0 < sum(op["share"] for op in operators) <= 1 + 1e-9
        assert (tmp_path / f"profile_train_step_cpu_{variant}.trace.json.gz").stat().st_size > 1000



def test_the_anchor_is_a_deepsdf_step_that_learns():
    """The bare DeepSDF step trains the same network on the same samples: a few steps lower its data term."""
    from toposdf.losses import sdf_data_loss

    data = bench.sphere_data(np.random.default_rng(0), 8, 64)
    anchor = bench.BareDeepSDF(TINY | {"batch": 8, "points": 64}, data, 10, torch.device("cpu"))

    def data_term():
        with torch.no_grad():
            return float(sdf_data_loss(anchor.decoder(anchor.codes, anchor.xyz), anchor.sdf))

    before = data_term()
    for _ in range(5):
        anchor.epoch()
    assert data_term() < before
