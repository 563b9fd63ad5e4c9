"""The trainers of stages 1, 1b and 2: finite losses, exact resume after an interruption, a clear stop on NaN, the
blocks of a round, the persistence pool, and the stages' settings from the configuration."""

import csv
import os
import signal
from dataclasses import asdict, replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import DEVICE
from toposdf.config import Config, validate_config
from toposdf.models import DecoderConfig, LatentCodes, LatentConfig, SDFDecoder
from toposdf.training import (ImplicitTrainer, JointTrainer, TrainingDiverged, TrainingInterrupted,
                              implicit_train_config, pdgen_train_config)


def schema_defaults(changes: dict | None = None) -> Config:
    """A configuration with the schema's defaults (the few required keys aside) and the dotted ``changes``
    (``{"model.latent_size": 4}``)."""
    raw = validate_config({"dataset": {"kind": "synthetic", "categories": ["chair"], "shapes_per_category": 4},
                           "sdf": {}, "grid": {}, "persistence": {}, "shards": 1})
    for dotted, value in (changes or {}).items():
        *parents, key = dotted.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[key] = value
    return Config.from_dict(raw)


CFG = replace(implicit_train_config(schema_defaults(), "eikonal"), epochs=3, batch_shapes=2, points_per_shape=64,
              regularizer_shapes=2, regularizer_points=32, lambda_steik=0.01, seed=5)


def pd_config(**changes):
    """Stage 1b's settings: the schema's defaults (method ``ours_deepsdf``) with ``changes``."""
    return replace(pdgen_train_config(schema_defaults(), "ours_deepsdf"), **changes)


def sphere_samples(n=4, p=256):
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (n, p, 3)).astype(np.float32)
    radii = np.linspace(0.3, 0.6, n)[:, None]
    return points, (np.linalg.norm(points, axis=-1) - radii).astype(np.float32)


def assert_trained_alike(a, b) -> None:
    """Two trainers ended bit for bit alike: every decoder weight and every code."""
    for x, y in zip(a.decoder.state_dict().values(), b.decoder.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    torch.testing.assert_close(a.codes.mu, b.codes.mu, rtol=0, atol=0)


def implicit_trainer(tmp_path, name="run", cfg=CFG, sdf=None):
    torch.manual_seed(0)
    decoder = SDFDecoder(DecoderConfig(latent_size=8, hidden=32, n_layers=4))
    codes = LatentCodes(4, 8)
    points, target = sphere_samples()
    return ImplicitTrainer(decoder, codes, points, target if sdf is None else sdf, cfg,
                           checkpoint=tmp_path / name / "ckpt.pt", log_csv=tmp_path / name / "log.csv", device=DEVICE)


def test_training_reduces_the_data_loss_and_logs_every_term(tmp_path):
    trainer = implicit_trainer(tmp_path)
    trainer.fit(progress=False)
    with open(tmp_path / "run" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"epoch", "sdf", "kl", "eikonal", "steik", "loss", "lr_decoder", "lr_codes", "steik_weight"}
    assert all(np.isfinite(float(v)) for r in rows for v in r.values())
    assert float(rows[-1]["sdf"]) < float(rows[0]["sdf"])


def test_memory_mapped_samples_train_bit_for_bit_as_held_ones(tmp_path):
    """The loader maps a category's samples when they are large (ShapeNet); training reads only what it picks."""
    held = implicit_trainer(tmp_path, "held")
    held.fit(progress=False)
    points, target = sphere_samples()
    maps = []
    for name, array in (("points", points), ("sdf", target)):
        mapped = np.lib.format.open_memmap(tmp_path / f"{name}.npy", mode="w+", dtype=array.dtype, shape=array.shape)
        mapped[:] = array
        maps.append(mapped)
    torch.manual_seed(0)
    decoder, codes = SDFDecoder(DecoderConfig(latent_size=8, hidden=32, n_layers=4)), LatentCodes(4, 8)
    mapped = ImplicitTrainer(decoder, codes, *maps, CFG, checkpoint=tmp_path / "mapped" / "ckpt.pt",
                             log_csv=tmp_path / "mapped" / "log.csv", device=DEVICE)
    assert np.shares_memory(mapped.points.numpy(), maps[0])  # not copied into memory
    mapped.fit(progress=False)
    assert_trained_alike(held, mapped)


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = implicit_trainer(tmp_path, "straight")
    straight.fit(progress=False)
    first = implicit_trainer(tmp_path, "resumed")
    first.fit(epochs=1, progress=False)  # the job is killed after epoch 1 ...
    del first
    second = implicit_trainer(tmp_path, "resumed")  # ... and rerun: it resumes from the checkpoint
    assert second.epoch == 1
    second.fit(progress=False)
    assert_trained_alike(straight, second)
    with open(tmp_path / "resumed" / "log.csv") as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1, 2, 3]


def test_a_stop_signal_before_the_first_checkpoint_says_the_stage_starts_over(tmp_path):
    """Stopped in epoch 1, no checkpoint exists yet: the message must not promise one."""
    trainer, steps = implicit_trainer(tmp_path, "early"), []
    one_step = trainer.train_step

    def step(batch):
        steps.append(batch)
        if len(steps) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return one_step(batch)

    trainer.train_step = step
    with pytest.raises(TrainingInterrupted, match=r"SIGTERM in epoch 1: stopped after this step; no checkpoint was "
                                                   r"written yet, so a rerun starts this stage over"):
        trainer.fit(progress=False)
    assert not trainer.checkpoint.exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_stop_signal_ends_training_after_the_step_and_the_rerun_resumes_exactly(tmp_path, signum):
    """A cluster's time limit sends SIGTERM (or the profile's USR1): the step in flight finishes, the job exits with
    TrainingInterrupted keeping the last epoch's checkpoint, and its retry ends where an uninterrupted run ends."""
    straight = implicit_trainer(tmp_path, "straight")
    straight.fit(progress=False)
    before = signal.getsignal(signum)
    killed, steps = implicit_trainer(tmp_path, "killed"), []
    one_step = killed.train_step

    def step(batch):
        steps.append(batch)
        if len(steps) == 4:  # during the second step of epoch 2 (2 steps an epoch)
            os.kill(os.getpid(), signum)
        return one_step(batch)

    killed.train_step = step
    with pytest.raises(TrainingInterrupted, match=rf"{signal.Signals(signum).name} in epoch 2: stopped after this "
                                                   r"step; the checkpoint of epoch 1"):
        killed.fit(progress=False)
    assert len(steps) == 4 and killed.epoch == 1  # the step in flight finished, no other; epoch 2 did not count
    assert signal.getsignal(signum) == before  # the handler is the caller's again
    resumed = implicit_trainer(tmp_path, "killed")
    assert resumed.epoch == 1
    resumed.fit(progress=False)
    assert_trained_alike(straight, resumed)
    with open(tmp_path / "killed" / "log.csv") as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1, 2, 3]


