"""The 3DShape2VecSet row: train its autoencoder for one category."""

from toposdf.io import setup_logging
from toposdf.jobs import Job
from toposdf.training.vecset import train_vecset_autoencoder

setup_logging(snakemake.log[0])
train_vecset_autoencoder(Job.from_snakemake(snakemake))
