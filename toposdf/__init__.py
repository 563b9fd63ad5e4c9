"""toposdf: topological regularization of implicit shape generators (ICML 2024), as a Snakemake pipeline."""

__version__ = "0.1.0"
