"""DeepSDF's CD protocol: reconstruct every test shape with the network frozen, Chamfer against the truth."""

from toposdf.config import Config
from toposdf.evaluation import run_reconstruct
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
run_reconstruct(Config.from_settings(snakemake.params.settings), snakemake.params.settings, snakemake.input.model, snakemake.input.split,
                snakemake.input.samples, snakemake.input.manifests, snakemake.output.chamfer,
                snakemake.output.meshes, threads=snakemake.threads)
