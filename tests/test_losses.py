"""Models and loss terms: shapes, the rectification layer, the smoothness loss, and the gradient of the
consistency loss (through the critical vertices only) against finite differences."""

import numpy as np
import pytest
import torch

from toposdf.losses import (
    consistency_loss,
    diagram_fit_loss,
    diagram_fit_terms,
    eikonal_loss,
    max_births,
    mean_births,
    min_persistences,
    normal_laplacian_loss,
    sdf_data_loss,
    shift_births,
    smoothness_loss,
    snap_persistence,
    spatial_gradient,
    topological_prior_loss,
)
from toposdf.field import evaluate_grid, grid_diagrams
from toposdf.models import DecoderConfig, LatentCodes, LatentConfig, PDGenerator, PDGenerators, SDFDecoder, rectify


def tiny_decoder(**kwargs) -> SDFDecoder:
    torch.manual_seed(0)
    cfg = DecoderConfig(latent_size=4, hidden=16, n_layers=4, **kwargs)
    return SDFDecoder(cfg).double()


def test_decoder_shapes_and_skip_layer():
    decoder = tiny_decoder()
    z, x = torch.randn(3, 4, dtype=torch.float64), torch.rand(3, 10, 3, dtype=torch.float64) * 2 - 1
    out = decoder(z, x)
    assert out.shape == (3, 10) and torch.all(out.abs() < 1)
    assert decoder.layers[decoder.skip - 1].weight.shape[0] == 16 - 7  # narrowed before [h, z, x]
    with pytest.raises(ValueError, match=r"z \(B, L\)"):
        decoder(z, x[0])


def test_geometric_init_starts_near_a_sphere():
    torch.manual_seed(1)
    decoder = SDFDecoder(DecoderConfig(latent_size=8, hidden=128, n_layers=6, geometric_init=True,
                                       init_radius=0.5, output_tanh=False)).double()
    x = torch.randn(1, 200, 3, dtype=torch.float64)
    x = x / x.norm(dim=-1, keepdim=True) * torch.rand(1, 200, 1, dtype=torch.float64)
    sdf = decoder(torch.randn(1, 8, dtype=torch.float64), x)[0]
    expected = x[0].norm(dim=-1) - 0.5
    assert torch.corrcoef(torch.stack([sdf, expected]))[0, 1] > 0.95


def test_rectification_gives_birth_before_death():
    raw = torch.randn(1000, 2) * 3
    pts = rectify(raw)
    assert torch.all(pts[:, 0] <= pts[:, 1])
    assert torch.equal(pts[:, 0], raw[:, 0])
    on_diagonal = raw[:, 1] <= 0
    assert torch.equal(pts[on_diagonal, 0], pts[on_diagonal, 1])
    gen = PDGenerator(latent_size=4, n_points=7)
    out = gen(torch.randn(5, 4) * 10)
    assert out.shape == (5, 7, 2) and torch.all(out[..., 0] <= out[..., 1])


def test_smoothness_is_zero_for_a_generator_that_ignores_z():
    gens = PDGenerators(latent_size=4, n_points=(3, 2, 1))
    for g in gens.generators:
        with torch.no_grad():
            g.mlp[0].weight[:, :4] = 0.0  # the latent part of [z, e_j]
    assert smoothness_loss(gens, torch.randn(6, 4), eps=0.05, n_directions=2).item() == 0.0
    fresh = PDGenerators(latent_size=4, n_points=(3, 2, 1))
    assert smoothness_loss(fresh, torch.randn(6, 4), eps=0.05).item() > 0


