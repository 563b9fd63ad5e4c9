"""The paper's PD-LAP claim over several finished runs of one config (``toposdf.seeds``): per pair, how many runs
have ours below its baseline and how many mean ± std apart, the paired difference over the runs with its interval,
a sign test, and Table 2's H0 and H1 columns; per category, the runs whose every pair is apart.

Run the same config at several ``train.seed`` values (one folder per seed: docs/cluster.md, "Several seeds at
once"), then give each run's ``results/<dataset>`` folder (a reference run's ``synthetic/`` folder works too). The
pairs are the config's (the full methods with topological terms and their baselines, as in ``claims.md``); give the
config files the runs used with ``--configfile``, in Snakemake's order. ``--paired-draws`` adds, per run, the
difference paired over its 10 z-draws (the evaluation draws every method at the same codes), recomputed from the
run's ``generate/`` diagrams and checked against its ``metrics.json``. Prints the markdown; ``--out`` and
``--markdown`` write the JSON and the markdown.

    python tools/seeds_summary.py runs/seed*/results/synthetic --configfile config.yaml seeds.yaml \\
        --out seeds.json --markdown seeds.md
"""

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from toposdf.claims import claim_pairs
from toposdf.config import ConfigError, load_config_file
from toposdf.seeds import seeds_summary, unlisted_pairs

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="finished runs' results/<dataset> folders")
    parser.add_argument("--configfile", type=Path, nargs="+", default=[ROOT / "config.yaml"],
                        help="the config files the runs used, merged in order (default: the project's config.yaml)")
    parser.add_argument("--methods", nargs="+", default=None, help="only these methods' pairs (default: every pair)")
    parser.add_argument("--confidence", type=float, default=0.95, help="of the interval over the runs (default 0.95)")
    parser.add_argument("--paired-draws", action="store_true",
                        help="also the difference paired over each run's z-draws (recomputes PD-LAP from the runs' "
                             "generate/ and diagrams/ folders; a few seconds a method)")
    parser.add_argument("--processes", type=int, default=1, help="for --paired-draws' PD-LAP (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output")
    parser.add_argument("--markdown", type=Path, default=None, help="markdown output")
    args = parser.parse_args(argv)
    try:
        cfg = load_config_file(*args.configfile)
    except (ConfigError, OSError) as err:
        sys.exit(f"--configfile: {err}")
    pairs = claim_pairs({name: asdict(block) for name, block in cfg.methods.items()})
    for run, missing in ([] if args.methods else unlisted_pairs(args.runs, pairs).items()):
        print(f"warning: {run} checked {', '.join(f'{m} against {b}' for m, b in missing)}, which the config "
              f"({' '.join(map(str, args.configfile))}) does not pair; they are left out. Give --configfile the "
              "config files the runs used.", file=sys.stderr)
    if args.methods:
        pairs = {m: b for m, b in pairs.items() if m in args.methods}
    try:
        _, text = seeds_summary(args.runs, pairs, cfg.evaluation.pd_lap_scale, args.confidence, args.out,
                                args.markdown, args.paired_draws, args.processes)
    except ValueError as err:
        sys.exit(str(err))
    print(text)


if __name__ == "__main__":
    main()
