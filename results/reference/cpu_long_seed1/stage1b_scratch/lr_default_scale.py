import sys, glob, csv, tempfile, pathlib
import toposdf.training.entry as entry
from toposdf.config import Config, read_config_files, merge_configs
cat, seed, lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
R = f"results/synthetic/{cat}"
raw = merge_configs(read_config_files("config.yaml"), {"train": {"seed": seed, "pdgen": {"lr": lr}}})
with tempfile.TemporaryDirectory() as t:
    out = pathlib.Path(t) / "pd"
    entry.pretrain_pdgen(Config.from_dict(raw), "ours_deepsdf_se", f"{R}/train/stage1/steik/implicit.pt", sorted(glob.glob(f"{R}/diagrams/*.npz")), str(out) + ".pt", str(out) + ".csv")
    rows = list(csv.DictReader(open(str(out) + ".csv")))
print(cat, "default scale lr", lr, "seed", seed, "pd %.5f -> %.5f" % (float(rows[0]["pd"]), float(rows[-1]["pd"])), flush=True)