def test_the_slurm_profile_sends_the_trainers_sigterm_before_the_limit_and_retries_the_longest_job():
    """profiles/slurm: each training rule asks for SIGTERM a few minutes before its limit, sent to the job steps
    (the plugin runs the rule in an srun step; "B:" would reach only the batch shell), a signal the trainers stop
    on; and the retries cover the longest job (about 49 h, docs/cluster.md) at the rules' time limits."""
    import re

    import yaml

    from toposdf.training.base import STOP_SIGNALS

    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    for rule in ("pretrain_implicit", "pretrain_pdgen", "joint_train"):
        extra = profile["set-resources"][rule]["slurm_extra"]
        match = re.search(r"--signal=(B:)?(\w+)@(\d+)", extra)
        assert match and match.group(1) is None, (rule, extra)
        assert getattr(signal, f"SIG{match.group(2)}") in STOP_SIGNALS
        assert 60 <= int(match.group(3)) <= 900  # seconds before the limit
    attempts = profile["retries"] + 1
    assert attempts * profile["set-resources"]["joint_train"]["runtime"] >= 49 * 60


def test_a_checkpoint_of_other_settings_is_refused_naming_the_setting_and_how_to_start_over(tmp_path):
    straight = implicit_trainer(tmp_path, "straight", cfg=replace(CFG, lr_codes=0.05))
    straight.fit(progress=False)
    first = implicit_trainer(tmp_path, "changed")
    first.fit(epochs=2, progress=False)  # killed; then the config changes and the job reruns
    del first
    with pytest.raises(ValueError, match=rf"lr_codes: {CFG.lr_codes} -> 0.05\): resuming would mix them.*rm "):
        implicit_trainer(tmp_path, "changed", cfg=replace(CFG, lr_codes=0.05))
    assert (tmp_path / "changed" / "ckpt.pt").exists()  # nothing is lost until the user says so
    (tmp_path / "changed" / "ckpt.pt").unlink()  # the start over the message names
    second = implicit_trainer(tmp_path, "changed", cfg=replace(CFG, lr_codes=0.05))
    assert second.epoch == 0
    second.fit(progress=False)
    assert_trained_alike(straight, second)
    with open(tmp_path / "changed" / "log.csv") as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1, 2, 3]


def test_a_larger_epoch_count_resumes_only_where_the_schedule_does_not_scale_with_it(tmp_path):
    flat = replace(CFG, lr_decay_at=1.0, steik_anneal=None)  # no decay, no anneal: a longer run is the same run
    first = implicit_trainer(tmp_path, "longer", cfg=flat)
    first.fit(progress=False)
    del first
    second = implicit_trainer(tmp_path, "longer", cfg=replace(flat, epochs=CFG.epochs + 2))
    assert second.epoch == CFG.epochs
    second.fit(progress=False)
    assert second.epoch == CFG.epochs + 2
    with pytest.raises(ValueError, match=rf"epochs: {CFG.epochs + 2} -> {CFG.epochs}\)"):
        implicit_trainer(tmp_path, "longer", cfg=flat)  # fewer epochs than trained is a change
    decayed = replace(CFG, lr_decay_at=0.5, steik_anneal=None)  # the decay sits at half the epochs
    implicit_trainer(tmp_path, "decayed", cfg=decayed).fit(progress=False)
    with pytest.raises(ValueError, match=rf"epochs: {CFG.epochs} -> {CFG.epochs + 2}\)"):
        implicit_trainer(tmp_path, "decayed", cfg=replace(decayed, epochs=CFG.epochs + 2))


def test_step_schedule_decays_every_rate_once_and_resumes_at_the_same_rates(tmp_path):
    from toposdf.training.base import step_decay

    assert [step_decay(e, 10, 0.7, 0.1) for e in range(10)] == [1.0] * 7 + [0.1] * 3
    assert [step_decay(e, 10, 1.0, 0.1) for e in range(10)] == [1.0] * 10
    cfg = replace(CFG, epochs=4, lr_decay_at=0.5, lr_decay_factor=0.25)
    straight = implicit_trainer(tmp_path, "straight", cfg=cfg)
    straight.fit(progress=False)
    with open(tmp_path / "straight" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["lr_decoder"]) for r in rows] == pytest.approx([cfg.lr_decoder] * 2 + [cfg.lr_decoder / 4] * 2)
    assert [float(r["lr_codes"]) for r in rows] == pytest.approx([cfg.lr_codes] * 2 + [cfg.lr_codes / 4] * 2)
    first = implicit_trainer(tmp_path, "resumed", cfg=cfg)
    first.fit(epochs=3, progress=False)  # killed after the decay has begun
    del first
    second = implicit_trainer(tmp_path, "resumed", cfg=cfg)
    second.fit(progress=False)
    assert_trained_alike(straight, second)


