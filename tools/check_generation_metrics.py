"""Recompute a finished run's MMD-CD, COV-CD and 1-NNA-CD without toposdf's metric code, and compare.

A second implementation on purpose: PointFlow's ``compute_all_metrics`` definitions (which ShapeGF reuses), with
scipy's KD-tree for the Chamfer distance (the mean squared nearest-neighbour distance each way, summed). It reads
the run's files only: the first draw's meshes (``generate/<method>/shapes.npz``), the test and training shapes'
normalized meshes (the ``meshes/<shard>.json`` manifests) and the numbers the run wrote (``eval/<method>/metrics.json``,
``eval/calibration.json``'s held-out training row). Clouds are sampled as the run samples them (by face area, the
k-th shape in sorted id order seeded ``evaluation.seed + k``), so a match is exact; ``--resample`` draws them again
with trimesh's sampler and other seeds instead, which shows how much of a difference between two rows is the
sampling's.

    python tools/check_generation_metrics.py results/synthetic chair deepsdf_vad ours_deepsdf --heldout

docs/results.md, section 15, has what it found on the cpu_long seed-1 run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree

KEYS = (("mmd", "mmd_cd"), ("cov", "cov_cd"), ("nna", "1_nna_cd"))


def run_sampler(vertices, faces, n: int, seed: int) -> np.ndarray:
    """``n`` points on the mesh, faces drawn by area, in the run's order of random draws."""
    v, f = np.asarray(vertices, np.float64).reshape(-1, 3), np.asarray(faces, np.int64).reshape(-1, 3)
    if len(f) == 0:
        return np.zeros((0, 3))
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    if not area.sum() > 0:
        return np.zeros((0, 3))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(f), size=n, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random((n, 1))), rng.random((n, 1))
    return (1 - r1) * a[pick] + r1 * (1 - r2) * b[pick] + r1 * r2 * c[pick]


def trimesh_sampler(vertices, faces, n: int, seed: int) -> np.ndarray:
    if len(faces) == 0:
        return np.zeros((0, 3))
    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=False)
    return np.asarray(trimesh.sample.sample_surface(mesh, n, seed=seed)[0], np.float64)


def chamfer(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) == 0 or len(y) == 0:
        return np.inf
    return float((cKDTree(y).query(x)[0] ** 2).mean() + (cKDTree(x).query(y)[0] ** 2).mean())


def distances(xs, ys) -> np.ndarray:
    return np.array([[chamfer(x, y) for y in ys] for x in xs])


def generation_metrics(d_rs: np.ndarray, d_rr: np.ndarray, d_ss: np.ndarray) -> dict[str, float]:
    """PointFlow's definitions: MMD, the mean over references of the nearest sample's distance; COV, the share of
    references that are some sample's nearest reference; 1-NNA, the leave-one-out 1-NN accuracy on both sets."""
    n_ref, n_gen = d_rs.shape
    union = np.block([[d_rr, d_rs], [d_rs.T, d_ss]]).astype(float)
    np.fill_diagonal(union, np.inf)
    label = np.r_[np.ones(n_ref), np.zeros(n_gen)]
    return {"mmd": float(d_rs.min(axis=1).mean()), "cov": len(np.unique(d_rs.argmin(axis=0))) / n_ref,
            "nna": float((label[union.argmin(axis=1)] == label).mean())}


def shape_meshes(category_root: Path, subset: str) -> list[trimesh.Trimesh]:
    """The normalized meshes of the split's ``subset`` found in the manifests, in sorted id order."""
    paths = {}
    for manifest in sorted((category_root / "meshes").glob("*.json")):
        if manifest.stem.isdigit():
            for record in json.loads(manifest.read_text())["shapes"]:
                if record["status"] == "ok":
                    paths[record["model_id"]] = manifest.parent / record["mesh"]
    ids = [i for i in sorted(json.loads((category_root / "split.json").read_text())[subset]) if i in paths]
    return [trimesh.load(paths[i], force="mesh", process=False) for i in ids]


