"""Stage 1 (eq. 11): pretrain the implicit generator of one category with one geometric regularizer."""

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.training import pretrain_implicit

setup_logging(snakemake.log[0])
pretrain_implicit(
    Config.from_settings(snakemake.params.settings),
    snakemake.wildcards.geometry,
    snakemake.input.samples,
    snakemake.input.split,
    snakemake.output.checkpoint,
    snakemake.output.curve,
    threads=snakemake.threads,
)
