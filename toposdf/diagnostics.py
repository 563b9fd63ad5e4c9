"""Diagnostics: measurements that explain a run's numbers rather than make the paper's tables.

What shapes' diagrams hold (:func:`diagram_summary`) and where PD generators' points sit against their targets
(:func:`matched_offsets`), which ``tools/diagram_stats.py`` prints; and how well a trained decoder reproduces its
own shapes on the ground truth's grid (:func:`training_fit`), which ``tools/training_fit.py`` prints and
``rule training_fit`` writes (:func:`run_training_fit`). Nothing here imports
:mod:`toposdf.evaluation`.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .checkpoints import cpu_threads
from .field import evaluate_grid, evaluate_grid_band
from .generation import TrainedModel, load_model, sample_latents
from .io import atomic_write_json, json_safe
from .jobs import Job
from .provenance import provenance
from .topology import Diagrams, batch_cubical_diagrams, betti_numbers, off_diagonal, pd_distance

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- diagrams
def diagram_summary(diagrams: Sequence[Diagrams], threshold: float) -> dict[str, float]:
    """What shapes' diagrams hold, per homology dimension k, over the points of persistence above ``threshold``:
    ``h{k}_points`` (mean count per shape), ``h{k}_total_persistence`` (mean per shape), and over all those points
    ``h{k}_median_life``, ``h{k}_mean_birth``, ``h{k}_mean_death`` and ``h{k}_born_outside``, the share born at a
    positive level (NaN where there is none).

    It says how two sets of diagrams differ where PD-LAP gives one number: e.g. samples whose tunnels are as many
    as the training shapes' but shorter-lived (smaller holes) score a worse PD-LAP-H1 than their Betti numbers
    suggest. A tunnel born outside the surface is a ring that closes only in the offset band around it: a broken
    rail or leg (the real shapes' tunnels are solid rings, born inside). ``tools/diagram_stats.py`` prints it for a
    run's training and test shapes, each method's samples and its PD generators' targets at ``z ~ N(0, I)``.
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
        summary[f"h{k}_born_outside"] = float("nan") if none else float((every[:, 0] > 0).mean())
    return summary


def h0_kinds(diagrams: Sequence[Diagrams], threshold: float, tau: float) -> dict[str, float]:
    """The H0 points of shapes besides the essential class (persistence above ``threshold``), by kind: ``far``
    pieces, which die at ``tau`` (more than ``2 tau`` from the rest of the shape), ``floating`` pieces, which join
    it within ``tau`` (dying outside the surface), and ``lump`` (born and dying inside: a thick part joined through
    a thinner neck). Per kind, the mean count per shape (``{kind}_per_shape``) and the mean of ``0.5 p^2`` per shape
    (``{kind}_cost``), what such points cost as PD-LAP extras against a shape without them; and the share of shapes
    with a far piece (``shapes_with_far``). The essential class is the deepest-born point dying at ``tau``."""
    counts = {kind: 0.0 for kind in ("far", "floating", "lump")}
    costs, with_far = dict(counts), 0
    for shape in diagrams:
        points = np.asarray(off_diagonal(shape, threshold)[0], np.float64).reshape(-1, 2)
        dies_at_tau = points[:, 1] >= tau - 1e-6
        at_tau = np.flatnonzero(dies_at_tau)
        essential = at_tau[np.argmin(points[at_tau, 0])] if len(at_tau) else -1
        with_far += len(at_tau) > 1
        for i, (birth, death) in enumerate(points):
            if i != essential:
                kind = "far" if dies_at_tau[i] else "lump" if death <= 0 else "floating"
                counts[kind] += 1
                costs[kind] += 0.5 * (death - birth) ** 2
    n = max(1, len(diagrams))
    return {**{f"{k}_per_shape": v / n for k, v in counts.items()}, **{f"{k}_cost": v / n for k, v in costs.items()},
            "shapes_with_far": with_far / n}


def matched_offsets(generated: Sequence[Diagrams], targets: Sequence[Diagrams]) -> dict[str, float]:
    """How PD generators' diagrams sit against the diagrams they were fitted to, per homology dimension k: over the
    pairs that eq. 1's optimal matching pairs off the diagonal, ``h{k}_birth_offset`` and ``h{k}_death_offset``
    (mean of generated minus target) and ``h{k}_matched`` (their count per shape); NaN where none is matched.

    A systematic offset is what a mean PD-LAP cannot show: e.g. generators whose tunnels are born above the
    training shapes' (rings that close only outside the surface: broken legs and rails) pull eq. 8's synthetic
    shapes toward such rings. ``generated[i]`` and ``targets[i]`` are ``[PD0, PD1, PD2]`` of the same shape.
    """
    summary: dict[str, float] = {}
    for k in range(3):
        offsets = []
        for gen, target in zip(generated, targets, strict=True):
            a, b = off_diagonal([np.asarray(gen[k], np.float64)])[0], np.asarray(target[k], np.float64).reshape(-1, 2)
            matching = pd_distance(a, b, return_matching=True)[1].reshape(-1, 2)
            both = matching[(matching[:, 0] >= 0) & (matching[:, 1] >= 0)]
            offsets.append(a[both[:, 0]] - b[both[:, 1]])
        every = np.concatenate(offsets) if offsets else np.zeros((0, 2))
        none = len(every) == 0
        summary[f"h{k}_matched"] = len(every) / max(1, len(offsets))
        summary[f"h{k}_birth_offset"] = float("nan") if none else float(every[:, 0].mean())
        summary[f"h{k}_death_offset"] = float("nan") if none else float(every[:, 1].mean())
    return summary


# ---------------------------------------------------------------------------------------------- training fit
# Two training shapes whose ground truths overlap at least this much (IoU on the grid) are near-twins: a decoder
# that gives one the other's shape has not failed, so retrieval_no_twin leaves both out.
TWIN_IOU = 0.85


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every row of ``a`` ``(m, V)`` with every row of ``b`` ``(n, V)``, 0/1 float32 occupancies: ``(m, n)``
    (0 where both are empty)."""
    inter = a @ b.T
    return inter / np.maximum(a.sum(1)[:, None] + b.sum(1)[None] - inter, 1.0)


def occupancy_fit(decoded: np.ndarray, truth: np.ndarray, twin_iou: float = TWIN_IOU) -> dict[str, float]:
    """How well decoded shapes reproduce their training shapes, from ``(n, ...)`` boolean occupancies (inside:
    value below 0) of shape ``i`` decoded from its own code and of shape ``i`` itself:

    - ``decoded_iou``: the mean IoU of decoded shape ``i`` with shape ``i``;
    - ``nearest_other_iou``: the mean IoU of each training shape with its nearest other training shape, what
      decoding "a similar shape" would score (NaN for one shape);
    - ``retrieval``: the share of decoded shapes closest (by IoU) to their own shape among the training shapes
      (a tie goes to the shape listed first);
    - ``retrieval_no_twin``: the same share over the shapes without a near-twin, those whose nearest other
      training shape has IoU below ``twin_iou`` (NaN when every shape has one); ``shapes_no_twin``: how many
      they are. Decoding a shape as its near-twin fails ``retrieval`` but says little about the decoder;
    - ``volume_ratio``: decoded volume over true volume (above 1: filled in, thicker).
    """
    if decoded.shape != truth.shape or len(truth) == 0:
        raise ValueError(f"expected decoded and true occupancies of the same shape (n, ...) with n > 0, got "
                         f"{decoded.shape} and {truth.shape}")
    d = decoded.reshape(len(decoded), -1).astype(np.float32)
    t = truth.reshape(len(truth), -1).astype(np.float32)
    cross, among = _iou(d, t), _iou(t, t)
    np.fill_diagonal(among, -np.inf)
    hit = cross.argmax(1) == np.arange(len(d))
    alone = among.max(1) < twin_iou  # one shape: its nearest other is -inf, so no twin
    return {"decoded_iou": float(np.diag(cross).mean()),
            "nearest_other_iou": float(among.max(1).mean()) if len(t) > 1 else float("nan"),
            "retrieval": float(hit.mean()),
            "retrieval_no_twin": float(hit[alone].mean()) if alone.any() else float("nan"),
            "shapes_no_twin": int(alone.sum()),
            "volume_ratio": float(d.sum() / max(t.sum(), 1.0))}


def occupancy_betti(occupancy: np.ndarray) -> np.ndarray:
    """Betti numbers ``(b0, b1, b2)`` of each ``(N, N, N)`` boolean occupancy of ``(n, N, N, N)``: ``(n, 3)``
    int, from the cubical persistence of the field -1 inside, +1 outside (the same complex as every diagram of
    this project, so the shape's topology on the grid however short its pairs would be in an SDF)."""
    fields = [np.where(o, -1.0, 1.0).astype(np.float32) for o in occupancy]
    return np.array([betti_numbers(d) for d in batch_cubical_diagrams(fields)], dtype=int).reshape(-1, 3)


def topology_fit(decoded: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Whether decoded shapes keep their training shapes' topology on the grid, from ``(n, N, N, N)`` boolean
    occupancies as :func:`occupancy_fit` reads them. IoU barely sees a thin bar, yet a bar lost or broken is a
    tunnel lost and a piece added:

    - ``tunnels_kept``: ``sum_i min(b1(decoded_i), b1(truth_i)) / sum_i b1(truth_i)``, the share of the training
      shapes' tunnels that their decoded shapes have as many of (NaN when they have none);
    - ``b1_exact`` / ``b0_exact``: the share of decoded shapes with as many tunnels / pieces as their shape.
    """
    if decoded.shape != truth.shape or decoded.ndim != 4 or len(truth) == 0:
        raise ValueError(f"expected decoded and true occupancies of the same shape (n, N, N, N) with n > 0, got "
                         f"{decoded.shape} and {truth.shape}")
    got, want = occupancy_betti(decoded), occupancy_betti(truth)
    tunnels = int(want[:, 1].sum())
    return {"tunnels_kept": float(np.minimum(got[:, 1], want[:, 1]).sum() / tunnels) if tunnels else float("nan"),
            "b1_exact": float(np.mean(got[:, 1] == want[:, 1])),
            "b0_exact": float(np.mean(got[:, 0] == want[:, 0]))}


def load_occupancies(grid_paths: Sequence[str | Path], ids: Sequence[str]) -> tuple[np.ndarray, int]:
    """The ground-truth occupancies of the shapes ``ids``, in that order, from the SDF grids ``grids/{shard}.npz``:
    ``(len(ids), N, N, N)`` bool (inside: SDF below 0), and ``N``.

    Raises:
        ValueError: when no file is given, or for shapes that no file holds (skipped in preprocessing).
    """
    if not grid_paths:
        raise ValueError("no ground-truth grid files (grids/{shard}.npz) given")
    wanted, truth, resolution = set(ids), {}, None
    for path in grid_paths:
        with np.load(path) as data:
            resolution = int(data["resolution"])
            truth.update({str(i): g < 0 for i, g in zip(data["ids"], data["grids"]) if str(i) in wanted})
    missing = [i for i in ids if i not in truth]
    if missing:
        raise ValueError(f"no ground-truth grid for {len(missing)} shapes (first: {missing[0]})")
    return np.stack([truth[i] for i in ids]) if ids else np.zeros((0,) + (resolution,) * 3, bool), resolution


def decoded_occupancy(decoder: torch.nn.Module, codes: torch.Tensor, resolution: int, tau: float | None = None,
                      batch: int = 16) -> np.ndarray:
    """``f(., z) < 0`` on the ground truth's ``resolution^3`` grid for each code of ``codes`` ``(n, L)``:
    ``(n, N, N, N)`` bool. With ``tau``, in the narrow band (:func:`toposdf.field.evaluate_grid_band`, the full
    grid's signs at about a third of the network evaluations); without, on every vertex."""
    if len(codes) == 0:
        return np.zeros((0,) + (resolution,) * 3, bool)
    grid = evaluate_grid if tau is None else partial(evaluate_grid_band, tau=tau)
    return np.concatenate([grid(decoder, z, resolution) < 0 for z in torch.split(codes, batch)])


def training_sample(n: int, shapes: int | None, seed: int) -> np.ndarray:
    """Sorted indices of the training shapes to measure: all ``n`` when ``shapes`` is None or at least ``n``, else a
    seeded sample of ``shapes`` of them (the same for every model of a category: they share their training ids)."""
    if shapes is not None and shapes < 1:
        raise ValueError(f"shapes must be None or >= 1, got {shapes}")
    if shapes is None or shapes >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=shapes, replace=False))


def fitted_test_codes(path: str | Path) -> tuple[list[str], np.ndarray]:
    """The test shapes' ids and the codes ``(m, L)`` that :func:`toposdf.evaluation.run_reconstruct` fitted to
    them, from its ``reconstruction.npz``. A file written before it kept the codes (no ``latents``) gives none,
    with a warning."""
    with np.load(path) as data:
        if "latents" not in data.files:
            log.warning("%s has no fitted codes ('latents'; written before the reconstruct rule kept them): no test "
                        "shapes measured. snakemake --forcerun reconstruct writes them.", path)
            return [], np.zeros((0, 0), np.float32)
        return [str(i) for i in data["ids"]], data["latents"]


def run_test_diagrams(category_root: str | Path) -> list[Diagrams]:
    """The test shapes' ground-truth diagrams of a finished run's category folder (``split.json`` and the
    ``diagrams/<shard>.npz`` shards), in the order of the split's sorted ids; a shape without diagrams is left out,
    as the evaluate rule does."""
    from .data import load_shape_diagrams, split_ids

    root = Path(category_root)
    shards = sorted(p for p in (root / "diagrams").glob("*.npz") if re.fullmatch(r"\d+", p.stem))
    return list(load_shape_diagrams(shards, split_ids(root / "split.json", "test"), skip_missing=True).values())


def training_fit(model: TrainedModel, grid_paths: Sequence[str | Path], batch: int = 16, shapes: int | None = None,
                 seed: int = 0, tau: float | None = None,
                 test_codes: tuple[Sequence[str], np.ndarray] | None = None) -> dict[str, float]:
    """How well a trained model reproduces its shapes on the ground truth's grid (``grids/{shard}.npz``):

    - :func:`occupancy_fit` and :func:`topology_fit` of its training codes (``f(., mu_i)``) against their training
      shapes, over every training shape or a seeded sample of ``shapes`` of them (:func:`training_sample`); nearest
      others and near-twins are looked for among the measured shapes; ``training_shapes``: how many were measured;
    - ``latent_aggregate_std``: the training codes' :meth:`toposdf.models.LatentCodes.aggregate_std` (1 when they
      cover ``N(0, I)``; None for a checkpoint that does not record it);
    - with ``test_codes`` (ids and codes ``(m, L)``, :func:`fitted_test_codes`): ``test_decoded_iou``, the mean IoU
      of each test shape's reconstruction ``f(., z_j)`` with its own shape (NaN for none), and ``test_shapes``.

    ``tau``: decode in the narrow band (:func:`decoded_occupancy`).
    """
    pick = training_sample(len(model.ids), shapes, seed)
    test_ids, codes = test_codes if test_codes is not None else ([], None)
    train_ids = [model.ids[i] for i in pick]
    truth, resolution = load_occupancies(grid_paths, train_ids + list(test_ids))
    mu = model.mu[torch.as_tensor(pick, device=model.mu.device)]
    decoded = decoded_occupancy(model.decoder, mu, resolution, tau, batch)
    fit = occupancy_fit(decoded, truth[: len(pick)]) | topology_fit(decoded, truth[: len(pick)])
    fit |= {"training_shapes": len(pick), "latent_aggregate_std": model.latent_aggregate_std}
    if test_codes is not None:
        z = torch.as_tensor(np.asarray(codes), dtype=model.mu.dtype, device=model.mu.device)
        decoded, own = decoded_occupancy(model.decoder, z, resolution, tau, batch), truth[len(pick) :]
        iou = (decoded & own).sum((1, 2, 3)) / np.maximum((decoded | own).sum((1, 2, 3)), 1)
        fit |= {"test_decoded_iou": float(iou.mean()) if len(iou) else float("nan"), "test_shapes": len(iou)}
    return fit


def run_training_fit(job: Job) -> dict:
    """:func:`toposdf.diagnostics.training_fit` of every method's final model of one category (``input.models``),
    with the test shapes' codes that ``input.reconstructions`` (one per model, in the same order) hold, over at most
    ``evaluation.training_fit_shapes`` training shapes drawn with ``evaluation.seed`` (``input.grids``), decoded in
    the narrow band of ``persistence.tau``. Writes one row per method with its provenance (config, checkpoint, seed)
    to ``output.fit``."""
    cfg, raw_config, threads, category = job.cfg, job.settings, job.threads, job.wildcards.category
    model_paths, reconstruction_paths, grid_paths = job.input.models, job.input.reconstructions, job.input.grids
    if len(model_paths) != len(reconstruction_paths):
        raise ValueError(f"expected one reconstruction per model, got {len(reconstruction_paths)} for "
                         f"{len(model_paths)} models")
    cpu_threads(threads)
    ev, rows = cfg.evaluation, []
    for model_path, reconstruction in zip(model_paths, reconstruction_paths):
        model = load_model(model_path)
        fit = training_fit(model, grid_paths, shapes=ev.training_fit_shapes, seed=ev.seed,
                           tau=cfg.persistence.tau, test_codes=fitted_test_codes(reconstruction))
        log.info("%s/%s: %s", category, model.method,
                 {k: round(v, 4) if isinstance(v, float) else v for k, v in fit.items()})
        rows.append({"category": category, "method": model.method, **fit,
                     "provenance": provenance(raw_config, model_path, ev.seed)})
    result = {"category": category, "twin_iou": TWIN_IOU, "training_fit_shapes": ev.training_fit_shapes,
              "rows": rows}
    atomic_write_json(job.output.fit, json_safe(result))
    return result


# ---------------------------------------------------------------------------------------------- near the codes
def near_code_latents(mu: torch.Tensor, n: int, scale: float | None, seed: int) -> torch.Tensor:
    """``n`` codes ``mu_j + scale * eps``, ``j`` uniform over the training codes ``mu`` ``(m, L)`` (with
    replacement) and ``eps ~ N(0, I)``; ``scale=None``: ``z ~ N(0, I)``, as generation draws them
    (:func:`~toposdf.generation.sample_latents`). Seeded."""
    if scale is None:
        return sample_latents(n, mu.shape[1], seed).to(mu)
    generator = torch.Generator().manual_seed(seed)
    if scale < 0:
        raise ValueError(f"scale must be >= 0 or None, got {scale}")
    pick = torch.randint(len(mu), (n,), generator=generator)
    return mu[pick.to(mu.device)] + scale * torch.randn(n, mu.shape[1], generator=generator).to(mu)
