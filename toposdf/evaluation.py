"""The evaluation rules' entry points: generation, interpolation, test-shape reconstruction and the metrics.

Each writes its numbers with their provenance (:func:`toposdf.provenance.provenance`: the config's hash, the
checkpoint and its hash, the seed, the commit), so that every number in a table or figure can be traced to the run
that made it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .checkpoints import load_checkpoint
from .config import Config
from .data import category_meshes, grid_points, load_normalized_mesh, load_sdf_samples, load_shape_diagrams, split_ids
from .field import evaluate_grid, sample_surface
from .figures import pd_matrices_figure
from .generation import (Generation, draw_seeds, draws_of, generate, generator_diagrams, interpolate, load_meshes,
                         TrainedModel, load_model, sample_latents, save_generation, save_meshes, shapes_at)
from .io import atomic_open, atomic_write_json
from .metrics import cd_mean, mmd_cov_1nna, pd_lap_summary
from .provenance import provenance
from .reconstruction import reconstruct_latent, reconstruction_chamfer, reconstruction_mesh
from .tables import DISPLAY_NAMES
from .topology import Diagrams, betti_numbers, cubical_diagrams, off_diagonal, pd_lap, save_diagrams

log = logging.getLogger(__name__)


def _json_safe(obj):
    """``nan`` and ``inf`` as ``null`` (strict JSON has neither; :func:`toposdf.tables.collect` reads null as nan)."""
    if isinstance(obj, dict):
        return {key: _json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(value) for value in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------------------------- test shapes
def surface_points(mesh_path: str | Path, n: int, seed: int) -> np.ndarray:
    """``n`` points drawn uniformly on a normalized ground-truth mesh (:func:`toposdf.field.sample_surface`)."""
    mesh = load_normalized_mesh(mesh_path)
    return sample_surface(np.asarray(mesh.vertices), np.asarray(mesh.faces), n, seed)


# ---------------------------------------------------------------------------------------------- rules
# Generated and reconstructed shapes use the ground truth's grid (cfg.grid_resolution): a perfect generator scores 0.
def run_generate(cfg: Config, raw_config: dict, model_path, split_path, diagrams_out, shapes_out,
                 threads: int = 1) -> Generation:
    """``evaluation.draws`` draws of as many shapes as the category has test shapes (or
    ``evaluation.generated_shapes``), with their diagrams, grids and meshes."""
    torch.set_num_threads(max(1, threads))
    ev = cfg.evaluation
    model = load_model(model_path)
    n = ev["generated_shapes"] or len(split_ids(split_path, "test"))
    result = generate(model, n, ev["draws"], ev["seed"], cfg.grid_resolution, cfg.persistence.tau,
                      cfg.persistence.min_persistence, workers=max(1, threads))
    empty = sum(len(v) == 0 for v, _ in result.meshes)
    log.info("%s: %d draws of %d shapes; %d of draw 0 have no surface", model.method, ev["draws"], n, empty)
    save_generation(result, diagrams_out, shapes_out,
                    provenance=json.dumps(provenance(raw_config, model_path, ev["seed"])))
    return result


def run_interpolate(cfg: Config, raw_config: dict, model_path, meshes_out, diagrams_out,
                    generator_out=None) -> None:
    """The paper's Fig. 2 path between two training shapes (``figures.interpolation_*``): the implicit
    generator's meshes (``meshes_out``) and diagrams (``diagrams_out``) along the path, and, with
    ``generator_out``, the PD generators' diagrams at the same codes (the model must have PD generators)."""
    fig = cfg.figures
    model = load_model(model_path)
    a, b = (i % len(model.ids) for i in fig["interpolation_shapes"])
    result = interpolate(model, a, b, fig["interpolation_steps"], cfg.grid_resolution, cfg.persistence.tau,
                         cfg.persistence.min_persistence)
    steps = [f"{i:02d}" for i in range(len(result.t))]
    save_diagrams(diagrams_out, steps, result.diagrams)
    extra = {}
    if generator_out is not None:
        if result.generator_diagrams is None:
            raise ValueError(f"{model_path} has no PD generators, so there are no generator diagrams for "
                             f"{generator_out}")
        save_diagrams(generator_out, steps, result.generator_diagrams)
        extra["generator_diagrams"] = np.asarray(Path(generator_out).name)
    save_meshes(meshes_out, result.meshes, t=result.t, shape_ids=np.asarray(result.shape_ids),
                provenance=np.asarray(json.dumps(provenance(raw_config, model_path))), **extra)


