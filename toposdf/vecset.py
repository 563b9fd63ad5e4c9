"""A compact 3DShape2VecSet (Zhang et al., SIGGRAPH 2023): the latent-set autoencoder of occupancy and the EDM
latent diffusion over its sets, the third baseline of the paper's Table 1 (docs/vecset.md).

Written from the paper and 1zb/3DShape2VecSet (``models_ae.py``, ``models_class_cond.py``, ``engine_ae.py``):

- :class:`VecSetAutoencoder`: a surface point cloud with Fourier features (:class:`PointEmbed`); ``M`` latent
  queries drawn from the points by farthest-point sampling (:func:`farthest_points`), one cross-attention onto the
  cloud, a KL bottleneck to ``M x C``, then (in the decoder) self-attention layers and a one-head cross-attention
  queried at 3D points, giving occupancy logits. Loss (:func:`autoencoder_loss`): BCE on volume points + 0.1 x BCE
  on near-surface points + 1e-3 x KL (an element mean).
- :class:`LatentDenoiser` and :class:`EDM`: Karras et al.'s preconditioning and loss (``P_mean -1.2, P_std 1.2,
  sigma_data 1``) around an AdaLN transformer over the set (no positional embedding: the model is
  permutation-equivariant), and the deterministic Heun sampler (:meth:`EDM.sample`, 18 steps).

Deviations from the released model, each for a per-category model trained on a few hundred shapes: one
unconditional model per category (no class token, no cross-attention in the denoiser); the diffusion model sees
the latents divided by their standard deviation over the training set (one scalar, stored with the model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------------------
class PointEmbed(nn.Module):
    """The official Fourier embedding: ``hidden / 6`` frequencies ``2^k pi`` per axis (each axis its own block of
    the basis), ``[sin, cos, xyz]`` then one linear layer to ``dim``."""

    def __init__(self, dim: int, hidden: int = 48):
        super().__init__()
        per_axis = hidden // 6
        freqs = (2.0 ** torch.arange(per_axis)) * math.pi
        basis = torch.zeros(3, 3 * per_axis)
        for axis in range(3):
            basis[axis, axis * per_axis:(axis + 1) * per_axis] = freqs
        self.register_buffer("basis", basis)
        self.linear = nn.Linear(6 * per_axis + 3, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = x @ self.basis
        return self.linear(torch.cat([projected.sin(), projected.cos(), x], dim=-1))


class Attention(nn.Module):
    """Multi-head attention of ``x`` onto ``context`` (itself when None): queries and keys/values without bias, the
    output projection with bias, as in the official ``Attention``."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int | None = None):
        super().__init__()
        inner, context_dim = heads * dim_head, context_dim or dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q = self.to_q(x)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        split = [t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v)]
        out = F.scaled_dot_product_attention(*split)
        return self.to_out(out.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """GEGLU with a hidden width of ``mult x dim``."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.project_in = nn.Linear(dim, 2 * mult * dim)
        self.project_out = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.project_in(x).chunk(2, dim=-1)
        return self.project_out(a * F.gelu(gate))


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: each sample's residual branch dropped with probability ``p`` in training (the rest scaled
    by ``1 / (1 - p)``)."""
    if p <= 0 or not training:
        return x
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device) >= p
    return x * keep / (1 - p)


