"""Fig. 4: samples of every method (rows) by category (columns)."""

from toposdf.config import Config
from toposdf.figures import methods_figure
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
cfg = Config.from_dict(snakemake.config)
dataset, categories = snakemake.wildcards.dataset, cfg.dataset.categories
generated = {(c, m): snakemake.params.shapes.format(dataset=dataset, category=c, method=m)
             for c in categories for m in cfg.methods}
methods_figure(snakemake.output[0], categories, list(cfg.methods), generated, min(2, cfg.figures["samples"]))
