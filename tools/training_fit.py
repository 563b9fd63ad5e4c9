"""How well each trained model reproduces its own training shapes (``toposdf.diagnostics.training_fit``).

A generator cannot be more varied or more faithful than its decoder's fit of the training codes: when shape ``i``
decoded from its own code is further from shape ``i`` than the nearest other training shape is, prior samples
lie near an average shape, whatever the latent prior. Reads a finished run's ``{category}/train/{method}/model.pt``
and ``{category}/grids/*.npz``, and the test shapes' fitted codes in ``{category}/eval/{method}/reconstruction.npz``
where there is one (runs before the reconstruct rule kept them have none: no test IoU); prints a table and writes
JSON. ``rule training_fit`` writes the same numbers for a run's every category (``eval/training_fit.json``; it
decodes in the narrow band, this on every grid vertex).

    python tools/training_fit.py results/synthetic --categories chair table --out fit.json
"""

import argparse
import json
import sys
from pathlib import Path

from toposdf.checkpoints import cpu_threads
from toposdf.diagnostics import fitted_test_codes, training_fit
from toposdf.generation import load_model


def _value(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run's results folder, e.g. results/synthetic")
    parser.add_argument("--categories", nargs="+", default=None, help="default: every category with trained models")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every method with a model.pt")
    parser.add_argument("--shapes", type=int, default=None,
                        help="measure a seeded sample of this many training shapes (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --shapes sample (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: print only)")
    args = parser.parse_args(argv)
    cpu_threads(1)
    categories = args.categories or sorted(p.parents[2].name for p in args.run.glob("*/train/*/model.pt"))
    rows = []
    for category in dict.fromkeys(categories):
        grids = sorted((args.run / category / "grids").glob("*.npz"))
        models = sorted((args.run / category / "train").glob("*/model.pt"))
        if not grids or not models:
            sys.exit(f"{args.run / category}: no grids/*.npz or train/*/model.pt (is the run finished?)")
        for path in models:
            if args.methods and path.parent.name not in args.methods:
                continue
            reconstruction = args.run / category / "eval" / path.parent.name / "reconstruction.npz"
            test_codes = fitted_test_codes(reconstruction) if reconstruction.exists() else None
            fit = training_fit(load_model(path, "cpu"), grids, shapes=args.shapes, seed=args.seed,
                               test_codes=test_codes)
            rows.append({"category": category, "method": path.parent.name, **fit})
            print(f"{category:8s} {path.parent.name:20s} " + "  ".join(f"{k} {_value(v)}" for k, v in fit.items()),
                  flush=True)
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
