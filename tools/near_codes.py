"""How much of a generator's PD-LAP its decoder's fit already costs, and how much its samples between the training
shapes add (``near_code_scores``; the codes: ``toposdf.diagnostics.near_code_latents``).

Draws shapes at codes near the training codes, ``z = mu_j + s * eps`` (``j`` uniform over the training shapes,
``eps ~ N(0, I)``), for each scale ``s``, and at ``z ~ N(0, I)`` as generation does, and scores each draw by PD-LAP
against the category's test shapes, from marching-cubes meshes as the pipeline's default (``--from-network``: the
network's grid). At scale 0 the draws are the training shapes decoded from their own codes (with replacement): a
method whose prior samples score far above that is limited by where its samples fall; one whose scale-0 score is
far above the held-out training shapes' (the floor of Tables 1 and 2) is limited by its decoder. Reads a finished
run's ``{category}/split.json``, ``diagrams/*.npz`` and ``train/{method}/model.pt``; prints a table and writes
JSON. The settings default to the CPU default's (``grid.resolution`` 40, ``persistence.tau`` 0.1,
``min_persistence`` 0.02): give a run's own with the options. About 5 s a draw of 32 shapes per scale on 2 cores.

    python tools/near_codes.py results/synthetic --categories table --methods deepsdf_vad ours_deepsdf \\
        --scales 0 0.5 1 --draws 3 --out near_codes.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from toposdf.checkpoints import cpu_threads
from toposdf.diagnostics import near_code_latents, run_test_diagrams
from toposdf.external import mesh_path_diagrams
from toposdf.generation import TrainedModel, load_model, shapes_at
from toposdf.io import atomic_write_json, json_safe
from toposdf.metrics import pd_lap_summary
from toposdf.topology import Diagrams


def near_code_scores(model: TrainedModel, reference: Sequence[Diagrams], scales: Sequence[float | None], draws: int,
                     seed: int, resolution: int, tau: float, min_persistence: float, from_meshes: bool = True,
                     processes: int = 1) -> list[dict]:
    """PD-LAP against ``reference`` (the test shapes' diagrams) of ``draws`` draws of ``len(reference)`` shapes at
    :func:`near_code_latents` of each scale: how much of a generator's PD-LAP its decoder's fit of the training
    shapes already costs (scale 0: the training shapes decoded, drawn with replacement) and how much its samples
    between them add (``None``: the prior). ``from_meshes`` scores each shape from its marching-cubes mesh
    (``evaluation.score_from: meshes``, :func:`toposdf.external.mesh_path_diagrams`), else from the network's grid.
    Draw ``k`` of every scale uses seed ``seed + k``; ``processes`` threads the persistence, the mesh path and
    PD-LAP. One row per scale: ``scale``, ``pd_lap`` and ``H0``-``H2``
    as ``(mean, std)`` over the draws."""
    rows = []
    for scale in scales:
        per_draw = []
        for k in range(draws):
            z = near_code_latents(model.mu, len(reference), scale, seed + k)
            grids, diagrams = shapes_at(model, z, resolution, tau, min_persistence, processes)
            if from_meshes:
                diagrams, _ = mesh_path_diagrams(grids, diagrams, resolution, tau, min_persistence, processes)
            per_draw.append(diagrams)
        stats = pd_lap_summary(per_draw, reference, processes).stats()
        rows.append({"scale": scale, "pd_lap": stats.pop("total"), **stats})
    return rows


def _cell(stats) -> str:
    mean, std = stats
    return f"{mean * 1e3:6.2f} ± {std * 1e3:4.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run's results folder, e.g. results/synthetic")
    parser.add_argument("--categories", nargs="+", default=None, help="default: every category with trained models")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every method with a model.pt")
    parser.add_argument("--scales", nargs="+", type=float, default=[0.0, 0.5, 1.0],
                        help="noise scales s around the training codes (default 0 0.5 1); the prior is always added")
    parser.add_argument("--draws", type=int, default=3, help="draws per scale (default 3)")
    parser.add_argument("--seed", type=int, default=100, help="draw k uses seed + k (default 100)")
    parser.add_argument("--resolution", type=int, default=40)
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--min-persistence", type=float, default=0.02)
    parser.add_argument("--from-network", action="store_true", help="score the network's grid, not the meshes")
    parser.add_argument("--threads", type=int, default=1, help="threads and PD-LAP processes (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: print only)")
    args = parser.parse_args(argv)
    if args.draws < 1 or any(s < 0 for s in args.scales):
        parser.error("--draws must be >= 1 and every scale >= 0")
    cpu_threads(args.threads)
    categories = args.categories or sorted({p.parents[2].name for p in args.run.glob("*/train/*/model.pt")})
    if not categories:
        sys.exit(f"{args.run}: no {{category}}/train/{{method}}/model.pt found; point it at a run's results folder")
    rows = []
    print(f"{'category':9s} {'method':20s} {'codes':>12s} {'PD-LAP x1e3':>15s} {'H0':>15s} {'H1':>15s}")
    for category in categories:
        folder = args.run / category
        reference = run_test_diagrams(folder)  # the test shapes' diagrams, from the numbered shards only
        methods = args.methods or sorted(p.parent.name for p in folder.glob("train/*/model.pt"))
        for method in methods:
            model = load_model(folder / "train" / method / "model.pt", "cpu")
            scores = near_code_scores(model, reference, [*args.scales, None], args.draws, args.seed, args.resolution,
                                      args.tau, args.min_persistence, not args.from_network, args.threads)
            for row in scores:
                codes = "N(0, I)" if row["scale"] is None else f"mu + {row['scale']:g} eps"
                print(f"{category:9s} {method:20s} {codes:>12s} {_cell(row['pd_lap']):>15s} {_cell(row['H0']):>15s} "
                      f"{_cell(row['H1']):>15s}")
                rows.append({"category": category, "method": method, **row})
    if args.out is not None:
        atomic_write_json(args.out, json_safe({"rows": rows, "settings": {k: str(v) if isinstance(v, Path) else v
                                                                       for k, v in vars(args).items()},
                                               "scored_from": "network grid" if args.from_network else "meshes"}))


if __name__ == "__main__":
    main()
