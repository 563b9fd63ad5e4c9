"""Atomic file writes: a killed job never leaves a half-written output behind."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", newline: str | None = None) -> Iterator[Any]:
    """Open a temporary file next to ``path``; on success rename it onto ``path``, on error remove it. ``newline``
    as :func:`open`'s (text modes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(path)
    tmp = path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}")
    try:
        with open(tmp, mode, newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


#: This machine's name in a temporary file's, so that a shared file system's other nodes' files are left alone.
_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"


def _remove_stale_tmp(path: Path) -> None:
    """Remove the temporary files of ``path`` that a killed process left (``kill -9`` skips :func:`atomic_open`'s
    cleanup): those written on this machine whose process no longer runs."""
    for tmp in path.parent.glob(f".{path.name}.tmp-{_HOST}-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:  # another user's live process
            pass


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


def flatten(tree, separator: str = ".", lists: bool = False, prefix: str = "") -> dict:
    """A nested dict (and, with ``lists``, its lists) as ``{"a.b.0": leaf}``, keys joined by ``separator``."""
    if isinstance(tree, dict):
        items = tree.items()
    elif lists and isinstance(tree, list):
        items = enumerate(tree)
    else:
        return {prefix: tree}
    out = {}
    for key, value in items:
        out |= flatten(value, separator, lists, f"{prefix}{separator}{key}" if prefix else str(key))
    return out


def setup_logging(log_path: str | Path | None, level: int = logging.INFO) -> logging.Logger:
    """Send the ``toposdf`` loggers (and Python warnings) to ``log_path`` and to stderr; return the root logger.

    The workflow scripts call this with ``snakemake.log[0]`` so that each rule's log holds what its job did.
    """
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    logging.captureWarnings(True)

    def log_uncaught(exc_type, exc, tb):  # a failing job's log ends with its error, not only the terminal
        root.error("job failed: %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught
    return root


def json_safe(obj):
    """``nan`` and ``inf`` as ``null`` (strict JSON has neither; :func:`toposdf.tables.collect` reads null as nan)."""
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
