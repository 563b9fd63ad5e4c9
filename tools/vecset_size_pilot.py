"""How well a 3DShape2VecSet autoencoder of a given size fits a run's training shapes against its CPU time: the way
the CPU presets' ``vecset.autoencoder`` sizes were chosen (docs/vecset.md).

Trains :class:`toposdf.training.vecset.AutoencoderTrainer` (the ``vecset_autoencoder`` rule's trainer, with its
data: surface clouds from the normalized meshes, occupancy queries from the SDF samples) on one category of a
finished run, with the run's ``vecset.autoencoder`` settings and the sizes given here laid over them. Every
``--every`` epochs it measures the reconstruction IoU (a seeded posterior sample decoded on the ground truth's grid)
of the training and test shapes, the retrieval and the volume ratio (``reconstruction_fit``), and the CPU time spent
training so far (the measurements not counted). Writes the curve as JSON after each measurement. The checkpoint
beside it is the rule's working checkpoint: copied to ``train/vecset/.autoencoder.pt.work`` with its CSV, a run at
the same settings resumes from it.

    python tools/vecset_size_pilot.py /work/runs/long0 --preset presets/cpu_long.yaml --category chair \\
        --width 64 --latents 32 --layers 2 --drop-path 0 --lr 2e-3 --epochs 880 --out /tmp/pilot_S
"""

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from toposdf.checkpoints import cpu_threads
from toposdf.config import Config, read_config_files
from toposdf.training.configs import autoencoder_train_config
from toposdf.training.vecset import AutoencoderTrainer, autoencoder_data, fit_report, fit_subsets, new_autoencoder

SIZES = ("width", "latents", "channels", "layers", "heads", "points", "drop_path", "volume_queries", "near_queries",
         "epochs", "batch_shapes", "lr", "warmup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished run's folder (its results/ and the config it ran with)")
    parser.add_argument("--preset", nargs="*", default=[], help="the presets the run was made with")
    parser.add_argument("--category", default="chair")
    for name in SIZES:
        kind = float if name in ("drop_path", "lr", "warmup") else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help="over the run's vecset.autoencoder")
    parser.add_argument("--every", type=int, default=110, help="epochs between measurements")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="a folder for the curve and the checkpoint")
    args = parser.parse_args()
    cpu_threads(args.threads)
    raw = read_config_files(args.run / "config.yaml", *(args.run / p for p in args.preset))
    raw["vecset"] = raw.get("vecset") or {}  # a run without the row: the released sizes under those given here
    cfg = Config.from_dict(raw)
    train_cfg = replace(autoencoder_train_config(cfg),
                        **{k: getattr(args, k) for k in SIZES if getattr(args, k) is not None})
    root = args.run / "results" / cfg.dataset.name / args.category
    split, seed = root / "split.json", cfg.train.seed
    samples = sorted((root / "sdf").glob("*.npz"), key=lambda p: int(p.stem))
    manifests = sorted((root / "meshes").glob("[0-9]*.json"), key=lambda p: int(p.stem))
    grids = sorted((root / "grids").glob("*.npz"), key=lambda p: int(p.stem))
    ids, clouds, near, volume = autoencoder_data(cfg, train_cfg, samples, split, manifests)
    subsets = list(fit_subsets(train_cfg, seed, split, manifests, grids, ids, clouds))  # measured every --every
    torch.manual_seed(seed)
    model = new_autoencoder(train_cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    trainer = AutoencoderTrainer(model, clouds, near, volume, train_cfg, args.out / "autoencoder.pt.work",
                                 args.out / "autoencoder_log.csv.work")
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{args.category}: {len(ids)} training shapes, {parameters / 1e6:.2f}M parameters, {train_cfg}", flush=True)
    rows, cpu = [], 0.0
    while trainer.epoch < train_cfg.epochs:
        start = time.process_time()
        trainer.fit(min(train_cfg.epochs, trainer.epoch + args.every), progress=False)
        cpu += time.process_time() - start
        fit = fit_report(model, seed, subsets)
        rows.append({"epoch": trainer.epoch, "steps": trainer.epoch * -(-len(ids) // train_cfg.batch_shapes),
                     "cpu_s": cpu, "train_iou": fit["train"]["decoded_iou"], "retrieval": fit["train"]["retrieval"],
                     "volume_ratio": fit["train"]["volume_ratio"], "test_iou": fit["test"]["decoded_iou"]})
        print(json.dumps(rows[-1]), flush=True)
        (args.out / "curve.json").write_text(json.dumps(
            {"run": str(args.run), "category": args.category, "parameters": parameters, "threads": args.threads,
             "config": repr(train_cfg), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
