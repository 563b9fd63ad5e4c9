"""The evaluation rules' entry points: generation, interpolation, test-shape reconstruction, the metrics and the
training fit (measured by :mod:`toposdf.diagnostics`). Each writes its numbers with their provenance
(:func:`toposdf.provenance.provenance`: the config's hash, the checkpoint and its hash, the seed, the commit), so
that every number in a table or figure can be traced to the run that made it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from .checkpoints import cpu_threads, load_checkpoint
from .config import Config
from .jobs import Job
from .data import category_meshes, load_normalized_mesh, load_sdf_samples, load_shape_diagrams, split_ids
from .field import sample_surface
from .generation import (Generation, Mesh, draw_size, draws_of, generate, generator_diagrams, interpolate,
                         load_meshes, TrainedModel, load_model, sample_latents, save_generation, save_meshes,
                         scored_draws, shapes_at)
from .io import atomic_open, atomic_write_json, json_safe
from .metrics import PDLapSummary, cd_mean, mmd_cov_1nna, pd_lap_summary
from .provenance import provenance
from .stages import optional
from .reconstruction import reconstruct_latents, reconstruction_chamfer, reconstruction_mesh
from .tables import DISPLAY_NAMES
from .topology import Diagrams, betti_numbers, off_diagonal, pd_lap, save_diagrams

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- test shapes
def surface_points(mesh_path: str | Path, n: int, seed: int) -> np.ndarray:
    """``n`` points drawn uniformly on a normalized ground-truth mesh (:func:`toposdf.field.sample_surface`)."""
    mesh = load_normalized_mesh(mesh_path)
    return sample_surface(np.asarray(mesh.vertices), np.asarray(mesh.faces), n, seed)


def shape_clouds(manifest_paths: Sequence[str | Path], ids: Sequence[str], n: int, seed: int) -> dict[str, np.ndarray]:
    """The ground-truth point clouds of the generation metrics: id -> ``(n, 3)`` :func:`surface_points` on the
    normalized mesh of each of ``ids`` found in the manifests, in sorted id order, the k-th seeded ``seed + k``
    (shapes skipped in preprocessing are absent)."""
    meshes = category_meshes(manifest_paths, ids)
    return {i: surface_points(meshes[i], n, seed + k) for k, i in enumerate(sorted(meshes))}


def generation_metrics(meshes: Sequence[Mesh], references: Sequence[np.ndarray], n: int, seed: int,
                       workers: int = 1) -> dict[str, float]:
    """ShapeGF's MMD/COV/1-NNA-CD (:func:`toposdf.metrics.mmd_cov_1nna`) of generated meshes against reference
    clouds: ``n`` points on the k-th mesh, seeded ``seed + k`` (an empty mesh gives an empty cloud)."""
    samples = [sample_surface(v, f, n, seed + k) for k, (v, f) in enumerate(meshes)]
    return mmd_cov_1nna(samples, references, workers=workers)


# ---------------------------------------------------------------------------------------------- rules
# Generated and reconstructed shapes use the ground truth's grid (cfg.grid.resolution): a perfect generator scores 0.
def run_generate(job: Job) -> Generation:
    """``evaluation.draws`` draws of as many shapes as the category has test shapes (or
    ``evaluation.generated_shapes``), with their diagrams (``output.diagrams``), grids and meshes
    (``output.shapes``), from ``input.model``."""
    cfg, raw_config, threads, model_path = job.cfg, job.settings, job.threads, job.input.model
    cpu_threads(threads)
    ev = cfg.evaluation
    model = load_model(model_path)
    n = draw_size(ev.generated_shapes, len(split_ids(job.input.split, "test")))
    result = generate(model, n, ev.draws, ev.seed, cfg.grid.resolution, cfg.persistence.tau,
                      cfg.persistence.min_persistence, workers=max(1, threads), rescore=mesh_rescoring(cfg, threads))
    empty = sum(len(v) == 0 for v, _ in result.meshes)
    log.info("%s: %d draws of %d shapes; %d of draw 0 have no surface", model.method, ev.draws, n, empty)
    save_generation(result, job.output.diagrams, job.output.shapes,
                    provenance=json.dumps(provenance(raw_config, model_path, ev.seed)))
    return result


def mesh_rescoring(cfg: Config, threads: int = 1):
    """With ``evaluation.score_from: meshes``, the hook of :func:`~toposdf.generation.generate` that scores each
    draw from its marching-cubes meshes, as an external row's are scored
    (:func:`toposdf.external.mesh_path_diagrams`; docs/results.md, section 10); None (the network's grid) else."""
    if optional(cfg, "evaluation.score_from") != "meshes":
        return None
    from toposdf.external import mesh_path_diagrams  # toposdf.external builds on this module

    def rescore(grids, diagrams):
        scored, kept = mesh_path_diagrams(grids, diagrams, cfg.grid.resolution, cfg.persistence.tau,
                                          cfg.persistence.min_persistence, max(1, threads))
        if kept:
            log.info("%d shapes without a surface keep their network diagrams", kept)
        return scored

    return rescore


def run_interpolate(job: Job) -> None:
    """The paper's Fig. 2 path between two training shapes (``figures.interpolation_*``) of ``input.model``: the
    implicit generator's meshes (``output.meshes``) and diagrams (``output.diagrams``) along the path, and, with
    ``output.generator``, the PD generators' diagrams at the same codes (the model must have PD generators)."""
    cfg, model_path, generator_out = job.cfg, job.input.model, getattr(job.output, "generator", None)
    fig = cfg.figures
    cpu_threads(job.threads)
    model = load_model(model_path)
    a, b = fig.interpolation_shapes  # interpolate() refuses an index beyond the model's training shapes
    result = interpolate(model, a, b, fig.interpolation_steps, cfg.grid.resolution, cfg.persistence.tau,
                         cfg.persistence.min_persistence)
    steps = [f"{i:02d}" for i in range(len(result.t))]
    save_diagrams(job.output.diagrams, steps, result.diagrams)
    extra = {}
    if generator_out is not None:
        if result.generator_diagrams is None:
            raise ValueError(f"{model_path} has no PD generators, so there are no generator diagrams for "
                             f"{generator_out}")
        save_diagrams(generator_out, steps, result.generator_diagrams)
        extra["generator_diagrams"] = np.asarray(Path(generator_out).name)
    save_meshes(job.output.meshes, result.meshes, t=result.t, shape_ids=np.asarray(result.shape_ids),
                provenance=np.asarray(json.dumps(provenance(job.settings, model_path))), **extra)


def reconstruct_test_shapes(cfg: Config, model: TrainedModel, ids: Sequence[str], sdf_paths, manifest_paths,
                            threads: int = 1, iterations: int | None = None) -> pd.DataFrame:
    """DeepSDF's CD protocol on the test shapes ``ids``: every code fitted with the network frozen, all in one pass
    per iteration (:func:`toposdf.reconstruction.reconstruct_latents`; shape ``k`` of ``ids`` seeded
    ``evaluation.seed + k``), meshed in the narrow band, and scored by the Chamfer distance between
    ``evaluation.surface_points`` points on the reconstruction and on the truth. ``iterations`` overrides
    ``evaluation.reconstruct.iterations``. Shapes without SDF samples or mesh are skipped with a warning.

    Returns one row per reconstructed shape: ``model_id``, ``chamfer``, ``fit_loss``, ``vertices``, ``code``
    (``(L,)`` float32) and ``mesh`` (vertices, faces)."""
    ev, rec = cfg.evaluation, cfg.evaluation.reconstruct
    iterations = rec.iterations if iterations is None else iterations
    found, points, sdf = load_sdf_samples(sdf_paths, ids)
    samples, meshes = dict(zip(found, zip(points, sdf))), category_meshes(manifest_paths, ids)
    kept = []
    for k, shape_id in enumerate(ids):
        if shape_id in samples and shape_id in meshes:
            kept.append((k, shape_id))
        else:
            log.warning("test shape %s has no SDF samples or mesh (skipped in preprocessing)", shape_id)
    rows = []
    if not kept:
        return pd.DataFrame(rows, columns=["model_id", "chamfer", "fit_loss", "vertices", "code", "mesh"])
    log.info("%s: fitting %d test codes, %d iterations", model.method, len(kept), iterations)
    fitted, losses = reconstruct_latents(model.decoder, [samples[i] for _, i in kept], model.latent_size, iterations,
                                         rec.lr, reg=rec.reg, samples_per_iteration=rec.samples_per_iteration,
                                         seeds=[ev.seed + k for k, _ in kept])
    for (k, shape_id), z, loss in zip(tqdm(kept, desc=f"reconstruct {model.method}", unit="shape"), fitted, losses):
        # the narrow band gives the full grid's zero level set (see generation.shapes_at) at a fraction of the work
        mesh = reconstruction_mesh(model.decoder, z, cfg.grid.resolution, cfg.persistence.tau)
        truth = surface_points(meshes[shape_id], ev.surface_points, ev.seed + k)
        cd = reconstruction_chamfer(mesh, truth, ev.surface_points, ev.seed + k, max(1, threads))
        rows.append({"model_id": shape_id, "chamfer": cd, "fit_loss": loss, "vertices": len(mesh[0]),
                     "code": z.detach().cpu().numpy().astype(np.float32), "mesh": mesh})
    return pd.DataFrame(rows)


def run_reconstruct(job: Job) -> pd.DataFrame:
    """:func:`reconstruct_test_shapes` of ``input.model`` on every test shape (``input.split``, ``input.samples``,
    ``input.manifests``): the per-shape Chamfer distances to ``output.chamfer``, and to ``output.meshes`` the meshes,
    their ``ids`` and the fitted codes ``latents`` ``(m, latent)`` in the same order
    (:func:`toposdf.diagnostics.fitted_test_codes`; ``rule training_fit`` decodes them on the ground truth's grid)."""
    cfg, raw_config, threads, model_path = job.cfg, job.settings, job.threads, job.input.model
    cpu_threads(threads)
    ev = cfg.evaluation
    model = load_model(model_path)
    shapes = reconstruct_test_shapes(cfg, model, split_ids(job.input.split, "test"), job.input.samples,
                                     job.input.manifests, threads)
    table = shapes[["model_id", "chamfer", "fit_loss", "vertices"]]
    mean, failed = cd_mean(table["chamfer"])
    log.info("%s: CD-mean %.5f over %d test shapes (%d without surface)", model.method, mean, len(table), failed)
    with atomic_open(job.output.chamfer, "w") as fh:
        table.to_csv(fh, index=False)
    latents = (np.stack(shapes["code"].tolist()) if len(shapes)
               else np.zeros((0, model.latent_size), np.float32))
    save_meshes(job.output.meshes, shapes["mesh"].tolist(), ids=np.asarray(table["model_id"].tolist()), latents=latents,
                provenance=np.asarray(json.dumps(provenance(raw_config, model_path, ev.seed))))
    return table


# ---------------------------------------------------------------------------------------------- metrics files
# What a metrics file holds for each row (a method's here, the calibration rows' in toposdf.calibration).
def betti_summary(diagrams: Sequence[Diagrams], tau: float | None = None) -> dict[str, float]:
    """Betti statistics of shapes (from their diagrams, at level 0): mean b0, b1, b2, the share with one
    component (``b0_is_1``) and the share of blobs (one component, no tunnel, no void).

    With ``tau`` (the diagrams' clamp), also ``thick_fraction``: the share of shapes with a point more than ``tau``
    inside, whose deepest component is born at the clamp ``-tau``. There the clamped field is flat, so eq. 8 has
    no gradient to make the shape thinner, and its PD-LAP-H0 sits at the blob's.
    """
    betti = np.array([betti_numbers(d) for d in diagrams]).reshape(-1, 3)
    thick = {} if tau is None else {"thick_fraction": float("nan")}
    if len(betti) == 0:
        return {"mean_b0": float("nan"), "mean_b1": float("nan"), "mean_b2": float("nan"),
                "b0_is_1": float("nan"), "blob_fraction": float("nan"), **thick}
    blob = (betti[:, 0] == 1) & (betti[:, 1] == 0) & (betti[:, 2] == 0)
    if tau is not None:
        deepest = np.array([d[0][:, 0].min() if len(d[0]) else np.inf for d in diagrams])
        thick["thick_fraction"] = float(np.mean(deepest <= -tau))
    return {"mean_b0": float(betti[:, 0].mean()), "mean_b1": float(betti[:, 1].mean()),
            "mean_b2": float(betti[:, 2].mean()), "b0_is_1": float(np.mean(betti[:, 0] == 1)),
            "blob_fraction": float(blob.mean()), **thick}


def pd_lap_metrics(summary: PDLapSummary, spread: bool = True) -> dict:
    """PD-LAP and Table 2's columns over the z-draws, each draw's value kept (the draws pair up across methods).
    ``spread=False``: the std is None (the tables show the mean alone), for a row whose one draw measures no spread;
    the blob's row keeps its 0, the spread of a generator that makes one shape."""
    metrics = over_draws([{"pd_lap": total, **{f"pd_lap_h{k}": dims[k] for k in range(3)}}
                          for total, dims in zip(summary.values, summary.per_dimension)], keep_draws=True)
    return metrics if spread else {key: value | {"std": None} for key, value in metrics.items()}


def scalar_metrics(values: dict) -> dict:
    return {key: {"mean": value, "std": None, "n": 1} for key, value in values.items()}


def metric_names(generation: dict) -> dict:
    """``mmd_cd``, ``cov_cd``, ``1_nna_cd`` from :func:`toposdf.metrics.mmd_cov_1nna`'s keys (without the count
    of empty samples)."""
    return {key.lower().replace("-", "_"): value for key, value in generation.items() if key != "empty_samples"}


def over_draws(per_draw: Sequence[dict], keep_draws: bool = False) -> dict:
    """Metrics of several draws as ``{"mean", "std" (ddof=0, as PD-LAP's), "n"}``, with each draw's (``draws``)."""
    values = {key: np.array([draw[key] for draw in per_draw], np.float64) for key in per_draw[0]}
    kept = {key: {"draws": v.tolist()} if keep_draws else {} for key, v in values.items()}
    return {key: {"mean": float(v.mean()), "std": float(v.std()), "n": len(v)} | kept[key] for key, v in values.items()}


def run_evaluate(job: Job) -> dict:
    """Table 1 and 2's numbers for one category and method, and the generation metrics, to ``output.metrics``, from
    the model, its draws (``input.generated``, ``input.shapes``) and test-shape reconstructions (``input.chamfer``),
    and the ground truth (``input.split``, ``input.diagrams``, ``input.manifests``). An external row
    (:mod:`toposdf.external`) has no model: its draws and reconstructions come from its meshes, the rest is the
    same."""
    cfg, raw_config, threads, model_path = job.cfg, job.settings, job.threads, job.optional_input("model")
    method, category, generated_diagrams = job.wildcards.method, job.wildcards.category, job.input.generated
    split_path, diagram_paths, manifest_paths = job.input.split, job.input.diagrams, job.input.manifests
    ev = cfg.evaluation
    ids = split_ids(split_path, "test")
    reference = list(load_shape_diagrams(diagram_paths, ids, skip_missing=True).values())
    references = list(shape_clouds(manifest_paths, ids, ev.cloud_points, ev.seed).values())
    generated, meshes = scored_draws(draws_of(generated_diagrams), load_meshes(job.input.shapes), len(reference),
                                     f"{category}/{method}")
    summary = pd_lap_summary(generated, reference, processes=max(1, threads))
    test_betti = betti_summary(reference, cfg.persistence.tau)
    table = pd.read_csv(job.input.chamfer)
    chamfers = table["chamfer"].to_numpy(np.float64)
    cd, failed = cd_mean(chamfers)
    finite = chamfers[np.isfinite(chamfers)]
    # an external row's reconstructions say why a distance is missing (none given, a mesh skipped)
    notes = sorted(set(table["note"].dropna().astype(str)) - {""}) if "note" in table else []
    generation = generation_metrics(meshes[: len(references)], references, ev.cloud_points, ev.seed, max(1, threads))
    metrics = {
        "cd_mean": {"mean": cd, "std": float(finite.std()) if len(finite) else float("nan"), "n": int(len(finite)),
                    "failed": failed} | ({"note": "; ".join(notes)} if notes else {}),
        **pd_lap_metrics(summary, spread=len(summary.values) > 1),  # an external row's draws: 1 has no spread
        **scalar_metrics(metric_names(generation)),  # one draw: no std
        # the Betti numbers of every draw's samples (compare with the test shapes', test_betti)
        **scalar_metrics(betti_summary([d for draw in generated for d in draw], cfg.persistence.tau)),
    }
    # How well the training codes cover N(0, I) (models.check_prior_coverage): below 0.5, the generated shapes
    # lie outside what the decoder learned, and PD-LAP cannot tell methods apart.
    coverage = load_checkpoint(model_path).get("latent_aggregate_std") if model_path is not None else None
    result = {"category": category, "method": method, "metrics": metrics,
              "empty_generated_meshes": generation["empty_samples"], "test_shapes": len(ids), "test_betti": test_betti,
              "latent_aggregate_std": coverage, "provenance": provenance(raw_config, model_path, ev.seed)}
    atomic_write_json(job.output.metrics, json_safe(result))
    log.info("%s/%s: %s", category, method, {k: round(v["mean"], 5) for k, v in metrics.items()})
    return result


def run_pd_matrices(job: Job) -> dict:
    """Fig. 3: ``d_PD`` between the training shapes (``input.diagrams``) and as many synthetic shapes
    ``z ~ N(0, I)`` of ``input.model``, and between the training shapes and the PD generators' output at the same
    codes, each with its PD-LAP (eq. 2): the figure to ``output.figure``, the values to ``output.values``."""
    cfg, threads, model_path, category = job.cfg, job.threads, job.input.model, job.wildcards.category
    cpu_threads(threads)
    model = load_model(model_path)
    if model.generators is None:
        raise ValueError(f"{model_path}: Fig. 3 needs a method with PD generators (figures.ours)")
    train = list(load_shape_diagrams(job.input.diagrams, model.ids).values())
    seed, sample = cfg.evaluation.seed, optional(cfg, "figures.pd_matrix_shapes")
    if sample is not None and sample < len(train):  # a seeded sample: the matrices grow with the square
        train = [train[i] for i in sorted(np.random.default_rng(seed).choice(len(train), sample, replace=False))]
    z = sample_latents(len(train), model.latent_size, seed, model.device)
    _, synthetic = shapes_at(model, z, cfg.grid.resolution, cfg.persistence.tau, cfg.persistence.min_persistence,
                             workers=max(1, threads))
    generated = [off_diagonal(d) for d in generator_diagrams(model, z)]
    implicit, pdgen = pd_lap(train, synthetic, max(1, threads)), pd_lap(train, generated, max(1, threads))
    name = DISPLAY_NAMES.get(model.method, model.method)
    from .figures import pd_matrices_figure  # here: matplotlib starts in this job only, not in every evaluation job
    pd_matrices_figure(job.output.figure, [("training vs synthetic shapes", implicit.W, implicit.value, implicit.assignment),
                                    ("training vs PD-generator output", pdgen.W, pdgen.value, pdgen.assignment)],
                       f"{category}, {name}: pairwise PD distances ({len(train)} shapes each)")
    values = {"category": category, "method": model.method, "shapes": len(train),
              "pd_lap_training_vs_synthetic": implicit.value, "pd_lap_training_vs_pd_generator": pdgen.value,
              "provenance": provenance(job.settings, model_path, seed)}
    atomic_write_json(job.output.values, values)
    return values
