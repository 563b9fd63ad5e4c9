"""Scoring any generator's meshes (docs/external.md): a folder of generated meshes per category becomes a row of
Tables 1-2 and the generation table, with a contact sheet, beside the methods this project trains.

The meshes go through the ground truth's path (:mod:`toposdf.preprocess`): read (:func:`toposdf.data.load_mesh`),
normalized as the ground truth is (``normalize``, or only their faces oriented where they are already in its
frame), the sign chosen as for a ShapeNet mesh (:func:`~toposdf.preprocess.normalized_solid`), written as OBJ text
and read back as preprocessing does, then the signed distance on the ground truth's grid and its diagrams at the
ground truth's ``tau``. A mesh that cannot be read, has no triangles or no inside is an error naming it, or, with
the entry's ``skip_invalid`` (null: ``dataset.skip_invalid``), recorded as skipped in the row's manifest.

Draws: the usable meshes in file-name order, ``evaluation.generated_shapes`` (else as many as the test shapes) per
draw, ``evaluation.draws`` draws, or the entry's own ``draws``. Reconstructions, for CD-mean: one mesh per test
shape named by its model id, scored like a method's (the same surface points on the truth, the same seeds).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import trimesh
from tqdm import tqdm

from toposdf.checkpoints import cpu_threads
from toposdf.data import MeshError, category_meshes, load_mesh, sdf_grid, split_ids
from toposdf.evaluation import surface_points
from toposdf.field import extract_mesh
from toposdf.generation import Generation, draw_size, save_generation
from toposdf.io import atomic_open, atomic_write_json
from toposdf.jobs import Job
from toposdf.layout import MESH_SUFFIXES, mesh_files  # noqa: F401 (re-exported)
from toposdf.preprocess import normalized_solid
from toposdf.provenance import file_hash, provenance
from toposdf.reconstruction import reconstruction_chamfer
from toposdf.topology import batch_cubical_diagrams

log = logging.getLogger(__name__)


def prepare_mesh(path: str | Path, normalize: bool, margin: float) -> tuple[trimesh.Trimesh, dict]:
    """One external mesh on the ground truth's path up to its grid: read, normalized (or oriented in place), the
    sign chosen, written as OBJ and read back as preprocessing reads its meshes. Returns the mesh and its manifest
    record; raises :class:`~toposdf.data.MeshError` naming the file."""
    mesh = load_mesh(path)
    if Path(path).suffix.lower() == ".stl":  # a triangle soup: every face its own piece until corners are shared
        mesh.merge_vertices()
    return prepared(mesh, path, normalize, margin)


def obj_round_trip(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh`` written as OBJ text and read back as preprocessing reads its meshes (unprocessed), without the text:
    trimesh writes each coordinate with 8 decimals (:func:`obj_decimals`) and its reader keeps the vertices that
    faces use, in order (``tests/test_external.py`` checks it against trimesh's writer and reader)."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0:
        text = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_texture=False)
        return trimesh.load(trimesh.util.wrap_as_stream(text), file_type="obj", force="mesh", process=False)
    used = np.zeros(len(mesh.vertices), dtype=bool)
    used[faces] = True
    renumbered = np.cumsum(used) - 1
    return trimesh.Trimesh(obj_decimals(np.asarray(mesh.vertices, dtype=np.float64)[used]), renumbered[faces],
                           process=False)


def obj_decimals(values: np.ndarray) -> np.ndarray:
    """``values`` as ``"{:.8f}"`` text read back: the double nearest each value rounded to 8 decimals.

    The rounded decimal is ``k / 10^8`` with the integer ``k``; dividing the exact doubles ``k`` and ``10^8`` rounds
    once, to that nearest double, as a correct parser does. ``k`` is the product ``values * 10^8`` rounded, except
    where the product's own rounding could decide it (within 1e-6 of a half, or too large for exact integers):
    those few are formatted and parsed."""
    scaled = values * 1e8
    out = np.rint(scaled) / 1e8
    doubt = ~(np.abs(scaled) < 2.0**52) | (np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-6)
    if doubt.any():
        out[doubt] = [float(f"{value:.8f}") for value in values[doubt]]
    return out


def prepared(mesh: trimesh.Trimesh, source: str | Path, normalize: bool, margin: float,
             inside_fraction: bool = True) -> tuple[trimesh.Trimesh, dict]:
    """:func:`prepare_mesh` of a mesh already read (``source`` names it in errors); ``inside_fraction`` False
    leaves the record's grid inside fraction out (None), for meshes whose record only needs the sign."""
    normalized, norm, sign, inside_grid, solid = normalized_solid(mesh, margin, source, normalize, inside_fraction)
    reread = obj_round_trip(normalized)
    return reread, {"status": "ok", "reason": "", "offset": norm.offset.tolist(), "scale": norm.scale,
                    "n_faces": int(len(reread.faces)), "sign": sign, "inside_fraction": inside_grid,
                    "solid_fraction": solid}


