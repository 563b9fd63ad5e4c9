"""The workflow's training entry points, one per stage: read the shards, build the networks and the stage's
settings from the configuration, train (resuming a killed job from its ``.work`` checkpoint), and write the
finished checkpoint atomically with what generation and evaluation need (see :mod:`toposdf.checkpoints`)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import torch

from toposdf.checkpoints import (build_decoder_and_codes, claim_work, cpu_threads, finish, load_checkpoint, work_path,
                                 work_sources)
from toposdf.config import Config
from toposdf.data import SPILL_BYTES, load_sdf_samples, load_shape_diagrams, split_ids
from toposdf.io import atomic_write_json, read_json
from toposdf.jobs import Job
from toposdf.models import PDGenerators, check_prior_coverage
from toposdf.training.configs import implicit_train_config, joint_train_config, pdgen_train_config
from toposdf.training.implicit import ImplicitTrainer
from toposdf.training.joint import JointTrainer
from toposdf.training.pdgen import PDGeneratorTrainer, collapsed_dimensions, generator_sizes
from toposdf.training.smoothness_selection import select_smoothness, selection_summary

log = logging.getLogger(__name__)



def new_pd_generators(cfg: Config, from_scratch: bool, diagrams) -> PDGenerators:
    """PD generators sized by the training diagrams (``n_k`` = the largest ``|PD_k|``, capped at
    ``train.pdgen.max_points``), their points kept in ``[-tau, tau]``, started at the diagrams' centroid (see
    :meth:`PDGenerators.initialize_from`) unless the method trains from scratch."""
    sizes = generator_sizes(diagrams, cfg.train.pdgen.max_points)
    generators = PDGenerators(cfg.model.latent_size, sizes, hidden=cfg.train.pdgen.hidden, tau=cfg.persistence.tau,
                              essential_slot=cfg.train.pdgen.essential_slot)
    if not from_scratch:
        generators.initialize_from(diagrams)
    return generators


def pretrain_implicit(job: Job) -> None:
    """Stage 1 (eq. 11) for one category and geometric regularizer (``wildcards.geometry``) on the training shapes'
    SDF samples (``input.split``, ``input.samples``), to ``output.checkpoint`` and ``output.curve``; resumable.

    Stage 1 depends on nothing but the geometric regularizer, so the methods that share one (``geometry`` in
    their config block) share this checkpoint, and the ablations start from the same network.
    """
    cfg, geometry, output, log_csv = job.cfg, job.wildcards.geometry, job.output.checkpoint, job.output.curve
    cpu_threads(job.threads)
    claim_work(output, work_sources(job.settings, job.input), extra=[log_csv])
    ids, points, sdf = load_sdf_samples(job.input.samples, split_ids(job.input.split, "train"), at_least_one=True,
                                        spill_bytes=SPILL_BYTES)
    train_cfg = implicit_train_config(cfg, geometry)
    torch.manual_seed(cfg.train.seed)
    decoder, codes = build_decoder_and_codes(asdict(cfg.model), asdict(cfg.latent), None, len(ids))
    trainer = ImplicitTrainer(decoder, codes, points, sdf, train_cfg, checkpoint=work_path(output),
                              log_csv=work_path(log_csv))
    log.info("stage 1 (%s): %d training shapes, %s on %s", geometry, len(ids), train_cfg, trainer.device)
    trainer.fit()
    spread = check_prior_coverage(codes.aggregate_std(), f"stage 1 ({geometry})")
    finish(trainer.state() | {"ids": ids, "geometry": geometry, "model": asdict(cfg.model), "latent": asdict(cfg.latent),
                              "latent_aggregate_std": spread}, output, log_csv)


COLLAPSE_ADVICE = {  # what a collapsed generator means, by the stage after which it is found
    "stage 1b": "it has collapsed, and stage 2 will remove those features from the shapes. Rerun with another "
                "train.seed or a lower train.pdgen.lr (at a higher rate the slots can collapse onto the diagonal in "
                "the first epochs; for PD0 also train.pdgen.essential_slot: true).",
    "stage 2": "eq. 8 has been asking the synthetic shapes to remove those features (for PD0 every piece: expect "
               "empty prior samples). No PD Training, whose generators never see PD data, does this at some seeds "
               "(docs/results.md, section 0); for a method with PD data, rerun with another train.seed.",
}


def warn_if_collapsed(generators: PDGenerators, latent_means, diagrams, method: str, stage: str = "stage 1b") -> None:
    """Warn about each homology dimension whose generator has collapsed onto the diagonal after ``stage`` (a key of
    :data:`COLLAPSE_ADVICE`)."""
    advice = COLLAPSE_ADVICE[stage]
    with torch.no_grad():
        dimensions = collapsed_dimensions(generators, torch.as_tensor(latent_means), diagrams)
    for k in dimensions:
        log.warning("%s (%s): PD%d's generator puts all %d slots on the diagonal at every training code, though the "
                    "training diagrams have such points: %s", stage, method, k, generators.generators[k].n_points,
                    advice)


def pretrain_pdgen(job: Job) -> None:
    """Stage 1b (eq. 12) for one category and method (``wildcards.method``): the PD generators fitted to the training
    diagrams (``input.diagrams``) at the latent means of the stage-1 checkpoint (``input.implicit``), to
    ``output.checkpoint`` and ``output.curve``; resumable.

    With ``lambda_smooth: auto`` and ``lambda_pd > 0``, eq. 10's share is first chosen among
    ``train.pdgen.smooth_candidates`` by the held-out PD-LAP of generators trained on part of the training shapes
    (:func:`~toposdf.training.smoothness_selection.select_smoothness`, resumable from its working folder beside
    ``output.selection``); the final generator is then trained on every training shape with that share. Otherwise
    (a set weight, or no PD data: the share calibration, ``smooth_share``) nothing is chosen. ``output.selection``
    records the final ``lambda_smooth``, which stage 2 reads, with the choice and its curve, or why none was made.
    """
    cfg, method, implicit_path, diagram_paths = job.cfg, job.wildcards.method, job.input.implicit, job.input.diagrams
    output, log_csv, selection, threads = job.output.checkpoint, job.output.curve, job.output.selection, job.threads
    cpu_threads(threads)
    claim_work(output, work_sources(job.settings, job.input), extra=[log_csv, selection])
    stage1 = load_checkpoint(implicit_path)
    diagrams = list(load_shape_diagrams(diagram_paths, stage1["ids"]).values())
    block = cfg.methods[method]

    def generators_for(part) -> PDGenerators:
        """The generators sized by every training diagram, from the same seed, started at ``part``'s centroid."""
        torch.manual_seed(cfg.train.seed)
        generators = new_pd_generators(cfg, True, diagrams)
        if not block.from_scratch:
            generators.initialize_from(part)
        return generators

    train_cfg = pdgen_train_config(cfg, method)
    selection = Path(selection)
    record, reason = None, ""
    if train_cfg.lambda_smooth is not None:
        reason = f"lambda_smooth is set to {train_cfg.lambda_smooth}"
    elif train_cfg.lambda_pd <= 0:
        reason = "lambda_pd is 0: no PD data to hold out; smooth_share calibrates lambda_smooth"
    elif len(diagrams) < 2:
        reason = f"{len(diagrams)} training shape: none to hold out; smooth_share calibrates lambda_smooth"
        log.warning("stage 1b (%s): %s", method, reason)
    else:
        record = select_smoothness(generators_for, stage1["codes"]["mu"], diagrams, train_cfg, work_path(selection),
                                   processes=max(1, threads))
        train_cfg = replace(train_cfg, smooth_share=record["chosen_share"])
    generators = generators_for(diagrams)
    trainer = PDGeneratorTrainer(generators, stage1["codes"]["mu"], diagrams, train_cfg,
                                 checkpoint=work_path(output), log_csv=work_path(log_csv), workers=threads)
    sizes = [g.n_points for g in generators.generators]
    log.info("stage 1b (%s): %d training shapes, n_k = %s, %s on %s", method, len(diagrams), sizes, train_cfg,
             trainer.device)
    try:
        trainer.fit()
    finally:
        trainer.close()
    warn_if_collapsed(generators, stage1["codes"]["mu"], diagrams, method)
    share = train_cfg.smooth_share if train_cfg.lambda_smooth is None else None
    atomic_write_json(selection, selection_summary(method, record, trainer.lambda_smooth, share, reason))
    finish(trainer.state() | {"ids": stage1["ids"], "method": method, "n_points": sizes, "tau": cfg.persistence.tau,
                              "essential_slot": generators.essential_slot, "smooth_selection": record}, output, log_csv)
    shutil.rmtree(work_path(selection), ignore_errors=True)


