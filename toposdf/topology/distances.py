"""Distances between persistence diagrams: eq. 1 between two diagrams (an exact linear assignment, with gudhi's
hera as the independent check) and eq. 2, PD-LAP, between two collections of shapes. The conventions are
:mod:`toposdf.topology`'s."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import lap
import numpy as np

from toposdf.topology.persistence import MAX_DIM, Diagrams


# --------------------------------------------------------------------------------------------------------------
# Distances between diagrams (paper eqs. 1 and 2)
# --------------------------------------------------------------------------------------------------------------
def _as_diagram(d: np.ndarray, name: str) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return d.reshape(0, 2)
    if d.ndim != 2 or d.shape[1] != 2:
        raise ValueError(f"{name} must be an (n, 2) array of (birth, death) pairs, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{name} has non-finite values; give the essential class a finite death (tau)")
    return d


def _diagonal_cost(d: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of each point to the diagonal: (death - birth)^2 / 2."""
    return 0.5 * (d[:, 1] - d[:, 0]) ** 2


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n1, n2)`` squared Euclidean distances between the points of two diagrams."""
    d0 = a[:, 0, None] - b[None, :, 0]
    d1 = a[:, 1, None] - b[None, :, 1]
    return d0 * d0 + d1 * d1


def _augmented_cost(dist: np.ndarray, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """The ``(n1 + n2) x (n1 + n2)`` matrix of eq. 1 from the ``(n1, n2)`` squared distances and both diagrams'
    diagonal costs. Rows: the points of a, then one diagonal slot per point of b. Columns: the points of b, then
    one diagonal slot per point of a. The diagonal blocks are row- (resp. column-) constant, so any slot does,
    and diagonal-to-diagonal costs nothing."""
    n1, n2 = dist.shape
    cost = np.zeros((n1 + n2, n1 + n2))
    cost[:n1, :n2] = dist
    cost[:n1, n2:] = ca[:, None]
    cost[n1:, :n2] = cb
    return cost


_FLAT_DIAGONAL: dict[int, np.ndarray] = {}


def _solve(cost: np.ndarray) -> float:
    """Optimal value of the square assignment problem ``cost`` (Jonker-Volgenant, ``lap``).

    The sum is taken here: lap's ``return_cost=True`` adds ~9 us per call, a third of the time at 10-20 points.
    """
    n = len(cost)
    row_to_col = lap.lapjv(cost, extend_cost=False, return_cost=False)[0]
    if n not in _FLAT_DIAGONAL:
        _FLAT_DIAGONAL[n] = np.arange(n) * n
    return float(cost.ravel().take(_FLAT_DIAGONAL[n] + row_to_col).sum())


def _pd_cost(a: np.ndarray, b: np.ndarray, ca: np.ndarray, cb: np.ndarray) -> float:
    """Eq. 1 for validated diagrams with their diagonal costs precomputed."""
    if len(a) == 0 or len(b) == 0:
        return float(ca.sum() + cb.sum())
    return _solve(_augmented_cost(_squared_distances(a, b), ca, cb))


def augmented_cost_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The ``(n1 + n2) x (n1 + n2)`` cost matrix whose optimal assignment is eq. 1 between the ``(n1, 2)`` diagram
    ``a`` and the ``(n2, 2)`` diagram ``b`` (what :func:`pd_distance` solves; the benchmarks time the solver on
    it)."""
    a, b = _as_diagram(a, "a"), _as_diagram(b, "b")
    return _augmented_cost(_squared_distances(a, b), _diagonal_cost(a), _diagonal_cost(b))


