"""``train.joint.join_tau``: a floating piece that has not joined a synthetic shape by ``tau`` dies at ``tau`` in
eq. 8, a constant; with ``join_tau`` its death takes the gradient of the saddle where it would join, so eq. 8 can
grow the missing part (a table's shelf whose legs broke) instead of only deleting the piece
(``toposdf.topology.joining_diagrams``)."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from toposdf.config import ConfigError, validate_config
from toposdf.data import grid_points
from toposdf.field import GridDiagrams
from toposdf.losses import consistency_loss
from toposdf.topology import cubical_diagrams_with_critical, joining_diagrams
from toposdf.training.pool import SyntheticDiagrams

RES, TAU, JOIN = 32, 0.1, 0.5
CENTRES = torch.tensor([[-0.45, 0.0, 0.0], [0.45, 0.0, 0.0]], dtype=torch.float64)
RADII = torch.tensor([0.14, 0.10], dtype=torch.float64)


class TwoBalls(torch.nn.Module):
    """Two balls 0.9 apart, of radii 0.14 (the shape) and 0.10 (a floating piece; a gap of 0.66), and a rod along
    the axis between them whose radius, ``bridge``, is the only parameter: it starts at -0.2, so that the rod's
    field is 0.2 above its axis's distance and the balls are two pieces (a table's shelf whose legs broke)."""

    def __init__(self) -> None:
        super().__init__()
        self.bridge = torch.nn.Parameter(torch.tensor(-0.2, dtype=torch.float64))

    def forward(self, z, x):
        balls = ((x[..., None, :] - CENTRES).norm(dim=-1) - RADII).min(dim=-1).values
        beyond = (x[..., 0].abs() - 0.45).clamp(min=0.0)
        rod = (x[..., 1] ** 2 + x[..., 2] ** 2 + beyond**2).sqrt() - self.bridge
        return torch.minimum(balls, rod)


def _grid(decoder) -> np.ndarray:
    with torch.no_grad():
        return decoder(None, torch.as_tensor(grid_points(RES))[None])[0].numpy().reshape((RES,) * 3)


def _pieces(grid: np.ndarray) -> int:
    return int((cubical_diagrams_with_critical(grid, TAU, 0.02)[0][0][:, 0] < 0).sum())


def test_joining_diagrams_are_the_clamped_diagrams_with_the_gap_saddle():
    rng = np.random.default_rng(3)
    grids = [_grid(TwoBalls())] + [np.cumsum(rng.normal(0, 0.05, (16, 16, 16)), axis=0) for _ in range(4)]
    for grid in grids:
        clamped, _ = cubical_diagrams_with_critical(grid, TAU, 0.01)
        joined, critical, joins = joining_diagrams(grid, TAU, JOIN, 0.01)
        for a, b in zip(clamped, joined):
            assert np.array_equal(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])])
        assert np.array_equal(clamped[0][0], joined[0][0]) and not joins[0]
    joined, critical, joins = joining_diagrams(grids[0], TAU, JOIN, 0.0)
    assert len(joined[0]) == 2 and joins.tolist() == [False, True]
    saddle = grid_points(RES)[critical[0][1, 1]]
    # the rod's value at the vertices nearest its axis: 0.2 + 0.032 sqrt(2)
    assert abs(saddle[0]) < 0.05 and grids[0].ravel()[critical[0][1, 1]] == pytest.approx(0.245, abs=0.001)
    with pytest.raises(ValueError, match="join_tau"):
        joining_diagrams(grids[0], TAU, TAU, 0.0)


def test_eq8_reaches_the_gap_only_with_join_tau():
    """The same loss value either way; without ``join_tau`` the rod gets no gradient (the piece's death is the
    constant ``tau``, and its birth is the ball's), with it the saddle's: descent thickens the rod, and the gap
    closes."""
    z = torch.zeros(1, 2, dtype=torch.float64)
    target = [torch.tensor([[[-TAU, TAU]]], dtype=torch.float64), torch.zeros(1, 0, 2, dtype=torch.float64),
              torch.zeros(1, 0, 2, dtype=torch.float64)]
    losses, grads = [], []
    for join in (False, True):
        decoder = TwoBalls()
        grid = _grid(decoder)
        if join:
            diagrams, critical, joins = joining_diagrams(grid, TAU, JOIN, 0.0)
            computed = GridDiagrams([diagrams], [critical], joins=[joins])
        else:
            computed = GridDiagrams(*map(list, zip(cubical_diagrams_with_critical(grid, TAU, 0.0))))
        loss = consistency_loss(decoder, z, target, computed, RES, TAU)
        loss.backward()
        losses.append(loss.item())
        grads.append(decoder.bridge.grad.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-12) and losses[0] > 0.005  # the piece, to the diagonal
    assert grads[0] == 0.0 and grads[1] < -0.1


@pytest.mark.parametrize("field", ["network", "both"])
def test_eq8_with_join_tau_joins_the_two_balls(field):
    """Stage 2's persistence pool with ``join_tau`` on the field or on the surface distance: gradient steps on
    eq. 8 grow the bridge until the balls are one piece (without it, the bridge never moves: the test above)."""
    decoder, z = TwoBalls(), torch.zeros(1, 2, dtype=torch.float64)
    optimizer = torch.optim.SGD(decoder.parameters(), lr=1.0)
    target = [torch.tensor([[[-TAU, TAU]]], dtype=torch.float64), torch.zeros(1, 0, 2, dtype=torch.float64),
              torch.zeros(1, 0, 2, dtype=torch.float64)]
    pool = SyntheticDiagrams(RES, TAU, 0.0, narrow_band=True, field=field, join_tau=JOIN)
    assert _pieces(_grid(decoder)) == 2
    try:
        for _ in range(40):
            pool.submit(decoder, z)
            z_syn, computed, _ = pool.next()
            assert computed.joins is not None
            loss = consistency_loss(decoder, z_syn, target, computed, RES, TAU)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if _pieces(_grid(decoder)) == 1:
                break
    finally:
        pool.close()
    assert _pieces(_grid(decoder)) == 1 and decoder.bridge.item() > 0.0


def test_the_config_takes_join_tau_above_tau_only():
    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "config.yaml").read_text())
    raw["train"]["joint"]["join_tau"] = 0.5
    assert validate_config(copy.deepcopy(raw))["train"]["joint"]["join_tau"] == 0.5
    raw["train"]["joint"]["join_tau"] = raw["persistence"]["tau"]
    with pytest.raises(ConfigError, match="train.joint.join_tau"):
        validate_config(raw)


def test_h0_kinds_sorts_the_pieces_besides_the_essential_class():
    from toposdf.diagnostics import h0_kinds

    empty = np.zeros((0, 2))
    shapes = [[np.array([[-0.05, TAU], [-0.03, TAU], [-0.02, 0.01], [-0.06, -0.03], [-0.01, -0.005]]), empty, empty],
              [np.array([[-0.04, TAU]]), empty, empty]]
    kinds = h0_kinds(shapes, 0.02, TAU)
    assert kinds["far_per_shape"] == kinds["floating_per_shape"] == kinds["lump_per_shape"] == 0.5
    assert kinds["shapes_with_far"] == 0.5
    assert kinds["far_cost"] == pytest.approx(0.5 * 0.5 * 0.13**2)
    assert kinds["lump_cost"] == pytest.approx(0.5 * 0.5 * 0.03**2)
