# Shapes -> split -> normalized meshes -> SDF samples and grids, sharded per category.


rule synthesize:
    output:
        shapes=directory("results/{dataset}/shapes/{synset}"),
    log:
        "results/{dataset}/logs/synthesize/{synset}.log",
    benchmark:
        "results/{dataset}/benchmarks/synthesize/{synset}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    priority: 3  # short and gate every later job, of every category: before the training jobs take the cores
    params:
        settings=settings("synthesize"),
        category=lambda wildcards: CATEGORY_OF_SYNSET[wildcards.synset],
    script:
        "../workflow_scripts/synthesize.py"


rule split:
    input:
        unpack(split_inputs),
    output:
        split="results/{dataset}/{category}/split.json",
    log:
        "results/{dataset}/logs/split/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/split/{category}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    priority: 3  # short and gate every later job, of every category: before the training jobs take the cores
    params:
        settings=settings("split"),
    script:
        "../workflow_scripts/split.py"


rule normalize:
    input:
        split="results/{dataset}/{category}/split.json",
    output:
        manifest="results/{dataset}/{category}/meshes/{shard}.json",
    log:
        "results/{dataset}/logs/normalize/{category}/{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/normalize/{category}/{shard}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    priority: 3  # short and gate every later job, of every category: before the training jobs take the cores
    params:
        settings=settings("normalize"),
    script:
        "../workflow_scripts/normalize.py"


rule sample_sdf:
    input:
        manifest="results/{dataset}/{category}/meshes/{shard}.json",
    output:
        samples="results/{dataset}/{category}/sdf/{shard}.npz",
    log:
        "results/{dataset}/logs/sample_sdf/{category}/{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/sample_sdf/{category}/{shard}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1  # libigl's queries use more (profiles/ ask for 4); on 2 cores a 2-thread job waits until both are
    # free at once, which held one category's preprocessing back for 28 minutes behind the other's training
    priority: 3  # short and gate every later job: before the long training jobs take the cores
    params:
        settings=settings("sample_sdf"),
    script:
        "../workflow_scripts/sample_sdf.py"


rule sdf_grid:
    input:
        manifest="results/{dataset}/{category}/meshes/{shard}.json",
    output:
        grids="results/{dataset}/{category}/grids/{shard}.npz",
    log:
        "results/{dataset}/logs/sdf_grid/{category}/{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/sdf_grid/{category}/{shard}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1  # as sample_sdf's
    priority: 3  # short and gate every later job: before the long training jobs take the cores
    params:
        settings=settings("sdf_grid"),
    script:
        "../workflow_scripts/sdf_grid.py"
