"""Checkpoints: atomic save and load, the networks of a checkpoint, the ``.work`` resume of an entry point, a
checkpoint from before the ``latent`` entry, and the stages' settings (the schema's defaults, none of their own)."""

import json
import os
from dataclasses import MISSING, fields, replace

import numpy as np
import pytest
import torch

from conftest import load_tool
from test_training import schema_defaults
from toposdf.checkpoints import (atomic_torch_save, build_decoder_and_codes, claim_work, cpu_threads, finish,
                                 kept_attempts, load_checkpoint, work_path, work_sources)
from toposdf.config import load_schema
from toposdf.jobs import Job
from toposdf.data import load_sdf_samples, split_ids
from toposdf.losses import spatial_gradient
from toposdf.models import DecoderConfig, LatentConfig, SDFDecoder
from toposdf.topology import save_diagrams
from toposdf.training import (ImplicitTrainConfig, ImplicitTrainer, JointTrainConfig, PDGeneratorTrainConfig,
                              implicit_train_config, joint_train_config, pdgen_train_config, pretrain_implicit)


def test_save_and_load_round_trip_and_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "sub" / "ckpt.pt"
    atomic_torch_save({"epoch": 1, "w": torch.arange(4.0)}, path)
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.arange(4.0)) and state["w"].device.type == "cpu"
    with pytest.raises(Exception):
        atomic_torch_save({"epoch": 2, "bad": lambda: None}, path)  # a lambda does not pickle: the save fails midway
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temporary file left behind


def test_finish_writes_the_output_and_removes_the_working_checkpoint(tmp_path):
    output = tmp_path / "model.pt"
    assert work_path(output) == tmp_path / ".model.pt.work"
    atomic_torch_save({"epoch": 1}, work_path(output))
    finish({"epoch": 2}, output)
    assert load_checkpoint(output)["epoch"] == 2 and not work_path(output).exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short"])
def test_an_empty_or_truncated_checkpoint_is_named_with_what_to_do(tmp_path, content):
    path = tmp_path / ".model.pt.work"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"model\.pt\.work: not a readable checkpoint \(empty or cut short.*delete it"):
        load_checkpoint(path)


def test_decoder_and_codes_are_rebuilt_with_the_checkpoints_weights():
    model = {"latent_size": 4, "hidden": 16, "n_layers": 4}
    torch.manual_seed(0)
    decoder, codes = build_decoder_and_codes(model, {"prior": "per_code", "variational": True}, None, 3)
    state = {"decoder": decoder.state_dict(), "codes": codes.state_dict()}
    torch.manual_seed(1)
    again, again_codes = build_decoder_and_codes(model, LatentConfig(prior="per_code", variational=True), state, 3)
    for key, value in decoder.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])
    assert torch.equal(codes.mu, again_codes.mu) and torch.equal(codes.logvar, again_codes.logvar)


def test_a_model_without_a_latent_entry_asks_for_retraining(tmp_path):
    from toposdf.generation import load_model

    model = {"latent_size": 4, "hidden": 16, "n_layers": 4}
    decoder, codes = build_decoder_and_codes(model, {}, None, 2)
    path = tmp_path / "old_model.pt"
    atomic_torch_save({"model": model, "decoder": decoder.state_dict(), "codes": codes.state_dict(),
                       "ids": ["a", "b"], "method": "deepsdf_vad"}, path)
    with pytest.raises(ValueError, match=r"old_model\.pt.*no 'latent' entry.*rerun training"):
        load_model(path)


def _tiny_category(tmp_path, n=4):
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (n, 64, 3)).astype(np.float32)
    sdf = (np.linalg.norm(points, axis=-1) - np.linspace(0.3, 0.6, n)[:, None]).astype(np.float32)
    ids = [f"s{i}" for i in range(n)]
    np.savez(tmp_path / "sdf.npz", ids=np.array(ids), points=points, sdf=sdf)
    (tmp_path / "split.json").write_text(json.dumps({"train": ids, "test": []}))
    save_diagrams(tmp_path / "pd.npz", ids, [[np.array([[-0.1, 0.1]]), np.zeros((0, 2)), np.zeros((0, 2))]] * n)
    return [tmp_path / "sdf.npz"], tmp_path / "split.json"


