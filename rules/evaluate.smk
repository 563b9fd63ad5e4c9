# Evaluation (paper Sec. 6, docs/method.md, Evaluation), per category and method: random draws z ~ N(0, I) with their
# grids, diagrams and meshes; the interpolation of Fig. 2; DeepSDF's test-shape reconstruction (CD-mean); and
# every metric of Tables 1 and 2. Number files record the config hash, the checkpoint and the seed.


rule generate:
    input:
        model="results/{dataset}/{category}/train/{method}/model.pt",
        split="results/{dataset}/{category}/split.json",
    output:
        diagrams="results/{dataset}/{category}/generate/{method}/diagrams.npz",
        shapes="results/{dataset}/{category}/generate/{method}/shapes.npz",
    log:
        "results/{dataset}/logs/generate/{category}/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/generate/{category}/{method}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=60,
        mem_mb=8000,
    params:
        settings=settings("generate"),
    script:
        "../workflow_scripts/generate.py"


rule interpolate:
    input:
        model="results/{dataset}/{category}/train/{method}/model.pt",
    output:
        meshes="results/{dataset}/{category}/generate/{method}/interpolation.npz",
        diagrams="results/{dataset}/{category}/generate/{method}/interpolation.diagrams.npz",
        generator="results/{dataset}/{category}/generate/{method}/interpolation.generator.npz",
    log:
        "results/{dataset}/logs/interpolate/{category}/{method}.log",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=30,
        mem_mb=4000,
    params:
        settings=settings("interpolate"),
    script:
        "../workflow_scripts/interpolate.py"


rule reconstruct:
    input:
        model="results/{dataset}/{category}/train/{method}/model.pt",
        split="results/{dataset}/{category}/split.json",
        samples=category_shards("results/{dataset}/{category}/sdf/{shard}.npz"),
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
    output:
        chamfer="results/{dataset}/{category}/eval/{method}/reconstruction.csv",
        meshes="results/{dataset}/{category}/eval/{method}/reconstruction.npz",
    log:
        "results/{dataset}/logs/reconstruct/{category}/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/reconstruct/{category}/{method}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=240,
        mem_mb=8000,
    params:
        settings=settings("reconstruct"),
    script:
        "../workflow_scripts/reconstruct.py"


rule evaluate:
    wildcard_constraints:
        method="|".join(ROWS),  # an external row too: its draws and reconstructions come from its meshes
    input:
        unpack(trained_model),
        split="results/{dataset}/{category}/split.json",
        generated="results/{dataset}/{category}/generate/{method}/diagrams.npz",
        shapes="results/{dataset}/{category}/generate/{method}/shapes.npz",
        chamfer="results/{dataset}/{category}/eval/{method}/reconstruction.csv",
        diagrams=category_shards("results/{dataset}/{category}/diagrams/{shard}.npz"),
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
    output:
        metrics="results/{dataset}/{category}/eval/{method}/metrics.json",
    log:
        "results/{dataset}/logs/evaluate/{category}/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/evaluate/{category}/{method}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    params:
        settings=settings("evaluate"),
    script:
        "../workflow_scripts/evaluate.py"


rule calibrate:
    input:
        split="results/{dataset}/{category}/split.json",
        diagrams=category_shards("results/{dataset}/{category}/diagrams/{shard}.npz"),
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
    output:
        calibration="results/{dataset}/{category}/eval/calibration.json",
    log:
        "results/{dataset}/logs/calibrate/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/calibrate/{category}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        settings=settings("calibrate"),
    script:
        "../workflow_scripts/calibrate.py"


rule tables:
    input:
        metrics=expand(
            "results/{{dataset}}/{category}/eval/{method}/metrics.json",
            category=CATEGORIES,
            method=ROWS,
        ),
        calibration=expand(
            "results/{{dataset}}/{category}/eval/calibration.json", category=CATEGORIES
        ),
        reconstructions=expand(
            "results/{{dataset}}/{category}/eval/{method}/reconstruction.csv",
            category=CATEGORIES,
            method=list(config["methods"]) + VECSET,  # 3DShape2VecSet's against ours (Sec. 6.2)
        ),
    output:
        cd_paired=report(
            multiext("results/{dataset}/tables/cd_paired", ".csv", ".md"),
            caption="../report/cd_paired.rst",
            category="Tables",
        ),
        table1=report(
            multiext("results/{dataset}/tables/table1", ".csv", ".md", ".tex"),
            caption="../report/table1.rst",
            category="Tables",
        ),
        table2=report(
            multiext("results/{dataset}/tables/table2", ".csv", ".md", ".tex"),
            caption="../report/table2.rst",
            category="Tables",
        ),
        generation=report(
            multiext("results/{dataset}/tables/generation", ".csv", ".md", ".tex"),
            caption="../report/generation.rst",
            category="Tables",
        ),
    log:
        "results/{dataset}/logs/tables.log",
    conda:
        "../envs/evaluate.yaml"
    params:
        settings=settings("tables"),
    script:
        "../workflow_scripts/tables.py"


rule claims:
    input:
        metrics=expand(
            "results/{{dataset}}/{category}/eval/{method}/metrics.json",
            category=CATEGORIES,
            method=list(config["methods"]) + VECSET,  # Sec. 6.2's checks read the 3DShape2VecSet row
        ),
        calibration=expand(
            "results/{{dataset}}/{category}/eval/calibration.json", category=CATEGORIES
        ),
        cd_paired="results/{dataset}/tables/cd_paired.csv",
        fits=expand(
            "results/{{dataset}}/{category}/eval/training_fit.json", category=CATEGORIES
        ),
        fig3=expand(
            "results/{{dataset}}/{category}/figures/fig3_pd_matrices.json",
            category=CATEGORIES,
        ),
    output:
        claims=report(
            multiext("results/{dataset}/tables/claims", ".csv", ".md"),
            caption="../report/claims.rst",
            category="Tables",
        ),
    log:
        "results/{dataset}/logs/claims.log",
    conda:
        "../envs/evaluate.yaml"
    params:
        settings=settings("claims"),
    script:
        "../workflow_scripts/claims.py"


rule training_fit:
    input:
        models=expand(
            "results/{{dataset}}/{{category}}/train/{method}/model.pt",
            method=config["methods"],
        ),
        reconstructions=expand(
            "results/{{dataset}}/{{category}}/eval/{method}/reconstruction.npz",
            method=config["methods"],
        ),
        grids=category_shards("results/{dataset}/{category}/grids/{shard}.npz"),
    output:
        fit=report(
            "results/{dataset}/{category}/eval/training_fit.json",
            caption="../report/training_fit.rst",
            category="Training fit",
        ),
    log:
        "results/{dataset}/logs/training_fit/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/training_fit/{category}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=30,
        mem_mb=8000,
    params:
        settings=settings("training_fit"),
    script:
        "../workflow_scripts/training_fit.py"
