"""Normalize the meshes of one shard into the unit sphere; broken meshes fail or are skipped (config)."""

from toposdf.config import Config
from toposdf.io import read_json, setup_logging
from toposdf.preprocess import normalize_shard

setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
normalize_shard(
    read_json(snakemake.input.split),
    int(snakemake.wildcards.shard),
    cfg.shards,
    snakemake.output.manifest,
    cfg.sdf.margin,
    cfg.dataset.skip_invalid,
)
