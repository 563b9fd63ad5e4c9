"""Procedural chairs, tables and sofas built from boxes and cylinders: the synthetic dataset shipped with toposdf.

Every shape is the boolean union (manifold3d) of overlapping boxes and cylinders: one closed, watertight,
connected surface, y up, roughly ShapeNet-sized. Shapes are deterministic in ``(category, index, seed)``.

The dataset carries the topological variety the paper is about: leg counts, stretchers and shelves, slatted or
railed backs and open armrests make loops (first Betti number up to about ten); pedestal bases, solid panels
and solid arms do not. Part sizes keep every part at least ``MIN_PART`` thick and every opening at least
``MIN_GAP`` wide *after* normalization to the unit sphere, so a 48^3 grid over [-1, 1]^3 resolves them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from tqdm import tqdm

from toposdf.data import SYNSETS, mesh_path
from toposdf.io import atomic_open, atomic_write_json

#: After normalization to the unit sphere: thinnest part and narrowest opening (a 48^3 grid has spacing 0.043).
MIN_PART = 0.08
MIN_GAP = 0.10
_CATEGORY_CODE = {"chair": 1, "table": 2, "sofa": 3}


def model_id(category: str, index: int) -> str:
    """The model id of a synthetic shape, e.g. ``syn_chair_00007``."""
    _check_category(category)
    return f"syn_{category}_{index:05d}"


def _check_category(category: str) -> None:
    if category not in _CATEGORY_CODE:
        raise ValueError(f"unknown category {category!r}; expected one of {sorted(_CATEGORY_CODE)}")


# --------------------------------------------------------------------------------------------------------------
# Primitives
# --------------------------------------------------------------------------------------------------------------
class _Parts:
    """Collects primitives and their smallest dimension (to check thickness after normalization)."""

    def __init__(self) -> None:
        self.meshes: list[trimesh.Trimesh] = []
        self.min_size = np.inf

    def box(self, lo, hi) -> None:
        """Axis-aligned box between corners ``lo`` and ``hi``."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        size = hi - lo
        if np.any(size <= 0):
            raise AssertionError(f"degenerate box {lo} {hi}")
        self.meshes.append(trimesh.creation.box(extents=size, transform=trimesh.transformations.translation_matrix((lo + hi) / 2)))
        self.min_size = min(self.min_size, float(size.min()))

    def cylinder(self, p0, p1, radius: float, sections: int = 20) -> None:
        """Cylinder of ``radius`` from point ``p0`` to ``p1``."""
        self.meshes.append(trimesh.creation.cylinder(radius=radius, segment=[p0, p1], sections=sections))
        self.min_size = min(self.min_size, 2 * radius, float(np.linalg.norm(np.subtract(p1, p0))))

    def union(self) -> trimesh.Trimesh:
        return trimesh.boolean.union(self.meshes, engine="manifold")


def _min_thickness(width: float, height: float, depth: float) -> float:
    """The thinnest part (mesh units) that is still ``MIN_PART`` thick after normalizing a shape of this size."""
    return MIN_PART * 1.03 * 0.5 * float(np.sqrt(width**2 + height**2 + depth**2)) * 1.04


def _leg(parts: _Parts, x: float, z: float, top: float, t: float, round_: bool, bottom: float = 0.0) -> None:
    if round_:
        parts.cylinder([x, bottom, z], [x, top, z], t / 2)
    else:
        parts.box([x - t / 2, bottom, z - t / 2], [x + t / 2, top, z + t / 2])


def _rail_x(parts: _Parts, x0: float, x1: float, y: float, z: float, t: float) -> None:
    """A rail along x from x0 to x1 at height y (centre), depth position z."""
    parts.box([x0, y - t / 2, z - t / 2], [x1, y + t / 2, z + t / 2])


def _rail_z(parts: _Parts, z0: float, z1: float, y: float, x: float, t: float) -> None:
    parts.box([x - t / 2, y - t / 2, z0], [x + t / 2, y + t / 2, z1])


