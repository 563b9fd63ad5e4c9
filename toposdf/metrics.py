"""Evaluation metrics (DESIGN.md, Evaluation): CD-mean, PD-LAP over draws, and MMD / COV / 1-NNA with Chamfer.

Conventions:

- Coordinates are the normalized ones of :mod:`toposdf.data` (shapes inside the unit sphere), and grids are
  those of :func:`toposdf.data.grid_points`: ``grid[i, j, k]`` is the value at
  ``(x_i, y_j, z_k)`` with ``x_i = -1 + 2 i / (N - 1)``, negative inside.
- The Chamfer distance is DeepSDF's: the mean *squared* nearest-neighbour distance from one point set to the
  other plus the other way round. Tables report it, and MMD-CD, multiplied by :data:`CD_SCALE` (``10^3``, as
  DeepSDF and ShapeGF do) and say so in their header.
- Failures are values, not exceptions: a grid that never crosses the level (or holds NaN) gives an empty mesh,
  an empty mesh gives no points, and a Chamfer distance involving an empty point set is ``nan``. CD-mean
  averages the finite values and reports how many were not (:func:`cd_mean`); the generation metrics treat
  ``nan`` as an infinite distance (:func:`mmd_cov_1nna_from_distances`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

from toposdf.field import evaluate_grid, extract_mesh, sample_surface
from toposdf.losses import sdf_data_loss
from toposdf.topology import MAX_DIM, Diagrams, pd_lap
from toposdf.training import frozen

CD_SCALE = 1e3  # the factor CD-mean and MMD-CD are multiplied by in the tables (DeepSDF, ShapeGF)


# --------------------------------------------------------------------------------------------------------------
# Chamfer distance
# --------------------------------------------------------------------------------------------------------------
def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, np.float64)
    if points.size == 0:
        return points.reshape(0, points.shape[-1] if points.ndim == 2 else 3)
    if points.ndim != 2:
        raise ValueError(f"{name} must be an (n, d) array of points, got shape {points.shape}")
    return points


def _chamfer_trees(a: np.ndarray, tree_a: cKDTree, b: np.ndarray, tree_b: cKDTree, workers: int) -> float:
    """DeepSDF's Chamfer distance between two non-empty point sets with their KD-trees."""
    a_to_b = tree_b.query(a, workers=workers)[0]
    b_to_a = tree_a.query(b, workers=workers)[0]
    return float(np.mean(a_to_b**2) + np.mean(b_to_a**2))


def chamfer_distance(a: np.ndarray, b: np.ndarray, workers: int = 1) -> float:
    """DeepSDF's Chamfer distance: ``mean_a min_b ||a - b||^2 + mean_b min_a ||a - b||^2``.

    Squared distances in the coordinates given (normalized shapes inside the unit sphere); tables multiply it by
    :data:`CD_SCALE`.

    Args:
        a: ``(n, d)`` points. b: ``(m, d)`` points.
        workers: threads for scipy's KD-tree queries (-1: every core).

    Returns:
        The distance (float); ``nan`` when either set is empty (an empty reconstruction has no distance to
        anything; :func:`cd_mean` counts these).
    """
    a, b = _as_points(a, "a"), _as_points(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"both point sets need the same dimension, got {a.shape[1]} and {b.shape[1]}")
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return _chamfer_trees(a, cKDTree(a), b, cKDTree(b), workers)


def pairwise_chamfer(
    sets_a: Sequence[np.ndarray], sets_b: Sequence[np.ndarray] | None = None, workers: int = 1
) -> np.ndarray:
    """The ``(len(sets_a), len(sets_b))`` matrix of :func:`chamfer_distance` between every pair of point sets.

    Each set's KD-tree is built once. With ``sets_b=None`` the sets are compared with themselves: the matrix is
    symmetric, so only ``i <= j`` is computed. Entries involving an empty set are ``nan``.
    """
    a = [_as_points(s, f"sets_a[{i}]") for i, s in enumerate(sets_a)]
    symmetric = sets_b is None
    b = a if symmetric else [_as_points(s, f"sets_b[{j}]") for j, s in enumerate(sets_b)]
    trees_a = [cKDTree(s) if len(s) else None for s in a]
    trees_b = trees_a if symmetric else [cKDTree(s) if len(s) else None for s in b]
    out = np.full((len(a), len(b)), np.nan)
    for i, (points_a, tree_a) in enumerate(zip(a, trees_a)):
        if tree_a is None:
            continue
        for j in range(i if symmetric else 0, len(b)):
            if trees_b[j] is not None:
                out[i, j] = _chamfer_trees(points_a, tree_a, b[j], trees_b[j], workers)
    if symmetric:
        upper = np.triu_indices(len(a), 1)
        out[upper[::-1]] = out[upper]
    return out