def farthest_points(points: torch.Tensor, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices ``(B, m)`` of ``m`` points of each cloud ``(B, N, 3)`` by farthest-point sampling from a random start
    (``torch_cluster.fps``'s default, which the official encoder uses), drawn with ``generator`` (else torch's
    global generator)."""
    b, n, _ = points.shape
    if not 0 < m <= n:
        raise ValueError(f"cannot pick {m} of {n} points")
    start = torch.randint(n, (b,), generator=generator).to(points.device)
    chosen = torch.empty(b, m, dtype=torch.long, device=points.device)
    nearest = torch.full((b, n), float("inf"), device=points.device, dtype=points.dtype)
    rows = torch.arange(b, device=points.device)
    current = start
    for i in range(m):
        chosen[:, i] = current
        d = (points - points[rows, current][:, None]).square().sum(-1)
        nearest = torch.minimum(nearest, d)
        current = nearest.argmax(dim=1)
    return chosen


# --------------------------------------------------------------------------------------------------------------
# The autoencoder
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoencoderSize:
    """The autoencoder's sizes (the released ``kl_d512_m512_l8``: width 512, 512 latents of 8 channels, 24 layers
    of 8 heads, 2,048 input points)."""

    width: int = 512
    latents: int = 512
    channels: int = 8
    layers: int = 24
    heads: int = 8
    points: int = 2048
    drop_path: float = 0.1


class VecSetAutoencoder(nn.Module):
    """Point cloud -> ``M x C`` latent set (a diagonal Gaussian) -> occupancy logits at query points."""

    def __init__(self, size: AutoencoderSize):
        super().__init__()
        w = size.width
        self.size = size
        self.embed = PointEmbed(w)
        self.encoder_norm_q, self.encoder_norm_context = nn.LayerNorm(w), nn.LayerNorm(w)
        self.encoder_attention = Attention(w, heads=1, dim_head=w)
        self.encoder_norm_ff, self.encoder_ff = nn.LayerNorm(w), FeedForward(w)
        self.mean_fc, self.logvar_fc = nn.Linear(w, size.channels), nn.Linear(w, size.channels)
        self.proj = nn.Linear(size.channels, w)
        self.layers = nn.ModuleList(
            nn.ModuleList([nn.LayerNorm(w), Attention(w, size.heads, w // size.heads), nn.LayerNorm(w), FeedForward(w)])
            for _ in range(size.layers))
        self.decoder_norm_q, self.decoder_norm_context = nn.LayerNorm(w), nn.LayerNorm(w)
        self.decoder_attention = Attention(w, heads=1, dim_head=w)
        self.to_logits = nn.Linear(w, 1)

    def encode(self, cloud: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, logvar)`` ``(B, M, C)`` of clouds ``(B, N, 3)``; the queries are the farthest-point sample of
        each cloud (its random start drawn with ``generator``)."""
        index = farthest_points(cloud, self.size.latents, generator)
        queries = torch.gather(cloud, 1, index[..., None].expand(-1, -1, 3))
        q, context = self.embed(queries), self.embed(cloud)
        x = self.encoder_attention(self.encoder_norm_q(q), self.encoder_norm_context(context)) + q
        x = self.encoder_ff(self.encoder_norm_ff(x)) + x
        return self.mean_fc(x), self.logvar_fc(x).clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Occupancy logits ``(B, Q)`` at ``points`` ``(B, Q, 3)`` of latent sets ``z`` ``(B, M, C)``."""
        x = self.proj(z)
        for norm_a, attention, norm_f, ff in self.layers:
            x = drop_path(attention(norm_a(x)), self.size.drop_path, self.training) + x
            x = drop_path(ff(norm_f(x)), self.size.drop_path, self.training) + x
        return self.decode_latent(x, points)

    def decode_latent(self, x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """The query head alone, on the output ``x`` of the latent layers (reused for many query chunks)."""
        q = self.embed(points)
        out = self.decoder_attention(self.decoder_norm_q(q), self.decoder_norm_context(x))
        return self.to_logits(out).squeeze(-1)

    def latent_layers(self, z: torch.Tensor) -> torch.Tensor:
        """The latent layers' output for ``z`` (eval mode: no stochastic depth)."""
        x = self.proj(z)
        for norm_a, attention, norm_f, ff in self.layers:
            x = attention(norm_a(x)) + x
            x = ff(norm_f(x)) + x
        return x

    def forward(self, cloud: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits at ``points`` for a posterior sample of each cloud's latent set, and each cloud's KL (the mean
        over the set's elements, as the official ``DiagonalGaussianDistribution.kl``)."""
        mean, logvar = self.encode(cloud)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean(dim=(1, 2))
        return self.decode(z, points), kl


def autoencoder_loss(logits_volume: torch.Tensor, labels_volume: torch.Tensor, logits_near: torch.Tensor,
                     labels_near: torch.Tensor, kl: torch.Tensor, near_weight: float = 0.1,
                     kl_weight: float = 1e-3) -> dict[str, torch.Tensor]:
    """The official objective (``engine_ae.py``): ``BCE(volume) + near_weight BCE(near) + kl_weight KL``; labels
    are 1 inside. Returns the terms and ``loss``."""
    volume = F.binary_cross_entropy_with_logits(logits_volume, labels_volume)
    near = F.binary_cross_entropy_with_logits(logits_near, labels_near)
    kl = kl.mean()
    return {"volume_bce": volume, "near_bce": near, "kl": kl,
            "loss": volume + near_weight * near + kl_weight * kl}


@torch.no_grad()
def decode_grid(model: VecSetAutoencoder, z: torch.Tensor, resolution: int, chunk: int = 32768) -> np.ndarray:
    """Occupancy logits of latent sets ``z`` ``(B, M, C)`` on the ``resolution^3`` grid over ``[-1, 1]^3`` (C order
    of :func:`toposdf.data.grid_points`): ``(B, N, N, N)`` float32, positive inside."""
    from toposdf.field import grid_points_cached

    was_training = model.training
    model.eval()
    try:
        points = torch.tensor(grid_points_cached(resolution), dtype=z.dtype, device=z.device)  # a copy: read-only
        out = []
        for one in z:
            x = model.latent_layers(one[None])
            logits = [model.decode_latent(x, part[None])[0] for part in points.split(chunk)]
            out.append(torch.cat(logits).reshape((resolution,) * 3).cpu().numpy())
    finally:
        model.train(was_training)
    return np.stack(out).astype(np.float32) if out else np.zeros((0,) + (resolution,) * 3, np.float32)


# --------------------------------------------------------------------------------------------------------------
# Latent diffusion (EDM)
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DenoiserSize:
    """The denoiser's sizes (the released ``kl_d512_m512_l8_d24_edm``: width 512, 24 blocks of 8 heads)."""

    width: int = 512
    blocks: int = 24
    heads: int = 8


class NoiseEmbedding(nn.Module):
    """EDM's positional embedding of ``c_noise`` (cos | sin, ``max_positions`` 10,000) and two SiLU layers."""

    def __init__(self, width: int, channels: int = 256, max_positions: int = 10_000):
        super().__init__()
        freqs = torch.arange(channels // 2, dtype=torch.float32) / (channels // 2)
        self.register_buffer("freqs", (1.0 / max_positions) ** freqs)
        self.mlp = nn.Sequential(nn.Linear(channels, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU())

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        x = c_noise.float()[:, None] * self.freqs[None]
        return self.mlp(torch.cat([x.cos(), x.sin()], dim=1))


class AdaLayerNorm(nn.Module):
    """``LN(x) (1 + scale) + shift``, scale and shift from the noise embedding."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.linear = nn.Linear(width, 2 * width)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        scale, shift = self.linear(F.silu(embedding))[:, None].chunk(2, dim=-1)
        return self.norm(x) * (1 + scale) + shift


class LatentDenoiser(nn.Module):
    """The official ``LatentArrayTransformer`` without its class token: each of the ``M`` latents a token (no
    positional embedding), blocks of AdaLN self-attention and AdaLN GEGLU, a final LayerNorm and a zero-initialized
    output projection."""

    def __init__(self, channels: int, size: DenoiserSize):
        super().__init__()
        w = size.width
        self.embedding = NoiseEmbedding(w)
        self.proj_in = nn.Linear(channels, w, bias=False)
        self.blocks = nn.ModuleList(
            nn.ModuleList([AdaLayerNorm(w), Attention(w, size.heads, w // size.heads), AdaLayerNorm(w), FeedForward(w)])
            for _ in range(size.blocks))
        self.norm = nn.LayerNorm(w)
        self.proj_out = nn.Linear(w, channels, bias=False)
        nn.init.zeros_(self.proj_out.weight)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        embedding = self.embedding(c_noise)
        h = self.proj_in(x)
        for norm_a, attention, norm_f, ff in self.blocks:
            h = attention(norm_a(h, embedding)) + h
            h = ff(norm_f(h, embedding)) + h
        return self.proj_out(self.norm(h))


class EDM(nn.Module):
    """Karras et al.'s preconditioned denoiser ``D(x; sigma)`` around :class:`LatentDenoiser`, its training loss
    and its deterministic Heun sampler, with the official settings."""

    P_mean, P_std, sigma_data = -1.2, 1.2, 1.0

    def __init__(self, latents: int, channels: int, size: DenoiserSize):
        super().__init__()
        self.shape = (latents, channels)
        self.net = LatentDenoiser(channels, size)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = sigma.reshape(-1, 1, 1).to(torch.float32)
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (sigma.square() + sd2)
        c_out = sigma * self.sigma_data / (sigma.square() + sd2).sqrt()
        c_in = 1.0 / (sd2 + sigma.square()).sqrt()
        c_noise = sigma.log().flatten() / 4
        x = x.to(torch.float32)
        return c_skip * x + c_out * self.net(c_in * x, c_noise)

    def loss(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """EDM's weighted denoising loss of clean latent sets ``y`` ``(B, M, C)``, its noise levels and noise drawn
        with ``generator`` (else torch's global generator)."""
        draw = dict(generator=generator, dtype=y.dtype)
        normal = torch.randn((y.shape[0], 1, 1), **draw).to(y.device)
        sigma = (normal * self.P_std + self.P_mean).exp()
        weight = (sigma.square() + self.sigma_data ** 2) / (sigma * self.sigma_data).square()
        noise = torch.randn(y.shape, **draw).to(y.device) * sigma
        return (weight * (self(y + noise, sigma) - y).square()).mean()

    @torch.no_grad()
    def sample(self, n: int, seed: int, steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0,
               rho: float = 7.0, device: torch.device | str = "cpu") -> torch.Tensor:
        """``n`` latent sets ``(n, M, C)`` by the deterministic Heun sampler (EDM's Algorithm 1 with
        ``S_churn = 0``; ``2 steps - 1`` network evaluations), from ``seed``'s Gaussian noise in float64."""
        was_training = self.training
        self.eval()
        try:
            g = torch.Generator().manual_seed(seed)
            i = torch.arange(steps, dtype=torch.float64)
            t = (sigma_max ** (1 / rho) + i / (steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
            t = torch.cat([t, torch.zeros(1, dtype=torch.float64)]).to(device)
            x = (torch.randn((n,) + self.shape, generator=g, dtype=torch.float64) * t[0]).to(device)
            for k in range(steps):
                t_cur, t_next = t[k], t[k + 1]
                d = (x - self(x, t_cur.expand(n)).double()) / t_cur
                x_next = x + (t_next - t_cur) * d
                if k < steps - 1:
                    d_next = (x_next - self(x_next, t_next.expand(n)).double()) / t_next
                    x_next = x + (t_next - t_cur) * (0.5 * d + 0.5 * d_next)
                x = x_next
        finally:
            self.train(was_training)
        return x.float()
