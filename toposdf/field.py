"""The network's field on the grid, and meshes and surface points from grids.

- Grids are those of :func:`toposdf.data.grid_points`: ``grid[i, j, k]`` is the value at ``(x_i, y_j, z_k)`` with
  ``x_i = -1 + 2 i / (N - 1)``, negative inside; a batch of grids is ``(B, N, N, N)``.
- ``decoder`` is ``f(z (B, L), x (B, P, 3)) -> (B, P)``, e.g. :class:`toposdf.models.SDFDecoder`.
- :func:`evaluate_grid` evaluates every vertex; :func:`evaluate_grid_band` only those the persistence of the
  clamped field needs (the narrow band); :func:`grid_diagrams` takes the diagrams and critical vertices of
  the grids; :func:`extract_mesh` and :func:`sample_surface` turn a grid into a mesh and the mesh into points.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from skimage.measure import marching_cubes

from toposdf.data import grid_points
from toposdf.topology import batch_cubical_diagrams
from toposdf.transfer import pack_indices, to_device


@functools.lru_cache(maxsize=4)
def grid_points_cached(resolution: int) -> np.ndarray:
    """:func:`toposdf.data.grid_points`, computed once per resolution (read-only): the training loop's hot path."""
    points = grid_points(resolution)
    points.flags.writeable = False
    return points


@dataclass
class GridDiagrams:
    """Diagrams of the network's shapes on the grid, with critical vertices (flat C-order indices)."""

    diagrams: list[list[np.ndarray]]  # per shape, [PD0, PD1, PD2]
    critical: list[list[np.ndarray]]  # per shape, [(n0, 2), (n1, 2), (n2, 2)] int64
    # per shape, the surface distance's critical vertices (toposdf.surface_field.SurfaceVertices) where the
    # diagrams are of the shape's surface distance; None (or a None entry): of the network's field
    surface: list | None = None
    field_gradient: bool = False  # with ``surface``: the gradient also reaches the field at the vertices
    # per shape, over PD0: True where a pair dying at tau has its joining saddle as death vertex
    # (toposdf.topology.joining_diagrams, train.joint.join_tau); None: no such pairs
    joins: list | None = None


# Points evaluated per forward call, over all shapes of the batch. On the CPU, activations that stay in cache
# matter more than call overhead (measured: 16k points per call ran twice as fast as 64k x B); a GPU wants large
# calls.
GRID_CHUNK = {"cpu": 16384, "cuda": 1 << 20}


