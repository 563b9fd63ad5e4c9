"""The 3DShape2VecSet row: its prior samples in draws, meshed and scored on the ground truth's path."""

from toposdf.external import run_vecset_samples
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_vecset_samples(Job.from_snakemake(snakemake))
