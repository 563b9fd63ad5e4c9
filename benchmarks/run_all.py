"""Run every benchmark in turn (pass --quick for a smoke run); each writes benchmarks/results/<name>.json.

    python benchmarks/run_all.py [--quick]

bench_sdf's trimesh reference needs the optional ``rtree`` package; without it that row is skipped and says so.
"""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_persistence", "bench_pd_distance", "bench_pd_lap", "bench_sdf"]

if __name__ == "__main__":
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py"), *sys.argv[1:]], cwd=HERE)
        print(f"== {name}: exit {rc} in {time.perf_counter() - start:.0f} s", flush=True)
        if rc:
            failed.append(name)
    sys.exit(f"failed: {failed}" if failed else 0)