def run_reconstruct(cfg: Config, raw_config: dict, model_path, split_path, sdf_paths, manifest_paths, csv_out,
                    meshes_out, threads: int = 1) -> pd.DataFrame:
    """DeepSDF's CD protocol on every test shape: fit its code with the network frozen, mesh it, and take the
    Chamfer distance between ``evaluation.surface_points`` points on the reconstruction and on the truth."""
    torch.set_num_threads(max(1, threads))
    ev, rec = cfg.evaluation, cfg.evaluation["reconstruct"]
    model = load_model(model_path)
    ids = split_ids(split_path, "test")
    found, points, sdf = load_sdf_samples(sdf_paths, ids)
    samples, meshes = dict(zip(found, zip(points, sdf))), category_meshes(manifest_paths, ids)
    rows, recon = [], []
    for k, shape_id in enumerate(tqdm(ids, desc=f"reconstruct {model.method}", unit="shape")):
        if shape_id not in samples or shape_id not in meshes:
            log.warning("test shape %s has no SDF samples or mesh (skipped in preprocessing)", shape_id)
            continue
        z, loss = reconstruct_latent(model.decoder, *samples[shape_id], model.latent_size, rec["iterations"],
                                     rec["lr"], reg=rec["reg"], samples_per_iteration=rec["samples_per_iteration"],
                                     seed=ev["seed"] + k)
        # the narrow band gives the full grid's zero level set (see generation.shapes_at) at a fraction of the work
        mesh = reconstruction_mesh(model.decoder, z, cfg.grid_resolution, cfg.persistence.tau)
        truth = surface_points(meshes[shape_id], ev["surface_points"], ev["seed"] + k)
        cd = reconstruction_chamfer(mesh, truth, ev["surface_points"], ev["seed"] + k, max(1, threads))
        rows.append({"model_id": shape_id, "chamfer": cd, "fit_loss": loss, "vertices": len(mesh[0])})
        recon.append(mesh)
    table = pd.DataFrame(rows, columns=["model_id", "chamfer", "fit_loss", "vertices"])
    mean, failed = cd_mean(table["chamfer"])
    log.info("%s: CD-mean %.5f over %d test shapes (%d without surface)", model.method, mean, len(table), failed)
    with atomic_open(csv_out, "w") as fh:
        table.to_csv(fh, index=False)
    save_meshes(meshes_out, recon, ids=np.asarray(table["model_id"].tolist()),
                provenance=np.asarray(json.dumps(provenance(raw_config, model_path, ev["seed"]))))
    return table


# ---------------------------------------------------------------------------------------------- calibration
# The two calibration rows of Tables 1 and 2 (toposdf.tables.CALIBRATION, DESIGN.md, Evaluation): a method's PD-LAP
# means something only between them.
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


