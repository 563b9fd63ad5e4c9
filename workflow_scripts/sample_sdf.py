"""DeepSDF-style SDF samples of one shard."""

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.preprocess import sample_sdf_shard

setup_logging(snakemake.log[0])
sample_sdf_shard(snakemake.input.manifest, snakemake.output.samples, Config.from_settings(snakemake.params.settings))
