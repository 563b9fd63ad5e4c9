"""Loss terms of the paper (eqs. 5, 7-10), in torch.

Shapes: ``pred``/``target`` ``(B, P)`` signed distances; ``x`` ``(B, P, 3)`` points; diagrams ``(n, 2)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np
import torch

from toposdf.field import GridDiagrams, grid_points_cached
from toposdf.surface_field import critical_vertices, surface_values
from toposdf.topology import pd_distance
from toposdf.transfer import pack_indices, to_device_packed, to_host


def sdf_data_loss(pred: torch.Tensor, target: torch.Tensor, delta: float = 0.1, hard: float = 0.0) -> torch.Tensor:
    """DeepSDF's data term: mean ``|clamp(pred, delta) - clamp(target, delta)|``. ``hard`` > 0: Curriculum
    DeepSDF's hard-sample weight (Duan et al. 2020, eq. 5), each sample's error times
    ``1 + hard sgn(target) sgn(target - pred)``: more where the prediction errs toward the surface (toward the
    other sign), as a thin bar's inside samples predicted outside do."""
    error = (pred.clamp(-delta, delta) - target.clamp(-delta, delta)).abs()
    if hard > 0:
        error = error * (1.0 + hard * torch.sign(target) * torch.sign(target - pred.detach()))
    return error.mean()


