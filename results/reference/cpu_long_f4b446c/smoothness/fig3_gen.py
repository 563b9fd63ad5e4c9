"""Fig. 3's PD-generator side: PD-LAP of the generators at z ~ N(0, I) (seed 0, as many codes as training
shapes) against the training diagrams, for the trained models and the stage-1b sweep of lam.py. Run from the
run's folder: `python fig3_gen.py chair`."""
import sys, numpy as np, torch
from pathlib import Path
from toposdf.checkpoints import load_checkpoint
from toposdf.models import PDGenerators
from toposdf.generation import load_model, sample_latents
from toposdf.data import load_shape_diagrams
from toposdf.topology import off_diagonal
from toposdf.topology.distances import pd_lap
torch.set_num_threads(1)
for cat in sys.argv[1:]:
    R = Path(f'results/cpu_long/{cat}')
    ids = load_checkpoint(R / 'train/stage1/steik/implicit.pt')['ids']
    train = list(load_shape_diagrams(sorted((R / 'diagrams').glob('*.npz')), ids).values())
    z = sample_latents(len(train), 16, 0)
    gens = {f'stage 2 {m}': load_model(R / f'train/{m}/model.pt', 'cpu').generators for m in ['ours_deepsdf_se', 'no_pd_smoothness']}
    ref = load_checkpoint(R / 'train/ours_deepsdf_se/pdgen.pt')
    gens['stage 1b calibrated (ours_deepsdf_se pdgen.pt)'] = PDGenerators.from_state(ref)
    for ck in sorted(Path('smoothness_sweep').glob(f'lam_{cat}_*/ck.pt')):
        ref = load_checkpoint(R / 'train/ours_deepsdf_se/pdgen.pt')
        state = load_checkpoint(ck) | {key: ref[key] for key in ('n_points', 'tau', 'essential_slot')}
        gens[f'stage 1b lambda {ck.parent.name.split("_")[-1]}'] = PDGenerators.from_state(state)
    for name, g in gens.items():
        g.eval()
        with torch.no_grad():
            out = [o.double().numpy() for o in g(z)]
        generated = [off_diagonal([out[k][i] for k in range(3)]) for i in range(len(z))]
        print(cat, name, 'PD-LAP x1000 %.2f' % (1000 * pd_lap(train, generated, 2).value), flush=True)
