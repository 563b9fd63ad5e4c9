"""Fig. 2: the interpolation between two training shapes, with each step's diagrams."""

from toposdf.config import Config
from toposdf.figures import interpolation_figure
from toposdf.generation import load_meshes
from toposdf.io import setup_logging
from toposdf.tables import DISPLAY_NAMES
from toposdf.topology import load_diagrams
import numpy as np

setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
with np.load(snakemake.input.meshes) as f:
    t, (a, b) = f["t"], [str(s) for s in f["shape_ids"]]
ours = cfg.figures.ours
interpolation_figure(snakemake.output[0], t, load_meshes(snakemake.input.meshes),
                     load_diagrams(snakemake.input.diagrams)[1], load_diagrams(snakemake.input.generator)[1],
                     cfg.persistence.tau, f"{snakemake.wildcards.category}, {DISPLAY_NAMES.get(ours, ours)}: "
                     f"interpolation between training shapes {a} and {b}")