def cd_mean(values: Sequence[float]) -> tuple[float, int]:
    """CD-mean over test shapes: ``(mean of the finite values, number of non-finite ones)``.

    A reconstruction without surface has a ``nan`` Chamfer distance; the tables report the mean over the others
    next to that count, so that a method cannot hide its failures. The mean is ``nan`` when no value is finite.
    """
    values = np.asarray(values, np.float64).ravel()
    finite = np.isfinite(values)
    mean = float(values[finite].mean()) if finite.any() else float("nan")
    return mean, int(np.count_nonzero(~finite))


# --------------------------------------------------------------------------------------------------------------
# Generation metrics (ShapeGF, after PointFlow's compute_all_metrics)
# --------------------------------------------------------------------------------------------------------------
def _nan_as_inf(d: np.ndarray) -> np.ndarray:
    d = np.array(d, np.float64)
    d[np.isnan(d)] = np.inf
    return d


def one_nn_accuracy(d_rr: np.ndarray, d_rs: np.ndarray, d_ss: np.ndarray) -> float:
    """Leave-one-out accuracy of the 1-nearest-neighbour classifier on references ∪ samples (PointFlow's 1-NNA).

    Every shape is labelled by the set its nearest *other* shape belongs to, and the accuracy is the fraction
    labelled correctly. 50% means the sets are indistinguishable; 100% that they are apart; two identical sets
    give 0% (each shape's nearest neighbour is its copy in the other set). Ties, which PointFlow leaves to
    ``torch.topk``, count as the expected accuracy of a uniform pick among the tied neighbours: a shape whose
    distances are all infinite (an empty sample) scores the share of its own label among the others.

    Args:
        d_rr: ``(n_r, n_r)``, d_rs: ``(n_r, n_s)`` and d_ss: ``(n_s, n_s)`` distances; ``nan`` is infinite.
    """
    d_rr, d_rs, d_ss = _nan_as_inf(d_rr), _nan_as_inf(d_rs), _nan_as_inf(d_ss)
    n_r, n_s = d_rs.shape
    if d_rr.shape != (n_r, n_r) or d_ss.shape != (n_s, n_s):
        raise ValueError(f"expected d_rr (n_r, n_r), d_rs (n_r, n_s), d_ss (n_s, n_s), got "
                         f"{d_rr.shape}, {d_rs.shape}, {d_ss.shape}")
    if n_r + n_s < 2:
        raise ValueError("1-NNA needs at least two shapes in all")
    d = np.block([[d_rr, d_rs], [d_rs.T, d_ss]])
    np.fill_diagonal(d, np.nan)  # leave one out; nan never equals the minimum below
    label = np.r_[np.ones(n_r, bool), np.zeros(n_s, bool)]
    nearest = d == np.nanmin(d, axis=1, keepdims=True)
    same = (nearest & (label[None, :] == label[:, None])).sum(axis=1)
    return float(np.mean(same / nearest.sum(axis=1)))


def mmd_cov_1nna_from_distances(d_rs: np.ndarray, d_rr: np.ndarray, d_ss: np.ndarray) -> dict[str, float]:
    """MMD, COV and 1-NNA from the distance matrices, as PointFlow's ``compute_all_metrics`` defines them.

    - ``MMD``: mean over references of the distance to the nearest sample (fidelity).
    - ``COV``: the fraction of references that are the nearest reference of at least one sample (coverage).
    - ``1-NNA``: :func:`one_nn_accuracy` on the union.

    ``nan`` distances count as infinite: a sample with no finite distance covers nothing and is nobody's nearest
    neighbour; MMD is infinite when some reference has no finite distance to any sample. COV and 1-NNA are
    fractions in ``[0, 1]`` (tables show percentages).

    Args:
        d_rs: ``(n_r, n_s)`` reference-to-sample distances. d_rr: ``(n_r, n_r)``. d_ss: ``(n_s, n_s)``.
    """
    d = _nan_as_inf(d_rs)
    n_r, n_s = d.shape
    if n_r == 0 or n_s == 0:
        raise ValueError(f"expected at least one reference and one sample, got {n_r} and {n_s}")
    reaches = np.isfinite(d).any(axis=0)  # samples with at least one finite distance
    covered = np.unique(np.argmin(d[:, reaches], axis=0)) if reaches.any() else np.zeros(0, np.int64)
    return {
        "MMD": float(d.min(axis=1).mean()),
        "COV": len(covered) / n_r,
        "1-NNA": one_nn_accuracy(d_rr, d_rs, d_ss),
    }


