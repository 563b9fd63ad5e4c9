"""Eq. 8 on the distance of the synthetic shape's surface, rather than on the network's field.

Tables 1 and 2 score a generated shape from its marching-cubes mesh: the diagrams of that mesh's exact signed
distance on the evaluation grid (``evaluation.score_from: meshes``). The network's field ``f`` is only trained to be
a distance, and inside thin parts it is shallower than its own surface's distance (docs/notebook.md, 4k): a thick
joint whose surface bulges shows as an interior H0 pair ("lump") on the mesh's distance but not in ``f``, so eq. 8
on ``f`` can flatten the field there without moving the surface. With ``train.joint.synthetic_field: surface`` the
synthetic shapes' diagrams are those of ``D``, the signed distance to the zero level set of ``f`` on the grid (its
marching-cubes mesh, as the evaluation takes it), and eq. 8 reaches the network through the surface:

    ``D_theta(v) = D(v) + (f_theta(p_v) - sg f_theta(p_v)) / |grad f(p_v)|``,

``p_v`` the closest surface point of the critical vertex ``v`` and ``sg`` stop-gradient. Its value is ``D(v)``;
its gradient is how ``D(v)`` moves when the surface moves at ``p_v`` (pushing the surface outwards by ``delta``
there, ``f(p_v)`` falls by ``|grad f| delta`` and so does ``D(v)``, inside or outside). That first-order term
cannot make a piece vanish or appear; ``synthetic_field: both`` adds the field's own gradient at the vertex,
``f_theta(v) - sg f_theta(v)``, which can (a floating piece's birth vertex pushed above 0 takes the piece off the
surface). A shape without a surface (no sign change on the grid) keeps the network field's diagrams and gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import igl
import numpy as np
import torch

from toposdf.data import grid_distance, grid_points
from toposdf.field import extract_mesh
from toposdf.topology import joining_diagrams

MIN_GRADIENT = 0.1  # |grad f| below this at a surface point is taken as this (a flat field would blow the step up)


@dataclass
class SurfaceVertices:
    """A synthetic shape's critical vertices on its surface distance: ``vertices`` (sorted flat indices), their
    distance ``values`` and ``closest`` ``(n, 3)`` points of the surface."""

    vertices: np.ndarray
    values: np.ndarray
    closest: np.ndarray


def surface_diagrams(grid: np.ndarray, tau: float, min_persistence: float, crop: bool = True,
                     join_tau: float | None = None):
    """``(diagrams, critical, surface, joins)`` of the surface distance of the network grid ``grid`` (``(N, N, N)``
    over ``[-1, 1]^3``), or None where the grid has no surface (every value of one sign). ``joins``: None, or with
    ``join_tau`` the floating pieces' joining saddles of :func:`toposdf.topology.joining_diagrams` (the distance
    then exact up to ``join_tau``).

    The distance is the evaluation's (:func:`toposdf.data.sdf_grid` with ``band=tau``: exact where it may be below
    ``tau``, a lower bound elsewhere); its sign is the grid's own, which is the marching-cubes surface's side at
    every grid vertex (the surface crosses each edge between vertices of opposite signs), so the winding number the
    evaluation takes for a mesh of unknown origin is not needed."""
    grid = np.asarray(grid)
    vertices, faces = extract_mesh(grid)
    if len(faces) == 0:
        return None
    distance, closest = grid_distance(vertices, faces, grid.shape[0], band=join_tau or tau, closest=True)
    signed = np.where(grid.ravel() < 0, -distance, distance).reshape(grid.shape).astype(np.float32)
    diagrams, critical, joins = joining_diagrams(signed, tau, join_tau, min_persistence, crop)
    used = critical_vertices(critical)
    nearest = closest[used]
    beyond = np.isnan(nearest[:, 0])
    if beyond.any():  # vertices beyond the band (their values are clamped: only the point matters)
        points = np.ascontiguousarray(grid_points(grid.shape[0])[used[beyond]])
        nearest[beyond] = igl.point_mesh_squared_distance(points, vertices, faces)[2]
    return diagrams, critical, SurfaceVertices(used, signed.ravel()[used].astype(np.float64), nearest), joins


def critical_vertices(critical: list[np.ndarray]) -> np.ndarray:
    """The sorted flat indices of every critical vertex of one shape's diagrams (``critical[k]``: pair × 2)."""
    return np.unique(np.concatenate([c.ravel() for c in critical] + [np.zeros(0, np.int64)]))


def surface_values(decoder, z: torch.Tensor, surface: SurfaceVertices) -> torch.Tensor:
    """``D_theta`` at ``surface.vertices`` for the shape ``f(., z)`` (``z`` ``(1, L)``): the values of ``D``, with
    the gradient of the surface moving at each vertex's closest point (see the module's docstring)."""
    device, dtype = z.device, z.dtype
    values = torch.as_tensor(surface.values, dtype=dtype, device=device)
    if len(values) == 0:
        return values
    points = torch.as_tensor(surface.closest, dtype=dtype, device=device).requires_grad_(True)
    f = decoder(z, points[None])[0]
    (gradient,) = torch.autograd.grad(f.sum(), points, retain_graph=True)
    norm = gradient.detach().norm(dim=-1).clamp_min(MIN_GRADIENT)
    return values + (f - f.detach()) / norm


__all__ = ["SurfaceVertices", "critical_vertices", "surface_diagrams", "surface_values"]
