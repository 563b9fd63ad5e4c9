"""Loss terms of the paper (eqs. 5, 7-10), in torch.

Shapes: ``pred``/``target`` ``(B, P)`` signed distances; ``x`` ``(B, P, 3)`` points; diagrams ``(n, 2)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from toposdf.data import grid_points
from toposdf.topology import batch_cubical_diagrams, pd_distance


def sdf_data_loss(pred: torch.Tensor, target: torch.Tensor, delta: float = 0.1) -> torch.Tensor:
    """DeepSDF's data term: mean ``|clamp(pred, delta) - clamp(target, delta)|``."""
    return (pred.clamp(-delta, delta) - target.clamp(-delta, delta)).abs().mean()


def spatial_gradient(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``d values / d x`` with a graph for higher derivatives: ``(B, P, 3)``."""
    return torch.autograd.grad(values.sum(), x, create_graph=True)[0]


def eikonal_loss(grad: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """``mean | ||grad f|| - 1 |^p`` (IGR)."""
    return (grad.norm(dim=-1) - 1.0).abs().pow(p).mean()


def normal_laplacian_loss(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """StEik's ``mean |n^T H n|`` with ``n = grad f / ||grad f||``.

    ``H n`` is one Hessian-vector product by double backward: the gradient of ``grad f . n`` with ``n`` held
    fixed. Requires ``grad`` from :func:`spatial_gradient` (so it has a graph) and a twice-differentiable network.
    """
    n = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    hessian_n = torch.autograd.grad((grad * n.detach()).sum(), x, create_graph=True)[0]
    return (hessian_n * n).sum(dim=-1).abs().mean()


def smoothness_loss(pd_generators, z: torch.Tensor, eps: float = 1e-2, n_directions: int = 1) -> torch.Tensor:
    """Eq. 10, slot-wise: ``E_z E_v sum_k sum_j ||PD_k(z)_j - PD_k(z + eps v)_j||^2 / eps^2``, v uniform in the
    unit ball. Generator slots are ordered, so corresponding slots are compared directly."""
    total = z.new_zeros(())
    base = pd_generators(z)
    d = z.shape[-1]
    for _ in range(n_directions):
        direction = torch.randn_like(z)
        direction = direction / direction.norm(dim=-1, keepdim=True)
        radius = torch.rand(z.shape[0], 1, device=z.device, dtype=z.dtype) ** (1.0 / d)
        moved = pd_generators(z + eps * radius * direction)
        for a, b in zip(base, moved):
            total = total + (a - b).pow(2).sum(dim=(-1, -2)).mean() / eps**2
    return total / n_directions


def matched_diagram_loss(
    generated: torch.Tensor, target: torch.Tensor, matching: np.ndarray
) -> torch.Tensor:
    """Eq. 1 evaluated on a fixed matching, differentiable in both diagrams.

    ``generated`` ``(n1, 2)`` and ``target`` ``(n2, 2)`` tensors; ``matching`` from
    :func:`toposdf.topology.pd_distance` (``-1`` = the diagonal). Matched pairs cost ``||p - q||^2``, points sent to
    the diagonal ``(death - birth)^2 / 2``.
    """
    m = torch.as_tensor(matching, dtype=torch.long, device=generated.device).reshape(-1, 2)
    both = (m[:, 0] >= 0) & (m[:, 1] >= 0)
    only_a = (m[:, 0] >= 0) & (m[:, 1] < 0)
    only_b = (m[:, 0] < 0) & (m[:, 1] >= 0)
    loss = (generated[m[both, 0]] - target[m[both, 1]]).pow(2).sum()
    pa, pb = generated[m[only_a, 0]], target[m[only_b, 1]]
    loss = loss + 0.5 * (pa[:, 1] - pa[:, 0]).pow(2).sum() + 0.5 * (pb[:, 1] - pb[:, 0]).pow(2).sum()
    return loss


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


def _nearest(index: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """The nearest lattice index of each index (both sorted)."""
    right = np.clip(np.searchsorted(lattice, index), 1, len(lattice) - 1)
    left = right - 1
    return np.where(index - lattice[left] <= lattice[right] - index, lattice[left], lattice[right])


@torch.no_grad()
def evaluate_grid_band(
    decoder, z: torch.Tensor, resolution: int, tau: float, chunk: int | None = None,
    levels: int = BAND_LEVELS, safety: float = BAND_SAFETY, stats: dict | None = None,
) -> np.ndarray:
    """``f(., z)`` on the grid, evaluated only where the persistence of ``clamp(f, -tau, tau)`` needs it.

    The persistence of the clamped field sees ``-tau`` or ``tau`` wherever ``|f| >= tau``: far from the zero level
    set the network's value does not matter, only its sign. So the grid is evaluated coarse to fine. The coarsest
    lattice (every ``2^(levels-1)``-th vertex per axis) is evaluated in full; it gives a slope bound ``L``,
    ``safety`` times its steepest finite difference (at least ``safety``). Each finer lattice's new vertex ``v``
    takes, from its nearest vertex ``u`` of the coarser one, the bound ``|f(v)| >= |f(u)| - L |v - u|``: where that
    is at least ``tau``, ``v`` gets ``sign(f(u))`` times the bound, else the network is evaluated there. At 64^3
    with ``tau = 0.1``, about a quarter of the vertices of a furniture-like shape are evaluated.

    Returns ``(B, N, N, N)`` float64 whose clamp to ``[-tau, tau]`` equals that of :func:`evaluate_grid`, provided
    the network's slope stays below ``L`` between lattice vertices (an SDF trained with the eikonal term has slope
    about 1; a field that oscillates within a coarse cell may break it). ``stats``, when given, receives
    ``evaluated`` (network evaluations) and ``vertices`` (``B N^3``).
    """
    batch, n, device = z.shape[0], resolution, z.device
    chunk = chunk or _grid_chunk(z)
    spacing = 2.0 / (n - 1)
    coords = torch.tensor(grid_points_cached(n), dtype=z.dtype, device=device).view(n, n, n, 3)
    values = torch.zeros((batch, n, n, n), dtype=z.dtype, device=device)
    stride = 2 ** max(0, levels - 1)
    while stride > 1 and n <= 2 * stride:  # the coarsest lattice keeps at least 3 vertices per axis
        stride //= 2

    def cube(index: np.ndarray) -> tuple[torch.Tensor, ...]:
        t = torch.as_tensor(index, device=device)
        return t[:, None, None], t[None, :, None], t[None, None, :]

    coarse = _lattice(n, stride)
    sub = cube(coarse)
    first = _forward_chunks(decoder, z, coords[sub].reshape(-1, 3), chunk).view(batch, *(len(coarse),) * 3)
    values[(slice(None),) + sub] = first
    evaluated = first[0].numel() * batch
    steps = torch.as_tensor(np.diff(coarse) * spacing, dtype=z.dtype, device=device)
    slope = torch.zeros(batch, dtype=z.dtype, device=device)
    for axis in (1, 2, 3):
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        diff = first.diff(dim=axis).abs() / steps.view(shape)
        slope = torch.maximum(slope, diff.flatten(1).amax(1))
    bound_slope = (safety * slope.clamp(min=1.0)).view(batch, 1, 1, 1)

    while stride > 1:
        previous, stride = _lattice(n, stride), stride // 2
        current = _lattice(n, stride)
        near = _nearest(current, previous)
        offset = torch.as_tensor((current - near) * spacing, dtype=z.dtype, device=device)
        distance = (offset[:, None, None] ** 2 + offset[None, :, None] ** 2 + offset[None, None, :] ** 2).sqrt()
        old = torch.as_tensor(np.isin(current, previous), device=device)
        new = ~(old[:, None, None] & old[None, :, None] & old[None, None, :])
        sub = cube(current)
        parent = values[(slice(None),) + cube(near)]
        bound = parent.abs() - bound_slope * distance
        need = new & (bound < tau)
        level = values[(slice(None),) + sub]
        level = torch.where(new & ~need, torch.sign(parent) * bound, level)
        level_coords = coords[sub]
        for b in range(batch):
            mask = need[b]
            points = level_coords[mask]
            evaluated += len(points)
            if len(points):
                level[b][mask] = _forward_chunks(decoder, z[b : b + 1], points, chunk * batch)[0]
        values[(slice(None),) + sub] = level
    if stats is not None:
        stats["evaluated"] = stats.get("evaluated", 0) + evaluated
        stats["vertices"] = stats.get("vertices", 0) + batch * n**3
    return values.double().cpu().numpy()


def grid_diagrams(grids: np.ndarray, tau: float, min_persistence: float, workers: int = 1) -> GridDiagrams:
    """Diagrams and critical vertices of a batch of grids (CubicalRipser in ``workers`` threads)."""
    results = batch_cubical_diagrams(list(grids), tau, min_persistence, workers=workers, with_critical=True)
    return GridDiagrams([d for d, _ in results], [c for _, c in results])


def diagram_points(
    decoder, z: torch.Tensor, computed: GridDiagrams, resolution: int, tau: float
) -> list[list[torch.Tensor]]:
    """The diagrams of ``f(., z)`` as differentiable functions of the network, through the critical vertices.

    ``computed`` holds the diagrams and critical vertices of ``f(., z)`` on the grid (from :func:`evaluate_grid`
    and :func:`grid_diagrams`, no autograd, possibly from slightly older weights). The network is re-evaluated,
    with autograd, at those vertices alone: a diagram point is ``(f(v_birth), f(v_death))`` clamped to
    ``[-tau, tau]``. Deaths at ``tau`` (the essential class, and features outliving the clamp) are the constant
    ``tau``: the essential class's death vertex is only the grid maximum, which may lie below ``tau``.

    Returns ``points[b][k]``, an ``(n_k, 2)`` tensor per shape and dimension, in the order of ``computed``.
    """
    coords = grid_points_cached(resolution)
    points: list[list[torch.Tensor]] = []
    for b in range(z.shape[0]):
        vertices = np.unique(np.concatenate([c.ravel() for c in computed.critical[b]] + [np.zeros(0, np.int64)]))
        x = torch.as_tensor(coords[vertices], dtype=z.dtype, device=z.device)
        values = decoder(z[b : b + 1], x[None])[0].clamp(-tau, tau)
        shape_points = []
        for k, crit in enumerate(computed.critical[b]):
            index = torch.as_tensor(np.searchsorted(vertices, crit.ravel()), dtype=torch.long, device=z.device)
            pairs = values[index].reshape(-1, 2)
            dies_at_tau = torch.as_tensor(computed.diagrams[b][k][:, 1] >= tau, device=z.device)
            death = torch.where(dies_at_tau, torch.full_like(pairs[:, 1], tau), pairs[:, 1])
            shape_points.append(torch.stack([pairs[:, 0], death], 1))
        points.append(shape_points)
    return points


def match_diagrams(generated: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The optimal matching of eq. 1 between two diagrams (``-1`` = the diagonal), from :func:`pd_distance`."""
    return pd_distance(np.asarray(generated, np.float64), np.asarray(target, np.float64), return_matching=True)[1]


