"""Fig. 4: samples of every method (rows) by category (columns)."""

from toposdf.figures import run_figure_methods
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_figure_methods(Job.from_snakemake(snakemake))
