"""Stage 2 (eqs. 13-15): joint training of one category and method."""

from toposdf.io import setup_logging
from toposdf.jobs import Job
from toposdf.training import joint_train

setup_logging(snakemake.log[0])
joint_train(Job.from_snakemake(snakemake))