def test_data_kl_and_geometric_terms():
    pred, target = torch.tensor([[0.5, -0.05, 0.0]]), torch.tensor([[0.2, 0.05, -0.3]])
    assert sdf_data_loss(pred, target, delta=0.1).item() == pytest.approx((0.0 + 0.1 + 0.1) / 3)
    codes = LatentCodes(4, 3, LatentConfig(prior="per_code", variational=True, init_logvar=0.0))
    with torch.no_grad():
        codes.mu.zero_()
    assert codes.kl(torch.arange(4)).item() == pytest.approx(0.0)
    # The exact SDF of a sphere: unit gradient, and n^T H n = 0 (the Hessian is orthogonal to n).
    x = torch.randn(1, 50, 3, dtype=torch.float64, requires_grad=True)
    f = x.norm(dim=-1) - 0.5
    grad = spatial_gradient(f, x)
    assert eikonal_loss(grad).item() == pytest.approx(0.0, abs=1e-12)
    assert normal_laplacian_loss(grad, x).item() == pytest.approx(0.0, abs=1e-10)
    # A non-distance function has both: f = |x|^2 gives grad 2x and n^T H n = 2.
    x2 = torch.randn(1, 50, 3, dtype=torch.float64, requires_grad=True)
    grad2 = spatial_gradient((x2 * x2).sum(-1), x2)
    assert normal_laplacian_loss(grad2, x2).item() == pytest.approx(2.0)
    assert eikonal_loss(grad2).item() > 0


