"""How many test-time iterations CD-mean needs to tell two methods apart.

For each iteration count, every test shape is reconstructed and scored by the Chamfer distance of CD-mean with
``rule reconstruct``'s own routine (``toposdf.evaluation.reconstruct_test_shapes``). For
each pair of methods (``--pairs a:b``) it prints the paired per-shape difference ``CD(a) - CD(b)`` (mean and 95%
t-interval over the test shapes) and the wall time, and writes JSON.

    python tools/reconstruct_iterations.py results/synthetic --category chair \\
        --methods deepsdf_vad ours_deepsdf --pairs ours_deepsdf:deepsdf_vad --iterations 30 100 300 800 --out it.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from toposdf.checkpoints import cpu_threads
from toposdf.config import Config, read_config_files
from toposdf.data import split_ids
from toposdf.evaluation import reconstruct_test_shapes
from toposdf.generation import load_model
from toposdf.metrics import paired_difference


def chamfers(cfg: Config, model_path: Path, base: Path, iterations: int) -> tuple[list[float], float]:
    """Per-test-shape CD of ``model_path``'s reconstructions at ``iterations`` (rule reconstruct's own routine), and
    the seconds it took (fit, meshing and Chamfer)."""
    start = time.time()
    shapes = reconstruct_test_shapes(cfg, load_model(model_path, "cpu"), split_ids(base / "split.json", "test"),
                                     sorted((base / "sdf").glob("*.npz")),
                                     sorted((base / "meshes").glob("[0-9]*.json")),  # the shard manifests
                                     iterations=iterations)
    return shapes["chamfer"].tolist(), time.time() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run's results folder, e.g. results/synthetic")
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--category", default="chair")
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--pairs", nargs="+", default=[], help="a:b pairs whose paired difference CD(a) - CD(b) to show")
    parser.add_argument("--iterations", nargs="+", type=int, default=[30, 100, 300, 800])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    cpu_threads(1)
    cfg = Config.from_dict(read_config_files(args.config))
    base = args.run / args.category
    rows = []
    for iterations in args.iterations:
        cd, walls = {}, {}
        for method in args.methods:
            cd[method], walls[method] = chamfers(cfg, base / "train" / method / "model.pt", base, iterations)
        row = {"iterations": iterations, "seconds": walls,
               "cd_mean": {m: float(np.nanmean(v)) for m, v in cd.items()}, "pairs": {}}
        for pair in args.pairs:
            a, b = pair.split(":")
            row["pairs"][pair] = paired_difference(cd[a], cd[b])
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            args.out.write_text(json.dumps({"run": str(args.run), "category": args.category, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
