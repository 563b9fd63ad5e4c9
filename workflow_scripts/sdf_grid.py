"""SDF grids of one shard."""

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.preprocess import grid_shard

setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
grid_shard(snakemake.input.manifest, snakemake.output.grids, cfg.grid.resolution)