def test_the_steik_forms_agree_in_value_and_only_steiks_has_the_whole_gradient():
    """``steik_gradient``: both forms give ``mean |n^T H n|``; StEik's form's parameter gradient is that of the term
    computed here from the full Hessian (``torch.func.hessian``), the fixed-normal form's is not."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Softplus(beta=10), torch.nn.Linear(16, 16),
                              torch.nn.Softplus(beta=10), torch.nn.Linear(16, 1)).double()
    with torch.no_grad():
        net[-1].weight.mul_(20.0)  # |grad f| about 1, so StEik's 1e-5 beside |grad f|^2 rounds only the last digits
    x = torch.randn(1, 12, 3, dtype=torch.float64, requires_grad=True)
    params = list(net.parameters())[:-1]  # the last bias moves neither the gradient nor the Hessian

    def reference() -> torch.Tensor:  # n^T H n point by point, H the full 3 x 3 Hessian, everything differentiable
        values = []
        for point in x.detach()[0]:
            g = torch.func.grad(lambda p: net(p).sum())(point)
            hess = torch.func.hessian(lambda p: net(p).sum())(point)
            n = g / g.norm()
            values.append((n @ hess @ n).abs())
        return torch.stack(values).mean()

    expected = reference()
    expected_grad = torch.autograd.grad(expected, params)
    for form in (None, "fixed_normal", "steik"):
        grad = spatial_gradient(net(x).squeeze(-1), x)
        value = normal_laplacian_loss(grad, x, form)
        assert value.item() == pytest.approx(expected.item(), rel=1e-4)
        got = torch.autograd.grad(value, params)
        close = all((a - b).norm() < 1e-3 * b.norm() for a, b in zip(got, expected_grad))  # fixed_normal: 26-47% off
        assert close == (form == "steik"), form
    with pytest.raises(ValueError, match="steik_gradient"):
        normal_laplacian_loss(spatial_gradient(net(x).squeeze(-1), x), x, "full")


def _consistency(decoder, z, generated, resolution=10, tau=0.3):
    grids = evaluate_grid(decoder, z, resolution)
    computed = grid_diagrams(grids, tau=tau, min_persistence=0.0)
    return consistency_loss(decoder, z, generated, computed, resolution, tau), computed


def _two_shapes_and_generated_diagrams():
    """A tiny decoder, two codes and generated diagrams of 3, 2 and 1 points (H0, H1, H2), seeded."""
    decoder = tiny_decoder(output_tanh=False)
    torch.manual_seed(3)
    z = torch.randn(2, 4, dtype=torch.float64)
    return decoder, z, [torch.randn(2, n, 2, dtype=torch.float64).mul(0.05).cumsum(-1) for n in (3, 2, 1)]


def test_consistency_gradient_matches_finite_differences():
    decoder, z, generated = _two_shapes_and_generated_diagrams()
    loss, computed = _consistency(decoder, z, generated)
    assert sum(len(d) for shape in computed.diagrams for d in shape) > 2  # a non-trivial diagram
    params = [p for p in decoder.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    rng = np.random.default_rng(0)
    checked = 0
    for p, g in zip(params, grads):
        flat, gflat = p.data.view(-1), g.view(-1)
        for idx in rng.choice(flat.numel(), size=min(3, flat.numel()), replace=False):
            h = 1e-6
            old = flat[idx].item()
            flat[idx] = old + h
            up, _ = _consistency(decoder, z, generated)
            flat[idx] = old - h
            down, _ = _consistency(decoder, z, generated)
            flat[idx] = old
            fd = (up.item() - down.item()) / (2 * h)
            assert gflat[idx].item() == pytest.approx(fd, rel=1e-4, abs=1e-7)
            checked += abs(fd) > 1e-6
    assert checked >= 3  # the check is not vacuous


def test_consistency_is_zero_when_the_generator_reproduces_the_diagrams():
    decoder = tiny_decoder()
    z = torch.randn(1, 4, dtype=torch.float64)
    grids = evaluate_grid(decoder, z, 10)
    computed = grid_diagrams(grids, tau=0.3, min_persistence=0.0)
    exact = [torch.as_tensor(d, dtype=torch.float64)[None] for d in computed.diagrams[0]]
    loss = consistency_loss(decoder, z, exact, computed, 10, 0.3)
    assert loss.item() == pytest.approx(0.0, abs=1e-20)


def test_consistency_dims_split_eq_8_into_its_homology_dimensions():
    decoder, z, generated = _two_shapes_and_generated_diagrams()
    whole, computed = _consistency(decoder, z, generated)
    parts = [consistency_loss(decoder, z, generated, computed, 10, 0.3, dims=[k]) for k in range(3)]
    assert all(part.item() > 0 for part in parts[:2])  # components and tunnels both enter: the split is not vacuous
    assert sum(part.item() for part in parts) == pytest.approx(whole.item(), rel=1e-12)
    assert consistency_loss(decoder, z, generated, computed, 10, 0.3, dims=[1, 0]).item() == pytest.approx(
        parts[0].item() + parts[1].item(), rel=1e-12)
    with pytest.raises(ValueError, match="dimensions 0-1"):
        consistency_loss(decoder, z, generated[:2], computed, 10, 0.3, dims=[2])


def test_topological_prior_is_the_topology_layers_E():
    pd0 = torch.tensor([[-0.05, 0.0], [-0.1, 0.1], [-0.02, 0.01]], dtype=torch.float64)  # persistence .05 .2 .03
    points = [[pd0, torch.zeros(0, 2, dtype=torch.float64), torch.zeros(0, 2, dtype=torch.float64)]]
    # i0 = 2 leaves the most persistent component alone: E(1, 0, 2) = .05 + .03
    assert topological_prior_loss(points, dim=0, p=1, q=0, i0=2).item() == pytest.approx(0.08)
    assert topological_prior_loss(points, dim=0, p=1, q=0, i0=1).item() == pytest.approx(0.28)
    assert topological_prior_loss(points, dim=0, p=2, q=1, i0=2).item() == pytest.approx(
        0.05**2 * -0.025 + 0.03**2 * -0.005)
    assert topological_prior_loss(points, dim=1).item() == 0.0
    with pytest.raises(ValueError, match="i0 counts from 1"):
        topological_prior_loss(points, i0=0)


def test_prior_gradient_shrinks_the_second_component():
    """Minimizing E(1, 0, 2; PD0) through the critical vertices lowers the persistence of every component but
    the first: a network whose zero set has two pieces moves towards one."""
    from toposdf.losses import diagram_points

    decoder = tiny_decoder(output_tanh=False)
    torch.manual_seed(4)
    z = torch.randn(1, 4, dtype=torch.float64)
    grids = evaluate_grid(decoder, z, 10)
    computed = grid_diagrams(grids, tau=0.3, min_persistence=0.0)
    assert len(computed.diagrams[0][0]) == 3  # three components: the prior has two to shrink

    points = diagram_points(decoder, z, computed, 10, 0.3)
    loss = topological_prior_loss(points)
    assert loss.item() > 0
    loss.backward()
    params = [p for p in decoder.parameters() if p.grad is not None]
    step = 0.1 * loss.item() / sum(p.grad.pow(2).sum() for p in params).item()  # a small first-order step
    with torch.no_grad():
        for p in params:
            p -= step * p.grad
    after = topological_prior_loss(diagram_points(decoder, z, computed, 10, 0.3))
    assert after.item() < loss.item()


def test_the_diagonal_anchor_pulls_only_the_births_of_slots_sent_to_the_diagonal():
    """diagram_fit_terms' anchor: a slot that eq. 1 matches keeps eq. 1's gradient alone; a slot sent to the
    diagonal, whose birth eq. 1 leaves free, is pulled to the dimension's anchor (its life is not touched by it);
    without anchors the fit is diagram_fit_loss's and the anchor is 0."""
    used, unused = [-0.02, 0.10], [0.03, 0.035]  # the unused slot: life 0.005, born outside the surface
    generated = [torch.tensor([[used, unused]], requires_grad=True)]
    target = [[np.array([[-0.03, 0.11]])]]
    fit, anchor = diagram_fit_terms(generated, target, anchors=[-0.025])
    assert fit.item() == pytest.approx(diagram_fit_loss(generated, target).item())
    assert fit.item() == pytest.approx(0.01**2 + 0.01**2 + 0.5 * 0.005**2)
    assert anchor.item() == pytest.approx((0.03 + 0.025) ** 2)
    (grad,) = torch.autograd.grad(anchor, generated[0])
    assert grad[0, 0].abs().max() == 0  # the matched slot
    assert grad[0, 1, 0].item() == pytest.approx(2 * 0.055) and grad[0, 1, 1] == 0  # the birth, not the death
    assert diagram_fit_terms(generated, target)[1].item() == 0
    assert diagram_fit_terms(generated, target, anchors=[None])[1].item() == 0