def test_the_steik_term_anneals_linearly_to_zero_and_stays_off_in_stage_2(tmp_path):
    from toposdf.training.base import anneal_scale

    assert [anneal_scale(e, 10, (0.2, 0.6)) for e in range(11)] == pytest.approx(
        [1, 1, 1, 0.75, 0.5, 0.25, 0, 0, 0, 0, 0])
    assert [anneal_scale(e, 10, None) for e in (0, 9, 10)] == [1.0] * 3
    assert anneal_scale(0, 0, (0.2, 0.4)) == 0.0  # stage 2 after an annealed stage 1
    cfg = replace(CFG, epochs=4, steik_anneal=(0.25, 0.75))
    trainer = implicit_trainer(tmp_path, cfg=cfg)
    trainer.fit(progress=False)
    with open(tmp_path / "run" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["steik_weight"]) for r in rows] == pytest.approx([0.01, 0.01, 0.005, 0.0])
    assert [float(r["steik"]) > 0 for r in rows] == [True, True, True, False]  # at weight 0 it is not computed
    for method in ("deepsdf_se_vad", "ours_deepsdf_se"):
        joint = joint_trainer(tmp_path, method, name=method, steik_anneal=(0.2, 0.4))
        joint.fit(progress=False)
        joint.close()
        (row,) = list(csv.DictReader(open(tmp_path / method / "log.csv")))
        assert float(row["theta_steik"]) == 0.0
    scratch = joint_trainer(tmp_path, "no_pd_training", name="scratch", rounds=5, steik_anneal=(0.25, 0.75),
                             warm_rounds=4, scratch_consistency_rounds=1)
    scratch.fit(progress=False)
    scratch.close()
    rows = list(csv.DictReader(open(tmp_path / "scratch" / "log.csv")))
    assert [float(r["theta_steik"]) > 0 for r in rows] == [True, True, True, False, False]


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = implicit_trainer(tmp_path)
    trainer.fit(epochs=1, progress=False)
    good = {k: v.clone() for k, v in trainer.decoder.state_dict().items()}
    trainer.sdf[:] = float("nan")  # the data turn bad in epoch 2
    with pytest.raises(TrainingDiverged, match="non-finite loss at epoch 2.*last good checkpoint"):
        trainer.fit(progress=False)
    saved = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert saved["epoch"] == 1
    for key, value in good.items():
        torch.testing.assert_close(saved["decoder"][key], value)


def test_mismatched_samples_are_rejected(tmp_path):
    points, sdf = sphere_samples()
    with pytest.raises(ValueError, match=r"points \(n, P, 3\)"):
        implicit_trainer(tmp_path, sdf=sdf[:, :10])


# ------------------------------------------------------------------------------------------------------------
# Stage 1b: PD generators (eq. 12)
# ------------------------------------------------------------------------------------------------------------
def _pd_problem():
    rng = np.random.default_rng(2)
    diagrams = []
    for i in range(4):
        pd0 = np.array([[-0.08 + 0.01 * i, 0.1]])
        births = rng.uniform(-0.06, -0.02, i % 3)
        pd1 = np.stack([births, births + 0.05 + 0.02 * i], axis=1)
        diagrams.append([pd0, pd1, np.zeros((0, 2))])
    return rng.normal(size=(4, 6)).astype(np.float32), diagrams


def pd_trainer(tmp_path, name, epochs=40, cfg=None):
    from toposdf.models import PDGenerators
    from toposdf.training import PDGeneratorTrainer, generator_sizes

    torch.manual_seed(0)
    means, diagrams = _pd_problem()
    sizes = generator_sizes(diagrams, max_points=8)
    gens = PDGenerators(6, sizes, hidden=32, tau=0.1)
    gens.initialize_from(diagrams)
    cfg = cfg or pd_config(epochs=epochs, batch_shapes=2, lr=3e-3, lambda_smooth=1e-4, smooth_shapes=2, seed=1)
    return PDGeneratorTrainer(gens, means, diagrams, cfg, tmp_path / name / "pd.pt", tmp_path / name / "pd.csv",
                              device=DEVICE)


def test_without_initialization_slots_die_on_the_diagonal(tmp_path, caplog):
    """Why PDGenerators.initialize_from exists: from a default init this problem stalls (all slots dead). Stage 2
    names such a collapse too (No PD Training's generators never see PD data: at one seed its PD0 collapsed and
    every prior chair came out empty)."""
    from toposdf.models import PDGenerators
    from toposdf.training import PDGeneratorTrainer, generator_sizes

    torch.manual_seed(0)
    means, diagrams = _pd_problem()
    gens = PDGenerators(6, generator_sizes(diagrams, max_points=8), hidden=32)
    cfg = pd_config(epochs=40, batch_shapes=2, lr=3e-3, lambda_smooth=1e-4, smooth_shapes=2, seed=1)
    trainer = PDGeneratorTrainer(gens, means, diagrams, cfg, tmp_path / "pd.pt", tmp_path / "pd.csv", device=DEVICE)
    trainer.fit(progress=False)
    with torch.no_grad():
        out = trainer.generators(trainer.latent_means.to(trainer.device))
    assert all(torch.equal(o[..., 0], o[..., 1]) for o in out)  # every slot on the diagonal
    # stage 1b's check names the dimensions that have training points (PD0, PD1; PD2 has none)
    from toposdf.training.pdgen import collapsed_dimensions

    assert collapsed_dimensions(trainer.generators, trainer.latent_means, diagrams) == [0, 1]
    fitted = pd_trainer(tmp_path, "fitted")
    fitted.fit(progress=False)
    assert collapsed_dimensions(fitted.generators, fitted.latent_means, diagrams) == []
    from toposdf.training.entry import warn_if_collapsed

    with caplog.at_level("WARNING", logger="toposdf.training.entry"):
        warn_if_collapsed(fitted.generators, fitted.latent_means, diagrams, "ours_deepsdf", stage="stage 2")
        assert not caplog.records
        warn_if_collapsed(trainer.generators, trainer.latent_means, diagrams, "no_pd_training", stage="stage 2")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all(m.startswith("stage 2 (no_pd_training): PD") for m in messages)
    assert "PD0's generator" in messages[0] and "empty prior samples" in messages[0]


