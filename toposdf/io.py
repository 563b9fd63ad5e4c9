"""Atomic file writes: a killed job never leaves a half-written output behind."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file next to ``path``; on success rename it onto ``path``, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` written atomically."""
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """JSON (indented, keys in insertion order) written atomically."""
    with atomic_open(path, "w") as fh:
        json.dump(obj, fh, indent=2)
        fh.write("\n")


def read_json(path: str | Path) -> Any:
    with open(path) as fh:
        return json.load(fh)
