"""Shapes from trained models: random draws ``z ~ N(0, I)`` and interpolations between training shapes.

A draw is ``n`` latent codes from a recorded seed; each code gives an SDF grid over ``[-1, 1]^3`` (the grid of
:func:`toposdf.field.evaluate_grid`), its persistence diagrams (the ground truth's settings: ``tau``,
``min_persistence``), a marching-cubes mesh, and, for methods with learned PD generators, the generators'
diagrams at the same code. Interpolations walk linearly between the latent means of two training shapes and
record the implicit generator's and the PD generator's diagrams along the same path (the paper's Fig. 2).

Meshes are stored many to one ``.npz`` as concatenated vertex and face arrays with offsets (see
:func:`save_meshes`); diagrams with :func:`toposdf.topology.save_diagrams`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from .checkpoints import build_decoder_and_codes, load_checkpoint, pick_device
from .field import evaluate_grid_band, extract_mesh, grid_diagrams
from .io import atomic_savez
from .models import PDGenerators, check_prior_coverage
from .topology import Diagrams

log = logging.getLogger(__name__)

Mesh = tuple[np.ndarray, np.ndarray]


@dataclass
class TrainedModel:
    """A stage-2 checkpoint, ready to evaluate (decoder and PD generators in eval mode, no gradients)."""

    decoder: torch.nn.Module
    mu: torch.Tensor  # (n_train, latent) latent means of the training shapes
    generators: PDGenerators | None
    ids: list[str]
    method: str
    device: torch.device
    latent_aggregate_std: float | None = None  # LatentCodes.aggregate_std of the training codes

    @property
    def latent_size(self) -> int:
        return self.mu.shape[1]


def load_model(path: str | Path, device: str | None = None) -> TrainedModel:
    """Read a ``model.pt`` written by :func:`toposdf.training.joint_train`.

    Raises:
        ValueError: for a checkpoint without the ``latent`` entry (written before the latent config was recorded):
            its codes cannot be rebuilt as they were trained.
    """
    state = load_checkpoint(path)
    if "latent" not in state:
        raise ValueError(f"{path}: no 'latent' entry; the checkpoint was written before the latent codes' config "
                         "was recorded. Delete it and rerun training (snakemake retrains it).")
    device = pick_device(device)
    decoder, codes = build_decoder_and_codes(state["model"], state["latent"], state, len(state["ids"]))
    generators = None
    if "pd_generators" in state:
        generators = PDGenerators.from_state(state).to(device).eval().requires_grad_(False)
    decoder.to(device).eval().requires_grad_(False)
    return TrainedModel(decoder, codes.mu.detach().to(device), generators, list(state["ids"]), state["method"], device,
                        codes.aggregate_std())


def sample_latents(n: int, latent_size: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` codes ``z ~ N(0, I)`` from their own seeded generator (the same seed gives the same codes anywhere)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, latent_size, generator=generator).to(device)


def draw_seeds(seed: int, draws: int) -> list[int]:
    """Independent seeds of the ``draws`` z-draws, derived from the base seed."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(draws)]


def shapes_at(model: TrainedModel, z: torch.Tensor, resolution: int, tau: float, min_persistence: float,
              workers: int = 1, batch: int = 8) -> tuple[np.ndarray, list[Diagrams]]:
    """SDF grids ``(n, N, N, N)`` (float32) of ``f(., z)`` and their diagrams.

    The grids are evaluated in the narrow band (:func:`toposdf.field.evaluate_grid_band`): exact where
    ``|f| < tau``, a bound of the right sign elsewhere, so the diagrams and the zero level set are those of the
    full grid (an order of magnitude of spacing below ``tau``) at a fraction of the network evaluations.
    """
    grids = np.concatenate([evaluate_grid_band(model.decoder, z[i : i + batch], resolution, tau).astype(np.float32)
                            for i in range(0, len(z), batch)])
    return grids, grid_diagrams(grids, tau, min_persistence, workers).diagrams


def diagrams_of_generators(generators, z) -> list[Diagrams]:
    """``[PD0, PD1, PD2]`` of PD generators (any callable from ``(B, L)`` codes to one ``(B, n_k, 2)`` tensor per
    dimension) at each code of ``z``, as float64 arrays with every slot, the diagonal ones too."""
    with torch.no_grad():
        out = [g.detach().double().cpu().numpy() for g in generators(torch.as_tensor(z))]
    return [[out[k][i] for k in range(len(out))] for i in range(len(z))]


