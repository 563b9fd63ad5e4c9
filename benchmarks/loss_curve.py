"""An honesty check: the fast topological step trains like the reference step, within noise.

Three runs of ``JointTrainer``'s theta block (``ours_deepsdf_se``, the code training runs) for ``--steps`` steps on the
same spheres and the same starting network (see ``bench_train_step``), sized by a preset merged on ``config.yaml``
(default ``presets/tiny.yaml``):

- **fast**: what training does, the synthetic grids evaluated in the narrow band and their persistence computed on
  the box of the vertices below tau;
- **reference**: every grid vertex evaluated and persistence on the whole grid, with the same seed;
- **noise**: the reference with another seed (other batches and other synthetic shapes): how far two equally
  valid runs drift apart.

Both fast paths give the reference's diagrams (exactly, up to float32 rounding of the network's values, which
depends on how many points go into one forward call), so the two curves start equal and may drift apart later,
as chaotic training does. The check: the curves' moving averages (``--window`` steps) differ by at most as much as
the reference's and the noise run's do, for the loss and the consistency term. The JSON holds the three curves.
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from _common import table, write
from bench_train_step import ROOT, build, config_scale, epoch_sizes, sphere_data
from toposdf.checkpoints import cpu_threads, pick_device

TERMS = ("loss", "consistency")


def run(fast: bool, seed: int, steps: int, scale: dict, workers: int, device: torch.device,
        workdir: Path) -> dict[str, list[float]]:
    """Per-step terms of ``steps`` theta steps (one epoch, pipelined as in training)."""
    data = sphere_data(np.random.default_rng(0), epoch_sizes(scale, steps)["shapes"], scale["points"])
    trainer = build("learned", fast, scale, data, steps, workers, device, workdir, None, seed=seed)
    rows = []
    step = trainer._theta_step

    def record(batch, synthetic):
        rows.append(step(batch, synthetic))
        return rows[-1]

    trainer._theta_step = record
    trainer.synthetic.crop = fast  # the reference filters the whole grid (build's narrow_band=fast evaluates it)
    try:
        trainer._theta_epoch()
    finally:
        trainer.close()
    return {term: [float(row[term]) for row in rows] for term in TERMS}


def moving_average(values: list[float], window: int) -> np.ndarray:
    values = np.asarray(values, np.float64)
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--window", type=int, default=20, help="moving-average window of the comparison")
    parser.add_argument("--preset", type=Path, default=ROOT / "presets" / "tiny.yaml",
                        help="sizes: this preset merged on config.yaml (none: config.yaml's)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    scale = config_scale(preset=args.preset if str(args.preset) != "none" else None)
    workers = max(1, len(os.sched_getaffinity(0)) - 1)
    cpu_threads(len(os.sched_getaffinity(0)))
    with tempfile.TemporaryDirectory() as tmp:
        curves = {name: run(fast, seed, args.steps, scale, workers, device, Path(tmp))
                  for name, (fast, seed) in {"fast": (True, 0), "reference": (False, 0), "noise": (False, 1)}.items()}
    result, rows = {}, []
    for term in TERMS:
        fast, ref, noise = (moving_average(curves[name][term], args.window) for name in ("fast", "reference", "noise"))
        drift, spread = float(np.abs(fast - ref).max()), float(np.abs(noise - ref).max())
        identical = int(np.argmax(np.asarray(curves["fast"][term]) != np.asarray(curves["reference"][term])))
        if np.array_equal(curves["fast"][term], curves["reference"][term]):
            identical = args.steps
        result[term] = {"max_moving_average_difference_fast": drift, "max_moving_average_difference_noise": spread,
                        "steps_bit_identical": identical, "within_noise": drift <= spread}
        rows.append([term, identical, f"{drift:.3g}", f"{spread:.3g}", "yes" if drift <= spread else "NO"])
    table(rows, ["term", "identical steps", "fast - reference", "noise - reference", "within noise"])
    within = all(r["within_noise"] for r in result.values())
    write(f"loss_curve_{device.type}", {"device": str(device), "preset": str(args.preset), "sizes": scale,
                                        "steps": args.steps, "window": args.window, "result": result,
                                        "within_noise": within, "curves": curves}, args.out, quick=False)
    if not within:
        raise SystemExit("the fast step's loss curve left the noise band of the reference")


if __name__ == "__main__":
    main()
