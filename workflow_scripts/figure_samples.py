"""Fig. 1: training shapes, baseline samples and ours, per category."""

from toposdf.figures import run_figure_samples
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_figure_samples(Job.from_snakemake(snakemake))
