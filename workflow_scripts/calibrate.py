"""The calibration rows of Tables 1 and 2 for one category: held-out training shapes (floor) and one blob (ceiling)."""

from toposdf.calibration import run_calibrate
from toposdf.io import setup_logging
from toposdf.jobs import Job

setup_logging(snakemake.log[0])
run_calibrate(Job.from_snakemake(snakemake))
