"""Persistence diagrams of signed distance grids and the distances between them.

Conventions used throughout toposdf:

- A *grid* is an ``(N, N, N)`` float array of signed distances on the vertices of a regular grid over
  ``[-1, 1]^3``, indexed ``grid[i, j, k] = f(x_i, y_j, z_k)``, negative inside the shape.
- A *diagram* is an ``(n, 2)`` float64 array of ``(birth, death)`` pairs with ``birth <= death``.
- A shape's diagrams are the list ``[PD0, PD1, PD2]`` (components, tunnels/handles, voids).
- *Critical vertices* are ``(n, 2)`` int64 arrays of flat C-order grid indices ``[v_birth, v_death]``, so that
  ``grid.ravel()[critical] == diagram`` (after clamping): the diagram point is ``(f(v_birth), f(v_death))``.

The filtration is the sublevel-set filtration of ``clamp(f, -tau, tau)`` on the cubical complex whose vertices
are the grid points (a cube enters when its last vertex does), computed by CubicalRipser. gudhi is the
independent implementation used to check it (``gudhi_diagrams``), and every call into gudhi sits in this module.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cripser
import lap
import numpy as np

from toposdf.io import atomic_savez

MAX_DIM = 2
Diagrams = list[np.ndarray]  # [PD0, PD1, PD2], each (n, 2)


# --------------------------------------------------------------------------------------------------------------
# Persistence of grids
# --------------------------------------------------------------------------------------------------------------
def _check_grid(grid: np.ndarray) -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim not in (2, 3):
        raise ValueError(f"expected a 2D or 3D grid of function values, got an array of shape {grid.shape}")
    if grid.size == 0:
        raise ValueError("expected a non-empty grid")
    if not np.all(np.isfinite(grid)):
        raise ValueError("the grid contains NaN or infinite values")
    return grid


def _filtration_values(grid: np.ndarray, tau: float | None) -> tuple[np.ndarray, float]:
    """Clamp to [-tau, tau] (when tau is given); return float64 values and the essential class's death."""
    if tau is not None:
        if not tau > 0:
            raise ValueError(f"tau must be positive, got {tau}")
        values = np.clip(grid, -tau, tau, dtype=np.float64)
        return values, float(tau)
    values = np.ascontiguousarray(grid, dtype=np.float64)
    return values, float(values.max())


def cubical_diagrams_with_critical(
    grid: np.ndarray, tau: float | None = None, min_persistence: float = 0.0
) -> tuple[Diagrams, list[np.ndarray]]:
    """Persistence diagrams of a grid's sublevel-set filtration, with the critical vertex of every pair.

    Args:
        grid: ``(N, N, N)`` (or 2D) array of function values on grid vertices.
        tau: clamp the values to ``[-tau, tau]`` first; the essential H0 class dies at ``tau``. When None, no
            clamping, and the essential class dies at ``grid.max()``.
        min_persistence: pairs with ``death - birth < min_persistence`` are dropped, and so are pairs of zero
            persistence. The essential H0 class is always kept.

    Returns:
        ``(diagrams, critical)``: ``diagrams[k]`` is the ``(n_k, 2)`` float64 array of (birth, death) for
        k = 0, 1, 2 (for 2D grids, PD2 is empty), and ``critical[k]`` the ``(n_k, 2)`` int64 array of flat
        C-order indices of the birth and death vertices, with ``clamped.ravel()[critical[k]] == diagrams[k]``,
        except for the essential class's death: its vertex is one of maximal value, which equals ``tau`` only
        when the grid reaches ``tau`` (its death is ``tau`` regardless, a constant). Pairs are sorted by
        decreasing persistence within each dimension.
    """
    grid = _check_grid(grid)
    if min_persistence < 0:
        raise ValueError(f"min_persistence must be >= 0, got {min_persistence}")
    values, essential_death = _filtration_values(grid, tau)
    pairs = cripser.compute_ph(values, filtration="V", maxdim=MAX_DIM)
    nd = grid.ndim
    dims = pairs[:, 0].astype(np.int64)
    birth, death = pairs[:, 1].copy(), pairs[:, 2].copy()
    birth_vertex = np.ravel_multi_index(pairs[:, 3 : 3 + nd].astype(np.int64).T, grid.shape)
    essential = ~np.isfinite(death) | (death >= np.finfo(np.float64).max / 2)
    death[essential] = essential_death
    death_coords = pairs[:, 3 + nd : 3 + 2 * nd].astype(np.int64)
    death_coords[essential] = 0  # cripser reports -1; replaced below
    death_vertex = np.ravel_multi_index(death_coords.T, grid.shape)
    death_vertex[essential] = int(np.argmax(values))

    persistence = death - birth
    keep = essential | ((persistence > 0) & (persistence >= min_persistence))
    diagrams: Diagrams = []
    critical: list[np.ndarray] = []
    for k in range(MAX_DIM + 1):
        sel = np.flatnonzero(keep & (dims == k))
        sel = sel[np.argsort(-persistence[sel], kind="stable")]
        diagrams.append(np.stack([birth[sel], death[sel]], axis=1).reshape(-1, 2))
        critical.append(np.stack([birth_vertex[sel], death_vertex[sel]], axis=1).reshape(-1, 2).astype(np.int64))
    return diagrams, critical


