"""The two calibration rows of Tables 1 and 2 (``rule calibrate``; :data:`toposdf.layout.CALIBRATION_ROWS`,
docs/method.md, Evaluation): the held-out training shapes (the floor, what a generator that reproduces the training
distribution scores) and one fixed blob (the ceiling). A method's PD-LAP means something only between them.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from .data import grid_points, load_shape_diagrams, split_ids
from .evaluation import (betti_summary, generation_metrics, metric_names, over_draws, pd_lap_metrics, scalar_metrics,
                         shape_clouds)
from .field import extract_mesh
from .generation import draw_seeds
from .io import atomic_write_json, json_safe
from .jobs import Job
from .metrics import mmd_cov_1nna_from_distances, pairwise_chamfer, pd_lap_summary
from .provenance import provenance
from .topology import Diagrams, cubical_diagrams

log = logging.getLogger(__name__)


def blob_grid(resolution: int, radius: float = 0.5) -> np.ndarray:
    """The signed distance ``(N, N, N)`` of one fixed blob, a ball of ``radius``, on the ground truth's grid."""
    return np.linalg.norm(grid_points(resolution), axis=1).reshape((resolution,) * 3) - radius


def blob_diagrams(resolution: int, tau: float, min_persistence: float, radius: float = 0.5) -> Diagrams:
    """The diagrams of one fixed blob, a ball of ``radius``, on the ground truth's grid: the essential class
    ``(-tau, tau)`` and nothing else (every blob large enough to reach ``-tau`` inside has this diagram)."""
    return cubical_diagrams(blob_grid(resolution, radius), tau, min_persistence)


def calibration_picks(n_train: int, n: int, seed: int, draws: int) -> list[np.ndarray]:
    """The training shapes of each calibration draw: ``draws`` seeded random ``(n,)`` index arrays into
    ``range(n_train)`` (drawn with replacement only when ``n_train < n``)."""
    return [np.random.default_rng(s).choice(n_train, size=n, replace=n_train < n) for s in draw_seeds(seed, draws)]


def calibration_draws(train: Sequence[Diagrams], n: int, seed: int, draws: int) -> list[list[Diagrams]]:
    """``draws`` sets of ``n`` held-out training shapes' diagrams, each a seeded random subset (drawn with
    replacement only when there are fewer than ``n`` training shapes; :func:`calibration_picks`)."""
    return [[train[i] for i in pick] for pick in calibration_picks(len(train), n, seed, draws)]


def subset_generation_metrics(clouds: Sequence[np.ndarray], references: Sequence[np.ndarray],
                              picks: Sequence[np.ndarray], workers: int = 1) -> list[dict[str, float]]:
    """:func:`toposdf.metrics.mmd_cov_1nna` of each subset ``[clouds[i] for i in pick]`` against ``references``,
    from one matrix of Chamfer distances among ``clouds``: a pair is computed once however many subsets share it,
    and every subset's numbers are those of ``mmd_cov_1nna`` on its clouds, bit for bit.

    Args:
        clouds: ``(m_i, 3)`` point clouds (an empty one is infinitely far, as in ``mmd_cov_1nna``).
        references: the test shapes' clouds, none empty.
        picks: index arrays into ``clouds`` (repeats allowed: a repeated shape is its own copy, at distance 0).
    """
    d_rr = pairwise_chamfer(references, workers=workers)
    d_rc = pairwise_chamfer(references, clouds, workers)
    d_cc = pairwise_chamfer(clouds, workers=workers)
    return [{f"{key}-CD": value for key, value in
             mmd_cov_1nna_from_distances(d_rc[:, pick], d_rr, d_cc[np.ix_(pick, pick)]).items()} for pick in picks]


def run_calibrate(job: Job) -> dict:
    """The two calibration rows of one category, on the test shapes and the settings of every method's PD-LAP and
    generation metrics (MMD/COV/1-NNA-CD, :func:`generation_metrics`):

    - ``heldout_training``: ``evaluation.draws`` random sets of training shapes (held out of the test set) against
      the test shapes: the floor, what a generator that reproduces the training distribution scores. Its
      generation metrics are the mean and std over the same draws, on the training shapes' ground-truth meshes
      (:func:`shape_clouds`: one cloud per training shape, seeded like the test shapes' clouds);
    - ``blob``: a generator whose every sample is one fixed blob (:func:`blob_diagrams`): the ceiling. Its
      generation metrics are those of ``n`` copies of the blob's marching-cubes mesh, sampled like a method's
      first draw.

    The clouds use their own seeds (``evaluation.seed + k``, as :func:`run_evaluate`'s): the PD-LAP draws are
    those of :func:`calibration_draws`, whatever the clouds. Inputs: ``split``, ``diagrams``, ``manifests``; output:
    ``calibration``.
    """
    cfg, raw_config, threads, category = job.cfg, job.settings, job.threads, job.wildcards.category
    split_path, diagram_paths, manifest_paths = job.input.split, job.input.diagrams, job.input.manifests
    ev = cfg.evaluation
    test_ids, train_ids = split_ids(split_path, "test"), split_ids(split_path, "train")
    reference = list(load_shape_diagrams(diagram_paths, test_ids, skip_missing=True).values())
    train = list(load_shape_diagrams(diagram_paths, train_ids).values())
    n = len(reference)  # the methods' draws are scored on their first n shapes (scored_draws)
    picks = calibration_picks(len(train), n, ev.seed, ev.draws)
    floor = calibration_draws(train, n, ev.seed, ev.draws)  # the training shapes of picks
    tau = cfg.persistence.tau
    blob = [[blob_diagrams(cfg.grid.resolution, tau, cfg.persistence.min_persistence)] * n]
    processes = max(1, threads)
    references = list(shape_clouds(manifest_paths, test_ids, ev.cloud_points, ev.seed).values())
    train_clouds = shape_clouds(manifest_paths, train_ids, ev.cloud_points, ev.seed)
    missing = [i for i in train_ids if i not in train_clouds]
    if missing:
        raise ValueError(f"no normalized mesh for {len(missing)} training shapes with diagrams, e.g. {missing[:3]}")
    floor_generation = subset_generation_metrics(list(train_clouds.values()), references, picks, processes)
    blob_generation = generation_metrics([extract_mesh(blob_grid(cfg.grid.resolution))] * n, references,
                                         ev.cloud_points, ev.seed, processes)
    rows = {
        "heldout_training": pd_lap_metrics(pd_lap_summary(floor, reference, processes))
        | over_draws([metric_names(g) for g in floor_generation])
        | scalar_metrics(betti_summary([d for draw in floor for d in draw], tau)),
        "blob": pd_lap_metrics(pd_lap_summary(blob, reference, processes))
        | scalar_metrics(metric_names(blob_generation))  # one draw: no std
        | scalar_metrics(betti_summary(blob[0], tau)),
    }
    result = {"category": category, "test_shapes": len(reference), "test_betti": betti_summary(reference, tau),
              "rows": [{"category": category, "method": name, "metrics": metrics} for name, metrics in rows.items()],
              "provenance": provenance(raw_config, seed=ev.seed)}
    atomic_write_json(job.output.calibration, json_safe(result))
    for name, row in rows.items():
        log.info("%s calibration, %s: PD-LAP %.5f, MMD-CD %.5f, COV-CD %.3f, 1-NNA-CD %.3f", category, name,
                 *(row[key]["mean"] for key in ("pd_lap", "mmd_cd", "cov_cd", "1_nna_cd")))
    return result
