"""Stage 1 (eq. 11): the auto-decoder trained on SDF samples, with the latent prior and the geometric regularizer
(eq. 5) on synthetic shapes ``f(., z), z ~ N(0, I)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from toposdf.checkpoints import pick_device
from toposdf.losses import eikonal_loss, normal_laplacian_loss, sdf_data_loss, spatial_gradient
from toposdf.models import LatentCodes, SDFDecoder
from toposdf.training.base import Trainer, anneal_scale, step_decay
from toposdf.training.configs import ImplicitTrainConfig
from toposdf.transfer import to_device


def as_samples(points, sdf, n_shapes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``points`` ``(n, P, 3)`` and ``sdf`` ``(n, P)`` (arrays or tensors) of ``n_shapes`` shapes as CPU float32
    tensors; raises ``ValueError`` on other shapes."""
    points = torch.as_tensor(np.asarray(points), dtype=torch.float32)
    sdf = torch.as_tensor(np.asarray(sdf), dtype=torch.float32)
    if points.ndim != 3 or points.shape[2] != 3 or points.shape[:2] != sdf.shape or len(points) != n_shapes:
        raise ValueError(f"expected points (n, P, 3) and sdf (n, P) for {n_shapes} shapes, got "
                         f"{tuple(points.shape)} and {tuple(sdf.shape)}")
    return points, sdf


class ImplicitTerms:
    """The terms of eq. 11 that stage 2 reuses: the SDF data term of training shapes, and the geometric
    regularizer (eq. 5) on synthetic shapes ``z ~ N(0, I)`` at uniform points of the domain.

    Needs ``cfg`` (a stage 1 or stage 2 config, :mod:`toposdf.training.configs`), ``decoder``, ``points`` ``(n, P, 3)``,
    ``sdf`` ``(n, P)``, ``generator`` and ``device``. ``steik_scale`` multiplies ``lambda_steik`` (the trainer sets
    it each epoch from ``steik_anneal``).
    """

    steik_scale: float = 1.0

    @property
    def steik_weight(self) -> float:
        """The StEik term's weight this epoch: ``lambda_steik`` times ``steik_scale``."""
        return self.cfg.lambda_steik * self.steik_scale

    def data_term(self, z: torch.Tensor, shape_index: torch.Tensor, n_points: int | None = None) -> torch.Tensor:
        """Clamped L1 of ``f(., z)`` (``z`` ``(B, L)``) against ``n_points`` (default ``points_per_shape``) random
        SDF samples of each shape of ``shape_index`` ``(B,)``."""
        cfg, dev = self.cfg, self.device
        n_points = cfg.points_per_shape if n_points is None else n_points
        pick = torch.randint(self.points.shape[1], (len(shape_index), n_points), generator=self.generator)
        rows = shape_index[:, None]  # only the picked samples are read (the samples may be memory-mapped)
        x, target = to_device(self.points[rows, pick], dev), to_device(self.sdf[rows, pick], dev)
        return sdf_data_loss(self.decoder(z, x), target, cfg.clamp_delta, cfg.hard_sample_weight)

    def regularizer_terms(self, latent_size: int) -> dict[str, torch.Tensor]:
        """Eikonal and (for a StEik weight > 0) StEik terms of ``regularizer_shapes`` synthetic shapes at
        ``regularizer_points`` uniform points of ``[-1, 1]^3``."""
        cfg, dev = self.cfg, self.device
        z_syn = to_device(torch.randn(cfg.regularizer_shapes, latent_size, generator=self.generator), dev)
        x_syn = to_device(torch.rand(cfg.regularizer_shapes, cfg.regularizer_points, 3, generator=self.generator) * 2 - 1,
                          dev)
        x_syn.requires_grad_(True)
        grad = spatial_gradient(self.decoder(z_syn, x_syn), x_syn)
        return {
            "eikonal": eikonal_loss(grad, cfg.eikonal_p),
            "steik": (normal_laplacian_loss(grad, x_syn, self.cfg.steik_gradient) if self.steik_weight > 0
                      else grad.new_zeros(())),
        }

    def regularizer_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.cfg.lambda_eikonal * terms["eikonal"] + self.steik_weight * terms["steik"]


class ImplicitTrainer(ImplicitTerms, Trainer):
    """Stage 1 (eq. 11): trains ``decoder`` and ``codes`` on SDF samples.

    Args:
        decoder, codes: the networks (moved to ``device``).
        points, sdf: ``(n, P, 3)`` and ``(n, P)`` SDF samples of the n training shapes (CPU tensors or arrays).
        cfg: the stage's hyperparameters.
        checkpoint: path of the checkpoint; an existing one is resumed from.
        log_csv: per-epoch CSV of every loss term.
        device: the training device (default: :func:`~toposdf.checkpoints.pick_device`'s).
    """

    desc = "pretrain implicit"

    def __init__(self, decoder: SDFDecoder, codes: LatentCodes, points, sdf, cfg: ImplicitTrainConfig,
                 checkpoint: str | Path, log_csv: str | Path, device: torch.device | str | None = None) -> None:
        self.cfg = cfg
        self.device = pick_device(device)
        self.decoder, self.codes = decoder.to(self.device), codes.to(self.device)
        self.modules = {"decoder": self.decoder, "codes": self.codes}
        self.points, self.sdf = as_samples(points, sdf, len(codes.mu))
        self.n_shapes = len(self.points)
        self.optimizers = {"main": torch.optim.Adam([
            {"params": self.decoder.parameters(), "lr": cfg.lr_decoder},
            {"params": self.codes.parameters(), "lr": cfg.lr_codes},
        ])}
        self._start(cfg.seed, cfg.batch_shapes, checkpoint, log_csv)

    def schedule_scales_with_epochs(self) -> bool:
        return self.cfg.lr_decay_at < 1 or self.cfg.steik_anneal is not None  # step_decay, anneal_scale

    def train_epoch(self) -> dict[str, float]:
        """One epoch at the step schedule's rates (``lr_decay_at``, ``lr_decay_factor``) and StEik weight
        (``steik_anneal``); the row records them."""
        cfg = self.cfg
        scale = step_decay(self.epoch, cfg.epochs, cfg.lr_decay_at, cfg.lr_decay_factor)
        decoder, codes = self.optimizers["main"].param_groups
        decoder["lr"], codes["lr"] = cfg.lr_decoder * scale, cfg.lr_codes * scale
        self.steik_scale = anneal_scale(self.epoch, cfg.epochs, cfg.steik_anneal)
        return super().train_epoch() | {"lr_decoder": decoder["lr"], "lr_codes": codes["lr"],
                                        "steik_weight": self.steik_weight}

    def train_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        """One optimizer step on a batch of shapes: ``sdf + lambda_kl kl + lambda_eikonal eikonal +
        steik_weight steik``; returns every term (floats)."""
        index = to_device(shape_index, self.device)
        z = self.codes.sample(index)
        terms = {"sdf": self.data_term(z, shape_index), "kl": self.codes.prior_loss(index)}
        terms |= self.regularizer_terms(z.shape[1])
        loss = terms["sdf"] + self.cfg.lambda_kl * terms["kl"] + self.regularizer_loss(terms)
        return self._step(terms, loss)
