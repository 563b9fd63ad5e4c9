"""Persistence diagrams of signed distance grids and the distances between them: :mod:`.persistence` computes
and stores diagrams, :mod:`.distances` holds eqs. 1 and 2; their public names are re-exported here.

Conventions used throughout toposdf:

- A *grid* is an ``(N, N, N)`` float array of signed distances on the vertices of a regular grid over
  ``[-1, 1]^3``, indexed ``grid[i, j, k] = f(x_i, y_j, z_k)``, negative inside the shape.
- A *diagram* is an ``(n, 2)`` float64 array of ``(birth, death)`` pairs with ``birth <= death``.
- A shape's diagrams are the list ``[PD0, PD1, PD2]`` (components, tunnels/handles, voids).
- *Critical vertices* are ``(n, 2)`` int64 arrays of flat C-order grid indices ``[v_birth, v_death]``, so that
  ``grid.ravel()[critical] == diagram`` (after clamping): the diagram point is ``(f(v_birth), f(v_death))``.

The filtration is the sublevel-set filtration of ``clamp(f, -tau, tau)`` on the cubical complex whose vertices
are the grid points (a cube enters when its last vertex does), computed by CubicalRipser. gudhi is the
independent implementation used to check it (``gudhi_diagrams``), and every call into gudhi sits in this package.
"""

from toposdf.topology.distances import PDLapResult, augmented_cost_matrix, hera_distance, pd_distance, pd_lap
from toposdf.topology.persistence import (
    MAX_DIM,
    Diagrams,
    batch_cubical_diagrams,
    betti_numbers,
    cubical_diagrams,
    cubical_diagrams_with_critical,
    gudhi_diagrams,
    joining_diagrams,
    load_diagrams,
    off_diagonal,
    save_diagrams,
)

__all__ = [
    "MAX_DIM",
    "Diagrams",
    "PDLapResult",
    "augmented_cost_matrix",
    "batch_cubical_diagrams",
    "betti_numbers",
    "cubical_diagrams",
    "cubical_diagrams_with_critical",
    "gudhi_diagrams",
    "hera_distance",
    "joining_diagrams",
    "load_diagrams",
    "off_diagonal",
    "pd_distance",
    "pd_lap",
    "save_diagrams",
]
