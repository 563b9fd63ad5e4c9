# toposdf: "Enhancing Implicit Shape Generators Using Topological Regularizations" (ICML 2024), end to end.
#   snakemake --cores all                                   # the CPU-sized default on the synthetic furniture
#   snakemake --cores all --configfile presets/tiny.yaml    # a smoke run
# See README.md for ShapeNet and cluster runs.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/persistence.smk"
include: "rules/train.smk"


rule all:
    default_target: True
    input:
        expand(
            "results/{dataset}/{category}/manifest.csv",
            dataset=DATASET,
            category=CATEGORIES,
        ),
        expand(
            "results/{dataset}/{category}/sdf/{shard}.npz",
            dataset=DATASET,
            category=CATEGORIES,
            shard=SHARDS,
        ),
        expand(
            "results/{dataset}/{category}/figures/{figure}.png",
            dataset=DATASET,
            category=CATEGORIES,
            figure=["diagrams", "contact_sheet"],
        ),
        expand(
            "results/{dataset}/{category}/train/{method}/model.pt",
            dataset=DATASET,
            category=CATEGORIES,
            method=config["methods"],
        ),