def diagram_summary(diagrams: Sequence[Diagrams], threshold: float) -> dict[str, float]:
    """What shapes' diagrams hold, per homology dimension k, over the points of persistence above ``threshold``:
    ``h{k}_points`` (mean count per shape), ``h{k}_total_persistence`` (mean per shape), and over all those points
    ``h{k}_median_life``, ``h{k}_mean_birth`` and ``h{k}_mean_death`` (NaN where there is none).

    It says how two sets of diagrams differ where PD-LAP gives one number: e.g. samples whose tunnels are as many
    as the training shapes' but shorter-lived (smaller holes) score a worse PD-LAP-H1 than their Betti numbers
    suggest. ``tools/diagram_stats.py`` prints it for a run's training and test shapes, each method's samples and
    its PD generators' targets at ``z ~ N(0, I)``.
    """
    kept = [off_diagonal(d, threshold) for d in diagrams]
    summary: dict[str, float] = {}
    for k in range(3):
        per_shape = [np.asarray(d[k], np.float64) for d in kept]
        every = np.concatenate(per_shape) if per_shape else np.zeros((0, 2))
        life = every @ [-1.0, 1.0]
        none = len(every) == 0
        summary[f"h{k}_points"] = float(np.mean([len(p) for p in per_shape])) if per_shape else float("nan")
        summary[f"h{k}_total_persistence"] = float(life.sum() / len(per_shape)) if per_shape else float("nan")
        summary[f"h{k}_median_life"] = float("nan") if none else float(np.median(life))
        summary[f"h{k}_mean_birth"] = float("nan") if none else float(every[:, 0].mean())
        summary[f"h{k}_mean_death"] = float("nan") if none else float(every[:, 1].mean())
    return summary


