"""Shared test settings.

``TOPOSDF_TEST_DEVICE=cuda pytest tests/test_training.py`` runs the trainers' tests on a GPU (the device the
tests pass to the trainers), with PyTorch's deterministic algorithms so that the exact-resume tests compare like
with like; CI and the README's test command use the CPU.
"""

import os

import torch

DEVICE = os.environ.get("TOPOSDF_TEST_DEVICE", "cpu")
if DEVICE.startswith("cuda"):
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
