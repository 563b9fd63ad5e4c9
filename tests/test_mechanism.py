"""Does eq. 8 act? A network fitted to a shape with a small artifact, trained with the consistency loss (through
the critical vertices only) toward a target diagram without that artifact, loses it: the artifact's pair goes to
the diagonal and the Betti number changes. The synthetic shapes' diagrams keep every pair, as in training."""

import numpy as np
import pytest
import torch
from conftest import fitted_decoder

from toposdf.field import evaluate_grid, grid_diagrams
from toposdf.losses import consistency_loss
from toposdf.models import DecoderConfig, SDFDecoder
from toposdf.topology import betti_numbers

RES, TAU = 24, 0.2


def ball_and_speck(x: np.ndarray) -> np.ndarray:
    """A ball, and a small floating ball beside it (a spurious component)."""
    main = np.linalg.norm(x, axis=-1) - 0.45
    speck = np.linalg.norm(x - np.array([0.75, 0.0, 0.0]), axis=-1) - 0.12
    return np.minimum(main, speck)


def disk_with_hole(x: np.ndarray) -> np.ndarray:
    """A thick disk pierced by a narrow tunnel along z (a spurious hole)."""
    radial = np.linalg.norm(x[..., :2], axis=-1)
    disk = np.maximum(radial - 0.65, np.abs(x[..., 2]) - 0.2)
    return np.maximum(disk, 0.13 - radial)


def _fitted(sdf, steps: int = 600):
    """A small network with one fixed code, fitted to ``sdf`` (:func:`conftest.fitted_decoder`)."""
    return fitted_decoder(sdf, RES, TAU, steps)


def _diagrams(decoder, z):
    return grid_diagrams(evaluate_grid(decoder, z, RES), TAU, 0.0)


def _without(diagrams, dim: int) -> list[torch.Tensor]:
    """The target: the shape's own diagram without the artifact (H0: the essential class only; H1: nothing)."""
    target = [np.asarray(d).copy() for d in diagrams]
    target[dim] = target[dim][:1] if dim == 0 else np.zeros((0, 2))
    return [torch.as_tensor(t, dtype=torch.float32)[None] for t in target]


def _train_toward(decoder, z, dim: int, steps: int) -> list[float]:
    """At most ``steps`` of eq. 8 alone; returns the artifact's persistence at each step (0 once it is gone)."""
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-3)
    target = _without(_diagrams(decoder, z).diagrams[0], dim)

    def artifact(diagrams) -> float:
        d = diagrams[dim]
        d = d[1:] if dim == 0 else d  # the essential class is not the artifact
        return float((d[:, 1] - d[:, 0]).max()) if len(d) else 0.0

    history = [artifact(_diagrams(decoder, z).diagrams[0])]
    for _ in range(steps):
        computed = _diagrams(decoder, z)
        history.append(artifact(computed.diagrams[0]))
        if history[-1] < 1e-3:  # gone
            break
        loss = consistency_loss(decoder, z, target, computed, RES, TAU)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    history.append(artifact(_diagrams(decoder, z).diagrams[0]))
    return history


@pytest.mark.parametrize("sdf, dim", [(ball_and_speck, 0), (disk_with_hole, 1)], ids=["component", "hole"])
def test_consistency_toward_a_clean_diagram_removes_the_artifact(sdf, dim):
    decoder, z = _fitted(sdf)
    before = betti_numbers(_diagrams(decoder, z).diagrams[0])
    assert before[dim] == 2 if dim == 0 else before[dim] == 1  # the fitted network has the artifact
    persistence = _train_toward(decoder, z, dim, steps=300)
    assert persistence[0] > 0.05 and persistence[-1] < 0.01  # its pair went to the diagonal
    after = betti_numbers(_diagrams(decoder, z).diagrams[0])
    assert after[dim] == before[dim] - 1  # and the Betti number changed
    assert after[0] >= 1  # the shape itself is still there


def test_the_theta_gradient_of_eq_8_is_nonzero_on_a_shape_with_features_and_zero_on_a_blob():
    decoder, z = _fitted(ball_and_speck, steps=300)
    computed = _diagrams(decoder, z)
    consistency_loss(decoder, z, _without(computed.diagrams[0], 0), computed, RES, TAU).backward()
    assert sum(float(p.grad.abs().sum()) for p in decoder.parameters()) > 0
    # A blob's one pair is (min f, tau): when its minimum is clamped at -tau both coordinates are constants, so a
    # blob gets no gradient from eq. 8 whatever the target (a PD loss cannot create a feature).
    blob = SDFDecoder(DecoderConfig(latent_size=2, hidden=16, n_layers=4, geometric_init=True, init_radius=0.6))
    computed = _diagrams(blob, z)
    assert betti_numbers(computed.diagrams[0]) == (1, 0, 0) and computed.diagrams[0][0][0, 0] == -TAU
    target = [torch.tensor([[[-0.1, 0.1]]]), torch.tensor([[[-0.05, 0.05]]]), torch.zeros(1, 0, 2)]
    loss = consistency_loss(blob, z, target, computed, RES, TAU)
    loss.backward()
    assert loss.item() > 0 and all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in blob.parameters())
