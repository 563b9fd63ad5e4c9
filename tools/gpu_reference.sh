#!/usr/bin/env bash
# The GPU reference run (presets/gpu_reference.yaml) and the GPU step benchmark, on one machine with
# an NVIDIA GPU, in steps that each fit a 10-minute window:
#   tools/gpu_reference.sh start [OUT]   first the step benchmark at full sizes on spheres (the GPU timing,
#                                        train_step_gpu.json: it replaces benchmarks/results/train_step_gpu.json as
#                                        written), then CUDA tests of the trainers, preprocessing, the step benchmark
#                                        on the preprocessed chairs (train_step_gpu_chair.json), then the rest of the
#                                        workflow in the background
#   tools/gpu_reference.sh wait SECONDS [OUT]   follow the background run; when it ends, time the step again
#                                        from the trained stage-1 chair network, and pack the results
#   tools/gpu_reference.sh pack [OUT]    pack what exists now (tables, figures, metrics, curves, logs)
# OUT (default: ./gpu_reference_out) receives the benchmarks' JSON (written by the script, never transcribed),
# the logs and results.tar.gz.
# Environment: WHEELS (a folder of wheels to install first, for a machine without a package index),
# EXTRA_CONFIG (another --configfile on top of the preset: a local rehearsal at small sizes), TEST_DEVICE (the
# trainers' tests, default cuda), BENCH_SCALE (default --full; empty: the benchmark's CPU sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
step=${1:-}
case $step in
    start|wait|pack) ;;
    -h|--help|help) usage; exit 0 ;;
    *) echo "error: unknown step '$step'; the steps are start, wait SECONDS and pack" >&2; usage >&2; exit 2 ;;
esac
if [[ $step == wait ]]; then
    seconds=${2:?wait needs SECONDS}
    out=${3:-gpu_reference_out}
else
    out=${2:-gpu_reference_out}
fi
mkdir -p "$out"
preset=presets/gpu_reference.yaml
dataset=$(python3 -c "import yaml, sys; print(yaml.safe_load(open(sys.argv[1]))['dataset']['name'])" "$preset")
configs=(--configfile "$preset")
if [[ -n ${EXTRA_CONFIG:-} ]]; then
    configs+=("$EXTRA_CONFIG")
    dataset=$(python3 -c "import yaml, sys; print(yaml.safe_load(open(sys.argv[1]))['dataset']['name'])" "$EXTRA_CONFIG")
fi
cores=$(nproc)
log=results/$dataset.run.log

if [[ -n ${WHEELS:-} && ! -d /tmp/site ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$WHEELS"/*.whl
fi
if [[ -d /tmp/site ]]; then
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/site/bin:$PATH
fi
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=20 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True

workflow() {
    python3 -m snakemake --cores "$cores" "${configs[@]}" --resources gpu=6 \
        --set-threads pretrain_implicit=2 joint_train=3 generate=2 reconstruct=2 --rerun-incomplete --keep-going "$@"
}

pack() {
    local root=results/$dataset
    [[ -d $root ]] || return 0
    # the reference's contents: everything a reader looks at, and the provenance; not the checkpoints
    find "$root" \( -path "$root/tables/*" -o -path "$root/figures/*" -o -name 'metrics.json' \
        -o -name 'reconstruction.csv' -o -name '*_log.csv' -o -name 'fig3_pd_matrices.json' \
        -o -path "$root/*/figures/*" -o -path "$root/benchmarks/*" -o -path "$root/logs/*" -o -path "$root/study_1d/*" \
        -o -name 'split.json' -o -name 'manifest.csv' \) -type f -print0 |
        tar --null -czf "$out/results.tar.gz" --files-from - "$log" 2>/dev/null || true
    ls -la "$out"
}

case $step in
start)
    { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"; } | tee "$out/gpu.txt"
    python3 -c "import torch, snakemake, gudhi, cripser; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    # the step's timing first, on an idle machine and before anything else can use up the window: the plain and
    # the topological step at full sizes on spheres (needs no preprocessing); the script writes the JSON itself
    python3 benchmarks/bench_train_step.py ${BENCH_SCALE---full} --steps 5 --out "$out/train_step_gpu.json" \
        2>&1 | tee "$out/train_step_gpu.txt" || echo "the step benchmark failed: see $out/train_step_gpu.txt"
    # where the step's time goes: torch.profiler over a few plain and topological steps, with Chrome traces
    python3 benchmarks/profile_train_step.py ${BENCH_SCALE---full} --trace --out "$out/profile_train_step_gpu.json" \
        2>&1 | tail -n 40 | tee "$out/profile_train_step_gpu.txt" || echo "the profile failed"
    # the fast topological step trains like the reference one (200 steps of the tiny preset, within seed noise)
    python3 benchmarks/loss_curve.py --device ${TEST_DEVICE:-cuda} --out "$out/loss_curve_gpu.json" 2>&1 | tail -n 8 \
        | tee "$out/loss_curve_gpu.txt" || echo "the loss-curve check failed"
    # preprocessing on every core while the trainers' tests run on the GPU
    workflow --until sample_sdf persistence > "$out/preprocess.log" 2>&1 &
    prep=$!
    TOPOSDF_TEST_DEVICE=${TEST_DEVICE:-cuda} python3 -m pytest -q -p no:cacheprovider tests/test_training.py tests/test_losses.py \
        2>&1 | tail -n 12 | tee "$out/cuda_tests.txt" || true
    wait $prep || { tail -n 40 "$out/preprocess.log"; exit 1; }
    tail -n 3 "$out/preprocess.log"
    # the step on real data: one epoch of the plain and of the topological step on the preprocessed chairs
    python3 benchmarks/bench_train_step.py ${BENCH_SCALE---full} --data "results/$dataset/chair" \
        --out "$out/train_step_gpu_chair.json" 2>&1 | tee "$out/train_step_gpu_chair.txt"
    # the rest of the workflow, detached so that it outlives this command
    setsid bash -c "$(declare -f workflow); $(declare -p configs cores); workflow > '$log' 2>&1; echo \$? > '$log.rc'" \
        < /dev/null > /dev/null 2>&1 &
    sleep 5
    tail -n 5 "$log"
    ;;
wait)
    end=$((SECONDS + seconds))
    while [[ ! -f $log.rc && $SECONDS -lt $end ]]; do
        sleep 20
        grep -E '^[0-9]+ of [0-9]+ steps' "$log" | tail -n 1 || true
    done
    if [[ -f $log.rc ]]; then
        echo "workflow finished with exit status $(cat "$log.rc")"
        tail -n 30 "$log"
        # the step benchmark again, from the trained stage-1 chair network (as stage 2 starts in the workflow)
        checkpoint=results/$dataset/chair/train/stage1/steik/implicit.pt
        if [[ -f $checkpoint && ! -f $out/train_step_gpu_trained.json ]]; then
            python3 benchmarks/bench_train_step.py ${BENCH_SCALE---full} --data "results/$dataset/chair" \
                --checkpoint "$checkpoint" --out "$out/train_step_gpu_trained.json" 2>&1 |
                tee "$out/train_step_gpu_trained.txt" || true
        fi
        pack
    else
        echo "still running"
    fi
    ;;
pack)
    pack
    ;;
*)
    echo "unknown step $step" >&2
    exit 2
    ;;
esac
