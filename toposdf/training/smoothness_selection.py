"""Stage 1b's choice of eq. 10's weight ``lambda_s`` for ``lambda_smooth: auto``.

What eq. 10 is for: the PD generators' outputs at codes ``z ~ N(0, I)`` should be diagrams like those of shapes
the generators did not see (docs/method.md, Smoothness). So the weight is chosen by that, inside the run:

1. the training shapes are split (seeded by ``train.seed``) into a fit part and a held-out part
   (``select_holdout``);
2. for each candidate share ``s`` of ``smooth_candidates``, a PD generator (the final one's architecture, its
   initialization seed, started at the fit part's centroid) is trained on the fit part exactly as stage 1b trains,
   with ``s`` in place of ``smooth_share``: the first epoch unweighted, then ``lambda_s = s * unit``, where the
   unit is ``lambda_PD`` times the PD fit over the smoothness, both over that first epoch (the same epoch for every
   candidate, so the same unit);
3. its diagrams at ``select_draws`` seeded draws of as many codes ``z ~ N(0, I)`` as held-out shapes, processed
   as Fig. 3 processes PD-generator output (slots within 1e-6 of the diagonal dropped), are scored by PD-LAP
   (eq. 2) against the held-out shapes' ground-truth diagrams; every candidate sees the same codes;
4. the share with the lowest mean PD-LAP wins. A tie (means equal to a relative 1e-9, e.g. two weights that both
   flatten the generator to the same output) goes to the smaller share: a larger weight must earn its place by a
   lower held-out score, since what it costs (a generator that ignores the code) is what this choice guards
   against.

Stage 1b then trains the final generator on every training shape with the chosen share
(:func:`toposdf.training.entry.pretrain_pdgen`). The record of the choice is kept in a working folder after every
candidate, so a killed job resumes inside the sweep (each candidate has its own checkpoint) and never redoes a
finished candidate.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from toposdf.generation import diagrams_of_generators, draw_seeds, sample_latents
from toposdf.io import atomic_write_json, read_json
from toposdf.metrics import pd_lap_summary
from toposdf.models import PDGenerators
from toposdf.topology import Diagrams, off_diagonal
from toposdf.training.base import TrainingDiverged
from toposdf.training.configs import PDGeneratorTrainConfig
from toposdf.training.pdgen import PDGeneratorTrainer, as_diagrams
from toposdf.training.smoothness import calibrated_smoothness_weight

log = logging.getLogger(__name__)

TIE_RTOL = 1e-9
TIE_RULE = ("the lowest mean held-out PD-LAP; means equal to a relative 1e-9 go to the smaller share (a larger "
            "weight must score lower to be chosen)")
PROCESSING = ("PD-generator output at z ~ N(0, I) as Fig. 3 takes it (run_pd_matrices): float64, slots within 1e-6 "
              "of the diagonal dropped (off_diagonal), points kept in [-tau, tau] by the generators; against the "
              "held-out shapes' ground-truth diagrams as stored (pairs below persistence.min_persistence dropped)")


def holdout_split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """``(fit, held_out)``: sorted indices of ``n`` shapes, ``round(fraction * n)`` of them held out (at least 1, at
    most ``n - 1``), chosen by a permutation seeded by ``seed``."""
    if n < 2:
        raise ValueError(f"holding out shapes needs at least 2 training shapes, got {n}")
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out share must lie in (0, 1), got {fraction}")
    held = min(n - 1, max(1, round(fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[held:].tolist()), sorted(order[:held].tolist())


@torch.no_grad()
def prior_diagrams(generators: PDGenerators, latent_size: int, n: int, seeds: Sequence[int]) -> list[list[Diagrams]]:
    """One draw per seed: the generators' ``[PD0, PD1, PD2]`` at ``n`` codes ``z ~ N(0, I)`` of size
    ``latent_size`` (:func:`toposdf.generation.sample_latents`), each an ``(m, 2)`` float64 array without the
    slots parked on the diagonal, as Fig. 3 takes the generators' output."""
    device = next(generators.parameters()).device
    return [[off_diagonal(d) for d in diagrams_of_generators(generators, sample_latents(n, latent_size, seed, device))]
            for seed in seeds]


