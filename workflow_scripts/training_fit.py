"""How well every method's final model of one category reproduces its training shapes and its test shapes'
reconstructions, decoded on the ground truth's grid."""

from toposdf.config import Config
from toposdf.evaluation import run_training_fit
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
run_training_fit(Config.from_settings(snakemake.params.settings), snakemake.params.settings,
                 snakemake.wildcards.category, snakemake.input.models, snakemake.input.reconstructions,
                 snakemake.input.grids, snakemake.output.fit, threads=snakemake.threads)
