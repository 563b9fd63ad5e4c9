"""The calibration rows of Tables 1 and 2 for one category: held-out training shapes (floor) and one blob (ceiling)."""

from toposdf.config import Config
from toposdf.evaluation import run_calibrate
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
run_calibrate(Config.from_settings(snakemake.params.settings), snakemake.params.settings, snakemake.wildcards.category,
              snakemake.input.split, snakemake.input.diagrams, snakemake.input.manifests, snakemake.output.calibration,
              threads=snakemake.threads)
