"""Stage 2's network step (eq. 13): the plain step of deepsdf_se_vad against the topological step of ours_deepsdf_se.

Both run ``JointTrainer``'s theta epoch on the same data and network; the topological step adds the consistency
loss computed the way docs/method.md, Training describes (grid without autograd, persistence and matching in a
worker pool that overlaps the step, autograd only at the critical vertices). Reported: seconds per step (the median of
``--repeats`` epochs per variant, the variants taking turns), the topological step's time per part, and peak
memory (CUDA's allocator on a GPU, with all three variants' models and optimizers resident; the process's peak RSS
on the CPU).

Sizes: ``--full`` is the GPU measurement's (8 x 512, latent 256, 64^3 grids, 64 shapes x 16,384 points per
step, 8 synthetic shapes); the default is config.yaml's stage 2 (read from it), about a minute on 2 cores.
Target: a topological step at most 1.5x the plain one.

A timed epoch is ``--steps`` full batches: on spheres the training set is ``--steps`` x batch shapes (one latent
code, one SDF sample set and one set of diagrams each; ``epoch_sizes``), so ``--full --steps 5`` trains 320
shapes. The theta step's cost does not depend on how many shapes there are (the codes are frozen in it).

By default the training shapes are spheres of random radii (exact SDF) with small random diagrams: the step's
cost hardly depends on what the shapes are, and the synthetic shapes' diagrams come from the network as in
training. ``--data results/<dataset>/<category>`` trains on a category the workflow preprocessed instead (its
training shapes' SDF samples and ground-truth diagrams), and times one whole epoch of it; with ``--checkpoint``
(that category's stage-1 ``implicit.pt``) stage 2 starts from the trained network, as in the workflow. Without
one, the network starts from IGR's geometric initialization (a sphere), as the default config's does.

The topological step is measured twice: with the synthetic shapes' grid evaluated only near the zero level set
(``narrow_band``, the default) and on every vertex.
"""

import argparse
import os
import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from _common import table, write
from toposdf.checkpoints import build_decoder_and_codes, load_checkpoint, pick_device
from toposdf.config import Config, load_config_file
from toposdf.data import load_sdf_samples, load_shape_diagrams, split_ids
from toposdf.field import evaluate_grid, evaluate_grid_band
from toposdf.models import DecoderConfig, LatentCodes, LatentConfig, PDGenerators, SDFDecoder
from toposdf.topology import cubical_diagrams_with_critical
from toposdf.training import JointTrainConfig, JointTrainer, generator_sizes, joint_train_config

ROOT = Path(__file__).resolve().parents[1]


def config_scale(path: Path = ROOT / "config.yaml", preset: Path | None = None) -> dict:
    """The default config's stage 2 (CPU-sized), read from ``config.yaml`` so that the benchmark follows it; with
    ``preset``, that preset's (e.g. ``presets/tiny.yaml``) merged on top."""
    c = load_config_file(path, *([preset] if preset is not None else []))
    joint, implicit = c.train.joint, c.train.implicit
    return dict(batch=joint.batch_shapes, points=joint.points_per_shape, hidden=c.model.hidden,
                layers=c.model.n_layers, latent=c.model.latent_size, grid=c.grid.resolution,
                synthetic=joint.synthetic_shapes, max_points=c.train.pdgen.max_points,
                # eq. 5 in stage 2 as in stage 1 (train.implicit)
                regularizer_shapes=implicit.regularizer_shapes, regularizer_points=implicit.regularizer_points)


SCALES = {
    # batch, points, network (hidden, layers, latent), grid, synthetic shapes, max PD points; the number of training
    # shapes follows from --steps (epoch_sizes)
    "cpu": config_scale(),
    "full": dict(batch=64, points=16384, hidden=512, layers=8, latent=256, grid=64, synthetic=8, max_points=64),
}
TAU = 0.1  # persistence.tau of every config: the SDF clamp, the synthetic grids' range and the PD generators'
# The schema's defaults (the required keys aside): stage 2's settings other than the scale's
SCHEMA_DEFAULTS = {"dataset": {"kind": "synthetic", "categories": ["chair"], "shapes_per_category": 2}, "sdf": {},
                   "grid": {}, "persistence": {}, "shards": 1}


