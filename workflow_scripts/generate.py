"""Random shapes z ~ N(0, I) of one category and method: diagrams of every draw, grids and meshes of the first."""

from toposdf.evaluation import run_generate
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_generate(Job.from_snakemake(snakemake))
