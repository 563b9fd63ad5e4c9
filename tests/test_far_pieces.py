"""``train.joint.far_pieces``: a far piece of a synthetic shape (an H0 point dying at ``tau``) that eq. 8 sends to
the diagonal takes the gradient of every vertex of its piece below the pair's midpoint, not of its birth vertex
alone (``toposdf.topology.far_piece_sets``, the critical set of Nigmetov and Morozov's big steps)."""

import numpy as np
import pytest
import torch

from toposdf.data import grid_points
from toposdf.field import GridDiagrams
from toposdf.losses import consistency_loss, match_diagrams, matching_parts
from toposdf.topology import cubical_diagrams_with_critical, far_piece_sets
from toposdf.training.pool import SyntheticDiagrams

RES, TAU = 24, 0.1
CENTRES = np.array([[-0.45, 0.0, 0.0], [0.45, 0.0, 0.0]])
RADII = np.array([0.3, 0.09])  # the shape, and a floating piece 0.51 away (it dies at tau)
EMPTY = torch.zeros(1, 0, 2, dtype=torch.float64)


def _balls(points: np.ndarray) -> np.ndarray:
    return (np.linalg.norm(points[:, None, :] - CENTRES, axis=-1) - RADII).min(axis=1)


class Lookup(torch.nn.Module):
    """A field whose parameters are its values at the grid's vertices (queried at those vertices only): the
    gradient of a loss on it says exactly which vertices the loss moves."""

    def __init__(self) -> None:
        super().__init__()
        self.values = torch.nn.Parameter(torch.as_tensor(_balls(grid_points(RES))))

    def forward(self, z, x):
        index = torch.round((x + 1.0) / 2.0 * (RES - 1)).long()
        return self.values[(index[..., 0] * RES + index[..., 1]) * RES + index[..., 2]]


class Lifted(torch.nn.Module):
    """The two balls with the small one's field raised by ``lift``, the only parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.lift = torch.nn.Parameter(torch.tensor(0.0, dtype=torch.float64))

    def forward(self, z, x):
        distance = (x[..., None, :] - torch.as_tensor(CENTRES)).norm(dim=-1) - torch.as_tensor(RADII)
        return torch.minimum(distance[..., 0], distance[..., 1] + self.lift)


def _target(diagram0: np.ndarray) -> list[torch.Tensor]:
    """One H0 point, the shape's own: eq. 1 sends the floating piece to the diagonal."""
    return [torch.as_tensor(diagram0[:1][None]), EMPTY, EMPTY]


def test_far_piece_sets_are_the_piece_below_its_midpoint():
    grid = _balls(grid_points(RES)).reshape((RES,) * 3)
    diagrams, critical = cubical_diagrams_with_critical(grid, TAU, 0.0)
    assert len(diagrams[0]) == 2 and diagrams[0][1, 1] == TAU  # the piece dies at tau
    sent = matching_parts(match_diagrams(diagrams[0][:1], diagrams[0]))[3]
    assert sent.tolist() == [1]
    pair, vertex, weight = far_piece_sets(grid, diagrams[0], critical[0], sent, TAU)
    midpoint = diagrams[0][1].mean()
    flat = np.clip(grid.ravel(), -TAU, TAU)
    small = np.linalg.norm(grid_points(RES) - CENTRES[1], axis=1) < RADII[1] + 0.1
    expected = np.flatnonzero(small & (flat < midpoint) & (flat > -TAU))
    assert set(vertex.tolist()) == set(expected.tolist()) - {critical[0][1, 0]} and len(vertex) > 4
    assert (pair == 1).all() and np.allclose(weight, (midpoint - flat[vertex]) / (TAU - diagrams[0][1, 0]))
    assert (weight > 0).all() and (weight <= 0.5).all()
    assert far_piece_sets(grid, diagrams[0], critical[0], np.array([0]), TAU)[1].size == 0  # never the essential class
    in_body = critical[0].copy()
    in_body[1, 0] = critical[0][0, 0]  # a pair born in the shape's body (its largest piece): never raised whole
    assert far_piece_sets(grid, diagrams[0], in_body, np.array([1]), TAU)[1].size == 0
    lump = diagrams[0].copy()
    lump[1, 1] = -0.01  # a pair that dies inside: its birth vertex alone
    assert far_piece_sets(grid, lump, critical[0], np.array([1]), TAU)[1].size == 0


def test_eq8_moves_the_whole_piece_with_the_same_loss():
    z = torch.zeros(1, 2, dtype=torch.float64)
    grid = _balls(grid_points(RES)).reshape((RES,) * 3)
    diagrams, critical = cubical_diagrams_with_critical(grid, TAU, 0.0)
    target = _target(diagrams[0])
    pieces = far_piece_sets(grid, diagrams[0], critical[0], np.array([1]), TAU)
    losses, grads = [], []
    for whole in (False, True):
        decoder = Lookup()
        computed = GridDiagrams([diagrams], [critical], pieces=[pieces] if whole else None)
        loss = consistency_loss(decoder, z, target, computed, RES, TAU)
        loss.backward()
        losses.append(loss.item())
        grads.append(decoder.values.grad.numpy().copy())
    assert losses[0] == pytest.approx(losses[1], rel=1e-12) and losses[0] > 0.005
    birth = critical[0][1, 0]
    assert set(np.flatnonzero(grads[0]).tolist()) <= {birth, critical[0][0, 0]}  # the birth vertices alone
    moved = np.flatnonzero(grads[1])
    assert set(moved.tolist()) == set(pieces[1].tolist()) | set(np.flatnonzero(grads[0]).tolist())
    # each vertex of the piece moves as (f(v) - m)^2 / 2 would move it
    midpoint = diagrams[0][1].mean()
    assert np.allclose(grads[1][pieces[1]], np.clip(grid.ravel(), -TAU, TAU)[pieces[1]] - midpoint)
    assert grads[1][birth] == grads[0][birth]


@pytest.mark.parametrize("field", ["network", "both"])
def test_the_pool_sends_the_pieces_to_eq8(field):
    """Stage 2's persistence pool with ``far_pieces``, on the field and on the surface distance: the same loss,
    and a push on the far piece several times that of its birth vertex alone."""
    z = torch.zeros(1, 2, dtype=torch.float64)
    losses, grads = [], []
    for whole in (False, True):
        decoder = Lifted()
        pool = SyntheticDiagrams(RES, TAU, 0.0, narrow_band=True, field=field, far_pieces=whole)
        try:
            with torch.no_grad():
                grid = decoder(None, torch.as_tensor(grid_points(RES))[None])[0].numpy().reshape((RES,) * 3)
            target = _target(cubical_diagrams_with_critical(grid, TAU, 0.0)[0][0])
            pool.submit(decoder, z, target)
            z_syn, computed, matchings = pool.next()
        finally:
            pool.close()
        assert (computed.pieces is not None) == whole
        loss = consistency_loss(decoder, z_syn, target, computed, RES, TAU, matchings)
        loss.backward()
        losses.append(loss.item())
        grads.append(decoder.lift.grad.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-9) and losses[0] > 0.005
    assert grads[0] < 0 and grads[1] < 2 * grads[0]  # descent raises the piece, faster with the whole piece
