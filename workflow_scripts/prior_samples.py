"""Contact sheet of one method's shapes drawn from the prior (the first z-draw), labelled with Betti numbers; for
an external row, the first draw of its meshes."""

from toposdf.figures import prior_samples_sheet
from toposdf.io import setup_logging
from toposdf.tables import DISPLAY_NAMES

setup_logging(snakemake.log[0])
method, category = snakemake.wildcards.method, snakemake.wildcards.category
external = (snakemake.config.get("external") or {}).get(method)
what = ("latent sets drawn by its diffusion model" if method == "vecset" else
        "shapes drawn from z ~ N(0, I)" if external is None else
        f"meshes of {external['samples'].format(category=category)}")
prior_samples_sheet(snakemake.output[0], snakemake.input.shapes, snakemake.input.diagrams,
                    f"{category}, {DISPLAY_NAMES.get(method, method)}: {what} (first draw), Betti numbers (b0, b1, b2)")