def choose_candidate(candidates: Sequence[dict]) -> int:
    """The index of the chosen candidate (each a dict with ``share`` and ``pd_lap_mean``, None where it diverged):
    the lowest mean, ties (:data:`TIE_RTOL`) to the smaller share."""
    scored = [(i, c["pd_lap_mean"]) for i, c in enumerate(candidates) if c["pd_lap_mean"] is not None]
    if not scored:
        raise ValueError("no candidate smoothness weight trained without diverging")
    best = min(mean for _, mean in scored)
    tied = [i for i, mean in scored if mean <= best + TIE_RTOL * abs(best)]
    return min(tied, key=lambda i: candidates[i]["share"])


def _first_and_last_rows(path: Path) -> tuple[dict, dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows[0], rows[-1]


def _train_candidate(make_generators: Callable[[list], PDGenerators], latent_means: np.ndarray, diagrams: list,
                     fit: list[int], held: list[int], share: float, cfg: PDGeneratorTrainConfig, seeds: list[int],
                     work_dir: Path, index: int, device, processes: int) -> dict:
    """Train one candidate on the fit part and score it on the held-out part; its checkpoint and CSV sit in
    ``work_dir`` until it is scored (a killed job resumes it)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fit_diagrams = [diagrams[i] for i in fit]
    checkpoint, curve = work_dir / f"candidate{index}.pt", work_dir / f"candidate{index}.csv"
    trainer = PDGeneratorTrainer(make_generators(fit_diagrams), latent_means[fit], fit_diagrams,
                                 replace(cfg, lambda_smooth=None, smooth_share=share), checkpoint, curve, device)
    entry = {"share": share}
    try:
        trainer.fit(progress=False)
    except TrainingDiverged as err:
        log.warning("smoothness share %g diverged on the fit part: %s", share, err)
        return entry | {"lambda_smooth": trainer.lambda_smooth, "pd_lap_mean": None, "pd_lap_std": None,
                        "diverged": str(err), "seconds": time.perf_counter() - start,
                        "cpu_seconds": time.process_time() - start_cpu}
    first, last = _first_and_last_rows(curve)
    unit = calibrated_smoothness_weight(float(first["pd_weighted"]), float(first["smoothness"]), 1.0)
    summary = pd_lap_summary(prior_diagrams(trainer.generators, latent_means.shape[1], len(held), seeds),
                             [diagrams[i] for i in held], processes)
    stats = summary.stats()
    entry |= {
        "lambda_smooth": trainer.lambda_smooth, "unit": unit,
        "pd_lap_mean": stats["total"][0], "pd_lap_std": stats["total"][1],
        "pd_lap_draws": summary.values.tolist(),
        "per_dimension": {key: {"mean": m, "std": s} for key, (m, s) in stats.items() if key != "total"},
        "pd_fit": float(last["pd"]), "smoothness": float(last["smoothness"]),
        "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - start_cpu,
    }
    checkpoint.unlink(missing_ok=True)
    curve.unlink(missing_ok=True)
    return entry


def _resumed_record(work_dir: Path, record_path: Path, settings: dict) -> dict:
    """The sweep's record as a killed job left it, or a new one (in an emptied ``work_dir``) where there is none or
    it was made with other settings."""
    record = read_json(record_path) if record_path.exists() else None
    if record is not None and record.get("settings") != settings:
        log.info("%s: a sweep of other settings; starting over", record_path)
        record = None
    if record is None:
        shutil.rmtree(work_dir, ignore_errors=True)
        record = {"settings": settings, "candidates": []}
    work_dir.mkdir(parents=True, exist_ok=True)
    return record


def select_smoothness(make_generators: Callable[[list], PDGenerators], latent_means, diagrams,
                      cfg: PDGeneratorTrainConfig, work_dir: str | Path, device: torch.device | str | None = None,
                      processes: int = 1) -> dict:
    """Choose the share of eq. 10's calibration unit for stage 1b (see the module's docstring); resumable.

    Args:
        make_generators: the PD generators of the method, started at the centroid of the diagrams it is given
            (the same architecture and initialization seed every call).
        latent_means: ``(n, L)`` the training shapes' stage-1 latent means.
        diagrams: the ``n`` training shapes' ``[PD0, PD1, PD2]``, each ``(m, 2)``.
        cfg: stage 1b's settings (``smooth_candidates``, ``select_holdout``, ``select_draws``, ``select_epochs``,
            ``seed``; the rest as for the final generator).
        work_dir: the sweep's working folder: its record (``selection.json``, rewritten after each candidate) and
            the running candidate's checkpoint. A record of other settings is discarded.
        device: where the candidates train. processes: PD-LAP's (:func:`toposdf.topology.pd_lap`).

    Returns:
        the record: ``chosen_share``, ``chosen_index``, ``unit`` (the chosen candidate's: the same for all),
        ``candidates`` (each: ``share``, ``lambda_smooth``, ``unit``, ``pd_lap_mean``/``pd_lap_std`` over the
        draws, ``pd_lap_draws``, ``per_dimension``, the last epoch's ``pd_fit`` and ``smoothness`` on the fit part,
        ``seconds`` and ``cpu_seconds`` of its last attempt), and ``settings`` (held-out indices and count, draws'
        seeds, epochs, seed, stage 1b's settings).
    """
    diagrams = as_diagrams(diagrams)
    latent_means = np.asarray(latent_means, np.float32)
    if len(latent_means) != len(diagrams):
        raise ValueError(f"{len(latent_means)} latent codes for {len(diagrams)} diagrams")
    if not cfg.smooth_candidates:
        raise ValueError("smooth_candidates is empty")
    fit, held = holdout_split(len(diagrams), cfg.select_holdout, cfg.seed)
    seeds = draw_seeds(cfg.seed, cfg.select_draws)
    epochs = cfg.select_epochs or cfg.epochs
    cfg = replace(cfg, epochs=epochs)
    settings = {"shares": [float(s) for s in cfg.smooth_candidates], "shapes": len(diagrams), "held_out": held,
                "held_out_count": len(held), "fit_count": len(fit), "holdout": cfg.select_holdout, "seed": cfg.seed,
                "draw_seeds": seeds, "codes_per_draw": len(held), "epochs": epochs,
                "stage_1b": asdict(replace(cfg, lambda_smooth=None, smooth_share=0.0))}
    settings = json.loads(json.dumps(settings))  # as the record reads back (lists, not tuples)
    work_dir = Path(work_dir)
    record_path = work_dir / "selection.json"
    record = _resumed_record(work_dir, record_path, settings)
    for index, share in enumerate(settings["shares"]):
        if index < len(record["candidates"]):
            continue  # scored before the job was killed
        entry = _train_candidate(make_generators, latent_means, diagrams, fit, held, share, cfg, seeds, work_dir,
                                 index, device, processes)
        log.info("smoothness share %g: lambda_s %s, held-out PD-LAP %s +- %s (%.1f s, %.1f s CPU)", share,
                 entry["lambda_smooth"], entry["pd_lap_mean"], entry["pd_lap_std"], entry["seconds"],
                 entry["cpu_seconds"])
        record["candidates"].append(entry)
        atomic_write_json(record_path, record)
    chosen = choose_candidate(record["candidates"])
    record |= {"chosen_index": chosen, "chosen_share": record["candidates"][chosen]["share"],
               "unit": record["candidates"][chosen]["unit"]}
    atomic_write_json(record_path, record)
    log.info("smoothness share chosen: %g (of %s, %d held-out shapes)", record["chosen_share"], settings["shares"],
             len(held))
    return record


def selection_summary(method: str, record: dict | None, lambda_smooth: float | None, share: float | None,
                      reason: str = "") -> dict:
    """What ``smoothness_selection.json`` holds: the chosen share and the final ``lambda_smooth`` (stage 1b's on
    every training shape, which stage 2 takes from ``pdgen.pt``), with the unit it was measured in on every shape,
    and the sweep's curve (``record`` from :func:`select_smoothness`; None where no choice was made, ``reason``
    says why)."""
    final_unit = lambda_smooth / share if record is not None and share and lambda_smooth is not None else None
    out = {"method": method, "selected": record is not None, "lambda_smooth": lambda_smooth, "share": share,
           "unit_final": final_unit}
    if record is None:
        return out | {"reason": reason}
    settings = record["settings"]
    return out | {
        "rule": TIE_RULE, "processing": PROCESSING,
        "unit_selection": record["unit"],
        "held_out_shapes": settings["held_out_count"], "fit_shapes": settings["fit_count"],
        "holdout": settings["holdout"], "seed": settings["seed"], "draw_seeds": settings["draw_seeds"],
        "codes_per_draw": settings["codes_per_draw"], "epochs": settings["epochs"],
        "candidates": record["candidates"], "chosen_index": record["chosen_index"],
    }
