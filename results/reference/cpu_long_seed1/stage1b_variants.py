"""Stage 1b alone on a finished run's stage-1 network, for several initializations and variants: the numbers in
essential_slot/stage1b_inits*.txt, stage1b_lr*.txt (--lr, --epochs, --warmup, --cosine) and the rank-start and softplus trials of the README.

    python stage1b_variants.py results/cpu_long/chair config.yaml presets/cpu_long.yaml --seeds 1 2 3 [--essential]
    python stage1b_variants.py results/cpu_long/table config.yaml presets/cpu_long.yaml --seeds 1 --lr 0.0003
    python stage1b_variants.py results/cpu_long/table config.yaml presets/cpu_long.yaml --seeds 1 --variant rank

train.seed s seeds the generators' initialization and the batch order (toposdf.training.pretrain_pdgen). The
variants, as trials (not in the library): ``rank`` starts slot j of each dimension at the mean of every shape's j-th
most persistent pair (per-slot offsets, last layer scaled by 0.1 and its bias zeroed); ``softplus`` replaces the
rectification's relu by softplus(beta y) / beta, beta 200.
"""
import argparse
import csv
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import toposdf.models as models
import toposdf.training.entry as entry
from toposdf.config import Config, merge_configs, read_config_files
from toposdf.training.pdgen import PDGeneratorTrainer


class RankStarts(nn.Module):
    """The PD generators with a per-slot offset, started at the training points' rank-wise means."""

    def __init__(self, generators: models.PDGenerators, diagrams):
        super().__init__()
        self.generators, self.essential_slot = generators.generators, False
        self.offsets = nn.ParameterList()
        for k, g in enumerate(generators.generators):
            offset = torch.tensor([[0.0, -0.01]]).repeat(g.n_points, 1)
            for j in range(g.n_points):
                ranked = [p[np.argsort(p[:, 0] - p[:, 1])[j]] for p in (np.asarray(d[k]).reshape(-1, 2) for d in diagrams)
                          if len(p) > j]
                if ranked:
                    ranked = np.array(ranked)
                    offset[j] = torch.tensor([ranked[:, 0].mean(), (ranked[:, 1] - ranked[:, 0]).mean()])
            self.offsets.append(nn.Parameter(offset))
            with torch.no_grad():
                g.mlp[-1].weight.mul_(0.1)
                g.mlp[-1].bias.zero_()

    def forward(self, z):
        out = []
        for g, offset in zip(self.generators, self.offsets):
            h = torch.cat([z[:, None, :].expand(-1, g.n_points, -1), g.embedding[None].expand(z.shape[0], -1, -1)], -1)
            out.append(models.rectify(g.mlp(h) + offset, g.tau))
        return out


def softplus_rectify(raw, tau=None, beta=200.0):
    birth = raw[..., 0] if tau is None else raw[..., 0].clamp(-tau, tau)
    death = birth + nn.functional.softplus(raw[..., 1], beta=beta)
    return torch.stack([birth, death if tau is None else death.clamp(max=tau)], dim=-1)


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("category_dir", type=Path)
parser.add_argument("configs", nargs="+")
parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
parser.add_argument("--lr", type=float, default=None, help="train.pdgen.lr (default: the config's)")
parser.add_argument("--epochs", type=int, default=None, help="train.pdgen.epochs (default: the config's)")
parser.add_argument("--warmup", type=int, default=0, help="epochs of a linear ramp of the rate up to --lr")
parser.add_argument("--cosine", action="store_true", help="cosine decay of the rate to 0 after the warmup")
parser.add_argument("--weight-scale", type=float, default=0.1, help="initialize_from's last-layer scale")
parser.add_argument("--essential", action="store_true", help="train.pdgen.essential_slot: true")
parser.add_argument("--variant", choices=["plain", "rank", "softplus"], default="plain")
parser.add_argument("--method", default="ours_deepsdf_se")
parser.add_argument("--geometry", default="steik")
args = parser.parse_args()

initialize_from = models.PDGenerators.initialize_from
models.PDGenerators.initialize_from = lambda self, d, weight_scale=0.1: initialize_from(self, d, args.weight_scale)
if args.variant == "rank":
    entry.new_pd_generators = lambda cfg, method, diagrams: RankStarts(models.PDGenerators(
        cfg.model["latent_size"], entry.generator_sizes(diagrams, cfg.pdgen["max_points"]), hidden=cfg.pdgen["hidden"],
        tau=cfg.persistence.tau), diagrams)
elif args.variant == "softplus":
    models.rectify = softplus_rectify
train_epoch = PDGeneratorTrainer.train_epoch


def scheduled_epoch(self):
    """The trial schedules: the epoch's rate is the config's times a linear warmup, then a cosine decay."""
    epoch, epochs = self.epoch, self.cfg.epochs
    factor = (epoch + 1) / args.warmup if epoch < args.warmup else 1.0
    if args.cosine and epoch >= args.warmup:
        factor = 0.5 * (1 + math.cos(math.pi * (epoch - args.warmup) / max(1, epochs - args.warmup)))
    for group in self.optimizers["main"].param_groups:
        group["lr"] = self.cfg.lr * factor
    return train_epoch(self)


if args.warmup or args.cosine:
    PDGeneratorTrainer.train_epoch = scheduled_epoch
pdgen = {"essential_slot": args.essential} | ({"lr": args.lr} if args.lr is not None else {}) | (
    {"epochs": args.epochs} if args.epochs is not None else {})
for seed in args.seeds:
    raw = merge_configs(read_config_files(*args.configs), {"train": {"seed": seed, "pdgen": pdgen}})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pdgen"
        entry.pretrain_pdgen(Config.from_dict(raw), args.method,
                             args.category_dir / "train" / "stage1" / args.geometry / "implicit.pt",
                             sorted((args.category_dir / "diagrams").glob("*.npz")), out.with_suffix(".pt"),
                             out.with_suffix(".csv"))
        rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    print(f"{args.category_dir.name} {args.variant} essential_slot={args.essential} lr={args.lr or 'config'} "
          f"epochs={args.epochs or 'config'} warmup={args.warmup} cosine={args.cosine} weight_scale={args.weight_scale} seed {seed}: stage 1b PD loss {float(rows[0]['pd']):.5f} -> "
          f"{float(rows[-1]['pd']):.5f}", flush=True)