def cubical_diagrams(grid: np.ndarray, tau: float | None = None, min_persistence: float = 0.0) -> Diagrams:
    """``[PD0, PD1, PD2]`` of the sublevel-set filtration of ``clamp(grid, -tau, tau)``.

    Each diagram is an ``(n, 2)`` float64 array of (birth, death) with birth <= death; see
    :func:`cubical_diagrams_with_critical` for the arguments.
    """
    return cubical_diagrams_with_critical(grid, tau, min_persistence)[0]


def batch_cubical_diagrams(
    grids: Sequence[np.ndarray] | np.ndarray,
    tau: float | None = None,
    min_persistence: float = 0.0,
    workers: int = 1,
    with_critical: bool = False,
) -> list:
    """Diagrams of many grids, computed by ``workers`` threads (CubicalRipser releases the GIL).

    Returns a list with one entry per grid: its diagrams, or ``(diagrams, critical)`` when ``with_critical``.
    """
    def one(g: np.ndarray):
        result = cubical_diagrams_with_critical(g, tau, min_persistence)
        return result if with_critical else result[0]

    if workers <= 1 or len(grids) <= 1:
        return [one(g) for g in grids]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, grids))


def gudhi_diagrams(grid: np.ndarray, tau: float | None = None, min_persistence: float = 0.0) -> Diagrams:
    """The same diagrams as :func:`cubical_diagrams`, computed by gudhi's ``CubicalComplex(vertices=...)``.

    Slower (about 10x at 64^3); it is the independent check of the CubicalRipser path.
    """
    import gudhi

    grid = _check_grid(grid)
    values, essential_death = _filtration_values(grid, tau)
    complex_ = gudhi.CubicalComplex(vertices=values)
    complex_.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    diagrams = []
    for k in range(MAX_DIM + 1):
        d = np.asarray(complex_.persistence_intervals_in_dimension(k), dtype=np.float64).reshape(-1, 2)
        essential = ~np.isfinite(d[:, 1])
        d[essential, 1] = essential_death
        pers = d[:, 1] - d[:, 0]
        d = d[essential | ((pers > 0) & (pers >= min_persistence))]
        diagrams.append(d[np.argsort(-(d[:, 1] - d[:, 0]), kind="stable")])
    return diagrams


def betti_numbers(diagrams: Diagrams, level: float = 0.0) -> tuple[int, ...]:
    """Betti numbers of the sublevel set ``{f <= level}``: the pairs with ``birth <= level < death``.

    With the default level 0 these are the Betti numbers of the shape itself (the SDF is negative inside).
    """
    return tuple(int(np.count_nonzero((d[:, 0] <= level) & (d[:, 1] > level))) for d in diagrams)


