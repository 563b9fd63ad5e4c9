"""Issue 14, item 1: candidates for a faster plain step, measured against the step as trained.

The plain step of ``deepsdf_se_vad`` (``JointTrainer``'s theta epoch, as ``bench_train_step`` builds it, at the
default config's sizes on spheres) is timed:

- as trained;
- with the weight-norm parametrization computed once per step (``torch.nn.utils.parametrize.cached``) instead of
  once per decoder call;
- with ``torch.compile`` on the decoder (eq. 5's gradient penalties need a double backward).

and the decoder's forward without autograd (the synthetic grid's work) in float32 and under bfloat16 autocast,
with the largest difference of the values. Medians of ``--repeats`` epochs; the variants take turns.
"""

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import parametrize

from _common import table, write
from bench_train_step import SCALES, build, epoch_sizes, sphere_data


def cached_weights(step):
    """``step`` with the decoder's weight-norm parametrization evaluated once for the whole step."""
    def run(*args):
        with parametrize.cached():
            return step(*args)
    return run


def time_epochs(trainers: dict, steps: int, repeats: int) -> dict[str, float]:
    """Median milliseconds per step of each trainer's theta epoch, after a warm-up epoch each."""
    for trainer in trainers.values():
        trainer._theta_epoch()
    runs = {name: [] for name in trainers}
    for _ in range(repeats):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            trainer._theta_epoch()
            runs[name].append((time.perf_counter() - start) / steps * 1e3)
    return {name: statistics.median(values) for name, values in runs.items()}


def forward_precision(decoder: torch.nn.Module, latent: int, points: int, repeats: int) -> dict:
    """The decoder's forward on ``points`` points without autograd, float32 against bfloat16 autocast."""
    z, x = torch.randn(1, latent), torch.rand(1, points, 3) * 2 - 1
    out = {}
    for name, context in (("float32", contextlib.nullcontext), ("bfloat16_autocast",
                                                                 lambda: torch.autocast("cpu", dtype=torch.bfloat16))):
        with torch.no_grad(), context():
            values = decoder(z, x).float()
            start = time.perf_counter()
            for _ in range(repeats):
                decoder(z, x)
        out[name] = {"ms": (time.perf_counter() - start) / repeats * 1e3, "values": values}
    error = (out["float32"]["values"] - out["bfloat16_autocast"]["values"]).abs().max().item()
    return {"points": points, "float32_ms": out["float32"]["ms"], "bfloat16_autocast_ms": out["bfloat16_autocast"]["ms"],
            "max_abs_difference": error}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    scale = SCALES["cpu"]
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    data = sphere_data(np.random.default_rng(0), epoch_sizes(scale, args.steps)["shapes"], scale["points"])
    with tempfile.TemporaryDirectory() as tmp:
        def plain(seed: int = 0):
            return build("none", False, scale, data, args.steps, 1, torch.device("cpu"), Path(tmp), None, seed=seed)

        trainers = {"as trained": plain(), "weight norm once per step": plain(1)}
        trainers["weight norm once per step"]._theta_step = cached_weights(trainers["weight norm once per step"]._theta_step)
        ms = time_epochs(trainers, args.steps, args.repeats)
        compiled = plain(2)
        compiled.decoder = torch.compile(compiled.decoder)
        try:
            ms |= time_epochs({"torch.compile(decoder)": compiled}, args.steps, args.repeats)
            compile_error = None
        except Exception as error:  # noqa: BLE001 - recorded, not hidden: the candidate does not run
            compile_error = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        precision = forward_precision(trainers["as trained"].decoder, scale["latent"], 16384, args.repeats)
        for trainer in trainers.values():
            trainer.close()
        compiled.close()
    rows = [[name, f"{value:.1f}", f"{value / ms['as trained']:.2f}"] for name, value in ms.items()]
    if compile_error:
        rows.append(["torch.compile(decoder)", "fails", compile_error[:60]])
    table(rows, ["plain step", "ms", "ratio"])
    print(f"decoder forward of {precision['points']} points without autograd: float32 {precision['float32_ms']:.1f} ms, "
          f"bfloat16 autocast {precision['bfloat16_autocast_ms']:.1f} ms, max |difference| "
          f"{precision['max_abs_difference']:.1e}")
    write("plain_step_candidates_cpu", {"sizes": scale, "steps": args.steps, "repeats": args.repeats, "plain_ms": ms,
                                         "torch_compile_error": compile_error, "forward_precision": precision},
          args.out, quick=False)


if __name__ == "__main__":
    main()
