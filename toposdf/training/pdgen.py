"""Stage 1b (eq. 12): the PD generators fitted to the training diagrams, with the stage-1 latent means fixed."""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from toposdf.checkpoints import pick_device
from toposdf.losses import diagram_fit_terms, mean_births
from toposdf.models import PDGenerators
from toposdf.training.base import Trainer
from toposdf.training.configs import PDGeneratorTrainConfig
from toposdf.training.smoothness import SmoothnessTerm
from toposdf.transfer import to_device


def generator_sizes(diagrams, max_points: int) -> tuple[int, int, int]:
    """``n_k``: the largest ``|PD_k|`` among the training shapes' ``[PD0, PD1, PD2]``, capped at ``max_points``
    (at least 1)."""
    return tuple(max(1, min(max_points, max((len(shape[k]) for shape in diagrams), default=0))) for k in range(3))


@torch.no_grad()
def collapsed_dimensions(generators: PDGenerators, latent_means: torch.Tensor, diagrams) -> list[int]:
    """The homology dimensions whose generator puts every slot on the diagonal at every training code although the
    training diagrams have points there: a collapsed generator, whose targets make eq. 8 remove every such feature
    from the synthetic shapes."""
    device = next(generators.parameters()).device
    out = generators(latent_means.to(device))
    collapsed = []
    for k, points in enumerate(out):
        has_points = any(len(shape[k]) for shape in diagrams)
        if has_points and not bool(((points[..., 1] - points[..., 0]) > 1e-6).any()):
            collapsed.append(k)
    return collapsed


def slot_anchors(diagrams, weight: float) -> list[float | None] | None:
    """The anchors of :func:`~toposdf.losses.diagram_fit_terms` for ``methods.<m>.diagonal_anchor`` = ``weight``:
    the training diagrams' mean birth per dimension, or None (no anchor term) at weight 0 or without diagrams."""
    return mean_births(diagrams) if weight > 0 and diagrams else None


def anchored_fit(generated: list[torch.Tensor], targets, anchors, weight: float,
                 pool: Executor | None = None) -> tuple[dict, torch.Tensor]:
    """Eq. 12's data term against ``targets`` as the logged terms ``{"pd"}`` (with ``"anchor"`` when ``anchors``
    are given, :func:`slot_anchors`), and the fit that enters the loss, ``pd + weight * anchor``; the matchings are
    solved in ``pool``'s threads when given."""
    fit, anchor = diagram_fit_terms(generated, targets, anchors=anchors, pool=pool)
    if anchors is None:
        return {"pd": fit}, fit
    return {"pd": fit, "anchor": anchor}, fit + weight * anchor


def as_diagrams(diagrams) -> list[list[np.ndarray]]:
    """Every shape's ``[PD0, PD1, PD2]`` as ``(n_k, 2)`` float64 arrays."""
    return [[np.asarray(d, np.float64).reshape(-1, 2) for d in shape] for shape in diagrams]


class PDGeneratorTrainer(SmoothnessTerm, Trainer):
    """Stage 1b (eq. 12): ``lambda_PD * mean_i sum_k d_PD(PD_k,phi(mu_i), P_i^k) + lambda_s * l_s(phi)``.

    Args:
        generators: the PD generators (one per homology dimension).
        latent_means: ``(n, L)`` the training shapes' latent means from stage 1 (fixed).
        diagrams: the n training shapes' ground-truth ``[PD0, PD1, PD2]``, each ``(m, 2)``.
        cfg, checkpoint, log_csv, device: as for :class:`~toposdf.training.implicit.ImplicitTrainer`.
        workers: threads that solve each step's matchings of eq. 1 (1: in the training thread); :meth:`close`
            stops them.
    """

    desc = "pretrain PD generators"

    def __init__(self, generators: PDGenerators, latent_means, diagrams, cfg: PDGeneratorTrainConfig,
                 checkpoint: str | Path, log_csv: str | Path, device: torch.device | str | None = None,
                 workers: int = 1) -> None:
        self.cfg = cfg
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="matching") if workers > 1 else None
        self.device = pick_device(device)
        self.generators = generators.to(self.device)
        self.modules = {"pd_generators": self.generators}
        self.latent_means = torch.as_tensor(np.asarray(latent_means), dtype=torch.float32)
        if len(self.latent_means) != len(diagrams):
            raise ValueError(f"{len(self.latent_means)} latent codes for {len(diagrams)} diagrams")
        self.diagrams = as_diagrams(diagrams)
        self.n_shapes = len(self.diagrams)
        self.optimizers = {"main": torch.optim.Adam(self.generators.parameters(), lr=cfg.lr)}
        self.lambda_smooth = cfg.lambda_smooth
        self.anchors = slot_anchors(self.diagrams, cfg.diagonal_anchor)
        self._start(cfg.seed, cfg.batch_shapes, checkpoint, log_csv)

    def train_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        """One step of eq. 12 on the shapes ``shape_index``; returns the terms ``pd``, ``smoothness``, ``loss``."""
        z = to_device(self.latent_means[shape_index], self.device)
        terms, fit = anchored_fit(self.generators(z), [self.diagrams[i] for i in shape_index.tolist()], self.anchors,
                                  self.cfg.diagonal_anchor, self.pool)
        terms["smoothness"], weight = self.smoothness_term(z.shape[1])
        return self._step(terms, self.cfg.lambda_pd * fit + weight * terms["smoothness"])

    def close(self) -> None:
        """Stop the matching threads."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def train_epoch(self) -> dict[str, float]:
        """One epoch; the first one of an ``auto`` smoothness run also sets ``lambda_smooth`` (to ``smooth_share``
        of the weighted PD fit: in stage 1b, the share :mod:`~toposdf.training.smoothness_selection` chose, or the
        candidate's during that choice). The CSV logs the raw and the weighted terms."""
        means = super().train_epoch()
        self.calibrate_smoothness(self.cfg.lambda_pd * means["pd"], means["smoothness"])
        return means | {"lambda_smooth": self.lambda_smooth,
                        "smoothness_weighted": self.lambda_smooth * means["smoothness"],
                        "pd_weighted": self.cfg.lambda_pd * means["pd"]}
