"""The PD generators' smoothness term (eq. 10) with its weight ``lambda_s``, and the weight's ``auto`` calibration,
shared by stage 1b (eq. 12) and stage 2's phi block (eq. 14).

The calibration sets ``lambda_s`` to a share of a unit measured over the first epoch (the fit terms over the
smoothness). Which share: for methods with PD data (``lambda_pd > 0``), the one of ``train.pdgen.smooth_candidates``
that stage 1b chooses by held-out PD-LAP (:mod:`toposdf.training.smoothness_selection`), and stage 2 keeps stage 1b's
weight; for methods without (``lambda_pd = 0``: No PD Training, trained from scratch, has no stage 1b) there is
nothing to hold out, and stage 2's first phi epoch calibrates to ``train.pdgen.smooth_share`` as before."""

from __future__ import annotations

import logging
import math

import torch

from toposdf.losses import smoothness_loss
from toposdf.transfer import to_device

log = logging.getLogger(__name__)


def calibrated_smoothness_weight(fit: float, smoothness: float, share: float) -> float:
    """``lambda_s`` such that ``lambda_s * smoothness = share * fit`` (eq. 10's weight, docs/method.md,
    Smoothness: a visible share of the PD-fit term); 0 when the smoothness term is 0 (a generator that ignores z
    needs no weight)."""
    if not (math.isfinite(fit) and math.isfinite(smoothness)) or smoothness <= 0:
        return 0.0
    return share * fit / smoothness


class SmoothnessTerm:
    """Eq. 10 and its weight ``lambda_smooth`` for a trainer of the PD generators (a mixin before
    :class:`~toposdf.training.base.Trainer`).

    ``lambda_smooth`` None is ``auto``: until :meth:`calibrate_smoothness` sets it (after the first epoch), the term
    is measured but not weighted; the weight is then kept, and it is part of the checkpoint. Needs ``cfg``
    (``smooth_shapes``, ``smooth_eps``, ``smooth_share``), ``generators``, ``generator``, ``device`` and
    ``lambda_smooth``.
    """

    lambda_smooth: float | None

    def smoothness_term(self, latent_size: int) -> tuple[torch.Tensor, float]:
        """``(l_s, weight)``: eq. 10 at ``smooth_shapes`` codes ``z ~ N(0, I)`` of size ``latent_size`` (a zero,
        not computed, when the weight is 0), and the weight to give it (0 while ``auto`` is not calibrated yet)."""
        z = to_device(torch.randn(self.cfg.smooth_shapes, latent_size, generator=self.generator), self.device)
        weight = self.lambda_smooth or 0.0
        if self.lambda_smooth is None or weight > 0:
            return smoothness_loss(self.generators, z, self.cfg.smooth_eps), weight
        return z.new_zeros(()), weight

    def calibrate_smoothness(self, fit: float, smoothness: float) -> None:
        """For ``auto``: set ``lambda_smooth`` from an epoch's mean weighted fit terms and raw smoothness (see
        :func:`calibrated_smoothness_weight`); a set weight is left as it is."""
        if self.lambda_smooth is None:
            self.lambda_smooth = calibrated_smoothness_weight(fit, smoothness, self.cfg.smooth_share)
            log.info("%s: lambda_smooth calibrated to %.4g (smoothness %.4g, fit terms %.4g, share %.3g)",
                     self.desc, self.lambda_smooth, smoothness, fit, self.cfg.smooth_share)

    def state(self) -> dict:
        return super().state() | {"lambda_smooth": self.lambda_smooth}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.lambda_smooth = state.get("lambda_smooth", self.lambda_smooth)
