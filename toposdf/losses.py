"""Loss terms of the paper (eqs. 5, 7-10), in torch.

Shapes: ``pred``/``target`` ``(B, P)`` signed distances; ``x`` ``(B, P, 3)`` points; diagrams ``(n, 2)``.
"""

from __future__ import annotations

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


@dataclass
class GridDiagrams:
    """Diagrams of the network's shapes on the grid, with critical vertices (flat C-order indices)."""

    diagrams: list[list[np.ndarray]]  # per shape, [PD0, PD1, PD2]
    critical: list[list[np.ndarray]]  # per shape, [(n0, 2), (n1, 2), (n2, 2)] int64


@torch.no_grad()
def evaluate_grid(decoder, z: torch.Tensor, resolution: int, chunk: int = 65536) -> np.ndarray:
    """``f(., z)`` on the ``resolution^3`` grid over ``[-1, 1]^3`` without autograd: ``(B, N, N, N)`` float64."""
    points = torch.as_tensor(grid_points(resolution), dtype=z.dtype, device=z.device)
    out = torch.empty(z.shape[0], len(points), dtype=z.dtype, device=z.device)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        out[:, start : start + chunk] = decoder(z, block[None].expand(z.shape[0], -1, -1))
    return out.double().cpu().numpy().reshape((z.shape[0],) + (resolution,) * 3)


def grid_diagrams(grids: np.ndarray, tau: float, min_persistence: float, workers: int = 1) -> GridDiagrams:
    """Diagrams and critical vertices of a batch of grids (CubicalRipser in ``workers`` threads)."""
    results = batch_cubical_diagrams(list(grids), tau, min_persistence, workers=workers, with_critical=True)
    return GridDiagrams([d for d, _ in results], [c for _, c in results])


def consistency_loss(
    decoder,
    z: torch.Tensor,
    generated: list[torch.Tensor],
    computed: GridDiagrams,
    resolution: int,
    tau: float,
) -> torch.Tensor:
    """Eq. 8: ``mean_b sum_k d_PD(PD_k,phi(z_b), PD_k(f(., z_b)))``, differentiable in the network and the
    generators, through the critical vertices only.

    ``computed`` holds the diagrams of ``f(., z)`` on the grid (from :func:`evaluate_grid` and
    :func:`grid_diagrams`, no autograd). Each shape's generator output is matched to them, and the network is
    re-evaluated, with autograd, at the matched pairs' birth and death vertices alone: a diagram point is
    ``(f(v_birth), f(v_death))`` clamped to ``[-tau, tau]``. The whole grid is never backpropagated through.

    ``generated[k]`` is ``(B, n_k, 2)``.
    """
    coords = torch.as_tensor(grid_points(resolution), dtype=z.dtype, device=z.device)
    total = z.new_zeros(())
    for b in range(z.shape[0]):
        vertices = np.unique(np.concatenate([c.ravel() for c in computed.critical[b]] + [np.zeros(0, np.int64)]))
        values = decoder(z[b : b + 1], coords[torch.as_tensor(vertices, device=z.device)][None])[0]
        values = values.clamp(-tau, tau)
        lookup = {int(v): i for i, v in enumerate(vertices)}
        for k, gen in enumerate(generated):
            crit = computed.critical[b][k]
            index = torch.as_tensor([lookup[int(v)] for v in crit.ravel()], dtype=torch.long, device=z.device)
            target = values[index].reshape(-1, 2)
            # Deaths at tau (the essential class, and features outliving the clamp) are the constant tau: the
            # essential class's death vertex is only the grid maximum, which may lie below tau.
            dies_at_tau = torch.as_tensor(computed.diagrams[b][k][:, 1] >= tau, device=z.device)
            target = torch.stack([target[:, 0], torch.where(dies_at_tau, torch.full_like(target[:, 1], tau), target[:, 1])], 1)
            _, matching = pd_distance(gen[b].detach().cpu().numpy(), computed.diagrams[b][k], return_matching=True)
            total = total + matched_diagram_loss(gen[b], target, matching)
    return total / z.shape[0]
