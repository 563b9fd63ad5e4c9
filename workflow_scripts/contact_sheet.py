"""Contact sheet of a category's shapes labelled with the Betti numbers of their diagrams."""

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.preprocess import contact_sheet_items
from toposdf.plotting import mesh_contact_sheet

setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
items = contact_sheet_items(snakemake.input.manifests, snakemake.input.diagrams, cfg.preview.n_shapes)
mesh_contact_sheet(
    snakemake.output.figure,
    items,
    title=f"{snakemake.wildcards.category}: {len(items)} shapes, Betti numbers (b0, b1, b2) from the diagrams",
)