def _stage1(cfg, shards, split, checkpoint, curve) -> Job:
    return Job.of(cfg, dict(samples=shards, split=split), dict(checkpoint=checkpoint, curve=curve), geometry="eikonal")


def test_a_rerun_of_a_killed_stage_resumes_from_its_work_checkpoint(tmp_path):
    """A job killed after epoch 1 leaves ``.implicit.pt.work``; the rerun resumes from it and ends where an
    uninterrupted run ends, bit for bit."""
    cfg = schema_defaults({"model.latent_size": 4, "model.hidden": 16, "model.n_layers": 4, "train.implicit.epochs": 2,
                          "train.implicit.batch_shapes": 2, "train.implicit.points_per_shape": 16,
                          "train.implicit.regularizer_shapes": 1, "train.implicit.regularizer_points": 16})
    shards, split = _tiny_category(tmp_path)
    pretrain_implicit(_stage1(cfg, shards, split, tmp_path / "straight.pt", tmp_path / "straight.csv"))

    output = tmp_path / "resumed.pt"
    killed = replace(implicit_train_config(cfg, "eikonal"), epochs=1)
    torch.manual_seed(cfg.train.seed)
    decoder, codes = build_decoder_and_codes(cfg.model, cfg.latent, None, 4)
    _, points, sdf = load_sdf_samples(shards, split_ids(split, "train"))
    csv = tmp_path / "resumed.csv"
    ImplicitTrainer(decoder, codes, points, sdf, killed, work_path(output), work_path(csv)).fit(progress=False)
    assert load_checkpoint(work_path(output))["epoch"] == 1
    # the CSV is a declared output, which Snakemake removes after a failure: its rows wait beside it until the end
    assert not csv.exists() and len(work_path(csv).read_text().splitlines()) == 2
    pretrain_implicit(_stage1(cfg, shards, split, output, tmp_path / "resumed.csv"))
    straight, resumed = load_checkpoint(tmp_path / "straight.pt"), load_checkpoint(output)
    assert resumed["epoch"] == 2 and not work_path(output).exists() and not work_path(csv).exists()
    for key, value in straight["decoder"].items():
        assert torch.equal(value, resumed["decoder"][key]), key
    assert torch.equal(straight["codes"]["mu"], resumed["codes"]["mu"])
    assert (tmp_path / "straight.csv").read_text() == (tmp_path / "resumed.csv").read_text()


def test_a_checkpoint_from_before_a_late_setting_resumes_while_the_setting_is_null(tmp_path):
    """A working checkpoint saved before a setting was added (its config lacks ``steik_gradient``, a late key)
    resumes while the setting is null, its default; set to a value, the same checkpoint is another setting's."""
    cfg = schema_defaults({"model.latent_size": 4, "model.hidden": 16, "model.n_layers": 4, "train.implicit.epochs": 2,
                          "train.implicit.batch_shapes": 2, "train.implicit.points_per_shape": 16,
                          "train.implicit.regularizer_shapes": 1, "train.implicit.regularizer_points": 16})
    shards, split = _tiny_category(tmp_path)
    output = tmp_path / "implicit.pt"
    _killed_stage1(cfg, shards, split, output, None)
    state = load_checkpoint(work_path(output))
    del state["config"]["steik_gradient"]  # as a checkpoint of the code before the key existed
    atomic_torch_save(state, work_path(output))
    now = implicit_train_config(cfg, "eikonal")
    decoder, codes = build_decoder_and_codes(cfg.model, cfg.latent, None, 4)
    _, points, sdf = load_sdf_samples(shards, split_ids(split, "train"))
    trainer = ImplicitTrainer(decoder, codes, points, sdf, now, work_path(output), work_path(output.with_suffix(".csv")))
    assert trainer.epoch == 1  # resumed
    assert trainer._changed_settings(state["config"]) == []
    assert trainer._changed_settings({k: v for k, v in state["config"].items() if k != "lambda_eikonal"}) == \
        [f"lambda_eikonal: unset -> {now.lambda_eikonal}"]  # a key that is not null now still counts
    with pytest.raises(ValueError, match="steik_gradient: unset -> steik"):
        ImplicitTrainer(decoder, codes, points, sdf, replace(now, steik_gradient="steik"), work_path(output),
                        work_path(output.with_suffix(".csv")))


