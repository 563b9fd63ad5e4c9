"""DeepSDF's CD protocol: reconstruct every test shape with the network frozen, Chamfer against the truth."""

from toposdf.evaluation import run_reconstruct
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_reconstruct(Job.from_snakemake(snakemake))
