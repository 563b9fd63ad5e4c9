"""Eq. 2: pd_lap between two collections of 350 shapes (PD0/PD1/PD2 of 10-20 points each).

Target: at most 10 s on 2 cores.
"""

import numpy as np

from _common import parse_args, table, timeit, write
from toposdf.topology import pd_lap


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
    serial = pd_lap(A, B, processes=1)
    pooled = pd_lap(A, B, processes=2)
    assert np.array_equal(serial.W_per_dimension, pooled.W_per_dimension)
    t1 = timeit(lambda: pd_lap(A, B, processes=1), 1)
    t2 = timeit(lambda: pd_lap(A, B, processes=2), 2)
    pairs = n * n * 3
    table([[f"{n}x{n}", "1", f"{t1['median_s']:.2f}", f"{t1['median_s'] / pairs * 1e6:.1f}"],
           [f"{n}x{n}", "2", f"{t2['median_s']:.2f}", f"{t2['median_s'] / pairs * 1e6:.1f}"]],
          ["shapes", "processes", "s", "us per diagram pair"])
    target = {"description": "350 x 350 in at most 10 s on 2 cores", "seconds": t2["median_s"],
              "met": bool(n == 350 and t2["median_s"] <= 10.0)}
    print(f"target: {target}  (PD-LAP value {pooled.value:.5f})")
    write("pd_lap", {"n": n, "points_per_diagram": [10, 20], "processes_1": t1, "processes_2": t2,
                     "speedup_2_over_1": t1["median_s"] / t2["median_s"], "value": pooled.value,
                     "per_dimension": pooled.per_dimension.tolist(), "target": target}, args.out, args.quick)


if __name__ == "__main__":
    main()
