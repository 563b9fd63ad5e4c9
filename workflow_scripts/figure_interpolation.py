"""Fig. 2: the interpolation between two training shapes, with each step's diagrams."""

from toposdf.figures import run_figure_interpolation
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_figure_interpolation(Job.from_snakemake(snakemake))
