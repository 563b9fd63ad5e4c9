# Ground-truth persistence diagrams of the SDF grids, and what a person looks at: manifest, figures.


rule persistence:
    input:
        grids="results/{dataset}/{category}/grids/{shard}.npz",
    output:
        diagrams="results/{dataset}/{category}/diagrams/{shard}.npz",
    log:
        "results/{dataset}/logs/persistence/{category}/{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/persistence/{category}/{shard}.tsv"
    conda:
        "../envs/topology.yaml"
    threads: 1  # as sample_sdf's (a 2-thread job waits for two free cores at once)
    priority: 3  # short and gate every later job: before the long training jobs take the cores
    params:
        settings=settings("persistence"),
    script:
        "../workflow_scripts/persistence.py"


rule category_manifest:
    input:
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
        diagrams=category_shards("results/{dataset}/{category}/diagrams/{shard}.npz"),
    output:
        manifest="results/{dataset}/{category}/manifest.csv",
    log:
        "results/{dataset}/logs/category_manifest/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/category_manifest/{category}.tsv"
    conda:
        "../envs/plot.yaml"
    threads: 1
    script:
        "../workflow_scripts/category_manifest.py"


rule plot_diagrams:
    input:
        diagrams=category_shards("results/{dataset}/{category}/diagrams/{shard}.npz"),
    output:
        figure=report(
            "results/{dataset}/{category}/figures/diagrams.png",
            caption="../report/diagrams.rst",
            category="Ground truth",
            subcategory="{category}",
        ),
    log:
        "results/{dataset}/logs/plot_diagrams/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/plot_diagrams/{category}.tsv"
    conda:
        "../envs/plot.yaml"
    threads: 1
    script:
        "../workflow_scripts/plot_diagrams.py"


rule contact_sheet:
    input:
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
        diagrams=category_shards("results/{dataset}/{category}/diagrams/{shard}.npz"),
    output:
        figure=report(
            "results/{dataset}/{category}/figures/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Ground truth",
            subcategory="{category}",
        ),
    log:
        "results/{dataset}/logs/contact_sheet/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/contact_sheet/{category}.tsv"
    conda:
        "../envs/plot.yaml"
    threads: 1
    params:
        settings=settings("contact_sheet"),
    script:
        "../workflow_scripts/contact_sheet.py"
