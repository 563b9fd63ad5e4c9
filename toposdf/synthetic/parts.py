"""The building blocks of the synthetic shapes: :class:`Parts` (primitives to unite, with the thinnest part, the
narrowest opening and the loops they make), the sizes that stay resolvable, and the parts shared by the
categories (legs, rails, bars, pedestals, stretcher rings). Sizes are in mesh units (metres); see
:mod:`toposdf.synthetic` for the frame and the resolution argument."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import trimesh

#: After normalization to the unit sphere: thinnest part and narrowest opening (a 48^3 grid has spacing 0.043).
MIN_PART = 0.08
MIN_GAP = 0.10
#: The normalization margin of :func:`toposdf.data.normalize_mesh` (DeepSDF's 1.03).
NORMALIZATION_MARGIN = 1.03
#: Extra factor on the minimum part and gap sizes (mesh units), over the bound computed from the bounding box.
SAFETY = 1.05
#: Overlap (metres) by which a part reaches into the part it is joined to, beyond merely touching it.
OVERLAP = 0.01
#: Cylinder facet counts: thin parts (legs, rails, columns) and broad discs (round tops, pedestal discs).
SECTIONS_THIN = 16
SECTIONS_BROAD = 24

Vec3 = Sequence[float]


class Parts:
    """Primitives to be united, with the thinnest part, the narrowest opening and the loops they make.

    All sizes are in mesh units (metres).
    """

    def __init__(self) -> None:
        self.meshes: list[trimesh.Trimesh] = []
        self.min_part = np.inf
        self.min_gap = np.inf
        self.loops = 0

    def box(self, lo: Vec3, hi: Vec3) -> None:
        """Axis-aligned box between corners ``lo`` and ``hi`` (each ``(3,)``)."""
        lo_, hi_ = np.asarray(lo, float), np.asarray(hi, float)
        size = hi_ - lo_
        if np.any(size <= 0):
            raise AssertionError(f"degenerate box {lo_} {hi_}")
        center = trimesh.transformations.translation_matrix((lo_ + hi_) / 2)
        self.meshes.append(trimesh.creation.box(extents=size, transform=center))
        self.min_part = min(self.min_part, float(size.min()))

    def cylinder(self, p0: Vec3, p1: Vec3, radius: float, sections: int = SECTIONS_THIN) -> None:
        """Cylinder of ``radius`` whose axis runs from point ``p0`` to point ``p1`` (each ``(3,)``)."""
        length = float(np.linalg.norm(np.subtract(p1, p0)))
        if length <= 0 or radius <= 0:
            raise AssertionError(f"degenerate cylinder {p0} {p1} r={radius}")
        self.meshes.append(trimesh.creation.cylinder(radius=radius, segment=[p0, p1], sections=sections))
        self.min_part = min(self.min_part, 2 * radius, length)

    def opening(self, width: float, loops: int = 0) -> None:
        """Record an opening of the given narrowest ``width`` and the ``loops`` (tunnels) that parts make."""
        if width <= 0:
            raise AssertionError(f"parts overlap where an opening of width {width} was meant")
        self.min_gap = min(self.min_gap, float(width))
        self.loops += int(loops)

    def union(self) -> trimesh.Trimesh:
        """The boolean union of all primitives (manifold3d engine)."""
        return trimesh.boolean.union(self.meshes, engine="manifold")


def resolvable_sizes(extents: Vec3) -> tuple[float, float]:
    """The thinnest part and narrowest opening (mesh units) that stay resolvable for a shape whose bounding box
    is at most ``extents`` ``(3,)``: ``MIN_PART`` and ``MIN_GAP`` divided by the smallest normalization scale."""
    units_per_normalized = NORMALIZATION_MARGIN * 0.5 * float(np.linalg.norm(extents)) * SAFETY
    return MIN_PART * units_per_normalized, MIN_GAP * units_per_normalized


def leg(parts: Parts, x: float, z: float, bottom: float, top: float, size: float, round_: bool) -> None:
    """A vertical leg centred at ``(x, z)`` from height ``bottom`` to ``top``: a square post of side ``size``
    or a cylinder of diameter ``size``."""
    if round_:
        parts.cylinder([x, bottom, z], [x, top, z], size / 2)
    else:
        parts.box([x - size / 2, bottom, z - size / 2], [x + size / 2, top, z + size / 2])


def rail_x(parts: Parts, x0: float, x1: float, y: float, z: float, t: float) -> None:
    """A square rail of side ``t`` along x from ``x0`` to ``x1``, centred at height ``y`` and depth ``z``."""
    parts.box([x0, y - t / 2, z - t / 2], [x1, y + t / 2, z + t / 2])


def rail_z(parts: Parts, z0: float, z1: float, y: float, x: float, t: float) -> None:
    """A square rail of side ``t`` along z from ``z0`` to ``z1``, centred at height ``y`` and abscissa ``x``."""
    parts.box([x - t / 2, y - t / 2, z0], [x + t / 2, y + t / 2, z1])


def even_bars(lo: float, hi: float, n: int, t: float) -> tuple[np.ndarray, float]:
    """Centres ``(n,)`` of ``n`` bars of thickness ``t`` spread over ``[lo, hi]`` with ``n + 1`` equal gaps, and
    the gap width (the interval's ends are the faces of the parts the bars run between)."""
    gap = (hi - lo - n * t) / (n + 1)
    return lo + gap * (np.arange(n) + 1) + t * (np.arange(n) + 0.5), gap


def pedestal(parts: Parts, rng: np.random.Generator, top: float, radius: float, t: float) -> str:
    """A central column up to height ``top`` on a disc or on 4-5 star feet reaching ``radius``; no loops.

    ``t`` is the part thickness (disc height, foot diameter); the column is ``2 t`` across.
    """
    parts.cylinder([0, 0.0, 0], [0, top, 0], radius=t)
    if rng.random() < 0.5:
        parts.cylinder([0, 0.0, 0], [0, t, 0], radius=radius, sections=SECTIONS_BROAD)
        return "disc"
    n_feet = int(rng.integers(4, 6))
    for k in range(n_feet):
        a = 2 * np.pi * k / n_feet + np.pi / 2
        parts.cylinder([0, t / 2, 0], [radius * np.cos(a), t / 2, radius * np.sin(a)], radius=t / 2)
    return f"star{n_feet}"


def ellipse_points(n: int, ax: float, az: float) -> np.ndarray:
    """``n`` points ``(n, 2)`` (x, z) on the ellipse with semi-axes ``ax``, ``az``, the first at the front (+z)."""
    a = np.pi / 2 + 2 * np.pi * np.arange(n) / n
    return np.stack([ax * np.cos(a), az * np.sin(a)], axis=1)


def ring_stretchers(parts: Parts, points: np.ndarray, y: float, t: float) -> None:
    """Round stretchers of diameter ``t`` at height ``y`` joining consecutive leg centres ``points`` ``(n, 2)``
    in a closed ring (the legs must be wider than ``t`` so that the rail ends lie inside them)."""
    for (x0, z0), (x1, z1) in zip(points, np.roll(points, -1, axis=0)):
        parts.cylinder([x0, y, z0], [x1, y, z1], t / 2)
