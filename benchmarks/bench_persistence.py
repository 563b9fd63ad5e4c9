"""Persistence with critical vertices: toposdf (CubicalRipser + bookkeeping) vs raw cripser vs gudhi.

Target: at 64^3, ours within 1.2x of raw cripser.
"""

import numpy as np

from _common import parse_args, table, timeit, write
import cripser
import gudhi

from toposdf.topology import cubical_diagrams_with_critical, gudhi_diagrams

TAU = 0.1


def box_sdf(points, lo, hi):
    center, half = (np.asarray(lo) + hi) / 2, (np.asarray(hi) - lo) / 2
    q = np.abs(points - center) - half
    return np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(axis=-1), 0)


def noisy_chair(n: int, seed: int = 0) -> np.ndarray:
    """Analytic SDF of a chair (seat, four legs, back with two slats) plus noise: many small pairs."""
    x = np.linspace(-1, 1, n)
    p = np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1)
    parts = [([-0.5, -0.05, -0.5], [0.5, 0.05, 0.5])]
    parts += [([sx - 0.06, -0.9, sz - 0.06], [sx + 0.06, 0.0, sz + 0.06]) for sx in (-0.42, 0.42) for sz in (-0.42, 0.42)]
    parts += [([sx - 0.06, 0.0, -0.5], [sx + 0.06, 0.9, -0.38]) for sx in (-0.42, -0.1, 0.2, 0.42)]
    parts += [([-0.5, 0.78, -0.5], [0.5, 0.9, -0.38])]
    sdf = np.min([box_sdf(p, lo, hi) for lo, hi in parts], axis=0)
    return sdf + 0.015 * np.random.default_rng(seed).standard_normal(sdf.shape)


def gudhi_with_critical(values: np.ndarray):
    cc = gudhi.CubicalComplex(vertices=values)
    cc.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    return cc.vertices_of_persistence_pairs()


def main() -> None:
    args = parse_args(__doc__)
    sizes = [24, 32] if args.quick else [32, 64, 96]
    repeats = 2 if args.quick else 5
    cases, rows = [], []
    for n in sizes:
        grid = noisy_chair(n)
        values = np.clip(grid, -TAU, TAU).astype(np.float64)
        ours, _ = cubical_diagrams_with_critical(grid, tau=TAU)
        ref = gudhi_diagrams(grid, tau=TAU)
        for k in range(3):  # a wrong speed-up must not be reported
            assert np.allclose(np.sort(ours[k], axis=0), np.sort(ref[k], axis=0)), f"H{k} differs at {n}^3"
        t_ours = timeit(lambda: cubical_diagrams_with_critical(grid, tau=TAU), repeats)
        t_raw = timeit(lambda: cripser.compute_ph(values, filtration="V", maxdim=2), repeats)
        t_gudhi = timeit(lambda: gudhi_with_critical(values), max(1, repeats // 2))
        case = {
            "n": n,
            "pairs": [len(d) for d in ours],
            "ours": t_ours,
            "raw_cripser": t_raw,
            "gudhi_with_vertices": t_gudhi,
            "ratio_ours_over_raw_cripser": t_ours["median_s"] / t_raw["median_s"],
            "ratio_gudhi_over_ours": t_gudhi["median_s"] / t_ours["median_s"],
        }
        cases.append(case)
        rows.append([f"{n}^3", sum(case["pairs"]), f"{t_ours['median_s']:.3f}", f"{t_raw['median_s']:.3f}",
                     f"{t_gudhi['median_s']:.3f}", f"{case['ratio_ours_over_raw_cripser']:.3f}",
                     f"{case['ratio_gudhi_over_ours']:.1f}"])
    table(rows, ["grid", "pairs", "ours s", "cripser s", "gudhi s", "ours/cripser", "gudhi/ours"])
    at64 = next((c for c in cases if c["n"] == 64), None)
    target = {"description": "64^3 with critical vertices within 1.2x of raw cripser",
              "ratio": at64["ratio_ours_over_raw_cripser"] if at64 else None,
              "met": bool(at64 and at64["ratio_ours_over_raw_cripser"] <= 1.2)}
    print(f"target: {target}")
    write("persistence", {"tau": TAU, "cases": cases, "target": target}, args.out, args.quick)


if __name__ == "__main__":
    main()
