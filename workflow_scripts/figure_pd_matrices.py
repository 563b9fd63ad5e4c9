"""Fig. 3: pairwise PD distance matrices, training vs synthetic shapes and training vs PD-generator output."""

from toposdf.evaluation import run_pd_matrices
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_pd_matrices(Job.from_snakemake(snakemake))
