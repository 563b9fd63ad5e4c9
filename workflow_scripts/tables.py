"""Tables 1 and 2, the generation table (CSV, Markdown, LaTeX) and the paired CD table."""

from toposdf.io import setup_logging
from toposdf.jobs import Job
from toposdf.tables import run_tables

setup_logging(snakemake.log[0])
run_tables(Job.from_snakemake(snakemake))
