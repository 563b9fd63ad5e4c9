"""Every loss term of every method of one category over training (stage 1, stage 1b and stage 2)."""

from toposdf.figures import method_curve, training_curves
from toposdf.io import setup_logging
from toposdf.tables import DISPLAY_NAMES

log = setup_logging(snakemake.log[0])
curves = {}
for method in snakemake.params.methods:  # the CSVs are named "{method}_{stage}" (training_curves_inputs)
    implicit, pdgen, joint = (snakemake.input.get(f"{method}_{stage}") for stage in ("implicit", "pdgen", "joint"))
    curves[DISPLAY_NAMES.get(method, method)] = method_curve(implicit, pdgen, joint)
training_curves(snakemake.output[0], curves, f"{snakemake.wildcards.category}: training curves "
                "(stage 1, then stage 2's rounds; pdgen_*: stage 1b's epochs)")
log.info("curves of %d methods", len(curves))
