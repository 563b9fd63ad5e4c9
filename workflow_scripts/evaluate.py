"""Tables 1 and 2's numbers and the generation metrics of one category and method, with provenance."""

from toposdf.config import Config
from toposdf.evaluation import run_evaluate
from toposdf.io import setup_logging

setup_logging(snakemake.log[0])
run_evaluate(Config.from_settings(snakemake.params.settings), snakemake.params.settings, snakemake.wildcards.method,
             snakemake.wildcards.category, snakemake.input.model, snakemake.input.split, snakemake.input.generated,
             snakemake.input.shapes, snakemake.input.chamfer, snakemake.input.diagrams, snakemake.input.manifests,
             snakemake.output.metrics, threads=snakemake.threads)
