"""Training: a Trainer with a ``train_step``, per-epoch CSV logs, atomic checkpoints and exact resume.

Stage 1 of the paper (eq. 11): the variational auto-decoder trained on SDF samples with the KL prior and the
geometric regularizer on synthetic shapes ``f(., z), z ~ N(0, I)``. Stage 1b (eq. 12): the PD generators fitted
to the training diagrams with the latent means fixed. Stage 2 (eqs. 13-15): rounds of one epoch each for the
network, the PD generators and the latent codes, with the consistency term between the PD generators and the
diagrams of synthetic shapes, whose persistence runs in a CPU pool while the network trains.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from toposdf.config import Config
from toposdf.io import atomic_open, read_json
from toposdf.field import GridDiagrams, evaluate_grid, evaluate_grid_band
from toposdf.losses import (
    consistency_loss,
    diagram_fit_loss,
    diagram_points,
    eikonal_loss,
    match_diagrams,
    normal_laplacian_loss,
    sdf_data_loss,
    smoothness_loss,
    spatial_gradient,
    topological_prior_loss,
)
from toposdf.models import DecoderConfig, LatentCodes, LatentConfig, PDGenerators, SDFDecoder
from toposdf.preprocess import load_category_diagrams
from toposdf.topology import cubical_diagrams_with_critical

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left in place."""


@dataclass(frozen=True)
class ImplicitTrainConfig:
    """Stage 1 (eq. 11). ``lambda_steik = 0`` is the DeepSDF variant, ``> 0`` the -SE variant."""

    epochs: int = 100
    batch_shapes: int = 16
    points_per_shape: int = 2048
    lr_decoder: float = 5e-4
    lr_codes: float = 1e-3
    clamp_delta: float = 0.1
    lambda_kl: float = 1e-2
    lambda_eikonal: float = 0.1
    lambda_steik: float = 0.0
    eikonal_p: float = 2.0
    regularizer_shapes: int = 4
    regularizer_points: int = 1024
    seed: int = 0


def calibrated_smoothness_weight(fit: float, smoothness: float, share: float) -> float:
    """``lambda_s`` such that ``lambda_s * smoothness = share * fit`` (eq. 10's weight, DESIGN.md: a visible share
    of the PD-fit term); 0 when the smoothness term is 0 (a generator that ignores z needs no weight)."""
    if not (math.isfinite(fit) and math.isfinite(smoothness)) or smoothness <= 0:
        return 0.0
    return share * fit / smoothness


def pick_device(preferred: str | None = None) -> torch.device:
    """``preferred`` when given, else CUDA when available, else the CPU."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def atomic_torch_save(obj: dict, path: str | Path) -> None:
    """``torch.save`` written atomically (:func:`toposdf.io.atomic_open`): a killed job leaves either the
    previous checkpoint or the new one, never half of one."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


