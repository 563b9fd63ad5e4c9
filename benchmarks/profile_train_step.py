"""Where stage 2's network step spends its time: torch.profiler over a few theta steps of the
plain step (``deepsdf_se_vad``) and of the topological one (``ours_deepsdf_se``, narrow band), built exactly as
``bench_train_step.py`` builds them (the same ``JointTrainer`` code as training).

Writes ``benchmarks/results/profile_train_step_{cpu,gpu}.json``: per variant, the operators by self time (CPU,
and CUDA on a GPU) with their share of the profiled time, and the share of the step's named phases
(``record_function`` ranges: data term, regularizer, consistency term, backward, optimizer). With ``--trace``,
also a Chrome trace per variant (``*.trace.json.gz``; open it in https://ui.perfetto.dev).

Sizes as in ``bench_train_step.py``: the default config's stage 2 (read from ``config.yaml``), or ``--full``.
A profile's absolute times are inflated by the profiler; read the shares, and time with ``bench_train_step.py``.
"""

import argparse
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import bench_train_step as bench
import numpy as np
import torch
from _common import RESULTS, table, write
from torch.profiler import ProfilerActivity, profile

from toposdf.checkpoints import cpu_threads, pick_device

PROFILED = {"plain": ("none", False), "topological": ("learned", True)}


def top_operators(prof, device: torch.device, n: int) -> list[dict]:
    """The ``n`` operators with the most self time (CUDA self time on a GPU), with their share of the total."""
    events = prof.key_averages()
    cuda = device.type == "cuda"
    self_time = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    total = sum(self_time(e) for e in events) or 1.0
    rows = sorted(events, key=self_time, reverse=True)[:n]
    return [{"name": e.key, "calls": e.count, "self_ms": self_time(e) / 1e3, "share": self_time(e) / total,
             "cpu_total_ms": e.cpu_time_total / 1e3} for e in rows]


def phases(prof) -> dict[str, float]:
    """The step's named phases (``record_function`` ranges of the trainer; ``toposdf::*``), in ms per profile."""
    return {e.key: e.cpu_time_total / 1e3 for e in prof.key_averages() if e.key.startswith("toposdf::")}


def profile_variant(trainer, steps: int, device: torch.device, trace: Path | None) -> dict:
    """Profile one theta epoch of ``trainer`` (``steps`` steps) after a warm-up epoch."""
    trainer._theta_epoch()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=False) as prof:
        trainer._theta_epoch()
        if device.type == "cuda":
            torch.cuda.synchronize()
    if trace is not None:
        raw = trace.with_suffix("")  # .trace.json
        prof.export_chrome_trace(str(raw))
        with open(raw, "rb") as src, gzip.open(trace, "wb") as dst:
            shutil.copyfileobj(src, dst)
        raw.unlink()
    return {"operators": top_operators(prof, device, 25), "phases_ms": phases(prof), "steps": steps}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the sizes of presets/shapenet.yaml (for a GPU)")
    parser.add_argument("--steps", type=int, default=4, help="profiled steps (one epoch of spheres)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--trace", action="store_true", help="also write a Chrome trace per variant")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    scale = bench.config_scale(preset=bench.FULL_PRESET if args.full else None)
    device = pick_device(args.device)
    cpus = len(os.sched_getaffinity(0))
    cpu_threads(cpus)
    sizes = bench.epoch_sizes(scale, args.steps)
    data = bench.sphere_data(np.random.default_rng(0), sizes["shapes"], scale["points"])
    name = "profile_train_step_gpu" if device.type == "cuda" else "profile_train_step_cpu"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant, (topology, band) in PROFILED.items():
            trainer = bench.build(topology, band, scale, data, sizes["steps"], max(1, cpus - 1), device, Path(tmp),
                                  None)
            try:
                folder = args.out.parent if args.out else RESULTS  # the traces go beside the JSON
                trace = folder / f"{name}_{variant}.trace.json.gz" if args.trace else None
                results[variant] = profile_variant(trainer, sizes["steps"], device, trace)
            finally:
                trainer.close()
    for variant, result in results.items():
        print(f"\n{variant}: the operators with the most self time over {result['steps']} steps")
        table([[op["name"][:60], op["calls"], f"{op['self_ms']:.1f}", f"{op['share']:.0%}"]
               for op in result["operators"][:12]], ["operator", "calls", "self ms", "share"])
        if result["phases_ms"]:
            print("phases (ms): " + ", ".join(f"{k.removeprefix('toposdf::')} {v:.0f}" for k, v in sorted(result["phases_ms"].items())))
    write(name, {"scale": "full" if args.full else "cpu", "sizes": scale | sizes, "device": str(device),
                 "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                 "variants": results,
                 "notes": "self time per operator under torch.profiler (inflated by it: read shares, time with "
                          "bench_train_step.py); phases are the trainer's record_function ranges"},
          args.out, quick=False)


if __name__ == "__main__":
    main()
