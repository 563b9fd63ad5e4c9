"""One CSV row per shape of a category: status, split, mesh statistics and Betti numbers."""

from toposdf.io import atomic_open, setup_logging
from toposdf.preprocess import category_manifest

log = setup_logging(snakemake.log[0])
table = category_manifest(snakemake.input.manifests, snakemake.input.diagrams)
skipped = table[table["status"] != "ok"]
log.info("%d shapes, %d skipped", len(table), len(skipped))
for row in skipped.itertuples():
    log.warning("skipped %s: %s", row.model_id, row.reason)
with atomic_open(snakemake.output.manifest, "w") as fh:
    table.to_csv(fh, index=False)