def diagram_fit_loss(generated: list[torch.Tensor], targets, matchings=None) -> torch.Tensor:
    """``mean_b sum_k d_PD(generated[k][b], targets[b][k])`` (eq. 12's data term, and eq. 14's consistency
    term with the network fixed), differentiable in ``generated``.

    ``generated[k]`` is ``(B, n_k, 2)``; ``targets[b][k]`` an ``(m, 2)`` array or tensor (a constant, or
    differentiable as from :func:`diagram_points`). ``matchings[b][k]``, when given, is used instead of solving
    eq. 1 again (it must come from the same diagrams).
    """
    batch = generated[0].shape[0]
    total = generated[0].new_zeros(())
    for b in range(batch):
        for k, gen in enumerate(generated):
            target = torch.as_tensor(targets[b][k], dtype=gen.dtype, device=gen.device).reshape(-1, 2)
            matching = (matchings[b][k] if matchings is not None
                        else match_diagrams(gen[b].detach().cpu().numpy(), target.detach().cpu().numpy()))
            total = total + matched_diagram_loss(gen[b], target, matching)
    return total / batch


def consistency_loss(
    decoder,
    z: torch.Tensor,
    generated: list[torch.Tensor],
    computed: GridDiagrams,
    resolution: int,
    tau: float,
    matchings=None,
) -> torch.Tensor:
    """Eq. 8: ``mean_b sum_k d_PD(PD_k,phi(z_b), PD_k(f(., z_b)))``, differentiable in the network (through the
    critical vertices only, see :func:`diagram_points`) and in the generators. The whole grid is never
    backpropagated through.

    ``generated[k]`` is ``(B, n_k, 2)``. ``matchings[b][k]`` (generator output against ``computed``'s diagrams),
    when given, saves solving eq. 1 here: the training loop computes them in its persistence workers.
    """
    targets = diagram_points(decoder, z, computed, resolution, tau)
    return diagram_fit_loss(generated, targets, matchings)


def topological_prior_loss(
    points: list[list[torch.Tensor]], dim: int = 0, p: float = 1.0, q: int = 0, i0: int = 2
) -> torch.Tensor:
    """The topology layer's fixed prior ``E(p, q, i0; PD_dim) = sum_{i >= i0} |d_i - b_i|^p ((d_i + b_i) / 2)^q``
    (Brüel-Gabrielsson et al., eq. 1), points ordered by decreasing persistence, averaged over shapes.

    ``i0`` counts from 1, as in the paper: ``E(1, 0, 2; PD0)`` leaves the most persistent component alone and
    shrinks every other one, promoting a single connected component. ``points`` from :func:`diagram_points`.
    """
    if i0 < 1:
        raise ValueError(f"i0 counts from 1, got {i0}")
    total = points[0][dim].new_zeros(())
    for shape in points:
        d = shape[dim]
        persistence = d[:, 1] - d[:, 0]
        order = torch.argsort(persistence.detach(), descending=True, stable=True)
        rest = d[order[i0 - 1 :]]
        term = (rest[:, 1] - rest[:, 0]).abs().pow(p)
        if q:
            term = term * ((rest[:, 1] + rest[:, 0]) / 2).pow(q)
        total = total + term.sum()
    return total / len(points)