def test_the_essential_slot_cannot_die_and_fits_each_shapes_essential_class(tmp_path):
    """With essential_slot, PD0's first slot is the essential class: death tau and a birth inside (-tau, tau) for
    any code, even from an untrained start (so never on the diagonal, where the slots of the test above die);
    trained as stage 1b trains it, its birth fits each shape's. The other slots and dimensions are the usual ones."""
    from toposdf.models import PDGenerator, PDGenerators
    from toposdf.training import PDGeneratorTrainer, generator_sizes

    with pytest.raises(ValueError, match="give tau"):
        PDGenerator(6, 3, essential=True)
    torch.manual_seed(0)
    means, diagrams = _pd_problem()
    gens = PDGenerators(6, generator_sizes(diagrams, max_points=8), hidden=32, tau=0.1, essential_slot=True)
    assert [g.essential for g in gens.generators] == [True, False, False]
    with torch.no_grad():
        untrained = gens(torch.randn(64, 6) * 3)[0][:, 0]
    assert torch.all(untrained[:, 1] == 0.1) and torch.all(untrained[:, 0].abs() < 0.1)
    gens.initialize_from(diagrams)
    cfg = pd_config(epochs=40, batch_shapes=2, lr=3e-3, lambda_smooth=1e-4, smooth_shapes=2, seed=1)
    trainer = PDGeneratorTrainer(gens, means, diagrams, cfg, tmp_path / "pd.pt", tmp_path / "pd.csv", device=DEVICE)
    trainer.fit(progress=False)
    with torch.no_grad():
        out = trainer.generators(trainer.latent_means.to(trainer.device))
    assert torch.all(out[0][:, 0, 1] == 0.1)
    np.testing.assert_allclose(out[0][:, 0, 0].cpu().numpy(), [d[0][0, 0] for d in diagrams], atol=0.01)


def test_the_diagonal_anchor_puts_unused_slots_at_the_training_births(tmp_path):
    """methods.<m>.diagonal_anchor: stage 1b's slots that eq. 1 sends to the diagonal at a training code are pulled
    to the mean training birth of their dimension (eq. 1 leaves their births free), and the CSV logs the anchor term.
    _pd_problem's shapes have 0, 1 and 2 tunnels, so PD1's second slot is unused at most codes."""
    from toposdf.losses import match_diagrams, mean_births

    def unused_births(trainer):
        with torch.no_grad():
            out = trainer.generators(trainer.latent_means.to(trainer.device))[1].cpu().numpy()
        births = []
        for i, shape in enumerate(trainer.diagrams):
            m = match_diagrams(out[i], shape[1])
            births += [out[i][j, 0] for j in m[(m[:, 0] >= 0) & (m[:, 1] < 0), 0]]
        return np.array(births)

    base = pd_config(epochs=40, batch_shapes=2, lr=3e-3, lambda_smooth=1e-4, smooth_shapes=2, seed=1)
    free = pd_trainer(tmp_path, "free", cfg=base)
    free.fit(progress=False)
    anchored = pd_trainer(tmp_path, "anchored", cfg=replace(base, diagonal_anchor=1.0))
    anchored.fit(progress=False)
    target = mean_births(anchored.diagrams)[1]
    assert anchored.anchors[1] == pytest.approx(target) and free.anchors is None
    far_free, far_anchored = np.abs(unused_births(free) - target), np.abs(unused_births(anchored) - target)
    assert len(far_anchored) and far_anchored.max() < 0.01 < far_free.max()
    with open(tmp_path / "anchored" / "pd.csv") as f:
        rows = list(csv.DictReader(f))
    assert "anchor" in rows[0] and float(rows[-1]["anchor"]) < float(rows[0]["anchor"])


def test_generator_sizes_follow_the_largest_training_diagram():
    from toposdf.training import generator_sizes

    _, diagrams = _pd_problem()
    assert generator_sizes(diagrams, max_points=8) == (1, 2, 1)  # PD2 is empty everywhere: one (diagonal) slot
    assert generator_sizes(diagrams, max_points=1) == (1, 1, 1)


def test_pd_generators_learn_the_training_diagrams(tmp_path):
    trainer = pd_trainer(tmp_path, "fit")
    trainer.fit(progress=False)
    curve = list(csv.DictReader(open(tmp_path / "fit" / "pd.csv")))
    assert set(curve[0]) == {"epoch", "pd", "smoothness", "loss", "lambda_smooth", "pd_weighted", "smoothness_weighted"}
    assert float(curve[-1]["pd"]) < 0.05 * float(curve[0]["pd"])
    with torch.no_grad():
        out = trainer.generators(trainer.latent_means.to(trainer.device))
    assert all(torch.all(o[..., 0] <= o[..., 1]) for o in out)


def test_pd_generator_training_resumes_exactly(tmp_path):
    straight = pd_trainer(tmp_path, "straight", epochs=4)
    straight.fit(progress=False)
    part = pd_trainer(tmp_path, "resumed", epochs=4)
    part.fit(epochs=2, progress=False)
    resumed = pd_trainer(tmp_path, "resumed", epochs=4)
    assert resumed.epoch == 2
    resumed.fit(progress=False)
    for a, b in zip(straight.generators.state_dict().values(), resumed.generators.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------------------
# Stage 2: joint training (eqs. 13-15), every method of Table 1
# ------------------------------------------------------------------------------------------------------------
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _methods_config():
    """The shipped config.yaml's methods with the tiny preset's sizes (what a user's run uses)."""
    import yaml


    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["methods"] |= yaml.safe_load((ROOT / "presets" / "shapenet.yaml").read_text())["methods"]  # + topoprior
    raw["model"] = {"latent_size": 8, "hidden": 32, "n_layers": 4}
    raw["grid"] = {"resolution": 12}
    raw["train"]["joint"] |= {"batch_shapes": 2, "points_per_shape": 64, "synthetic_shapes": 2, "workers": 2,
                              "grid_resolution": None}
    raw["train"]["implicit"] |= {"regularizer_shapes": 2, "regularizer_points": 32}
    raw["train"]["pdgen"] |= {"smooth_shapes": 2, "max_points": 4, "hidden": 16}
    raw["persistence"] = {"tau": 0.3, "min_persistence": 0.0}
    return Config.from_dict(raw)


def _shape_diagrams(n=4, resolution=12, tau=0.3):
    """Spheres and tori: their SDF samples and ground-truth diagrams (a torus has one loop)."""
    from toposdf.data import grid_points
    from toposdf.topology import cubical_diagrams

    def sdf(x, i):
        if i % 2 == 0:
            return np.linalg.norm(x, axis=-1) - (0.4 + 0.05 * i)
        q = np.stack([np.linalg.norm(x[..., :2], axis=-1) - 0.5, x[..., 2]], axis=-1)
        return np.linalg.norm(q, axis=-1) - 0.2

    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (n, 256, 3)).astype(np.float32)
    values = np.stack([sdf(points[i], i) for i in range(n)]).astype(np.float32)
    grid = grid_points(resolution)
    diagrams = [cubical_diagrams(sdf(grid, i).reshape((resolution,) * 3), tau) for i in range(n)]
    return points, values, diagrams


