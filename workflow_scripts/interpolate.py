"""Fig. 2's latent path between two training shapes: implicit and PD generator along the same codes."""

from toposdf.config import Config
from toposdf.evaluation import run_interpolate
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
run_interpolate(Config.from_settings(snakemake.params.settings), snakemake.params.settings, snakemake.input.model,
                snakemake.output.meshes, snakemake.output.diagrams, snakemake.output.generator)