@contextmanager
def frozen(*modules: torch.nn.Module | None) -> Iterator[None]:
    """Turn off ``requires_grad`` of the modules' parameters for one block: a step that optimizes one block of
    eqs. 13-15 computes no gradients for the others (autograd still flows *through* them)."""
    params = [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class _Trainer:
    """What every stage shares: an epoch loop over random batches of training shapes, a per-epoch CSV of every
    loss term, an atomic checkpoint after each epoch, exact resume (weights, optimizer and random states), and a
    clear stop on a non-finite loss.

    Subclasses set ``modules`` (name -> module), ``optimizers`` (name -> optimizer; ``"main"`` for a single one)
    and ``n_shapes``, and implement :meth:`train_step` (or :meth:`train_epoch`).
    """

    desc = "train"
    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    n_shapes: int

    def _start(self, seed: int, batch_shapes: int, checkpoint: str | Path, log_csv: str | Path) -> None:
        self.batch_shapes = batch_shapes
        self.generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.epoch = 0
        self.checkpoint, self.log_csv = Path(checkpoint), Path(log_csv)
        if self.checkpoint.exists():
            self.load(self.checkpoint)
            log.info("resumed from %s at epoch %d", self.checkpoint, self.epoch)

    def train_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def _step(self, terms: dict[str, torch.Tensor], loss: torch.Tensor, optimizer: str = "main") -> dict[str, float]:
        """Check the loss, take one step of ``optimizers[optimizer]``, and return the terms as floats."""
        values = {k: float(v.detach()) for k, v in terms.items()} | {"loss": float(loss.detach())}
        if not math.isfinite(values["loss"]):
            raise TrainingDiverged(
                f"non-finite loss at epoch {self.epoch + 1}: {values}; the last good checkpoint "
                f"({self.checkpoint if self.checkpoint.exists() else 'none yet'}) is kept"
            )
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return values

    def _batches(self) -> list[torch.Tensor]:
        return list(torch.randperm(self.n_shapes, generator=self.generator).split(self.batch_shapes))

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training shapes in random batches; returns the mean of every term."""
        return _mean_terms(self.train_step(batch) for batch in self._batches())

    def fit(self, epochs: int | None = None, progress: bool = True) -> None:
        """Train up to ``epochs`` (default: the config's) epochs in total, resuming where the checkpoint stopped;
        after every epoch the CSV gets a row and the checkpoint is replaced atomically."""
        epochs = self.cfg.epochs if epochs is None else epochs
        bar = tqdm(range(self.epoch, epochs), desc=self.desc, unit="epoch", disable=not progress,
                   initial=self.epoch, total=epochs)
        for _ in bar:
            means = self.train_epoch()
            self.epoch += 1
            self._append_csv({"epoch": self.epoch, **means})
            self.save(self.checkpoint)
            bar.set_postfix(loss=f"{means['loss']:.4g}")

    def _append_csv(self, row: dict) -> None:
        self.log_csv.parent.mkdir(parents=True, exist_ok=True)
        new = not self.log_csv.exists()
        with open(self.log_csv, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def state(self) -> dict:
        return {
            "epoch": self.epoch,
            **{name: module.state_dict() for name, module in self.modules.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "config": asdict(self.cfg),
        }

    def save(self, path: str | Path) -> None:
        atomic_torch_save(self.state(), path)

    def load(self, path: str | Path) -> dict:
        # On the CPU: the random states must stay CPU byte tensors; the modules and optimizers copy their
        # tensors onto the training device themselves.
        state = torch.load(path, map_location="cpu", weights_only=False)
        for name, module in self.modules.items():
            module.load_state_dict(state[name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch = int(state["epoch"])
        # A CSV row written after the checkpoint (a job killed between the two) is dropped, so rows match epochs.
        if self.log_csv.exists():
            with open(self.log_csv) as fh:
                rows = list(csv.DictReader(fh))
            if len(rows) > self.epoch:
                with open(self.log_csv, "w", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(rows[: self.epoch])
        return state


class _ImplicitTerms:
    """The terms of eq. 11 that stage 2 reuses: the SDF data term of training shapes, and the geometric
    regularizer (eq. 5) on synthetic shapes ``z ~ N(0, I)`` at uniform points of the domain.

    Needs ``cfg`` (with the fields of :class:`ImplicitTrainConfig`), ``decoder``, ``points``, ``sdf``,
    ``generator`` and ``device``.
    """

    def data_term(self, z: torch.Tensor, shape_index: torch.Tensor) -> torch.Tensor:
        """Clamped L1 of ``f(., z)`` against ``points_per_shape`` random SDF samples of each shape."""
        cfg, dev = self.cfg, self.device
        pick = torch.randint(self.points.shape[1], (len(shape_index), cfg.points_per_shape), generator=self.generator)
        x = torch.gather(self.points[shape_index], 1, pick[..., None].expand(-1, -1, 3)).to(dev)
        target = torch.gather(self.sdf[shape_index], 1, pick).to(dev)
        return sdf_data_loss(self.decoder(z, x), target, cfg.clamp_delta)

    def regularizer_terms(self, latent_size: int) -> dict[str, torch.Tensor]:
        """Eikonal and (for ``lambda_steik > 0``) StEik terms of synthetic shapes."""
        cfg, dev = self.cfg, self.device
        z_syn = torch.randn(cfg.regularizer_shapes, latent_size, generator=self.generator).to(dev)
        x_syn = (torch.rand(cfg.regularizer_shapes, cfg.regularizer_points, 3, generator=self.generator) * 2 - 1).to(dev)
        x_syn.requires_grad_(True)
        grad = spatial_gradient(self.decoder(z_syn, x_syn), x_syn)
        return {
            "eikonal": eikonal_loss(grad, cfg.eikonal_p),
            "steik": normal_laplacian_loss(grad, x_syn) if cfg.lambda_steik > 0 else grad.new_zeros(()),
        }

    def regularizer_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.cfg.lambda_eikonal * terms["eikonal"] + self.cfg.lambda_steik * terms["steik"]


class ImplicitTrainer(_ImplicitTerms, _Trainer):
    """Stage 1 (eq. 11): trains ``decoder`` and ``codes`` on SDF samples.

    Args:
        decoder, codes: the networks (moved to ``device``).
        points, sdf: ``(n, P, 3)`` and ``(n, P)`` SDF samples of the n training shapes (CPU tensors or arrays).
        cfg: the stage's hyperparameters.
        checkpoint: path of the checkpoint; an existing one is resumed from.
        log_csv: per-epoch CSV of every loss term.
    """

    desc = "pretrain implicit"

    def __init__(self, decoder: SDFDecoder, codes: LatentCodes, points, sdf, cfg: ImplicitTrainConfig,
                 checkpoint: str | Path, log_csv: str | Path, device: torch.device | str | None = None) -> None:
        self.cfg = cfg
        self.device = pick_device(str(device) if device is not None else None)
        self.decoder, self.codes = decoder.to(self.device), codes.to(self.device)
        self.modules = {"decoder": self.decoder, "codes": self.codes}
        self.points = torch.as_tensor(np.asarray(points), dtype=torch.float32)
        self.sdf = torch.as_tensor(np.asarray(sdf), dtype=torch.float32)
        if self.points.ndim != 3 or self.points.shape[:2] != self.sdf.shape or len(self.points) != len(codes.mu):
            raise ValueError(f"expected points (n, P, 3) and sdf (n, P) for {len(codes.mu)} shapes, got "
                             f"{tuple(self.points.shape)} and {tuple(self.sdf.shape)}")
        self.n_shapes = len(self.points)
        self.optimizers = {"main": torch.optim.Adam([
            {"params": self.decoder.parameters(), "lr": cfg.lr_decoder},
            {"params": self.codes.parameters(), "lr": cfg.lr_codes},
        ])}
        self._start(cfg.seed, cfg.batch_shapes, checkpoint, log_csv)

    def train_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        """One optimizer step on a batch of shapes; returns every loss term (floats)."""
        z = self.codes.sample(shape_index.to(self.device))
        terms = {"sdf": self.data_term(z, shape_index), "kl": self.codes.prior_loss(shape_index.to(self.device))}
        terms |= self.regularizer_terms(z.shape[1])
        loss = terms["sdf"] + self.cfg.lambda_kl * terms["kl"] + self.regularizer_loss(terms)
        return self._step(terms, loss)


@dataclass(frozen=True)
class PDGeneratorTrainConfig:
    """Stage 1b (eq. 12): PD generators fitted to the training diagrams with the latent means fixed."""

    epochs: int = 200
    batch_shapes: int = 16
    lr: float = 1e-3
    lambda_pd: float = 1.0
    lambda_smooth: float | None = None  # None: calibrated after the first epoch to smooth_share of the PD fit
    smooth_share: float = 0.2
    smooth_eps: float = 1e-2
    smooth_shapes: int = 8
    max_points: int = 64
    hidden: int = 256
    seed: int = 0


class PDGeneratorTrainer(_Trainer):
    """Stage 1b (eq. 12): ``lambda_PD * mean_i sum_k d_PD(PD_k,phi(mu_i), P_i^k) + lambda_s * l_s(phi)``.

    Args:
        generators: the PD generators (one per homology dimension).
        latent_means: ``(n, L)`` the training shapes' latent means from stage 1 (fixed).
        diagrams: the n training shapes' ground-truth ``[PD0, PD1, PD2]``.
    """

    desc = "pretrain PD generators"

    def __init__(self, generators: PDGenerators, latent_means, diagrams, cfg: PDGeneratorTrainConfig,
                 checkpoint: str | Path, log_csv: str | Path, device: torch.device | str | None = None) -> None:
        self.cfg = cfg
        self.device = pick_device(str(device) if device is not None else None)
        self.generators = generators.to(self.device)
        self.modules = {"pd_generators": self.generators}
        self.latent_means = torch.as_tensor(np.asarray(latent_means), dtype=torch.float32)
        if len(self.latent_means) != len(diagrams):
            raise ValueError(f"{len(self.latent_means)} latent codes for {len(diagrams)} diagrams")
        self.diagrams = [[np.asarray(d, np.float64).reshape(-1, 2) for d in shape] for shape in diagrams]
        self.n_shapes = len(self.diagrams)
        self.optimizers = {"main": torch.optim.Adam(self.generators.parameters(), lr=cfg.lr)}
        self.lambda_smooth = cfg.lambda_smooth
        self._start(cfg.seed, cfg.batch_shapes, checkpoint, log_csv)

    def train_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        z = self.latent_means[shape_index].to(dev)
        fit = diagram_fit_loss(self.generators(z), [self.diagrams[i] for i in shape_index.tolist()])
        terms = {"pd": fit}
        z_prior = torch.randn(cfg.smooth_shapes, z.shape[1], generator=self.generator).to(dev)
        weight = self.lambda_smooth or 0.0  # None during the calibration epoch: measured, not yet weighted
        terms["smoothness"] = (smoothness_loss(self.generators, z_prior, cfg.smooth_eps)
                               if self.lambda_smooth is None or weight > 0 else z.new_zeros(()))
        return self._step(terms, cfg.lambda_pd * terms["pd"] + weight * terms["smoothness"])

    def train_epoch(self) -> dict[str, float]:
        """One epoch; the first one of an ``auto`` smoothness run also sets ``lambda_smooth`` (see
        :func:`calibrated_smoothness_weight`). The CSV logs the raw and the weighted smoothness."""
        means = super().train_epoch()
        if self.lambda_smooth is None:
            self.lambda_smooth = calibrated_smoothness_weight(self.cfg.lambda_pd * means["pd"], means["smoothness"],
                                                              self.cfg.smooth_share)
            log.info("lambda_smooth calibrated to %.4g (smoothness %.4g, PD fit %.4g, share %.2f)",
                     self.lambda_smooth, means["smoothness"], means["pd"], self.cfg.smooth_share)
        return means | {"lambda_smooth": self.lambda_smooth,
                        "smoothness_weighted": self.lambda_smooth * means["smoothness"],
                        "pd_weighted": self.cfg.lambda_pd * means["pd"]}

    def state(self) -> dict:
        return super().state() | {"lambda_smooth": self.lambda_smooth}

    def load(self, path: str | Path) -> dict:
        state = super().load(path)
        self.lambda_smooth = state.get("lambda_smooth")
        return state

TOPOLOGY_MODES = ("none", "learned", "prior")


@dataclass(frozen=True)
class JointTrainConfig:
    """Stage 2 (eqs. 13-15): ``rounds`` of one epoch each for the network, the PD generators and the latent codes.

    ``topology`` selects the method family: ``"none"`` (the DeepSDF baselines: the same rounds without topological
    terms, so every method trains the network for the same number of epochs), ``"learned"`` (ours: consistency
    with the PD generators) or ``"prior"`` (the topology layer's fixed prior ``E(p, q, i0; PD_dim)`` on synthetic
    shapes instead of PD generators).
    """

    rounds: int = 20
    batch_shapes: int = 16
    points_per_shape: int = 2048
    lr_decoder: float = 1e-4
    lr_codes: float = 1e-3
    lr_pdgen: float = 1e-4
    # the first warm_rounds rounds use stage 1's learning rates (a method trained from scratch: its stage 1)
    warm_rounds: int = 0
    warm_lr_decoder: float = 2e-3
    warm_lr_codes: float = 5e-3
    # eq. 11's terms, as in stage 1
    clamp_delta: float = 0.1
    lambda_kl: float = 1e-2
    lambda_eikonal: float = 0.1
    lambda_steik: float = 0.0
    eikonal_p: float = 2.0
    regularizer_shapes: int = 4
    regularizer_points: int = 1024
    # the topological terms
    topology: str = "none"
    lambda_con: float = 1.0
    lambda_pd: float = 1.0
    lambda_smooth: float | None = 1e-4  # None: calibrated in the first phi epoch (smooth_share of its fit terms)
    smooth_share: float = 0.2
    smooth_eps: float = 1e-2
    smooth_shapes: int = 8
    prior_dim: int = 0
    prior_p: float = 1.0
    prior_q: int = 0
    prior_i0: int = 2
    # synthetic shapes z ~ N(0, I) per step, their grid, and the persistence workers
    synthetic_shapes: int = 4
    grid_resolution: int = 48
    tau: float = 0.1
    loss_min_persistence: float = 0.0
    workers: int = 1
    narrow_band: bool = True
    reuse_synthetic_for_phi: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGY_MODES:
            raise ValueError(f"topology must be one of {TOPOLOGY_MODES}, got {self.topology!r}")

    @property
    def epochs(self) -> int:
        return self.rounds

    @property
    def consistency(self) -> bool:
        """Whether the rounds need the diagrams of synthetic shapes."""
        return self.topology != "none" and self.lambda_con > 0


class SyntheticDiagrams:
    """Diagrams of synthetic shapes ``f(., z)``, computed by a CPU worker pool while the caller trains.

    :meth:`submit` evaluates the network on the grid (no autograd, on the training device) and hands each shape's
    grid to a worker, which computes its diagrams and critical vertices (CubicalRipser releases the GIL) and, when
    the PD generators' output is given, the optimal matchings of eq. 1 against it. :meth:`next` returns the
    oldest submitted batch, waiting only if its workers are not done yet. Submitting batch ``t + 1`` before
    training on batch ``t`` overlaps the persistence with the step; its diagrams are then one step old, but the
    loss re-evaluates the network at their critical vertices with the current weights.

    ``seconds`` accumulates the time spent per part: ``grid`` (evaluation), ``persistence`` and ``assignment``
    (worker time, summed over workers), and ``wait`` (the caller blocked on workers). With ``narrow_band``, the
    grid is evaluated only near the zero level set (:func:`toposdf.losses.evaluate_grid_band`), and
    ``grid_counts`` counts the network evaluations against the grid's vertices.
    """

    @property
    def evaluated_fraction(self) -> float:
        """Network evaluations per grid vertex since the counts were last cleared (1 without the narrow band)."""
        counts = self.grid_counts
        return counts["evaluated"] / counts["vertices"] if counts.get("vertices") else 1.0

    def __init__(self, resolution: int, tau: float, min_persistence: float, workers: int = 1,
                 narrow_band: bool = True) -> None:
        self.resolution, self.tau, self.min_persistence = resolution, tau, min_persistence
        self.narrow_band = narrow_band
        self.workers = max(1, workers)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="persistence")
        self.pending: deque[tuple[torch.Tensor, list[Future]]] = deque()
        self.seconds: dict[str, float] = defaultdict(float)
        self.grid_counts: dict[str, int] = {}  # network evaluations and grid vertices (evaluate_grid_band's stats)

    def _one(self, grid: np.ndarray, generated: list[np.ndarray] | None):
        start = time.perf_counter()
        diagrams, critical = cubical_diagrams_with_critical(grid, self.tau, self.min_persistence)
        middle = time.perf_counter()
        matchings = None if generated is None else [match_diagrams(g, d) for g, d in zip(generated, diagrams)]
        return diagrams, critical, matchings, middle - start, time.perf_counter() - middle

    def submit(self, decoder: torch.nn.Module, z: torch.Tensor, generated: list[torch.Tensor] | None = None) -> None:
        start = time.perf_counter()
        if self.narrow_band:
            grids = evaluate_grid_band(decoder, z, self.resolution, self.tau, stats=self.grid_counts)
        else:
            grids = evaluate_grid(decoder, z, self.resolution)
        self.seconds["grid"] += time.perf_counter() - start
        gen = None if generated is None else [g.detach().double().cpu().numpy() for g in generated]
        futures = [self.pool.submit(self._one, grids[b], None if gen is None else [g[b] for g in gen])
                   for b in range(len(grids))]
        self.pending.append((z, futures))

    def next(self) -> tuple[torch.Tensor, GridDiagrams, list | None]:
        """``(z, computed, matchings)`` of the oldest submitted batch (``matchings`` None without generators)."""
        z, futures = self.pending.popleft()
        start = time.perf_counter()
        results = [f.result() for f in futures]
        self.seconds["wait"] += time.perf_counter() - start
        self.seconds["persistence"] += sum(r[3] for r in results)
        self.seconds["assignment"] += sum(r[4] for r in results)
        computed = GridDiagrams([r[0] for r in results], [r[1] for r in results])
        matchings = None if results[0][2] is None else [r[2] for r in results]
        return z, computed, matchings

    def clear(self) -> None:
        """Drop the batches not consumed (each sub-epoch starts fresh, so a resumed run repeats it exactly)."""
        for _, futures in self.pending:
            for f in futures:
                f.cancel()
        self.pending.clear()

    def close(self) -> None:
        self.clear()
        self.pool.shutdown(wait=True)


class JointTrainer(_ImplicitTerms, _Trainer):
    """Stage 2 (eqs. 13-15). Each round (one "epoch" of the base trainer) is:

    1. **theta** (eq. 13): the network, with the latent codes and PD generators fixed: SDF data term, geometric
       regularizer, and ``lambda_con`` times the consistency of synthetic shapes ``f(., z), z ~ N(0, I)`` with the
       PD generators (``topology="learned"``) or the fixed prior (``"prior"``);
    2. **phi** (eq. 14, ``"learned"`` only): the PD generators, with the network and codes fixed: ``lambda_pd``
       times the fit to the training diagrams at the latent means, ``lambda_smooth`` times the smoothness, and
       ``lambda_con`` times the consistency with the (fixed) diagrams of synthetic shapes;
    3. **z** (eq. 15): the latent codes, with the rest fixed: SDF data term, ``lambda_pd`` times the PD
       generators' fit at the sampled codes, and the KL prior.

    The CSV has one row per round, with every term prefixed by its block, and the seconds spent in each part.

    Args:
        decoder, codes: from stage 1.
        generators: the PD generators (``topology="learned"``), else None.
        points, sdf: ``(n, P, 3)`` and ``(n, P)`` SDF samples of the training shapes.
        diagrams: their ground-truth ``[PD0, PD1, PD2]`` (used with ``lambda_pd > 0``).
    """

    desc = "joint training"

    def __init__(self, decoder: SDFDecoder, codes: LatentCodes, generators: PDGenerators | None, points, sdf,
                 diagrams, cfg: JointTrainConfig, checkpoint: str | Path, log_csv: str | Path,
                 device: torch.device | str | None = None) -> None:
        self.cfg = cfg
        if (cfg.topology == "learned") != (generators is not None):
            raise ValueError(f"topology={cfg.topology!r} {'needs' if generators is None else 'takes no'} PD generators")
        self.device = pick_device(str(device) if device is not None else None)
        self.decoder, self.codes = decoder.to(self.device), codes.to(self.device)
        self.generators = generators.to(self.device) if generators is not None else None
        self.modules = {"decoder": self.decoder, "codes": self.codes}
        self.optimizers = {"theta": torch.optim.Adam(self.decoder.parameters(), lr=cfg.lr_decoder),
                           "z": torch.optim.Adam(self.codes.parameters(), lr=cfg.lr_codes)}
        if self.generators is not None:
            self.modules["pd_generators"] = self.generators
            self.optimizers["phi"] = torch.optim.Adam(self.generators.parameters(), lr=cfg.lr_pdgen)
        self.points = torch.as_tensor(np.asarray(points), dtype=torch.float32)
        self.sdf = torch.as_tensor(np.asarray(sdf), dtype=torch.float32)
        self.diagrams = [[np.asarray(d, np.float64).reshape(-1, 2) for d in shape] for shape in diagrams]
        if not (len(self.points) == len(self.sdf) == len(self.diagrams) == len(codes.mu)):
            raise ValueError(f"{len(codes.mu)} latent codes, {len(self.points)} SDF sample sets and "
                             f"{len(self.diagrams)} diagrams: they must all be of the training shapes")
        self.n_shapes = len(self.points)
        self.synthetic = SyntheticDiagrams(cfg.grid_resolution, cfg.tau, cfg.loss_min_persistence, cfg.workers,
                                           cfg.narrow_band)
        self.lambda_smooth = cfg.lambda_smooth
        self._consumed: list = []  # the theta block's synthetic (z, diagrams), for the phi block of the same round
        self._start(cfg.seed, cfg.batch_shapes, checkpoint, log_csv)

    def state(self) -> dict:
        return super().state() | {"lambda_smooth": self.lambda_smooth}

    def load(self, path: str | Path) -> dict:
        state = super().load(path)
        self.lambda_smooth = state.get("lambda_smooth", self.lambda_smooth)
        return state

    def _set_learning_rates(self) -> None:
        """Stage 1's learning rates for the first ``warm_rounds`` rounds, stage 2's after."""
        warm = self.epoch < self.cfg.warm_rounds
        for block, lr, warm_lr in (("theta", self.cfg.lr_decoder, self.cfg.warm_lr_decoder),
                                   ("z", self.cfg.lr_codes, self.cfg.warm_lr_codes)):
            for group in self.optimizers[block].param_groups:
                group["lr"] = warm_lr if warm else lr

    def close(self) -> None:
        """Stop the persistence workers."""
        self.synthetic.close()

    # -- one round -----------------------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        self._set_learning_rates()
        self.synthetic.seconds.clear()
        self.synthetic.grid_counts.clear()
        timer: dict[str, float] = {}
        row: dict[str, float] = {}
        for block, epoch in (("theta", self._theta_epoch), ("phi", self._phi_epoch), ("z", self._z_epoch)):
            if block == "phi" and self.generators is None:
                continue
            start = time.perf_counter()
            means = epoch()
            self.synthetic.clear()
            timer[block] = time.perf_counter() - start
            row |= {f"{block}_{key}": value for key, value in means.items()}
        row["loss"] = row["theta_loss"]
        row |= {f"seconds_{key}": value for key, value in timer.items()}
        row |= {f"seconds_{key}": value for key, value in sorted(self.synthetic.seconds.items())}
        if self.synthetic.grid_counts:
            row["grid_evaluated_fraction"] = self.synthetic.evaluated_fraction
        return row

    def _draw_synthetic(self) -> torch.Tensor:
        return torch.randn(self.cfg.synthetic_shapes, self.codes.mu.shape[1], generator=self.generator).to(self.device)

    def _submit(self, with_generated: bool) -> None:
        z = self._draw_synthetic()
        generated = None
        if with_generated:
            with torch.no_grad():
                generated = self.generators(z)
        self.synthetic.submit(self.decoder, z, generated)

    def _theta_epoch(self) -> dict[str, float]:
        batches = self._batches()
        learned = self.cfg.topology == "learned"
        rows = []
        with frozen(self.codes, self.generators):
            if self.cfg.consistency:
                self._submit(learned)
            self._consumed = []
            for t, batch in enumerate(batches):
                if self.cfg.consistency and t + 1 < len(batches):
                    self._submit(learned)  # batch t + 1's persistence runs while this step trains
                synthetic = self.synthetic.next() if self.cfg.consistency else None
                if synthetic is not None and self.cfg.reuse_synthetic_for_phi:
                    self._consumed.append(synthetic[:2])
                rows.append(self._theta_step(batch, synthetic))
        return _mean_terms(rows)

    def _theta_step(self, shape_index: torch.Tensor, synthetic) -> dict[str, float]:
        cfg = self.cfg
        z = self.codes.sample(shape_index.to(self.device)).detach()
        terms = {"sdf": self.data_term(z, shape_index)} | self.regularizer_terms(z.shape[1])
        loss = terms["sdf"] + self.regularizer_loss(terms)
        if synthetic is not None:
            z_syn, computed, matchings = synthetic
            start = time.perf_counter()
            if cfg.topology == "learned":
                with torch.no_grad():
                    generated = self.generators(z_syn)
                terms["consistency"] = consistency_loss(self.decoder, z_syn, generated, computed, cfg.grid_resolution,
                                                        cfg.tau, matchings)
            else:
                points = diagram_points(self.decoder, z_syn, computed, cfg.grid_resolution, cfg.tau)
                terms["prior"] = topological_prior_loss(points, cfg.prior_dim, cfg.prior_p, cfg.prior_q, cfg.prior_i0)
            loss = loss + cfg.lambda_con * terms.get("consistency", terms.get("prior"))
            self.synthetic.seconds["critical_forward"] += time.perf_counter() - start
        return self._step(terms, loss, "theta")

    def _phi_epoch(self) -> dict[str, float]:
        batches = self._batches()
        rows = []
        reuse = self.cfg.consistency and self.cfg.reuse_synthetic_for_phi and len(self._consumed) == len(batches)
        with frozen(self.decoder, self.codes):
            # The network is fixed for the whole epoch: every synthetic batch can be computed ahead.
            lookahead = max(2, self.synthetic.workers)
            for t, batch in enumerate(batches):
                if reuse:  # the theta block's shapes and diagrams, of this round's network (at most an epoch old)
                    rows.append(self._phi_step(batch, self._consumed[t] + (None,)))
                    continue
                while self.cfg.consistency and len(self.synthetic.pending) < min(lookahead, len(batches) - t):
                    self._submit(False)
                rows.append(self._phi_step(batch, self.synthetic.next() if self.cfg.consistency else None))
        means = _mean_terms(rows)
        if self.lambda_smooth is None:  # "auto" without stage 1b: calibrated against this block's fit terms
            fit = self.cfg.lambda_pd * means["pd"] + self.cfg.lambda_con * means.get("consistency", 0.0)
            self.lambda_smooth = calibrated_smoothness_weight(fit, means["smoothness"], self.cfg.smooth_share)
            log.info("lambda_smooth calibrated to %.4g in the first phi epoch", self.lambda_smooth)
        return means | {"lambda_smooth": self.lambda_smooth}

    def _phi_step(self, shape_index: torch.Tensor, synthetic) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        mu = self.codes.mu[shape_index.to(dev)].detach()
        terms = {"pd": self._pd_fit(mu, shape_index) if cfg.lambda_pd > 0 else mu.new_zeros(())}
        prior_z = torch.randn(cfg.smooth_shapes, mu.shape[1], generator=self.generator).to(dev)
        weight = self.lambda_smooth or 0.0  # None during the calibration epoch: measured, not yet weighted
        terms["smoothness"] = (smoothness_loss(self.generators, prior_z, cfg.smooth_eps)
                               if self.lambda_smooth is None or weight > 0 else mu.new_zeros(()))
        loss = cfg.lambda_pd * terms["pd"] + weight * terms["smoothness"]
        if synthetic is not None:
            z_syn, computed, _ = synthetic
            start = time.perf_counter()
            terms["consistency"] = diagram_fit_loss(self.generators(z_syn), computed.diagrams)
            self.synthetic.seconds["assignment"] += time.perf_counter() - start
            loss = loss + cfg.lambda_con * terms["consistency"]
        return self._step(terms, loss, "phi")

    def _pd_fit(self, z: torch.Tensor, shape_index: torch.Tensor) -> torch.Tensor:
        """``mean_i sum_k d_PD(PD_k,phi(z_i), P_i^k)`` against the training diagrams."""
        return diagram_fit_loss(self.generators(z), [self.diagrams[i] for i in shape_index.tolist()])

    def _z_epoch(self) -> dict[str, float]:
        with frozen(self.decoder, self.generators):
            return _mean_terms(self._z_step(batch) for batch in self._batches())

    def _z_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        index = shape_index.to(self.device)
        z = self.codes.sample(index)
        terms = {"sdf": self.data_term(z, shape_index), "kl": self.codes.prior_loss(index)}
        loss = terms["sdf"] + cfg.lambda_kl * terms["kl"]
        if self.generators is not None and cfg.lambda_pd > 0:
            terms["pd"] = self._pd_fit(z, shape_index)
            loss = loss + cfg.lambda_pd * terms["pd"]
        return self._step(terms, loss, "z")


def _mean_terms(rows) -> dict[str, float]:
    """The mean of every key over an iterable of term dicts (keys missing from a row count as absent)."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        for key, value in row.items():
            sums[key] += value
            counts[key] += 1
    return {key: sums[key] / counts[key] for key in sums}


def generator_sizes(diagrams, max_points: int) -> tuple[int, int, int]:
    """``n_k``: the largest ``|PD_k|`` among the training shapes, capped at ``max_points`` (at least 1)."""
    return tuple(max(1, min(max_points, max((len(shape[k]) for shape in diagrams), default=0))) for k in range(3))


# --------------------------------------------------------------------------------------------------------------
# Workflow entry points
# --------------------------------------------------------------------------------------------------------------
def load_training_samples(sdf_paths, split_path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The SDF samples of a category's training shapes from its shards: ``(ids, points, sdf)``, sorted by id."""
    train = set(read_json(split_path)["train"])
    ids, points, sdf = [], [], []
    for path in sdf_paths:
        with np.load(path) as f:
            for i, model_id in enumerate(f["ids"]):
                if str(model_id) in train:
                    ids.append(str(model_id))
                    points.append(f["points"][i])
                    sdf.append(f["sdf"][i])
    if not ids:
        raise ValueError(f"no training shapes with SDF samples in {list(map(str, sdf_paths))}")
    order = np.argsort(ids)
    return [ids[i] for i in order], np.stack(points)[order], np.stack(sdf)[order]


def _work_path(output: Path) -> Path:
    """The working checkpoint beside ``output``: it survives Snakemake's removal of a killed job's outputs, so a
    rerun resumes from it; the finished checkpoint is renamed onto ``output``."""
    return output.with_name(f".{output.name}.work")


def _finish(trainer: _Trainer, output: str | Path, **extra) -> None:
    output = Path(output)
    atomic_torch_save(trainer.state() | extra, output)
    _work_path(output).unlink(missing_ok=True)


def _build_decoder_and_codes(model: dict, latent: LatentConfig | dict, state: dict | None,
                             n_shapes: int) -> tuple[SDFDecoder, LatentCodes]:
    """The decoder and the codes of ``n_shapes`` training shapes, with ``state``'s weights when given."""
    decoder = SDFDecoder(DecoderConfig(**model))
    latent = latent if isinstance(latent, LatentConfig) else LatentConfig(**latent)
    codes = LatentCodes(n_shapes, model["latent_size"], latent)
    if state is not None:
        decoder.load_state_dict(state["decoder"])
        codes.load_state_dict(state["codes"])
    return decoder, codes


# Outside this range of the aggregate posterior std (models.LatentCodes.aggregate_std), shapes drawn from N(0, I)
# lie mostly outside the codes the decoder was trained on (too narrow), or the codes leave holes in it (too wide).
PRIOR_COVERAGE_RANGE = (0.8, 1.2)


def check_prior_coverage(spread: float, where: str) -> float:
    """Log how well the training codes cover ``N(0, I)`` (``spread``, their :meth:`LatentCodes.aggregate_std`),
    with a warning outside :data:`PRIOR_COVERAGE_RANGE`; returns ``spread``."""
    low, high = PRIOR_COVERAGE_RANGE
    if not low <= spread <= high:
        log.warning("%s: the latent codes cover N(0, I) poorly (aggregate posterior std %.3f, N(0, I) has 1): "
                    "shapes drawn from the prior will not look like training shapes, whatever the method. "
                    "Use the set-level prior (latent.prior: set) with codes started on N(0, I), or raise its weight "
                    "(train.implicit.lambda_kl).", where, spread)
    else:
        log.info("%s: aggregate posterior std of the latent codes %.3f (N(0, I) has 1)", where, spread)
    return spread


def _load_checkpoint(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def training_diagrams(diagram_paths, ids: list[str]) -> list[list[np.ndarray]]:
    """The ground-truth diagrams of the shapes ``ids`` (the training shapes of a checkpoint), in that order."""
    all_ids, diagrams, _ = load_category_diagrams(diagram_paths)
    by_id = dict(zip(all_ids, diagrams))
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"no ground-truth diagrams for {len(missing)} training shapes, e.g. {missing[:3]}")
    return [by_id[i] for i in ids]


def _smoothness_weight(method: dict) -> float | None:
    """A method's ``lambda_smooth``: a number, or None for ``auto`` (calibrated during training)."""
    return None if method["lambda_smooth"] == "auto" else float(method["lambda_smooth"])


def _pdgen_config(cfg: Config, method: dict) -> PDGeneratorTrainConfig:
    return PDGeneratorTrainConfig(**cfg.pdgen, lambda_pd=float(method["lambda_pd"]),
                                  lambda_smooth=_smoothness_weight(method), seed=cfg.train_seed)


def _new_generators(cfg: Config, method: dict, diagrams) -> PDGenerators:
    """PD generators sized by the training diagrams (``n_k`` = the largest ``|PD_k|``, capped), their points kept
    in ``[-tau, tau]``, started at the diagrams' centroid (see :meth:`PDGenerators.initialize_from`) unless the
    method trains from scratch."""
    sizes = generator_sizes(diagrams, cfg.pdgen["max_points"])
    generators = PDGenerators(cfg.model["latent_size"], sizes, hidden=cfg.pdgen["hidden"], tau=cfg.persistence.tau)
    if not method["from_scratch"]:
        generators.initialize_from(diagrams)
    return generators


def pretrain_implicit(cfg: Config, geometry: str, sdf_paths, split_path, output: str | Path, log_csv: str | Path,
                      threads: int = 1) -> None:
    """Stage 1 (eq. 11) for one category and geometric regularizer; resumable.

    Stage 1 depends on nothing but the geometric regularizer, so the methods that share one (``geometry`` in
    their config block) share this checkpoint, and the ablations start from the same network.
    """
    torch.set_num_threads(max(1, threads))
    ids, points, sdf = load_training_samples(sdf_paths, split_path)
    train_cfg = ImplicitTrainConfig(**cfg.implicit, lambda_steik=float(cfg.geometry(geometry)["lambda_steik"]),
                                    seed=cfg.train_seed)
    torch.manual_seed(cfg.train_seed)
    decoder, codes = _build_decoder_and_codes(cfg.model, cfg.latent, None, len(ids))
    trainer = ImplicitTrainer(decoder, codes, points, sdf, train_cfg, checkpoint=_work_path(Path(output)),
                              log_csv=log_csv)
    log.info("stage 1 (%s): %d training shapes, %s on %s", geometry, len(ids), train_cfg, trainer.device)
    trainer.fit()
    spread = check_prior_coverage(codes.aggregate_std(), f"stage 1 ({geometry})")
    _finish(trainer, output, ids=ids, geometry=geometry, model=dict(cfg.model), latent=asdict(cfg.latent),
            latent_aggregate_std=spread)


def pretrain_pdgen(cfg: Config, method: str, implicit_path, diagram_paths, output: str | Path, log_csv: str | Path,
                   threads: int = 1) -> None:
    """Stage 1b (eq. 12) for one category and method: the PD generators fitted to the training diagrams at the
    latent means of the stage-1 checkpoint; resumable."""
    torch.set_num_threads(max(1, threads))
    weights = cfg.method(method)
    stage1 = _load_checkpoint(implicit_path)
    diagrams = training_diagrams(diagram_paths, stage1["ids"])
    torch.manual_seed(cfg.train_seed)
    generators = _new_generators(cfg, weights, diagrams)
    train_cfg = _pdgen_config(cfg, weights)
    trainer = PDGeneratorTrainer(generators, stage1["codes"]["mu"], diagrams, train_cfg,
                                 checkpoint=_work_path(Path(output)), log_csv=log_csv)
    sizes = [g.n_points for g in generators.generators]
    log.info("stage 1b (%s): %d training shapes, n_k = %s, %s on %s", method, len(diagrams), sizes, train_cfg,
             trainer.device)
    trainer.fit()
    _finish(trainer, output, ids=stage1["ids"], method=method, n_points=sizes, tau=cfg.persistence.tau)


def joint_train_config(cfg: Config, method: str, threads: int = 1) -> JointTrainConfig:
    """Stage 2's hyperparameters for one method: ``train.joint``, stage 1's loss weights, the method's geometric
    regularizer and topological weights, and the persistence settings."""
    weights = cfg.method(method)
    joint = dict(cfg.joint)
    workers = joint.pop("workers") or max(1, threads - 1)
    stage1_terms = ("clamp_delta", "lambda_kl", "lambda_eikonal", "eikonal_p", "regularizer_shapes",
                    "regularizer_points")
    warm = int(cfg.implicit["epochs"]) if weights["from_scratch"] else 0  # from scratch: stage 1's epochs too
    joint["rounds"] += warm
    return JointTrainConfig(
        **joint, **{key: cfg.implicit[key] for key in stage1_terms},
        warm_rounds=warm, warm_lr_decoder=float(cfg.implicit["lr_decoder"]),
        warm_lr_codes=float(cfg.implicit["lr_codes"]),
        lambda_steik=float(cfg.geometry(weights["geometry"])["lambda_steik"]),
        topology=weights["topology"], lambda_con=float(weights["lambda_con"]), lambda_pd=float(weights["lambda_pd"]),
        lambda_smooth=_smoothness_weight(weights), smooth_share=float(cfg.pdgen["smooth_share"]),
        smooth_eps=float(cfg.pdgen["smooth_eps"]),
        smooth_shapes=int(cfg.pdgen["smooth_shapes"]), **{f"prior_{k}": v for k, v in weights["prior"].items()},
        grid_resolution=cfg.grid_resolution, tau=cfg.persistence.tau, workers=workers, seed=cfg.train_seed,
    )


def joint_train(cfg: Config, method: str, implicit_path, pdgen_path, sdf_paths, split_path, diagram_paths,
                output: str | Path, log_csv: str | Path, threads: int = 1) -> None:
    """Stage 2 (eqs. 13-15) for one category and method, from its stage-1 (and, when pretrained, stage-1b)
    checkpoints, or from scratch (``from_scratch``: ``implicit_path`` and ``pdgen_path`` are None); resumable.
    Writes the final model: decoder, latent codes and (for learned topology) PD generators."""
    threads = max(1, threads)
    torch.set_num_threads(threads)
    weights = cfg.method(method)
    ids, points, sdf = load_training_samples(sdf_paths, split_path)
    stage1 = None
    if not weights["from_scratch"]:
        stage1 = _load_checkpoint(implicit_path)
        if ids != list(stage1["ids"]):
            raise ValueError(f"{implicit_path} was trained on other shapes than the split's training shapes")
    diagrams = training_diagrams(diagram_paths, ids)
    torch.manual_seed(cfg.train_seed)
    decoder, codes = _build_decoder_and_codes(cfg.model, cfg.latent, stage1, len(ids))
    train_cfg = joint_train_config(cfg, method, threads)
    generators = None
    if weights["topology"] == "learned":
        generators = _new_generators(cfg, weights, diagrams)
        if pdgen_path is not None:
            pdgen = _load_checkpoint(pdgen_path)
            generators.load_state_dict(pdgen["pd_generators"])
            if train_cfg.lambda_smooth is None:  # auto: the weight stage 1b calibrated
                train_cfg = replace(train_cfg, lambda_smooth=pdgen.get("lambda_smooth"))
    trainer = JointTrainer(decoder, codes, generators, points, sdf, diagrams, train_cfg,
                           checkpoint=_work_path(Path(output)), log_csv=log_csv)
    log.info("stage 2 (%s): %d training shapes, %s on %s", method, len(ids), train_cfg, trainer.device)
    try:
        trainer.fit()
    finally:
        trainer.close()
    extra = {"n_points": [g.n_points for g in generators.generators], "tau": cfg.persistence.tau,
             "lambda_smooth": trainer.lambda_smooth} if generators is not None else {}
    extra["latent_aggregate_std"] = check_prior_coverage(codes.aggregate_std(), f"stage 2 ({method})")
    _finish(trainer, output, ids=ids, method=method, model=dict(cfg.model), latent=asdict(cfg.latent), **extra)