def joint_trainer(tmp_path, method, name="run", rounds=1, **settings):
    from toposdf.training import JointTrainer, joint_train_config, new_pd_generators

    cfg = _methods_config()
    points, values, diagrams = _shape_diagrams()
    torch.manual_seed(0)
    decoder = SDFDecoder(DecoderConfig(**asdict(cfg.model)))
    codes = LatentCodes(len(points), cfg.model.latent_size)
    block = cfg.methods[method]
    generators = new_pd_generators(cfg, block.from_scratch, diagrams) if block.topology == "learned" else None
    train_cfg = replace(joint_train_config(cfg, method), rounds=rounds, **settings)
    return JointTrainer(decoder, codes, generators, points, values, diagrams, train_cfg,
                        tmp_path / name / "model.pt", tmp_path / name / "log.csv", device=DEVICE)


METHODS = ["deepsdf_vad", "deepsdf_se_vad", "ours_deepsdf", "ours_deepsdf_se", "no_pd_smoothness", "no_pd_training",
           "deepsdf_topoprior"]


def test_the_shipped_config_has_every_method_of_table_1():
    import yaml

    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())["methods"]
    assert sorted(shipped) == sorted(METHODS[:-1])  # the paper's rows (3DShape2VecSet aside); the presets add the prior
    assert sorted(_methods_config().methods) == sorted(METHODS)


def test_data_epochs_add_network_epochs_on_the_data_term_alone(tmp_path):
    """``train.joint.data_epochs``: after a round's eq.-13 epoch, that many more epochs of the network without the
    topological term, logged as ``data_*``; a from-scratch method's warm rounds take none; unset, none."""
    def run(method, name, **settings):
        trainer = joint_trainer(tmp_path, method, name, **settings)
        steps, step = [], trainer._theta_step
        trainer._theta_step = lambda batch, synthetic: steps.append(synthetic is not None) or step(batch, synthetic)
        trainer.fit(progress=False)
        trainer.close()
        return trainer, steps, list(csv.DictReader(open(tmp_path / name / "log.csv")))

    trainer, steps, (row,) = run("ours_deepsdf", "more", data_epochs=2)
    batches = len(trainer._batches())
    assert steps == [True] * batches + [False] * (2 * batches)  # eq. 13, then two epochs of the data term alone
    assert float(row["data_sdf"]) > 0 and "data_consistency" not in row and float(row["theta_consistency"]) > 0
    _, steps, (row,) = run("ours_deepsdf", "plain")
    assert steps == [True] * batches and not any(key.startswith("data_") for key in row)
    _, steps, rows = run("no_pd_training", "scratch", rounds=3, warm_rounds=2, data_epochs=1)
    assert [np.isfinite(float(row["data_sdf"])) for row in rows] == [False, False, True]  # a term not run: nan


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_a_round_with_finite_losses(tmp_path, method):
    trainer = joint_trainer(tmp_path, method)
    before = {k: v.clone() for k, v in trainer.decoder.state_dict().items()}
    trainer.fit(progress=False)
    trainer.close()
    (row,) = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert all(np.isfinite(float(v)) for v in row.values()), row
    topology = trainer.cfg.topology
    assert ("theta_consistency" in row) == (topology == "learned")
    assert ("theta_prior" in row) == (topology == "prior")
    assert ("phi_pd" in row) == (topology == "learned")
    assert ("z_pd" in row) == (topology == "learned" and trainer.cfg.lambda_pd > 0)
    if topology == "learned":
        assert float(row["theta_consistency"]) > 0 and float(row["seconds_persistence"]) > 0
    with_steik = method in {"deepsdf_se_vad", "ours_deepsdf_se", "no_pd_smoothness", "no_pd_training"}
    assert (trainer.cfg.lambda_steik > 0) == with_steik
    # the shipped StEik anneal ends within stage 1: stage 2 takes it only in No PD Training's warm rounds
    steik_on = with_steik and (trainer.cfg.steik_anneal is None or trainer.cfg.warm_rounds > 0)
    assert (float(row["theta_steik"]) > 0) == steik_on
    assert any(not torch.equal(before[k], v) for k, v in trainer.decoder.state_dict().items())


def test_joint_training_resumes_exactly(tmp_path):
    straight = joint_trainer(tmp_path, "ours_deepsdf_se", "straight", rounds=2)
    straight.fit(progress=False)
    straight.close()
    part = joint_trainer(tmp_path, "ours_deepsdf_se", "resumed", rounds=2)
    part.fit(epochs=1, progress=False)  # killed after round 1
    part.close()
    resumed = joint_trainer(tmp_path, "ours_deepsdf_se", "resumed", rounds=2)
    assert resumed.epoch == 1
    resumed.fit(progress=False)
    resumed.close()
    for name in ("decoder", "codes", "pd_generators"):
        a, b = straight.modules[name].state_dict(), resumed.modules[name].state_dict()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{name}.{key}")


def test_the_phi_and_z_blocks_leave_the_other_parameters_alone(tmp_path):
    trainer = joint_trainer(tmp_path, "ours_deepsdf_se")
    decoder = {k: v.clone() for k, v in trainer.decoder.state_dict().items()}
    codes = {k: v.clone() for k, v in trainer.codes.state_dict().items()}
    generators = {k: v.clone() for k, v in trainer.generators.state_dict().items()}
    trainer._phi_epoch()
    assert all(torch.equal(decoder[k], v) for k, v in trainer.decoder.state_dict().items())
    assert all(torch.equal(codes[k], v) for k, v in trainer.codes.state_dict().items())
    assert any(not torch.equal(generators[k], v) for k, v in trainer.generators.state_dict().items())
    generators = {k: v.clone() for k, v in trainer.generators.state_dict().items()}
    trainer._z_epoch()
    trainer.close()
    assert all(torch.equal(decoder[k], v) for k, v in trainer.decoder.state_dict().items())
    assert all(torch.equal(generators[k], v) for k, v in trainer.generators.state_dict().items())
    assert any(not torch.equal(codes[k], v) for k, v in trainer.codes.state_dict().items())
    assert all(p.requires_grad for p in trainer.decoder.parameters())  # unfrozen afterwards


