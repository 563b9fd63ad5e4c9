"""Stage 1b alone, for several initializations, with and without train.pdgen.essential_slot: the numbers in
stage1b_inits*.txt. Run from a finished run's folder (its stage-1 checkpoint and diagrams), for example:

    python stage1b_inits.py results/cpu_long/chair config.yaml presets/cpu_long.yaml --seeds 1 2 3
    python stage1b_inits.py results/synthetic/table config.yaml --seeds 0 1 2 3

train.seed s seeds the generators' initialization and the batch order (toposdf.training.pretrain_pdgen).
"""
import argparse
import csv
import tempfile
from pathlib import Path

from toposdf.config import Config, merge_configs, read_config_files
from toposdf.training import pretrain_pdgen

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("category_dir", type=Path)
parser.add_argument("configs", nargs="+")
parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
parser.add_argument("--method", default="ours_deepsdf_se")
parser.add_argument("--geometry", default="steik")
args = parser.parse_args()
for essential in (False, True):
    for seed in args.seeds:
        raw = merge_configs(read_config_files(*args.configs),
                            {"train": {"seed": seed, "pdgen": {"essential_slot": essential}}})
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "pdgen"
            pretrain_pdgen(Config.from_dict(raw), args.method, args.category_dir / "train" / "stage1" / args.geometry /
                           "implicit.pt", sorted((args.category_dir / "diagrams").glob("*.npz")),
                           out.with_suffix(".pt"), out.with_suffix(".csv"))
            rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
        print(f"{args.category_dir.name} essential_slot={essential} seed {seed}: stage 1b PD loss "
              f"{float(rows[0]['pd']):.5f} -> {float(rows[-1]['pd']):.5f}", flush=True)
