"""The preprocessing stages of the workflow, one function per rule: split, normalize, sample, grid, persistence.

Each stage processes one *shard* of a category (every ``n_shards``-th shape of the sorted split), so a
ShapeNet category of thousands of meshes is a few dozen jobs, not thousands.

Normalized meshes are written one file per shape next to the shard's manifest and reused by a rerun, so a shard
that stops on a broken mesh keeps the work it did for the others.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import trimesh
from tqdm import tqdm

from toposdf.config import Config
from toposdf.data import (
    MeshError,
    Normalization,
    folders_without_mesh,
    grid_points,
    list_models,
    load_category_diagrams,
    load_mesh,
    load_normalized_mesh,
    mesh_path,
    normalize_mesh,
    ok_shapes,
    orient_faces,
    sample_sdf,
    sdf_grid,
    shard_of,
    split_models,
    synset_of,
)
from toposdf.inside import inside, mesh_is_clean, solid_fraction
from toposdf.io import atomic_open, atomic_savez, atomic_write_json, read_json
from toposdf.layout import MESH_SUFFIXES
from toposdf.stages import optional
from toposdf.topology import batch_cubical_diagrams, betti_numbers, save_diagrams

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

MIN_SOLID = 0.001  # a shape with the inside beside less of its surface is no solid (skipped, or an error)
# A normalized shape with fewer of the 32^3 grid's points inside is too small in its bounding sphere to train on (a
# stray part far from it sets the scale): skipped, or an error. The shipped synthetic shapes have 300 or more.
MIN_INSIDE_POINTS = 8


def shape_seed(seed: int, model_id: str) -> int:
    """A per-shape seed that depends on the model id only (not on its shard or position)."""
    return (int(seed) * 1_000_003 + zlib.crc32(model_id.encode())) % 2**32


def _progress(items: Sequence, desc: str) -> tqdm:
    return tqdm(items, desc=desc, unit="shape", leave=False, mininterval=1.0)


# --------------------------------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------------------------------
def make_split(cfg: Config, category: str, root: str | Path) -> dict:
    """The train/test split of a category under a ShapeNet-layout root, as a JSON-able dict."""
    models = list_models(root, category)
    if len(models) < 2:
        folder = Path(root) / synset_of(category)
        hints = (_layout_hint(folder / name) for name in folders_without_mesh(root, category)[:20])
        raise ValueError(f"{category}: found {len(models)} models under {folder}; need >= 2"
                         + next((hint for hint in hints if hint), ""))
    files = optional(cfg, "dataset.splits")
    if files is not None:
        split = {subset: deepsdf_split(getattr(files, subset).format(category=category), category, models)
                 for subset in ("train", "test")}
        both = sorted(set(split["train"]) & set(split["test"]))
        if both:
            raise ValueError(f"dataset.splits: {len(both)} {category} ids are in both the train and the test file, "
                             f"e.g. {both[:5]}")
    else:
        split = split_models(models, cfg.dataset.test_fraction, cfg.dataset.seed, cfg.dataset.shapes_per_category)
    log.info("%s: %d models found, %d train / %d test", category, len(models), len(split["train"]), len(split["test"]))
    no_mesh = folders_without_mesh(root, category)  # named in shard 0's manifest (normalize_shard)
    if no_mesh:
        log.warning("%s: %d model folder(s) without a mesh, e.g. %s", category, len(no_mesh), no_mesh[:5])
    return {
        "category": category,
        "synset": synset_of(category),
        "root": str(Path(root).resolve()),
        "seed": cfg.dataset.seed,
        "test_fraction": cfg.dataset.test_fraction if files is None else None,
        **({"split_files": {"train": str(files.train), "test": str(files.test)}} if files is not None else {}),
        "n_found": len(models),
        **split,
        "no_mesh": no_mesh,
    }


def deepsdf_split(path: str | Path, category: str, models: Sequence[str]) -> list[str]:
    """The sorted model ids of ``category`` in a split file of DeepSDF's format
    (``{"ShapeNetV2": {synset: [ids]}}``); an id that is not among ``models`` (the dataset's) raises, naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset.splits: {path} is not a file")
    content = read_json(path)
    synset = synset_of(category)
    ids = [str(i) for per_dataset in content.values() if isinstance(per_dataset, dict)
           for i in per_dataset.get(synset, [])]
    if not ids:
        raise ValueError(f"{path}: no model ids for {category} (synset {synset}); expected "
                         '{"ShapeNetV2": {"' + synset + '": [ids]}}')
    missing = sorted(set(ids) - set(models))
    if missing:
        raise ValueError(f"{path}: {len(missing)} of its {category} ids are not in the dataset, e.g. {missing[:5]}")
    return sorted(set(ids))


def shard_models(split: dict, shard: int, n_shards: int) -> list[tuple[str, str]]:
    """``(model_id, "train" | "test")`` for the shapes of one shard."""
    which = {m: "train" for m in split["train"]} | {m: "test" for m in split["test"]}
    return [(m, which[m]) for m in shard_of(list(which), shard, n_shards)]


# --------------------------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------------------------
def normalize_shard(
    split: dict, shard: int, n_shards: int, manifest_path: str | Path, margin: float, skip_invalid: bool
) -> list[dict]:
    """Normalize the meshes of one shard; write ``{model_id}.obj`` beside the manifest, then the manifest.

    A mesh that cannot be read is recorded as ``status: skipped`` with the reason when ``skip_invalid``;
    otherwise every other mesh of the shard is still processed (and kept on disk for the rerun), and then a
    :class:`MeshError` naming each bad file is raised and no manifest is written.
    """
    out_dir = Path(manifest_path).parent
    records, failures = _without_mesh(split, skip_invalid) if shard == 0 else ([], [])
    for model_id, subset in _progress(shard_models(split, shard, n_shards), f"normalize {split['category']}"):
        source = mesh_path(split["root"], split["category"], model_id)
        record = {"model_id": model_id, "split": subset, "shard": shard, "source": str(source)}
        target, meta_path = out_dir / f"{model_id}.obj", out_dir / f"{model_id}.json"
        if meta_path.exists() and target.exists() and source.exists():
            meta = read_json(meta_path)
            if meta.get("margin") == margin and meta.get("source_mtime") == source.stat().st_mtime \
                    and "solid_fraction" in meta["record"]:
                records.append(record | meta["record"])
                continue
        try:
            mesh = load_mesh(source)
            normalized, norm, sign, inside_grid, solid = normalized_solid(mesh, margin, source)
            if (inside_points := round(inside_grid * 32 ** 3)) < MIN_INSIDE_POINTS:  # inside_grid: 6 decimals
                raise MeshError(f"{source}: {inside_points} of the 32^3 grid's points inside after "
                                "normalization: the solid is too small in its bounding sphere to train on (a part "
                                "far from it, a stray triangle, sets the scale?)")
        except MeshError as exc:
            if not skip_invalid:
                log.error("%s", exc)
                failures.append(str(exc))
                continue
            log.warning("skipping %s: %s", model_id, exc)
            records.append(record | {"status": "skipped", "reason": str(exc)})
            continue
        with atomic_open(target, "w") as fh:
            fh.write(trimesh.exchange.obj.export_obj(normalized, include_normals=False, include_texture=False))
        info = {
            "status": "ok",
            "reason": "",
            "mesh": target.name,
            "offset": norm.offset.tolist(),
            "scale": norm.scale,
            "n_vertices": int(len(normalized.vertices)),
            "n_faces": int(len(normalized.faces)),
            "watertight": bool(normalized.is_watertight),
            "sign": sign,
            "inside_fraction": inside_grid,
            "solid_fraction": solid,
        }
        atomic_write_json(meta_path, {"margin": margin, "source_mtime": source.stat().st_mtime, "record": info})
        records.append(record | info)
    if failures:
        raise MeshError(
            f"{len(failures)} mesh(es) of shard {shard} could not be used (set dataset.skip_invalid: true to skip "
            "them; the other shapes of the shard are kept for the rerun):\n  " + "\n  ".join(failures)
        )
    atomic_write_json(manifest_path, {"category": split["category"], "shard": shard, "shapes": records})
    return records


def _layout_hint(model_dir: Path) -> str:
    """For a model folder without ``models/model_normalized.obj``: the mesh files it has instead and the layout
    expected (a ShapeNetCore.v1 copy keeps ``<model_id>/model.obj``), or "" where it has none."""
    found = sorted(f.relative_to(model_dir).as_posix() for f in model_dir.rglob("*")
                   if f.suffix.lower() in MESH_SUFFIXES)[:3]
    return (f"; it has {', '.join(found)}: ShapeNetCore.v1's layout? dataset.root must be ShapeNetCore.v2, "
            "<root>/<synset>/<model_id>/models/model_normalized.obj") if found else ""


def _without_mesh(split: dict, skip_invalid: bool) -> tuple[list[dict], list[str]]:
    """Shard 0's records (``skip_invalid``) or failures for the split's model folders without a mesh, which are not
    in the split itself."""
    records, failures = [], []
    for model_id in split.get("no_mesh", []):
        source = mesh_path(split["root"], split["category"], model_id)
        reason = f"{source}: no such mesh file (the model folder has none{_layout_hint(source.parent.parent)})"
        if skip_invalid:
            log.warning("skipping %s: its folder has no mesh", model_id)
            records.append({"model_id": model_id, "split": "none", "shard": 0, "source": str(source),
                            "status": "skipped", "reason": reason})
        else:
            failures.append(reason)
    return records, failures


def normalized_solid(mesh, margin: float, source: str | Path, normalize: bool = True,
                     inside_fraction: bool = True) -> tuple:
    """``(normalized mesh, normalization, sign, inside fraction, solid fraction)``: the sign is ``"winding"`` for a
    clean mesh and ``"robust"`` otherwise (:mod:`toposdf.inside`, decided on the mesh as loaded), the inside fraction
    that of a 32^3 grid (where thin parts can fall between vertices), the solid fraction that of surface samples
    with the inside beside them. A mesh whose solid fraction is under ``MIN_SOLID`` (a single sheet, faces that
    cancel) raises. ``normalize`` False keeps the mesh's frame (its faces are still oriented); ``inside_fraction``
    False skips the grid's inside fraction (None)."""
    sign = "winding" if mesh_is_clean(mesh) else "robust"
    if normalize:
        normalized, norm = normalize_mesh(mesh, margin)
    else:
        normalized, norm = orient_faces(mesh), Normalization(offset=np.zeros(3), scale=1.0)
    robust = sign == "robust"
    solid = solid_fraction(normalized, robust)
    if solid < MIN_SOLID:
        raise MeshError(f"{source}: no inside beside {100 * (1 - solid):.1f}% of its surface (a single sheet, or a "
                        "surface whose faces cancel): not a solid")
    if not inside_fraction:
        return normalized, norm, sign, None, round(solid, 4)
    inside_grid = float(inside(grid_points(32), normalized.vertices, normalized.faces, robust).mean())
    return normalized, norm, sign, round(inside_grid, 6), round(solid, 4)


# --------------------------------------------------------------------------------------------------------------
# SDF samples and grids
# --------------------------------------------------------------------------------------------------------------
def sample_sdf_shard(manifest_path: str | Path, out_path: str | Path, cfg: Config) -> None:
    """DeepSDF samples of every usable shape of a shard, in one ``.npz``.

    Layout: ``ids`` (n,), ``split`` (n,), ``points`` (n, P, 3) float32, ``sdf`` (n, P) float32.
    """
    shapes = ok_shapes(manifest_path)
    P = cfg.sdf.n_points
    points = np.zeros((len(shapes), P, 3), np.float32)
    sdf = np.zeros((len(shapes), P), np.float32)
    for i, (record, path) in enumerate(_progress(shapes, "sample SDF")):
        points[i], sdf[i] = sample_sdf(
            load_normalized_mesh(path),
            P,
            cfg.sdf.variances,
            cfg.sdf.uniform_fraction,
            seed=shape_seed(cfg.dataset.seed, record["model_id"]),
            robust=record.get("sign") == "robust",
        )
    atomic_savez(
        out_path,
        ids=np.array([r["model_id"] for r, _ in shapes], dtype=str),
        split=np.array([r["split"] for r, _ in shapes], dtype=str),
        points=points,
        sdf=sdf,
    )


def grid_shard(manifest_path: str | Path, out_path: str | Path, resolution: int) -> None:
    """SDF grids of every usable shape of a shard: ``ids``, ``split``, ``grids`` (n, N, N, N) float32."""
    shapes = ok_shapes(manifest_path)
    grids = np.zeros((len(shapes),) + (resolution,) * 3, np.float32)
    for i, (record, path) in enumerate(_progress(shapes, f"SDF grid {resolution}^3")):
        grids[i] = sdf_grid(load_normalized_mesh(path), resolution, robust=record.get("sign") == "robust")
    atomic_savez(
        out_path,
        ids=np.array([r["model_id"] for r, _ in shapes], dtype=str),
        split=np.array([r["split"] for r, _ in shapes], dtype=str),
        grids=grids,
        resolution=np.asarray(resolution),
    )


# --------------------------------------------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------------------------------------------
def diagrams_shard(grids_path: str | Path, out_path: str | Path, cfg: Config, workers: int = 1) -> None:
    """Ground-truth diagrams (with critical vertices) of a shard's grids; see :func:`toposdf.topology.save_diagrams`."""
    with np.load(grids_path) as f:  # the resolution from the file: a shard without shapes has no grid to measure
        ids, grids = [str(i) for i in f["ids"]], f["grids"]
        resolution = int(f["resolution"]) if "resolution" in f.files else int(grids.shape[1])
    results = batch_cubical_diagrams(
        list(grids), cfg.persistence.tau, cfg.persistence.min_persistence, workers=workers, with_critical=True
    )
    for model_id, (diagrams, _) in zip(ids, results):
        log.info("%s: %s pairs, Betti numbers %s", model_id, [len(d) for d in diagrams], betti_numbers(diagrams))
    save_diagrams(
        out_path,
        ids,
        [d for d, _ in results],
        [c for _, c in results],
        tau=cfg.persistence.tau,
        min_persistence=cfg.persistence.min_persistence,
        resolution=int(resolution),
    )


def category_manifest(manifest_paths: Sequence[str | Path], diagram_paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per shape of a category: split, shard, status (ok/skipped) and reason, mesh statistics, and the
    Betti numbers and pair counts of its ground-truth diagrams."""
    import pandas as pd

    rows = [r for p in manifest_paths for r in read_json(p)["shapes"]]
    table = pd.DataFrame(rows).drop(columns=["mesh"], errors="ignore")
    ids, diagrams, _ = load_category_diagrams(diagram_paths)
    topo = pd.DataFrame(
        [
            {"model_id": i, **{f"b{k}": b for k, b in enumerate(betti_numbers(d))}, **{f"n_pd{k}": len(x) for k, x in enumerate(d)}}
            for i, d in zip(ids, diagrams)
        ],
        columns=["model_id", "b0", "b1", "b2", "n_pd0", "n_pd1", "n_pd2"],
    )
    table = table.merge(topo, on="model_id", how="left").sort_values("model_id").reset_index(drop=True)
    for column in ["b0", "b1", "b2", "n_pd0", "n_pd1", "n_pd2"]:
        table[column] = table[column].astype("Int64")
    return table


def contact_sheet_items(
    manifest_paths: Sequence[str | Path], diagram_paths: Sequence[str | Path], n_shapes: int
) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``(vertices, faces, label)`` of the first ``n_shapes`` usable shapes, labelled with their Betti numbers."""
    ids, diagrams, _ = load_category_diagrams(diagram_paths)
    betti = dict(zip(ids, (betti_numbers(d) for d in diagrams)))
    shapes = sorted((s for p in manifest_paths for s in ok_shapes(p)), key=lambda s: s[0]["model_id"])
    items = []
    for record, path in shapes[:n_shapes]:
        mesh = load_normalized_mesh(path)
        label = f"{record['model_id']}\nβ = {betti.get(record['model_id'], '?')}"
        items.append((np.asarray(mesh.vertices), np.asarray(mesh.faces), label))
    return items