def test_synthetic_diagrams_match_a_direct_computation():
    from toposdf.field import evaluate_grid
    from toposdf.losses import match_diagrams
    from toposdf.topology import cubical_diagrams_with_critical
    from toposdf.training import SyntheticDiagrams

    torch.manual_seed(0)
    decoder = SDFDecoder(DecoderConfig(latent_size=4, hidden=16, n_layers=4))
    z = torch.randn(3, 4)
    generated = [torch.rand(3, 2, 2).cumsum(-1) * 0.1 - 0.1 for _ in range(3)]
    pipeline = SyntheticDiagrams(resolution=10, tau=0.3, min_persistence=0.0, workers=2)
    pipeline.submit(decoder, z, generated)
    pipeline.submit(decoder, z[:1])
    z_out, computed, matchings = pipeline.next()
    assert torch.equal(z_out, z)
    for b, grid in enumerate(evaluate_grid(decoder, z, 10)):
        diagrams, critical = cubical_diagrams_with_critical(grid, 0.3, 0.0)
        for k in range(3):
            np.testing.assert_array_equal(computed.diagrams[b][k], diagrams[k])
            np.testing.assert_array_equal(computed.critical[b][k], critical[k])
            np.testing.assert_array_equal(matchings[b][k], match_diagrams(generated[k][b].double().numpy(), diagrams[k]))
    assert pipeline.next()[2] is None
    assert pipeline.seconds["persistence"] > 0
    pipeline.close()


def test_prior_coverage_is_one_for_codes_that_match_the_prior_and_warns_when_they_do_not(caplog):
    from toposdf.models import check_prior_coverage

    torch.manual_seed(0)
    matched = LatentCodes(4000, 8, LatentConfig(variational=True, init_logvar=0.0))
    with torch.no_grad():
        matched.mu.zero_()  # every posterior N(0, I)
    assert matched.aggregate_std() == pytest.approx(1.0)
    spread = LatentCodes(4000, 8)  # deterministic codes drawn from N(0, I): the set-level prior's start
    assert spread.aggregate_std() == pytest.approx(1.0, abs=0.03)
    deepsdf = LatentCodes(100, 8, LatentConfig(prior="per_code", variational=True, init_std=0.01))  # DeepSDF's start
    assert deepsdf.aggregate_std() < 0.1
    with caplog.at_level("INFO", logger="toposdf.models"):
        assert check_prior_coverage(matched.aggregate_std(), "matched") == pytest.approx(1.0)
        check_prior_coverage(deepsdf.aggregate_std(), "deepsdf")
        check_prior_coverage(3.0, "too wide")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and "deepsdf" in warnings[0] and "too wide" in warnings[1]
    assert "latent.prior: per_code" in warnings[0] and "train.implicit.lambda_kl" in warnings[0]


def test_pd_generator_points_stay_in_the_ground_truths_range():
    from toposdf.models import PDGenerators

    torch.manual_seed(0)
    generators = PDGenerators(4, (5, 5, 5), hidden=16, tau=0.1)
    with torch.no_grad():
        for g in generators.generators:
            g.mlp[-1].bias.fill_(3.0)  # raw output far outside [-tau, tau]
    for points in generators(torch.randn(7, 4) * 10):
        assert points.min() >= -0.1 and points.max() <= 0.1
        assert torch.all(points[..., 0] <= points[..., 1])


