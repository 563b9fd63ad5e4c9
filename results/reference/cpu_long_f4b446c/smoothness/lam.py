"""Stage 1b of Ours-DeepSDF-SE at a fixed lambda_s, on cpu_long's stage-1 codes and training diagrams; run from
the run's folder: `python lam.py chair 1.0`. Prints the PD fit, the weighted smoothness, the H1 distance of each
generator output (first 40 training codes) to its own diagram and to the median other, retrieval, and the
generators' H1 at 512 prior codes (points above 0.02, median lifetime)."""
import sys, dataclasses, json, yaml
from pathlib import Path
import numpy as np, torch
from toposdf.config import Config, merge_configs, validate_config
from toposdf.checkpoints import load_checkpoint
from toposdf.data import load_shape_diagrams
from toposdf.training.entry import new_pd_generators
from toposdf.training.configs import pdgen_train_config
from toposdf.training.pdgen import PDGeneratorTrainer
from toposdf.topology.distances import pd_distance
from toposdf.losses import smoothness_loss
from toposdf.evaluation import diagram_summary
cat, lam = sys.argv[1], float(sys.argv[2])
torch.set_num_threads(1)
raw = merge_configs(yaml.safe_load(open('config.yaml')), yaml.safe_load(open('presets/cpu_long.yaml')))
cfg = Config.from_dict(validate_config(raw))
R = Path(f'results/cpu_long/{cat}')
stage1 = load_checkpoint(R / 'train/stage1/steik/implicit.pt')
diagrams = list(load_shape_diagrams(sorted((R / 'diagrams').glob('*.npz')), stage1['ids']).values())
torch.manual_seed(0)
gens = new_pd_generators(cfg, cfg.method('ours_deepsdf_se'), diagrams)
tc = dataclasses.replace(pdgen_train_config(cfg, 'ours_deepsdf_se'), lambda_smooth=lam)
out = Path(f'smoothness_sweep/lam_{cat}_{lam}'); out.mkdir(parents=True, exist_ok=True)
for f in out.glob('*'): f.unlink()
tr = PDGeneratorTrainer(gens, stage1['codes']['mu'], diagrams, tc, checkpoint=out / 'ck.pt', log_csv=out / 'log.csv')
tr.fit(progress=False)
gens.eval()
mu = torch.as_tensor(np.asarray(stage1['codes']['mu']), dtype=torch.float32)[:40]
truth = [np.asarray(d[1]).reshape(-1, 2) for d in diagrams[:40]]
with torch.no_grad():
    g = gens(mu)[1].double().numpy()
    prior = [o.double().numpy() for o in gens(torch.randn(512, 16, generator=torch.Generator().manual_seed(0)))]
    s = smoothness_loss(gens, torch.randn(256, 16, generator=torch.Generator().manual_seed(1)), 0.01).item()
D = np.array([[pd_distance(g[i], truth[j]) for j in range(40)] for i in range(40)])
ps = diagram_summary([[prior[k][i] for k in range(3)] for i in range(512)], 0.02)
import csv
last = list(csv.DictReader(open(out / 'log.csv')))[-1]
print(json.dumps({'cat': cat, 'lambda': lam, 'pd_fit': round(float(last['pd']), 5), 'smooth_weighted': round(lam * s, 6),
                  'own': round(float(np.diag(D).mean()), 5), 'median_other': round(float(np.median(D[~np.eye(40, dtype=bool)])), 5),
                  'retrieval': float(np.mean(D.argmin(1) == np.arange(40))),
                  'prior_h1': [round(ps['h1_points'], 2), round(ps['h1_median_life'], 4)],
                  'prior_h0': [round(ps['h0_points'], 2)]}), flush=True)
