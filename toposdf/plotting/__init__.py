"""Headless drawing of meshes and persistence diagrams (matplotlib with the Agg backend, CPU only): :mod:`.meshes`,
:mod:`.diagrams`, and :mod:`.save` (the backend and PNG output); their public names are re-exported here.

Conventions
-----------
* A mesh is ``(V, F)``: ``V`` an ``(nv, 3)`` float array, ``F`` an ``(nf, 3)`` int array of vertex indices.
  y is up (ShapeNet's convention); coordinates are normalised to the unit sphere, but nothing here relies on it.
* A persistence diagram is an ``(n, 2)`` float array of (birth, death) with birth <= death. A shape's diagrams
  are ``[PD0, PD1, PD2]`` (components, loops/tunnels, voids). Values are signed distances clamped to
  ``[-tau, tau]``; the one essential H0 class dies at ``tau``.

Every function that creates a figure closes it; functions that take an ``ax`` draw on it and leave the figure
to the caller.
"""

from toposdf.plotting.save import save_figure  # first: it selects the Agg backend
from toposdf.plotting.diagrams import DIM_STYLE, diagram_overview, plot_diagrams  # noqa: I001
from toposdf.plotting.meshes import decimate, mesh_contact_sheet, render_mesh

__all__ = ["DIM_STYLE", "decimate", "diagram_overview", "mesh_contact_sheet", "plot_diagrams", "render_mesh",
           "save_figure"]
