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
    """gudhi's persistence with the vertices of every pair (what ours returns): the reference with equal output."""
    cc = gudhi.CubicalComplex(vertices=values)
    cc.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    return cc.vertices_of_persistence_pairs()


def sorted_pairs(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, np.float64).reshape(-1, 2)
    return d[np.lexsort((d[:, 1], d[:, 0]))]


def check_agreement(grid: np.ndarray, values: np.ndarray, n: int) -> dict:
    """Ours must equal gudhi's diagrams (as multisets of pairs), raw cripser's positive-persistence pairs, and its
    critical vertices must index the clamped values: a wrong speed-up must not be reported."""
    ours, critical = cubical_diagrams_with_critical(grid, tau=TAU)
    ref = gudhi_diagrams(grid, tau=TAU)
    raw = cripser.compute_ph(values, filtration="V", maxdim=2)
    flat = values.ravel()
    for k in range(3):
        assert len(ours[k]) == len(ref[k]), f"H{k}: {len(ours[k])} pairs vs gudhi {len(ref[k])} at {n}^3"
        assert np.array_equal(sorted_pairs(ours[k]), sorted_pairs(ref[k])), f"H{k} differs from gudhi at {n}^3"
        assert np.array_equal(flat[critical[k]], ours[k]), f"H{k} critical vertices do not give the pairs at {n}^3"
        r = raw[raw[:, 0] == k][:, 1:3].copy()
        r[~np.isfinite(r[:, 1]) | (r[:, 1] >= np.finfo(np.float64).max / 2), 1] = TAU
        r = r[r[:, 1] > r[:, 0]]
        assert np.array_equal(sorted_pairs(ours[k]), sorted_pairs(r)), f"H{k} differs from raw cripser at {n}^3"
    # gudhi's own critical vertices give the same (birth, death) values as ours (essential classes aside)
    # (gudhi numbers vertices in Fortran order, first axis fastest; it omits the dimensions past the last non-empty)
    regular, _essential = gudhi_with_critical(values)
    flat_f = values.ravel(order="F")
    for k in range(3):
        v = np.asarray(regular[k] if k < len(regular) else [], np.int64).reshape(-1, 2)
        g = np.stack([flat_f[v[:, 0]], flat_f[v[:, 1]]], axis=1)
        g = g[g[:, 1] > g[:, 0]]
        finite = ours[k][1:] if k == 0 else ours[k]  # PD0's essential class comes first (largest persistence)
        assert np.array_equal(sorted_pairs(g), sorted_pairs(finite)), f"H{k} gudhi vertex pairs differ at {n}^3"
    return {"gudhi_pairs_equal": True, "raw_cripser_pairs_equal": True, "critical_vertices_index_values": True,
            "gudhi_vertex_values_equal": True, "pairs": [len(d) for d in ours]}


def main() -> None:
    args = parse_args(__doc__)
    sizes = [24, 32] if args.quick else [32, 64, 96]
    repeats = 2 if args.quick else 5
    cases, rows = [], []
    for n in sizes:
        grid = noisy_chair(n)
        values = np.clip(grid, -TAU, TAU).astype(np.float64)
        check = check_agreement(grid, values, n)
        t_ours = timeit(lambda: cubical_diagrams_with_critical(grid, tau=TAU), repeats)
        t_raw = timeit(lambda: cripser.compute_ph(values, filtration="V", maxdim=2), repeats)
        t_gudhi = timeit(lambda: gudhi_with_critical(values), max(1, repeats // 2))
        case = {
            "n": n,
            "pairs": check["pairs"],
            "agreement": check,
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
              "met": bool(at64["ratio_ours_over_raw_cripser"] <= 1.2) if at64 else None}
    print(f"target: {target}")
    write("persistence", {"tau": TAU, "cases": cases, "target": target}, args.out, args.quick)


if __name__ == "__main__":
    main()
