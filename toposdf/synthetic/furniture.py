"""The three categories' builders (:data:`BUILDERS`): a chair, a table or a sofa from a random generator, as
:class:`toposdf.synthetic.parts.Parts` and a dict of the choices made. Frame: y up, front +z, metres."""

from __future__ import annotations

from typing import Callable

import numpy as np

from toposdf.synthetic.parts import (OVERLAP, SECTIONS_BROAD, Parts, ellipse_points, even_bars, leg, pedestal, rail_x,
                                     rail_z, resolvable_sizes, ring_stretchers)


# --------------------------------------------------------------------------------------------------------------
# Chairs (seat ~0.45 high, back to ~0.9; front +z)
# --------------------------------------------------------------------------------------------------------------
def _chair_base(parts: Parts, rng: np.random.Generator, base: str, dims: dict, info: dict) -> None:
    """Legs (3, 4 or 5, optional stretchers) or a pedestal under the seat."""
    w, d, seat_y, seat_t, t, tl = (dims[k] for k in ("w", "d", "seat_y", "seat_t", "t", "tl"))
    leg_top = seat_y - seat_t / 2
    xs, zs = w / 2 - tl / 2 - OVERLAP, d / 2 - tl / 2 - OVERLAP
    info["n_legs"], info["stretchers"] = 0, "none"
    if base == "pedestal":
        info["pedestal"] = pedestal(parts, rng, leg_top, dims["pedestal_r"], t)
        return
    y = float(rng.uniform(0.12, 0.2))  # stretcher height (centre)
    if base == "legs4":
        round_legs = bool(rng.random() < 0.35)
        for x in (-xs, xs):
            for z in (-zs, zs):
                leg(parts, x, z, 0.0, leg_top, tl, round_legs)
        stretchers = str(rng.choice(["none", "none", "box", "H", "front_back", "sides"]))
        loops = {"none": 0, "box": 4, "H": 3, "front_back": 2, "sides": 2}[stretchers]
        if stretchers in ("box", "front_back"):
            for z in (-zs, zs):
                rail_x(parts, -xs, xs, y, z, t)
        if stretchers in ("box", "H", "sides"):
            for x in (-xs, xs):
                rail_z(parts, -zs, zs, y, x, t)
        if stretchers == "H":
            rail_x(parts, -xs, xs, y, 0.0, t)
        info["n_legs"], info["round_legs"] = 4, round_legs
    else:
        n = 3 if base == "legs3" else 5
        points = ellipse_points(n, xs, zs)
        for x, z in points:
            leg(parts, x, z, 0.0, leg_top, tl, True)
        stretchers = str(rng.choice(["none", "ring"]))
        if stretchers == "ring":
            ring_stretchers(parts, points, y, t)
        loops = n if stretchers == "ring" else 0
        info["n_legs"], info["round_legs"] = n, True
    if stretchers != "none":
        parts.opening(seat_y - seat_t - (y + t / 2), loops)
        info["stretcher_y"] = round(y, 6)
    info["stretchers"] = stretchers


def _chair_back(parts: Parts, back: str, dims: dict, info: dict) -> None:
    """A solid panel, or two posts and a top rail (an open frame) with vertical slats or horizontal rails."""
    w, d, seat_y, seat_t, top, t, tl = (dims[k] for k in ("w", "d", "seat_y", "seat_t", "top", "t", "tl"))
    xs = w / 2 - tl / 2 - OVERLAP
    zb = -d / 2 + tl / 2 + OVERLAP  # the back's plane
    info["n_slats"], info["n_rails"] = dims["n_slats"], dims["n_rails"]
    if back == "panel":
        parts.box([-w / 2 + OVERLAP, seat_y - seat_t / 2, zb - tl / 2], [w / 2 - OVERLAP, top, zb + tl / 2])
        return
    for x in (-xs, xs):
        leg(parts, x, zb, seat_y - seat_t / 2, top - t / 2, tl, False)
    parts.box([-w / 2, top - t, zb - tl / 2], [w / 2, top, zb + tl / 2])  # top rail, past the posts
    inner_w = 2 * xs - tl  # between the posts
    inner_h = top - t - seat_y  # between seat and top rail
    if back == "slats":
        n = dims["n_slats"]
        centers, gap = even_bars(-inner_w / 2, inner_w / 2, n, t)
        for c in centers:
            parts.box([c - t / 2, seat_y - seat_t / 2, zb - t / 2], [c + t / 2, top - t / 2, zb + t / 2])
        parts.opening(min(gap, inner_h), n + 1)
    elif back == "rails":
        n = dims["n_rails"]
        centers, gap = even_bars(seat_y, top - t, n, t)
        for y in centers:
            rail_x(parts, -xs, xs, y, zb, t)
        parts.opening(min(inner_w, gap), n + 1)
    else:  # open frame
        parts.opening(min(inner_w, inner_h), 1)


