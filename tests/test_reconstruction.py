"""toposdf.reconstruction: DeepSDF's latent fit on a network with a known code, its learning-rate schedule, and
the reconstruction Chamfer distance on a decoder with a known surface."""

import numpy as np
import pytest
import torch

from toposdf.models import DecoderConfig, SDFDecoder
from toposdf.reconstruction import (
    deepsdf_learning_rate,
    latent_fit_loss,
    reconstruct_latent,
    reconstruction_chamfer,
    reconstruction_mesh,
)


def test_reconstruct_latent_fits_a_known_code_with_the_network_frozen():
    torch.manual_seed(1)
    decoder = SDFDecoder(DecoderConfig(latent_size=4, hidden=32, n_layers=4))
    z_star = torch.randn(4)
    x = torch.rand(1000, 3) * 2 - 1
    with torch.no_grad():
        sdf = decoder(z_star[None], x[None])[0]
        initial = float(latent_fit_loss(decoder, torch.zeros(4), x, sdf, clamp=1.0, reg=0.0))
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    z, loss = reconstruct_latent(decoder, x.numpy(), sdf.numpy(), latent_size=4, iterations=100, lr=0.1,
                                 clamp=1.0, reg=0.0, seed=0)
    assert z.shape == (4,) and not z.requires_grad
    assert loss < 0.05 * initial
    with torch.no_grad():
        assert loss == pytest.approx(float(latent_fit_loss(decoder, z, x, sdf, clamp=1.0, reg=0.0)), rel=1e-5)
    for key, value in decoder.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None and p.requires_grad for p in decoder.parameters())


def test_deepsdf_learning_rate_drops_tenfold_at_half_the_iterations():
    rates = [deepsdf_learning_rate(5e-3, step, 800) for step in (0, 399, 400, 799)]
    assert rates == pytest.approx([5e-3, 5e-3, 5e-4, 5e-4])
    assert deepsdf_learning_rate(1.0, 0, 1) == 1.0


class SphereDecoder(torch.nn.Module):
    """``f(x, z) = ||x|| - radius``, whatever z: a decoder with a known surface."""

    def __init__(self, radius: float) -> None:
        super().__init__()
        self.radius = torch.nn.Parameter(torch.tensor(radius))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x.norm(dim=-1) - self.radius


def test_reconstruction_chamfer_of_a_known_surface():
    rng = np.random.default_rng(6)
    on_sphere = rng.normal(size=(3000, 3))
    on_sphere = 0.5 * on_sphere / np.linalg.norm(on_sphere, axis=1, keepdims=True)
    z = torch.zeros(2)
    mesh = reconstruction_mesh(SphereDecoder(0.5), z, resolution=24)
    cd = reconstruction_chamfer(mesh, on_sphere, n_points=3000)
    assert 0 < cd < 2 * (2.0 / 23) ** 2  # within the squared voxel size both ways
    far = reconstruction_chamfer(reconstruction_mesh(SphereDecoder(0.3), z, 24), on_sphere, n_points=3000)
    assert far == pytest.approx(2 * 0.2**2, rel=0.1)
    assert np.isnan(reconstruction_chamfer(reconstruction_mesh(SphereDecoder(-1.0), z, 24), on_sphere))  # no surface


def test_the_narrow_band_reconstruction_has_the_full_grids_surface():
    full = reconstruction_mesh(SphereDecoder(0.5), torch.zeros(2), resolution=24)
    band = reconstruction_mesh(SphereDecoder(0.5), torch.zeros(2), resolution=24, tau=0.2)
    np.testing.assert_allclose(band[0], full[0], atol=1e-6)
    np.testing.assert_array_equal(band[1], full[1])


def test_batched_reconstruction_equals_one_fit_per_shape():
    from toposdf.reconstruction import reconstruct_latents

    torch.manual_seed(0)
    decoder = SDFDecoder(DecoderConfig(latent_size=4, hidden=16, n_layers=3))
    rng = np.random.default_rng(0)
    shapes = []
    for i, n in enumerate([300, 300, 120]):  # two shapes subsampled each iteration, one small one used whole
        x = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        shapes.append((x, (np.linalg.norm(x, axis=1) - 0.3 - 0.1 * i).astype(np.float32)))
    seeds = [7, 8, 9]
    for spi in (200, 120):  # ragged (one pass each) and stacked (one batched pass)
        z, losses = reconstruct_latents(decoder, shapes, 4, iterations=20, lr=0.05, samples_per_iteration=spi,
                                        seeds=seeds)
        for i, (x, sdf) in enumerate(shapes):
            zi, loss = reconstruct_latent(decoder, x, sdf, 4, iterations=20, lr=0.05, samples_per_iteration=spi,
                                          seed=seeds[i])
            torch.testing.assert_close(z[i], zi, rtol=1e-4, atol=1e-5)
            assert losses[i] == pytest.approx(loss, rel=1e-4)
    with pytest.raises(ValueError, match="one seed per shape"):
        reconstruct_latents(decoder, shapes, 4, seeds=[1])