def occupancy_fit(decoded: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How well decoded shapes reproduce their training shapes, from ``(n, ...)`` boolean occupancies (inside:
    value below 0) of shape ``i`` decoded from its own code and of shape ``i`` itself:

    - ``decoded_iou``: the mean IoU of decoded shape ``i`` with shape ``i``;
    - ``nearest_other_iou``: the mean IoU of each training shape with its nearest other training shape, what
      decoding "a similar shape" would score (NaN for one shape);
    - ``retrieval``: the share of decoded shapes closest (by IoU) to their own shape among the training shapes;
    - ``volume_ratio``: decoded volume over true volume (above 1: filled in, thicker).
    """
    d = decoded.reshape(len(decoded), -1).astype(np.float32)
    t = truth.reshape(len(truth), -1).astype(np.float32)

    def iou(a, b):
        inter = a @ b.T
        return inter / np.maximum(a.sum(1)[:, None] + b.sum(1)[None] - inter, 1.0)

    cross, among = iou(d, t), iou(t, t)
    np.fill_diagonal(among, -np.inf)
    return {"decoded_iou": float(np.diag(cross).mean()),
            "nearest_other_iou": float(among.max(1).mean()) if len(t) > 1 else float("nan"),
            "retrieval": float(np.mean(cross.argmax(1) == np.arange(len(d)))),
            "volume_ratio": float(d.sum() / max(t.sum(), 1.0))}


def training_fit(model: TrainedModel, grid_paths: Sequence[str | Path], batch: int = 16) -> dict[str, float]:
    """:func:`occupancy_fit` of a trained model's training codes (``f(., mu_i)`` on the ground truth's grid) against
    the ground-truth SDF grids (``grids/{shard}.npz``) of its training shapes."""
    truth: dict[str, np.ndarray] = {}
    resolution = None
    for path in grid_paths:
        with np.load(path) as data:
            truth.update({str(i): g < 0 for i, g in zip(data["ids"], data["grids"])})
            resolution = int(data["resolution"])
    missing = [i for i in model.ids if i not in truth]
    if missing:
        raise ValueError(f"no ground-truth grid for {len(missing)} training shapes (first: {missing[0]})")
    decoded = np.concatenate([evaluate_grid(model.decoder, model.mu[i : i + batch], resolution) < 0
                              for i in range(0, len(model.mu), batch)])
    return occupancy_fit(decoded, np.stack([truth[i] for i in model.ids]))


def blob_diagrams(resolution: int, tau: float, min_persistence: float, radius: float = 0.5) -> Diagrams:
    """The diagrams of one fixed blob, a ball of ``radius``, on the ground truth's grid: the essential class
    ``(-tau, tau)`` and nothing else (every blob large enough to reach ``-tau`` inside has this diagram)."""
    grid = np.linalg.norm(grid_points(resolution), axis=1).reshape((resolution,) * 3) - radius
    return cubical_diagrams(grid, tau, min_persistence)


def calibration_draws(train: Sequence[Diagrams], n: int, seed: int, draws: int) -> list[list[Diagrams]]:
    """``draws`` sets of ``n`` held-out training shapes' diagrams, each a seeded random subset (drawn with
    replacement only when there are fewer than ``n`` training shapes)."""
    out = []
    for s in draw_seeds(seed, draws):
        rng = np.random.default_rng(s)
        pick = rng.choice(len(train), size=n, replace=len(train) < n)
        out.append([train[i] for i in pick])
    return out


def _metrics_entry(category: str, method: str, metrics: dict, **extra) -> dict:
    return {"category": category, "method": method, "metrics": metrics, **extra}


def _pd_lap_metrics(summary: dict, draws: int) -> dict:
    return {"pd_lap": {"mean": summary["total"][0], "std": summary["total"][1], "n": draws},
            **{f"pd_lap_h{k}": {"mean": summary[f"H{k}"][0], "std": summary[f"H{k}"][1], "n": draws}
               for k in range(3)}}


def _scalar_metrics(values: dict) -> dict:
    return {key: {"mean": value, "std": None, "n": 1} for key, value in values.items()}


def run_calibrate(cfg: Config, raw_config: dict, category: str, split_path, diagram_paths, out_path,
                  threads: int = 1) -> dict:
    """The two calibration rows of one category, on the test shapes and the settings of every method's PD-LAP:

    - ``heldout_training``: ``evaluation.draws`` random sets of training shapes (held out of the test set) against
      the test shapes: the floor, what a generator that reproduces the training distribution scores;
    - ``blob``: a generator whose every sample is one fixed blob (:func:`blob_diagrams`): the ceiling.
    """
    ev = cfg.evaluation
    reference = list(load_shape_diagrams(diagram_paths, split_ids(split_path, "test"), skip_missing=True).values())
    train = list(load_shape_diagrams(diagram_paths, split_ids(split_path, "train")).values())
    n = ev["generated_shapes"] or len(reference)
    floor = calibration_draws(train, n, ev["seed"], ev["draws"])
    tau = cfg.persistence.tau
    blob = [[blob_diagrams(cfg.grid_resolution, tau, cfg.persistence.min_persistence)] * n]
    processes = max(1, threads)
    rows = {
        "heldout_training": _pd_lap_metrics(pd_lap_summary(floor, reference, processes).stats(), len(floor))
        | _scalar_metrics(betti_summary([d for draw in floor for d in draw], tau)),
        "blob": _pd_lap_metrics(pd_lap_summary(blob, reference, processes).stats(), 1)
        | _scalar_metrics(betti_summary(blob[0], tau)),
    }
    result = {"category": category, "test_shapes": len(reference), "test_betti": betti_summary(reference, tau),
              "rows": [_metrics_entry(category, name, metrics) for name, metrics in rows.items()],
              "provenance": provenance(raw_config, seed=ev["seed"])}
    atomic_write_json(out_path, _json_safe(result))
    log.info("%s calibration: PD-LAP floor %.5f, ceiling %.5f", category, rows["heldout_training"]["pd_lap"]["mean"],
             rows["blob"]["pd_lap"]["mean"])
    return result


def run_evaluate(cfg: Config, raw_config: dict, method: str, category: str, model_path, split_path,
                 generated_diagrams, generated_shapes, reconstruction_csv, diagram_paths, manifest_paths, out_path,
                 threads: int = 1) -> dict:
    """Table 1 and 2's numbers for one category and method, and the generation metrics, to ``metrics.json``."""
    ev = cfg.evaluation
    ids = split_ids(split_path, "test")
    reference = list(load_shape_diagrams(diagram_paths, ids, skip_missing=True).values())
    summary = pd_lap_summary(draws_of(generated_diagrams), reference, processes=max(1, threads)).stats()
    test_betti = betti_summary(reference, cfg.persistence.tau)
    chamfers = pd.read_csv(reconstruction_csv)["chamfer"].to_numpy()
    cd, failed = cd_mean(chamfers)
    finite = chamfers[np.isfinite(chamfers)]
    meshes = category_meshes(manifest_paths, ids)
    references = [surface_points(meshes[i], ev["cloud_points"], ev["seed"] + k) for k, i in enumerate(sorted(meshes))]
    samples = [sample_surface(v, f, ev["cloud_points"], ev["seed"] + k)
               for k, (v, f) in enumerate(load_meshes(generated_shapes))]
    generation = mmd_cov_1nna(samples, references, workers=max(1, threads))
    generated = draws_of(generated_diagrams)
    draws = len(generated)
    metrics = {
        "cd_mean": {"mean": cd, "std": float(finite.std()) if len(finite) else float("nan"), "n": int(len(finite)),
                    "failed": failed},
        **_pd_lap_metrics(summary, draws),
        **_scalar_metrics({key.lower().replace("-", "_"): value  # one draw: no std
                           for key, value in generation.items() if key != "empty_samples"}),
        # the Betti numbers of every draw's samples (compare with the test shapes', test_betti)
        **_scalar_metrics(betti_summary([d for draw in generated for d in draw], cfg.persistence.tau)),
    }
    # How well the training codes cover N(0, I) (models.check_prior_coverage): below 0.5, the generated shapes
    # lie outside what the decoder learned, and PD-LAP cannot tell methods apart.
    coverage = load_checkpoint(model_path).get("latent_aggregate_std")
    result = {"category": category, "method": method, "metrics": metrics,
              "empty_generated_meshes": generation["empty_samples"], "test_shapes": len(ids), "test_betti": test_betti,
              "latent_aggregate_std": coverage, "provenance": provenance(raw_config, model_path, ev["seed"])}
    atomic_write_json(out_path, _json_safe(result))
    log.info("%s/%s: %s", category, method, {k: round(v["mean"], 5) for k, v in metrics.items()})
    return result