def _pedestal(parts: _Parts, rng: np.random.Generator, top: float, radius: float, t: float) -> str:
    """A central column on a disc or on star feet; no loops."""
    parts.cylinder([0, 0.0, 0], [0, top, 0], radius=max(t, 0.05))
    if rng.random() < 0.5:
        parts.cylinder([0, 0.0, 0], [0, t, 0], radius=radius, sections=32)
        return "disc"
    n_feet = int(rng.integers(4, 6))
    for k in range(n_feet):
        a = 2 * np.pi * k / n_feet + 0.3
        end = radius * np.array([np.cos(a), 0, np.sin(a)])
        parts.cylinder([0, t / 2, 0], [end[0], t / 2, end[2]], radius=t / 2, sections=16)
    return f"star{n_feet}"


# --------------------------------------------------------------------------------------------------------------
# Categories (units: about a metre; y up, the front is +z)
# --------------------------------------------------------------------------------------------------------------
def _chair(rng: np.random.Generator) -> tuple[_Parts, dict]:
    p = _Parts()
    w, d = rng.uniform(0.44, 0.56), rng.uniform(0.42, 0.52)
    seat_y, seat_t = rng.uniform(0.40, 0.48), rng.uniform(0.05, 0.07)
    back_h = rng.uniform(0.35, 0.5)
    t_min = _min_thickness(w, seat_y + back_h, d)
    t = max(rng.uniform(0.045, 0.06), t_min)  # legs, posts, rails
    seat_t = max(seat_t, t_min)
    round_legs = bool(rng.random() < 0.35)
    info: dict = {}
    p.box([-w / 2, seat_y - seat_t, -d / 2], [w / 2, seat_y, d / 2])

    base = rng.choice(["legs4", "legs4", "legs4", "legs3", "pedestal"])
    info["base"] = str(base)
    xs, zs = w / 2 - t / 2 - 0.01, d / 2 - t / 2 - 0.01
    if base == "legs4":
        for x in (-xs, xs):
            for z in (-zs, zs):
                _leg(p, x, z, seat_y - seat_t / 2, t, round_legs)
        stretchers = str(rng.choice(["none", "box", "H", "front_back"]))
        y = rng.uniform(0.12, 0.2)
        if stretchers == "box":
            for z in (-zs, zs):
                _rail_x(p, -xs, xs, y, z, t)
            for x in (-xs, xs):
                _rail_z(p, -zs, zs, y, x, t)
        elif stretchers == "H":
            for x in (-xs, xs):
                _rail_z(p, -zs, zs, y, x, t)
            _rail_x(p, -xs, xs, y, 0.0, t)
        elif stretchers == "front_back":
            for z in (-zs, zs):
                _rail_x(p, -xs, xs, y, z, t)
        info["stretchers"] = stretchers
    elif base == "legs3":
        for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
            _leg(p, 0.8 * xs * np.cos(a), 0.8 * zs * np.sin(a), seat_y - seat_t / 2, t, True)
        info["stretchers"] = "none"
    else:
        info["pedestal"] = _pedestal(p, rng, seat_y - seat_t / 2, 0.75 * min(w, d) / 2 + 0.08, t)
        info["stretchers"] = "none"

    # Back: two posts at the rear corners rising from the seat, with a panel, slats, rails or an open frame.
    top = seat_y + back_h
    zb = -d / 2 + t / 2
    back = str(rng.choice(["panel", "slats", "rails", "frame"]))
    info["back"] = back
    if back == "panel":
        p.box([-w / 2, seat_y - 0.01, -d / 2], [w / 2, top, -d / 2 + t])
    else:
        for x in (-xs, xs):
            _leg(p, x, zb, top, t, False, bottom=seat_y - 0.01)
        p.box([-w / 2, top - t, -d / 2], [w / 2, top, -d / 2 + t])  # top rail
        inner = 2 * xs - t
        if back == "slats":
            n = int(rng.integers(1, 5))
            while n > 1 and (inner - n * t) / (n + 1) < 0.07:
                n -= 1
            centers = -inner / 2 + (np.arange(n) + 1) * inner / (n + 1)
            for c in centers:
                p.box([c - t / 2, seat_y - 0.01, zb - t / 2], [c + t / 2, top - t / 2, zb + t / 2])
            info["n_slats"] = n
        elif back == "rails":
            n = int(rng.integers(1, 3))
            height = top - t - seat_y
            while n > 1 and (height - n * t) / (n + 1) < 0.07:
                n -= 1
            for k in range(n):
                y = seat_y + (k + 1) * height / (n + 1)
                _rail_x(p, -xs, xs, y, zb, t)
            info["n_rails"] = n

    # Armrests: a rail from the back post to the front, on a front support: a loop each.
    if rng.random() < 0.35:
        arm_y = seat_y + rng.uniform(0.18, 0.24)
        for x in (-xs, xs):
            p.box([x - t / 2, arm_y - t / 2, -d / 2], [x + t / 2, arm_y + t / 2, d / 2])
            _leg(p, x, zs, arm_y, t, round_legs, bottom=seat_y - 0.01)
        info["arms"] = True
    else:
        info["arms"] = False
    return p, info


