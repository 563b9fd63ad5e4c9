"""Where the PD generators' slots are after stage 1b: per homology dimension, the slots off the diagonal at the
training codes against the training diagrams' mean size, and the mean PD distance (eq. 1) per shape. The numbers
in slots.txt; run from a finished run, e.g. `python pdgen_slots.py results/cpu_long/table ours_deepsdf_se steik`."""
import sys
from pathlib import Path

import numpy as np
import torch

from toposdf.models import PDGenerators
from toposdf.topology import load_diagrams
from toposdf.topology.distances import pd_distance

category_dir, method, geometry = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
stage1 = torch.load(category_dir / "train" / "stage1" / geometry / "implicit.pt", weights_only=False)
truth = {}
for path in sorted((category_dir / "diagrams").glob("*.npz")):
    ids, diagrams, _ = load_diagrams(path)
    truth.update(zip(ids, diagrams))
training = [truth[i] for i in stage1["ids"]]
generators = PDGenerators.from_state(torch.load(category_dir / "train" / method / "pdgen.pt", weights_only=False))
with torch.no_grad():
    out = [o.double().numpy() for o in generators(stage1["codes"]["mu"])]
for k in range(3):
    alive = out[k][..., 1] - out[k][..., 0] > 1e-6
    distance = np.mean([pd_distance(out[k][b][alive[b]], training[b][k]) for b in range(len(training))])
    print(f"{category_dir.name} {method} H{k}: {out[k].shape[1]} slots, {alive.sum(1).mean():.1f} off the diagonal "
          f"(training diagrams: {np.mean([len(d[k]) for d in training]):.1f} points), PD distance {distance:.4f}")
