"""Scratch: stage 1b with per-slot offsets started at the training points' rank-wise means (slot j at the mean of
each shape's j-th most persistent pair), instead of every slot at the centroid."""
import sys, glob, csv, tempfile, pathlib
import numpy as np, torch
from torch import nn
import toposdf.training.entry as entry
from toposdf.config import Config, read_config_files, merge_configs
from toposdf.models import PDGenerators, rectify

cat_dir, seed, variant = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Offsets(nn.Module):
    def __init__(self, gens, diagrams):
        super().__init__()
        self.gens = gens
        self.generators = gens.generators
        self.essential_slot = False
        self.offsets = nn.ParameterList()
        for k, g in enumerate(gens.generators):
            n = g.n_points
            off = torch.zeros(n, 2)
            for j in range(n):
                pts = []
                for d in diagrams:
                    p = np.asarray(d[k]).reshape(-1, 2)
                    if len(p) > j:
                        order = np.argsort(-(p[:, 1] - p[:, 0]))
                        pts.append(p[order[j]])
                if pts:
                    pts = np.array(pts)
                    off[j] = torch.tensor([pts[:, 0].mean(), (pts[:, 1] - pts[:, 0]).mean()])
                else:
                    off[j] = torch.tensor([0.0, -0.01])
            self.offsets.append(nn.Parameter(off))
            with torch.no_grad():
                g.mlp[-1].weight.mul_(0.1); g.mlp[-1].bias.zero_()
    def forward(self, z):
        outs = []
        for g, off in zip(self.generators, self.offsets):
            e = g.embedding[None].expand(z.shape[0], -1, -1)
            h = torch.cat([z[:, None, :].expand(-1, g.n_points, -1), e], dim=-1)
            outs.append(rectify(g.mlp(h) + off, g.tau))
        return outs

orig = entry.new_pd_generators
def patched(cfg, method, diagrams):
    gens = PDGenerators(cfg.model["latent_size"], entry.generator_sizes(diagrams, cfg.pdgen["max_points"]),
                        hidden=cfg.pdgen["hidden"], tau=cfg.persistence.tau)
    return Offsets(gens, diagrams)
if variant == "rank":
    entry.new_pd_generators = patched
raw = merge_configs(read_config_files("config.yaml", "presets/cpu_long.yaml"), {"train": {"seed": seed}})
with tempfile.TemporaryDirectory() as t:
    out = pathlib.Path(t) / "pd"
    entry.pretrain_pdgen(Config.from_dict(raw), "ours_deepsdf_se", f"{cat_dir}/train/stage1/steik/implicit.pt",
                         sorted(glob.glob(f"{cat_dir}/diagrams/*.npz")), str(out) + ".pt", str(out) + ".csv")
    rows = list(csv.DictReader(open(str(out) + ".csv")))
print(pathlib.Path(cat_dir).name, variant, "seed", seed, "pd %.5f -> %.5f" % (float(rows[0]["pd"]), float(rows[-1]["pd"])), flush=True)
