"""Which of the paper's claims hold in the run, and whether its generators fit (tables/claims.csv and .md)."""

from dataclasses import asdict
from pathlib import Path

from toposdf.claims import write_claims
from toposdf.config import Config
from toposdf.io import setup_logging

log = setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
paths = write_claims(snakemake.input.metrics + snakemake.input.calibration, snakemake.input.cd_paired,
                     snakemake.input.fits, snakemake.input.fig3, {m: asdict(block) for m, block in cfg.methods.items()},
                     list(cfg.dataset.categories), Path(snakemake.output.claims[0]).with_suffix(""),
                     cfg.evaluation.pd_lap_scale, cfg.evaluation.cd_scale)
log.info("wrote %s", ", ".join(map(str, paths)))
