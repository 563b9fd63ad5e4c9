"""Evaluation metrics (docs/method.md, Evaluation): CD-mean, PD-LAP over draws, and MMD / COV / 1-NNA with Chamfer.

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
from scipy.spatial import cKDTree

from toposdf.topology import MAX_DIM, Diagrams, pd_distance, pd_lap

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


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """The paired per-shape difference ``a_i - b_i`` of two methods' values on the same test shapes (e.g. their
    reconstructions' Chamfer distances): ``mean``, its ``low``/``high`` t-interval at ``confidence``, ``n`` (shapes
    finite in both) and ``resolved`` (1.0 when the interval excludes 0). ``nan`` statistics below two shapes."""
    from scipy import stats

    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shapes, got {a.shape} and {b.shape}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if len(d) < 2:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": len(d), "resolved": 0.0}
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(d),
            "resolved": float(mean - half > 0 or mean + half < 0)}


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
    """:func:`toposdf.topology.pd_lap` of every draw against the same reference shapes (the test shapes:
    docs/method.md, Evaluation).

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


def pd_lap_parts(generated: Sequence[Diagrams], reference: Sequence[Diagrams], dimension: int,
                 min_life: float = 0.02, processes: int | None = 1) -> dict[str, float]:
    """One draw's PD-LAP in one homology dimension (Table 2's column), split by what eq. 1's matching does inside
    each pair of shapes that PD-LAP's assignment pairs: ``matched`` (points paired off the diagonal), ``extra``
    (generated points sent to the diagonal: features the reference shape lacks) and ``missing`` (reference points
    sent to the diagonal: features the generated shape lacks). The three sum to the column's score.

    Counted per shape over the points of persistence above ``min_life``: ``matched_points``, ``extra_points`` and
    ``missing_points``; and ``extra_born_outside``, the share of those extra points born at a positive level (NaN
    where there is none). For H1 such a point is a ring that closes only in the offset band around the surface (a
    broken rail, two parts that nearly touch); real shapes' tunnels are born inside.
    """
    result = pd_lap(generated, reference, processes)
    cost = {"matched": 0.0, "extra": 0.0, "missing": 0.0}
    count = {"matched": 0, "extra": 0, "missing": 0}
    extra_births = []
    for i, j in enumerate(result.per_dimension_assignment[dimension]):
        a = np.asarray(generated[i][dimension], np.float64).reshape(-1, 2)
        b = np.asarray(reference[j][dimension], np.float64).reshape(-1, 2)
        matching = pd_distance(a, b, return_matching=True)[1].reshape(-1, 2)
        both = matching[(matching[:, 0] >= 0) & (matching[:, 1] >= 0)]
        extra = a[matching[(matching[:, 0] >= 0) & (matching[:, 1] < 0), 0]]
        missing = b[matching[(matching[:, 0] < 0) & (matching[:, 1] >= 0), 1]]
        cost["matched"] += float(((a[both[:, 0]] - b[both[:, 1]]) ** 2).sum())
        for part, points in (("extra", extra), ("missing", missing)):
            cost[part] += float(0.5 * ((points[:, 1] - points[:, 0]) ** 2).sum())
            count[part] += int((points[:, 1] - points[:, 0] > min_life).sum())
        count["matched"] += int((a[both[:, 0], 1] - a[both[:, 0], 0] > min_life).sum())
        extra_births.append(extra[extra[:, 1] - extra[:, 0] > min_life, 0])
    n = len(generated)
    births = np.concatenate(extra_births) if extra_births else np.zeros(0)
    return {**{part: value / n for part, value in cost.items()},
            **{f"{part}_points": value / n for part, value in count.items()},
            "extra_born_outside": float((births > 0).mean()) if len(births) else float("nan")}
