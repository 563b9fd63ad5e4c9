"""Fig. 1: training shapes, baseline samples and ours, per category."""

from toposdf.config import Config
from toposdf.figures import samples_figure
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
categories, inputs = cfg.dataset.categories, snakemake.input
training = {c: (list(getattr(inputs, f"{c}__manifests")), getattr(inputs, f"{c}__split")) for c in categories}
methods = (cfg.figures.baseline, cfg.figures.ours)
generated = {(c, m): getattr(inputs, f"{c}__{m}") for c in categories for m in methods}
samples_figure(snakemake.output[0], categories, training, generated, *methods, cfg.figures.samples)
