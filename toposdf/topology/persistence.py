"""Persistence diagrams of signed distance grids (CubicalRipser, with gudhi as the independent check), Betti
numbers, and their storage. The conventions are :mod:`toposdf.topology`'s."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from toposdf.io import atomic_savez

MAX_DIM = 2
Diagrams = list[np.ndarray]  # [PD0, PD1, PD2], each (n, 2)


# --------------------------------------------------------------------------------------------------------------
# Persistence of grids
# --------------------------------------------------------------------------------------------------------------
def cripser_pairs(values: np.ndarray, maxdim: int) -> np.ndarray:
    """CubicalRipser's pairs of the vertex (V-construction) sublevel filtration of ``values``: one row
    ``(dim, birth, death, birth vertex x3, death vertex x3)`` a pair. cripser is imported here, not with this module:
    its package imports torch, which the mesh, grid and table jobs would otherwise start for nothing."""
    import cripser

    return cripser.compute_ph(np.ascontiguousarray(values), filtration="V", maxdim=maxdim)


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


def _below_tau_box(values: np.ndarray, tau: float | None) -> tuple[slice, ...]:
    """The bounding box of the vertices below ``tau`` (the whole grid without ``tau``, or when none is below).

    Persistence sees nothing else before ``tau``: in the V-construction a cube enters at the largest value of its
    vertices, so every cube of value below ``tau`` lies in the box, and the sublevel sets below ``tau`` are those
    of the box. At ``tau`` the whole grid and the whole box enter, both contractible: every class still alive
    dies there in both, and pairs born at ``tau`` have zero persistence (dropped). So the box has the grid's
    diagrams; only its vertices are renumbered, and the essential class's death vertex is taken from the grid.
    A shape's box is about a third of the 40^3 grid, and CubicalRipser's time scales with the cubes.
    """
    if tau is None:
        return tuple(slice(0, n) for n in values.shape)
    below = values < tau
    if not below.any():
        return tuple(slice(0, n) for n in values.shape)
    box = []
    for axis in range(values.ndim):
        hit = np.flatnonzero(below.any(axis=tuple(a for a in range(values.ndim) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def cubical_diagrams_with_critical(
    grid: np.ndarray, tau: float | None = None, min_persistence: float = 0.0, crop: bool = True
) -> tuple[Diagrams, list[np.ndarray]]:
    """Persistence diagrams of a grid's sublevel-set filtration, with the critical vertex of every pair.

    Args:
        grid: ``(N, N, N)`` (or 2D) array of function values on grid vertices.
        tau: clamp the values to ``[-tau, tau]`` first; the essential H0 class dies at ``tau``. When None, no
            clamping, and the essential class dies at ``grid.max()``.
        min_persistence: pairs with ``death - birth < min_persistence`` are dropped, and so are pairs of zero
            persistence. The essential H0 class is always kept.
        crop: compute on the bounding box of the vertices below ``tau`` (the same diagrams, a fraction of the
            cubes; see :func:`_below_tau_box`); False: on the whole grid, the reference that checks it.

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
    box = _below_tau_box(values, tau if crop else None)
    pairs = cripser_pairs(values[box], MAX_DIM)
    nd = grid.ndim
    origin = np.array([s.start for s in box], np.int64)
    dims = pairs[:, 0].astype(np.int64)
    birth, death = pairs[:, 1].copy(), pairs[:, 2].copy()
    # cripser writes 3 coordinates per vertex whatever the grid's dimension (the third 0 for a 2D grid)
    birth_vertex = np.ravel_multi_index((pairs[:, 3 : 3 + nd].astype(np.int64) + origin).T, grid.shape)
    essential = ~np.isfinite(death) | (death >= np.finfo(np.float64).max / 2)
    death[essential] = essential_death
    death_coords = pairs[:, 6 : 6 + nd].astype(np.int64) + origin
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


def joining_diagrams(
    grid: np.ndarray, tau: float, join_tau: float | None, min_persistence: float = 0.0, crop: bool = True
) -> tuple[Diagrams, list[np.ndarray], np.ndarray | None]:
    """:func:`cubical_diagrams_with_critical`'s diagrams of ``clamp(grid, -tau, tau)``, with the vertex where each
    floating piece would join the shape.

    A piece that has not joined the shape by ``tau`` (its gap wider than ``2 tau``) dies at ``tau`` in the clamped
    filtration, at a vertex of value ``tau`` that says nothing about the gap. Here the filtration runs on to
    ``join_tau`` (``clamp(grid, -tau, join_tau)``) and its deaths beyond ``tau`` are capped at ``tau``, which gives
    the same diagrams (up to the order of equal points), while an H0 pair that then dies below ``join_tau`` keeps
    that death's vertex: the saddle of the gap, where the piece would join.

    Returns ``(diagrams, critical, joins)``: ``joins`` the boolean array over ``diagrams[0]``, True for the pairs
    whose death vertex is such a saddle (value in ``(tau, join_tau)``); every other death at ``tau`` has the
    essential class's death vertex. ``join_tau`` None: :func:`cubical_diagrams_with_critical`'s own, ``joins`` None.
    """
    if join_tau is None:
        return (*cubical_diagrams_with_critical(grid, tau, min_persistence, crop), None)
    if not join_tau > tau:
        raise ValueError(f"join_tau must exceed tau ({tau}), got {join_tau}")
    grid = _check_grid(grid)
    longer, critical = cubical_diagrams_with_critical(np.maximum(grid, -tau), join_tau, 0.0, crop)
    essential_vertex = int(np.argmax(np.clip(grid, -tau, tau)))
    diagrams, kept, joins = [], [], np.zeros(0, bool)
    for k, (points, vertices) in enumerate(zip(longer, critical)):
        birth, death = points[:, 0], np.minimum(points[:, 1], tau)
        keep = (birth < tau) & (death - birth > 0) & (death - birth >= min_persistence)
        keep[:1] |= k == 0  # the essential class: first, the longest in the longer filtration too
        sel = np.flatnonzero(keep)
        sel = sel[np.argsort(-(death - birth)[sel], kind="stable")]
        vertex = vertices[sel].copy()
        saddle = (k == 0) & (sel != 0) & (points[sel, 1] > tau) & (points[sel, 1] < join_tau)
        vertex[(points[sel, 1] >= tau) & ~saddle, 1] = essential_vertex
        joins = saddle if k == 0 else joins
        diagrams.append(np.stack([birth[sel], death[sel]], axis=1).reshape(-1, 2))
        kept.append(vertex.reshape(-1, 2).astype(np.int64))
    return diagrams, kept, joins


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