def prepare_meshes(paths: Sequence[Path], normalize: bool, margin: float, skip_invalid: bool,
                   skip_key: str = "dataset.skip_invalid", what: str = "meshes"
                   ) -> tuple[list[tuple[Path, trimesh.Trimesh, dict]], list[dict]]:
    """:func:`prepare_mesh` of every file: ``(usable (path, mesh, record) in order, every file's record)``. Bad
    files are skipped with their reason under ``skip_invalid``; otherwise every file is tried, then one
    :class:`MeshError` names each bad one and the setting that would skip them (``skip_key``)."""
    usable, records, failures = [], [], []
    for path in tqdm(paths, desc=f"prepare {what}", unit="mesh"):
        try:
            mesh, record = prepare_mesh(path, normalize, margin)
        except MeshError as exc:
            if not skip_invalid:
                failures.append(str(exc))
                continue
            log.warning("skipping %s: %s", path.name, exc)
            records.append({"file": path.name, "status": "skipped", "reason": str(exc)})
            continue
        record = {"file": path.name} | record
        usable.append((path, mesh, record))
        records.append(record)
    if failures:
        raise MeshError(f"{len(failures)} of the {len(paths)} {what} cannot be scored (remove or mend them, or set "
                        f"{skip_key}: true to skip them and record why in the row's manifest):\n  "
                        + "\n  ".join(failures))
    return usable, records


def draws_from(found: int, per_draw: int, draws: int, entry_draws: int | None, where: str) -> int:
    """The number of draws a folder of ``found`` usable meshes gives: ``entry_draws`` when the entry sets it, else
    ``draws`` (``evaluation.draws``), each of ``per_draw`` shapes; too few meshes raise, saying how many."""
    wanted = entry_draws or draws
    if found < wanted * per_draw:
        hint = ("" if entry_draws else
                f" Or set the entry's draws to score fewer draws (up to {found // per_draw} with these files).")
        raise ValueError(f"{where}: PD-LAP needs {wanted} draws x {per_draw} shapes = {wanted * per_draw} meshes, "
                         f"found {found} usable.{hint}")
    return wanted


def grids_and_diagrams(meshes: Sequence[tuple[trimesh.Trimesh, dict]], resolution: int, tau: float,
                       min_persistence: float, workers: int = 1, band: bool = False) -> tuple[np.ndarray, list]:
    """The ground truth's grid (:func:`toposdf.data.sdf_grid`, each mesh's sign) and diagrams of meshes. ``band``:
    the grids exact only within ``tau`` of the surface (the same diagrams, fewer distance queries), for callers
    that keep only the diagrams."""
    grids = np.stack([sdf_grid(mesh, resolution, robust=record["sign"] == "robust", band=tau if band else None)
                      for mesh, record in tqdm(meshes, desc=f"SDF grid {resolution}^3", unit="mesh")])
    results = batch_cubical_diagrams(list(grids), tau, min_persistence, workers=workers, with_critical=True)
    return grids, [diagrams for diagrams, _ in results]


def mesh_path_diagrams(grids: np.ndarray, network_diagrams: list, resolution: int, tau: float, min_persistence: float,
                       workers: int = 1) -> tuple[list, int]:
    """A trained row's shapes scored as an external row's (``evaluation.score_from: meshes``): the marching-cubes
    mesh of each network grid through :func:`prepare_mesh`'s path (in the ground truth's frame already) to the
    ground truth's grid and diagrams. A shape without a surface keeps its network diagrams. Returns the diagrams and
    how many kept the network's."""
    diagrams = list(network_diagrams)
    meshed = meshes_on_ground_truth_path([extract_mesh(grid) for grid in grids])
    if meshed:
        _, scored = grids_and_diagrams([(mesh, record) for _, mesh, record in meshed], resolution, tau,
                                       min_persistence, workers, band=True)
        for (i, _, _), d in zip(meshed, scored):
            diagrams[i] = d
    return diagrams, len(grids) - len(meshed)