def test_auto_smoothness_is_calibrated_to_its_share_of_the_pd_fit_and_survives_resume(tmp_path):
    cfg = pd_config(epochs=3, batch_shapes=2, lr=3e-3, lambda_smooth=None, smooth_share=0.2, smooth_shapes=2, seed=1)
    trainer = pd_trainer(tmp_path, "pdgen", cfg=cfg)
    trainer.fit(epochs=1, progress=False)
    with open(tmp_path / "pdgen" / "pd.csv") as fh:
        first = next(csv.DictReader(fh))
    # after the first epoch, the weight makes the weighted smoothness 20% of the PD fit of that epoch
    assert float(first["smoothness_weighted"]) == pytest.approx(0.2 * float(first["pd_weighted"]), rel=1e-6)
    assert trainer.lambda_smooth > 0
    resumed = pd_trainer(tmp_path, "pdgen", cfg=cfg)
    assert resumed.lambda_smooth == pytest.approx(trainer.lambda_smooth)
    resumed.fit(progress=False)
    with open(tmp_path / "pdgen" / "pd.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {float(r["lambda_smooth"]) for r in rows} == {trainer.lambda_smooth}
    assert all(float(r["smoothness_weighted"]) > 0 for r in rows)  # the term acts (the ablation is not void)


def test_no_pd_training_starts_from_scratch_with_as_many_network_epochs():
    from toposdf.training import joint_train_config

    cfg = _methods_config()
    scratch, ours = joint_train_config(cfg, "no_pd_training"), joint_train_config(cfg, "ours_deepsdf_se")
    assert scratch.rounds == ours.rounds + cfg.train.implicit.epochs and scratch.warm_rounds == cfg.train.implicit.epochs
    assert (scratch.warm_lr_decoder, scratch.warm_lr_codes) == (cfg.train.implicit.lr_decoder, cfg.train.implicit.lr_codes)
    assert (scratch.warm_lr_decay_at, scratch.warm_points_per_shape) == (cfg.train.implicit.lr_decay_at,
                                                                        cfg.train.implicit.points_per_shape)
    assert scratch.lambda_pd == 0 and ours.warm_rounds == 0


@pytest.mark.parametrize("warm, count", [(660, 40), (660, 110), (7, 3), (5, 40), (9, 0)])
def test_the_warm_rounds_with_the_consistency_term_are_as_many_as_asked_and_spread_evenly(warm, count):
    def chosen(epoch):
        cfg = SimpleNamespace(consistency=True, scratch_consistency_rounds=count, warm_rounds=warm)
        return JointTrainer.consistency_round.fget(SimpleNamespace(cfg=cfg, epoch=epoch, warm=epoch < warm))

    rounds = [e for e in range(warm) if chosen(e)]
    assert len(rounds) == min(count, warm) and (not rounds or rounds[0] == 0)
    gaps = np.diff(rounds)
    assert len(gaps) == 0 or gaps.max() - gaps.min() <= 1  # evenly: 660 / 40 gives gaps of 16 and 17
    assert all(chosen(e) for e in range(warm, warm + 3))  # every round after the warm ones


def test_no_pd_training_warms_up_like_stage_1_with_the_consistency_term_in_k_spread_rounds(tmp_path):
    trainer = joint_trainer(tmp_path, "no_pd_training", rounds=4)
    trainer.cfg = replace(trainer.cfg, warm_rounds=3, scratch_consistency_rounds=2, warm_lr_decay_at=0.5,
                          warm_lr_decay_factor=0.1, warm_points_per_shape=16)
    assert trainer.warm and trainer.data_points == 16
    trainer.fit(progress=False)
    trainer.close()
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    # warm rounds 0 and 2 take eq. 8 and fit the PD generators; round 1 neither; round 3 (stage 2 proper) both
    consistency = [np.isfinite(float(r["theta_consistency"])) for r in rows]
    assert consistency == [True, False, True, True]
    assert [np.isfinite(float(r["phi_smoothness"])) for r in rows] == consistency
    assert all(np.isfinite(float(r["theta_sdf"])) and np.isfinite(float(r["z_sdf"])) for r in rows)
    assert trainer.data_points == trainer.cfg.points_per_shape  # after the warm rounds: stage 2's
    lr = trainer.optimizers["theta"].param_groups[0]["lr"]
    assert lr == trainer.cfg.lr_decoder


def test_the_csv_writes_absent_terms_as_nan_and_widens_its_header_for_new_ones(tmp_path):
    trainer = implicit_trainer(tmp_path)
    trainer.log_csv.unlink(missing_ok=True)
    trainer._append_csv({"epoch": 1, "a": 1.0, "b": 2.0})
    trainer._append_csv({"epoch": 2, "a": 3.0})  # b skipped this round
    trainer._append_csv({"epoch": 3, "a": 4.0, "c": 5.0})  # a new term
    with open(trainer.log_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["epoch", "a", "b", "c"]
    assert [(r["a"], r["b"], r["c"]) for r in rows] == [("1.0", "2.0", "nan"), ("3.0", "nan", "nan"),
                                                        ("4.0", "nan", "5.0")]


def test_the_consistency_term_takes_its_own_grid_when_one_is_set(tmp_path):
    """``train.joint.grid_resolution`` sets the synthetic shapes' grid of eq. 8 (the pool and the critical
    vertices); null keeps ``grid.resolution``, where the ground truth and the evaluation stay either way."""
    import yaml

    from toposdf.training import joint_train_config

    cfg = _methods_config()
    assert joint_train_config(cfg, "ours_deepsdf_se").grid_resolution == cfg.grid.resolution == 12
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["grid"] = {"resolution": 12}
    raw["train"]["joint"] |= {"grid_resolution": 20}  # config.yaml: null (grid.resolution)
    finer = Config.from_dict(raw)
    assert finer.grid.resolution == 12 and joint_train_config(finer, "ours_deepsdf_se").grid_resolution == 20
    trainer = joint_trainer(tmp_path, "ours_deepsdf_se", grid_resolution=20)
    assert trainer.synthetic.resolution == 20
    trainer._submit(True)
    _, computed, _ = trainer.synthetic.next()
    vertices = np.concatenate([c.ravel() for c in computed.critical[0]])
    assert vertices.max() >= 12**3 and vertices.max() < 20**3  # vertex indices of the finer grid
    assert np.isfinite(trainer.train_epoch()["theta_consistency"])
    trainer.close()


def test_a_method_can_take_its_own_synthetic_field():
    """``methods.<name>.synthetic_field`` overrides ``train.joint.synthetic_field`` for that method alone (the
    presets give the topology layer's prior the network's field, as in its paper); null keeps the block's."""
    import yaml

    from toposdf.config import ConfigError
    from toposdf.training import joint_train_config

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert raw["train"]["joint"]["synthetic_field"] == "both"
    raw["methods"]["deepsdf_topoprior"] = {"geometry": "eikonal", "topology": "prior", "synthetic_field": "network"}
    cfg = Config.from_dict(raw)
    assert joint_train_config(cfg, "deepsdf_topoprior").synthetic_field == "network"
    assert joint_train_config(cfg, "ours_deepsdf_se").synthetic_field == "both"  # no override: the block's
    raw["methods"]["deepsdf_topoprior"]["synthetic_field"] = "edges"
    with pytest.raises(ConfigError, match="synthetic_field"):
        Config.from_dict(raw)
    for preset in ("cpu_long", "gpu_reference", "shapenet", "tiny"):
        blocks = yaml.safe_load((ROOT / "presets" / f"{preset}.yaml").read_text())["methods"]
        assert blocks["deepsdf_topoprior"]["synthetic_field"] == "network", preset


@pytest.mark.parametrize("lambda_cons", [None, 0.0, 0.25])
def test_the_generators_block_weighs_the_consistency_by_lambda_cons(tmp_path, lambda_cons):
    """Eq. 14's consistency weight is ``lambda_cons`` (the paper writes it apart from eq. 13's ``lambda_con``);
    unset, it is ``lambda_con``. The network's block keeps ``lambda_con``."""
    import yaml

    from toposdf.training import joint_train_config

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["methods"]["ours_deepsdf_se"].pop("lambda_cons", None)  # config.yaml sets 0.01
    raw["methods"]["ours_deepsdf_se"] |= {"lambda_con": 2.0} | ({} if lambda_cons is None else
                                                                 {"lambda_cons": lambda_cons})
    cfg = joint_train_config(Config.from_dict(raw), "ours_deepsdf_se")
    expected = 2.0 if lambda_cons is None else lambda_cons
    assert (cfg.lambda_con, cfg.lambda_cons) == (2.0, expected)
    trainer = joint_trainer(tmp_path, "ours_deepsdf_se", lambda_con=2.0, lambda_cons=expected, lambda_smooth=0.5)
    trainer._submit(False)
    synthetic = trainer.synthetic.next()
    row = {key: float(value) for key, value in trainer._phi_step(torch.arange(2), synthetic[:2] + (None,)).items()}
    assert row["consistency"] > 0
    want = trainer.cfg.lambda_pd * row["pd"] + 0.5 * row["smoothness"] + expected * row["consistency"]
    assert row["loss"] == pytest.approx(want, rel=1e-5)
    trainer.close()


def test_target_persistence_rounds_the_network_blocks_targets_and_needs_pd_data(tmp_path):
    """methods.<m>.target_persistence: training rounds eq. 8's targets in the network's block (after
    target_births) to the training diagrams' shortest persistence of their dimension or to the diagonal; free (the
    paper's eq. 8, the schema's default) leaves them as generated; a method without PD data cannot take it."""
    import yaml

    from toposdf.config import Config, ConfigError
    from toposdf.losses import max_births, min_persistences, shift_births, snap_persistence
    from toposdf.training import joint_train_config

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["methods"]["no_pd_training"]["target_persistence"] = "training"
    with pytest.raises(ValueError, match="target_persistence: training rounds"):
        joint_train_config(Config.from_dict(raw), "no_pd_training")
    raw["methods"]["ours_deepsdf"]["target_persistence"] = "longer"
    with pytest.raises(ConfigError, match="target_persistence"):
        Config.from_dict(raw)

    free = joint_trainer(tmp_path, "ours_deepsdf", "free", target_births="training", target_persistence="free")
    snapped = joint_trainer(tmp_path, "ours_deepsdf", "snapped", target_births="training",
                            target_persistence="training")
    assert free.persistence_floors is None
    assert snapped.persistence_floors == min_persistences(snapped.diagrams)
    z = torch.randn(5, free.codes.mu.shape[1], device=free.codes.mu.device)
    with torch.no_grad():
        targets = snapped._targets(z)
        want = snap_persistence(shift_births(snapped.generators(z), max_births(snapped.diagrams)),
                                snapped.persistence_floors)
    for k, floor in enumerate(snapped.persistence_floors):
        assert torch.equal(targets[k], want[k])
        if floor is not None:
            length = targets[k][..., 1] - targets[k][..., 0]
            assert bool(((length == 0) | (length >= floor - 1e-6)).all())
    assert np.isfinite(snapped.train_epoch()["theta_consistency"])
    for trainer in (free, snapped):
        trainer.close()


def test_consistency_dims_keep_eq_8_to_those_dimensions_in_the_network_block(tmp_path):
    """methods.<m>.consistency_dims: the network's block takes eq. 8 on those homology dimensions only, on the same
    synthetic shapes and matchings; null (the schema's default) takes every dimension; the prior methods cannot
    take it, and a dimension the diagrams lack is a schema error."""
    import yaml

    from toposdf.config import Config, ConfigError
    from toposdf.training import joint_train_config

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert joint_train_config(Config.from_dict(raw), "ours_deepsdf").consistency_dims is None
    raw["methods"]["deepsdf_topoprior"] = {"geometry": "eikonal", "topology": "prior", "consistency_dims": [0]}
    with pytest.raises(ValueError, match="consistency_dims: \\[0\\] selects"):
        joint_train_config(Config.from_dict(raw), "deepsdf_topoprior")
    raw["methods"].pop("deepsdf_topoprior")
    raw["methods"]["ours_deepsdf"]["consistency_dims"] = [3]
    with pytest.raises(ConfigError, match="consistency_dims"):
        Config.from_dict(raw)

    trainers = {dims: joint_trainer(tmp_path, "ours_deepsdf", str(dims), consistency_dims=dims)
                for dims in (None, (0,), (1,), (2,))}
    trainers[None]._submit(True)
    synthetic = trainers[None].synthetic.next()  # one pool's shapes and matchings for every trainer (same network)
    terms = {}
    for dims, trainer in trainers.items():
        name, term = trainer._synthetic_term(*synthetic)
        terms[dims] = term.item()
        assert name == "consistency"
    assert terms[(0,)] > 0 and terms[(1,)] > 0
    assert terms[(0,)] + terms[(1,)] + terms[(2,)] == pytest.approx(terms[None], rel=1e-5)
    for trainer in trainers.values():
        trainer.close()


def test_target_births_caps_the_network_blocks_targets_and_needs_pd_data(tmp_path):
    """methods.<m>.target_births: training moves eq. 8's targets in the network's block (the pool's matchings and
    the loss alike) under the training diagrams' largest births; free (the paper's eq. 8, the schema's default)
    leaves them as generated. config.yaml sets training for every method with PD data; a method without cannot
    take it."""
    import yaml

    from toposdf.config import Config, ConfigError
    from toposdf.losses import max_births
    from toposdf.training import joint_train_config

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    for method in ("ours_deepsdf", "ours_deepsdf_se", "no_pd_smoothness"):  # the default: every method with PD data
        assert joint_train_config(Config.from_dict(raw), method).target_births == "training"
    for method in ("deepsdf_vad", "no_pd_training"):
        assert joint_train_config(Config.from_dict(raw), method).target_births == "free"
    raw["methods"]["ours_deepsdf"]["target_births"] = "free"
    assert joint_train_config(Config.from_dict(raw), "ours_deepsdf").target_births == "free"
    raw["methods"]["no_pd_training"]["target_births"] = "training"
    with pytest.raises(ValueError, match="lambda_pd > 0"):
        joint_train_config(Config.from_dict(raw), "no_pd_training")
    raw["methods"]["ours_deepsdf"]["target_births"] = "inside"
    with pytest.raises(ConfigError, match="target_births"):
        Config.from_dict(raw)

    free = joint_trainer(tmp_path, "ours_deepsdf", "free", target_births="free")
    capped = joint_trainer(tmp_path, "ours_deepsdf", "capped", target_births="training")
    assert free.birth_caps is None and capped.birth_caps == max_births(capped.diagrams)
    z = torch.randn(3, free.codes.mu.shape[1], device=free.codes.mu.device)
    with torch.no_grad():
        raw_points, targets = capped.generators(z), capped._targets(z)
    for k, cap in enumerate(capped.birth_caps):
        if cap is not None:
            assert bool((targets[k][..., 0] <= cap + 1e-6).all())
            assert torch.allclose(targets[k][..., 1] - targets[k][..., 0], raw_points[k][..., 1] - raw_points[k][..., 0])
    assert np.isfinite(capped.train_epoch()["theta_consistency"])
    for trainer in (free, capped):
        trainer.close()
