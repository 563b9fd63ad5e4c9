"""Deterministic train/test split of one category."""

from pathlib import Path

from toposdf.config import Config
from toposdf.io import atomic_write_json, setup_logging
from toposdf.preprocess import make_split

setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
root = Path(snakemake.input.shapes).parent if cfg.dataset.kind == "synthetic" else Path(cfg.dataset.root)
atomic_write_json(snakemake.output.split, make_split(cfg, snakemake.wildcards.category, root))