def meshes_on_ground_truth_path(meshes: Sequence[tuple[np.ndarray, np.ndarray]],
                                ) -> list[tuple[int, trimesh.Trimesh, dict]]:
    """Meshes a generator made in the ground truth's frame, as if written to OBJ files and read on the ground
    truth's path (:func:`prepared`, no margin): ``(index, mesh, record)`` of those with a surface and an inside."""
    usable = []
    for i, (vertices, faces) in enumerate(meshes):
        if len(faces) == 0:
            continue
        try:
            usable.append((i, *prepared(obj_round_trip(trimesh.Trimesh(vertices, faces, process=False)),
                                        f"shape {i}", False, 1.0, inside_fraction=False)))
        except MeshError:  # no inside: a sheet
            continue
    return usable


def _entry(job: Job):
    return job.cfg.external[job.wildcards.external]


def _skip_invalid(job: Job) -> tuple[bool, str]:
    """Whether the entry skips bad meshes, and the setting a user changes for it: the entry's own (which reruns only
    its row) where set, else ``dataset.skip_invalid``."""
    name = job.wildcards.external
    own = _entry(job).skip_invalid
    return (job.cfg.dataset.skip_invalid if own is None else own), f"external.{name}.skip_invalid"


def run_external_samples(job: Job) -> dict:
    """The ``external_samples`` rule: the folder's meshes (``input.samples``) scored on the ground truth's grid and
    diagrams, in draws of as many shapes as the methods' (``input.split``'s test shapes, or
    ``evaluation.generated_shapes``). Writes ``output.diagrams`` and ``output.shapes`` as the ``generate`` rule
    does (so that ``evaluate`` and the contact sheet treat the row as a method's), and ``output.manifest``: every
    file with its status, draw and sign."""
    cfg, name, category = job.cfg, job.wildcards.external, job.wildcards.category
    entry, ev = _entry(job), cfg.evaluation
    folder = entry.samples.format(category=category)
    n = draw_size(ev.generated_shapes, len(split_ids(job.input.split, "test")))
    paths = [Path(p) for p in job.input.samples]
    usable, records = prepare_meshes(paths, entry.normalize, cfg.sdf.margin, *_skip_invalid(job),
                                     what=f"meshes of external.{name} ({category})")
    draws = draws_from(len(usable), n, ev.draws, entry.draws, f"external.{name} ({category}, {folder})")
    used = usable[: draws * n]
    for k, (_, _, record) in enumerate(used):
        record["draw"], record["index"] = k // n, k % n
    grids, diagrams = grids_and_diagrams([(mesh, record) for _, mesh, record in used], cfg.grid.resolution,
                                         cfg.persistence.tau, cfg.persistence.min_persistence, job.threads)
    first = [(np.asarray(mesh.vertices), np.asarray(mesh.faces)) for _, mesh, _ in used[:n]]
    result = Generation(seeds=[], z=np.zeros((draws, n, 0), np.float32),
                        diagrams=[diagrams[d * n : (d + 1) * n] for d in range(draws)], grids=grids[:n],
                        meshes=first, generator_diagrams=None)
    source = provenance(job.settings) | {"folder": folder, "files": {p.name: file_hash(p) for p in paths}}
    save_generation(result, job.output.diagrams, job.output.shapes, provenance=json.dumps(source))
    manifest = {"name": name, "category": category, "folder": folder, "normalize": entry.normalize, "draws": draws,
                "shapes_per_draw": n, "usable": len(usable), "unused": len(usable) - len(used),
                "skipped": sum(r["status"] != "ok" for r in records), "files": records, "provenance": source}
    atomic_write_json(job.output.manifest, manifest)
    log.info("external.%s (%s): %d draws x %d shapes from %s (%d files, %d skipped, %d unused)", name, category,
             draws, n, folder, len(paths), manifest["skipped"], manifest["unused"])
    return manifest


def reconstruction_files(paths: Sequence[Path], test_ids: Sequence[str], where: str) -> dict[str, Path]:
    """The reconstruction file of each test shape, named by its model id; a missing, extra or repeated id raises,
    naming it."""
    by_id: dict[str, Path] = {}
    for path in paths:
        if path.stem in by_id:
            raise ValueError(f"{where}: two reconstructions of {path.stem}: {by_id[path.stem].name}, {path.name}")
        by_id[path.stem] = path
    missing = [i for i in test_ids if i not in by_id]
    extra = sorted(set(by_id) - set(test_ids))
    problems = ([f"no reconstruction of test shape(s) {', '.join(missing[:10])}" +
                 (f" and {len(missing) - 10} more" if len(missing) > 10 else "")] if missing else []) + \
               ([f"file(s) named by no test shape: {', '.join(by_id[i].name for i in extra[:10])}" +
                 (f" and {len(extra) - 10} more" if len(extra) > 10 else "")] if extra else [])
    if problems:
        raise ValueError(f"{where}: one mesh per test shape, named by its model id: " + "; ".join(problems))
    return by_id