def generator_diagrams(model: TrainedModel, z: torch.Tensor) -> list[Diagrams] | None:
    """The PD generators' ``[PD0, PD1, PD2]`` at each code (None for methods without PD generators)."""
    return None if model.generators is None else diagrams_of_generators(model.generators, z)


def meshes_of(grids: np.ndarray, level: float = 0.0) -> list[Mesh]:
    """Marching-cubes meshes of the grids (an empty mesh where the level set is empty, see ``extract_mesh``)."""
    return [extract_mesh(g, level) for g in grids]


# ---------------------------------------------------------------------------------------------- storage
def save_meshes(path: str | Path, meshes: Sequence[Mesh], **arrays: np.ndarray) -> None:
    """Many meshes in one ``.npz``: ``vertices`` (total, 3), ``faces`` (total, 3) with per-mesh local indices,
    and ``vertex_offsets``, ``face_offsets`` (n + 1,); extra ``arrays`` are stored beside them."""
    vertices = [np.asarray(v, np.float32).reshape(-1, 3) for v, _ in meshes]
    faces = [np.asarray(f, np.int32).reshape(-1, 3) for _, f in meshes]
    atomic_savez(path, vertices=np.concatenate(vertices) if vertices else np.zeros((0, 3), np.float32),
                 faces=np.concatenate(faces) if faces else np.zeros((0, 3), np.int32),
                 vertex_offsets=np.concatenate([[0], np.cumsum([len(v) for v in vertices])]).astype(np.int64),
                 face_offsets=np.concatenate([[0], np.cumsum([len(f) for f in faces])]).astype(np.int64), **arrays)


def load_meshes(path: str | Path) -> list[Mesh]:
    """The meshes :func:`save_meshes` wrote, in order."""
    with np.load(path) as f:
        v, fa, vo, fo = f["vertices"], f["faces"], f["vertex_offsets"], f["face_offsets"]
        return [(v[vo[i] : vo[i + 1]], fa[fo[i] : fo[i + 1]]) for i in range(len(vo) - 1)]


# ---------------------------------------------------------------------------------------------- entry points
@dataclass
class Generation:
    """``draws`` independent z-draws of ``n`` shapes each. Diagrams are kept for every draw (PD-LAP's mean and
    std); grids, meshes and the PD generators' diagrams for the first draw (figures and point-cloud metrics)."""

    seeds: list[int]
    z: np.ndarray  # (draws, n, latent)
    diagrams: list[list[Diagrams]]  # [draw][shape]
    grids: np.ndarray  # (n, N, N, N) of draw 0
    meshes: list[Mesh]  # of draw 0
    generator_diagrams: list[Diagrams] | None  # of draw 0


def generate(model: TrainedModel, n_shapes: int, draws: int, seed: int, resolution: int, tau: float,
             min_persistence: float, workers: int = 1, progress: bool = True, rescore=None) -> Generation:
    """Draw ``draws`` batches of ``n_shapes`` codes ``z ~ N(0, I)`` (seeds from :func:`draw_seeds`) and compute
    what :class:`Generation` holds. ``rescore(grids, diagrams)``, when given, replaces each draw's diagrams (the
    shapes scored from their meshes: ``evaluation.score_from``)."""
    if model.latent_aggregate_std is not None:
        check_prior_coverage(model.latent_aggregate_std, f"generate ({model.method})")
    seeds = draw_seeds(seed, draws)
    zs, diagrams, first = [], [], None
    for d, s in enumerate(tqdm(seeds, desc=f"generate {model.method}", unit="draw", disable=not progress)):
        z = sample_latents(n_shapes, model.latent_size, s, model.device)
        grids, dgms = shapes_at(model, z, resolution, tau, min_persistence, workers)
        if rescore is not None:
            dgms = rescore(grids, dgms)
        zs.append(z.cpu().numpy())
        diagrams.append(dgms)
        if d == 0:
            first = (grids, meshes_of(grids), generator_diagrams(model, z))
    grids, meshes, gen = first
    return Generation(seeds, np.stack(zs), diagrams, grids, meshes, gen)


