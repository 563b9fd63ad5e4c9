"""Shared test settings.

``TOPOSDF_TEST_DEVICE=cuda pytest tests/test_training.py`` runs the trainers' tests on a GPU (the device the
tests pass to the trainers), with PyTorch's deterministic algorithms so that the exact-resume tests compare like
with like; CI and the README's test command use the CPU.
"""

import importlib.util
import os
from pathlib import Path

import torch

DEVICE = os.environ.get("TOPOSDF_TEST_DEVICE", "cpu")
if DEVICE.startswith("cuda"):
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_tool(name: str):
    """The script ``tools/<name>.py`` as a module (``tools/`` is no package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fitted_decoder(sdf, resolution: int, tau: float, steps: int):
    """A small network with one fixed code ``z = 0`` ``(1, 2)``, fitted to the analytic SDF ``sdf`` (points
    ``(..., 3)`` -> values) by the clamped L1 at ``tau`` on 1,024 uniform and 1,024 near-surface points a step
    (near: within 0.15 of the surface on the ``resolution^3`` grid, jittered); seeded. Returns ``(decoder, z)``."""
    import numpy as np

    from toposdf.data import grid_points
    from toposdf.losses import sdf_data_loss
    from toposdf.models import DecoderConfig, SDFDecoder

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    decoder = SDFDecoder(DecoderConfig(latent_size=2, hidden=64, n_layers=4, geometric_init=True, init_radius=0.4))
    z = torch.zeros(1, 2)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=2e-3)
    grid = grid_points(resolution)
    near = grid[np.abs(sdf(grid)) < 0.15]
    for _ in range(steps):
        x = np.concatenate([rng.uniform(-1, 1, (1024, 3)),
                            near[rng.integers(len(near), size=1024)] + rng.normal(0, 0.03, (1024, 3))])
        target = torch.as_tensor(sdf(x), dtype=torch.float32)[None]
        loss = sdf_data_loss(decoder(z, torch.as_tensor(x, dtype=torch.float32)[None]), target, delta=tau)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return decoder, z