def pd_distance(a: np.ndarray, b: np.ndarray, return_matching: bool = False):
    """Paper eq. 1: the squared 2-Wasserstein distance between two diagrams, with Euclidean ground metric.

    The minimum over partial matchings of ``sum ||p - q||^2`` over matched pairs plus ``(death - birth)^2 / 2``
    for every point sent to the diagonal, solved exactly as a linear assignment (Jonker-Volgenant, ``lap``)
    on the ``(n1 + n2) x (n1 + n2)`` augmented cost matrix.

    Args:
        a: ``(n1, 2)`` diagram. b: ``(n2, 2)`` diagram.
        return_matching: also return the matching.

    Returns:
        The distance (float), or ``(distance, matching)`` where ``matching`` is an ``(m, 2)`` int64 array of
        index pairs ``[i, j]``: ``a[i]`` is matched to ``b[j]``; ``j == -1`` sends ``a[i]`` to the diagonal and
        ``i == -1`` sends ``b[j]`` to the diagonal. Every point of a and b appears exactly once.
    """
    a, b = _as_diagram(a, "a"), _as_diagram(b, "b")
    ca, cb = _diagonal_cost(a), _diagonal_cost(b)
    if not return_matching:
        return _pd_cost(a, b, ca, cb)
    n1, n2 = len(a), len(b)
    if n1 and n2:
        cost_matrix = _augmented_cost(_squared_distances(a, b), ca, cb)
        row_to_col = lap.lapjv(cost_matrix, extend_cost=False, return_cost=False)[0][:n1].astype(np.int64)
    else:
        row_to_col = np.full(n1, n2, dtype=np.int64)
    to_b = row_to_col < n2
    matched_i, matched_j = np.flatnonzero(to_b), row_to_col[to_b]
    to_diagonal_a = np.flatnonzero(~to_b)
    to_diagonal_b = np.setdiff1d(np.arange(n2), matched_j, assume_unique=True)
    d = a[matched_i] - b[matched_j]
    cost = float((d * d).sum() + ca[to_diagonal_a].sum() + cb[to_diagonal_b].sum())
    minus = lambda n: np.full(n, -1, dtype=np.int64)  # noqa: E731
    matching = np.concatenate(
        [
            np.stack([matched_i, matched_j], 1),
            np.stack([to_diagonal_a, minus(len(to_diagonal_a))], 1),
            np.stack([minus(len(to_diagonal_b)), to_diagonal_b], 1),
        ]
    ).astype(np.int64)
    return cost, matching


def hera_distance(a: np.ndarray, b: np.ndarray) -> float:
    """gudhi's hera ``wasserstein_distance(order=2, internal_p=2, delta=1e-6) ** 2``: independent check of eq. 1."""
    from gudhi.hera import wasserstein_distance

    a, b = _as_diagram(a, "a"), _as_diagram(b, "b")
    return float(wasserstein_distance(a, b, order=2, internal_p=2, delta=1e-6) ** 2)


@dataclass(frozen=True)
class PDLapResult:
    """Paper eq. 2 between two equal-sized collections of shapes.

    Attributes:
        value: ``min_Y <W, Y> / n`` with ``W = sum_k W_k`` (the PD-LAP score).
        per_dimension: ``(3,)`` the same score computed with one assignment per homology dimension on ``W_k``
            (Table 2's breakdown; they need not sum to ``value``).
        assignment: ``(n,)`` int64, shape ``i`` of A is matched to shape ``assignment[i]`` of B under ``W``.
        W: ``(n, n)`` pairwise ``d_PD``; ``W_per_dimension``: ``(3, n, n)``.
        per_dimension_assignment: ``(3, n)`` int64, the assignment behind each ``per_dimension`` score.
    """

    value: float
    per_dimension: np.ndarray
    assignment: np.ndarray
    W: np.ndarray
    W_per_dimension: np.ndarray
    per_dimension_assignment: np.ndarray


_POOL: dict = {}


def _pool_init(a: list[Diagrams], b: list[Diagrams]) -> None:
    """Worker state: the row shapes with their diagonal costs, and, per dimension, every point of the column
    shapes concatenated (with offsets), so that one row diagram meets all columns in one numpy operation."""
    _POOL["a"] = [[(d, _diagonal_cost(d)) for d in shape] for shape in a]
    _POOL["n_b"] = len(b)
    _POOL["b"] = []
    for k in range(MAX_DIM + 1):
        points = [shape[k] for shape in b]
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in points])]).astype(np.int64)
        stacked = np.concatenate(points) if points else np.zeros((0, 2))
        _POOL["b"].append((stacked, _diagonal_cost(stacked), offsets))


