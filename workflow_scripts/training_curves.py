"""Every loss term of every method of one category over training (stage 1, stage 1b and stage 2)."""

from pathlib import Path

from toposdf.figures import method_curve, training_curves
from toposdf.io import setup_logging
from toposdf.tables import DISPLAY_NAMES

log = setup_logging(snakemake.log[0])
curves = {}
for model in map(Path, snakemake.input):
    train = model.parent.parent
    method = snakemake.config["methods"][model.parent.name]
    curves[DISPLAY_NAMES.get(model.parent.name, model.parent.name)] = method_curve(
        train / "stage1" / method["geometry"] / "implicit_log.csv", model.parent / "pdgen_log.csv",
        model.parent / "joint_log.csv")
training_curves(snakemake.output[0], curves, f"{snakemake.wildcards.category}: training curves "
                "(stage 1, then stage 2's rounds; pdgen_*: stage 1b's epochs)")
log.info("curves of %d methods", len(curves))
