"""Fig. 3: pairwise PD distance matrices, training vs synthetic shapes and training vs PD-generator output."""

from toposdf.config import Config
from toposdf.evaluation import run_pd_matrices
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
run_pd_matrices(Config.from_settings(snakemake.params.settings), snakemake.params.settings, snakemake.wildcards.category,
                snakemake.input.model, snakemake.input.diagrams, snakemake.output.figure, snakemake.output.values,
                threads=snakemake.threads)