def epoch_sizes(scale: dict, steps: int, data_shapes: int | None = None) -> dict[str, int]:
    """The timed epoch's ``steps`` and ``shapes`` (training shapes: latent codes = SDF sample sets = diagrams).

    On spheres (``data_shapes`` None) the epoch is ``steps`` full batches of ``scale["batch"]`` shapes, and there
    are exactly that many training shapes: ``JointTrainer`` takes one code per sample set and its theta epoch covers
    every shape, so a larger training set would make the epoch longer than ``steps``. On a category's
    ``data_shapes`` training shapes the epoch is all of them, ``ceil(data_shapes / batch)`` steps (the last batch
    possibly partial), whatever ``steps`` says.
    """
    batch = scale["batch"]
    if data_shapes is not None:
        if data_shapes < 1:
            raise ValueError("the category has no training shapes")
        return {"steps": -(-data_shapes // batch), "shapes": data_shapes}
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    return {"steps": steps, "shapes": steps * batch}


def sphere_data(rng: np.random.Generator, shapes: int, points: int):
    """SDF samples of spheres (half near the surface, half uniform) and small random diagrams per shape."""
    radius = rng.uniform(0.3, 0.7, (shapes, 1))
    direction = rng.normal(size=(shapes, points, 3))
    direction /= np.linalg.norm(direction, axis=2, keepdims=True)
    near = direction * (radius[:, :, None] + rng.normal(0, 0.05, (shapes, points, 1)))
    xyz = np.where(np.arange(points)[None, :, None] < points // 2, near, rng.uniform(-1, 1, (shapes, points, 3)))
    sdf = np.linalg.norm(xyz, axis=2) - radius

    def diagram(k: int, lo: float) -> np.ndarray:
        birth = rng.uniform(lo, 0.0, k)
        return np.stack([birth, birth + rng.uniform(0.02, 0.1, k)], axis=1)

    diagrams = [[diagram(int(rng.integers(1, 6)), -0.1), diagram(int(rng.integers(0, 4)), -0.05),
                 diagram(int(rng.integers(0, 3)), -0.05)] for _ in range(shapes)]
    return xyz.astype(np.float32), sdf.astype(np.float32), diagrams


def category_data(folder: Path):
    """The training shapes of a category the workflow preprocessed: SDF samples and ground-truth diagrams."""
    shards = sorted((folder / "sdf").glob("*.npz"))
    if not shards:
        raise SystemExit(f"no SDF shards in {folder / 'sdf'}: run the workflow's preprocessing first")
    ids, xyz, sdf = load_sdf_samples(shards, split_ids(folder / "split.json", "train"), at_least_one=True)
    diagrams = list(load_shape_diagrams(sorted((folder / "diagrams").glob("*.npz")), ids).values())
    return xyz, sdf, diagrams


def checkpoint_latent(checkpoint: dict) -> dict:
    """The latent config of a stage-1 checkpoint: its ``latent`` entry; a checkpoint written before there was one
    (its codes the variational auto-decoder's, with a log-variance) gets per-code VAD codes so that its state loads,
    and otherwise the default (the set-level prior on deterministic codes)."""
    if "latent" in checkpoint:
        return dict(checkpoint["latent"])
    if "logvar" in checkpoint.get("codes", {}):
        return {"prior": "per_code", "variational": True}
    return {}


def network(scale: dict, n_shapes: int, checkpoint: dict | None) -> tuple[SDFDecoder, LatentCodes]:
    """The stage-1 network and codes of ``checkpoint``, or a geometrically initialized one of the scale's size with
    the default config's codes (set-level prior, deterministic, started on N(0, I))."""
    if checkpoint is not None:
        return build_decoder_and_codes(checkpoint["model"], checkpoint_latent(checkpoint), checkpoint, n_shapes)
    torch.manual_seed(0)
    decoder = SDFDecoder(DecoderConfig(latent_size=scale["latent"], hidden=scale["hidden"], n_layers=scale["layers"],
                                       geometric_init=True))
    return decoder, LatentCodes(n_shapes, scale["latent"], LatentConfig())


VARIANTS = {  # name: (topology, narrow_band)
    "plain": ("none", False),
    "full_grid": ("learned", False),
    "narrow_band": ("learned", True),
}


def stage2_config(topology: str, narrow_band: bool, scale: dict, workers: int, seed: int = 0) -> JointTrainConfig:
    """Stage 2's settings of ``ours_deepsdf_se`` (``topology="learned"``) or ``deepsdf_se_vad`` (``"none"``) with
    the schema's defaults, at the scale's sizes."""
    method = "ours_deepsdf_se" if topology == "learned" else "deepsdf_se_vad"
    cfg = joint_train_config(Config.from_dict(SCHEMA_DEFAULTS), method)
    cfg = replace(cfg, batch_shapes=scale["batch"], points_per_shape=scale["points"], lambda_steik=0.01,
                  topology=topology, synthetic_shapes=scale["synthetic"], grid_resolution=scale["grid"], tau=TAU,
                  workers=workers, narrow_band=narrow_band, seed=seed)
    if "regularizer_shapes" in scale:  # the CPU scale's (config.yaml); --full keeps the schema's 4 x 1024
        cfg = replace(cfg, regularizer_shapes=scale["regularizer_shapes"], regularizer_points=scale["regularizer_points"])
    return cfg


def build(topology: str, narrow_band: bool, scale: dict, data, steps: int, workers: int, device: torch.device,
          workdir: Path, checkpoint: dict | None, seed: int = 0) -> JointTrainer:
    """A stage-2 trainer of ``deepsdf_se_vad`` (``topology="none"``) or ``ours_deepsdf_se`` whose epoch is ``steps``
    batches: ``data`` holds the epoch's training shapes (see :func:`epoch_sizes`), one code each."""
    xyz, sdf, diagrams = data
    if not len(xyz) == len(sdf) == len(diagrams):
        raise ValueError(f"{len(xyz)} SDF point sets, {len(sdf)} SDF value sets and {len(diagrams)} diagrams")
    if -(-len(xyz) // scale["batch"]) != steps:
        raise ValueError(f"{len(xyz)} training shapes in batches of {scale['batch']} are not an epoch of {steps} "
                         f"steps (see epoch_sizes)")
    decoder, codes = network(scale, len(xyz), checkpoint)
    generators = None
    if topology == "learned":
        generators = PDGenerators(scale["latent"], generator_sizes(diagrams, scale["max_points"]), hidden=256,
                                  tau=TAU)
        generators.initialize_from(diagrams)
    cfg = stage2_config(topology, narrow_band, scale, workers, seed)
    name = f"{topology}_{narrow_band}_{seed}"
    return JointTrainer(decoder, codes, generators, xyz, sdf, diagrams, cfg, workdir / f"{name}.pt",
                        workdir / f"{name}.csv", device=device)


def measure(repeats: int, steps: int, device: torch.device, **build_args) -> dict[str, dict]:
    """Seconds per theta step of each variant: after a warm-up epoch each, ``repeats`` rounds that time one epoch
    of every variant in turn (so that a slow spell of the machine hits them alike), and the median per variant.
    Parts and peak memory come from the same epochs (medians and maxima)."""
    trainers = {name: build(topology, band, steps=steps, device=device, **build_args)
                for name, (topology, band) in VARIANTS.items()}
    epochs: dict[str, list[dict]] = {name: [] for name in trainers}
    try:
        for trainer in trainers.values():
            trainer._theta_epoch()  # warm-up: allocator, kernels, worker threads
        for _ in range(repeats):
            for name, trainer in trainers.items():
                if device.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                trainer.synthetic.seconds.clear()
                trainer.synthetic.grid_counts.clear()
                start = time.perf_counter()
                trainer._theta_epoch()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                elapsed = time.perf_counter() - start
                peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
                        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                epochs[name].append({"seconds": elapsed, "parts": dict(trainer.synthetic.seconds), "peak": peak,
                                     "evaluated": trainer.synthetic.evaluated_fraction})
        band_check = check_band(trainers["narrow_band"], build_args["scale"])
    finally:
        for trainer in trainers.values():
            trainer.close()
    results = {"band_check": band_check}
    for name, runs in epochs.items():
        per_step = [run["seconds"] / steps for run in runs]
        keys = sorted({key for run in runs for key in run["parts"]})
        result = {"seconds_per_step": statistics.median(per_step), "seconds_per_step_all": per_step,
                  "parts_per_step": {key: statistics.median(run["parts"].get(key, 0.0) / steps for run in runs)
                                     for key in keys},
                  # CUDA: the allocator's peak during the variant's epochs; CPU: the process's peak RSS so far
                  "peak_memory_mib": max(run["peak"] for run in runs)}
        if VARIANTS[name][0] != "none":
            result["grid_evaluated_fraction"] = statistics.median(run["evaluated"] for run in runs)
        results[name] = result
    return results


def check_band(trainer: JointTrainer, scale: dict, shapes: int = 4) -> dict:
    """The narrow band's diagrams against every vertex's, on the timed trainer's network and ``shapes`` synthetic
    shapes: the same pairs (values within float32 rounding, 1e-6) and the same critical vertices away from the
    clamped values. Raises when they differ: a faster step that changes the diagrams is not the same step."""
    z = torch.randn(shapes, scale["latent"], generator=torch.Generator().manual_seed(1)).to(trainer.device)
    decoder, cfg, stats = trainer.decoder, trainer.cfg, {}
    full = evaluate_grid(decoder, z, cfg.grid_resolution)
    band = evaluate_grid_band(decoder, z, cfg.grid_resolution, cfg.tau, stats=stats)
    pairs = 0
    for b in range(shapes):
        want, want_critical = cubical_diagrams_with_critical(full[b], cfg.tau, cfg.loss_min_persistence)
        got, got_critical = cubical_diagrams_with_critical(band[b], cfg.tau, cfg.loss_min_persistence)
        for k in range(3):
            if want[k].shape != got[k].shape or not np.allclose(want[k], got[k], rtol=0, atol=1e-6):
                raise SystemExit(f"narrow band: H{k} of synthetic shape {b} differs from every vertex's")
            inner = (want[k][:, 0] > -cfg.tau) & (want[k][:, 1] < cfg.tau)
            if not np.array_equal(want_critical[k][inner], got_critical[k][inner]):
                raise SystemExit(f"narrow band: H{k} critical vertices of synthetic shape {b} differ")
            pairs += len(want[k])
    print(f"check: narrow-band diagrams equal every vertex's ({shapes} synthetic shapes, {pairs} pairs, "
          f"{stats['evaluated'] / stats['vertices']:.0%} of the grid evaluated)")
    return {"shapes": shapes, "pairs": pairs, "equal": True}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the full sizes of SCALES (for a GPU)")
    parser.add_argument("--steps", type=int, default=4,
                        help="steps per timed epoch; on spheres the training set is steps x batch shapes")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per variant (the median is reported)")
    parser.add_argument("--workers", type=int, default=None, help="persistence threads (default: CPUs - 1)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--data", type=Path, default=None,
                        help="a preprocessed category, results/<dataset>/<category>: time one epoch of it")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="the --data category's stage-1 implicit.pt: start from the trained network")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    scale_name = "full" if args.full else "cpu"
    scale = SCALES[scale_name]
    cpus = len(os.sched_getaffinity(0))
    workers = args.workers or max(1, cpus - 1)
    device = pick_device(args.device)
    torch.set_num_threads(cpus)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.checkpoint is not None and args.data is None:
        parser.error("--checkpoint needs --data, the category it was trained on")
    if args.data is None:
        sizes = epoch_sizes(scale, args.steps)
        data = sphere_data(np.random.default_rng(0), sizes["shapes"], scale["points"])
    else:
        data = category_data(args.data)
        sizes = epoch_sizes(scale, args.steps, len(data[0]))  # one epoch of the category
    scale = scale | {"shapes": sizes["shapes"]}
    args.steps = sizes["steps"]
    checkpoint = None
    if args.checkpoint is not None:
        checkpoint = load_checkpoint(args.checkpoint)
        model = checkpoint["model"]
        scale = scale | {"hidden": model["hidden"], "layers": model["n_layers"], "latent": model["latent_size"]}
        if len(checkpoint["codes"]["mu"]) != len(data[0]):
            raise SystemExit(f"{args.checkpoint} has {len(checkpoint['codes']['mu'])} codes, {args.data} "
                             f"{len(data[0])} training shapes: pass the checkpoint of that category")
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(args.repeats, args.steps, device, scale=scale, data=data, workers=workers,
                          workdir=Path(tmp), checkpoint=checkpoint)
    report(results, args, scale_name, scale, device, workers)


def report(results: dict[str, dict], args: argparse.Namespace, scale_name: str, scale: dict, device: torch.device,
           workers: int) -> None:
    """Print the table and the topological step's parts, and write the JSON (``train_step_{gpu,cpu}``)."""
    plain, full_grid, topo = results["plain"], results["full_grid"], results["narrow_band"]
    band_check = results.get("band_check")
    ratio = topo["seconds_per_step"] / plain["seconds_per_step"]
    ratio_full_grid = full_grid["seconds_per_step"] / plain["seconds_per_step"]
    parts = topo["parts_per_step"]
    # The step's own time in the topological parts: the wait for workers (persistence not hidden by the
    # overlap), the grid evaluation, and the forward at the critical vertices; the rest is the plain step's work
    # and the backward through the extra terms. Persistence and assignment are worker time (overlapped).
    step = topo["seconds_per_step"]
    shares = {key: parts.get(key, 0.0) / step for key in ("wait", "grid", "critical_forward")}
    shares["rest_of_step"] = 1.0 - sum(shares.values())
    table([["deepsdf_se_vad (plain)", f"{plain['seconds_per_step'] * 1e3:.0f}", f"{plain['peak_memory_mib']:.0f}"],
           ["ours_deepsdf_se (topological, every grid vertex)", f"{full_grid['seconds_per_step'] * 1e3:.0f}",
            f"{full_grid['peak_memory_mib']:.0f}"],
           ["ours_deepsdf_se (topological, narrow band)", f"{step * 1e3:.0f}", f"{topo['peak_memory_mib']:.0f}"]],
          ["theta step", "ms", "peak MiB"])
    print(f"ratio topological / plain: {ratio:.2f} with the narrow band ({topo['grid_evaluated_fraction']:.0%} of "
          f"the grid evaluated), {ratio_full_grid:.2f} on every vertex (target <= 1.5)")
    print("topological step per part (ms): " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in sorted(parts.items())))
    print("share of the topological step: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    name = "train_step_gpu" if device.type == "cuda" else "train_step_cpu"
    write(name, {"scale": scale_name, "sizes": scale, "data": str(args.data or "spheres"),
                 "network": str(args.checkpoint or "geometric initialization"), "device": str(device),
                 "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                 "workers": workers, "steps": args.steps, "repeats": args.repeats, "plain": plain, "topological": topo,
                 "ratio": ratio,
                 "topological_full_grid": full_grid, "ratio_full_grid": ratio_full_grid,
                 "share_of_topological_step": shares, "narrow_band_diagrams_equal_every_vertex": band_check,
                 "notes": "persistence and assignment are worker seconds per step (they overlap the step); "
                          "wait is the part of them the step did not hide",
                 "target": {"description": "topological step <= 1.5x plain step", "met": bool(ratio <= 1.5)}},
          args.out, quick=False)


if __name__ == "__main__":
    main()
