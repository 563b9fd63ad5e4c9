"""Procedural chairs, tables and sofas built from boxes and cylinders: the synthetic dataset shipped with toposdf.

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

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import trimesh
from tqdm import tqdm

from toposdf.data import SYNSETS, mesh_path
from toposdf.io import atomic_open, atomic_write_json

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


def model_id(category: str, index: int) -> str:
    """The model id of a synthetic shape, e.g. ``syn_chair_00007``."""
    _check_category(category)
    return f"syn_{category}_{int(index):05d}"


def _check_category(category: str) -> None:
    if category not in SYNSETS:
        raise ValueError(f"unknown category {category!r}; expected one of {sorted(SYNSETS)}")


# --------------------------------------------------------------------------------------------------------------
# Primitives and bookkeeping
# --------------------------------------------------------------------------------------------------------------
class _Parts:
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


def _resolution(extents: Vec3) -> tuple[float, float]:
    """The thinnest part and narrowest opening (mesh units) that stay resolvable for a shape whose bounding box
    is at most ``extents`` ``(3,)``: ``MIN_PART`` and ``MIN_GAP`` divided by the smallest normalization scale."""
    units_per_normalized = NORMALIZATION_MARGIN * 0.5 * float(np.linalg.norm(extents)) * SAFETY
    return MIN_PART * units_per_normalized, MIN_GAP * units_per_normalized


def _leg(parts: _Parts, x: float, z: float, bottom: float, top: float, size: float, round_: bool) -> None:
    """A vertical leg centred at ``(x, z)`` from height ``bottom`` to ``top``: a square post of side ``size``
    or a cylinder of diameter ``size``."""
    if round_:
        parts.cylinder([x, bottom, z], [x, top, z], size / 2)
    else:
        parts.box([x - size / 2, bottom, z - size / 2], [x + size / 2, top, z + size / 2])


def _rail_x(parts: _Parts, x0: float, x1: float, y: float, z: float, t: float) -> None:
    """A square rail of side ``t`` along x from ``x0`` to ``x1``, centred at height ``y`` and depth ``z``."""
    parts.box([x0, y - t / 2, z - t / 2], [x1, y + t / 2, z + t / 2])


def _rail_z(parts: _Parts, z0: float, z1: float, y: float, x: float, t: float) -> None:
    """A square rail of side ``t`` along z from ``z0`` to ``z1``, centred at height ``y`` and abscissa ``x``."""
    parts.box([x - t / 2, y - t / 2, z0], [x + t / 2, y + t / 2, z1])


def _even_bars(lo: float, hi: float, n: int, t: float) -> tuple[np.ndarray, float]:
    """Centres ``(n,)`` of ``n`` bars of thickness ``t`` spread over ``[lo, hi]`` with ``n + 1`` equal gaps, and
    the gap width (the interval's ends are the faces of the parts the bars run between)."""
    gap = (hi - lo - n * t) / (n + 1)
    return lo + gap * (np.arange(n) + 1) + t * (np.arange(n) + 0.5), gap


def _pedestal(parts: _Parts, rng: np.random.Generator, top: float, radius: float, t: float) -> str:
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


def _ellipse_points(n: int, ax: float, az: float) -> np.ndarray:
    """``n`` points ``(n, 2)`` (x, z) on the ellipse with semi-axes ``ax``, ``az``, the first at the front (+z)."""
    a = np.pi / 2 + 2 * np.pi * np.arange(n) / n
    return np.stack([ax * np.cos(a), az * np.sin(a)], axis=1)


def _ring_stretchers(parts: _Parts, points: np.ndarray, y: float, t: float) -> None:
    """Round stretchers of diameter ``t`` at height ``y`` joining consecutive leg centres ``points`` ``(n, 2)``
    in a closed ring (the legs must be wider than ``t`` so that the rail ends lie inside them)."""
    for (x0, z0), (x1, z1) in zip(points, np.roll(points, -1, axis=0)):
        parts.cylinder([x0, y, z0], [x1, y, z1], t / 2)


# --------------------------------------------------------------------------------------------------------------
# Chairs (seat ~0.45 high, back to ~0.9; front +z)
# --------------------------------------------------------------------------------------------------------------
def _chair_base(parts: _Parts, rng: np.random.Generator, base: str, dims: dict, info: dict) -> None:
    """Legs (3, 4 or 5, optional stretchers) or a pedestal under the seat."""
    w, d, seat_y, seat_t, t, tl = (dims[k] for k in ("w", "d", "seat_y", "seat_t", "t", "tl"))
    leg_top = seat_y - seat_t / 2
    xs, zs = w / 2 - tl / 2 - OVERLAP, d / 2 - tl / 2 - OVERLAP
    info["n_legs"], info["stretchers"] = 0, "none"
    if base == "pedestal":
        info["pedestal"] = _pedestal(parts, rng, leg_top, dims["pedestal_r"], t)
        return
    y = float(rng.uniform(0.12, 0.2))  # stretcher height (centre)
    if base == "legs4":
        round_legs = bool(rng.random() < 0.35)
        for x in (-xs, xs):
            for z in (-zs, zs):
                _leg(parts, x, z, 0.0, leg_top, tl, round_legs)
        stretchers = str(rng.choice(["none", "none", "box", "H", "front_back", "sides"]))
        loops = {"none": 0, "box": 4, "H": 3, "front_back": 2, "sides": 2}[stretchers]
        if stretchers in ("box", "front_back"):
            for z in (-zs, zs):
                _rail_x(parts, -xs, xs, y, z, t)
        if stretchers in ("box", "H", "sides"):
            for x in (-xs, xs):
                _rail_z(parts, -zs, zs, y, x, t)
        if stretchers == "H":
            _rail_x(parts, -xs, xs, y, 0.0, t)
        info["n_legs"], info["round_legs"] = 4, round_legs
    else:
        n = 3 if base == "legs3" else 5
        points = _ellipse_points(n, xs, zs)
        for x, z in points:
            _leg(parts, x, z, 0.0, leg_top, tl, True)
        stretchers = str(rng.choice(["none", "ring"]))
        if stretchers == "ring":
            _ring_stretchers(parts, points, y, t)
        loops = n if stretchers == "ring" else 0
        info["n_legs"], info["round_legs"] = n, True
    if stretchers != "none":
        parts.opening(seat_y - seat_t - (y + t / 2), loops)
        info["stretcher_y"] = round(y, 6)
    info["stretchers"] = stretchers


def _chair_back(parts: _Parts, back: str, dims: dict, info: dict) -> None:
    """A solid panel, or two posts and a top rail (an open frame) with vertical slats or horizontal rails."""
    w, d, seat_y, seat_t, top, t, tl = (dims[k] for k in ("w", "d", "seat_y", "seat_t", "top", "t", "tl"))
    xs = w / 2 - tl / 2 - OVERLAP
    zb = -d / 2 + tl / 2 + OVERLAP  # the back's plane
    info["n_slats"], info["n_rails"] = dims["n_slats"], dims["n_rails"]
    if back == "panel":
        parts.box([-w / 2 + OVERLAP, seat_y - seat_t / 2, zb - tl / 2], [w / 2 - OVERLAP, top, zb + tl / 2])
        return
    for x in (-xs, xs):
        _leg(parts, x, zb, seat_y - seat_t / 2, top - t / 2, tl, False)
    parts.box([-w / 2, top - t, zb - tl / 2], [w / 2, top, zb + tl / 2])  # top rail, past the posts
    inner_w = 2 * xs - tl  # between the posts
    inner_h = top - t - seat_y  # between seat and top rail
    if back == "slats":
        n = dims["n_slats"]
        centers, gap = _even_bars(-inner_w / 2, inner_w / 2, n, t)
        for c in centers:
            parts.box([c - t / 2, seat_y - seat_t / 2, zb - t / 2], [c + t / 2, top - t / 2, zb + t / 2])
        parts.opening(min(gap, inner_h), n + 1)
    elif back == "rails":
        n = dims["n_rails"]
        centers, gap = _even_bars(seat_y, top - t, n, t)
        for y in centers:
            _rail_x(parts, -xs, xs, y, zb, t)
        parts.opening(min(inner_w, gap), n + 1)
    else:  # open frame
        parts.opening(min(inner_w, inner_h), 1)


def _chair_arms(parts: _Parts, rng: np.random.Generator, dims: dict, info: dict) -> None:
    """Two armrests from the back to the front, each on a front support rising from the seat: a loop each."""
    w, d, seat_y, seat_t, t, tl = (dims[k] for k in ("w", "d", "seat_y", "seat_t", "t", "tl"))
    xs, zs = w / 2 - tl / 2 - OVERLAP, d / 2 - tl / 2 - OVERLAP
    zb = -d / 2 + tl / 2 + OVERLAP
    arm_y = seat_y + float(rng.uniform(0.18, 0.24))  # armrest centre
    for x in (-xs, xs):
        _rail_z(parts, zb, d / 2, arm_y, x, t)
        _leg(parts, x, zs, seat_y - seat_t / 2, arm_y, tl, False)
    parts.opening(min(arm_y - t / 2 - seat_y, (zs - tl / 2) - (zb + tl / 2)), 2)
    info["arm_y"] = round(arm_y, 6)


def _chair(rng: np.random.Generator) -> tuple[_Parts, dict]:
    """A chair: seat, base (3-5 legs with optional stretchers, or a pedestal), back (panel, frame, slats or
    rails) and optional armrests."""
    base = str(rng.choice(["legs4", "legs4", "legs4", "legs3", "legs5", "pedestal"]))
    back = str(rng.choice(["panel", "panel", "frame", "slats", "slats", "rails"]))
    arms = bool(rng.random() < 0.3)
    n_slats = int(rng.integers(2, 6)) if back == "slats" else 0
    n_rails = int(rng.integers(1, 4)) if back == "rails" else 0
    w0, d = float(rng.uniform(0.44, 0.56)), float(rng.uniform(0.42, 0.52))
    seat_y, back_h0 = float(rng.uniform(0.40, 0.48)), float(rng.uniform(0.36, 0.5))
    t0, seat_t0 = float(rng.uniform(0.04, 0.055)), float(rng.uniform(0.05, 0.07))
    pedestal_r = 0.5 * min(w0, d) * 0.9
    # Widen the chair for many slats, heighten the back for many rails (a fixed point: sizes depend on the box).
    w, back_h = w0, back_h0
    for _ in range(4):
        extents = [max(w, 2 * pedestal_r + t0), seat_y + back_h, max(d, 2 * pedestal_r + t0)]
        t_min, g_min = _resolution(extents)
        t = max(t0, t_min)
        tl = 1.25 * t  # legs and posts: wider than the rails they receive
        w = max(w0, (n_slats * t + (n_slats + 1) * g_min) + 2 * tl + 2 * OVERLAP)
        back_h = max(back_h0, (n_rails * t + (n_rails + 1) * g_min) + t)
    seat_t = max(seat_t0, t_min)
    dims = dict(w=w, d=d, seat_y=seat_y, seat_t=seat_t, top=seat_y + back_h, t=t, tl=tl, pedestal_r=pedestal_r,
                n_slats=n_slats, n_rails=n_rails)
    parts = _Parts()
    parts.box([-w / 2, seat_y - seat_t, -d / 2], [w / 2, seat_y, d / 2])
    info: dict = {"base": base, "back": back, "arms": arms}
    _chair_base(parts, rng, base, dims, info)
    _chair_back(parts, back, dims, info)
    if arms:
        _chair_arms(parts, rng, dims, info)
    info.update(width=w, depth=d, height=seat_y + back_h, seat_y=seat_y, thickness=t)
    return parts, info


# --------------------------------------------------------------------------------------------------------------
# Tables (top ~0.7 high; front +z)
# --------------------------------------------------------------------------------------------------------------
def _table_legs(parts: _Parts, rng: np.random.Generator, n_legs: int, dims: dict, info: dict) -> None:
    """Four or six legs with nothing, stretchers (a front footrest, front/back, H or a box), an apron, a lower
    shelf joined to the legs, or a shelf and box stretchers."""
    w, d, h, top_t, t, tl, inset = (dims[k] for k in ("w", "d", "h", "top_t", "t", "tl", "inset"))
    xs, zs = inset * w / 2 - tl / 2 - 0.03, inset * d / 2 - tl / 2 - 0.03
    round_legs = bool(rng.random() < 0.4)
    xs_legs = (-xs, 0.0, xs) if n_legs == 6 else (-xs, xs)
    for x in xs_legs:
        for z in (-zs, zs):
            _leg(parts, x, z, 0.0, h - top_t / 2, tl, round_legs)
    options = ["none", "none", "footrest", "front_back", "box", "apron", "shelf", "shelf_box"]
    if n_legs == 4:
        options.append("H")
    extra = str(rng.choice(options))
    under_top = h - top_t
    y_shelf = float(rng.uniform(0.1, 0.18))
    y_rail = float(rng.uniform(0.12, 0.25)) if extra != "shelf_box" else float(rng.uniform(0.38, 0.45))
    if extra in ("footrest", "front_back", "box", "H", "shelf_box"):
        for z in (-zs, zs):
            if extra != "H" and not (extra == "footrest" and z < 0):
                _rail_x(parts, -xs, xs, y_rail, z, t)
        for x in (-xs, xs):
            if extra not in ("footrest", "front_back"):
                _rail_z(parts, -zs, zs, y_rail, x, t)
        if extra == "H":
            _rail_x(parts, -xs, xs, y_rail, 0.0, t)
        per_side = n_legs // 2 - 1  # loops of one rail along x through the legs of one side
        ring = {"footrest": per_side, "front_back": 2 * per_side, "box": n_legs, "H": 3, "shelf_box": n_legs}[extra]
        parts.opening(under_top - (y_rail + t / 2), ring)
        info["stretcher_y"] = round(y_rail, 6)
    if extra in ("shelf", "shelf_box"):
        parts.box([-xs, y_shelf - t / 2, -zs], [xs, y_shelf + t / 2, zs])
        above = (y_rail - t / 2) if extra == "shelf_box" else under_top
        # Shelf and legs: n_legs parallel paths from the shelf up to the next level, n_legs - 1 loops.
        parts.opening(above - (y_shelf + t / 2), n_legs - 1)
        info["shelf_y"] = round(y_shelf, 6)
    if extra == "apron":  # boards flush under the top between the legs, front and back: no opening
        for z in (-zs, zs):
            parts.box([-xs, under_top - 0.1, z - t / 2], [xs, h - top_t / 2, z + t / 2])
    info.update(n_legs=n_legs, round_legs=round_legs, extra=extra)


def _table_ends(parts: _Parts, rng: np.random.Generator, style: str, dims: dict, info: dict) -> None:
    """Two end frames under a rectangular top, each open: a trestle (two legs on a foot, with 1-2 rails below
    the top) or a frame side (stiles on a foot with 1-3 windows); optionally joined by a low stretcher."""
    w, d, h, top_t, t, tl = (dims[k] for k in ("w", "d", "h", "top_t", "t", "tl"))
    g_min = dims["g_min"]
    x_end = w / 2 - tl / 2 - 0.06
    zs = d / 2 - tl / 2 - 0.04
    under_top = h - top_t
    if style == "trestle":
        n_rails = int(rng.integers(1, 3))
        centers, gap = _even_bars(t, under_top, n_rails, t)  # between the foot's top and the top's underside
        for sx in (-x_end, x_end):
            for z in (-zs, zs):
                _leg(parts, sx, z, 0.0, h - top_t / 2, tl, False)
            _rail_z(parts, -zs - tl / 2 - 0.03, zs + tl / 2 + 0.03, t / 2, sx, t)  # foot
            for y in centers:
                _rail_z(parts, -zs, zs, y, sx, t)
        # Per end: two legs between foot, rails and top, n_rails + 1 loops.
        parts.opening(min(gap, 2 * zs - tl), 2 * (n_rails + 1))
        info["n_end_rails"] = n_rails
    else:  # frame sides with windows
        n_windows = int(rng.integers(1, 4))
        inner = 2 * zs - tl
        while n_windows > 1 and (inner - (n_windows - 1) * t) / n_windows < g_min:
            n_windows -= 1
        centers, gap = _even_bars(-inner / 2, inner / 2, n_windows - 1, t)
        for sx in (-x_end, x_end):
            for z in (-zs, zs):
                _leg(parts, sx, z, 0.0, h - top_t / 2, tl, False)  # stiles
            _rail_z(parts, -zs, zs, t / 2, sx, t)  # bottom rail
            for zc in centers:  # mullions
                parts.box([sx - t / 2, t / 2, zc - t / 2], [sx + t / 2, h - top_t / 2, zc + t / 2])
        parts.opening(min(gap, under_top - t), 2 * n_windows)
        info["n_windows"] = n_windows
    stretcher = bool(rng.random() < 0.6)
    if stretcher:  # a low stretcher between the two end feet
        _rail_x(parts, -x_end, x_end, t / 2, 0.0, t)
        parts.opening(2 * x_end - tl, 1)
    info.update(n_legs=4, stretcher=stretcher)


def _table(rng: np.random.Generator) -> tuple[_Parts, dict]:
    """A table: a rectangular or round top on 4-6 legs (with stretchers, apron or shelf), a pedestal, trestle
    ends or frame sides with windows."""
    round_top = bool(rng.random() < 0.3)
    if round_top:
        base = str(rng.choice(["legs4", "legs4", "pedestal"]))
    else:
        base = str(rng.choice(["legs4", "legs4", "legs6", "pedestal", "trestle", "frame_sides"]))
    w = float(rng.uniform(1.2, 1.6) if base == "legs6" else rng.uniform(0.9, 1.4))
    d = w if round_top else float(rng.uniform(0.6, 0.9))
    h = float(rng.uniform(0.65, 0.76))
    t_min, g_min = _resolution([w, h, d])
    top_t = max(float(rng.uniform(0.04, 0.07)), t_min)
    t = max(float(rng.uniform(0.04, 0.06)), t_min)
    dims = dict(w=w, d=d, h=h, top_t=top_t, t=t, tl=1.25 * t, g_min=g_min, inset=0.72 if round_top else 1.0)
    parts = _Parts()
    if round_top:
        parts.cylinder([0, h - top_t, 0], [0, h, 0], radius=w / 2, sections=SECTIONS_BROAD)
    else:
        parts.box([-w / 2, h - top_t, -d / 2], [w / 2, h, d / 2])
    info: dict = {"top": "round" if round_top else "rect", "base": base}
    if base in ("legs4", "legs6"):
        _table_legs(parts, rng, 6 if base == "legs6" else 4, dims, info)
    elif base == "pedestal":
        info["n_legs"] = 0
        info["pedestal"] = _pedestal(parts, rng, h - top_t / 2, 0.3 * min(w, d) + 0.05, t)
    else:
        _table_ends(parts, rng, base, dims, info)
    info.update(width=w, depth=d, height=h, thickness=t)
    return parts, info


# --------------------------------------------------------------------------------------------------------------
# Sofas (seat ~0.45 high, about 1.8 wide; front +z)
# --------------------------------------------------------------------------------------------------------------
def _sofa_back(parts: _Parts, rng: np.random.Generator, dims: dict, info: dict) -> None:
    """The back, solid or (sometimes) with a slot through it above the seat: one loop."""
    w, d, y0, seat_y, back_top, back_t, g_min = (
        dims[k] for k in ("w", "d", "y0", "seat_y", "back_top", "back_t", "g_min"))
    z0, z1 = -d / 2, -d / 2 + back_t
    slot = dims["slot"]
    if not slot:
        parts.box([-w / 2, y0, z0], [w / 2, back_top, z1])
    else:
        slot_w = float(rng.uniform(0.3, 0.5)) * w
        slot_h = max(float(rng.uniform(0.1, 0.14)), 1.2 * g_min)
        slot_y = seat_y + 0.5 * (back_top - seat_y - slot_h)  # bottom of the slot, centred above the seat
        parts.box([-w / 2, y0, z0], [w / 2, slot_y, z1])  # below the slot
        parts.box([-w / 2, slot_y + slot_h, z0], [w / 2, back_top, z1])  # above
        for sx in (-1, 1):  # beside
            inner, outer = sx * slot_w / 2, sx * w / 2
            parts.box([min(inner, outer), slot_y - OVERLAP, z0], [max(inner, outer), slot_y + slot_h + OVERLAP, z1])
        parts.opening(min(slot_h, slot_w), 1)
        info["slot_width"], info["slot_height"] = round(slot_w, 6), round(slot_h, 6)
    info["back_slot"] = slot


def _sofa_arms(parts: _Parts, arms: str, dims: dict) -> None:
    """Solid arm blocks, or open arms (an armrest on a front post, a loop each), at both ends."""
    w, d, y0, seat_y, arm_y, arm_w, arm_t = (
        dims[k] for k in ("w", "d", "y0", "seat_y", "arm_y", "arm_w", "arm_t"))
    post_d = max(0.14, arm_t)
    for sx in (-1, 1):
        x0, x1 = (w / 2 - arm_w, w / 2) if sx > 0 else (-w / 2, -w / 2 + arm_w)
        if arms == "solid":
            parts.box([x0, y0, -d / 2], [x1, arm_y, d / 2])
        elif arms == "open":
            parts.box([x0, arm_y - arm_t, -d / 2], [x1, arm_y, d / 2])  # armrest, into the back
            parts.box([x0, seat_y - 0.05, d / 2 - post_d], [x1, arm_y - arm_t / 2, d / 2])  # front post
    if arms == "open":
        opening_h = arm_y - arm_t - seat_y
        opening_d = (d / 2 - post_d) - (-d / 2 + dims["back_t"])
        parts.opening(min(opening_h, opening_d), 2)


def _sofa(rng: np.random.Generator) -> tuple[_Parts, dict]:
    """A sofa: a base block (on short legs or a plinth) with the seat, a back (sometimes slotted) and solid,
    open or no arms."""
    w, d = float(rng.uniform(1.5, 2.1)), float(rng.uniform(0.8, 0.95))
    legs = bool(rng.random() < 0.5)
    y0 = float(rng.uniform(0.12, 0.18)) if legs else 0.0  # underside of the base block
    arms = str(rng.choice(["solid", "solid", "open", "none"]))
    slot = bool(rng.random() < 0.3)
    seat_y = float(rng.uniform(0.4, 0.47))
    back_top = float(rng.uniform(0.88, 0.95) if slot else rng.uniform(0.75, 0.9))  # room for a slot and 2 bars
    t_min, g_min = _resolution([w, back_top, d])
    back_t = max(float(rng.uniform(0.15, 0.22)), t_min)
    arm_w = max(float(rng.uniform(0.12, 0.2)), t_min)
    arm_t = max(0.1, t_min)
    arm_y = max(float(rng.uniform(0.58, 0.66)), seat_y + 1.2 * g_min + arm_t)
    dims = dict(w=w, d=d, y0=y0, seat_y=seat_y, back_top=back_top, back_t=back_t, arm_w=arm_w, arm_t=arm_t,
                arm_y=arm_y, g_min=g_min, slot=slot)
    parts = _Parts()
    parts.box([-w / 2, y0, -d / 2 + back_t / 2], [w / 2, seat_y, d / 2])  # base and seat cushion
    info: dict = {"legs": legs, "arms": arms}
    _sofa_back(parts, rng, dims, info)
    _sofa_arms(parts, arms, dims)
    if legs:
        leg = max(0.06, 1.2 * t_min)
        for x in (-w / 2 + 0.1, w / 2 - 0.1):
            for z in (-d / 2 + 0.1, d / 2 - 0.1):
                _leg(parts, x, z, 0.0, y0 + 0.03, leg, True)
    info["n_legs"] = 4 if legs else 0
    info.update(width=w, depth=d, height=back_top, seat_y=seat_y, thickness=min(arm_t, back_t))
    return parts, info


_BUILDERS: dict[str, Callable[[np.random.Generator], tuple[_Parts, dict]]] = {
    "chair": _chair, "table": _table, "sofa": _sofa}


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------
def _rng(category: str, index: int, seed: int) -> np.random.Generator:
    """A generator seeded from ``(seed, category, index)`` stably across processes and Python versions."""
    category_key = int.from_bytes(hashlib.sha256(category.encode()).digest()[:4], "little")
    return np.random.default_rng([int(seed), category_key, int(index)])


def _jsonable(value):
    """Plain Python types (floats rounded to 6 decimals) for a parameter dict."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6)
    return value


def generate_shape(category: str, index: int, seed: int) -> tuple[trimesh.Trimesh, dict]:
    """One synthetic shape, deterministic in ``(category, index, seed)``.

    Returns the mesh (y up, metres, about 0.5-2 across) and a JSON-able dict of how it was built: ``category``,
    ``index``, ``seed``, ``model_id``, the parts chosen (``base``, ``n_legs``, ``stretchers``, ``back``,
    ``n_slats``, ``arms``, ``extra``, ``pedestal``, ...), sizes in metres (``width``, ``depth``, ``height``,
    ``thickness``, ``min_part``: the thinnest primitive, ``min_gap``: the narrowest opening or null), ``loops``
    (the loops the construction means to make), ``genus`` (from the Euler characteristic chi of the closed
    surface, (2 - chi) / 2: the solid's first Betti number b1) and ``n_faces``.
    """
    _check_category(category)
    if index < 0 or seed < 0:
        raise ValueError(f"index and seed must be >= 0, got index={index}, seed={seed}")
    parts, info = _BUILDERS[category](_rng(category, index, seed))
    mesh = parts.union()
    pieces = len(mesh.split(only_watertight=False))
    genus = (2 - mesh.euler_number) // 2
    if pieces != 1 or not mesh.is_watertight or genus != parts.loops:
        raise AssertionError(
            f"{category} {index} (seed {seed}): {pieces} pieces, watertight={mesh.is_watertight}, "
            f"genus {genus} but {parts.loops} loops built; parameters {info}")
    info = {
        "category": category,
        "index": int(index),
        "seed": int(seed),
        "model_id": model_id(category, index),
        **info,
        "min_part": parts.min_part,
        "min_gap": parts.min_gap if np.isfinite(parts.min_gap) else None,
        "loops": parts.loops,
        "genus": int(genus),
        "n_faces": int(len(mesh.faces)),
    }
    return mesh, _jsonable(info)


def write_synthetic_dataset(
    root: str | Path, category: str, n_shapes: int, seed: int, progress: bool = True
) -> list[dict]:
    """Write ``n_shapes`` shapes of a category in the ShapeNetCore.v2 layout under ``root``.

    Files: ``{root}/{synset}/{model_id}/models/model_normalized.obj`` (vertices with 6 decimals, no normals)
    and ``{root}/{synset}/index.json`` (the list of parameter dicts, also returned). Each file is written
    atomically (a temporary file in the same folder, then ``os.replace``).
    """
    _check_category(category)
    if n_shapes < 0:
        raise ValueError(f"n_shapes must be >= 0, got {n_shapes}")
    records = []
    for index in tqdm(range(n_shapes), desc=f"synthesize {category}", unit="shape", disable=not progress):
        mesh, info = generate_shape(category, index, seed)
        with atomic_open(mesh_path(root, category, info["model_id"]), "w") as fh:
            fh.write(trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_texture=False, digits=6))
        records.append(info)
    atomic_write_json(Path(root) / SYNSETS[category] / "index.json", records)
    return records
