"""Scratch: stage 1b with rectify's relu replaced by softplus(beta y)/beta (slots never exactly on the diagonal)."""
import sys, glob, csv, tempfile, pathlib
import torch
import toposdf.models as models
import toposdf.training.entry as entry
from toposdf.config import Config, read_config_files, merge_configs
cat_dir, seed, beta = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def rectify(raw, tau=None):
    birth = raw[..., 0]
    if tau is not None:
        birth = birth.clamp(-tau, tau)
    death = birth + torch.nn.functional.softplus(raw[..., 1], beta=beta)
    if tau is not None:
        death = death.clamp(max=tau)
    return torch.stack([birth, death], dim=-1)
if beta > 0:
    models.rectify = rectify
raw = merge_configs(read_config_files("config.yaml", "presets/cpu_long.yaml"), {"train": {"seed": seed}})
with tempfile.TemporaryDirectory() as t:
    out = pathlib.Path(t) / "pd"
    entry.pretrain_pdgen(Config.from_dict(raw), "ours_deepsdf_se", f"{cat_dir}/train/stage1/steik/implicit.pt",
                         sorted(glob.glob(f"{cat_dir}/diagrams/*.npz")), str(out) + ".pt", str(out) + ".csv")
    rows = list(csv.DictReader(open(str(out) + ".csv")))
print(pathlib.Path(cat_dir).name, "softplus beta", beta, "seed", seed, "pd %.5f -> %.5f" % (float(rows[0]["pd"]), float(rows[-1]["pd"])), flush=True)
