"""Shapes on disk: the ShapeNet layout, splits, normalization and signed distances, and the loaders of what
preprocessing wrote (split ids, normalized meshes, SDF samples, ground-truth diagrams).

Coordinates: after :func:`normalize_mesh` a shape's bounding box is centred at the origin and the shape lies
inside the sphere of radius ``1 / margin`` (DeepSDF's 1/1.03). Signed distances are negative inside.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import igl
import numpy as np
import trimesh
from scipy import ndimage

from toposdf.inside import inside
from toposdf.io import read_json
from toposdf.layout import (  # noqa: F401 (re-exported)
    SHAPENET_MODELS,
    SPILL_BYTES,
    SYNSETS,
    count_test_shapes,
    training_memory_mb,
)
from toposdf.topology import Diagrams, load_diagrams

#: Where a model's mesh lives under a ShapeNetCore.v2 root (and under the synthetic dataset's root).
MESH_RELPATH = "{synset}/{model_id}/models/model_normalized.obj"


class MeshError(ValueError):
    """A mesh file that cannot be used: missing, unreadable, empty or with non-finite vertices."""


# --------------------------------------------------------------------------------------------------------------
# Finding shapes and splitting them
# --------------------------------------------------------------------------------------------------------------
def synset_of(category: str) -> str:
    """The ShapeNet synset id of a category name ('chair', 'table', 'sofa') or of a synset id itself."""
    if category in SYNSETS:
        return SYNSETS[category]
    if category in SYNSETS.values():
        return category
    raise ValueError(f"unknown category {category!r}; expected one of {sorted(SYNSETS)} or their synset ids")


def list_models(root: str | Path, category: str) -> list[str]:
    """Sorted model ids of a category under a ShapeNetCore.v2-layout root (those that have a mesh file)."""
    folder = Path(root) / synset_of(category)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no folder for category {category!r} at {folder}; dataset.root must point at a ShapeNetCore.v2 copy "
            f"(with {MESH_RELPATH.format(synset=synset_of(category), model_id='<model_id>')})"
        )
    return sorted(p.parent.parent.name for p in folder.glob(MESH_RELPATH.format(synset="", model_id="*")[1:]))


def folders_without_mesh(root: str | Path, category: str) -> list[str]:
    """Sorted model folders of a category that have no ``models/model_normalized.obj`` (they are named in the
    split and recorded as skipped, rather than left out unsaid)."""
    folder, with_mesh = Path(root) / synset_of(category), set(list_models(root, category))
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and p.name not in with_mesh)


def mesh_path(root: str | Path, category: str, model_id: str) -> Path:
    return Path(root) / MESH_RELPATH.format(synset=synset_of(category), model_id=model_id)


def split_models(
    model_ids: Sequence[str], test_fraction: float, seed: int, limit: int | None = None
) -> dict[str, list[str]]:
    """Deterministic train/test split.

    The ids are shuffled with ``seed`` (independently of their order on disk), the first ``limit`` are kept,
    and ``round(test_fraction * n)`` of them (at least one when ``0 < test_fraction`` and n >= 2) go to test.
    Returns ``{"train": [...], "test": [...]}``, each sorted.
    """
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    ids = sorted(set(model_ids))
    order = np.random.default_rng(seed).permutation(len(ids))
    chosen = [ids[i] for i in order][: limit if limit is not None else len(ids)]
    n_test = count_test_shapes(len(chosen), test_fraction)
    return {"train": sorted(chosen[n_test:]), "test": sorted(chosen[:n_test])}


def shard_of(model_ids: Sequence[str], shard: int, n_shards: int) -> list[str]:
    """The ids that shard ``shard`` of ``n_shards`` processes: every n-th of the sorted ids."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard must be in [0, {n_shards}), got {shard}")
    return sorted(model_ids)[shard::n_shards]


