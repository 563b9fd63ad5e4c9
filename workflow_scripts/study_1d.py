"""Sec. 4.1 / App. B: PD matching of trigonometric polynomials under lambda_k profiles (table and figure)."""

from toposdf.io import atomic_open, setup_logging
from toposdf.figures import plot_study
from toposdf.study1d import Study1DConfig, summarize

log = setup_logging(snakemake.log[0])
cfg = Study1DConfig.from_dict(snakemake.params.settings["study_1d"])
log.info("settings: %s", cfg)
table = cfg.run()
log.info("mean relative coefficient error per ground-truth decay and profile:\n%s", summarize(table).to_string())
with atomic_open(snakemake.output.table, "w") as fh:
    table.to_csv(fh, index=False)
plot_study(table, snakemake.output.figure, decay=cfg.plot_decay)