def spatial_gradient(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``d values / d x`` with a graph for higher derivatives: ``(B, P, 3)``."""
    return torch.autograd.grad(values.sum(), x, create_graph=True)[0]


def eikonal_loss(grad: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """``mean | ||grad f|| - 1 |^p`` (IGR)."""
    return (grad.norm(dim=-1) - 1.0).abs().pow(p).mean()


def normal_laplacian_loss(grad: torch.Tensor, x: torch.Tensor, form: str | None = None) -> torch.Tensor:
    """StEik's ``mean |n^T H n|`` with ``n = grad f / ||grad f||``.

    ``form`` None or ``"fixed_normal"``: ``H n`` is one Hessian-vector product by double backward, the gradient of
    ``grad f . n`` with ``n`` held fixed, so the network's gradient of the term drops one of the two ways ``n``
    depends on it. ``"steik"``: StEik's code, ``grad f . (1/2 grad ||grad f||^2) / (||grad f||^2 + 1e-5)``,
    differentiated whole. The values agree (to the ``1e-5``); the gradients agree at the geometric initialization
    and not on trained networks (``docs/method.md``). Requires ``grad`` from :func:`spatial_gradient` (so it has a
    graph) and a twice-differentiable network.
    """
    if form == "steik":
        squared = (grad * grad).sum(dim=-1)
        half_gradient = 0.5 * torch.autograd.grad(squared.sum(), x, create_graph=True)[0]  # H grad f
        return ((grad * half_gradient).sum(dim=-1) / (squared + 1e-5)).abs().mean()
    if form not in (None, "fixed_normal"):
        raise ValueError(f"steik_gradient: {form!r}: expected fixed_normal or steik")
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


def matching_parts(matching: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A matching of :func:`toposdf.topology.pd_distance` (``-1`` = the diagonal) as four index arrays: the matched
    pairs' generated and target indices, the generated points sent to the diagonal, the target points sent to it."""
    m = np.asarray(matching, np.int64).reshape(-1, 2)
    both = (m[:, 0] >= 0) & (m[:, 1] >= 0)
    return m[both, 0], m[both, 1], m[(m[:, 0] >= 0) & (m[:, 1] < 0), 0], m[(m[:, 0] < 0) & (m[:, 1] >= 0), 1]


def _matched_cost(generated: torch.Tensor, target: torch.Tensor, pair_a, pair_b, only_a, only_b) -> torch.Tensor:
    loss = (generated[pair_a] - target[pair_b]).pow(2).sum()
    pa, pb = generated[only_a], target[only_b]
    return loss + 0.5 * (pa[:, 1] - pa[:, 0]).pow(2).sum() + 0.5 * (pb[:, 1] - pb[:, 0]).pow(2).sum()


def matched_diagram_loss(
    generated: torch.Tensor, target: torch.Tensor, matching: np.ndarray
) -> torch.Tensor:
    """Eq. 1 evaluated on a fixed matching, differentiable in both diagrams.

    ``generated`` ``(n1, 2)`` and ``target`` ``(n2, 2)`` tensors; ``matching`` from
    :func:`toposdf.topology.pd_distance` (``-1`` = the diagonal). Matched pairs cost ``||p - q||^2``, points sent to
    the diagonal ``(death - birth)^2 / 2``.
    """
    return _matched_cost(generated, target, *pack_indices(list(matching_parts(matching)), generated.device))


def diagram_points(
    decoder, z: torch.Tensor, computed: GridDiagrams, resolution: int, tau: float
) -> list[list[torch.Tensor]]:
    """The diagrams of ``f(., z)`` as differentiable functions of the network, through the critical vertices.

    ``computed`` holds the diagrams and critical vertices of ``f(., z)`` on the grid (from
    :func:`toposdf.field.evaluate_grid` and :func:`toposdf.field.grid_diagrams`, no autograd, possibly from slightly
    older weights). The network is re-evaluated, with autograd, at those vertices alone: a diagram point is
    ``(f(v_birth), f(v_death))`` clamped to ``[-tau, tau]``. Deaths at ``tau`` (the essential class, and features
    outliving the clamp) are the constant ``tau``: the essential class's death vertex is only the grid maximum,
    which may lie below ``tau``. Where ``computed.joins`` marks a floating piece's joining saddle
    (``train.joint.join_tau``), its death keeps the value ``tau`` and takes the saddle's gradient (unclamped), so
    that eq. 8 can join the piece to the shape as well as delete it. The vertices' coordinates, indices and death
    flags of every shape go to the device in two copies (:mod:`toposdf.transfer`).

    Returns ``points[b][k]``, an ``(n_k, 2)`` tensor per shape and dimension, in the order of ``computed``.
    """
    coords = grid_points_cached(resolution)
    dims = [len(shape) for shape in computed.critical]
    vertices = [critical_vertices(critical) for critical in computed.critical]
    xs = to_device_packed([coords[v] for v in vertices], z.device, z.dtype)
    host = []
    for b, critical in enumerate(computed.critical):
        for k, crit in enumerate(critical):
            host += [np.searchsorted(vertices[b], crit.ravel()), computed.diagrams[b][k][:, 1] >= tau]
            if computed.joins is not None and k == 0:
                host.append(computed.joins[b])
    sent = iter(pack_indices(host, z.device))
    points: list[list[torch.Tensor]] = []
    for b in range(z.shape[0]):
        surface = computed.surface[b] if computed.surface is not None else None
        if surface is None:
            raw = decoder(z[b : b + 1], xs[b][None])[0]
        else:  # the surface distance at the same vertices, moved through their closest surface points
            raw = surface_values(decoder, z[b : b + 1], surface)
            if computed.field_gradient:  # and through the field at the vertices themselves
                field = decoder(z[b : b + 1], xs[b][None])[0]
                raw = raw + (field - field.detach())
        values = raw.clamp(-tau, tau)
        shape_points = []
        for k in range(dims[b]):
            index, dies_at_tau = next(sent), next(sent) != 0
            pairs = values[index].reshape(-1, 2)
            death = torch.where(dies_at_tau, torch.full_like(pairs[:, 1], tau), pairs[:, 1])
            if computed.joins is not None and k == 0:  # tau in value, the joining saddle's gradient
                beyond = raw[index].reshape(-1, 2)[:, 1]
                death = death + torch.where(next(sent) != 0, beyond - beyond.detach(), torch.zeros_like(death))
            shape_points.append(torch.stack([pairs[:, 0], death], 1))
        points.append(shape_points)
    return points


def match_diagrams(generated: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The optimal matching of eq. 1 between two diagrams (``-1`` = the diagonal), from :func:`pd_distance`."""
    return pd_distance(np.asarray(generated, np.float64), np.asarray(target, np.float64), return_matching=True)[1]


def solve_matchings(generated: list[torch.Tensor], targets, pool: Executor | None = None) -> list[list[np.ndarray]]:
    """Eq. 1's optimal matching of every ``generated[k][b]`` against ``targets[b][k]``, solved on the host (in the
    threads of ``pool`` when given). ``targets[b][k]``: a host array (matched at ``generated``'s precision) or a
    tensor; the generated diagrams and the tensor targets come back in one copy."""
    batch, dims = generated[0].shape[0], len(generated)
    precision = np.dtype(str(generated[0].dtype).removeprefix("torch."))
    on_device = [(b, k) for b in range(batch) for k in range(dims) if torch.is_tensor(targets[b][k])]
    host = to_host(list(generated) + [targets[b][k] for b, k in on_device])
    copied = dict(zip(on_device, host[dims:]))

    def target(b: int, k: int) -> np.ndarray:
        if (b, k) in copied:
            return copied[b, k].reshape(-1, 2)
        return np.asarray(targets[b][k], np.float64).reshape(-1, 2).astype(precision)

    jobs = [(host[k][b], target(b, k)) for b in range(batch) for k in range(dims)]
    solved = list((pool.map if pool is not None else map)(lambda job: match_diagrams(*job), jobs))
    return [solved[b * dims : (b + 1) * dims] for b in range(batch)]


def _on_device(targets, batch: int, dims: int, like: torch.Tensor) -> list[list[torch.Tensor]]:
    """``targets[b][k]`` as ``(m, 2)`` tensors of ``like``'s dtype on its device; the host arrays go in one copy."""
    host = [(b, k) for b in range(batch) for k in range(dims) if not torch.is_tensor(targets[b][k])]
    sent = dict(zip(host, to_device_packed([np.asarray(targets[b][k], np.float64).reshape(-1, 2) for b, k in host],
                                           like.device, like.dtype)))
    return [[sent[b, k] if (b, k) in sent else targets[b][k].to(like.dtype).reshape(-1, 2) for k in range(dims)]
            for b in range(batch)]


def diagram_fit_terms(generated: list[torch.Tensor], targets, matchings=None, anchors=None,
                      pool: Executor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean_b sum_k d_PD(generated[k][b], targets[b][k])`` (eq. 12's data term, and eq. 14's consistency
    term with the network fixed), differentiable in ``generated``, and the diagonal anchor.

    ``generated[k]`` is ``(B, n_k, 2)``; ``targets[b][k]`` an ``(m, 2)`` array or tensor (a constant, or
    differentiable as from :func:`diagram_points`). ``matchings[b][k]``, when given, is used instead of solving
    eq. 1 again (it must come from the same diagrams); otherwise :func:`solve_matchings` solves them, in ``pool``'s
    threads when given. The matchings' indices go to the device in one copy.

    The anchor is ``mean_b sum_k sum_j (birth_j - anchors[k])^2`` over the generated points that eq. 1's matching
    sends to the diagonal (``anchors[k]`` None: none in dimension k; ``anchors`` None: zero). Eq. 1 charges such
    a point by its persistence alone, so its birth is free, and an unused slot's birth drifts wherever the network
    takes it. Between two codes where a slot is used and unused, the generator then blends a real point with that
    birth: on the CPU default's tables, unused H1 slots sat at births +0.014 to +0.021 (the training tunnels are
    born at -0.024, inside the surface), and 38-51% of the generators' tunnels at z ~ N(0, I) were born outside
    the surface, rings that close only in the offset band around it (broken rails; docs/notebook.md, section 4e).
    Anchoring unused slots at the training points' mean birth changes no matched cost.
    """
    batch, dims = generated[0].shape[0], len(generated)
    if matchings is None:
        matchings = solve_matchings(generated, targets, pool)
    targets = _on_device(targets, batch, dims, generated[0])
    parts = iter(pack_indices([part for b in range(batch) for k in range(dims)
                               for part in matching_parts(matchings[b][k])], generated[0].device))
    fit, anchor = generated[0].new_zeros(()), generated[0].new_zeros(())
    for b in range(batch):
        for k, gen in enumerate(generated):
            pair_a, pair_b, only_a, only_b = (next(parts) for _ in range(4))
            fit = fit + _matched_cost(gen[b], targets[b][k], pair_a, pair_b, only_a, only_b)
            if anchors is not None and anchors[k] is not None:
                anchor = anchor + (gen[b][only_a, 0] - anchors[k]).pow(2).sum()
    return fit / batch, anchor / batch


def diagram_fit_loss(generated: list[torch.Tensor], targets, matchings=None,
                     pool: Executor | None = None) -> torch.Tensor:
    """The fit term of :func:`diagram_fit_terms` alone (eq. 12's data term; eq. 14's consistency term)."""
    return diagram_fit_terms(generated, targets, matchings, pool=pool)[0]


def _points(diagrams) -> list[np.ndarray]:
    """Per homology dimension, every ``(birth, death)`` point of the shapes' ``[PD0, PD1, PD2]``, concatenated."""
    return [np.concatenate([np.asarray(shape[k], np.float64).reshape(-1, 2) for shape in diagrams])
            for k in range(len(diagrams[0]) if diagrams else 0)]


def _births(diagrams) -> list[np.ndarray]:
    """Per homology dimension, the births of every point of the shapes' ``[PD0, PD1, PD2]``, concatenated."""
    return [points[:, 0] for points in _points(diagrams)]


def mean_births(diagrams) -> list[float | None]:
    """Per homology dimension, the mean birth of every point of the shapes' ``[PD0, PD1, PD2]`` (None where there
    is none): the anchors of :func:`diagram_fit_terms`."""
    return [float(b.mean()) if len(b) else None for b in _births(diagrams)]


def max_births(diagrams) -> list[float | None]:
    """Per homology dimension, the largest birth of any point of the shapes' ``[PD0, PD1, PD2]`` (None where there
    is none): the caps of :func:`shift_births`."""
    return [float(b.max()) if len(b) else None for b in _births(diagrams)]


def min_persistences(diagrams) -> list[float | None]:
    """Per homology dimension, the shortest persistence of any point of the shapes' ``[PD0, PD1, PD2]`` (None where
    there is none): the floors of :func:`snap_persistence`."""
    return [float((p[:, 1] - p[:, 0]).min()) if len(p) else None for p in _points(diagrams)]


def _per_dimension(generated: list[torch.Tensor], bounds: list[float | None] | None, move) -> list[torch.Tensor]:
    """``move(points, bound)`` on each dimension's generated points; ``bounds`` None, a None entry or no points leave
    that dimension's tensor as it is (the same object)."""
    if bounds is None:
        return generated
    return [points if bound is None or points.numel() == 0 else move(points, bound)
            for points, bound in zip(generated, bounds)]


def snap_persistence(generated: list[torch.Tensor], floors: list[float | None] | None) -> list[torch.Tensor]:
    """Round every generated point shorter than its dimension's floor (the shortest training persistence) to the
    nearer of the two things a training shape has there: a point at least that long or none. A point of
    persistence ``p < floor`` keeps its birth and gets death ``birth + floor`` where ``p >= floor / 2``, and death
    ``birth`` (the diagonal) below. ``generated[k]`` is ``(B, n_k, 2)``; ``floors`` None (or a None entry) leaves it
    as is.

    Between two training codes, a slot that one of them uses and the other parks on the diagonal comes out with a
    persistence between the two: a tunnel shorter than any training shape has (``docs/notebook.md``, section 4m). As
    a target of eq. 8 it shortens the real tunnel it is matched with, toward a break."""
    def snap(points: torch.Tensor, floor: float) -> torch.Tensor:
        birth, length = points[..., 0], points[..., 1] - points[..., 0]
        length = torch.where(length >= floor, length, torch.where(length >= floor / 2, floor, 0.0))
        return torch.stack([birth, birth + length], dim=-1)

    return _per_dimension(generated, floors, snap)


def shift_births(generated: list[torch.Tensor], caps: list[float | None] | None) -> list[torch.Tensor]:
    """Move every generated point whose birth exceeds its dimension's cap down the diagonal's direction, by
    ``birth - cap`` in both coordinates: its birth becomes the cap and its persistence is kept, so a slot on the
    diagonal stays there. ``generated[k]`` is ``(B, n_k, 2)``; ``caps`` None (or a None entry) leaves it as is.

    A PD generator's point born above every training point of its dimension (an H1 point born outside the surface,
    where no training shape has one) is a blend of a used slot with an unused one between training codes
    (``docs/notebook.md``, section 4e); as a target of eq. 8 it pulls a real tunnel's birth outward, toward a break."""
    def shift(points: torch.Tensor, cap: float) -> torch.Tensor:
        return points - (points[..., 0] - cap).clamp(min=0.0).unsqueeze(-1)

    return _per_dimension(generated, caps, shift)


def consistency_loss(
    decoder,
    z: torch.Tensor,
    generated: list[torch.Tensor],
    computed: GridDiagrams,
    resolution: int,
    tau: float,
    matchings=None,
    dims: Sequence[int] | None = None,
) -> torch.Tensor:
    """Eq. 8: ``mean_b sum_k d_PD(PD_k,phi(z_b), PD_k(f(., z_b)))``, differentiable in the network (through the
    critical vertices only, see :func:`diagram_points`) and in the generators. The whole grid is never
    backpropagated through.

    ``generated[k]`` is ``(B, n_k, 2)``. ``matchings[b][k]`` (generator output against ``computed``'s diagrams),
    when given, saves solving eq. 1 here: the training loop computes them in its persistence workers. ``dims``
    (None: every dimension) keeps the sum over ``k`` to those homology dimensions.
    """
    targets = diagram_points(decoder, z, computed, resolution, tau)
    if dims is not None:
        if max(dims) >= len(generated):
            raise ValueError(f"consistency_dims {list(dims)}: the diagrams have dimensions 0-{len(generated) - 1}")
        generated = [generated[k] for k in dims]
        targets = [[shape[k] for k in dims] for shape in targets]
        matchings = None if matchings is None else [[shape[k] for k in dims] for shape in matchings]
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