# --------------------------------------------------------------------------------------------------------------
# Meshes
# --------------------------------------------------------------------------------------------------------------
def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Read a triangle mesh (all of a file's geometry merged into one mesh).

    Raises:
        MeshError: naming the file, when it is missing, unreadable, has no triangles or non-finite vertices.
    """
    path = Path(path)
    if not path.is_file():
        raise MeshError(f"{path}: no such mesh file")
    try:
        mesh = trimesh.load(path, force="mesh", process=False, skip_materials=True)
    except Exception as exc:  # trimesh raises many types for corrupt files
        raise MeshError(f"{path}: cannot read mesh: not a {path.suffix or 'mesh'} file trimesh can parse, or a "
                        f"damaged one ({type(exc).__name__}: {exc})") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise MeshError(f"{path}: the file has no triangles")
    if not np.all(np.isfinite(mesh.vertices)):
        raise MeshError(f"{path}: the mesh has NaN or infinite vertex coordinates")
    if np.ptp(mesh.vertices, axis=0).max() <= 0:
        raise MeshError(f"{path}: the mesh is degenerate (all vertices coincide)")
    return mesh


@dataclass(frozen=True)
class Normalization:
    """``normalized = (original + offset) * scale``."""

    offset: np.ndarray  # (3,)
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points) + self.offset) * self.scale

    def invert(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points) / self.scale - self.offset


def normalize_mesh(mesh: trimesh.Trimesh, margin: float = 1.03) -> tuple[trimesh.Trimesh, Normalization]:
    """Centre the bounding box of the vertices the faces use at the origin, scale them into the sphere of radius
    ``1 / margin``, and orient the faces consistently (:func:`orient_faces`; duplicate vertices are merged)."""
    if margin < 1:
        raise ValueError(f"margin must be >= 1, got {margin}")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    used = vertices[np.unique(np.asarray(mesh.faces))] if len(mesh.faces) else vertices
    center = 0.5 * (used.min(axis=0) + used.max(axis=0))
    radius = np.linalg.norm(used - center, axis=1).max()
    norm = Normalization(offset=-center, scale=float(1.0 / (margin * radius)))
    out = trimesh.Trimesh(norm.apply(vertices), np.asarray(mesh.faces, dtype=np.int64), process=False)
    return orient_faces(out), norm


def signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, robust: bool = False) -> np.ndarray:
    """Signed distance from ``points`` ``(n, 3)`` to a triangle mesh, negative inside.

    The magnitude is the exact distance to the closest point of the mesh (libigl's AABB tree). The sign comes
    from libigl's fast generalized winding number ``w``: a point is inside when ``|w| > 1/2``. Holes (open,
    non-watertight meshes) change ``w`` smoothly instead of flipping the sign along a ray, and the absolute value
    makes a component with reversed orientation count as inside too; a component whose faces disagree with each
    other needs :func:`orient_faces` first. ``robust``: for a mesh that is not clean
    (:func:`toposdf.inside.mesh_is_clean`: faces stored twice, overlapping parts wound both ways), the sign of
    :func:`toposdf.inside.robust_inside`. Returns ``(n,)`` float64.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be an (n, 3) array, got shape {points.shape}")
    if len(points) == 0:
        return np.zeros(0)
    vertices = np.ascontiguousarray(vertices, dtype=np.float64)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    distance = np.sqrt(igl.point_mesh_squared_distance(points, vertices, faces)[0])
    return np.where(inside(points, vertices, faces, robust), -1.0, 1.0) * distance


def orient_faces(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A copy whose faces are consistently oriented within each connected piece (ShapeNet's often are not)."""
    out = trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), process=True, validate=False)
    trimesh.repair.fix_winding(out)
    return out


def sample_sdf(
    mesh: trimesh.Trimesh,
    n_points: int,
    variances: Sequence[float] = (0.0025, 0.00025),
    uniform_fraction: float = 0.2,
    seed: int = 0,
    robust: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """DeepSDF's sampling: points near the surface plus uniform points in the bounding cube ``[-1, 1]^3``.

    ``(1 - uniform_fraction) * n_points`` surface samples are perturbed with Gaussian noise, split equally between
    the given variances; the rest are uniform. ``robust``: see :func:`signed_distance`. Returns
    ``(points (n, 3), sdf (n,))`` as float32.
    """
    if n_points <= 0:
        raise ValueError(f"n_points must be positive, got {n_points}")
    if not 0 <= uniform_fraction <= 1:
        raise ValueError(f"uniform_fraction must be in [0, 1], got {uniform_fraction}")
    rng = np.random.default_rng(seed)
    n_uniform = int(round(uniform_fraction * n_points))
    n_near = n_points - n_uniform
    counts = np.full(len(variances), n_near // len(variances))
    counts[: n_near - counts.sum()] += 1
    surface, _ = trimesh.sample.sample_surface(mesh, n_near, seed=rng)
    stds = np.repeat(np.sqrt(np.asarray(variances, dtype=np.float64)), counts)
    near = surface + rng.standard_normal((n_near, 3)) * stds[:, None]
    uniform = rng.uniform(-1.0, 1.0, (n_uniform, 3))
    points = np.concatenate([near, uniform])
    sdf = signed_distance(points, mesh.vertices, mesh.faces, robust)
    return points.astype(np.float32), sdf.astype(np.float32)


def grid_points(resolution: int) -> np.ndarray:
    """The ``(N^3, 3)`` vertices of the regular grid over ``[-1, 1]^3``, in C order of ``grid[i, j, k]``."""
    if resolution < 2:
        raise ValueError(f"grid resolution must be >= 2, got {resolution}")
    x = np.linspace(-1.0, 1.0, resolution)
    return np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1).reshape(-1, 3)


BAND_MARGIN = 1e-6  # a lower bound counts as beyond the band only this far above it (float32 keeps it above)


def sdf_grid(mesh: trimesh.Trimesh, resolution: int, robust: bool = False, band: float | None = None) -> np.ndarray:
    """Signed distance of a mesh on the ``resolution^3`` grid over ``[-1, 1]^3``: ``(N, N, N)`` float32
    (``robust``: see :func:`signed_distance`).

    ``band``: exact only where the distance may be below ``band``; a vertex certainly farther gets a lower bound of
    its distance (:func:`distance_lower_bound`, above ``band``) with the right sign. Clamped to ``[-band, band]``,
    as persistence clamps at ``tau``, the grid is the same, at a fraction of the distance queries."""
    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)
    distance, _ = grid_distance(vertices, faces, resolution, band)
    sign = np.where(inside(grid_points(resolution), vertices, faces, robust), -1.0, 1.0)
    return (sign * distance).reshape((resolution,) * 3).astype(np.float32)


def grid_distance(vertices: np.ndarray, faces: np.ndarray, resolution: int, band: float | None = None,
                  closest: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """``(distance, closest points)`` of the ``resolution^3`` grid's vertices (C order) to a triangle mesh: the
    unsigned distance ``(N^3,)`` float64, exact (libigl's AABB tree, each point alone) everywhere, or with ``band``
    only where it may be below ``band`` and elsewhere :func:`distance_lower_bound`. ``closest``: also each vertex's
    closest mesh point ``(N^3, 3)``, NaN where the distance is a bound; otherwise None."""
    points = grid_points(resolution)
    vertices = np.ascontiguousarray(vertices, dtype=np.float64)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    distance = np.full(len(points), np.inf) if band is None else distance_lower_bound(vertices, faces, resolution)
    exact = np.ones(len(points), dtype=bool) if band is None else distance < band + BAND_MARGIN
    nearest = np.full((len(points), 3), np.nan) if closest else None
    if exact.any():
        squared, _, found = igl.point_mesh_squared_distance(np.ascontiguousarray(points[exact]), vertices, faces)
        distance[exact] = np.sqrt(squared)
        if closest:
            nearest[exact] = found
    return distance, nearest


def distance_lower_bound(vertices: np.ndarray, faces: np.ndarray, resolution: int) -> np.ndarray:
    """``(N^3,)``: for each grid vertex ``p`` (C order), a lower bound of its distance to the mesh, from the grid's
    Euclidean distance transform to the grid vertices nearest the mesh's vertices.

    A closest point ``q`` of the mesh lies on a face with some corner ``a`` within the face's longest edge ``D``;
    ``a`` lies within ``r`` of its nearest grid vertex ``g(a)`` (``r``: the largest such offset). So
    ``|p - q| >= |p - a| - D >= |p - g(a)| - r - D >= edt(p) - r - D``."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        raise ValueError("a mesh without faces has no distance to bound")
    spacing = 2.0 / (resolution - 1)
    index = np.clip(np.rint((vertices + 1.0) / spacing), 0, resolution - 1).astype(np.int64)
    offset = float(np.linalg.norm(vertices - (-1.0 + index * spacing), axis=1).max())
    corners = vertices[faces]
    diameter = max(float(np.linalg.norm(corners[:, i] - corners[:, (i + 1) % 3], axis=1).max()) for i in range(3))
    free = np.ones((resolution,) * 3, dtype=bool)
    free[tuple(index.T)] = False
    edt = ndimage.distance_transform_edt(free, sampling=spacing)
    return (edt - offset - diameter).ravel()


# --------------------------------------------------------------------------------------------------------------
# Loading what preprocessing wrote
# --------------------------------------------------------------------------------------------------------------
def split_ids(split_path: str | Path, subset: str) -> list[str]:
    """The sorted model ids of ``subset`` (``"train"`` or ``"test"``) of a category's split file."""
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    return sorted(read_json(split_path)[subset])


def ok_shapes(manifest_path: str | Path) -> list[tuple[dict, Path]]:
    """The usable shapes of a shard manifest with the paths of their normalized meshes."""
    manifest_path = Path(manifest_path)
    shapes = read_json(manifest_path)["shapes"]
    return [(r, manifest_path.parent / r["mesh"]) for r in shapes if r["status"] == "ok"]


def load_normalized_mesh(path: str | Path) -> trimesh.Trimesh:
    """A normalized mesh as preprocessing wrote it (read as is: no merging, no checks)."""
    return trimesh.load(Path(path), force="mesh", process=False)


def category_meshes(manifest_paths: Sequence[str | Path], ids: Sequence[str]) -> dict[str, Path]:
    """The normalized meshes of the shapes ``ids`` (of either subset) found in the shard manifests: id -> path.
    Shapes skipped in preprocessing are absent."""
    wanted = set(ids)
    return {r["model_id"]: path for m in manifest_paths for r, path in ok_shapes(m) if r["model_id"] in wanted}


def load_sdf_samples(sdf_paths: Sequence[str | Path], ids: Sequence[str], *, at_least_one: bool = False,
                     spill_bytes: int | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The SDF samples of the shapes ``ids`` found in the shards (shapes skipped in preprocessing are absent).

    Each array of a shard is decompressed once, and its wanted rows are copied into the output: memory stays near
    the output's size plus one shard's arrays. Where the output is larger than ``spill_bytes``, it is memory-mapped
    instead (:func:`_output_arrays`): memory then stays near one shard's arrays, and training reads only the
    samples it picks.

    Returns:
        ``(found, points, sdf)``: the found ids, sorted; ``points`` ``(n, P, 3)`` and ``sdf`` ``(n, P)`` float32 in
        that order (``(0, 0, 3)`` and ``(0, 0)`` when none is found, or ``ValueError`` with ``at_least_one``).
    """
    wanted, where = set(ids), {}  # id -> (shard, row)
    for shard, path in enumerate(sdf_paths):
        with np.load(path) as f:
            where |= {str(model_id): (shard, row) for row, model_id in enumerate(f["ids"]) if str(model_id) in wanted}
    order = sorted(where)
    if not order and at_least_one:
        raise ValueError(f"none of {len(ids)} shapes has SDF samples in {list(map(str, sdf_paths))}")
    if not order:
        return [], np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32)
    points = sdf = None
    for shard, path in enumerate(sdf_paths):
        slots = [(slot, where[model_id][1]) for slot, model_id in enumerate(order) if where[model_id][0] == shard]
        if not slots:
            continue
        out, rows = zip(*slots)
        with np.load(path) as f:
            shard_points, shard_sdf = f["points"], f["sdf"]
        if points is None:
            points, sdf = _output_arrays(len(order), shard_points, shard_sdf, spill_bytes)
        points[list(out)], sdf[list(out)] = shard_points[list(rows)], shard_sdf[list(rows)]
        del shard_points, shard_sdf
    return order, points, sdf


def _output_arrays(n: int, points: np.ndarray, sdf: np.ndarray, spill_bytes: int | None) -> tuple:
    """Empty ``(n, P, 3)`` and ``(n, P)`` outputs shaped like a shard's: in memory, or, above ``spill_bytes``,
    writable memory maps of files in ``$TOPOSDF_SPILL_DIR`` (else ``$TMPDIR``) that are unlinked at once (the space
    is freed with the arrays). Point it at a disk: on a tmpfs the maps are memory again."""
    shapes = [(n,) + points.shape[1:], (n,) + sdf.shape[1:]]
    size = sum(int(np.prod(shape)) * array.itemsize for shape, array in zip(shapes, (points, sdf)))
    if spill_bytes is None or size <= spill_bytes:
        return tuple(np.empty(shape, array.dtype) for shape, array in zip(shapes, (points, sdf)))
    folder = tempfile.mkdtemp(prefix="toposdf-samples-",
                              dir=os.environ.get("TOPOSDF_SPILL_DIR") or os.environ.get("TMPDIR"))
    arrays = tuple(np.lib.format.open_memmap(os.path.join(folder, f"{name}.npy"), mode="w+", dtype=array.dtype,
                                             shape=shape)
                   for name, shape, array in zip(("points", "sdf"), shapes, (points, sdf)))
    shutil.rmtree(folder)  # the maps stay valid; the disk space is freed when they are
    return arrays


def load_category_diagrams(paths: Sequence[str | Path]) -> tuple[list[str], list[Diagrams], dict]:
    """Concatenate the diagram shards of a category: ``(ids, diagrams, metadata)``, sorted by id."""
    ids, diagrams, meta = [], [], {}
    for path in paths:
        shard_ids, shard_diagrams, meta = load_diagrams(path)
        ids += shard_ids
        diagrams += shard_diagrams
    order = np.argsort(ids, kind="stable")
    return [ids[i] for i in order], [diagrams[i] for i in order], meta


def load_shape_diagrams(diagram_paths: Sequence[str | Path], ids: Sequence[str], *,
                        skip_missing: bool = False) -> dict[str, Diagrams]:
    """The ground-truth diagrams ``[PD0, PD1, PD2]`` of the shapes ``ids``: id -> diagrams, in the order of ``ids``.

    A shape without diagrams (skipped in preprocessing) raises ``ValueError`` naming it, or with ``skip_missing``
    is left out.
    """
    all_ids, diagrams, _ = load_category_diagrams(diagram_paths)
    by_id = dict(zip(all_ids, diagrams))
    missing = [i for i in ids if i not in by_id]
    if missing and not skip_missing:
        raise ValueError(f"no ground-truth diagrams for {len(missing)} shapes, e.g. {missing[:3]}")
    return {i: by_id[i] for i in ids if i in by_id}
