"""Synthetic shapes by ``(category, index, seed)`` (:func:`generate_shape`, which checks each is one watertight
piece with the loops it was built to have) and the dataset in the ShapeNetCore.v2 layout
(:func:`write_synthetic_dataset`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import trimesh
from tqdm import tqdm

from toposdf.data import SYNSETS, mesh_path
from toposdf.io import atomic_open, atomic_write_json
from toposdf.synthetic.furniture import BUILDERS


def model_id(category: str, index: int) -> str:
    """The model id of a synthetic shape, e.g. ``syn_chair_00007``."""
    _check_category(category)
    return f"syn_{category}_{int(index):05d}"


def _check_category(category: str) -> None:
    if category not in SYNSETS:
        raise ValueError(f"unknown category {category!r}; expected one of {sorted(SYNSETS)}")


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
    parts, info = BUILDERS[category](_rng(category, index, seed))
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
