"""Fig. 4: samples of every method (rows) by category (columns)."""

from toposdf.config import Config
from toposdf.figures import methods_figure
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
categories, methods = cfg.dataset.categories, list(cfg.methods)
generated = {(c, m): getattr(snakemake.input, f"{c}__{m}") for c in categories for m in methods}
methods_figure(snakemake.output[0], categories, methods, generated, min(2, cfg.figures.samples))