def _killed_stage1(cfg, shards, split, output, sources: dict | None):
    """A stage-1 attempt killed after its first epoch, its sources recorded as the entry point records them (None:
    a working checkpoint from before the record)."""
    if sources is not None:
        claim_work(output, sources)
    killed = replace(implicit_train_config(cfg, "eikonal"), epochs=1)
    torch.manual_seed(cfg.train.seed)
    decoder, codes = build_decoder_and_codes(cfg.model, cfg.latent, None, 4)
    _, points, sdf = load_sdf_samples(shards, split_ids(split, "train"))
    ImplicitTrainer(decoder, codes, points, sdf, killed, work_path(output), work_path(output.with_suffix(".csv")))\
        .fit(progress=False)


def test_a_killed_stage_is_not_resumed_once_its_inputs_were_made_again(tmp_path, caplog):
    """Snakemake reruns a job whose input changed; the working files of a killed attempt at the old input (checkpoint,
    loss rows, record) move into ``.<output>.stale-1`` and the stage starts over: the result is a fresh run's on the
    new input, bit for bit. With the same sources it resumes; a working checkpoint without a record resumes as
    before."""
    cfg = schema_defaults({"model.latent_size": 4, "model.hidden": 16, "model.n_layers": 4, "train.implicit.epochs": 2,
                          "train.implicit.batch_shapes": 2, "train.implicit.points_per_shape": 16,
                          "train.implicit.regularizer_shapes": 1, "train.implicit.regularizer_points": 16})
    shards, split = _tiny_category(tmp_path)
    inputs = Job.of(cfg, dict(samples=shards, split=split), {}).input
    output = tmp_path / "model.pt"
    _killed_stage1(cfg, shards, split, output, work_sources({}, inputs))
    with np.load(shards[0]) as f:  # the samples made again, of other shapes
        data = dict(f)
    np.savez(shards[0], **(data | {"sdf": data["sdf"] - 0.05}))
    with caplog.at_level("WARNING"):
        pretrain_implicit(_stage1(cfg, shards, split, output, tmp_path / "model.csv"))
    assert "other inputs or settings (input sdf.npz)" in caplog.text
    kept = tmp_path / ".model.pt.stale-1"
    assert sorted(p.name for p in kept.iterdir()) == [".model.csv.work", ".model.pt.work", ".model.pt.work.sources.json"]
    assert load_checkpoint(kept / ".model.pt.work")["epoch"] == 1
    assert not work_path(output).exists() and not (tmp_path / ".model.pt.work.sources.json").exists()
    fresh = tmp_path / "fresh.pt"
    pretrain_implicit(_stage1(cfg, shards, split, fresh, tmp_path / "fresh.csv"))
    for key, value in load_checkpoint(fresh)["decoder"].items():
        assert torch.equal(value, load_checkpoint(output)["decoder"][key]), key
    assert (tmp_path / "fresh.csv").read_text() == (tmp_path / "model.csv").read_text()

    for name, sources in (("same", work_sources({}, inputs)), ("unrecorded", None)):
        again = tmp_path / f"{name}.pt"
        _killed_stage1(cfg, shards, split, again, sources)
        caplog.clear()
        with caplog.at_level("INFO"):
            pretrain_implicit(_stage1(cfg, shards, split, again, tmp_path / f"{name}.csv"))
        assert "resumed from" in caplog.text and load_checkpoint(again)["epoch"] == 2
        assert not list(tmp_path.glob(f".{name}.pt.stale-*"))
        for key, value in load_checkpoint(fresh)["decoder"].items():
            assert torch.equal(value, load_checkpoint(again)["decoder"][key]), (name, key)


