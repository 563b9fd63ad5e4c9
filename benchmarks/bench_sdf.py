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
    t = {
        "ours_signed_distance": timeit(lambda: signed_distance(points, V, F), 3),
        "ours_sample_sdf": timeit(lambda: sample_sdf(mesh, n_points, seed=1), 3),
        "igl_pseudonormal": timeit(pseudonormal, 3),
        "trimesh_2000_points": timeit(lambda: trimesh.proximity.signed_distance(mesh, subset), 1),
    }
    trimesh_extrapolated = t["trimesh_2000_points"]["median_s"] * n_points / len(subset)
    ratios = {"ours_over_igl_pseudonormal": t["ours_signed_distance"]["median_s"] / t["igl_pseudonormal"]["median_s"],
              "trimesh_extrapolated_over_ours": trimesh_extrapolated / t["ours_signed_distance"]["median_s"]}
    table([["toposdf signed_distance", f"{t['ours_signed_distance']['median_s']:.2f}", "measured"],
           ["toposdf sample_sdf (incl. sampling)", f"{t['ours_sample_sdf']['median_s']:.2f}", "measured"],
           ["libigl pseudonormal", f"{t['igl_pseudonormal']['median_s']:.2f}", "measured"],
           ["trimesh signed_distance", f"{trimesh_extrapolated:.0f}", "extrapolated from 2,000 points"]],
          ["method", f"s for {n_points} points", "note"])
    print(ratios)
    write("sdf", {"n_points": n_points, "mesh_faces": len(F), "max_abs_diff_vs_pseudonormal": max_diff, **t,
                  "trimesh_extrapolated_s": trimesh_extrapolated, "ratios": ratios}, args.out, args.quick)


if __name__ == "__main__":
    main()