def _chair_arms(parts: Parts, rng: np.random.Generator, dims: dict, info: dict) -> None:
    """Two armrests from the back to the front, each on a front support rising from the seat: a loop each."""
    w, d, seat_y, seat_t, t, tl = (dims[k] for k in ("w", "d", "seat_y", "seat_t", "t", "tl"))
    xs, zs = w / 2 - tl / 2 - OVERLAP, d / 2 - tl / 2 - OVERLAP
    zb = -d / 2 + tl / 2 + OVERLAP
    arm_y = seat_y + float(rng.uniform(0.18, 0.24))  # armrest centre
    for x in (-xs, xs):
        rail_z(parts, zb, d / 2, arm_y, x, t)
        leg(parts, x, zs, seat_y - seat_t / 2, arm_y, tl, False)
    parts.opening(min(arm_y - t / 2 - seat_y, (zs - tl / 2) - (zb + tl / 2)), 2)
    info["arm_y"] = round(arm_y, 6)


def chair(rng: np.random.Generator) -> tuple[Parts, dict]:
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
        t_min, g_min = resolvable_sizes(extents)
        t = max(t0, t_min)
        tl = 1.25 * t  # legs and posts: wider than the rails they receive
        w = max(w0, (n_slats * t + (n_slats + 1) * g_min) + 2 * tl + 2 * OVERLAP)
        back_h = max(back_h0, (n_rails * t + (n_rails + 1) * g_min) + t)
    seat_t = max(seat_t0, t_min)
    dims = dict(w=w, d=d, seat_y=seat_y, seat_t=seat_t, top=seat_y + back_h, t=t, tl=tl, pedestal_r=pedestal_r,
                n_slats=n_slats, n_rails=n_rails)
    parts = Parts()
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
def _table_legs(parts: Parts, rng: np.random.Generator, n_legs: int, dims: dict, info: dict) -> None:
    """Four or six legs with nothing, stretchers (a front footrest, front/back, H or a box), an apron, a lower
    shelf joined to the legs, or a shelf and box stretchers."""
    w, d, h, top_t, t, tl, inset = (dims[k] for k in ("w", "d", "h", "top_t", "t", "tl", "inset"))
    xs, zs = inset * w / 2 - tl / 2 - 0.03, inset * d / 2 - tl / 2 - 0.03
    round_legs = bool(rng.random() < 0.4)
    xs_legs = (-xs, 0.0, xs) if n_legs == 6 else (-xs, xs)
    for x in xs_legs:
        for z in (-zs, zs):
            leg(parts, x, z, 0.0, h - top_t / 2, tl, round_legs)
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
                rail_x(parts, -xs, xs, y_rail, z, t)
        for x in (-xs, xs):
            if extra not in ("footrest", "front_back"):
                rail_z(parts, -zs, zs, y_rail, x, t)
        if extra == "H":
            rail_x(parts, -xs, xs, y_rail, 0.0, t)
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


def _table_ends(parts: Parts, rng: np.random.Generator, style: str, dims: dict, info: dict) -> None:
    """Two end frames under a rectangular top, each open: a trestle (two legs on a foot, with 1-2 rails below
    the top) or a frame side (stiles on a foot with 1-3 windows); optionally joined by a low stretcher."""
    w, d, h, top_t, t, tl = (dims[k] for k in ("w", "d", "h", "top_t", "t", "tl"))
    g_min = dims["g_min"]
    x_end = w / 2 - tl / 2 - 0.06
    zs = d / 2 - tl / 2 - 0.04
    under_top = h - top_t
    if style == "trestle":
        n_rails = int(rng.integers(1, 3))
        centers, gap = even_bars(t, under_top, n_rails, t)  # between the foot's top and the top's underside
        for sx in (-x_end, x_end):
            for z in (-zs, zs):
                leg(parts, sx, z, 0.0, h - top_t / 2, tl, False)
            rail_z(parts, -zs - tl / 2 - 0.03, zs + tl / 2 + 0.03, t / 2, sx, t)  # foot
            for y in centers:
                rail_z(parts, -zs, zs, y, sx, t)
        # Per end: two legs between foot, rails and top, n_rails + 1 loops.
        parts.opening(min(gap, 2 * zs - tl), 2 * (n_rails + 1))
        info["n_end_rails"] = n_rails
    else:  # frame sides with windows
        n_windows = int(rng.integers(1, 4))
        inner = 2 * zs - tl
        while n_windows > 1 and (inner - (n_windows - 1) * t) / n_windows < g_min:
            n_windows -= 1
        centers, gap = even_bars(-inner / 2, inner / 2, n_windows - 1, t)
        for sx in (-x_end, x_end):
            for z in (-zs, zs):
                leg(parts, sx, z, 0.0, h - top_t / 2, tl, False)  # stiles
            rail_z(parts, -zs, zs, t / 2, sx, t)  # bottom rail
            for zc in centers:  # mullions
                parts.box([sx - t / 2, t / 2, zc - t / 2], [sx + t / 2, h - top_t / 2, zc + t / 2])
        parts.opening(min(gap, under_top - t), 2 * n_windows)
        info["n_windows"] = n_windows
    stretcher = bool(rng.random() < 0.6)
    if stretcher:  # a low stretcher between the two end feet
        rail_x(parts, -x_end, x_end, t / 2, 0.0, t)
        parts.opening(2 * x_end - tl, 1)
    info.update(n_legs=4, stretcher=stretcher)