def _table(rng: np.random.Generator) -> tuple[_Parts, dict]:
    p = _Parts()
    round_top = bool(rng.random() < 0.3)
    w = rng.uniform(0.9, 1.4)
    d = w if round_top else rng.uniform(0.6, 0.9)
    h = rng.uniform(0.65, 0.76)
    t_min = _min_thickness(w, h, d)
    top_t = max(rng.uniform(0.05, 0.07), t_min)
    t = max(rng.uniform(0.05, 0.07), t_min)
    info: dict = {"top": "round" if round_top else "rect"}
    if round_top:
        p.cylinder([0, h - top_t, 0], [0, h, 0], radius=w / 2, sections=40)
    else:
        p.box([-w / 2, h - top_t, -d / 2], [w / 2, h, d / 2])
    base = str(rng.choice(["legs4", "legs4", "pedestal", "trestle"]))
    info["base"] = base
    # Leg positions: inside the top (for a round top, on the inscribed square).
    inset = 0.72 if round_top else 1.0
    xs, zs = inset * (w / 2) - t / 2 - 0.03, inset * (d / 2) - t / 2 - 0.03
    if base == "legs4":
        round_legs = bool(rng.random() < 0.4)
        for x in (-xs, xs):
            for z in (-zs, zs):
                _leg(p, x, z, h - top_t / 2, t, round_legs)
        extra = str(rng.choice(["none", "stretchers", "shelf", "apron"]))
        y = rng.uniform(0.12, 0.25)
        if extra == "stretchers":
            for z in (-zs, zs):
                _rail_x(p, -xs, xs, y, z, t)
            for x in (-xs, xs):
                _rail_z(p, -zs, zs, y, x, t)
        elif extra == "shelf":
            p.box([-xs - t / 2, y - t / 2, -zs - t / 2], [xs + t / 2, y + t / 2, zs + t / 2])
        elif extra == "apron":  # boards flush under the top, between the legs: no opening
            for z in (-zs, zs):
                p.box([-xs, h - top_t - 0.1, z - t / 2], [xs, h - top_t / 2, z + t / 2])
        info["extra"] = extra
    elif base == "pedestal":
        info["pedestal"] = _pedestal(p, rng, h - top_t / 2, 0.3 * min(w, d) + 0.1, t)
    else:  # trestle: two end frames (two legs, foot and top rails), optionally joined by a stretcher
        x = w / 2 - t / 2 - 0.06
        for sx in (-x, x):
            for z in (-zs, zs):
                _leg(p, sx, z, h - top_t / 2, t, False)
            _rail_z(p, -zs - t / 2, zs + t / 2, t / 2, sx, t)  # foot
            _rail_z(p, -zs, zs, h - top_t - t / 2 - 0.14, sx, t)  # upper rail, below the top: a loop
        if rng.random() < 0.6:  # a stretcher joining the two feet
            _rail_x(p, -x, x, t / 2, 0.0, t)
            info["stretcher"] = True
        else:
            info["stretcher"] = False
    return p, info