def _grid_chunk(z: torch.Tensor) -> int:
    return max(1024, GRID_CHUNK.get(z.device.type, 1 << 18) // max(1, z.shape[0]))


def _forward_chunks(decoder, z: torch.Tensor, points: torch.Tensor, chunk: int) -> torch.Tensor:
    """``f(points, z_b)`` for every code, ``chunk`` points per forward call and shape: ``(B, P)``."""
    out = torch.empty(z.shape[0], len(points), dtype=z.dtype, device=z.device)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        out[:, start : start + chunk] = decoder(z, block[None].expand(z.shape[0], -1, -1))
    return out


@torch.no_grad()
def evaluate_grid(decoder, z: torch.Tensor, resolution: int, chunk: int | None = None) -> np.ndarray:
    """``f(., z)`` on the ``resolution^3`` grid over ``[-1, 1]^3`` without autograd: ``(B, N, N, N)`` float64.

    ``chunk``: grid points per forward call and shape (default: :data:`GRID_CHUNK` of the device over ``B``).
    """
    points = torch.tensor(grid_points_cached(resolution), dtype=z.dtype, device=z.device)
    out = _forward_chunks(decoder, z, points, chunk or _grid_chunk(z))
    return out.double().cpu().numpy().reshape((z.shape[0],) + (resolution,) * 3)


# Narrow-band evaluation (:func:`evaluate_grid_band`): the coarsest lattice has stride 2^(BAND_LEVELS - 1), and
# the network's slope is bounded by BAND_SAFETY times the steepest slope seen on it (at least BAND_SAFETY: an SDF
# has slope 1).
BAND_LEVELS = 3
BAND_SAFETY = 1.5


def _lattice(resolution: int, stride: int) -> np.ndarray:
    """Every ``stride``-th grid index along an axis, and the last one."""
    index = np.arange(0, resolution, stride)
    return index if index[-1] == resolution - 1 else np.append(index, resolution - 1)


def _coarsest_stride(resolution: int, levels: int) -> int:
    """``2^(levels - 1)``, halved until the coarsest lattice keeps at least 3 vertices per axis."""
    stride = 2 ** max(0, levels - 1)
    while stride > 1 and resolution <= 2 * stride:
        stride //= 2
    return stride


def _cube(lattices: list[np.ndarray], device: torch.device) -> tuple:
    """Broadcastable indices, with the batch axis, of the sub-grid ``lattices[0] x lattices[1] x lattices[2]``."""
    t = pack_indices(lattices, device)
    return slice(None), t[0][:, None, None], t[1][None, :, None], t[2][None, None, :]


def _along(vector: np.ndarray, axis: int, like: torch.Tensor) -> torch.Tensor:
    """``vector`` as a tensor shaped to broadcast along grid axis ``axis`` of a ``(B, n0, n1, n2)`` tensor."""
    shape = [1, 1, 1, 1]
    shape[axis + 1] = -1
    return to_device(vector, like.device, like.dtype).view(shape)


def _slope_bound(first: torch.Tensor, coarse: np.ndarray, spacing: float, safety: float) -> torch.Tensor:
    """``safety`` times the steepest finite difference of the coarsest lattice's values ``first``
    ``(B, n, n, n)`` along any axis (at least ``safety``): ``(B, 1, 1, 1)``."""
    batch = first.shape[0]
    slope = torch.zeros(batch, dtype=first.dtype, device=first.device)
    for axis in range(3):
        diff = first.diff(dim=axis + 1).abs() / _along(np.diff(coarse) * spacing, axis, first)
        slope = torch.maximum(slope, diff.flatten(1).amax(1))
    return (safety * slope.clamp(min=1.0)).view(batch, 1, 1, 1)


def _refine_axis(decoder, z: torch.Tensor, values: torch.Tensor, coords: torch.Tensor, lattices: list[np.ndarray],
                 axis: int, finer: np.ndarray, bound_slope: torch.Tensor, tau: float, spacing: float,
                 chunk: int) -> int:
    """Refine ``values`` ``(B, N, N, N)``, filled on the sub-grid ``lattices``, to ``finer`` along ``axis`` (in
    place, ``lattices[axis]`` too). Each new vertex lies between two filled ones on its axis line, ``u`` and ``w``,
    and takes the better of their bounds, ``|f(v)| >= |f(u)| - L |v - u|``, where it proves ``|f| >= tau``; the
    network is evaluated elsewhere. Returns the number of network evaluations."""
    previous = lattices[axis]
    new = np.setdiff1d(finer, previous)
    right = np.searchsorted(previous, new)  # 0 and N - 1 are in every lattice: each new index has two neighbours
    bounds, signs = [], []
    for neighbour in (previous[right - 1], previous[right]):
        parent = values[_cube(lattices[:axis] + [neighbour] + lattices[axis + 1 :], values.device)]
        bounds.append(parent.abs() - bound_slope * _along(np.abs(new - neighbour) * spacing, axis, values))
        signs.append(torch.sign(parent))
    bound = torch.maximum(*bounds)
    sign = torch.where(bounds[0] >= bounds[1], *signs)
    need = (bound < tau).flatten(1).cpu().numpy()  # the masks of every shape in one copy
    level = sign * bound
    sub = _cube(lattices[:axis] + [new] + lattices[axis + 1 :], values.device)
    level_coords = coords[sub[1:]].reshape(-1, 3)
    flat_level = level.view(z.shape[0], -1)
    wanted = [np.flatnonzero(mask) for mask in need]
    for b, index in enumerate(pack_indices(wanted, values.device)):
        if len(wanted[b]):
            flat_level[b, index] = _forward_chunks(decoder, z[b : b + 1], level_coords[index], chunk * z.shape[0])[0]
    evaluated = sum(len(w) for w in wanted)
    values[sub] = level
    lattices[axis] = finer
    return evaluated


@torch.no_grad()
def evaluate_grid_band(
    decoder, z: torch.Tensor, resolution: int, tau: float, chunk: int | None = None,
    levels: int = BAND_LEVELS, safety: float = BAND_SAFETY, stats: dict | None = None,
) -> np.ndarray:
    """``f(., z)`` on the grid, evaluated only where the persistence of ``clamp(f, -tau, tau)`` needs it.

    The persistence of the clamped field sees ``-tau`` or ``tau`` wherever ``|f| >= tau``: far from the zero level
    set the network's value does not matter, only its sign. So the grid is evaluated coarse to fine. The coarsest
    lattice (every ``2^(levels-1)``-th vertex per axis) is evaluated in full; it gives a slope bound ``L``,
    ``safety`` times its steepest finite difference (at least ``safety``). Then each level halves the stride one
    axis at a time, so that every new vertex ``v`` lies halfway between two filled vertices ``u`` and ``w`` on its
    axis line: ``|f(v)| >= max(|f(u)| - L |v - u|, |f(w)| - L |v - w|)``. Where that is at least ``tau``, ``v``
    gets the bound with the sign of the vertex it came from, else the network is evaluated there. On the CPU
    default's trained chairs (40^3, ``tau = 0.1``), 14% of the vertices have ``|f| < tau``; this evaluates 31%
    of them (refining every axis at once from the nearest coarse vertex: 41%). The slack ``L h`` at the last level
    (about 0.09 there) is what keeps it above 14%.

    Returns ``(B, N, N, N)`` float64 whose clamp to ``[-tau, tau]`` equals that of :func:`evaluate_grid`, provided
    the network's slope stays below ``L`` between lattice vertices (an SDF trained with the eikonal term has slope
    about 1; a field that oscillates within a coarse cell may break it). ``stats``, when given, receives
    ``evaluated`` (network evaluations) and ``vertices`` (``B N^3``).
    """
    batch, n, device = z.shape[0], resolution, z.device
    chunk = chunk or _grid_chunk(z)
    spacing = 2.0 / (n - 1)
    coords = to_device(grid_points_cached(n), device, z.dtype).view(n, n, n, 3)
    values = torch.zeros((batch, n, n, n), dtype=z.dtype, device=device)
    stride = _coarsest_stride(n, levels)
    coarse = _lattice(n, stride)
    lattices = [coarse] * 3
    first = _forward_chunks(decoder, z, coords[_cube(lattices, device)[1:]].reshape(-1, 3), chunk)
    first = first.view(batch, *(len(coarse),) * 3)
    values[_cube(lattices, device)] = first
    evaluated = first[0].numel() * batch
    bound_slope = _slope_bound(first, coarse, spacing, safety)
    while stride > 1:
        stride //= 2
        for axis in range(3):
            evaluated += _refine_axis(decoder, z, values, coords, lattices, axis, _lattice(n, stride), bound_slope,
                                      tau, spacing, chunk)
    if stats is not None:
        stats["evaluated"] = stats.get("evaluated", 0) + evaluated
        stats["vertices"] = stats.get("vertices", 0) + batch * n**3
    return values.double().cpu().numpy()


def grid_diagrams(grids: np.ndarray, tau: float, min_persistence: float, workers: int = 1) -> GridDiagrams:
    """Diagrams and critical vertices of a batch of grids (CubicalRipser in ``workers`` threads)."""
    results = batch_cubical_diagrams(list(grids), tau, min_persistence, workers=workers, with_critical=True)
    return GridDiagrams([d for d, _ in results], [c for _, c in results])


def extract_mesh(
    grid: np.ndarray, level: float = 0.0, bounds: tuple[float, float] = (-1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """The ``level`` isosurface of a grid by marching cubes (scikit-image), in world coordinates.

    Args:
        grid: ``(N0, N1, N2)`` values on the vertices of the regular grid over ``[lo, hi]^3``, each side ``>= 2``:
            ``grid[i, j, k]`` is the value at ``lo + (hi - lo) * (i, j, k) / (N - 1)``, the convention of
            :func:`toposdf.data.grid_points`.
        level: the isovalue (0 for a signed distance).
        bounds: ``(lo, hi)``, the domain's extent on every axis.

    Returns:
        ``(vertices, faces)``: ``(V, 3)`` float64 world coordinates and ``(F, 3)`` int64 vertex indices, faces
        oriented so that their normals (right-hand rule) point towards increasing values: outwards for an SDF
        that is negative inside. A grid that never crosses ``level`` (all values on one side, or touching it
        only at its minimum or maximum), or that holds NaN or infinite values, gives the empty mesh ``(0, 3)``,
        ``(0, 3)`` instead of raising: a generator whose output has no surface is a result to be counted.

    Raises:
        ValueError: when ``grid`` is not 3D with every side at least 2, or ``bounds`` is not increasing.
    """
    grid = np.asarray(grid)
    if grid.ndim != 3 or min(grid.shape) < 2:
        raise ValueError(f"expected a 3D grid with every side >= 2, got shape {grid.shape}")
    lo, hi = map(float, bounds)
    if not hi > lo:
        raise ValueError(f"bounds must be (lo, hi) with lo < hi, got {bounds}")
    if not np.all(np.isfinite(grid)) or not grid.min() < level < grid.max():
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    spacing = tuple((hi - lo) / (n - 1) for n in grid.shape)
    # 'descent' (scikit-image's default) orients faces towards increasing values: checked on a sphere's SDF.
    vertices, faces, _, _ = marching_cubes(grid, level, spacing=spacing, gradient_direction="descent")
    return vertices.astype(np.float64) + lo, faces.astype(np.int64)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` points drawn uniformly on a triangle mesh's surface (faces picked with probability ∝ area).

    Args:
        vertices: ``(V, 3)`` float array. faces: ``(F, 3)`` int array of vertex indices.
        n: the number of points (DeepSDF's CD uses 30,000). seed: seed of the numpy generator.

    Returns:
        ``(n, 3)`` float64 points, the same for the same seed; ``(0, 3)`` when the mesh is empty or has zero
        total area (its surface has no point to draw).
    """
    vertices = np.asarray(vertices, np.float64).reshape(-1, 3)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if len(faces) == 0:
        return np.zeros((0, 3))
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = areas.sum()
    if not total > 0:
        return np.zeros((0, 3))
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(faces), size=n, p=areas / total)
    # Uniform on a triangle: sqrt(r1) makes the density uniform in area rather than along the edge a -> (b, c).
    s, r2 = np.sqrt(rng.random((n, 1))), rng.random((n, 1))
    return (1 - s) * a[picked] + s * (1 - r2) * b[picked] + s * r2 * c[picked]