def joint_train(job: Job) -> None:
    """Stage 2 (eqs. 13-15) for one category and method (``wildcards.method``), from its stage-1 (and, when
    pretrained, stage-1b) checkpoints ``input.implicit`` and ``input.pdgen``, or from scratch (``from_scratch``: no
    such inputs), on ``input.samples``, ``input.split`` and ``input.diagrams``; resumable. With ``lambda_smooth:
    auto``, eq. 10's weight is the one stage 1b wrote to ``input.smoothness`` (``smoothness_selection.json``). Writes
    the final model to ``output.checkpoint`` (decoder, latent codes and, for learned topology, PD generators) and
    its curve to ``output.curve``."""
    cfg, method, output, log_csv = job.cfg, job.wildcards.method, job.output.checkpoint, job.output.curve
    implicit_path, pdgen_path = job.optional_input("implicit"), job.optional_input("pdgen")
    smoothness_path, diagram_paths, threads = job.optional_input("smoothness"), job.input.diagrams, job.threads
    cpu_threads(threads)
    claim_work(output, work_sources(job.settings, job.input), extra=[log_csv])
    block = cfg.methods[method]
    ids, points, sdf = load_sdf_samples(job.input.samples, split_ids(job.input.split, "train"), at_least_one=True,
                                        spill_bytes=SPILL_BYTES)
    stage1 = None
    if not block.from_scratch:
        stage1 = load_checkpoint(implicit_path)
        if ids != list(stage1["ids"]):
            raise ValueError(f"{implicit_path} was trained on other shapes than the split's training shapes")
    diagrams = list(load_shape_diagrams(diagram_paths, ids).values())
    torch.manual_seed(cfg.train.seed)
    decoder, codes = build_decoder_and_codes(asdict(cfg.model), asdict(cfg.latent), stage1, len(ids))
    train_cfg = joint_train_config(cfg, method, threads)
    generators = None
    if block.topology == "learned":
        generators = new_pd_generators(cfg, block.from_scratch, diagrams)
        if pdgen_path is not None:
            pdgen = load_checkpoint(pdgen_path)
            generators.load_state_dict(pdgen["pd_generators"])
            if train_cfg.lambda_smooth is None:  # auto: the weight stage 1b calibrated
                if smoothness_path is None:
                    raise ValueError(f"{method}: lambda_smooth is auto, so stage 2 needs stage 1b's "
                                     "smoothness_selection.json")
                train_cfg = replace(train_cfg, lambda_smooth=read_json(smoothness_path)["lambda_smooth"])
    trainer = JointTrainer(decoder, codes, generators, points, sdf, diagrams, train_cfg,
                           checkpoint=work_path(output), log_csv=work_path(log_csv))
    log.info("stage 2 (%s): %d training shapes, %s on %s", method, len(ids), train_cfg, trainer.device)
    try:
        trainer.fit()
    finally:
        trainer.close()
    extra = {}
    if generators is not None:
        warn_if_collapsed(generators, codes.mu.detach(), diagrams, method, stage="stage 2")
        extra = {"n_points": [g.n_points for g in generators.generators], "tau": cfg.persistence.tau,
                 "lambda_smooth": trainer.lambda_smooth, "essential_slot": generators.essential_slot}
    extra["latent_aggregate_std"] = check_prior_coverage(codes.aggregate_std(), f"stage 2 ({method})")
    finish(trainer.state() | {"ids": ids, "method": method, "model": asdict(cfg.model), "latent": asdict(cfg.latent),
                              **extra}, output, log_csv)