def _sofa(rng: np.random.Generator) -> tuple[_Parts, dict]:
    p = _Parts()
    w, d = rng.uniform(1.5, 2.1), rng.uniform(0.8, 0.95)
    base_y0 = float(rng.choice([0.0, rng.uniform(0.15, 0.19)]))  # plinth or short legs
    seat_y = rng.uniform(0.4, 0.47)
    back_t, back_top = rng.uniform(0.15, 0.22), rng.uniform(0.75, 0.9)
    arm_w, arm_y = rng.uniform(0.12, 0.2), rng.uniform(0.58, 0.66)
    gap = MIN_GAP / MIN_PART * _min_thickness(w, back_top, d)  # the narrowest opening allowed, mesh units
    arm_y = max(arm_y, seat_y + gap + 0.1)  # an open arm's opening is at least that tall
    info: dict = {"legs": bool(base_y0 > 0)}
    p.box([-w / 2, base_y0, -d / 2], [w / 2, seat_y, d / 2])  # base and seat cushion
    p.box([-w / 2, base_y0, -d / 2], [w / 2, back_top, -d / 2 + back_t])  # back
    if base_y0 > 0:
        lt = _min_thickness(w, back_top, d) * 1.2
        for x in (-w / 2 + 0.1, w / 2 - 0.1):
            for z in (-d / 2 + 0.1, d / 2 - 0.1):
                _leg(p, x, z, base_y0 + 0.02, lt, True)
    arms = str(rng.choice(["solid", "solid", "open", "none"]))
    info["arms"] = arms
    for sx in (-1, 1):
        x0, x1 = (w / 2 - arm_w, w / 2) if sx > 0 else (-w / 2, -w / 2 + arm_w)
        if arms == "solid":
            p.box([x0, base_y0, -d / 2], [x1, arm_y, d / 2])
        elif arms == "open":  # an armrest on a front post: a loop through the arm
            p.box([x0, arm_y - 0.1, -d / 2], [x1, arm_y, d / 2])
            p.box([x0, seat_y - 0.02, d / 2 - 0.14], [x1, arm_y - 0.05, d / 2])
    if rng.random() < 0.3:
        info["back_opening"] = True  # a slot through the back, between seat and backrest top
        p.meshes[1] = trimesh.boolean.difference(
            [p.meshes[1], trimesh.creation.box(extents=[w * 0.5, 0.12, 1.0],
                                               transform=trimesh.transformations.translation_matrix([0, (seat_y + back_top) / 2 + 0.03, -d / 2]))],
            engine="manifold",
        )
    else:
        info["back_opening"] = False
    return p, info


_BUILDERS = {"chair": _chair, "table": _table, "sofa": _sofa}


def _rng(category: str, index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _CATEGORY_CODE[category], int(index)])


def generate_shape(category: str, index: int, seed: int) -> tuple[trimesh.Trimesh, dict]:
    """One synthetic shape, deterministic in ``(category, index, seed)``.

    Returns the mesh (y up, about a metre across) and a JSON-able dict of how it was built: the parts chosen,
    ``genus`` (from the Euler characteristic of the closed surface: the solid's first Betti number b1),
    ``min_part`` (the thinnest primitive, in mesh units), ``n_faces`` and ``model_id``.
    """
    _check_category(category)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    parts, info = _BUILDERS[category](_rng(category, index, seed))
    mesh = parts.union()
    pieces = len(mesh.split(only_watertight=False))
    if pieces != 1 or not mesh.is_watertight:
        raise AssertionError(f"{category} {index} (seed {seed}): {pieces} pieces, watertight={mesh.is_watertight}")
    info = {
        "category": category,
        "index": int(index),
        "seed": int(seed),
        "model_id": model_id(category, index),
        **info,
        "genus": int(round((2 - mesh.euler_number) / 2)),
        "min_part": round(float(parts.min_size), 6),
        "n_faces": int(len(mesh.faces)),
    }
    return mesh, info


def write_synthetic_dataset(
    root: str | Path, category: str, n_shapes: int, seed: int, progress: bool = True
) -> list[dict]:
    """Write ``n_shapes`` shapes of a category in the ShapeNetCore.v2 layout under ``root``.

    Files: ``{root}/{synset}/{model_id}/models/model_normalized.obj`` and ``{root}/{synset}/index.json`` (the
    list of parameter dicts, also returned). Each file is written atomically.
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
