"""Procedural chairs, tables and sofas built from boxes and cylinders: the synthetic dataset shipped with toposdf.

:mod:`.parts` holds the primitives and the shared parts, :mod:`.furniture` the three categories' builders,
:mod:`.dataset` the shapes by index and the files; their public names are re-exported here.

Every shape is the boolean union (manifold3d) of overlapping boxes and cylinders: one closed, watertight,
connected surface. Frame: ShapeNet-like, y up, the front is +z, units of about a metre (a chair is ~0.9 tall).
Shapes are deterministic in ``(category, index, seed)``.

The dataset carries the topological variety the paper is about. Leg stretchers, lower shelves, slatted, framed
or railed chair backs, open armrests, trestle and frame-sided table ends and slotted sofa backs make loops
(genus = first Betti number b1 of the solid, from 0 to about 10); pedestal bases, solid panels and solid arms
do not. Each builder counts the loops it means to make (``loops`` in the parameter dict) and
:func:`generate_shape` checks that the surface's Euler characteristic agrees.

Resolution: part sizes are chosen from the shape's bounding box so that, *after* normalization to the unit
sphere (bounding box centred, half-diagonal scaled to ``1 / 1.03``), every part is at least ``MIN_PART`` thick and
every opening at least ``MIN_GAP`` wide; a 48^3 grid over [-1, 1]^3 (spacing ~0.043) then resolves them. The
parameter dict records the thinnest part (``min_part``) and the narrowest opening (``min_gap``) in mesh units.
"""

from toposdf.synthetic.dataset import generate_shape, model_id, write_synthetic_dataset
from toposdf.synthetic.parts import MIN_GAP, MIN_PART

__all__ = ["MIN_GAP", "MIN_PART", "generate_shape", "model_id", "write_synthetic_dataset"]
