#!/usr/bin/env bash
# Run every benchmark (add --quick for a smoke run); JSON goes to benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")"
for b in bench_persistence bench_pd_distance bench_pd_lap bench_sdf; do
    echo "== $b"
    python "$b.py" "$@"
done
