# Rows scored from another generator's meshes (docs/external.md, toposdf.external): per category and entry of
# `external`, its meshes on the ground truth's grid and diagrams in draws as the methods' (what `generate` writes
# for a trained method), and its reconstructions' Chamfer distances (what `reconstruct` writes). `evaluate`, the
# contact sheet, the tables and Fig. 4 then take the row as a method's. The folder's files are the rule's inputs:
# a file added, removed or rewritten reruns that row and what aggregates it, and nothing else.


rule external_samples:
    input:
        samples=external_folder_files("samples"),
        split="results/{dataset}/{category}/split.json",
    output:
        diagrams="results/{dataset}/{category}/generate/{external}/diagrams.npz",
        shapes="results/{dataset}/{category}/generate/{external}/shapes.npz",
        manifest="results/{dataset}/{category}/generate/{external}/manifest.json",
    log:
        "results/{dataset}/logs/external_samples/{category}/{external}.log",
    benchmark:
        "results/{dataset}/benchmarks/external_samples/{category}/{external}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        runtime=60,
        mem_mb=4000,
    params:
        settings=settings("external_samples"),
    script:
        "../workflow_scripts/external_samples.py"


rule external_reconstructions:
    input:
        reconstructions=external_folder_files("reconstructions"),
        split="results/{dataset}/{category}/split.json",
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
    output:
        chamfer="results/{dataset}/{category}/eval/{external}/reconstruction.csv",
    log:
        "results/{dataset}/logs/external_reconstructions/{category}/{external}.log",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        runtime=60,
        mem_mb=4000,
    params:
        settings=settings("external_reconstructions"),
    script:
        "../workflow_scripts/external_reconstructions.py"
