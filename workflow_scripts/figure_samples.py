"""Fig. 1: training shapes, baseline samples and ours, per category."""

from toposdf.config import Config
from toposdf.figures import samples_figure
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
cfg = Config.from_dict(snakemake.config)
dataset, categories = snakemake.wildcards.dataset, cfg.dataset.categories
shards = range(cfg.shards)
training = {c: ([f"results/{dataset}/{c}/meshes/{s}.json" for s in shards], f"results/{dataset}/{c}/split.json")
            for c in categories}
methods = (cfg.figures["baseline"], cfg.figures["ours"])
generated = {(c, m): snakemake.params.shapes.format(dataset=dataset, category=c, method=m)
             for c in categories for m in methods}
samples_figure(snakemake.output[0], categories, training, generated, *methods, cfg.figures["samples"])
