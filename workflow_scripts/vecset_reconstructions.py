"""The 3DShape2VecSet row: the test shapes encoded from their surface clouds, decoded, meshed and scored for CD."""

from toposdf.external import run_vecset_reconstructions
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_vecset_reconstructions(Job.from_snakemake(snakemake))
