"""An external row's reconstructions, scored on the ground truth's path (toposdf.external)."""

from toposdf.external import run_external_reconstructions
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_external_reconstructions(Job.from_snakemake(snakemake))
