"""The latent prior of eqs. 9, 11 and 15: the set-level D_KL({z_i}, N_d), against closed forms and in training."""

import numpy as np
import pytest
import torch

from toposdf.models import LatentCodes, LatentConfig


def _codes(values: torch.Tensor, **kwargs) -> LatentCodes:
    codes = LatentCodes(*values.shape, LatentConfig(**kwargs))
    with torch.no_grad():
        codes.mu.copy_(values)
    return codes


def test_set_kl_with_the_full_covariance_is_the_kl_of_the_moment_matched_gaussian():
    torch.manual_seed(0)
    values = torch.randn(200, 4, dtype=torch.float64) @ torch.tensor(
        [[1.5, 0, 0, 0], [0.4, 0.5, 0, 0], [0, 0, 2.0, 0], [0.3, 0, 0, 0.1]], dtype=torch.float64) + 0.7
    codes = _codes(values.float())
    assert codes.full_covariance()
    mean, cov = values.mean(0), torch.cov(values.T, correction=0)
    expected = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(mean, cov),
        torch.distributions.MultivariateNormal(torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64)))
    assert codes.set_kl(eps=0.0).item() == pytest.approx(expected.item(), rel=1e-4)


def test_set_kl_with_few_codes_is_the_diagonal_one_and_adds_the_posterior_variance():
    values = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [1.0, 4.0, 1.0]])
    codes = _codes(values, variational=True, init_logvar=np.log(0.5))
    assert not codes.full_covariance()  # 3 codes in 3 dimensions: the sample covariance is singular
    variance = values.var(0, unbiased=False) + 0.5
    mean = values.mean(0)
    expected = sum(0.5 * (v + m**2 - 1 - np.log(v)) for v, m in zip(variance.tolist(), mean.tolist()))
    assert codes.set_kl(eps=0.0).item() == pytest.approx(expected, rel=1e-5)
    assert codes.prior_loss(torch.arange(3)).item() == pytest.approx(codes.set_kl().item())


def test_set_kl_is_zero_on_the_prior_and_its_gradient_spreads_narrow_codes_but_never_below_it():
    torch.manual_seed(0)
    white = torch.randn(4000, 3)
    white = (white - white.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(white.T, correction=0))).T
    assert _codes(white).set_kl(eps=0.0).item() == pytest.approx(0.0, abs=1e-4)
    for scale, direction in ((0.1, "spreads"), (3.0, "shrinks")):
        codes = _codes(white * scale)
        optimizer = torch.optim.SGD(codes.parameters(), lr=50.0)  # the term is a mean over 4000 codes
        spreads = [codes.aggregate_std()]
        for _ in range(1000):
            optimizer.zero_grad()
            codes.set_kl().backward()
            optimizer.step()
            spreads.append(codes.aggregate_std())
        steps = np.diff(spreads)
        if direction == "spreads":
            assert np.all(steps >= -1e-6) and max(spreads) <= 1.0 + 1e-3
        else:
            assert np.all(steps <= 1e-6) and min(spreads) >= 1.0 - 1e-3
        assert spreads[-1] == pytest.approx(1.0, abs=0.02)


def test_the_per_code_kl_pulls_every_code_to_zero():
    codes = _codes(torch.randn(50, 4), prior="per_code", variational=True, init_logvar=0.0)
    codes.prior_loss(torch.arange(50)).backward()
    # gradient of 0.5 mu^2 / batch: towards 0, for every code alike (why it cannot cover N(0, I) as a set)
    torch.testing.assert_close(codes.mu.grad, codes.mu.detach() / 50)


def test_latent_config_rejects_what_makes_no_sense():
    with pytest.raises(ValueError, match="variational"):
        LatentConfig(prior="per_code", variational=False)
    with pytest.raises(ValueError, match="init_std"):
        LatentConfig(init_std=0.0)
    with pytest.raises(ValueError, match="prior"):
        LatentConfig(prior="gaussian")


def test_a_short_training_run_brings_narrow_codes_to_cover_the_prior(tmp_path):
    """Codes started 10x narrower than N(0, I) (DeepSDF's habit) reach an aggregate std in [0.8, 1.2] under the
    set-level term within a short stage 1 on the tiny sizes; the per-code KL leaves them narrow."""
    from dataclasses import replace

    from test_training import schema_defaults, sphere_samples

    from toposdf.models import PRIOR_COVERAGE_RANGE, DecoderConfig, SDFDecoder
    from toposdf.training import ImplicitTrainer, implicit_train_config

    points, sdf = sphere_samples()
    spreads = {}
    for prior in ("set", "per_code"):
        torch.manual_seed(0)
        decoder = SDFDecoder(DecoderConfig(latent_size=2, hidden=32, n_layers=4))
        codes = LatentCodes(len(points), 2, LatentConfig(prior=prior, variational=prior == "per_code", init_std=0.1))
        cfg = replace(implicit_train_config(schema_defaults(), "eikonal"), epochs=40, batch_shapes=4,
                      points_per_shape=128, lr_codes=0.05, lambda_kl=1.0, regularizer_shapes=2, regularizer_points=64)
        trainer = ImplicitTrainer(decoder, codes, points, sdf, cfg, tmp_path / prior / "c.pt", tmp_path / prior / "l.csv",
                                  device="cpu")
        trainer.fit(progress=False)
        spreads[prior] = codes.aggregate_std()
    low, high = PRIOR_COVERAGE_RANGE
    assert low <= spreads["set"] <= high
    assert spreads["per_code"] < low
