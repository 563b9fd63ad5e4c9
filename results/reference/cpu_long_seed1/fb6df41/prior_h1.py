"""What the trained PD generators predict at z ~ N(0, I), the targets of eq. 8: per homology dimension, the mean
number of points with persistence above persistence.min_persistence and their mean total persistence, against the
training diagrams. The numbers in prior_h1.txt; run from a finished run, e.g.
`python prior_h1.py results/cpu_long/table ours_deepsdf_se 0.02`."""
import sys
from pathlib import Path

import numpy as np
import torch

from toposdf.data import load_shape_diagrams
from toposdf.generation import load_model

category_dir, method, threshold = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
model = load_model(category_dir / "train" / method / "model.pt", device="cpu")
training = list(load_shape_diagrams(sorted((category_dir / "diagrams").glob("*.npz")), model.ids).values())
torch.manual_seed(0)
with torch.no_grad():
    out = [o.double().numpy() for o in model.generators(torch.randn(1024, model.mu.shape[1]))]
for k in range(3):
    life = out[k][..., 1] - out[k][..., 0]
    kept = np.where(life > threshold, life, 0.0)
    true_life = [np.asarray(d[k]).reshape(-1, 2) @ np.array([-1.0, 1.0]) for d in training]
    print(f"{category_dir.name} {method} H{k}: at z ~ N(0, I) {np.mean((kept > 0).sum(1)):.2f} points above "
          f"{threshold} (total persistence {kept.sum(1).mean():.4f}); training diagrams "
          f"{np.mean([np.sum(t > threshold) for t in true_life]):.2f} "
          f"({np.mean([t[t > threshold].sum() for t in true_life]):.4f})")
