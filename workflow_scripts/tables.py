"""Tables 1 and 2 (CSV, Markdown, LaTeX) from every category's and method's metrics.json."""

from dataclasses import asdict
from pathlib import Path

from toposdf.config import Config
from toposdf.io import setup_logging
from toposdf.tables import paired_baselines, write_paired_cd, write_tables

log = setup_logging(snakemake.log[0])
cfg = Config.from_settings(snakemake.params.settings)
paths = write_tables(snakemake.input.metrics + snakemake.input.calibration, list(cfg.methods), list(cfg.dataset.categories),
                     Path(snakemake.output.table1[0]).parent, cfg.evaluation.cd_scale, cfg.evaluation.pd_lap_scale)
log.info("wrote %s", ", ".join(map(str, paths)))
# results/{dataset}/{category}/eval/{method}/reconstruction.csv
reconstructions = {(Path(path).parts[-4], Path(path).parts[-2]): path for path in snakemake.input.reconstructions}
paths += write_paired_cd(reconstructions, paired_baselines({m: asdict(block) for m, block in cfg.methods.items()}),
                         list(cfg.dataset.categories), Path(snakemake.output.cd_paired[0]).with_suffix(""),
                         cfg.evaluation.cd_scale)
log.info("wrote %s", ", ".join(map(str, paths[-2:])))
