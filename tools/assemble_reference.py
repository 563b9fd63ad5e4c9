"""Tables 1-2, the generation table, the paired CD-mean differences and ``claims.md`` of a reference run made one
category at a time, from the per-category records that ``tools/pack_reference.py`` keeps.

A run too long for one sitting (``presets/cpu_long.yaml`` on 2 cores) is made one category per invocation; each
is packed and its ``<dataset>/<category>/`` folder copied into one reference folder. The files the ``tables`` and
``claims`` rules read are all kept in a pack (every row's ``metrics.json`` and ``reconstruction.csv``, the
``calibration.json``, ``training_fit.json`` and ``fig3_pd_matrices.json`` of each category), so this tool runs the
two rules' entry points (:func:`toposdf.tables.run_tables`, :func:`toposdf.claims.run_claims`) on them, with the
settings the rules would pass, for the categories of the config: the same tables as one run over all of them,
without their checkpoints. The figures that span the categories (Fig. 1, Fig. 4) need the meshes and are not
remade; each category's own figures are in its pack.

    python tools/assemble_reference.py results/reference/cpu_long/seed0 --configfile cpu_long.yaml

The config is the folder's ``config.yaml`` (the Snakefile's own) with the ``--configfile`` files laid over it as
Snakemake lays them, so that the methods come in the run's order: the command line's first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toposdf.claims import run_claims
from toposdf.config import Config, merge_configs, read_config_files, validate_config
from toposdf.jobs import Job
from toposdf.stages import reads, settings
from toposdf.tables import rows_of, run_tables


def snakemake_config(folder: Path, configfiles: list[str]) -> dict:
    """The validated config of a run made with ``snakemake --configfile <configfiles>`` in ``folder``: Snakemake
    starts from the command line's files, lays the Snakefile's ``config.yaml`` over them and the command line's
    files over that again, so their values win and their keys (a preset's extra methods) come first."""
    command_line = read_config_files(*(folder / name for name in configfiles))
    return validate_config(merge_configs(merge_configs(command_line, read_config_files(folder / "config.yaml")),
                                         command_line))


def table_jobs(folder: Path, config: dict) -> tuple[Job, Job]:
    """The ``tables`` and ``claims`` jobs of a reference ``folder`` holding ``<dataset>/<category>/`` for every
    category of the validated ``config``, with the inputs and outputs the rules give them."""
    root = folder / config["dataset"]["name"]
    categories = config["dataset"]["categories"]
    missing = [c for c in categories if not (root / c / "eval" / "calibration.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: no records of {', '.join(missing)} (pack each category's run here first)")
    rows = rows_of(Config.from_dict(config))  # the rules' ROWS
    vecset = ["vecset"] if "vecset" in rows else []

    def each(pattern: str, methods=(None,)) -> list[str]:
        return [str(root / pattern.format(category=c, method=m)) for c in categories for m in methods]

    tables = root / "tables"
    tables_job = Job.of(
        settings(config, reads("tables")),
        {"metrics": each("{category}/eval/{method}/metrics.json", rows),
         "calibration": each("{category}/eval/calibration.json"),
         "reconstructions": each("{category}/eval/{method}/reconstruction.csv", list(config["methods"]) + vecset)},
        {name: [str(tables / f"{name}{ext}") for ext in exts] for name, exts in
         (("cd_paired", (".csv", ".md")), ("table1", (".csv", ".md", ".tex")), ("table2", (".csv", ".md", ".tex")),
          ("generation", (".csv", ".md", ".tex")))})
    claims_job = Job.of(
        settings(config, reads("claims")),
        {"metrics": each("{category}/eval/{method}/metrics.json", list(config["methods"]) + vecset),
         "calibration": each("{category}/eval/calibration.json"), "cd_paired": str(tables / "cd_paired.csv"),
         "fits": each("{category}/eval/training_fit.json"),
         "fig3": each("{category}/figures/fig3_pd_matrices.json")},
        {"claims": [str(tables / "claims.csv"), str(tables / "claims.md")]})
    return tables_job, claims_job


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the reference folder (it holds <dataset>/<category>/)")
    parser.add_argument("--configfile", nargs="*", default=[],
                        help="the files the run gave to snakemake's --configfile, relative to the folder (config.yaml "
                             "is the Snakefile's own and is always read first)")
    args = parser.parse_args(argv)
    config = snakemake_config(args.folder, args.configfile)
    try:
        tables_job, claims_job = table_jobs(args.folder, config)
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}") from None
    (Path(tables_job.output.table1[0]).parent).mkdir(parents=True, exist_ok=True)
    written = run_tables(tables_job) + run_claims(claims_job)
    print(f"{len(written)} files -> {Path(written[0]).parent}", file=sys.stderr)


if __name__ == "__main__":
    main()
