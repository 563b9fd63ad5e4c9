"""Stage 1b (eq. 12): pretrain the PD generators of one category and method at the stage-1 latent means."""

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.training import pretrain_pdgen

setup_logging(snakemake.log[0])
pretrain_pdgen(
    Config.from_settings(snakemake.params.settings),
    snakemake.wildcards.method,
    snakemake.input.implicit,
    snakemake.input.diagrams,
    snakemake.output.checkpoint,
    snakemake.output.curve,
    threads=snakemake.threads,
    selection=snakemake.output.selection,
)
