"""Stage 1b alone with another learning rate (train.pdgen.lr) and last-layer init scale; the numbers in
stage1b_lr.txt. Usage: python stage1b_lr.py results/cpu_long/table SEED LR WEIGHT_SCALE (run from the repository,
with config.yaml and presets/cpu_long.yaml at the paths below; adjust them to yours)."""
import sys, glob, csv, tempfile, pathlib
import toposdf.models as models
import toposdf.training.entry as entry
from toposdf.config import Config, read_config_files, merge_configs
cat_dir, seed, lr, scale = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
orig = models.PDGenerators.initialize_from
models.PDGenerators.initialize_from = lambda self, d, weight_scale=0.1: orig(self, d, weight_scale=scale)
raw = merge_configs(read_config_files("config.yaml", "presets/cpu_long.yaml"), {"train": {"seed": seed, "pdgen": {"lr": lr}}})
with tempfile.TemporaryDirectory() as t:
    out = pathlib.Path(t) / "pd"
    entry.pretrain_pdgen(Config.from_dict(raw), "ours_deepsdf_se", f"{cat_dir}/train/stage1/steik/implicit.pt",
                         sorted(glob.glob(f"{cat_dir}/diagrams/*.npz")), str(out) + ".pt", str(out) + ".csv")
    rows = list(csv.DictReader(open(str(out) + ".csv")))
print(pathlib.Path(cat_dir).name, "lr", lr, "weight_scale", scale, "seed", seed, "pd %.5f -> %.5f" % (float(rows[0]["pd"]), float(rows[-1]["pd"])), flush=True)