def generated_meshes(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    with np.load(path) as f:
        v, faces, vo, fo = f["vertices"], f["faces"], f["vertex_offsets"], f["face_offsets"]
    return [(v[vo[i]:vo[i + 1]], faces[fo[i]:fo[i + 1]]) for i in range(len(vo) - 1)]


def heldout_picks(n_train: int, n: int, seed: int, draws: int) -> list[np.ndarray]:
    """The calibration row's draws of training shapes (toposdf.calibration.calibration_picks, written again)."""
    return [np.random.default_rng(int(s)).choice(n_train, size=n, replace=n_train < n)
            for s in np.random.SeedSequence(seed).generate_state(draws)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_root", type=Path, help="a run's results/<dataset> folder")
    parser.add_argument("category")
    parser.add_argument("methods", nargs="*", help="rows with generate/<method>/shapes.npz")
    parser.add_argument("--heldout", action="store_true", help="also the held-out training calibration row")
    parser.add_argument("--points", type=int, default=2048, help="evaluation.cloud_points of the run")
    parser.add_argument("--seed", type=int, default=0, help="evaluation.seed of the run")
    parser.add_argument("--draws", type=int, default=10, help="evaluation.draws of the run (the held-out row)")
    parser.add_argument("--resample", action="store_true", help="trimesh's sampler, seeds from 1000: no exact match")
    args = parser.parse_args(argv)
    root = args.dataset_root / args.category
    if not args.methods and not args.heldout:
        parser.error("nothing to check: name at least one method, or give --heldout")
    if not (root / "split.json").is_file():
        parser.error(f"{root}: no split.json; give a finished run's results/<dataset> folder and a category it ran")
    if not any((root / "meshes").glob("*.json")):
        parser.error(f"{root}: no meshes/<shard>.json (the normalized meshes); a packed reference keeps none, so give "
                     "the folder the run was made in")
    sampler, seed = (trimesh_sampler, args.seed + 1000) if args.resample else (run_sampler, args.seed)
    test = [sampler(m.vertices, m.faces, args.points, seed + k) for k, m in enumerate(shape_meshes(root, "test"))]
    d_rr, mismatches = distances(test, test), 0
    for method in args.methods:
        meshes = generated_meshes(root / "generate" / method / "shapes.npz")[:len(test)]  # the scored ones
        generated = [sampler(v, f, args.points, seed + k) for k, (v, f) in enumerate(meshes)]
        mine = generation_metrics(distances(test, generated), d_rr, distances(generated, generated))
        theirs = json.loads((root / "eval" / method / "metrics.json").read_text())["metrics"]
        same = all(mine[k] == theirs[key]["mean"] for k, key in KEYS)
        mismatches += not same and not args.resample
        print(f"{method}: " + ", ".join(f"{key} {theirs[key]['mean']:.6g} / {mine[k]:.6g}" for k, key in KEYS)
              + f"  (run / here; {'the same' if same else 'differ'})")
    if args.heldout:
        train = [sampler(m.vertices, m.faces, args.points, seed + k) for k, m in enumerate(shape_meshes(root, "train"))]
        d_rt, d_tt = distances(test, train), distances(train, train)
        rows = [generation_metrics(d_rt[:, p], d_rr, d_tt[np.ix_(p, p)])
                for p in heldout_picks(len(train), len(test), args.seed, args.draws)]
        calibration = json.loads((root / "eval" / "calibration.json").read_text())["rows"]
        theirs = next(r["metrics"] for r in calibration if r["method"] == "heldout_training")
        mine = {k: (np.mean([r[k] for r in rows]), np.std([r[k] for r in rows])) for k, _ in KEYS}
        same = all(np.isclose(mine[k][0], theirs[key]["mean"], rtol=1e-12, atol=0) for k, key in KEYS)
        mismatches += not same and not args.resample
        print("held-out training: " + ", ".join(
            f"{key} {theirs[key]['mean']:.6g} ± {theirs[key]['std']:.2g} / {mine[k][0]:.6g} ± {mine[k][1]:.2g}"
            for k, key in KEYS) + f"  (run / here; {'the same' if same else 'differ'})")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
