# Training (issue 3, in progress): stage 1, the implicit generator (eq. 11), per category and method.


rule pretrain_implicit:
    input:
        split="results/{dataset}/{category}/split.json",
        samples=category_shards("results/{dataset}/{category}/sdf/{shard}.npz"),
    output:
        checkpoint="results/{dataset}/{category}/train/{method}/implicit.pt",
    log:
        "results/{dataset}/logs/pretrain_implicit/{category}/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/pretrain_implicit/{category}/{method}.tsv"
    params:
        curve="results/{dataset}/{category}/train/{method}/implicit_log.csv",
    threads: 2
    resources:
        gpu=1,
        runtime=720,
        mem_mb=16000,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/pretrain_implicit.py"
