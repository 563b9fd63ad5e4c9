"""Stage 2's network step (eq. 13): the plain step of deepsdf_se_vad against the topological step of ours_deepsdf_se,
and both against a bare DeepSDF step of the same sizes.

Both run ``JointTrainer``'s theta epoch on the same data and network; the topological step adds the consistency
loss computed the way docs/method.md, Training describes (grid without autograd, persistence and matching in a
worker pool that overlaps the step, autograd only at the critical vertices). Reported: seconds per step (the median of
``--repeats`` epochs per variant, the variants taking turns), the topological step's time per part, and peak
memory (CUDA's allocator on a GPU, with all three variants' models and optimizers resident; the process's peak RSS
on the CPU).

Sizes come from a preset: ``--preset presets/shapenet.yaml`` (or ``--full``) is the GPU measurement's (8 x 512,
latent 256, 64^3 grids, 64 shapes x 16,384 points per step, 8 synthetic shapes, the regularizer on 8 x 16,384
points); without one, config.yaml's stage 2, about a minute on 2 cores.

The anchor is a bare DeepSDF step of the same sizes, written as one would without this project: the samples on the
device, the MLP on the batch's points, the clamped data term and the eikonal term on the same points, one Adam step
(:class:`BareDeepSDF`). Targets on one GPU: the plain step at most 1.3x the anchor, the topological step at most
1.5x the plain one, and the wait for persistence at most 5% of the topological step.

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
from toposdf.checkpoints import build_decoder_and_codes, cpu_threads, load_checkpoint, pick_device
from toposdf.config import Config, read_config_files
from toposdf.data import load_sdf_samples, load_shape_diagrams, split_ids
from toposdf.field import evaluate_grid, evaluate_grid_band
from toposdf.losses import eikonal_loss, sdf_data_loss, spatial_gradient
from toposdf.models import DecoderConfig, LatentCodes, LatentConfig, PDGenerators, SDFDecoder
from toposdf.topology import cubical_diagrams_with_critical
from toposdf.training import JointTrainConfig, JointTrainer, generator_sizes, joint_train_config

ROOT = Path(__file__).resolve().parents[1]


def config_scale(path: Path = ROOT / "config.yaml", preset: Path | None = None) -> dict:
    """Stage 2's sizes of the default config, read from ``config.yaml`` so that the benchmark follows it; with
    ``preset`` (e.g. ``presets/shapenet.yaml``), that preset's merged on top. A ShapeNet preset's dataset does not
    matter here (only sizes are read): it is validated as a synthetic one."""
    raw = read_config_files(path, *([preset] if preset is not None else []))
    if raw.get("dataset", {}).get("kind") == "shapenet":
        raw["dataset"] |= {"kind": "synthetic", "name": "bench", "root": None, "shapes_per_category": 4}
    c = Config.from_dict(raw)
    joint, implicit = c.train.joint, c.train.implicit
    return dict(batch=joint.batch_shapes, points=joint.points_per_shape, hidden=c.model.hidden,
                layers=c.model.n_layers, latent=c.model.latent_size,
                grid=joint.grid_resolution or c.grid.resolution,
                synthetic=joint.synthetic_shapes, max_points=c.train.pdgen.max_points,
                # eq. 5 in stage 2 as in stage 1 (train.implicit)
                regularizer_shapes=implicit.regularizer_shapes, regularizer_points=implicit.regularizer_points)


FULL_PRESET = ROOT / "presets" / "shapenet.yaml"  # --full: the paper's sizes
TAU = 0.1  # persistence.tau of every config: the SDF clamp, the synthetic grids' range and the PD generators'
# The schema's defaults (the required keys aside): stage 2's settings other than the scale's
SCHEMA_DEFAULTS = {"dataset": {"kind": "synthetic", "categories": ["chair"], "shapes_per_category": 4}, "sdf": {},
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
    return replace(cfg, batch_shapes=scale["batch"], points_per_shape=scale["points"], lambda_steik=0.01,
                   topology=topology, synthetic_shapes=scale["synthetic"], grid_resolution=scale["grid"], tau=TAU,
                   workers=workers, narrow_band=narrow_band, seed=seed, regularizer_shapes=scale["regularizer_shapes"],
                   regularizer_points=scale["regularizer_points"])


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


class BareDeepSDF:
    """The anchor: DeepSDF's step at the scale's sizes, as a bare implementation writes it. The samples and codes
    live on the device, each step draws ``batch`` shapes and ``points`` samples each there, and takes one Adam step
    of the clamped L1 data term plus ``0.1`` times the eikonal term at the same points: no host work, no syncs, no
    separate regularizer points. Same network as the trainers (``network``), the same samples (``data``)."""

    def __init__(self, scale: dict, data, steps: int, device: torch.device) -> None:
        xyz, sdf, _ = data
        self.decoder, codes = network(scale, len(xyz), None)
        self.decoder = self.decoder.to(device)
        self.codes = torch.nn.Parameter(codes.mu.detach().clone().to(device))
        self.xyz, self.sdf = torch.as_tensor(xyz, device=device), torch.as_tensor(sdf, device=device)
        self.batch, self.points, self.steps = scale["batch"], scale["points"], steps
        self.optimizer = torch.optim.Adam([{"params": self.decoder.parameters(), "lr": 5e-4},
                                           {"params": [self.codes], "lr": 1e-3}])

    def step(self) -> None:
        device = self.xyz.device
        shapes = torch.randint(len(self.xyz), (self.batch,), device=device)
        pick = torch.randint(self.xyz.shape[1], (self.batch, self.points), device=device)
        x = self.xyz[shapes[:, None], pick].requires_grad_(True)
        pred = self.decoder(self.codes[shapes], x)
        grad = spatial_gradient(pred, x)
        loss = sdf_data_loss(pred, self.sdf[shapes[:, None], pick]) + 0.1 * eikonal_loss(grad)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def epoch(self) -> None:
        for _ in range(self.steps):
            self.step()


def measure(repeats: int, steps: int, device: torch.device, **build_args) -> dict[str, dict]:
    """Seconds per step of each variant and of the anchor (:class:`BareDeepSDF`): after a warm-up epoch each,
    ``repeats`` rounds that time one epoch of every one in turn (so that a slow spell of the machine hits them
    alike), and the median per variant. Parts and peak memory come from the same epochs (medians and maxima)."""
    trainers = {name: build(topology, band, steps=steps, device=device, **build_args)
                for name, (topology, band) in VARIANTS.items()}
    anchor = BareDeepSDF(build_args["scale"], build_args["data"], steps, device)
    epochs_of = {name: trainer._theta_epoch for name, trainer in trainers.items()} | {"anchor": anchor.epoch}
    epochs: dict[str, list[dict]] = {name: [] for name in epochs_of}
    try:
        for epoch in epochs_of.values():
            epoch()  # warm-up: allocator, kernels, worker threads
        for _ in range(repeats):
            for name, epoch in epochs_of.items():
                epochs[name].append(timed_epoch(epoch, trainers.get(name), device))
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
        if VARIANTS.get(name, ("none",))[0] != "none":
            result["grid_evaluated_fraction"] = statistics.median(run["evaluated"] for run in runs)
        results[name] = result
    return results


def timed_epoch(epoch, trainer: JointTrainer | None, device: torch.device) -> dict:
    """One timed ``epoch()``: seconds, the trainer's parts (none for the anchor), peak memory."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    if trainer is not None:
        trainer.synthetic.seconds.clear()
        trainer.synthetic.grid_counts.clear()
    start = time.perf_counter()
    epoch()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"seconds": elapsed, "parts": dict(trainer.synthetic.seconds) if trainer is not None else {},
            "peak": peak, "evaluated": trainer.synthetic.evaluated_fraction if trainer is not None else 1.0}


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
    parser.add_argument("--preset", type=Path, default=None,
                        help="read the sizes from this preset merged on config.yaml (default: config.yaml's)")
    parser.add_argument("--full", action="store_true", help="--preset presets/shapenet.yaml: the paper's sizes")
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
    if args.full and args.preset is not None:
        parser.error("--full is --preset presets/shapenet.yaml: give one of them")
    preset = FULL_PRESET if args.full else args.preset
    scale_name = preset.stem if preset is not None else "config.yaml"
    scale = config_scale(preset=preset)
    cpus = len(os.sched_getaffinity(0))
    workers = args.workers or max(1, cpus - 1)
    device = pick_device(args.device)
    cpu_threads(cpus)
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


