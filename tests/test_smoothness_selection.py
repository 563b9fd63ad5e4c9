"""Stage 1b's choice of eq. 10's weight for ``lambda_smooth: auto``: the share of the calibration unit
whose PD generator, trained on part of the training shapes, gives diagrams at z ~ N(0, I) closest by PD-LAP to the
held-out shapes'; the record of the choice, its resume, and the workflow output that carries it."""

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import DEVICE
from test_training import pd_config, schema_defaults
from toposdf.jobs import Job
from toposdf.checkpoints import atomic_torch_save, load_checkpoint, work_path
from toposdf.models import PDGenerators
from toposdf.topology import off_diagonal, save_diagrams
from toposdf.training import choose_candidate, generator_sizes, holdout_split, pretrain_pdgen, select_smoothness
from toposdf.training import smoothness_selection

LATENT, N_SHAPES = 4, 16


def _diagram(persistence: float) -> list[np.ndarray]:
    """One shape's ``[PD0, PD1, PD2]``: the essential class and one tunnel born at -0.04."""
    return [np.array([[-0.08, 0.1]]), np.array([[-0.04, -0.04 + persistence]]), np.zeros((0, 2))]


def _problem(held_out_constant: bool = False):
    """16 codes whose first coordinate sets the tunnel's persistence (the code carries the diagram); with
    ``held_out_constant``, the shapes the selection holds out (fraction 0.5, seed 1) all have the fit part's
    average tunnel instead, which only a generator that ignores the code matches."""
    codes = np.random.default_rng(0).normal(size=(N_SHAPES, LATENT)).astype(np.float32)
    diagrams = [_diagram(0.05 + 0.03 * np.tanh(z[0])) for z in codes]
    if held_out_constant:
        for i in holdout_split(N_SHAPES, 0.5, 1)[1]:
            diagrams[i] = _diagram(0.05)
    return codes, diagrams


def _maker(diagrams, calls=None):
    sizes = generator_sizes(diagrams, max_points=8)

    def make(part):
        if calls is not None:
            calls.append(len(part))
        torch.manual_seed(0)
        generators = PDGenerators(LATENT, sizes, hidden=32, tau=0.1)
        generators.initialize_from(part)
        return generators

    return make


SWEEP = pd_config(epochs=25, batch_shapes=2, lr=1e-3, lambda_smooth=None, smooth_shapes=4, seed=1,
                  smooth_candidates=[0.0, 2.0], select_holdout=0.5, select_draws=3, select_epochs=None)


def _select(tmp_path, name, held_out_constant=False, cfg=SWEEP, calls=None):
    codes, diagrams = _problem(held_out_constant)
    return select_smoothness(_maker(diagrams, calls), codes, diagrams, cfg, tmp_path / name, device=DEVICE)


