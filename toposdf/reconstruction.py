"""DeepSDF's test-time reconstruction (CD protocol): fit an unseen shape's latent code with the network frozen,
mesh ``f(., z)``, and take the Chamfer distance to the ground truth.

Coordinates and grids are those of :mod:`toposdf.field`; the Chamfer distance is
:func:`toposdf.metrics.chamfer_distance` (squared distances, ``nan`` for an empty reconstruction).
"""

from __future__ import annotations

import numpy as np
import torch

from toposdf.field import evaluate_grid, evaluate_grid_band, extract_mesh, sample_surface
from toposdf.losses import sdf_data_loss
from toposdf.metrics import chamfer_distance
from toposdf.models import frozen

Mesh = tuple[np.ndarray, np.ndarray]


def latent_fit_loss(decoder, z: torch.Tensor, points: torch.Tensor, sdf: torch.Tensor, clamp: float = 0.1,
                    reg: float = 1e-4) -> torch.Tensor:
    """DeepSDF's reconstruction objective: clamped L1 of ``f(points, z)`` against ``sdf`` plus ``reg * mean(z^2)``.

    ``z`` is ``(L,)``, ``points`` ``(P, 3)``, ``sdf`` ``(P,)``; the regularizer is a mean over the code's entries,
    as in DeepSDF's ``reconstruct.py`` (``1e-4 * torch.mean(latent.pow(2))``), not the squared norm.
    """
    return sdf_data_loss(decoder(z[None], points[None])[0], sdf, clamp) + reg * z.pow(2).mean()