def test_a_changed_setting_keeps_the_attempt_aside_and_changing_it_back_resumes_it(tmp_path, caplog):
    """Nothing is deleted: a setting changed by mistake keeps the first attempt in ``.stale-1``, the mistaken one
    in ``.stale-2`` once the setting is back, and the first resumes. More epochs and other persistence threads are
    no change; a killed stage-1b sweep (no checkpoint yet, only its working folder) goes aside like a checkpoint."""
    (tmp_path / "a.npz").write_bytes(b"12")
    inputs = Job.of({}, {"samples": [tmp_path / "a.npz"]}, {}).input
    settings = {"model": {"softplus_beta": 100}, "train": {"implicit": {"epochs": 10}, "joint": {"workers": 1}}}
    base = work_sources(settings, inputs)
    assert base["inputs"] == {str(tmp_path / "a.npz"): [2, (tmp_path / "a.npz").stat().st_mtime_ns]}
    same = json.loads(json.dumps(settings))
    same["train"]["implicit"]["epochs"], same["train"]["joint"]["workers"] = 20, 7
    assert work_sources(same, inputs) == base
    output = tmp_path / "model.pt"
    claim_work(output, base)
    atomic_torch_save({"epoch": 3, "attempt": 1}, work_path(output))
    claim_work(output, work_sources(same, inputs))
    assert load_checkpoint(work_path(output))["attempt"] == 1
    mistake = json.loads(json.dumps(settings))
    mistake["model"]["softplus_beta"] = 50
    with caplog.at_level("WARNING"):
        claim_work(output, work_sources(mistake, inputs))
    assert "model.softplus_beta: 100 -> 50" in caplog.text
    assert not work_path(output).exists() and (tmp_path / ".model.pt.stale-1" / ".model.pt.work").exists()
    atomic_torch_save({"epoch": 1, "attempt": 2}, work_path(output))
    claim_work(output, base)
    assert load_checkpoint(work_path(output))["attempt"] == 1  # the first attempt is back
    assert not (tmp_path / ".model.pt.stale-1").exists()
    assert load_checkpoint(tmp_path / ".model.pt.stale-2" / ".model.pt.work")["attempt"] == 2

    pdgen, sweep = tmp_path / "pdgen.pt", work_path(tmp_path / "selection.json")
    claim_work(pdgen, base, extra=[tmp_path / "selection.json"])
    sweep.mkdir()
    (sweep / "candidate_0.pt").write_bytes(b"x")
    claim_work(pdgen, work_sources(mistake, inputs), extra=[tmp_path / "selection.json"])
    assert not sweep.exists() and (tmp_path / ".pdgen.pt.stale-1" / sweep.name / "candidate_0.pt").exists()


