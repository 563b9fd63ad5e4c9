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
include: "rules/evaluate.smk"
include: "rules/external.smk"
include: "rules/vecset.smk"
include: "rules/figures.smk"
include: "rules/study.smk"


rule data:
    """The data alone, for a workstation before training goes to a cluster (docs/cluster.md): every category's
    manifest, SDF samples, grids, diagrams and their figures."""
    input:
        expand(
            "results/{dataset}/{category}/{output}",
            dataset=DATASET,
            category=CATEGORIES,
            output=["manifest.csv", "figures/diagrams.png", "figures/contact_sheet.png"],
        ),
        expand(
            "results/{dataset}/{category}/{kind}/{shard}.npz",
            dataset=DATASET,
            category=CATEGORIES,
            kind=["sdf", "diagrams"],
            shard=SHARDS,
        ),


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
            "results/{dataset}/tables/{table}.{ext}",
            dataset=DATASET,
            table=["table1", "table2", "generation"],
            ext=["csv", "md", "tex"],
        ),
        expand(
            "results/{dataset}/tables/claims.{ext}", dataset=DATASET, ext=["csv", "md"]
        ),
        expand(
            "results/{dataset}/figures/{figure}.png",
            dataset=DATASET,
            figure=["fig1_samples", "fig4_methods"],
        ),
        expand(
            "results/{dataset}/{category}/figures/{figure}.png",
            dataset=DATASET,
            category=CATEGORIES,
            figure=["fig2_interpolation", "fig3_pd_matrices", "training_curves"],
        ),
        expand(
            "results/{dataset}/{category}/figures/prior_samples/{method}.png",
            dataset=DATASET,
            category=CATEGORIES,
            method=ROWS,
        ),
        expand(
            "results/{dataset}/{category}/eval/training_fit.json",
            dataset=DATASET,
            category=CATEGORIES,
        ),
        expand(
            "results/{dataset}/{category}/train/vecset/autoencoder_fit.json",
            dataset=DATASET,
            category=CATEGORIES if VECSET else [],
        ),
        f"results/{DATASET}/study_1d/study_1d.csv",
        f"results/{DATASET}/study_1d/study_1d.png",