TARGETS = {  # on one GPU (docs/benchmarks.md)
    "plain_over_anchor": (1.3, "the plain step at most 1.3x a bare DeepSDF step of the same sizes"),
    "topological_over_plain": (1.5, "the topological step at most 1.5x the plain one"),
    "wait_share": (0.05, "the wait for persistence at most 5% of the topological step"),
}


def report(results: dict[str, dict], args: argparse.Namespace, scale_name: str, scale: dict, device: torch.device,
           workers: int) -> None:
    """Print the table, the ratios against the targets and the topological step's parts, and write the JSON
    (``train_step_{gpu,cpu}``, with ``_<preset>`` when the sizes came from one)."""
    anchor, plain, full_grid, topo = (results[k] for k in ("anchor", "plain", "full_grid", "narrow_band"))
    step, parts = topo["seconds_per_step"], topo["parts_per_step"]
    # The step's own time in the topological parts: the wait for workers (persistence not hidden by the
    # overlap), the grid evaluation, and the forward at the critical vertices; the rest is the plain step's work
    # and the backward through the extra terms. Persistence and assignment are worker time (overlapped).
    shares = {key: parts.get(key, 0.0) / step for key in ("wait", "grid", "critical_forward")}
    shares["rest_of_step"] = 1.0 - sum(shares.values())
    ratios = {"plain_over_anchor": plain["seconds_per_step"] / anchor["seconds_per_step"],
              "topological_over_plain": step / plain["seconds_per_step"], "wait_share": shares["wait"]}
    rows = [("bare DeepSDF step (anchor)", anchor), ("deepsdf_se_vad (plain)", plain),
            ("ours_deepsdf_se (topological, every grid vertex)", full_grid),
            ("ours_deepsdf_se (topological, narrow band)", topo)]
    table([[name, f"{r['seconds_per_step'] * 1e3:.1f}", f"{r['peak_memory_mib']:.0f}"] for name, r in rows],
          ["step", "ms", "peak MiB"])
    for key, (limit, text) in TARGETS.items():
        print(f"{key}: {ratios[key]:.2f} ({'met' if ratios[key] <= limit else 'missed'}: {text})")
    print(f"the narrow band evaluated {topo['grid_evaluated_fraction']:.0%} of the grid; on every vertex the "
          f"topological step is {full_grid['seconds_per_step'] / plain['seconds_per_step']:.2f}x the plain one")
    print("topological step per part (ms): " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in sorted(parts.items())))
    name = "train_step_gpu" if device.type == "cuda" else "train_step_cpu"
    if scale_name != "config.yaml":
        name += f"_{scale_name}"
    write(name, {"scale": scale_name, "sizes": scale, "data": str(args.data or "spheres"),
                 "network": str(args.checkpoint or "geometric initialization"), "device": str(device),
                 "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                 "precision": "float32 (no TF32, autocast or torch.compile)",
                 "workers": workers, "steps": args.steps, "repeats": args.repeats, "anchor": anchor, "plain": plain,
                 "topological": topo, "topological_full_grid": full_grid, "ratios": ratios,
                 "share_of_topological_step": shares, "narrow_band_diagrams_equal_every_vertex": results["band_check"],
                 "notes": "persistence and assignment are worker seconds per step (they overlap the step); "
                          "wait is the part of them the step did not hide. The targets are for one GPU.",
                 "targets": {key: {"description": text, "limit": limit, "value": ratios[key],
                                   "met": bool(ratios[key] <= limit)} for key, (limit, text) in TARGETS.items()}},
          args.out, quick=False)


if __name__ == "__main__":
    main()