def mmd_cov_1nna(
    sample_sets: Sequence[np.ndarray], reference_sets: Sequence[np.ndarray], workers: int = 1
) -> dict[str, float]:
    """MMD-CD, COV-CD and 1-NNA-CD between generated and reference point clouds (ShapeGF's generation metrics).

    Args:
        sample_sets: the generated shapes' ``(n_i, 3)`` point clouds; empty ones (no surface) are allowed.
        reference_sets: the test shapes' ``(m_j, 3)`` point clouds, none empty.
        workers: threads for the KD-tree queries.

    Returns:
        ``{"MMD-CD", "COV-CD", "1-NNA-CD", "empty_samples"}``: see :func:`mmd_cov_1nna_from_distances` (MMD-CD is a
        Chamfer distance, tables multiply it by :data:`CD_SCALE`) and the number of empty generated clouds.
    """
    empty = [j for j, s in enumerate(reference_sets) if len(s) == 0]
    if empty:
        raise ValueError(f"reference point clouds must not be empty; {len(empty)} are, e.g. index {empty[0]}")
    d_rs = pairwise_chamfer(reference_sets, sample_sets, workers)
    metrics = mmd_cov_1nna_from_distances(
        d_rs, pairwise_chamfer(reference_sets, workers=workers), pairwise_chamfer(sample_sets, workers=workers)
    )
    result = {f"{key}-CD": value for key, value in metrics.items()}
    result["empty_samples"] = sum(len(s) == 0 for s in sample_sets)
    return result


# --------------------------------------------------------------------------------------------------------------
# PD-LAP over independent draws
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PDLapSummary:
    """PD-LAP (paper eq. 2) of generated shapes against reference shapes, for several independent draws of z.

    Attributes:
        values: ``(k,)`` the PD-LAP of each draw (one assignment on ``W = sum_d W_d``).
        per_dimension: ``(k, 3)`` each draw's score with one assignment per homology dimension (Table 2).
    """

    values: np.ndarray
    per_dimension: np.ndarray

    def stats(self) -> dict[str, tuple[float, float]]:
        """``{"total": (mean, std), "H0": ..., "H1": ..., "H2": ...}`` over the draws (population std, ddof=0)."""
        out = {"total": (float(self.values.mean()), float(self.values.std()))}
        for k in range(self.per_dimension.shape[1]):
            column = self.per_dimension[:, k]
            out[f"H{k}"] = (float(column.mean()), float(column.std()))
        return out


def pd_lap_summary(
    draw_diagrams: Sequence[Sequence[Diagrams]],
    reference_diagrams: Sequence[Diagrams],
    processes: int | None = None,
) -> PDLapSummary:
    """:func:`toposdf.topology.pd_lap` of every draw against the same reference shapes (DESIGN: the test shapes).

    Args:
        draw_diagrams: ``k`` draws, each the ``[PD0, PD1, PD2]`` of ``n`` shapes generated from its own
            ``z ~ N(0, I)`` (the paper: 10 draws).
        reference_diagrams: the ``[PD0, PD1, PD2]`` of the ``n`` reference shapes.
        processes: passed to :func:`pd_lap`.
    """
    if len(draw_diagrams) == 0:
        raise ValueError("pd_lap_summary needs at least one draw")
    results = [pd_lap(draw, reference_diagrams, processes) for draw in draw_diagrams]
    return PDLapSummary(
        values=np.array([r.value for r in results]),
        per_dimension=np.array([r.per_dimension for r in results]).reshape(len(results), MAX_DIM + 1),
    )


# --------------------------------------------------------------------------------------------------------------
# DeepSDF's test-time reconstruction and CD
# --------------------------------------------------------------------------------------------------------------
def latent_fit_loss(decoder, z: torch.Tensor, points: torch.Tensor, sdf: torch.Tensor, clamp: float = 0.1,
                    reg: float = 1e-4) -> torch.Tensor:
    """DeepSDF's reconstruction objective: clamped L1 of ``f(points, z)`` against ``sdf`` plus ``reg * mean(z^2)``.

    ``z`` is ``(L,)``, ``points`` ``(P, 3)``, ``sdf`` ``(P,)``; the regularizer is a mean over the code's entries,
    as in DeepSDF's ``reconstruct.py`` (``1e-4 * torch.mean(latent.pow(2))``), not the squared norm.
    """
    return sdf_data_loss(decoder(z[None], points[None])[0], sdf, clamp) + reg * z.pow(2).mean()