def _pool_rows(rows: range) -> tuple[range, np.ndarray]:
    """``W_k[i, j]`` for the rows ``i`` given and every column ``j``: the hot loop of :func:`pd_lap`.

    The distances of a row diagram to every column point are computed in one block and sliced per pair: for
    diagrams of 10-20 points the per-pair numpy overhead, not the solver, dominates.
    """
    n_b = _POOL["n_b"]
    out = np.empty((len(rows), n_b, MAX_DIM + 1))
    for k, (points_b, diag_b, offsets) in enumerate(_POOL["b"]):
        cumulative = np.concatenate([[0.0], np.cumsum(diag_b)])
        diag_sum_b = cumulative[offsets[1:]] - cumulative[offsets[:-1]]  # per column shape; 0 when empty
        for r, i in enumerate(rows):
            a, diag_a = _POOL["a"][i][k]
            if len(a) == 0:
                out[r, :, k] = diag_sum_b
                continue
            dist = _squared_distances(a, points_b)
            for j in range(n_b):
                lo, hi = offsets[j], offsets[j + 1]
                if hi == lo:
                    out[r, j, k] = diag_a.sum()
                    continue
                out[r, j, k] = _solve(_augmented_cost(dist[:, lo:hi], diag_a, diag_b[lo:hi]))
    return rows, out


def _assignment_score(w: np.ndarray) -> tuple[float, np.ndarray]:
    row_to_col = lap.lapjv(np.ascontiguousarray(w, dtype=np.float64), extend_cost=False, return_cost=False)[0]
    return float(w[np.arange(len(w)), row_to_col].sum() / len(w)), row_to_col.astype(np.int64)


def _default_processes() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def pd_lap(A: Sequence[Diagrams], B: Sequence[Diagrams], processes: int | None = None) -> PDLapResult:
    """Paper eq. 2: the Wasserstein distance between two collections of diagrams, ``min_Y <W, Y> / n``.

    Args:
        A, B: equal-length sequences of per-shape diagrams ``[PD0, PD1, PD2]``.
        processes: worker processes that build W (default: the CPUs available to this process). 1 builds it
            in this process.
    """
    A = [[_as_diagram(d, f"A[{i}][{k}]") for k, d in enumerate(s)] for i, s in enumerate(A)]
    B = [[_as_diagram(d, f"B[{i}][{k}]") for k, d in enumerate(s)] for i, s in enumerate(B)]
    n = len(A)
    if n == 0 or len(B) != n:
        raise ValueError(f"pd_lap needs two non-empty collections of equal size, got {len(A)} and {len(B)}")
    processes = _default_processes() if processes is None else max(1, int(processes))
    w_k = np.empty((n, n, MAX_DIM + 1))
    if processes == 1 or n < 8:
        _pool_init(A, B)
        w_k[:] = _pool_rows(range(n))[1]
        _POOL.clear()
    else:
        n_chunks = min(n, 8 * processes)
        bounds = np.linspace(0, n, n_chunks + 1).astype(int)
        chunks = [range(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
        with ProcessPoolExecutor(max_workers=processes, initializer=_pool_init, initargs=(A, B)) as pool:
            for rows, block in pool.map(_pool_rows, chunks):
                w_k[rows.start : rows.stop] = block
    w_k = np.moveaxis(w_k, 2, 0)
    W = w_k.sum(axis=0)
    value, assignment = _assignment_score(W)
    per_dim = [_assignment_score(w) for w in w_k]
    return PDLapResult(value=value, per_dimension=np.array([score for score, _ in per_dim]), assignment=assignment,
                       W=W, W_per_dimension=w_k, per_dimension_assignment=np.array([a for _, a in per_dim]))