def table(rng: np.random.Generator) -> tuple[Parts, dict]:
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
    t_min, g_min = resolvable_sizes([w, h, d])
    top_t = max(float(rng.uniform(0.04, 0.07)), t_min)
    t = max(float(rng.uniform(0.04, 0.06)), t_min)
    dims = dict(w=w, d=d, h=h, top_t=top_t, t=t, tl=1.25 * t, g_min=g_min, inset=0.72 if round_top else 1.0)
    parts = Parts()
    if round_top:
        parts.cylinder([0, h - top_t, 0], [0, h, 0], radius=w / 2, sections=SECTIONS_BROAD)
    else:
        parts.box([-w / 2, h - top_t, -d / 2], [w / 2, h, d / 2])
    info: dict = {"top": "round" if round_top else "rect", "base": base}
    if base in ("legs4", "legs6"):
        _table_legs(parts, rng, 6 if base == "legs6" else 4, dims, info)
    elif base == "pedestal":
        info["n_legs"] = 0
        info["pedestal"] = pedestal(parts, rng, h - top_t / 2, 0.3 * min(w, d) + 0.05, t)
    else:
        _table_ends(parts, rng, base, dims, info)
    info.update(width=w, depth=d, height=h, thickness=t)
    return parts, info


# --------------------------------------------------------------------------------------------------------------
# Sofas (seat ~0.45 high, about 1.8 wide; front +z)
# --------------------------------------------------------------------------------------------------------------
def _sofa_back(parts: Parts, rng: np.random.Generator, dims: dict, info: dict) -> None:
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


def _sofa_arms(parts: Parts, arms: str, dims: dict) -> None:
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


def sofa(rng: np.random.Generator) -> tuple[Parts, dict]:
    """A sofa: a base block (on short legs or a plinth) with the seat, a back (sometimes slotted) and solid,
    open or no arms."""
    w, d = float(rng.uniform(1.5, 2.1)), float(rng.uniform(0.8, 0.95))
    legs = bool(rng.random() < 0.5)
    y0 = float(rng.uniform(0.12, 0.18)) if legs else 0.0  # underside of the base block
    arms = str(rng.choice(["solid", "solid", "open", "none"]))
    slot = bool(rng.random() < 0.3)
    seat_y = float(rng.uniform(0.4, 0.47))
    back_top = float(rng.uniform(0.88, 0.95) if slot else rng.uniform(0.75, 0.9))  # room for a slot and 2 bars
    t_min, g_min = resolvable_sizes([w, back_top, d])
    back_t = max(float(rng.uniform(0.15, 0.22)), t_min)
    arm_w = max(float(rng.uniform(0.12, 0.2)), t_min)
    arm_t = max(0.1, t_min)
    arm_y = max(float(rng.uniform(0.58, 0.66)), seat_y + 1.2 * g_min + arm_t)
    dims = dict(w=w, d=d, y0=y0, seat_y=seat_y, back_top=back_top, back_t=back_t, arm_w=arm_w, arm_t=arm_t,
                arm_y=arm_y, g_min=g_min, slot=slot)
    parts = Parts()
    parts.box([-w / 2, y0, -d / 2 + back_t / 2], [w / 2, seat_y, d / 2])  # base and seat cushion
    info: dict = {"legs": legs, "arms": arms}
    _sofa_back(parts, rng, dims, info)
    _sofa_arms(parts, arms, dims)
    if legs:
        leg_size = max(0.06, 1.2 * t_min)
        for x in (-w / 2 + 0.1, w / 2 - 0.1):
            for z in (-d / 2 + 0.1, d / 2 - 0.1):
                leg(parts, x, z, 0.0, y0 + 0.03, leg_size, True)
    info["n_legs"] = 4 if legs else 0
    info.update(width=w, depth=d, height=back_top, seat_y=seat_y, thickness=min(arm_t, back_t))
    return parts, info


BUILDERS: dict[str, Callable[[np.random.Generator], tuple[Parts, dict]]] = {
    "chair": chair, "table": table, "sofa": sofa}
