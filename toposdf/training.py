"""Training: a Trainer with a ``train_step``, per-epoch CSV logs, atomic checkpoints and exact resume.

This module holds stage 1 of the paper (eq. 11): the variational auto-decoder trained on SDF samples with the
KL prior and the geometric regularizer on synthetic shapes ``f(., z), z ~ N(0, I)``. The PD-generator and joint
stages (eqs. 12-15) build on the same Trainer.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from toposdf.config import Config
from toposdf.io import read_json
from toposdf.losses import eikonal_loss, normal_laplacian_loss, sdf_data_loss, spatial_gradient
from toposdf.models import DecoderConfig, LatentCodes, SDFDecoder

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
    """``torch.save`` to a temporary file beside ``path``, then an atomic rename: a killed job leaves either the
    previous checkpoint or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class ImplicitTrainer:
    """Stage 1: trains ``decoder`` and ``codes`` on SDF samples.

    Args:
        decoder, codes: the networks (moved to ``device``).
        points, sdf: ``(n, P, 3)`` and ``(n, P)`` SDF samples of the n training shapes (CPU tensors or arrays).
        cfg: the stage's hyperparameters.
        checkpoint: path of the checkpoint; an existing one is resumed from.
        log_csv: per-epoch CSV of every loss term.
    """

    def __init__(self, decoder: SDFDecoder, codes: LatentCodes, points, sdf, cfg: ImplicitTrainConfig,
                 checkpoint: str | Path, log_csv: str | Path, device: torch.device | str | None = None) -> None:
        self.cfg = cfg
        self.device = pick_device(str(device) if device is not None else None)
        self.decoder, self.codes = decoder.to(self.device), codes.to(self.device)
        self.points = torch.as_tensor(np.asarray(points), dtype=torch.float32)
        self.sdf = torch.as_tensor(np.asarray(sdf), dtype=torch.float32)
        if self.points.ndim != 3 or self.points.shape[:2] != self.sdf.shape or len(self.points) != len(codes.mu):
            raise ValueError(f"expected points (n, P, 3) and sdf (n, P) for {len(codes.mu)} shapes, got "
                             f"{tuple(self.points.shape)} and {tuple(self.sdf.shape)}")
        self.optimizer = torch.optim.Adam([
            {"params": self.decoder.parameters(), "lr": cfg.lr_decoder},
            {"params": self.codes.parameters(), "lr": cfg.lr_codes},
        ])
        self.generator = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.epoch = 0
        self.checkpoint, self.log_csv = Path(checkpoint), Path(log_csv)
        if self.checkpoint.exists():
            self.load(self.checkpoint)
            log.info("resumed from %s at epoch %d", self.checkpoint, self.epoch)

    # ----------------------------------------------------------------------------------------------------------
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
        order = torch.randperm(len(self.points), generator=self.generator)
        batches = order.split(self.cfg.batch_shapes)
        sums: dict[str, float] = {}
        for batch in batches:
            for key, value in self.train_step(batch).items():
                sums[key] = sums.get(key, 0.0) + value
        return {key: value / len(batches) for key, value in sums.items()}

    def fit(self, epochs: int | None = None, progress: bool = True) -> None:
        """Train up to ``epochs`` (default: the config's) epochs in total, resuming where the checkpoint stopped.

        After every epoch the CSV gets a row and the checkpoint is replaced atomically.
        """
        total = self.cfg.epochs if epochs is None else epochs
        bar = tqdm(range(self.epoch, total), desc="pretrain implicit", unit="epoch", disable=not progress,
                   initial=self.epoch, total=total)
        for _ in bar:
            means = self.train_epoch()
            self.epoch += 1
            self._append_csv({"epoch": self.epoch, **means})
            self.save(self.checkpoint)
            bar.set_postfix(loss=f"{means['loss']:.4g}", sdf=f"{means['sdf']:.4g}")

    # ----------------------------------------------------------------------------------------------------------
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
            "decoder": self.decoder.state_dict(),
            "codes": self.codes.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "config": asdict(self.cfg),
        }

    def save(self, path: str | Path) -> None:
        atomic_torch_save(self.state(), path)

    def load(self, path: str | Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.decoder.load_state_dict(state["decoder"])
        self.codes.load_state_dict(state["codes"])
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
