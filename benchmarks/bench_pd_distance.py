"""Eq. 1: toposdf.pd_distance (lap.lapjv on the augmented matrix) vs scipy's linear_sum_assignment vs hera."""

import lap
import numpy as np
from scipy.optimize import linear_sum_assignment

from _common import parse_args, table, timeit, write
from toposdf.topology import augmented_cost_matrix, hera_distance, pd_distance


def random_diagram(rng, n):
    birth = rng.uniform(-0.1, 0.1, n)
    return np.stack([birth, birth + rng.uniform(0, 0.1, n)], axis=1)


def scipy_distance(a, b):
    """The same augmented matrix, solved by scipy (the matrix construction is timed too)."""
    n1, n2 = len(a), len(b)
    c = np.zeros((n1 + n2, n1 + n2))
    c[:n1, :n2] = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    c[:n1, n2:] = (0.5 * (a[:, 1] - a[:, 0]) ** 2)[:, None]
    c[n1:, :n2] = (0.5 * (b[:, 1] - b[:, 0]) ** 2)[None, :]
    rows, cols = linear_sum_assignment(c)
    return c[rows, cols].sum()


def real_diagram_pairs(quick: bool):
    """Pairs of ground-truth-like diagrams: two noise seeds of the benchmark chair SDF, per dimension."""
    from bench_persistence import noisy_chair
    from toposdf.topology import cubical_diagrams

    settings = [(32, 0.0)] if quick else [(48, 0.0), (48, 0.02), (64, 0.005)]
    for n, min_persistence in settings:
        a = cubical_diagrams(noisy_chair(n, 0), tau=0.1, min_persistence=min_persistence)
        b = cubical_diagrams(noisy_chair(n, 1), tau=0.1, min_persistence=min_persistence)
        for k in range(3):
            if len(a[k]) + len(b[k]) >= 4:
                yield f"chair {n}^3 mp={min_persistence} H{k}", a[k], b[k]


def main() -> None:
    args = parse_args(__doc__)
    sizes = [10, 30, 100] if args.quick else [10, 30, 100, 300, 1000]
    rng = np.random.default_rng(0)
    pairs = [(f"random {n}", random_diagram(rng, n), random_diagram(rng, int(0.9 * n))) for n in sizes]
    pairs += list(real_diagram_pairs(args.quick))
    cases, rows = [], []
    for name, a, b in pairs:
        n = len(a)
        ours, ref_scipy, ref_hera = pd_distance(a, b), scipy_distance(a, b), hera_distance(a, b)
        assert np.isclose(ours, ref_scipy, rtol=1e-9) and np.isclose(ours, ref_hera, rtol=1e-5), (ours, ref_scipy, ref_hera)
        matrix = augmented_cost_matrix(a, b)
        repeats = 3 if n + len(b) >= 1000 else (5 if args.quick else 20)
        t = {name: timeit(fn, repeats) for name, fn in
             [("ours", lambda: pd_distance(a, b)), ("scipy", lambda: scipy_distance(a, b)),
              ("hera", lambda: hera_distance(a, b)),
              # diagnosis only: lap.lapjv alone on ours's prebuilt matrix (the rest of ours is numpy overhead)
              ("lapjv_only", lambda: lap.lapjv(matrix, extend_cost=False, return_cost=True))]}
        case = {"case": name, "n": n, "m": len(b), **t,
                "ratio_scipy_over_ours": t["scipy"]["median_s"] / t["ours"]["median_s"],
                "ratio_hera_over_ours": t["hera"]["median_s"] / t["ours"]["median_s"]}
        cases.append(case)
        rows.append([name, f"{n}x{len(b)}", f"{t['ours']['median_s'] * 1e3:.3f}", f"{t['scipy']['median_s'] * 1e3:.3f}",
                     f"{t['hera']['median_s'] * 1e3:.3f}", f"{case['ratio_scipy_over_ours']:.1f}",
                     f"{case['ratio_hera_over_ours']:.1f}", f"{t['lapjv_only']['median_s'] * 1e3:.3f}"])
    table(rows, ["case", "points", "ours ms", "scipy ms", "hera ms", "scipy/ours", "hera/ours", "lapjv alone ms"])
    slower = [c["case"] for c in cases if c["ratio_scipy_over_ours"] < 1]
    target = {"description": "no target stated; ours should not be slower than scipy on the same matrix",
              "sizes_where_scipy_is_faster": slower, "met": None}
    print(f"sizes where scipy is faster than ours: {slower}")
    write("pd_distance", {"diagram_b_size": "0.9 * n", "birth": [-0.1, 0.1], "persistence": [0, 0.1],
                          "agreement": "ours == scipy (rel 1e-9), ours == hera (rel 1e-5), asserted",
                          "cases": cases, "target": target}, args.out, args.quick)


if __name__ == "__main__":
    main()
