# Training (paper Sec. 5.4), per category: stage 1 (eq. 11) once per geometric regularizer, stage 1b (eq. 12)
# and stage 2 (eqs. 13-15) per method. Every checkpoint is written atomically; a killed job resumes on rerun.


rule pretrain_implicit:
    input:
        split="results/{dataset}/{category}/split.json",
        samples=category_shards("results/{dataset}/{category}/sdf/{shard}.npz"),
    output:
        checkpoint="results/{dataset}/{category}/train/stage1/{geometry}/implicit.pt",
        curve="results/{dataset}/{category}/train/stage1/{geometry}/implicit_log.csv",
    log:
        "results/{dataset}/logs/pretrain_implicit/{category}/{geometry}.log",
    benchmark:
        "results/{dataset}/benchmarks/pretrain_implicit/{category}/{geometry}.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    priority: 2  # the long jobs first, so that they are not left on the critical path
    resources:
        gpu=1,
        runtime=720,
        mem_mb=training_mem_mb(4000),
    params:
        settings=settings("pretrain_implicit"),
    script:
        "../workflow_scripts/pretrain_implicit.py"


rule pretrain_pdgen:
    input:
        implicit=stage1_checkpoint,
        diagrams=category_shards("results/{dataset}/{category}/diagrams/{shard}.npz"),
    output:
        checkpoint="results/{dataset}/{category}/train/{method}/pdgen.pt",
        curve="results/{dataset}/{category}/train/{method}/pdgen_log.csv",
        # lambda_smooth: auto: the share of eq. 10's unit chosen by held-out PD-LAP, and the curve it came from
        selection="results/{dataset}/{category}/train/{method}/smoothness_selection.json",
    log:
        "results/{dataset}/logs/pretrain_pdgen/{category}/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/pretrain_pdgen/{category}/{method}.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=120,
        mem_mb=8000,
    params:
        settings=settings("pretrain_pdgen"),
    script:
        "../workflow_scripts/pretrain_pdgen.py"


rule joint_train:
    input:
        unpack(joint_inputs),
        split="results/{dataset}/{category}/split.json",
        samples=category_shards("results/{dataset}/{category}/sdf/{shard}.npz"),
        diagrams=category_shards("results/{dataset}/{category}/diagrams/{shard}.npz"),
    output:
        checkpoint="results/{dataset}/{category}/train/{method}/model.pt",
        curve="results/{dataset}/{category}/train/{method}/joint_log.csv",
    log:
        "results/{dataset}/logs/joint_train/{category}/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/joint_train/{category}/{method}.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    priority: joint_priority
    resources:
        gpu=1,
        runtime=1440,
        mem_mb=training_mem_mb(6000),
    params:
        settings=settings("joint_train"),
    script:
        "../workflow_scripts/joint_train.py"
