"""An external row's samples, scored on the ground truth's path (toposdf.external)."""

from toposdf.external import run_external_samples
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_external_samples(Job.from_snakemake(snakemake))
