"""The 3DShape2VecSet row: train its diffusion for one category."""

from toposdf.io import setup_logging
from toposdf.jobs import Job
from toposdf.training.vecset import train_vecset_diffusion

setup_logging(snakemake.log[0])
train_vecset_diffusion(Job.from_snakemake(snakemake))
