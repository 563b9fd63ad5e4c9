"""Tables 1 and 2's numbers and the generation metrics of one category and method, with provenance."""

from toposdf.evaluation import run_evaluate
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_evaluate(Job.from_snakemake(snakemake))
