"""Where a run departs from a reference run, and by how much (``toposdf.compare``).

Runs are exact within one kind of CPU, so on the reference's kind ``diff -r`` of the tables says all; on another
kind, or after a change to the code, this says where the two runs part: the first stage, log row or key that
differs (job times, paths and commits left out), each table cell's difference in the reference's standard
deviations, and the paper's claims that hold in one run and not in the other. Give two ``results/<dataset>``
folders (a reference's ``synthetic/`` folder is one). Exit status 0 when identical, 1 when they differ, 2 on a
missing folder.

    python tools/compare_runs.py results/synthetic results/reference/cpu_default/seed0/synthetic
    python tools/compare_runs.py results/synthetic results/reference/cpu_default/seed0/synthetic --out compare.json
"""

import argparse
import json
import sys
from pathlib import Path

from toposdf.compare import compare_runs, comparison_markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished run's results/<dataset> folder")
    parser.add_argument("reference", type=Path, help="the run to compare with, e.g. a reference's synthetic/ folder")
    parser.add_argument("--limit", type=int, default=12, help="rows per list in the Markdown (default 12)")
    parser.add_argument("--out", type=Path, default=None, help="also write every comparison as JSON")
    args = parser.parse_args(argv)
    try:
        comparison = compare_runs(args.run, args.reference)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    print(comparison_markdown(comparison, args.limit), end="")
    if args.out:
        args.out.write_text(json.dumps(comparison.to_dict(), indent=1, default=str) + "\n")
    return 0 if comparison.identical else 1


if __name__ == "__main__":
    sys.exit(main())
