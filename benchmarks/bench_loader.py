"""Loading a category's SDF samples at fractions of the shapenet preset's sizes: ``toposdf.data.load_sdf_samples``
held and memory-mapped (``spill_bytes=0``), against a plain ``np.load`` of the same arrays (the floor: each array read once, nothing gathered) and against the
former per-row loader (``f["points"][i]`` per shape, which decompresses the whole array each time; measured on the
smallest size only, where it still finishes).

Fake shards keep the preset's shard size (about 85 shapes of 250,000 points each, ``savez_compressed``); a fraction
scales the number of shapes and shards. Each case runs in a fresh process, which reports its wall time and peak RSS.
The JSON extrapolates time and RSS linearly to the full size (5,422 training chairs, the largest category).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import parse_args, table, write

FULL_SHAPES = 5422  # ShapeNetCore.v2 chairs in the training split (80% of 6,778)
SHARD_SHAPES = 85  # FULL_SHAPES / 64 shards (presets/shapenet.yaml)
POINTS = 250_000  # presets/shapenet.yaml: sdf.n_points

CASE = r"""
import json, resource, sys, time
import numpy as np
from toposdf.data import load_sdf_samples
kind, paths, ids = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
start = time.perf_counter()
if kind in ("toposdf", "toposdf_mapped"):  # held in memory, or memory-mapped (spill_bytes=0)
    found, points, sdf = load_sdf_samples(paths, ids, spill_bytes=0 if kind == "toposdf_mapped" else None)
    n = len(found)
elif kind == "np_load":
    arrays = []
    for path in paths:
        with np.load(path) as f:
            arrays += [f["ids"], f["points"], f["sdf"]]
    n = sum(len(a) for a in arrays[::3])
else:  # the former loader: one row at a time from the open npz
    wanted, found = set(ids), {}
    for path in paths:
        with np.load(path) as f:
            for i, model_id in enumerate(f["ids"]):
                if str(model_id) in wanted:
                    found[str(model_id)] = (f["points"][i], f["sdf"][i])
    order = sorted(found)
    points, sdf = np.stack([found[i][0] for i in order]), np.stack([found[i][1] for i in order])
    n = len(order)
seconds = time.perf_counter() - start
# anonymous memory at the end: what the process holds (memory-mapped pages are file-backed and reclaimable)
anon = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("RssAnon:")]
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "anon_mb_at_end": anon[0] if anon else None, "shapes": n}))
"""


def write_shards(folder: Path, shapes: int, points: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(0)
    paths, ids = [], []
    for shard in range(-(-shapes // SHARD_SHAPES)):
        shard_ids = [f"m{shard:03d}_{i:03d}" for i in range(min(SHARD_SHAPES, shapes - shard * SHARD_SHAPES))]
        xyz = rng.standard_normal((len(shard_ids), points, 3), dtype=np.float32)
        path = folder / f"{shard}.npz"
        np.savez_compressed(path, ids=np.array(shard_ids), points=xyz, sdf=xyz[..., 0].copy())
        paths.append(str(path))
        ids += shard_ids
    return paths, ids


def run_case(kind: str, paths: list[str], ids: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", CASE, kind, json.dumps(paths), json.dumps(ids)], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(fraction: float, points: int, kinds: list[str]) -> dict:
    shapes = round(FULL_SHAPES * fraction)
    with tempfile.TemporaryDirectory() as tmp:
        paths, ids = write_shards(Path(tmp), shapes, points)
        result = {kind: run_case(kind, paths, ids) for kind in kinds}
    assert all(r["shapes"] == shapes for r in result.values()), result
    return {"fraction": fraction, "shapes": shapes, "shards": len(paths), "points": points,
            "data_mb": shapes * points * 4 * 4 / 2**20, **result,
            "ratio_seconds_vs_np_load": result["toposdf"]["seconds"] / result["np_load"]["seconds"]}


def main() -> None:
    args = parse_args(__doc__)
    points = 25_000 if args.quick else POINTS
    fractions = [1 / 64, 1 / 32] if args.quick else [1 / 16, 1 / 8]
    # the former loader needs RSS of (shapes per shard) x (the shard's array) per shard: a small case only
    former = measure(1 / 64, 25_000, ["np_load", "toposdf", "per_row"])
    cases = [measure(fraction, points, ["np_load", "toposdf", "toposdf_mapped"]) for fraction in fractions]
    rows = [[f"1/{round(1 / c['fraction'])}", c["shapes"], c["points"], f"{c['data_mb']:.0f}", kind,
             f"{c[kind]['seconds']:.2f}", f"{c[kind]['peak_rss_mb']:.0f}", f"{c[kind]['anon_mb_at_end']:.0f}"]
            for c in [former, *cases] for kind in ("np_load", "toposdf", "toposdf_mapped", "per_row") if kind in c]
    table(rows, ["fraction", "shapes", "points", "data MB", "loader", "seconds", "peak RSS MB", "held MB"])
    (a, b) = cases
    per_shape = {key: (b["toposdf"][key] - a["toposdf"][key]) / (b["shapes"] - a["shapes"])
                 for key in ("seconds", "peak_rss_mb")}
    full = {key: b["toposdf"][key] + per_shape[key] * (FULL_SHAPES - b["shapes"]) for key in per_shape}
    print(f"extrapolated to {FULL_SHAPES} shapes x {points} points: {full['seconds']:.0f} s, "
          f"{full['peak_rss_mb'] / 1024:.1f} GB peak RSS (linear in the shapes)")
    write("loader", {"parameters": {"full_shapes": FULL_SHAPES, "shard_shapes": SHARD_SHAPES, "points": points},
                     "former_loader": former, "cases": cases, "per_shape": per_shape, "extrapolated_full": full,
                     "target": "toposdf's peak RSS within 1.5x of the data's size plus one shard, time linear",
                     "target_met": all(c["toposdf"]["peak_rss_mb"] <= 1.5 * c["data_mb"] + 200 + 2 * c["data_mb"] /
                                       c["shards"] for c in cases)}, args.out, args.quick)


if __name__ == "__main__":
    main()
