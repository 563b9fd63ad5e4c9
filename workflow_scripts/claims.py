"""Which of the paper's claims hold in the run, and whether its generators fit (tables/claims.csv and .md)."""

from toposdf.claims import run_claims
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_claims(Job.from_snakemake(snakemake))