def save_generation(result: Generation, diagrams_path: str | Path, shapes_path: str | Path,
                    **provenance: str | int | float) -> None:
    """Diagrams of every draw (ids ``"{draw:02d}/{shape:04d}"``) to ``diagrams_path``; draw 0's grids, meshes,
    codes and PD-generator diagrams (when present) to ``shapes_path``."""
    from .topology import save_diagrams

    ids = [f"{d:02d}/{i:04d}" for d, draw in enumerate(result.diagrams) for i in range(len(draw))]
    save_diagrams(diagrams_path, ids, [dg for draw in result.diagrams for dg in draw],
                  seeds=",".join(map(str, result.seeds)), **provenance)
    extra = {}
    if result.generator_diagrams is not None:
        for k in range(3):
            extra[f"generator_pd{k}"] = np.stack([dg[k] for dg in result.generator_diagrams])
    save_meshes(shapes_path, result.meshes, grids=result.grids.astype(np.float16), z=result.z,
                seeds=np.asarray(result.seeds, np.int64), **extra)


def draws_of(diagrams_path: str | Path) -> list[list[Diagrams]]:
    """The per-draw diagrams :func:`save_generation` wrote: ``[draw][shape]``."""
    from .topology import load_diagrams

    ids, diagrams, _ = load_diagrams(diagrams_path)
    draws: dict[str, list[Diagrams]] = {}
    for shape_id, dg in zip(ids, diagrams):
        draws.setdefault(shape_id.split("/")[0], []).append(dg)
    return [draws[key] for key in sorted(draws)]


def draw_size(generated_shapes: int | None, test_shapes: int) -> int:
    """Shapes per draw: ``evaluation.generated_shapes``, else the category's ``test_shapes``. PD-LAP (eq. 2) pairs
    every test shape with one generated shape, so fewer is an error (raised before anything is generated)."""
    n = generated_shapes or test_shapes
    if n < test_shapes:
        raise ValueError(f"evaluation.generated_shapes is {n}, fewer than the category's {test_shapes} test shapes: "
                         "PD-LAP (eq. 2) pairs every test shape with one generated shape. Set it to null (as many as "
                         "the test shapes) or to at least the test shapes' number")
    return n


def scored_draws(draws: list[list], meshes: list, test_shapes: int, what: str) -> tuple[list[list], list]:
    """The first ``test_shapes`` shapes of every draw, and of the first draw's meshes: the ones scored against the
    test shapes that have ground truth. A draw holds more when ``evaluation.generated_shapes`` asks for more, or when
    test shapes were skipped in preprocessing (``dataset.skip_invalid``: they stay in the split, without diagrams);
    fewer is an error naming ``what``."""
    short = min(len(draw) for draw in draws)
    if short < test_shapes or len(meshes) < test_shapes:
        raise ValueError(f"{what}: a draw of {min(short, len(meshes))} shapes, fewer than the {test_shapes} test shapes "
                         "with ground truth; make the row's samples again (snakemake --forcerun generate, or external_samples / "
                         "vecset_samples for those rows)")
    if short > test_shapes:
        log.info("%s: scoring the first %d shapes of each draw of %d (the test shapes with ground truth; the others were "
                 "skipped in preprocessing or evaluation.generated_shapes asks for more)", what, test_shapes, short)
    return [draw[:test_shapes] for draw in draws], meshes[:test_shapes]


@dataclass
class Interpolation:
    """Shapes along ``z(t) = (1 - t) mu_a + t mu_b`` between two training shapes."""

    t: np.ndarray  # (steps,)
    shape_ids: tuple[str, str]
    diagrams: list[Diagrams]  # the implicit generator's, per step
    generator_diagrams: list[Diagrams] | None  # the PD generator's at the same codes
    meshes: list[Mesh]


def interpolate(model: TrainedModel, index_a: int, index_b: int, steps: int, resolution: int, tau: float,
                min_persistence: float, workers: int = 1) -> Interpolation:
    """The implicit generator and the PD generator along the same latent path (the paper's Fig. 2)."""
    n = len(model.ids)
    if not (0 <= index_a < n and 0 <= index_b < n):
        raise ValueError(f"interpolation shapes {index_a}, {index_b} (figures.interpolation_shapes): the model has "
                         f"{n} training shapes, indices 0-{n - 1}")
    t = np.linspace(0.0, 1.0, steps)
    weights = torch.tensor(t, dtype=model.mu.dtype, device=model.device)[:, None]
    z = (1 - weights) * model.mu[index_a] + weights * model.mu[index_b]
    grids, diagrams = shapes_at(model, z, resolution, tau, min_persistence, workers)
    return Interpolation(t, (model.ids[index_a], model.ids[index_b]), diagrams, generator_diagrams(model, z),
                         meshes_of(grids))
