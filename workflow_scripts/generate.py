"""Random shapes z ~ N(0, I) of one category and method: diagrams of every draw, grids and meshes of the first."""

from toposdf.config import Config
from toposdf.evaluation import run_generate
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
run_generate(Config.from_settings(snakemake.params.settings), snakemake.params.settings, snakemake.input.model, snakemake.input.split,
             snakemake.output.diagrams, snakemake.output.shapes, threads=snakemake.threads)