def run_pd_matrices(cfg: Config, raw_config: dict, category: str, model_path, diagram_paths, figure_out,
                    values_out, threads: int = 1) -> dict:
    """Fig. 3: ``d_PD`` between the training shapes and as many synthetic shapes ``z ~ N(0, I)``, and between the
    training shapes and the PD generators' output at the same codes, each with its PD-LAP (eq. 2)."""
    torch.set_num_threads(max(1, threads))
    model = load_model(model_path)
    if model.generators is None:
        raise ValueError(f"{model_path}: Fig. 3 needs a method with PD generators (figures.ours)")
    train = list(load_shape_diagrams(diagram_paths, model.ids).values())
    seed = cfg.evaluation["seed"]
    z = sample_latents(len(train), model.latent_size, seed, model.device)
    _, synthetic = shapes_at(model, z, cfg.grid_resolution, cfg.persistence.tau, cfg.persistence.min_persistence,
                             workers=max(1, threads))
    generated = [off_diagonal(d) for d in generator_diagrams(model, z)]
    implicit, pdgen = pd_lap(train, synthetic, max(1, threads)), pd_lap(train, generated, max(1, threads))
    name = DISPLAY_NAMES.get(model.method, model.method)
    pd_matrices_figure(figure_out, [("training vs synthetic shapes", implicit.W, implicit.value, implicit.assignment),
                                    ("training vs PD-generator output", pdgen.W, pdgen.value, pdgen.assignment)],
                       f"{category}, {name}: pairwise PD distances ({len(train)} shapes each)")
    values = {"category": category, "method": model.method, "shapes": len(train),
              "pd_lap_training_vs_synthetic": implicit.value, "pd_lap_training_vs_pd_generator": pdgen.value,
              "provenance": provenance(raw_config, model_path, seed)}
    atomic_write_json(values_out, values)
    return values