def test_the_kept_attempts_are_listed_with_what_changed_and_the_tool_removes_only_them(tmp_path, capsys):
    """``tools/kept_attempts.py``: each ``.stale-<n>`` folder under a results folder with the output it trained and
    the settings it was made from that the output's current record is not; ``--remove`` deletes the folders and
    nothing else (the current attempt's record stays)."""
    tool = load_tool("kept_attempts")
    (tmp_path / "a.npz").write_bytes(b"12")
    inputs = Job.of({}, {"samples": [tmp_path / "a.npz"]}, {}).input
    output = tmp_path / "chair" / "train" / "ours" / "model.pt"
    output.parent.mkdir(parents=True)
    assert kept_attempts(tmp_path) == []
    claim_work(output, work_sources({"model": {"softplus_beta": 100}}, inputs))
    atomic_torch_save({"epoch": 3}, work_path(output))
    claim_work(output, work_sources({"model": {"softplus_beta": 50}}, inputs))
    [kept] = kept_attempts(tmp_path)
    assert kept["path"] == output.parent / ".model.pt.stale-1" and kept["output"] == output
    assert kept["changed"] == ["model.softplus_beta: 100 -> 50"] and kept["bytes"] > 0
    assert tool.main([str(tmp_path)]) == 0
    assert "made from other: model.softplus_beta: 100 -> 50" in capsys.readouterr().out and kept["path"].exists()
    assert tool.main([str(tmp_path), "--remove"]) == 0
    assert "1 attempt(s) removed" in capsys.readouterr().out
    assert kept_attempts(tmp_path) == [] and (output.parent / ".model.pt.work.sources.json").exists()
    assert tool.main([str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize("cls", [ImplicitTrainConfig, PDGeneratorTrainConfig, JointTrainConfig])
def test_the_stages_settings_have_no_defaults_of_their_own(cls):
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(cls))


def test_the_stages_settings_take_the_schemas_defaults():
    train = load_schema()["properties"]["train"]["properties"]
    default = {block: {key: spec["default"] for key, spec in train[block]["properties"].items()}
               for block in ("implicit", "pdgen", "joint")}
    cfg = schema_defaults()
    implicit = implicit_train_config(cfg, "steik")
    assert {key: getattr(implicit, key) for key in default["implicit"]} == default["implicit"]
    assert implicit.lambda_steik == 0.01 and implicit.seed == 0
    pdgen = pdgen_train_config(cfg, "no_pd_smoothness")
    assert {key: getattr(pdgen, key) for key in default["pdgen"]} == default["pdgen"]
    assert pdgen.lambda_smooth == 0.0 and pdgen_train_config(cfg, "ours_deepsdf").lambda_smooth is None  # auto
    joint = joint_train_config(cfg, "ours_deepsdf", threads=4)
    resolved = ("workers", "grid_resolution")  # null in the schema: the threads - 1, grid.resolution
    assert {key: getattr(joint, key) for key in default["joint"] if key not in resolved} == \
        {key: value for key, value in default["joint"].items() if key not in resolved}
    assert default["joint"]["grid_resolution"] is None and joint.grid_resolution == cfg.grid.resolution == 64
    assert joint.workers == 3 and joint.tau == 0.1 and joint.topology == "learned"
    unset = joint_train_config(schema_defaults({"methods.ours_deepsdf.lambda_cons": None}), "ours_deepsdf")
    assert unset.lambda_cons == unset.lambda_con == 0.25  # null: eq. 14 takes eq. 13's weight
    assert (joint.lambda_kl, joint.smooth_share) == (default["implicit"]["lambda_kl"], default["pdgen"]["smooth_share"])


def test_rows_of_an_attempt_killed_before_its_first_checkpoint_are_dropped(tmp_path):
    cfg = schema_defaults({"model.latent_size": 4, "model.hidden": 16, "model.n_layers": 4, "train.implicit.epochs": 1,
                          "train.implicit.batch_shapes": 2, "train.implicit.points_per_shape": 16,
                          "train.implicit.regularizer_shapes": 1, "train.implicit.regularizer_points": 16})
    shards, split = _tiny_category(tmp_path)
    csv = tmp_path / "log.csv"
    work_path(csv).write_text("epoch,loss\n1,99\n")  # no checkpoint beside it
    pretrain_implicit(_stage1(cfg, shards, split, tmp_path / "model.pt", csv))
    rows = csv.read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,") and ",99" not in rows[1]


@pytest.mark.parametrize("essential_slot", [False, True])
def test_a_model_with_pd_generators_is_rebuilt_with_their_essential_slot(tmp_path, essential_slot):
    """load_model rebuilds the PD generators as they were trained, the essential slot included (its output
    differs from the plain generator's with the same weights)."""
    from toposdf.generation import load_model
    from toposdf.models import PDGenerators

    model = {"latent_size": 4, "hidden": 16, "n_layers": 4}
    decoder, codes = build_decoder_and_codes(model, {}, None, 2)
    generators = PDGenerators(4, (3, 2, 1), hidden=8, tau=0.1, essential_slot=essential_slot)
    path = tmp_path / "model.pt"
    atomic_torch_save({"model": model, "latent": {}, "decoder": decoder.state_dict(), "codes": codes.state_dict(),
                       "pd_generators": generators.state_dict(), "n_points": [3, 2, 1], "tau": 0.1,
                       "essential_slot": essential_slot, "ids": ["a", "b"], "method": "ours_deepsdf"}, path)
    loaded = load_model(path, "cpu").generators
    z = torch.randn(5, 4)
    with torch.no_grad():
        for want, got in zip(generators(z), loaded(z)):
            torch.testing.assert_close(got, want)
        assert torch.all(loaded(z)[0][:, 0, 1] == 0.1) == essential_slot


def test_pd_generators_are_rebuilt_from_their_saved_state_alone():
    """PDGenerators.from_state reads the latent size, hidden width and embedding size off the weights, so a
    stage-1b ``pdgen.pt`` (which records no model config) rebuilds the generators it was trained with."""
    from toposdf.models import PDGenerators

    generators = PDGenerators(6, (2, 3, 1), hidden=12, embed_size=5, tau=0.2, essential_slot=True)
    rebuilt = PDGenerators.from_state({"pd_generators": generators.state_dict(), "n_points": [2, 3, 1], "tau": 0.2,
                                       "essential_slot": True})
    z = torch.randn(4, 6)
    with torch.no_grad():
        for want, got in zip(generators(z), rebuilt(z)):
            torch.testing.assert_close(got, want)
    with pytest.raises(RuntimeError):  # a wrong slot count does not load silently
        PDGenerators.from_state({"pd_generators": generators.state_dict(), "n_points": [2, 2, 1], "tau": 0.2})


# ------------------------------------------------------------------------------------------------------------
# The device policy (the config's device, handed to the jobs as TOPOSDF_DEVICE)
# ------------------------------------------------------------------------------------------------------------
def test_the_device_policy_auto_falls_back_to_the_cpu_and_cuda_stops_naming_the_cause(monkeypatch):
    from toposdf.checkpoints import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for policy in ("auto", "", "cpu"):
        monkeypatch.setenv("TOPOSDF_DEVICE", policy)
        assert pick_device() == torch.device("cpu")
    monkeypatch.delenv("TOPOSDF_DEVICE")
    assert pick_device() == torch.device("cpu")  # unset: auto, as on a laptop and in CI
    monkeypatch.setenv("TOPOSDF_DEVICE", "cuda")
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(RuntimeError, match=r"device: cuda, but no CUDA device works here: this torch build .* has no "
                                           r"CUDA support"):
        pick_device()
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(RuntimeError, match="CUDA_VISIBLE_DEVICES hides every GPU"):
        pick_device()
    assert pick_device("cpu") == torch.device("cpu")  # an explicit device is taken as it is
    monkeypatch.setenv("TOPOSDF_DEVICE", "gpu")
    with pytest.raises(ValueError, match="expected auto, cpu or cuda"):
        pick_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for policy in ("auto", "cuda"):
        monkeypatch.setenv("TOPOSDF_DEVICE", policy)
        assert pick_device() == torch.device("cuda")
    monkeypatch.setenv("TOPOSDF_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_a_trainer_asked_for_cuda_without_one_stops_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("TOPOSDF_DEVICE", "cuda")
    cfg = schema_defaults({"model.latent_size": 4, "model.hidden": 16, "model.n_layers": 4})
    shards, split = _tiny_category(tmp_path)
    with pytest.raises(RuntimeError, match="device: cuda, but no CUDA device works here"):
        pretrain_implicit(_stage1(cfg, shards, split, tmp_path / "implicit.pt", tmp_path / "log.csv"))
    assert not (tmp_path / "implicit.pt").exists() and not work_path(tmp_path / "implicit.pt").exists()


def test_the_device_is_no_stage_setting_so_changing_it_reruns_nothing():
    from toposdf.stages import READS

    assert load_schema()["properties"]["device"]["default"] == "auto"
    assert not [rule for rule, keys in READS.items() if any(key.split(".")[0] == "device" for key in keys)]


class _Payload:
    """Anything but tensors and plain data: unpickling it could run code."""


def test_a_checkpoint_holding_a_python_object_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "shared.pt"
    torch.save({"epoch": 1, "decoder": {"w": torch.zeros(2)}, "extra": _Payload()}, path)
    with pytest.raises(ValueError, match=r"shared\.pt: not a toposdf checkpoint .* refused"):
        load_checkpoint(path)
    torch.save({"epoch": 1, "decoder": {"w": torch.zeros(2)}, "config": {"anneal": (0.2, 0.4), "ids": ["a"]}}, path)
    assert load_checkpoint(path)["config"]["anneal"] == (0.2, 0.4)  # plain data loads


def _step(decoder: SDFDecoder, z: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
    """The SDF, its spatial gradient and the parameters' gradients of a stage-1-like loss."""
    decoder.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    sdf = decoder(z, x)
    grad = spatial_gradient(sdf, x)
    (sdf.abs().mean() + ((grad.norm(dim=-1) - 1) ** 2).mean()).backward()
    return [sdf.detach(), grad.detach()] + [p.grad.clone() for p in decoder.parameters()]


def test_cpu_threads_flushes_denormals_and_the_decoder_changes_only_below_1e_30():
    """Every job calls cpu_threads: float32 denormals become zero (x86 computes with them in slow microcode). The
    decoder's softplus makes denormals, yet its outputs and gradients change only in numbers below 1e-30 (a gradient
    of 1e-36 moves by an ulp), which no optimizer step sees: a trained stage 1 ends bit-identical either way."""
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    decoder = SDFDecoder(DecoderConfig(latent_size=4, hidden=32, n_layers=4, weight_norm=False, softplus_beta=100.0,
                                       geometric_init=False))
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.mul_(3.0)  # spread the pre-activations as a trained network's are
    z, x = torch.randn(8, 4) * 0.1, torch.rand(8, 64, 3) * 2 - 1
    try:
        torch.set_flush_denormal(False)
        assert (torch.tensor([1e-39]) * 1.0).item() != 0.0
        pre = decoder.layers[0](torch.cat([z[:, None].expand(-1, 64, -1), x], -1))
        made = torch.nn.functional.softplus(pre, beta=100.0).abs()
        assert ((made > 0) & (made < torch.finfo(torch.float32).tiny)).any(), "the case makes no denormals"
        kept = _step(decoder, z, x)
        cpu_threads(1)
        assert (torch.tensor([1e-39]) * 1.0).item() == 0.0
        assert torch.get_num_threads() == 1
        flushed = _step(decoder, z, x)
        assert all(torch.allclose(a, b, rtol=0.0, atol=1e-30) for a, b in zip(kept, flushed))
        assert all(torch.equal(a, b) for a, b in zip(kept[:2], flushed[:2]))  # the SDF and its spatial gradient
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)


def test_an_atomic_write_removes_the_temporary_files_a_killed_process_left(tmp_path):
    """``kill -9`` during an atomic write leaves ``.<name>.tmp-<host>-<pid>``; the next write of that file removes it, and
    keeps one whose process still runs (another writer's)."""
    import subprocess
    import sys

    from toposdf.io import _HOST, atomic_write_json

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    stale = tmp_path / f".out.json.tmp-{_HOST}-{dead}"
    kept = [tmp_path / f".out.json.tmp-{_HOST}-{os.getppid()}",  # a live process's
            tmp_path / f".out.json.tmp-othernode-{dead}",  # another node's, on a shared file system
            tmp_path / f".other.json.tmp-{_HOST}-{dead}"]  # another file's
    for path in (stale, *kept):
        path.write_bytes(b"")
    atomic_write_json(tmp_path / "out.json", {"a": 1})
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": 1}
    assert not stale.exists() and all(path.exists() for path in kept)
