"""The killed training attempts a run keeps aside, and removing them.

A training job rerun after an input was made again or a setting changed moves a killed attempt's working files
into a ``.<output>.stale-<n>`` folder beside its output and starts over (docs/pipeline.md): nothing is deleted, so
that changing the setting back resumes the attempt. This lists those folders under a results folder, with their
size, age and what they were made from that the output's current record is not (``setting: kept -> current``, and
the input files made again since); ``--remove`` deletes them.

    python tools/kept_attempts.py results/synthetic
    python tools/kept_attempts.py results/synthetic --remove
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

from toposdf.checkpoints import kept_attempts


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="a results folder, e.g. results/synthetic")
    parser.add_argument("--remove", action="store_true", help="delete every kept attempt listed")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"{args.root}: no such folder", file=sys.stderr)
        return 2
    kept = kept_attempts(args.root)
    for attempt in kept:
        days = (time.time() - attempt["mtime"]) / 86400
        changed = attempt["changed"]
        why = "no current record to compare" if changed is None else ", ".join(changed[:6]) or "nothing (same sources)"
        print(f"{attempt['path']}  {_size(attempt['bytes'])}, {days:.1f} days old; made from other: {why}")
        if args.remove:
            shutil.rmtree(attempt["path"])
    total = sum(attempt["bytes"] for attempt in kept)
    verb = "removed" if args.remove else "kept"
    print(f"{len(kept)} attempt(s) {verb} under {args.root}, {_size(total)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