def off_diagonal(diagrams: Sequence[np.ndarray], eps: float = 1e-6) -> Diagrams:
    """Each ``(n, 2)`` diagram without its points within ``eps`` of the diagonal (``death - birth <= eps``): a PD
    generator's diagrams without the slots it parked there (unused, zero cost in eq. 1)."""
    return [np.asarray(d).reshape(-1, 2)[np.asarray(d).reshape(-1, 2) @ [-1, 1] > eps] for d in diagrams]


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


def pd_distance_shapes(a: Diagrams, b: Diagrams) -> np.ndarray:
    """Per-dimension distances ``[d_PD0, d_PD1, d_PD2]`` between two shapes' diagrams (``d_PD`` is their sum)."""
    if len(a) != len(b):
        raise ValueError(f"both shapes need the same number of diagrams, got {len(a)} and {len(b)}")
    return np.array([pd_distance(p, q) for p, q in zip(a, b)])


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
    """

    value: float
    per_dimension: np.ndarray
    assignment: np.ndarray
    W: np.ndarray
    W_per_dimension: np.ndarray


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
    per_dim = np.array([_assignment_score(w)[0] for w in w_k])
    return PDLapResult(value=value, per_dimension=per_dim, assignment=assignment, W=W, W_per_dimension=w_k)


# --------------------------------------------------------------------------------------------------------------
# Storage: many shapes' diagrams in one .npz
# --------------------------------------------------------------------------------------------------------------
def save_diagrams(
    path: str | Path,
    ids: Sequence[str],
    diagrams: Sequence[Diagrams],
    critical: Sequence[list[np.ndarray]] | None = None,
    **metadata: float | str,
) -> None:
    """Write the diagrams of many shapes to one ``.npz`` (atomically).

    Layout: ``ids`` (n,), and for each k ``pd{k}`` (total, 2) with ``pd{k}_offsets`` (n + 1,), so shape i's
    PD_k is ``pd{k}[offsets[i]:offsets[i + 1]]``; ``crit{k}`` likewise when critical vertices are given; scalar
    metadata (tau, min_persistence, ...) as 0-d arrays.
    """
    if len(ids) != len(diagrams):
        raise ValueError(f"{len(ids)} ids for {len(diagrams)} shapes")
    arrays: dict[str, np.ndarray] = {"ids": np.asarray(list(ids), dtype=str)}
    for k in range(MAX_DIM + 1):
        parts = [np.asarray(d[k], np.float64).reshape(-1, 2) for d in diagrams]
        arrays[f"pd{k}"] = np.concatenate(parts) if parts else np.zeros((0, 2))
        arrays[f"pd{k}_offsets"] = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        if critical is not None:
            crit = [np.asarray(c[k], np.int64).reshape(-1, 2) for c in critical]
            arrays[f"crit{k}"] = np.concatenate(crit) if crit else np.zeros((0, 2), np.int64)
    for key, value in metadata.items():
        arrays[f"meta_{key}"] = np.asarray(value)
    atomic_savez(path, **arrays)


def load_diagrams(path: str | Path) -> tuple[list[str], list[Diagrams], dict]:
    """Read what :func:`save_diagrams` wrote: ``(ids, diagrams, metadata)``."""
    with np.load(path) as f:
        ids = [str(s) for s in f["ids"]]
        per_k = []
        for k in range(MAX_DIM + 1):
            pts, off = f[f"pd{k}"], f[f"pd{k}_offsets"]
            per_k.append([pts[off[i] : off[i + 1]] for i in range(len(ids))])
        meta = {key[5:]: f[key].item() for key in f.files if key.startswith("meta_")}
    return ids, [[per_k[k][i] for k in range(MAX_DIM + 1)] for i in range(len(ids))], meta
