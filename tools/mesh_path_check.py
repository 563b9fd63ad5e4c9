"""A trained row scored both ways: from the network's signed distance on the grid (how the workflow scores every
method), and from the network's marching-cubes meshes through the mesh path an external row takes
(:mod:`toposdf.external`: the meshes' own signed distance on the same grid). If the two differ by more than the
row's std over its draws, rows from meshes and rows from networks are not on the same footing (docs/external.md).

Regenerates the ``generate`` rule's draws (same seeds, sizes and settings, read from the run's config), meshes each
draw's grids, and scores both ways against the test shapes. Shapes with no surface have no mesh: they keep the
network's diagrams on both sides (counted). Prints the table and writes JSON.

    python tools/mesh_path_check.py /work/runs/long0 --preset presets/cpu_long.yaml --category chair \\
        --methods deepsdf_se_vad ours_deepsdf_se --out docs/measurements/mesh_path_cpu_long.json
"""

import argparse
import json
import tempfile
from pathlib import Path

import trimesh

from toposdf.checkpoints import cpu_threads
from toposdf.config import load_config_file
from toposdf.diagnostics import run_test_diagrams
from toposdf.external import grids_and_diagrams, prepare_meshes
from toposdf.generation import draw_seeds, load_model, meshes_of, sample_latents, shapes_at
from toposdf.metrics import pd_lap_summary


def both_ways(run: Path, cfg, category: str, method: str, workers: int, mesh_resolution: int | None = None) -> dict:
    root = run / "results" / cfg.dataset.name / category
    ev, tau, minp, res = cfg.evaluation, cfg.persistence.tau, cfg.persistence.min_persistence, cfg.grid.resolution
    reference = run_test_diagrams(root)
    n = ev.generated_shapes or len(reference)
    model = load_model(root / "train" / method / "model.pt", "cpu")
    network, meshed, empty = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for d, seed in enumerate(draw_seeds(ev.seed, ev.draws)):
            z = sample_latents(n, model.latent_size, seed)
            grids, diagrams = shapes_at(model, z, res, tau, minp, workers)
            if mesh_resolution is not None and mesh_resolution != res:  # the meshes from a finer grid
                grids = shapes_at(model, z, mesh_resolution, tau, minp, workers)[0]
            paths = []
            for i, (vertices, faces) in enumerate(meshes_of(grids)):
                path = Path(tmp) / f"{d:02d}_{i:04d}.obj"
                if len(faces):
                    trimesh.Trimesh(vertices, faces, process=False).export(path)
                    paths.append(path)
            usable, _ = prepare_meshes(paths, False, cfg.sdf.margin, True, what=f"{method} draw {d}")
            by_index = {int(path.stem.split("_")[1]): (mesh, record) for path, mesh, record in usable}
            _, from_meshes = grids_and_diagrams(list(by_index.values()), res, tau, minp, workers) if by_index \
                else (None, [])
            mesh_diagrams = dict(zip(by_index, from_meshes))
            empty += n - len(mesh_diagrams)
            network.append(diagrams)
            meshed.append([mesh_diagrams.get(i, diagrams[i]) for i in range(n)])
    a = pd_lap_summary(network, reference, workers).stats()
    b = pd_lap_summary(meshed, reference, workers).stats()
    return {"category": category, "method": method, "draws": ev.draws, "shapes_per_draw": n, "grid": res,
            "mesh_resolution": mesh_resolution or res,
            "shapes_without_surface": empty,
            "network_grid": {k: {"mean": a[k][0], "std": a[k][1]} for k in ("total", "H0", "H1", "H2")},
            "mesh_path": {k: {"mean": b[k][0], "std": b[k][1]} for k in ("total", "H0", "H1", "H2")},
            "difference": b["total"][0] - a["total"][0], "network_std": a["total"][1]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the run's folder (its results/ holds the finished category)")
    parser.add_argument("--preset", type=Path, default=None, help="the run's preset over its config.yaml")
    parser.add_argument("--category", required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--mesh-resolution", type=int, default=None,
                        help="extract the meshes from the network on this grid (default: the scoring grid's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    cpu_threads(args.workers)
    cfg = load_config_file(args.run / "config.yaml", *([args.run / args.preset] if args.preset else []))
    rows = [both_ways(args.run, cfg, args.category, method, args.workers, args.mesh_resolution)
            for method in args.methods]
    print(f"{'method':20s} {'network grid':>18s} {'mesh path':>18s} {'difference':>11s} {'no surface':>10s}")
    for row in rows:
        a, b = row["network_grid"]["total"], row["mesh_path"]["total"]
        print(f"{row['method']:20s} {a['mean'] * 1e3:8.2f} ± {a['std'] * 1e3:5.2f}   {b['mean'] * 1e3:8.2f} ± "
              f"{b['std'] * 1e3:5.2f}   {row['difference'] * 1e3:+9.2f}   {row['shapes_without_surface']:>10d}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"run": str(args.run), "preset": str(args.preset), "rows": rows}, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
