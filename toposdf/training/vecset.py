"""Training the 3DShape2VecSet row (:mod:`toposdf.vecset`): the autoencoder on the training shapes' surface clouds
and occupancies, then the latent diffusion model on their encodings. Both are :class:`~toposdf.training.base.Trainer`
s: per-epoch CSV, atomic checkpoints, exact resume, a stop on SIGTERM and on a non-finite loss.

The schedule is the official one: AdamW (PyTorch's default weight decay), a linear warmup over ``warmup`` of the
steps, then a half-cycle cosine to ``min_lr``, set at every step from the step's index alone (so a resumed run
takes the same rates).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, fields

import numpy as np
import torch

from toposdf.checkpoints import cpu_threads, pick_device
from toposdf.training.base import Trainer, mean_terms
from toposdf.training.configs import (AutoencoderTrainConfig, DiffusionTrainConfig, autoencoder_train_config,
                                      diffusion_train_config)
from toposdf.transfer import to_device
from toposdf.vecset import EDM, AutoencoderSize, DenoiserSize, VecSetAutoencoder, autoencoder_loss

log = logging.getLogger(__name__)

def sizes_of(cfg, cls):
    """The fields of the sizes dataclass ``cls`` (:class:`~toposdf.vecset.AutoencoderSize`,
    :class:`~toposdf.vecset.DenoiserSize`) read from a training config."""
    return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


def cosine_rate(step: int, total: int, lr: float, min_lr: float, warmup: float) -> float:
    """The official schedule at ``step`` (0-based) of ``total``: linear from 0 over the first ``warmup`` share of the
    steps, then a half-cycle cosine from ``lr`` down to ``min_lr``."""
    ramp = max(1, round(warmup * total))
    if step < ramp:
        return lr * (step + 1) / ramp
    progress = (step - ramp) / max(1, total - ramp)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class _ScheduledTrainer(Trainer):
    """A trainer whose one AdamW follows :func:`cosine_rate` over ``epochs x steps per epoch``."""

    def schedule_scales_with_epochs(self) -> bool:
        return True

    def _set_rate(self, index: int) -> None:
        steps = math.ceil(self.n_shapes / self.batch_shapes)
        rate = cosine_rate(self.epoch * steps + index, self.cfg.epochs * steps, self.cfg.lr, self.cfg.min_lr,
                           self.cfg.warmup)
        for group in self.optimizers["main"].param_groups:
            group["lr"] = rate

    def train_epoch(self) -> dict[str, float]:
        rows = []
        for index, batch in enumerate(self._batches()):
            self._set_rate(index)
            rows.append(self.train_step(batch))
        return mean_terms(rows)


class AutoencoderTrainer(_ScheduledTrainer):
    """The autoencoder on ``clouds`` ``(n, S, 3)`` (surface points, ``points`` of them drawn per step without
    replacement) and occupancy samples ``near`` and ``volume``, each ``(points (n, P, 3), sdf (n, P))`` (inside:
    SDF below 0), ``near_queries`` and ``volume_queries`` of them drawn per shape and step. The samples may be
    memory-mapped (:func:`toposdf.data.load_sdf_samples` spills ShapeNet's): only the drawn ones are read."""

    desc = "3DShape2VecSet autoencoder"

    def __init__(self, model: VecSetAutoencoder, clouds, near, volume, cfg: AutoencoderTrainConfig, checkpoint,
                 log_csv):
        self.cfg, self.model, self.device = cfg, model, pick_device()
        self.model.to(self.device)
        self.clouds = torch.as_tensor(np.asarray(clouds), dtype=torch.float32)
        self.near, self.volume = tuple(near), tuple(volume)
        self.n_shapes = len(self.clouds)
        self.modules = {"autoencoder": model}
        self.optimizers = {"main": torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)}
        self._start(cfg.seed, min(cfg.batch_shapes, self.n_shapes), checkpoint, log_csv)

    def _queries(self, samples: tuple, shapes: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``k`` occupancy samples of each shape (drawn with replacement: ``k`` is far below a shape's samples) as
        ``(points (B, k, 3), labels (B, k))``."""
        points, sdf = samples
        rows = shapes[:, None].numpy()
        pick = torch.randint(points.shape[1], (len(shapes), k), generator=self.generator).numpy()
        return (torch.as_tensor(np.asarray(points[rows, pick]), dtype=torch.float32),
                torch.as_tensor(np.asarray(sdf[rows, pick]) < 0, dtype=torch.float32))

    def train_step(self, shape_index: torch.Tensor) -> dict:
        cfg, dev = self.cfg, self.device
        pick = torch.rand(len(shape_index), self.clouds.shape[1], generator=self.generator).argsort(1)[:, :cfg.points]
        cloud = to_device(self.clouds[shape_index[:, None], pick], dev)
        (vol_points, vol_labels), (near_points, near_labels) = (
            self._queries(self.volume, shape_index, cfg.volume_queries),
            self._queries(self.near, shape_index, cfg.near_queries))
        logits, kl = self.model(cloud, to_device(torch.cat([vol_points, near_points], 1), dev))
        labels = to_device(torch.cat([vol_labels, near_labels], 1), dev)
        v = cfg.volume_queries
        terms = autoencoder_loss(logits[:, :v], labels[:, :v], logits[:, v:], labels[:, v:], kl, cfg.near_weight,
                                 cfg.kl_weight)
        loss = terms.pop("loss")
        return self._step(terms, loss)


class DiffusionTrainer(_ScheduledTrainer):
    """The EDM denoiser on the training shapes' encodings: ``mean`` and ``logvar`` ``(n, K, M, C)`` (``K``
    encodings of each shape, from as many surface samples), one of them drawn per shape and step, a posterior sample
    of it (as the official model trains on ``z = mean + std eps``), divided by ``scale``."""

    desc = "3DShape2VecSet diffusion"

    def __init__(self, edm: EDM, mean, logvar, scale: float, cfg: DiffusionTrainConfig, checkpoint, log_csv):
        self.cfg, self.edm, self.device, self.scale = cfg, edm, pick_device(), float(scale)
        self.edm.to(self.device)
        self.mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        self.std = torch.as_tensor(np.asarray(logvar), dtype=torch.float32).mul(0.5).exp()
        self.n_shapes = len(self.mean)
        self.modules = {"diffusion": edm}
        self.optimizers = {"main": torch.optim.AdamW(edm.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)}
        self._start(cfg.seed, min(cfg.batch_shapes, self.n_shapes), checkpoint, log_csv)

    def train_step(self, shape_index: torch.Tensor) -> dict:
        which = torch.randint(self.mean.shape[1], (len(shape_index),), generator=self.generator)
        mean, std = self.mean[shape_index, which], self.std[shape_index, which]
        z = (mean + std * torch.randn(mean.shape, generator=self.generator)) / self.scale
        loss = self.edm.loss(to_device(z, self.device), self.generator)
        return self._step({}, loss)


def new_autoencoder(cfg: AutoencoderTrainConfig) -> VecSetAutoencoder:
    return VecSetAutoencoder(sizes_of(cfg, AutoencoderSize))


def new_edm(ae: AutoencoderTrainConfig, cfg: DiffusionTrainConfig) -> EDM:
    return EDM(ae.latents, ae.channels, sizes_of(cfg, DenoiserSize))


# --------------------------------------------------------------------------------------------------------------
# The workflow's entry points
# --------------------------------------------------------------------------------------------------------------
def surface_clouds(manifest_paths, ids, n: int, seed: int) -> np.ndarray:
    """``(len(ids), n, 3)`` float32 points drawn uniformly on each shape's normalized mesh, the k-th shape's with
    ``seed + k`` (:func:`toposdf.field.sample_surface`)."""
    from toposdf.data import category_meshes
    from toposdf.evaluation import surface_points

    meshes = category_meshes(manifest_paths, ids)
    missing = [i for i in ids if i not in meshes]
    if missing:
        raise ValueError(f"no normalized mesh for {len(missing)} shapes (first: {missing[0]})")
    return np.stack([surface_points(meshes[shape_id], n, seed + k) for k, shape_id in enumerate(ids)]).astype(
        np.float32)


def occupancy_samples(points, sdf, uniform_fraction: float) -> tuple[tuple, tuple]:
    """DeepSDF's samples as the autoencoder's occupancy queries: ``(near, volume)``, each ``(points, sdf)``, views
    of the arrays (a memory map stays one); the volume points are the uniform share that
    :func:`toposdf.data.sample_sdf` puts last."""
    n_uniform = int(round(uniform_fraction * points.shape[1]))
    if n_uniform == 0 or n_uniform == points.shape[1]:
        raise ValueError(f"sdf.uniform_fraction {uniform_fraction} leaves no {'volume' if not n_uniform else 'near'}"
                         " samples for the autoencoder's occupancy queries")
    cut = points.shape[1] - n_uniform
    return (points[:, :cut], sdf[:, :cut]), (points[:, cut:], sdf[:, cut:])


def encode_clouds(model: VecSetAutoencoder, clouds: np.ndarray, seed: int, batch: int = 16,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, logvar)`` ``(n, M, C)`` of clouds ``(n, N, 3)`` in eval mode, the farthest-point starts drawn from
    ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    means, logvars = [], []
    try:
        with torch.no_grad():
            for part in torch.as_tensor(clouds).split(batch):
                mean, logvar = model.encode(to_device(part, device), generator)
                means.append(mean.cpu().numpy())
                logvars.append(logvar.cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(means), np.concatenate(logvars)


def posterior_samples(mean: np.ndarray, logvar: np.ndarray, seed: int) -> np.ndarray:
    """``z = mean + std eps`` with ``eps`` drawn from ``seed``: what the official model decodes when it reconstructs
    a shape (``KLAutoEncoder.forward`` samples the posterior, in training and in evaluation alike). Its decoder is
    trained on such samples, and the posterior mean alone can lie off them (decoded IoU 0.40 against 0.97 for a
    torus in a short run)."""
    eps = np.random.default_rng(seed).standard_normal(mean.shape).astype(np.float32)
    return (mean + np.exp(0.5 * logvar) * eps).astype(np.float32)


def subsample(clouds: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of each cloud's points without replacement, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([cloud[rng.choice(len(cloud), n, replace=False)] for cloud in clouds])


def load_autoencoder(path) -> tuple[VecSetAutoencoder, dict]:
    """The trained autoencoder of ``train/vecset/autoencoder.pt`` (eval mode, on the device) and its checkpoint."""
    from toposdf.checkpoints import load_checkpoint

    state = load_checkpoint(path)
    model = VecSetAutoencoder(AutoencoderSize(**state["sizes"]))
    model.load_state_dict(state["autoencoder"])
    return model.to(pick_device()).eval(), state


def load_diffusion(path) -> tuple[EDM, float]:
    """The trained EDM of ``train/vecset/diffusion.pt`` (eval mode, on the device) and its latent scale."""
    from toposdf.checkpoints import load_checkpoint

    state = load_checkpoint(path)
    edm = EDM(*state["latent_shape"], DenoiserSize(**state["sizes"]))
    edm.load_state_dict(state["diffusion"])
    return edm.to(pick_device()).eval(), float(state["scale"])


def reconstruction_fit(model: VecSetAutoencoder, clouds: np.ndarray, truth: np.ndarray, seed: int) -> dict:
    """How well the autoencoder reproduces shapes from their clouds: a posterior sample of each of ``clouds``
    (``points`` of each, drawn with ``seed``; :func:`posterior_samples`) decoded on the ground truth's grid, against
    its occupancies ``truth`` (:func:`toposdf.diagnostics.occupancy_fit`; inside: logits above 0)."""
    from toposdf.diagnostics import occupancy_fit
    from toposdf.vecset import decode_grid

    z = posterior_samples(*encode_clouds(model, subsample(clouds, model.size.points, seed), seed), seed)
    device = next(model.parameters()).device
    decoded = decode_grid(model, to_device(torch.as_tensor(z), device), truth.shape[1]) > 0
    return occupancy_fit(decoded, truth)


def autoencoder_data(cfg, train_cfg: AutoencoderTrainConfig, samples, split, manifests,
                     spill_bytes: int | None = None) -> tuple[list[str], np.ndarray, tuple, tuple]:
    """The autoencoder's training data for one category: the training shapes' ids (those of ``split`` with SDF
    samples in ``samples``), their surface clouds from the normalized meshes ``manifests``, and their near-surface
    and volume occupancy queries (:func:`occupancy_samples`)."""
    from toposdf.data import load_sdf_samples, split_ids

    ids, points, sdf = load_sdf_samples(samples, split_ids(split, "train"), at_least_one=True,
                                        spill_bytes=spill_bytes)
    near, volume = occupancy_samples(points, sdf, cfg.sdf.uniform_fraction)
    clouds = surface_clouds(manifests, ids, train_cfg.surface_samples, cfg.train.seed)
    return ids, clouds, near, volume


def fit_subsets(train_cfg: AutoencoderTrainConfig, seed: int, split, manifests, grids, ids, clouds):
    """The shapes :func:`fit_report` measures, as ``(subset, clouds, truth)``: the training shapes ``ids`` (their
    ``clouds``) and the test shapes of ``split``, which the autoencoder never saw, each with its ground truth's
    occupancies from ``grids``. A generator: one subset's grids are held at a time."""
    from toposdf.data import split_ids
    from toposdf.diagnostics import load_occupancies

    yield "train", clouds, load_occupancies(grids, ids)[0]
    test_ids = split_ids(split, "test")
    yield "test", surface_clouds(manifests, test_ids, train_cfg.surface_samples, seed), load_occupancies(grids,
                                                                                                        test_ids)[0]


def fit_report(model: VecSetAutoencoder, seed: int, subsets) -> dict:
    """:func:`reconstruction_fit` of each ``(subset, clouds, truth)`` of ``subsets`` (:func:`fit_subsets`), with the
    number of its shapes."""
    return {name: reconstruction_fit(model, clouds, truth, seed) | {"shapes": len(truth)}
            for name, clouds, truth in subsets}


def train_vecset_autoencoder(job) -> None:
    """The autoencoder for one category on its training shapes (``input.split``): surface clouds from
    ``input.manifests``' normalized meshes, occupancy queries from the SDF samples ``input.samples``; to
    ``output.checkpoint`` and ``output.curve``, resumable; then ``output.fit``: the reconstruction IoU on the ground
    truth's grid (``input.grids``) of the training shapes and of the test shapes (:func:`fit_report`)."""
    from toposdf.checkpoints import claim_work, finish, work_path, work_sources
    from toposdf.data import SPILL_BYTES
    from toposdf.io import atomic_write_json, json_safe
    from toposdf.provenance import provenance

    cfg = job.cfg
    cpu_threads(job.threads)
    claim_work(job.output.checkpoint, work_sources(job.settings, job.input), extra=[job.output.curve])
    train_cfg = autoencoder_train_config(cfg)
    ids, clouds, near, volume = autoencoder_data(cfg, train_cfg, job.input.samples, job.input.split,
                                                 job.input.manifests, spill_bytes=SPILL_BYTES)
    torch.manual_seed(cfg.train.seed)
    model = new_autoencoder(train_cfg)
    trainer = AutoencoderTrainer(model, clouds, near, volume, train_cfg, work_path(job.output.checkpoint),
                                 work_path(job.output.curve))
    log.info("3DShape2VecSet autoencoder: %d training shapes, %.2fM parameters, %s on %s", len(ids),
             sum(p.numel() for p in model.parameters()) / 1e6, train_cfg, trainer.device)
    trainer.fit()
    sizes = sizes_of(train_cfg, AutoencoderSize)
    finish(trainer.state() | {"ids": ids, "sizes": asdict(sizes)}, job.output.checkpoint, job.output.curve)
    fit = fit_report(model, cfg.train.seed, fit_subsets(train_cfg, cfg.train.seed, job.input.split,
                                                         job.input.manifests, job.input.grids, ids, clouds))
    for subset in fit:
        log.info("3DShape2VecSet autoencoder, %s shapes: IoU %.3f", subset, fit[subset]["decoded_iou"])
    atomic_write_json(job.output.fit, json_safe({"category": job.wildcards.category, **fit,
                                                 "provenance": provenance(job.settings, job.output.checkpoint)}))


def train_vecset_diffusion(job) -> None:
    """The latent diffusion model for one category on its training shapes' encodings by ``input.autoencoder``
    (``encodings`` of each, from as many seeded surface samples), divided by their standard deviation; to
    ``output.checkpoint`` and ``output.curve``, resumable."""
    from toposdf.checkpoints import claim_work, finish, work_path, work_sources

    cfg = job.cfg
    cpu_threads(job.threads)
    claim_work(job.output.checkpoint, work_sources(job.settings, job.input), extra=[job.output.curve])
    ae_cfg, train_cfg = autoencoder_train_config(cfg), diffusion_train_config(cfg)
    model, state = load_autoencoder(job.input.autoencoder)
    ids = list(state["ids"])
    clouds = surface_clouds(job.input.manifests, ids, ae_cfg.surface_samples, cfg.train.seed)
    encoded = [encode_clouds(model, subsample(clouds, ae_cfg.points, cfg.train.seed + k), cfg.train.seed + k)
               for k in range(train_cfg.encodings)]
    mean = np.stack([m for m, _ in encoded], axis=1)  # (n, K, M, C)
    logvar = np.stack([v for _, v in encoded], axis=1)
    scale = float(np.sqrt(np.mean(mean ** 2 + np.exp(logvar))))  # the posterior samples' RMS
    torch.manual_seed(cfg.train.seed)
    edm = new_edm(ae_cfg, train_cfg)
    trainer = DiffusionTrainer(edm, mean, logvar, scale, train_cfg, work_path(job.output.checkpoint),
                               work_path(job.output.curve))
    log.info("3DShape2VecSet diffusion: %d training shapes x %d encodings, latent RMS %.3f, %.2fM parameters, %s on %s",
             len(ids), train_cfg.encodings, scale, sum(p.numel() for p in edm.parameters()) / 1e6, train_cfg,
             trainer.device)
    trainer.fit()
    finish(trainer.state() | {"ids": ids, "sizes": asdict(sizes_of(train_cfg, DenoiserSize)),
                              "latent_shape": [ae_cfg.latents, ae_cfg.channels], "scale": scale},
           job.output.checkpoint, job.output.curve)