def run_external_reconstructions(job: Job) -> pd.DataFrame:
    """The ``external_reconstructions`` rule: CD-mean's per-shape Chamfer distances of the entry's reconstructions
    (``input.reconstructions``, one per test shape) against the truth, as ``reconstruct`` scores a method's (the
    same surface points and seeds), to ``output.chamfer``. Without reconstructions every test shape's distance is
    empty and ``note`` says why; a skipped mesh's (``dataset.skip_invalid``) is empty with its reason."""
    cfg, name, category, ev = job.cfg, job.wildcards.external, job.wildcards.category, job.cfg.evaluation
    entry, test_ids = _entry(job), split_ids(job.input.split, "test")
    truth_meshes = category_meshes(job.input.manifests, test_ids)
    columns = ["model_id", "chamfer", "fit_loss", "vertices", "note"]
    if entry.reconstructions is None:
        note = f"no reconstructions given (external.{name}.reconstructions)"
        table = pd.DataFrame([[i, np.nan, np.nan, 0, note] for i in test_ids], columns=columns)
    else:
        where = f"external.{name} ({category}, {entry.reconstructions.format(category=category)})"
        by_id = reconstruction_files([Path(p) for p in job.input.reconstructions], test_ids, where)
        ordered = [by_id[i] for i in test_ids]
        usable, records = prepare_meshes(ordered, entry.normalize, cfg.sdf.margin, *_skip_invalid(job),
                                         what=f"reconstructions of external.{name} ({category})")
        meshes = {path.stem: mesh for path, mesh, _ in usable}
        reasons = {record["file"]: record["reason"] for record in records}
        rows = []
        for k, shape_id in enumerate(test_ids):
            if shape_id not in truth_meshes or shape_id not in meshes:
                why = reasons.get(by_id[shape_id].name) or "the test shape was skipped in preprocessing"
                rows.append([shape_id, np.nan, np.nan, 0, why])
                continue
            mesh = (np.asarray(meshes[shape_id].vertices), np.asarray(meshes[shape_id].faces))
            truth = surface_points(truth_meshes[shape_id], ev.surface_points, ev.seed + k)
            cd = reconstruction_chamfer(mesh, truth, ev.surface_points, ev.seed + k, job.threads)
            rows.append([shape_id, cd, np.nan, len(mesh[0]), ""])
        table = pd.DataFrame(rows, columns=columns)
    with atomic_open(job.output.chamfer, "w") as fh:
        table.to_csv(fh, index=False)
    return table


# --------------------------------------------------------------------------------------------------------------
# The 3DShape2VecSet row (toposdf.vecset): a generator of occupancy, scored from its meshes on this path
# --------------------------------------------------------------------------------------------------------------
# The test shapes' input clouds are drawn with seeds apart from those of their CD points
CLOUD_SEED_OFFSET = 1_000_000


