"""Fig. 2's latent path between two training shapes: implicit and PD generator along the same codes."""

from toposdf.evaluation import run_interpolate
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_interpolate(Job.from_snakemake(snakemake))
