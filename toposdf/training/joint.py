"""Stage 2 (eqs. 13-15): rounds of one epoch each for the network, the PD generators and the latent codes, with
the consistency term (eq. 8) between the PD generators and the diagrams of synthetic shapes ``f(., z),
z ~ N(0, I)``, whose persistence runs in a CPU pool (:class:`~toposdf.training.pool.SyntheticDiagrams`) while the
network trains."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.profiler import record_function

from toposdf.checkpoints import pick_device
from toposdf.losses import (
    consistency_loss,
    diagram_fit_loss,
    diagram_points,
    max_births,
    min_persistences,
    shift_births,
    snap_persistence,
    topological_prior_loss,
)
from toposdf.models import LatentCodes, PDGenerators, SDFDecoder, frozen
from toposdf.training.base import Trainer, anneal_scale, mean_terms, step_decay
from toposdf.training.configs import JointTrainConfig
from toposdf.training.implicit import ImplicitTerms, as_samples
from toposdf.training.pdgen import anchored_fit, as_diagrams, slot_anchors
from toposdf.training.pool import SyntheticDiagrams
from toposdf.training.smoothness import SmoothnessTerm
from toposdf.transfer import to_device


class JointTrainer(ImplicitTerms, SmoothnessTerm, Trainer):
    """Stage 2 (eqs. 13-15). Each round (one "epoch" of the base trainer) is:

    1. **theta** (eq. 13): the network, with the latent codes and PD generators fixed: SDF data term, geometric
       regularizer, and ``lambda_con`` times the consistency of synthetic shapes ``f(., z), z ~ N(0, I)`` with the
       PD generators (``topology="learned"``, :func:`toposdf.losses.consistency_loss`) or the fixed prior
       (``"prior"``);
    2. **phi** (eq. 14, ``"learned"`` only): the PD generators, with the network and codes fixed: ``lambda_pd``
       times the fit to the training diagrams at the latent means, ``lambda_smooth`` times the smoothness, and
       ``lambda_cons`` times the consistency with the (fixed) diagrams of synthetic shapes;
    3. **z** (eq. 15): the latent codes, with the rest fixed: SDF data term, ``lambda_pd`` times the PD
       generators' fit at the sampled codes, and the latent prior.

    The CSV has one row per round, with every term prefixed by its block, and the seconds spent in each part.

    Args:
        decoder, codes: from stage 1 (or untrained, for a method trained from scratch).
        generators: the PD generators (``topology="learned"``), else None.
        points, sdf: ``(n, P, 3)`` and ``(n, P)`` SDF samples of the training shapes.
        diagrams: their ground-truth ``[PD0, PD1, PD2]`` (used with ``lambda_pd > 0``).
        cfg, checkpoint, log_csv, device: as for :class:`~toposdf.training.implicit.ImplicitTrainer`.
    """

    desc = "joint training"

    def __init__(self, decoder: SDFDecoder, codes: LatentCodes, generators: PDGenerators | None, points, sdf,
                 diagrams, cfg: JointTrainConfig, checkpoint: str | Path, log_csv: str | Path,
                 device: torch.device | str | None = None) -> None:
        self.cfg = cfg
        if (cfg.topology == "learned") != (generators is not None):
            raise ValueError(f"topology={cfg.topology!r} {'needs' if generators is None else 'takes no'} PD generators")
        self.device = pick_device(device)
        self.decoder, self.codes = decoder.to(self.device), codes.to(self.device)
        self.generators = generators.to(self.device) if generators is not None else None
        self.modules = {"decoder": self.decoder, "codes": self.codes}
        self.optimizers = {"theta": torch.optim.Adam(self.decoder.parameters(), lr=cfg.lr_decoder),
                           "z": torch.optim.Adam(self.codes.parameters(), lr=cfg.lr_codes)}
        if self.generators is not None:
            self.modules["pd_generators"] = self.generators
            self.optimizers["phi"] = torch.optim.Adam(self.generators.parameters(), lr=cfg.lr_pdgen)
        self.points, self.sdf = as_samples(points, sdf, len(codes.mu))
        self.diagrams = as_diagrams(diagrams)
        self.anchors = slot_anchors(self.diagrams, cfg.diagonal_anchor)
        # eq. 8's targets in the network's block: births capped at the training diagrams' largest (target_births)
        self.birth_caps = max_births(self.diagrams) if cfg.target_births == "training" else None
        self.persistence_floors = min_persistences(self.diagrams) if cfg.target_persistence == "training" else None
        if len(self.diagrams) != len(codes.mu):
            raise ValueError(f"{len(codes.mu)} latent codes and SDF sample sets, {len(self.diagrams)} diagrams: they "
                             "must all be of the training shapes")
        self.n_shapes = len(self.points)
        self.synthetic = SyntheticDiagrams(cfg.grid_resolution, cfg.tau, cfg.loss_min_persistence, cfg.workers,
                                           cfg.narrow_band, field=cfg.synthetic_field, join_tau=cfg.join_tau)
        self.lambda_smooth = cfg.lambda_smooth
        self._consumed: list = []  # the theta block's synthetic (z, diagrams), for the phi block of the same round
        self._start(cfg.seed, cfg.batch_shapes, checkpoint, log_csv)

    @property
    def warm(self) -> bool:
        """Whether this round is one of the ``warm_rounds`` (a method trained from scratch: its stage 1)."""
        return self.epoch < self.cfg.warm_rounds

    @property
    def consistency_round(self) -> bool:
        """Whether this round's blocks take the topological term on synthetic shapes: every round after the warm
        ones, and ``scratch_consistency_rounds`` of the warm ones, spread evenly from the first (all of them when
        there are no more warm rounds than that)."""
        count, warm = self.cfg.scratch_consistency_rounds, self.cfg.warm_rounds
        return self.cfg.consistency and (not self.warm or (self.epoch * count) % warm < count)

    @property
    def data_points(self) -> int:
        """SDF samples per shape in this round's data terms: stage 1's while warm."""
        return self.cfg.warm_points_per_shape if self.warm else self.cfg.points_per_shape

    def _set_learning_rates(self) -> None:
        """Stage 1's learning rates, step schedule and StEik anneal for the first ``warm_rounds`` rounds, stage 2's
        rates and the anneal's end value after."""
        cfg = self.cfg
        scale = step_decay(self.epoch, cfg.warm_rounds, cfg.warm_lr_decay_at, cfg.warm_lr_decay_factor)
        self.steik_scale = anneal_scale(self.epoch, cfg.warm_rounds, cfg.steik_anneal)
        for block, lr, warm_lr in (("theta", cfg.lr_decoder, cfg.warm_lr_decoder),
                                   ("z", cfg.lr_codes, cfg.warm_lr_codes)):
            for group in self.optimizers[block].param_groups:
                group["lr"] = warm_lr * scale if self.warm else lr

    def close(self) -> None:
        """Stop the persistence workers."""
        self.synthetic.close()

    # -- one round -----------------------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        """One round: the theta, phi (with PD generators) and z blocks, one epoch each; returns the CSV row."""
        self._set_learning_rates()
        self.synthetic.seconds.clear()
        self.synthetic.grid_counts.clear()
        timer: dict[str, float] = {}
        row: dict[str, float] = {}
        for block, epoch in (("theta", self._theta_epoch), ("data", self._data_epochs), ("phi", self._phi_epoch),
                             ("z", self._z_epoch)):
            if block == "data" and (not self.cfg.data_epochs or self.warm):
                continue  # data_epochs: more network epochs on the data term alone, after stage 1's rounds
            if block == "phi" and (self.generators is None or (self.cfg.lambda_pd == 0 and (
                    not self.consistency_round or self.cfg.lambda_cons == 0))):
                continue  # without the consistency term or the PD data, the generators have nothing to fit
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
        return to_device(torch.randn(self.cfg.synthetic_shapes, self.codes.mu.shape[1], generator=self.generator), self.device)

    def _submit(self, with_generated: bool) -> None:
        z = self._draw_synthetic()
        generated = None
        if with_generated:
            with torch.no_grad():
                generated = self._targets(z)
        self.synthetic.submit(self.decoder, z, generated)

    def _targets(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The PD generators' diagrams at ``z`` as eq. 8's targets in the network's block (``target_births``, then
        ``target_persistence``)."""
        return snap_persistence(shift_births(self.generators(z), self.birth_caps), self.persistence_floors)

    def _theta_epoch(self) -> dict[str, float]:
        batches = self._batches()
        learned = self.cfg.topology == "learned"
        consistency = self.consistency_round
        rows = []
        with frozen(self.codes, self.generators):
            if consistency:
                self._submit(learned)
            self._consumed = []
            for t, batch in enumerate(batches):
                if consistency and t + 1 < len(batches):
                    self._submit(learned)  # batch t + 1's persistence runs while this step trains
                synthetic = self.synthetic.next() if consistency else None
                if synthetic is not None and self.cfg.reuse_synthetic_for_phi:
                    self._consumed.append(synthetic[:2])
                rows.append(self._theta_step(batch, synthetic))
        return mean_terms(rows)

    def _data_epochs(self) -> dict[str, float]:
        """``data_epochs`` epochs of the network on eq. 11's terms alone (no topological term)."""
        with frozen(self.codes, self.generators):
            return mean_terms(self._theta_step(batch, None) for _ in range(self.cfg.data_epochs)
                              for batch in self._batches())

    def _theta_step(self, shape_index: torch.Tensor, synthetic) -> dict[str, float]:
        """Eq. 13 on the shapes ``shape_index``; ``synthetic``: ``(z, computed, matchings)`` of the pool, or None."""
        cfg = self.cfg
        z = self.codes.sample(to_device(shape_index, self.device)).detach()
        with record_function("toposdf::data_term"):
            terms = {"sdf": self.data_term(z, shape_index, self.data_points)}
        with record_function("toposdf::regularizer"):
            terms |= self.regularizer_terms(z.shape[1])
        loss = terms["sdf"] + self.regularizer_loss(terms)
        if synthetic is not None:
            start = time.perf_counter()
            with record_function("toposdf::critical_forward"):
                name, term = self._synthetic_term(*synthetic)
            terms[name] = term
            loss = loss + cfg.lambda_con * term
            self.synthetic.seconds["critical_forward"] += time.perf_counter() - start
        return self._step(terms, loss, "theta")

    def _synthetic_term(self, z_syn: torch.Tensor, computed, matchings) -> tuple[str, torch.Tensor]:
        """The topological term on the synthetic shapes: eq. 8 against the PD generators' diagrams
        (``"consistency"``), or the topology layer's fixed prior on their diagrams (``"prior"``)."""
        cfg = self.cfg
        if cfg.topology == "learned":
            with torch.no_grad():
                generated = self._targets(z_syn)
            return "consistency", consistency_loss(self.decoder, z_syn, generated, computed, cfg.grid_resolution,
                                                   cfg.tau, matchings, cfg.consistency_dims)
        points = diagram_points(self.decoder, z_syn, computed, cfg.grid_resolution, cfg.tau)
        return "prior", topological_prior_loss(points, cfg.prior_dim, cfg.prior_p, cfg.prior_q, cfg.prior_i0)

    def _phi_epoch(self) -> dict[str, float]:
        batches = self._batches()
        rows = []
        consistency = self.consistency_round
        reuse = consistency and self.cfg.reuse_synthetic_for_phi and len(self._consumed) == len(batches)
        with frozen(self.decoder, self.codes):
            # The network is fixed for the whole epoch: every synthetic batch can be computed ahead.
            lookahead = max(2, self.synthetic.workers)
            for t, batch in enumerate(batches):
                if reuse:  # the theta block's shapes and diagrams, of this round's network (at most an epoch old)
                    rows.append(self._phi_step(batch, self._consumed[t] + (None,)))
                    continue
                while consistency and len(self.synthetic.pending) < min(lookahead, len(batches) - t):
                    self._submit(False)
                rows.append(self._phi_step(batch, self.synthetic.next() if consistency else None))
        means = mean_terms(rows)
        # "auto" without stage 1b: calibrated against this block's fit terms
        fit = self.cfg.lambda_pd * means["pd"] + self.cfg.lambda_cons * means.get("consistency", 0.0)
        self.calibrate_smoothness(fit, means["smoothness"])
        return means | {"lambda_smooth": self.lambda_smooth}

    def _phi_step(self, shape_index: torch.Tensor, synthetic) -> dict[str, float]:
        """Eq. 14 on the shapes ``shape_index``. The consistency term is eq. 8 with the network fixed: the PD
        generators' fit to the synthetic shapes' computed diagrams (constants here)."""
        cfg = self.cfg
        mu = self.codes.mu[to_device(shape_index, self.device)].detach()
        if cfg.lambda_pd > 0:  # with the unused slots' anchor (diagonal_anchor) in this block only
            terms, fit = self._pd_fit(mu, shape_index, self.anchors)
        else:
            terms = {"pd": mu.new_zeros(())}
            fit = terms["pd"]
        terms["smoothness"], weight = self.smoothness_term(mu.shape[1])
        loss = cfg.lambda_pd * fit + weight * terms["smoothness"]
        if synthetic is not None:
            z_syn, computed, _ = synthetic
            start = time.perf_counter()
            terms["consistency"] = diagram_fit_loss(self.generators(z_syn), computed.diagrams,
                                                    pool=self.synthetic.pool)
            self.synthetic.seconds["assignment"] += time.perf_counter() - start
            loss = loss + cfg.lambda_cons * terms["consistency"]
        return self._step(terms, loss, "phi")

    def _pd_fit(self, z: torch.Tensor, shape_index: torch.Tensor, anchors=None) -> tuple[dict, torch.Tensor]:
        """``mean_i sum_k d_PD(PD_k,phi(z_i), P_i^k)`` against the training diagrams, as :func:`anchored_fit`'s
        logged terms and the fit that enters the loss."""
        return anchored_fit(self.generators(z), [self.diagrams[i] for i in shape_index.tolist()], anchors,
                            self.cfg.diagonal_anchor, self.synthetic.pool)

    def _z_epoch(self) -> dict[str, float]:
        with frozen(self.decoder, self.generators):
            return mean_terms(self._z_step(batch) for batch in self._batches())

    def _z_step(self, shape_index: torch.Tensor) -> dict[str, float]:
        """Eq. 15 on the shapes ``shape_index``."""
        cfg = self.cfg
        index = to_device(shape_index, self.device)
        z = self.codes.sample(index)
        terms = {"sdf": self.data_term(z, shape_index, self.data_points), "kl": self.codes.prior_loss(index)}
        loss = terms["sdf"] + cfg.lambda_kl * terms["kl"]
        if self.generators is not None and cfg.lambda_pd > 0:
            terms["pd"] = self._pd_fit(z, shape_index)[1]
            loss = loss + cfg.lambda_pd * terms["pd"]
        return self._step(terms, loss, "z")
