"""Shared helpers of the benchmarks: timing, machine description, JSON output."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with smaller sizes")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: benchmarks/results/<name>.json)")
    return parser.parse_args()


def timeit(fn: Callable[[], object], repeats: int) -> dict:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


def machine() -> dict:
    versions = {}
    for package in ["numpy", "scipy", "cripser", "gudhi", "lap", "libigl", "trimesh", "rtree", "torch"]:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    root = Path(__file__).resolve().parent.parent

    def git(*cmd: str) -> str | None:
        try:
            return subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        # what was measured: the commit, and whether toposdf/ had uncommitted changes at the time
        "git_commit": git("rev-parse", "HEAD"),
        "toposdf_dirty": bool(git("status", "--porcelain", "--", "toposdf")),
        # other processes on the machine distort timings; the 1-minute load average at the end of the run
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def write(name: str, payload: dict, out: Path | None, quick: bool) -> Path:
    path = out or RESULTS / (f"{name}.quick.json" if quick else f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "quick": quick, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)) + "\n")
    print(f"wrote {path}")
    return path


def table(rows: list[list], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))
