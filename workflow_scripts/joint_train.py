"""Stage 2 (eqs. 13-15): joint training of one category and method."""

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.training import joint_train

setup_logging(snakemake.log[0])
joint_train(
    Config.from_settings(snakemake.params.settings),
    snakemake.wildcards.method,
    snakemake.input.get("implicit"),  # absent for methods trained from scratch
    snakemake.input.get("pdgen"),  # absent for methods without pretrained PD generators
    snakemake.input.samples,
    snakemake.input.split,
    snakemake.input.diagrams,
    snakemake.output.checkpoint,
    snakemake.output.curve,
    threads=snakemake.threads,
)
