"""SDF sampling of one mesh with 250k points: toposdf (libigl distance + |winding number| sign) vs libigl's
pseudonormal sign vs trimesh.proximity.signed_distance (timed on 2,000 points and extrapolated)."""

import igl
import numpy as np
import trimesh

from _common import parse_args, table, timeit, write
from toposdf.data import normalize_mesh, sample_sdf, signed_distance
from toposdf.synthetic import generate_shape


def main() -> None:
    args = parse_args(__doc__)
    n_points = 25_000 if args.quick else 250_000
    mesh, info = generate_shape("chair", 5, seed=0)
    mesh, _ = normalize_mesh(mesh)
    while len(mesh.faces) < (5_000 if args.quick else 45_000):
        mesh = mesh.subdivide()
    rng = np.random.default_rng(0)
    surface, _ = trimesh.sample.sample_surface(mesh, n_points, seed=rng)
    points = surface + rng.normal(0, 0.03, surface.shape)
    V, F = np.asarray(mesh.vertices), np.asarray(mesh.faces, np.int64)

    def pseudonormal():
        return igl.signed_distance(points, V, F, sign_type=igl.SignedDistanceType.SIGNED_DISTANCE_TYPE_PSEUDONORMAL)[0]

    ours, ref = signed_distance(points, V, F), pseudonormal()
    max_diff = float(np.abs(ours - ref).max())
    assert max_diff < 1e-6, max_diff  # watertight mesh: both signs agree
    subset = points[:2000]
    repeats = 2 if args.quick else 3
    t = {
        "ours_signed_distance": timeit(lambda: signed_distance(points, V, F), repeats),
        "ours_sample_sdf": timeit(lambda: sample_sdf(mesh, n_points, seed=1), repeats),
        "igl_pseudonormal": timeit(pseudonormal, repeats),
        # diagnosis: the two halves of ours
        "ours_part_closest_point": timeit(lambda: igl.point_mesh_squared_distance(points, V, F), repeats),
        "ours_part_fast_winding_number": timeit(lambda: igl.fast_winding_number(V, F, points), repeats),
    }
    ratios = {"ours_over_igl_pseudonormal": t["ours_signed_distance"]["median_s"] / t["igl_pseudonormal"]["median_s"],
              "ours_sample_sdf_over_igl_pseudonormal": t["ours_sample_sdf"]["median_s"] / t["igl_pseudonormal"]["median_s"]}
    rows = [["toposdf signed_distance", f"{t['ours_signed_distance']['median_s']:.2f}", "measured"],
            ["toposdf sample_sdf (incl. sampling)", f"{t['ours_sample_sdf']['median_s']:.2f}", "measured"],
            ["  part: igl.point_mesh_squared_distance", f"{t['ours_part_closest_point']['median_s']:.2f}", "measured"],
            ["  part: igl.fast_winding_number", f"{t['ours_part_fast_winding_number']['median_s']:.2f}", "measured"],
            ["libigl signed_distance, pseudonormal", f"{t['igl_pseudonormal']['median_s']:.2f}", "measured"]]
    try:  # trimesh's closest-point query needs the optional rtree package
        import rtree  # noqa: F401

        trimesh_ok, trimesh_note = True, f"timed on {len(subset)} points, extrapolated linearly to {n_points}"
    except ImportError:
        trimesh_ok, trimesh_note = False, "skipped: trimesh.proximity needs the rtree package (pip install rtree)"
    trimesh_extrapolated = None
    if trimesh_ok:
        t["trimesh_2000_points"] = timeit(lambda: trimesh.proximity.signed_distance(mesh, subset), 1)
        trimesh_extrapolated = t["trimesh_2000_points"]["median_s"] * n_points / len(subset)
        ratios["trimesh_extrapolated_over_ours"] = trimesh_extrapolated / t["ours_signed_distance"]["median_s"]
        rows.append(["trimesh signed_distance", f"{trimesh_extrapolated:.0f}", trimesh_note])
    else:
        rows.append(["trimesh signed_distance", "-", trimesh_note])
    table(rows, ["method", f"s for {n_points} points", "note"])
    print(ratios, f"max |ours - pseudonormal| = {max_diff:.2e}")
    write("sdf", {"n_points": n_points, "mesh": "toposdf.synthetic chair (seed 0), normalized, subdivided",
                  "mesh_faces": len(F), "mesh_watertight": bool(mesh.is_watertight),
                  "points": "surface samples + N(0, 0.03^2) noise", "max_abs_diff_vs_pseudonormal": max_diff,
                  "timings": t, "trimesh_extrapolated_s": trimesh_extrapolated, "trimesh_note": trimesh_note,
                  "ratios": ratios,
                  "target": {"description": "no speed target; ours must agree with pseudonormal on a watertight mesh "
                                            "(max abs diff < 1e-6, asserted)", "met": bool(max_diff < 1e-6)}}, args.out, args.quick)


if __name__ == "__main__":
    main()
