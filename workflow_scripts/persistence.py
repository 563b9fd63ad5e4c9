"""Ground-truth persistence diagrams, with critical vertices, of one shard's grids."""

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.preprocess import diagrams_shard

setup_logging(snakemake.log[0])
diagrams_shard(
    snakemake.input.grids,
    snakemake.output.diagrams,
    Config.from_settings(snakemake.params.settings),
    workers=snakemake.threads,
)