@pytest.fixture(scope="module")
def code_carries_the_diagram(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("selection")
    return tmp, _select(tmp, "sweep")


def test_the_held_out_split_is_seeded_disjoint_and_leaves_shapes_on_both_sides():
    fit, held = holdout_split(16, 0.25, 3)
    assert len(held) == 4 and sorted(fit + held) == list(range(16))
    assert (fit, held) == holdout_split(16, 0.25, 3) and held != holdout_split(16, 0.25, 4)[1]
    assert [len(part) for part in holdout_split(5, 0.01, 0)] == [4, 1]  # at least one held out
    assert [len(part) for part in holdout_split(5, 0.99, 0)] == [1, 4]  # at least one to fit
    with pytest.raises(ValueError, match="at least 2 training shapes"):
        holdout_split(1, 0.25, 0)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        holdout_split(8, 1.0, 0)


def test_the_lowest_mean_wins_and_a_tie_goes_to_the_smaller_share():
    def c(share, mean):
        return {"share": share, "pd_lap_mean": mean}

    assert choose_candidate([c(0.0, 3.0), c(0.02, 1.0), c(0.2, 2.0)]) == 1
    assert choose_candidate([c(0.2, 1.0), c(0.0, 2.0), c(0.02, 1.0)]) == 2  # tie: the smaller share
    assert choose_candidate([c(0.0, 1.0 + 1e-12), c(0.2, 1.0)]) == 0  # equal to 1e-9: a tie
    assert choose_candidate([c(0.0, 1.0), c(0.2, 1.0 - 1e-6)]) == 1  # lower by more: the larger weight earns it
    assert choose_candidate([c(0.0, None), c(0.2, 5.0)]) == 1  # a diverged candidate is out
    with pytest.raises(ValueError, match="diverging"):
        choose_candidate([c(0.0, None)])


def test_generated_diagrams_are_processed_as_fig3_processes_the_generators_output():
    from toposdf.generation import generator_diagrams, sample_latents

    torch.manual_seed(0)
    generators = PDGenerators(LATENT, (3, 4, 2), hidden=16, tau=0.1)  # untrained: some slots on the diagonal
    draws = smoothness_selection.prior_diagrams(generators, LATENT, 6, [11, 12])
    for seed, draw in zip([11, 12], draws):
        fig3 = [off_diagonal(d) for d in generator_diagrams(SimpleNamespace(generators=generators),
                                                             sample_latents(6, LATENT, seed))]
        assert len(draw) == 6
        for ours, theirs in zip(draw, fig3):
            for a, b in zip(ours, theirs):
                np.testing.assert_array_equal(a, b)
    assert sum(len(d[2]) for d in draws[0]) < 12  # some slots were dropped


def test_when_the_code_carries_the_diagram_the_smallest_weight_wins(code_carries_the_diagram):
    _, record = code_carries_the_diagram
    zero, large = record["candidates"]
    assert record["chosen_share"] == 0.0 and record["chosen_index"] == 0
    assert zero["pd_lap_mean"] < large["pd_lap_mean"]
    # every candidate's first epoch is the same unweighted epoch, so they share the unit; lambda_s = share * unit
    assert zero["unit"] == large["unit"] == record["unit"] > 0
    assert zero["lambda_smooth"] == 0.0 and large["lambda_smooth"] == pytest.approx(2.0 * large["unit"])
    assert zero["pd_fit"] < large["pd_fit"]  # the large weight flattened the generator


def test_when_the_held_out_shapes_carry_the_average_diagram_the_flat_generator_wins(tmp_path):
    record = _select(tmp_path, "sweep", held_out_constant=True)
    zero, large = record["candidates"]
    assert record["chosen_share"] == 2.0 and large["pd_lap_mean"] < zero["pd_lap_mean"]


def test_the_record_holds_the_curve_and_how_it_was_measured(code_carries_the_diagram):
    tmp, record = code_carries_the_diagram
    assert json.loads((tmp / "sweep" / "selection.json").read_text()) == record
    settings = record["settings"]
    assert settings["shares"] == [0.0, 2.0] and settings["held_out_count"] == 8 and settings["fit_count"] == 8
    assert settings["held_out"] == holdout_split(N_SHAPES, 0.5, 1)[1] and settings["codes_per_draw"] == 8
    assert len(settings["draw_seeds"]) == 3 and settings["seed"] == 1 and settings["epochs"] == 25
    for entry in record["candidates"]:
        assert len(entry["pd_lap_draws"]) == 3
        assert entry["pd_lap_mean"] == pytest.approx(np.mean(entry["pd_lap_draws"]))
        assert entry["pd_lap_std"] == pytest.approx(np.std(entry["pd_lap_draws"]))
        assert set(entry["per_dimension"]) == {"H0", "H1", "H2"}
    assert not list((tmp / "sweep").glob("candidate*"))  # a scored candidate's checkpoint is gone


def test_a_rerun_after_the_sweep_trains_no_candidate(code_carries_the_diagram):
    tmp, record = code_carries_the_diagram
    calls = []
    assert _select(tmp, "sweep", calls=calls) == record and calls == []


def test_a_sweep_killed_after_a_candidate_resumes_with_the_next(tmp_path, monkeypatch):
    cfg = replace(SWEEP, select_epochs=2, smooth_candidates=[0.0, 0.02, 0.2])
    train = smoothness_selection._train_candidate

    def killed_at_the_second(*args, **kwargs):
        if args[-3] == 1:  # index
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    monkeypatch.setattr(smoothness_selection, "_train_candidate", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        _select(tmp_path, "sweep", cfg=cfg)
    monkeypatch.undo()
    first = json.loads((tmp_path / "sweep" / "selection.json").read_text())["candidates"]
    calls = []
    record = _select(tmp_path, "sweep", cfg=cfg, calls=calls)
    assert len(calls) == 2 and record["candidates"][0] == first[0] and len(record["candidates"]) == 3
    assert record["settings"]["epochs"] == 2
    calls = []
    other = _select(tmp_path, "sweep", cfg=replace(cfg, select_draws=2), calls=calls)  # other settings: anew
    assert len(calls) == 3 and len(other["settings"]["draw_seeds"]) == 2


# ------------------------------------------------------------------------------------------------------------
# Stage 1b's entry point: the selection, then the final generator on every shape; the JSON the rule writes
# ------------------------------------------------------------------------------------------------------------
def _stage1b_inputs(tmp_path):
    codes, diagrams = _problem()
    ids = [f"s{i:02d}" for i in range(N_SHAPES)]
    save_diagrams(tmp_path / "diagrams.npz", ids, diagrams, tau=0.1, min_persistence=0.0)
    atomic_torch_save({"ids": ids, "codes": {"mu": torch.as_tensor(codes)}}, tmp_path / "implicit.pt")
    pdgen = {"epochs": 2, "batch_shapes": 4, "hidden": 16, "max_points": 4, "smooth_shapes": 2,
             "smooth_candidates": [0.0, 0.5], "select_draws": 2}
    return schema_defaults({"model.latent_size": LATENT} | {f"train.pdgen.{key}": value for key, value in pdgen.items()})


def _run_stage1b(cfg, tmp_path, method):
    out = tmp_path / method
    pretrain_pdgen(Job.of(cfg, dict(implicit=tmp_path / "implicit.pt", diagrams=[tmp_path / "diagrams.npz"]),
                          dict(checkpoint=out / "pdgen.pt", curve=out / "pdgen_log.csv",
                               selection=out / "smoothness_selection.json"), method=method))
    return json.loads((out / "smoothness_selection.json").read_text()), load_checkpoint(out / "pdgen.pt")


def test_stage_1b_trains_the_final_generator_with_the_chosen_share_after_a_kill(tmp_path, monkeypatch):
    from toposdf.training import entry

    cfg = _stage1b_inputs(tmp_path)

    class Killed(entry.PDGeneratorTrainer):
        def fit(self, *args, **kwargs):
            raise KeyboardInterrupt  # killed in the final training, after the sweep

    monkeypatch.setattr(entry, "PDGeneratorTrainer", Killed)
    with pytest.raises(KeyboardInterrupt):
        _run_stage1b(cfg, tmp_path, "ours_deepsdf")
    monkeypatch.undo()
    swept = json.loads((work_path(tmp_path / "ours_deepsdf" / "smoothness_selection.json") / "selection.json")
                       .read_text())

    def no_sweep(*args, **kwargs):
        raise AssertionError("the finished sweep was redone")

    monkeypatch.setattr(smoothness_selection, "_train_candidate", no_sweep)
    summary, checkpoint = _run_stage1b(cfg, tmp_path, "ours_deepsdf")
    assert summary["selected"] and summary["candidates"] == swept["candidates"]
    assert summary["share"] == swept["chosen_share"] == summary["candidates"][summary["chosen_index"]]["share"]
    assert summary["held_out_shapes"] == 4 and summary["fit_shapes"] == 12 and summary["holdout"] == 0.25
    assert summary["seed"] == cfg.train.seed and len(summary["draw_seeds"]) == 2
    assert summary["unit_selection"] == swept["unit"] and "lowest mean" in summary["rule"]
    # stage 2 reads lambda_s from pdgen.pt: the chosen share of the unit measured on every training shape
    assert checkpoint["lambda_smooth"] == summary["lambda_smooth"]
    assert checkpoint["config"]["smooth_share"] == summary["share"]
    if summary["share"] > 0:
        assert summary["lambda_smooth"] == pytest.approx(summary["share"] * summary["unit_final"])
    assert checkpoint["smooth_selection"]["chosen_share"] == summary["share"]
    assert not work_path(tmp_path / "ours_deepsdf" / "smoothness_selection.json").exists()


def test_a_set_weight_is_recorded_without_a_sweep(tmp_path, monkeypatch):
    cfg = _stage1b_inputs(tmp_path)
    monkeypatch.setattr(smoothness_selection, "_train_candidate", None)  # would fail if called
    summary, checkpoint = _run_stage1b(cfg, tmp_path, "no_pd_smoothness")
    assert not summary["selected"] and "set to 0.0" in summary["reason"]
    assert summary["lambda_smooth"] == checkpoint["lambda_smooth"] == 0.0 and summary["share"] is None


@pytest.mark.workflow  # a dry run of the tiny preset (Snakemake's start-up: ~10 s)
def test_the_workflow_plans_the_selection_record_for_every_stage_1b(tmp_path):
    from test_workflow import _copy_workflow, _planned

    planned = _planned(_copy_workflow(tmp_path / "wf"), configfiles=("presets/tiny.yaml",))  # both categories
    learned = ("ours_deepsdf", "ours_deepsdf_se", "no_pd_smoothness")  # the methods with a stage 1b
    selections = {path for path in planned if path.endswith("smoothness_selection.json")}
    assert selections == {f"results/tiny/{c}/train/{m}/smoothness_selection.json" for c in ("chair", "table")
                          for m in learned}
