"""Stage 1b (eq. 12): pretrain the PD generators of one category and method at the stage-1 latent means."""

from toposdf.io import setup_logging
from toposdf.jobs import Job
from toposdf.training import pretrain_pdgen

setup_logging(snakemake.log[0])
pretrain_pdgen(Job.from_snakemake(snakemake))
