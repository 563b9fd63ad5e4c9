"""Write a category of the synthetic furniture dataset in the ShapeNetCore.v2 layout."""

from pathlib import Path

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.synthetic import write_synthetic_dataset

setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
out = Path(snakemake.output.shapes)
write_synthetic_dataset(
    out.parent, snakemake.params.category, cfg.dataset.shapes_per_category, cfg.dataset.seed
)
