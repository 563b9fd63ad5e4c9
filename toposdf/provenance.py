"""Where a number came from: the config's hash, the checkpoint, its hash and training seed, the seed and the commit.

Every number file the workflow writes (metrics, calibration rows, Fig. 3's values, generated and reconstructed
shapes) carries :func:`provenance`, so that a number in a table or figure can be traced to the run that made it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path


def config_hash(config: dict) -> str:
    """SHA-256 of the validated config (canonical JSON): equal hashes mean equal settings."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _commit() -> str | None:
    """The checkout's git commit, or ``None`` outside a git checkout (or without git)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _train_seed(checkpoint: str | Path) -> int | None:
    """The training seed (``train.seed``) that a trainer's checkpoint was written with, or ``None`` for a file
    that is not such a checkpoint."""
    import torch

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)  # the pickle, not the weights
    except Exception:  # not a torch file: the seed is simply not known
        return None
    seed = state.get("config", {}).get("seed") if isinstance(state, dict) else None
    return None if seed is None else int(seed)


def provenance(config: dict, checkpoint: str | Path | None = None, seed: int | None = None) -> dict:
    """Where a number came from: ``config_sha256`` (the settings of the job that wrote it), ``commit``, and with a
    checkpoint ``checkpoint``, ``checkpoint_sha256`` and ``train_seed`` (the training seed stored in it, where it is
    a trainer's); ``seed`` is the job's own sampling seed (``evaluation.seed``), not the training seed."""
    out: dict = {"config_sha256": config_hash(config), "commit": _commit()}
    if checkpoint is not None:
        out |= {"checkpoint": str(checkpoint), "checkpoint_sha256": file_hash(checkpoint)}
        if (train_seed := _train_seed(checkpoint)) is not None:
            out["train_seed"] = train_seed
    if seed is not None:
        out["seed"] = int(seed)
    return out