def test_mean_births_per_dimension_with_none_where_a_dimension_is_empty():
    empty = np.zeros((0, 2))
    shapes = [[np.array([[-0.1, 0.2]]), np.array([[-0.02, 0.1], [-0.04, 0.1]]), empty],
              [np.array([[-0.3, 0.2]]), empty, empty]]
    births = mean_births(shapes)
    assert births[0] == pytest.approx(-0.2) and births[1] == pytest.approx(-0.03) and births[2] is None


def test_targets_shorter_than_every_training_point_round_to_the_floor_or_to_the_diagonal():
    """methods.<m>.target_persistence: training. The floor of a dimension is its shortest training persistence
    (min_persistences); a generated point at least half of it long keeps its birth and gets that persistence, a
    shorter one goes onto the diagonal at its birth; points at or above the floor and a dimension without a floor
    stay as they are."""
    empty = np.zeros((0, 2))
    shapes = [[np.array([[-0.1, 0.2]]), np.array([[-0.02, 0.1], [-0.04, 0.04]]), empty],
              [np.array([[-0.3, 0.2]]), np.array([[-0.05, 0.08]]), empty]]
    floors = min_persistences(shapes)
    assert floors[0] == pytest.approx(0.3) and floors[1] == pytest.approx(0.08) and floors[2] is None
    h1 = torch.tensor([[[-0.03, 0.09],    # 0.12: a training-like tunnel, untouched
                        [-0.02, 0.03],    # 0.05: a blend of a used and an unused slot, rounded up to 0.08
                        [-0.01, 0.02],    # 0.03: below half the floor, onto the diagonal
                        [0.01, 0.01]]],   # an unused slot on the diagonal: it stays
                      dtype=torch.float64)
    h0 = torch.tensor([[[-0.05, 0.3], [-0.05, 0.2]]], dtype=torch.float64)  # 0.35 kept; 0.25 up to 0.3
    h2 = torch.tensor([[[0.05, 0.06]]], dtype=torch.float64)
    out = snap_persistence([h0, h1, h2], floors)
    assert torch.allclose(out[0], torch.tensor([[[-0.05, 0.3], [-0.05, 0.25]]], dtype=torch.float64))
    want = torch.tensor([[[-0.03, 0.09], [-0.02, 0.06], [-0.01, -0.01], [0.01, 0.01]]], dtype=torch.float64)
    assert torch.allclose(out[1], want)
    assert torch.equal(out[1][..., 0], h1[..., 0])
    assert out[2] is h2
    assert snap_persistence([h0, h1, h2], None)[1] is h1


