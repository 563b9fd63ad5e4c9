"""Per-shape H1 fit of the trained PD generators (stage 1b pdgen.pt and stage 2 model.pt), on the first 40
training shapes: distance to the own diagram, to the median other, retrieval, and the per-code std of H1 total
persistence against the training diagrams'. Run from the run's folder."""
import sys, numpy as np, torch
from pathlib import Path
from toposdf.checkpoints import load_checkpoint
from toposdf.models import PDGenerators
from toposdf.generation import load_model
from toposdf.data import load_shape_diagrams
from toposdf.topology.distances import pd_distance
def tp(d):
    l = d @ [-1, 1]; return l[l > 0.02].sum()
for cat in ['chair', 'table']:
    R = Path(f'results/cpu_long/{cat}')
    for method, geom in [('ours_deepsdf', 'eikonal'), ('ours_deepsdf_se', 'steik'), ('no_pd_smoothness', 'steik')]:
        st1 = load_checkpoint(R / f'train/stage1/{geom}/implicit.pt')
        pg = PDGenerators.from_state(load_checkpoint(R / f'train/{method}/pdgen.pt')).eval()
        m = load_model(R / f'train/{method}/model.pt', 'cpu')
        assert list(m.ids) == list(st1['ids'])
        truth = [np.asarray(d[1]).reshape(-1, 2) for d in load_shape_diagrams(sorted((R / 'diagrams').glob('*.npz')), st1['ids']).values()][:40]
        for name, gen, mu in [('stage 1b', pg, torch.as_tensor(np.asarray(st1['codes']['mu'])).float()), ('stage 2', m.generators, m.mu)]:
            with torch.no_grad():
                g = gen(mu[:40])[1].double().numpy()
            D = np.array([[pd_distance(g[i], truth[j]) for j in range(40)] for i in range(40)])
            print(cat, method, name, 'own %.5f median other %.5f retrieval %.2f tp std %.3f (truth %.3f)' % (
                np.diag(D).mean(), np.median(D[~np.eye(40, dtype=bool)]), np.mean(D.argmin(1) == np.arange(40)),
                np.std([tp(x) for x in g]), np.std([tp(x) for x in truth])), flush=True)