def deepsdf_learning_rate(lr: float, step: int, iterations: int) -> float:
    """DeepSDF's reconstruction schedule: ``lr`` divided by 10 every ``iterations // 2`` steps (so once)."""
    return lr * 0.1 ** (step // max(1, iterations // 2))


@torch.no_grad()
def _full_loss(decoder, z, points, sdf, clamp, reg, chunk: int = 65536) -> float:
    """:func:`latent_fit_loss` over every sample, in chunks (the clamped L1 is a mean, so chunks are weighted)."""
    total = 0.0
    for start in range(0, len(points), chunk):
        block = slice(start, start + chunk)
        pred = decoder(z[None], points[block][None])[0]
        total += float(sdf_data_loss(pred, sdf[block], clamp)) * len(pred)
    return total / len(points) + reg * float(z.pow(2).mean())


def reconstruct_latent(
    decoder: torch.nn.Module,
    points: np.ndarray,
    sdf: np.ndarray,
    latent_size: int,
    iterations: int = 800,
    lr: float = 5e-3,
    clamp: float = 0.1,
    reg: float = 1e-4,
    init_std: float = 0.01,
    samples_per_iteration: int = 8000,
    seed: int = 0,
) -> tuple[torch.Tensor, float]:
    """DeepSDF's test-time reconstruction: the latent code of an unseen shape, fitted with the network frozen.

    DeepSDF (``reconstruct.py``, as run there): ``z ~ N(0, init_std^2)`` with ``init_std = 0.01``; Adam at
    ``lr = 5e-3`` for 800 iterations, divided by 10 after half of them (:func:`deepsdf_learning_rate`); each
    iteration draws 8000 of the shape's SDF samples and minimizes :func:`latent_fit_loss` (clamped L1,
    ``delta = 0.1``, plus ``1e-4 * mean(z^2)``). Here the samples are drawn uniformly with replacement (DeepSDF
    draws half with positive and half with negative SDF), and a shape with at most ``samples_per_iteration``
    samples uses all of them each time. The decoder's parameters get no gradients and are left unchanged; the
    code lives on the decoder's device.

    Args:
        decoder: ``f(z (B, L), x (B, P, 3)) -> (B, P)``, e.g. :class:`toposdf.models.SDFDecoder`.
        points: ``(P, 3)`` SDF sample positions of the test shape. sdf: ``(P,)`` their signed distances.
        latent_size: ``L``.
        seed: seeds the initial code and the sample draws.

    Returns:
        ``(z, loss)``: the ``(L,)`` detached code, and :func:`latent_fit_loss` at ``z`` over all ``P`` samples.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    points = np.asarray(points, np.float32)
    sdf = np.asarray(sdf, np.float32)
    if points.ndim != 2 or points.shape[1] != 3 or sdf.shape != (len(points),) or len(points) == 0:
        raise ValueError(f"expected points (P, 3) and sdf (P,) with P > 0, got {points.shape} and {sdf.shape}")
    device = next(decoder.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    z = (torch.randn(latent_size, generator=generator) * init_std).to(device).requires_grad_(True)
    x, target = torch.from_numpy(points).to(device), torch.from_numpy(sdf).to(device)
    optimizer = torch.optim.Adam([z], lr=lr)
    with frozen(decoder):
        for step in range(iterations):
            for group in optimizer.param_groups:
                group["lr"] = deepsdf_learning_rate(lr, step, iterations)
            pick = (torch.randint(len(x), (samples_per_iteration,), generator=generator).to(device)
                    if len(x) > samples_per_iteration else slice(None))  # a small shape: every sample, every time
            loss = latent_fit_loss(decoder, z, x[pick], target[pick], clamp, reg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    z = z.detach()
    return z, _full_loss(decoder, z, x, target, clamp, reg)


def reconstruction_chamfer(
    decoder: torch.nn.Module, z: torch.Tensor, reference_points: np.ndarray, resolution: int,
    n_points: int = 30_000, seed: int = 0, workers: int = 1,
) -> float:
    """The Chamfer distance of DeepSDF's CD-mean for one test shape: the mesh of ``f(., z)`` (marching cubes on
    the ``resolution^3`` grid, :func:`toposdf.field.evaluate_grid`) sampled at ``n_points`` points, against
    ``reference_points`` ``(m, 3)`` sampled on the ground-truth mesh. ``nan`` when the reconstruction has no
    surface."""
    grid = evaluate_grid(decoder, z.reshape(1, -1), resolution)[0]
    vertices, faces = extract_mesh(grid)
    return chamfer_distance(sample_surface(vertices, faces, n_points, seed), reference_points, workers)
