"""Training: a Trainer with a ``train_step``, per-epoch CSV logs, atomic checkpoints and exact resume.

Stage 1 of the paper (eq. 11): the variational auto-decoder trained on SDF samples with the KL prior and the
geometric regularizer on synthetic shapes ``f(., z), z ~ N(0, I)``. Stage 1b (eq. 12): the PD generators fitted
to the training diagrams with the latent means fixed. The joint stage (eqs. 13-15) builds on the same base.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from toposdf.config import Config
from toposdf.io import atomic_open, read_json
from toposdf.losses import (
    eikonal_loss,
    matched_diagram_loss,
    normal_laplacian_loss,
    sdf_data_loss,
    smoothness_loss,
    spatial_gradient,
)
from toposdf.models import DecoderConfig, LatentCodes, PDGenerators, SDFDecoder
from toposdf.topology import pd_distance

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
    lambda_kl: float = 1e-3
    lambda_eikonal: float = 0.1
    lambda_steik: float = 0.0
    eikonal_p: float = 2.0
    regularizer_shapes: int = 4
    regularizer_points: int = 1024
    seed: int = 0


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


class _Trainer:
    """What every stage shares: an epoch loop over random batches of training shapes, a per-epoch CSV of every
    loss term, an atomic checkpoint after each epoch, exact resume (weights, optimizer and random states), and a
    clear stop on a non-finite loss.

    Subclasses set ``modules`` (name -> module), ``optimizer`` and ``n_shapes``, and implement :meth:`train_step`.
    """

    desc = "train"
    modules: dict[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer
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

    def _step(self, terms: dict[str, torch.Tensor], loss: torch.Tensor) -> dict[str, float]:
        """Check the loss, take one optimizer step, and return the terms as floats."""
        values = {k: float(v.detach()) for k, v in terms.items()} | {"loss": float(loss.detach())}
        if not math.isfinite(values["loss"]):
            raise TrainingDiverged(
                f"non-finite loss at epoch {self.epoch + 1}: {values}; the last good checkpoint "
                f"({self.checkpoint if self.checkpoint.exists() else 'none yet'}) is kept"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return values

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training shapes in random batches; returns the mean of every term."""
        batches = torch.randperm(self.n_shapes, generator=self.generator).split(self.batch_shapes)
        sums: dict[str, float] = {}
        for batch in batches:
            for key, value in self.train_step(batch).items():
                sums[key] = sums.get(key, 0.0) + value
        return {key: value / len(batches) for key, value in sums.items()}

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
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "config": asdict(self.cfg),
        }

    def save(self, path: str | Path) -> None:
        atomic_torch_save(self.state(), path)

    def load(self, path: str | Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        for name, module in self.modules.items():
            module.load_state_dict(state[name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
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


class ImplicitTrainer(_Trainer):
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
        self.optimizer = torch.optim.Adam([
            {"params": self.decoder.parameters(), "lr": cfg.lr_decoder},
            {"params": self.codes.parameters(), "lr": cfg.lr_codes},
        ])
        self._start(cfg.seed, cfg.batch_shapes, checkpoint, log_csv)

    def train_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        """One optimizer step on a batch of shapes; returns every loss term (floats)."""
        cfg, dev = self.cfg, self.device
        pick = torch.randint(self.points.shape[1], (len(shape_index), cfg.points_per_shape), generator=self.generator)
        x = torch.gather(self.points[shape_index], 1, pick[..., None].expand(-1, -1, 3)).to(dev)
        target = torch.gather(self.sdf[shape_index], 1, pick).to(dev)
        index = shape_index.to(dev)
        z = self.codes.sample(index)
        terms = {"sdf": sdf_data_loss(self.decoder(z, x), target, cfg.clamp_delta), "kl": self.codes.kl(index)}
        # Geometric regularizer (eq. 5) on synthetic shapes z ~ N(0, I), at uniform points of the domain.
        z_syn = torch.randn(cfg.regularizer_shapes, z.shape[1], generator=self.generator).to(dev)
        x_syn = (torch.rand(cfg.regularizer_shapes, cfg.regularizer_points, 3, generator=self.generator) * 2 - 1).to(dev)
        x_syn.requires_grad_(True)
        grad = spatial_gradient(self.decoder(z_syn, x_syn), x_syn)
        terms["eikonal"] = eikonal_loss(grad, cfg.eikonal_p)
        terms["steik"] = normal_laplacian_loss(grad, x_syn) if cfg.lambda_steik > 0 else grad.new_zeros(())
        loss = (terms["sdf"] + cfg.lambda_kl * terms["kl"] + cfg.lambda_eikonal * terms["eikonal"]
                + cfg.lambda_steik * terms["steik"])
        return self._step(terms, loss)

@dataclass(frozen=True)
class PDGeneratorTrainConfig:
    """Stage 1b (eq. 12): PD generators fitted to the training diagrams with the latent means fixed."""

    epochs: int = 200
    batch_shapes: int = 16
    lr: float = 1e-3
    lambda_pd: float = 1.0
    lambda_smooth: float = 1e-4
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
        self.optimizer = torch.optim.Adam(self.generators.parameters(), lr=cfg.lr)
        self._start(cfg.seed, cfg.batch_shapes, checkpoint, log_csv)

    def train_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        z = self.latent_means[shape_index].to(dev)
        generated = self.generators(z)
        fit = z.new_zeros(())
        for b, i in enumerate(shape_index.tolist()):
            for k, gen in enumerate(generated):
                target = self.diagrams[i][k]
                _, matching = pd_distance(gen[b].detach().cpu().double().numpy(), target, return_matching=True)
                fit = fit + matched_diagram_loss(gen[b], torch.as_tensor(target, dtype=gen.dtype, device=dev), matching)
        terms = {"pd": fit / len(shape_index)}
        z_prior = torch.randn(cfg.smooth_shapes, z.shape[1], generator=self.generator).to(dev)
        terms["smoothness"] = (smoothness_loss(self.generators, z_prior, cfg.smooth_eps)
                               if cfg.lambda_smooth > 0 else z.new_zeros(()))
        return self._step(terms, cfg.lambda_pd * terms["pd"] + cfg.lambda_smooth * terms["smoothness"])

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


def pretrain_implicit(cfg: Config, method: str, sdf_paths, split_path, output: str | Path, log_csv: str | Path,
                      threads: int = 1) -> None:
    """Stage 1 for one category and method; resumable.

    The working checkpoint lives beside ``output`` (``.{name}.work``) so that a killed job's progress survives
    Snakemake's removal of incomplete outputs; the finished one is renamed onto ``output``.
    """
    torch.set_num_threads(max(1, threads))
    ids, points, sdf = load_training_samples(sdf_paths, split_path)
    weights = cfg.method(method)
    train_cfg = ImplicitTrainConfig(**cfg.implicit, lambda_steik=float(weights["lambda_steik"]), seed=cfg.train_seed)
    torch.manual_seed(cfg.train_seed)
    decoder = SDFDecoder(DecoderConfig(**cfg.model))
    codes = LatentCodes(len(ids), cfg.model["latent_size"])
    output = Path(output)
    work = output.with_name(f".{output.name}.work")
    trainer = ImplicitTrainer(decoder, codes, points, sdf, train_cfg, checkpoint=work, log_csv=log_csv)
    log.info("%s: %d training shapes, %s on %s", method, len(ids), train_cfg, trainer.device)
    trainer.fit()
    state = trainer.state() | {"ids": ids, "method": method, "model": dict(cfg.model)}
    atomic_torch_save(state, output)
    work.unlink(missing_ok=True)