def occupancy_meshes(logits: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The marching-cubes meshes of occupancy logits on the grid (level 0, p = 0.5, as the official sampler;
    outward faces)."""
    return [extract_mesh(-grid) for grid in logits]


def scored_meshes(meshes: Sequence[tuple[np.ndarray, np.ndarray]], resolution: int, tau: float,
                  min_persistence: float, workers: int = 1) -> tuple[np.ndarray, list, int]:
    """Meshes a generator wrote, in the ground truth's frame, through the ground truth's path (as if read from OBJ
    files: :func:`prepared` without normalizing): ``(grids, diagrams, empty)``. A mesh with no surface or no inside
    is scored as the empty shape (a grid of ``tau`` everywhere: nothing inside); ``empty`` counts them."""
    grids = np.full((len(meshes),) + (resolution,) * 3, tau, np.float32)
    usable = meshes_on_ground_truth_path(meshes)
    diagrams = [None] * len(meshes)
    if usable:
        scored_grids, scored = grids_and_diagrams([(mesh, record) for _, mesh, record in usable], resolution, tau,
                                                  min_persistence, workers)
        for (i, _, _), grid, d in zip(usable, scored_grids, scored):
            grids[i], diagrams[i] = grid, d
    if len(usable) < len(meshes):  # every empty shape has the same grid, so the same diagrams
        (empty, _), = batch_cubical_diagrams([np.full((resolution,) * 3, tau, np.float32)], tau, min_persistence,
                                             with_critical=True)
        diagrams = [empty if d is None else d for d in diagrams]
    return grids, diagrams, len(meshes) - len(usable)


def run_vecset_samples(job: Job) -> Generation:
    """The ``vecset_samples`` rule: ``evaluation.draws`` draws of as many latent sets as the methods' shapes
    (``input.split``'s test shapes, or ``evaluation.generated_shapes``) from the diffusion model
    ``input.diffusion`` (Heun, ``vecset.diffusion.sampler_steps``; the draws' seeds as a method's), decoded by
    ``input.autoencoder`` on the grid (``grid.resolution``, the methods' meshes' resolution), meshed and scored on
    the ground truth's path; written as ``generate`` writes a method's draws."""
    from toposdf.generation import draw_seeds
    from toposdf.training.vecset import load_autoencoder, load_diffusion
    from toposdf.vecset import decode_grid

    cfg, ev = job.cfg, job.cfg.evaluation
    cpu_threads(job.threads)
    model, _ = load_autoencoder(job.input.autoencoder)
    edm, scale = load_diffusion(job.input.diffusion)
    n = draw_size(ev.generated_shapes, len(split_ids(job.input.split, "test")))
    seeds = draw_seeds(ev.seed, ev.draws)
    device = next(model.parameters()).device
    latents, diagrams, first, empty = [], [], None, 0
    for d, seed in enumerate(tqdm(seeds, desc="3DShape2VecSet samples", unit="draw")):
        z = edm.sample(n, seed, cfg.vecset.diffusion.sampler_steps, device=device) * scale
        meshes = occupancy_meshes(decode_grid(model, z, cfg.grid.resolution))
        grids, dgms, no_surface = scored_meshes(meshes, cfg.grid.resolution, cfg.persistence.tau,
                                                cfg.persistence.min_persistence, job.threads)
        empty += no_surface
        latents.append(z.flatten(1).cpu().numpy())
        diagrams.append(dgms)
        if d == 0:
            first = (grids, meshes)
    log.info("3DShape2VecSet: %d draws of %d shapes; %d without a surface or an inside", len(seeds), n, empty)
    result = Generation(seeds, np.stack(latents), diagrams, first[0], first[1], None)
    save_generation(result, job.output.diagrams, job.output.shapes,
                    provenance=json.dumps(provenance(job.settings, job.input.diffusion, ev.seed)))
    return result


def run_vecset_reconstructions(job: Job) -> pd.DataFrame:
    """The ``vecset_reconstructions`` rule: each test shape reconstructed by encoding its surface cloud (its
    natural reconstruction: ``vecset.autoencoder.points`` points on its normalized mesh, seeded apart from its CD
    points) and decoding a seeded posterior sample on the grid (as the official model reconstructs), then scored
    for CD-mean as a method's (``output.chamfer``)."""
    from toposdf.training.vecset import encode_clouds, load_autoencoder, posterior_samples
    from toposdf.vecset import decode_grid

    cfg, ev = job.cfg, job.cfg.evaluation
    cpu_threads(job.threads)
    model, _ = load_autoencoder(job.input.autoencoder)
    test_ids = split_ids(job.input.split, "test")
    truth_meshes = category_meshes(job.input.manifests, test_ids)
    device = next(model.parameters()).device
    rows = []
    for k, shape_id in enumerate(tqdm(test_ids, desc="3DShape2VecSet reconstructions", unit="shape")):
        if shape_id not in truth_meshes:
            rows.append([shape_id, np.nan, np.nan, 0, "the test shape was skipped in preprocessing"])
            continue
        cloud = surface_points(truth_meshes[shape_id], model.size.points, CLOUD_SEED_OFFSET + ev.seed + k)[None]
        z = posterior_samples(*encode_clouds(model, cloud.astype(np.float32), ev.seed + k), ev.seed + k)
        mesh = occupancy_meshes(decode_grid(model, torch.as_tensor(z).to(device), cfg.grid.resolution))[0]
        truth = surface_points(truth_meshes[shape_id], ev.surface_points, ev.seed + k)
        cd = reconstruction_chamfer(mesh, truth, ev.surface_points, ev.seed + k, job.threads)
        rows.append([shape_id, cd, np.nan, len(mesh[0]), "" if len(mesh[1]) else "no surface"])
    table = pd.DataFrame(rows, columns=["model_id", "chamfer", "fit_loss", "vertices", "note"])
    with atomic_open(job.output.chamfer, "w") as fh:
        table.to_csv(fh, index=False)
    return table
