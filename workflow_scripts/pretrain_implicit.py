"""Stage 1 (eq. 11): pretrain the implicit generator of one category with one geometric regularizer."""

from toposdf.io import setup_logging
from toposdf.jobs import Job
from toposdf.training import pretrain_implicit

setup_logging(snakemake.log[0])
pretrain_implicit(Job.from_snakemake(snakemake))
