"""How well every method's final model of one category reproduces its training shapes and its test shapes'
reconstructions, decoded on the ground truth's grid."""

from toposdf.diagnostics import run_training_fit
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_training_fit(Job.from_snakemake(snakemake))
