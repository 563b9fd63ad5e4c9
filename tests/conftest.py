"""Shared test settings.

``TOPOSDF_TEST_DEVICE=cuda pytest tests/test_training.py`` runs the trainers' tests on a GPU (the device the
tests pass to the trainers); CI and the README's test command use the CPU.
"""

import os

DEVICE = os.environ.get("TOPOSDF_TEST_DEVICE", "cpu")