def deepsdf_learning_rate(lr: float, step: int, iterations: int) -> float:
    """DeepSDF's reconstruction schedule: ``lr`` divided by 10 every ``iterations // 2`` steps (so once)."""
    return lr * 0.1 ** (step // max(1, iterations // 2))


@torch.no_grad()
def _full_loss(decoder, z, points, sdf, clamp, reg, chunk: int = 65536) -> float:
    """:func:`latent_fit_loss` over every sample, in chunks (the clamped L1 is a mean, so chunks are weighted)."""
    total = 0.0
    for start in range(0, len(points), chunk):
        block = slice(start, start + chunk)
        pred = decoder(z[None], points[block][None])[0]
        total += float(sdf_data_loss(pred, sdf[block], clamp)) * len(pred)
    return total / len(points) + reg * float(z.pow(2).mean())


def reconstruct_latent(
    decoder: torch.nn.Module,
    points: np.ndarray,
    sdf: np.ndarray,
    latent_size: int,
    iterations: int = 800,
    lr: float = 5e-3,
    clamp: float = 0.1,
    reg: float = 1e-4,
    init_std: float = 0.01,
    samples_per_iteration: int = 8000,
    seed: int = 0,
) -> tuple[torch.Tensor, float]:
    """DeepSDF's test-time reconstruction: the latent code of an unseen shape, fitted with the network frozen.

    DeepSDF (``reconstruct.py``, as run there): ``z ~ N(0, init_std^2)`` with ``init_std = 0.01``; Adam at
    ``lr = 5e-3`` for 800 iterations, divided by 10 after half of them (:func:`deepsdf_learning_rate`); each
    iteration draws 8000 of the shape's SDF samples and minimizes :func:`latent_fit_loss` (clamped L1,
    ``delta = 0.1``, plus ``1e-4 * mean(z^2)``). Here the samples are drawn uniformly with replacement (DeepSDF
    draws half with positive and half with negative SDF), and a shape with at most ``samples_per_iteration``
    samples uses all of them each time. The decoder's parameters get no gradients and are left unchanged; the
    code lives on the decoder's device.

    Args:
        decoder: ``f(z (B, L), x (B, P, 3)) -> (B, P)``, e.g. :class:`toposdf.models.SDFDecoder`.
        points: ``(P, 3)`` SDF sample positions of the test shape. sdf: ``(P,)`` their signed distances.
        latent_size: ``L``.
        seed: seeds the initial code and the sample draws.

    Returns:
        ``(z, loss)``: the ``(L,)`` detached code, and :func:`latent_fit_loss` at ``z`` over all ``P`` samples.
    """
    z, losses = reconstruct_latents(decoder, [(points, sdf)], latent_size, iterations, lr, clamp, reg, init_std,
                                    samples_per_iteration, [seed])
    return z[0], losses[0]


def _draw_samples(xs, targets, generators, n: int, device) -> tuple[list, list]:
    """``n`` samples of each shape drawn with its own generator; a small shape gives every sample, every time."""
    x, t = [], []
    for xi, ti, g in zip(xs, targets, generators):
        pick = torch.randint(len(xi), (n,), generator=g).to(device) if len(xi) > n else slice(None)
        x.append(xi[pick])
        t.append(ti[pick])
    return x, t


def reconstruct_latents(
    decoder: torch.nn.Module,
    shapes: list[tuple[np.ndarray, np.ndarray]],
    latent_size: int,
    iterations: int = 800,
    lr: float = 5e-3,
    clamp: float = 0.1,
    reg: float = 1e-4,
    init_std: float = 0.01,
    samples_per_iteration: int = 8000,
    seeds: list[int] | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """:func:`reconstruct_latent` of several shapes at once, one network pass per iteration for all of them.

    Each shape keeps its own code, initial draw, sample draws (``seeds[i]``, default ``i``) and Adam state: the
    summed loss gives each code the gradient of its own :func:`latent_fit_loss`, and Adam works per entry, so the
    codes are those of one :func:`reconstruct_latent` call per shape, up to the rounding of a batched forward.
    ``shapes``: ``(points (P_i, 3), sdf (P_i,))`` per shape.

    Returns ``(z (n, L), losses)``: the detached codes and each one's :func:`latent_fit_loss` over all its samples.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    seeds = list(range(len(shapes))) if seeds is None else list(seeds)
    if len(seeds) != len(shapes) or not shapes:
        raise ValueError(f"expected one seed per shape and at least one shape, got {len(seeds)} for {len(shapes)}")
    device = next(decoder.parameters()).device
    xs, targets, generators, inits = [], [], [], []
    for (points, sdf), seed in zip(shapes, seeds):
        points, sdf = np.asarray(points, np.float32), np.asarray(sdf, np.float32)
        if points.ndim != 2 or points.shape[1] != 3 or sdf.shape != (len(points),) or len(points) == 0:
            raise ValueError(f"expected points (P, 3) and sdf (P,) with P > 0, got {points.shape} and {sdf.shape}")
        generator = torch.Generator().manual_seed(seed)
        inits.append(torch.randn(latent_size, generator=generator) * init_std)
        generators.append(generator)
        xs.append(torch.from_numpy(points).to(device))
        targets.append(torch.from_numpy(sdf).to(device))
    z = torch.stack(inits).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    with frozen(decoder):
        for step in range(iterations):
            for group in optimizer.param_groups:
                group["lr"] = deepsdf_learning_rate(lr, step, iterations)
            x, t = _draw_samples(xs, targets, generators, samples_per_iteration, device)
            if len({len(xi) for xi in x}) == 1:
                per_shape = (decoder(z, torch.stack(x)).clamp(-clamp, clamp) - torch.stack(t).clamp(-clamp, clamp)
                             ).abs().mean(1)
            else:  # shapes with fewer samples than an iteration takes, of different counts: one pass each
                per_shape = torch.stack([sdf_data_loss(decoder(z[i:i + 1], xi[None])[0], ti, clamp)
                                         for i, (xi, ti) in enumerate(zip(x, t))])
            loss = (per_shape + reg * z.pow(2).mean(1)).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    z = z.detach()
    return z, [_full_loss(decoder, z[i], xs[i], targets[i], clamp, reg) for i in range(len(xs))]


def reconstruction_mesh(decoder: torch.nn.Module, z: torch.Tensor, resolution: int, tau: float | None = None) -> Mesh:
    """The mesh of ``f(., z)`` for a code ``z`` ``(L,)``: marching cubes (:func:`toposdf.field.extract_mesh`) on the
    ``resolution^3`` grid, evaluated in full (:func:`toposdf.field.evaluate_grid`) or, with ``tau``, in the narrow
    band (:func:`toposdf.field.evaluate_grid_band`, exact where ``|f| < tau``, at a fraction of the work).

    Returns ``(vertices (V, 3), faces (F, 3))``, empty when ``f(., z)`` has no surface on the grid.
    """
    z = z.reshape(1, -1)
    grid = evaluate_grid(decoder, z, resolution) if tau is None else evaluate_grid_band(decoder, z, resolution, tau)
    return extract_mesh(grid[0])


def reconstruction_chamfer(mesh: Mesh, reference_points: np.ndarray, n_points: int = 30_000, seed: int = 0,
                           workers: int = 1) -> float:
    """The Chamfer distance of DeepSDF's CD-mean for one test shape: the reconstruction ``mesh`` (from
    :func:`reconstruction_mesh`) sampled at ``n_points`` points (:func:`toposdf.field.sample_surface` with
    ``seed``), against ``reference_points`` ``(m, 3)`` sampled on the ground-truth mesh. ``nan`` when the
    reconstruction has no surface."""
    return chamfer_distance(sample_surface(*mesh, n_points, seed), reference_points, workers)
