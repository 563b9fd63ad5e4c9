# The 3DShape2VecSet row of Table 1 (toposdf.vecset, docs/vecset.md), where `vecset` is set: per category, the
# autoencoder on the training shapes' surface clouds and occupancies, the latent diffusion model on their
# encodings, then its samples and the test shapes' reconstructions meshed and scored on the ground truth's path as
# an external row's meshes are. `evaluate`, the contact sheet, the tables and Fig. 4 then take it as a method.


rule vecset_autoencoder:
    input:
        split="results/{dataset}/{category}/split.json",
        samples=category_shards("results/{dataset}/{category}/sdf/{shard}.npz"),
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
        grids=category_shards("results/{dataset}/{category}/grids/{shard}.npz"),
    output:
        checkpoint="results/{dataset}/{category}/train/vecset/autoencoder.pt",
        curve="results/{dataset}/{category}/train/vecset/autoencoder_log.csv",
        # the reconstruction IoU of the training shapes and of the test shapes on the ground truth's grid
        fit="results/{dataset}/{category}/train/vecset/autoencoder_fit.json",
    log:
        "results/{dataset}/logs/vecset_autoencoder/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/vecset_autoencoder/{category}.tsv"
    conda:
        "../envs/train.yaml"
    threads: 2
    priority: 2
    resources:
        gpu=1,
        runtime=720,
        mem_mb=training_mem_mb(4000),
    params:
        settings=settings("vecset_autoencoder"),
    script:
        "../workflow_scripts/vecset_autoencoder.py"


rule vecset_diffusion:
    input:
        autoencoder="results/{dataset}/{category}/train/vecset/autoencoder.pt",
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
    output:
        checkpoint="results/{dataset}/{category}/train/vecset/diffusion.pt",
        curve="results/{dataset}/{category}/train/vecset/diffusion_log.csv",
    log:
        "results/{dataset}/logs/vecset_diffusion/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/vecset_diffusion/{category}.tsv"
    conda:
        "../envs/train.yaml"
    threads: 2
    priority: 2
    resources:
        gpu=1,
        runtime=720,
        mem_mb=8000,
    params:
        settings=settings("vecset_diffusion"),
    script:
        "../workflow_scripts/vecset_diffusion.py"


rule vecset_samples:
    input:
        autoencoder="results/{dataset}/{category}/train/vecset/autoencoder.pt",
        diffusion="results/{dataset}/{category}/train/vecset/diffusion.pt",
        split="results/{dataset}/{category}/split.json",
    output:
        diagrams="results/{dataset}/{category}/generate/vecset/diagrams.npz",
        shapes="results/{dataset}/{category}/generate/vecset/shapes.npz",
    log:
        "results/{dataset}/logs/vecset_samples/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/vecset_samples/{category}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=120,
        mem_mb=8000,
    params:
        settings=settings("vecset_samples"),
    script:
        "../workflow_scripts/vecset_samples.py"


rule vecset_reconstructions:
    input:
        autoencoder="results/{dataset}/{category}/train/vecset/autoencoder.pt",
        split="results/{dataset}/{category}/split.json",
        manifests=category_shards("results/{dataset}/{category}/meshes/{shard}.json"),
    output:
        chamfer="results/{dataset}/{category}/eval/vecset/reconstruction.csv",
    log:
        "results/{dataset}/logs/vecset_reconstructions/{category}.log",
    benchmark:
        "results/{dataset}/benchmarks/vecset_reconstructions/{category}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=60,
        mem_mb=4000,
    params:
        settings=settings("vecset_reconstructions"),
    script:
        "../workflow_scripts/vecset_reconstructions.py"
