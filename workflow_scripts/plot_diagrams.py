"""Overview of a category's ground-truth persistence diagrams and Betti numbers."""

from toposdf.data import load_category_diagrams
from toposdf.io import setup_logging
from toposdf.plotting import diagram_overview
from toposdf.topology import betti_numbers

setup_logging(snakemake.log[0])
ids, diagrams, meta = load_category_diagrams(snakemake.input.diagrams)
diagram_overview(
    snakemake.output.figure,
    diagrams,
    tau=meta["tau"],
    betti=[betti_numbers(d) for d in diagrams],
    title=f"{snakemake.wildcards.category}: ground-truth diagrams of {len(ids)} shapes "
    f"({meta['resolution']}³ grid, τ = {meta['tau']}, min persistence {meta['min_persistence']})",
)