def test_births_above_the_training_ones_move_down_the_diagonal_with_their_persistence_kept():
    """methods.<m>.target_births: training. A generated point born above its dimension's cap (the largest training
    birth, max_births) moves by birth - cap in both coordinates; points born at or below it, a slot on the
    diagonal's own line below it, and a dimension without a cap stay as they are."""
    empty = np.zeros((0, 2))
    shapes = [[np.array([[-0.1, 0.2]]), np.array([[-0.02, 0.1], [-0.04, 0.1]]), empty],
              [np.array([[-0.3, 0.2]]), np.array([[-0.05, 0.08]]), empty]]
    caps = max_births(shapes)
    assert caps[0] == pytest.approx(-0.1) and caps[1] == pytest.approx(-0.02) and caps[2] is None
    h1 = torch.tensor([[[0.012, 0.05],    # a ring born outside the surface: life 0.038, kept
                        [-0.03, 0.09],    # born inside, below the cap: untouched
                        [0.02, 0.021],    # an unused slot near the diagonal: it stays near it
                        [-0.02, 0.07]]],  # born at the cap: untouched
                      dtype=torch.float64, requires_grad=True)
    h0 = torch.tensor([[[-0.05, 0.1]]], dtype=torch.float64)
    h2 = torch.tensor([[[0.05, 0.06]]], dtype=torch.float64)
    out = shift_births([h0, h1, h2], caps)
    assert torch.allclose(out[0], torch.tensor([[[-0.1, 0.05]]], dtype=torch.float64))
    want = torch.tensor([[[-0.02, 0.018], [-0.03, 0.09], [-0.02, -0.019], [-0.02, 0.07]]], dtype=torch.float64)
    assert torch.allclose(out[1], want)
    assert torch.allclose(out[1][..., 1] - out[1][..., 0], h1[..., 1] - h1[..., 0])
    assert out[2] is h2
    assert shift_births([h0, h1, h2], None)[1] is h1


def test_hard_sample_weight_weighs_errors_toward_the_surface():
    """Curriculum DeepSDF's weight: an inside sample predicted too high and an outside one predicted too low count
    ``1 + w``; errors away from the surface ``1 - w``; ``w = 0`` is DeepSDF's clamped L1."""
    from toposdf.losses import sdf_data_loss

    target = torch.tensor([-0.02, 0.03, -0.02, 0.03])
    pred = torch.tensor([0.01, 0.0, -0.05, 0.06])  # toward the surface, toward it, away, away: errors 0.03 each
    assert sdf_data_loss(pred, target, 0.1) == pytest.approx(0.03)
    assert sdf_data_loss(pred[:2], target[:2], 0.1, hard=0.5) == pytest.approx(0.045)
    assert sdf_data_loss(pred[2:], target[2:], 0.1, hard=0.5) == pytest.approx(0.015)
