# Validation, shape lists and input functions. The logic lives in the toposdf package.
import sys

from toposdf.stages import export_device_policy, settings as config_settings
from toposdf.config import ConfigError, validate_config
from toposdf.layout import SHAPENET_MODELS, SYNSETS, mesh_files, training_memory_mb
from toposdf.stages import reads as stage_reads

# Validate once, before any job runs: an invalid key stops here with a message naming it (the message alone, no
# traceback).
try:
    config.update(validate_config(config))
except ConfigError as error:
    sys.exit(f"error: {error}")
# The device policy reaches the jobs through their environment, not their params: changing it reruns nothing.
export_device_policy(config)

DATASET = config["dataset"]["name"]
CATEGORIES = config["dataset"]["categories"]
SHARDS = list(range(config["shards"]))
CATEGORY_OF_SYNSET = {synset: category for category, synset in SYNSETS.items()}
# Rows scored from another generator's meshes (rules/external.smk), after the methods in the tables and figures
EXTERNAL = list(config["external"] or {})
# The 3DShape2VecSet row (rules/vecset.smk), where `vecset` is set
VECSET = ["vecset"] if config["vecset"] is not None else []
ROWS = list(config["methods"]) + EXTERNAL + VECSET


wildcard_constraints:
    dataset=DATASET,
    category="|".join(SYNSETS),
    synset=r"\d{8}",
    shard=r"\d+",
    method="|".join(config["methods"]),
    geometry="|".join(config["geometry"]),
    external="|".join(EXTERNAL) or "(?!)",  # (?!) matches nothing: no external rows


def split_inputs(wildcards):
    """The synthetic shapes of a category (nothing for a ShapeNet folder, named in the config), and DeepSDF's
    split files where dataset.splits names them."""
    inputs = {}
    if config["dataset"]["kind"] == "synthetic":
        inputs["shapes"] = f"results/{wildcards.dataset}/shapes/{SYNSETS[wildcards.category]}"
    if config["dataset"]["splits"]:
        for subset in ("train", "test"):
            inputs[f"{subset}_split"] = config["dataset"]["splits"][subset].format(category=wildcards.category)
    return inputs


def training_mem_mb(base_mb):
    """resources: a training job's mem_mb from the data it holds (toposdf.layout.training_memory_mb): the category's
    training shapes (dataset.shapes_per_category, else ShapeNet's model count) times sdf.n_points."""
    dataset = config["dataset"]

    def mem_mb(wildcards):
        shapes = dataset["shapes_per_category"] or SHAPENET_MODELS.get(wildcards.category, 10000)
        train = round(shapes * (1 - dataset["test_fraction"]))
        return training_memory_mb(train, config["sdf"]["n_points"], base_mb)

    return mem_mb


def category_shards(pattern):
    """Input function: one path per shard of the category, e.g. every diagrams/{shard}.npz."""

    def inputs(wildcards):
        return expand(pattern, shard=SHARDS, **wildcards)

    return inputs


def stage1_checkpoint(wildcards):
    """Input function of stage 1b: the stage-1 checkpoint of the method's geometric regularizer."""
    return stage_checkpoints(wildcards.dataset, wildcards.category, wildcards.method)["implicit"]


def stage_checkpoints(dataset, category, method):
    """The checkpoints stage 2 of a method starts from: stage 1 of its geometric regularizer, and stage 1b for
    methods with pretrained PD generators; none for a method trained from scratch (Sec. 6.3's No PD Training)."""
    block = config["methods"][method]
    if block["from_scratch"]:
        return {}
    train = f"results/{dataset}/{category}/train"
    stages = {"implicit": f"{train}/stage1/{block['geometry']}/implicit.pt"}
    if block["topology"] == "learned" and block["pretrain_pdgen"]:
        stages["pdgen"] = f"{train}/{method}/pdgen.pt"
    return stages


def joint_priority(wildcards):
    """Stage 2's scheduling priority: a method trained from scratch (No PD Training, the longest job, which needs no
    stage-1 checkpoint) as high as stage 1, so that it starts with the first training jobs instead of ending the
    run on one core; the others 1."""
    return 2 if config["methods"][wildcards.method]["from_scratch"] else 1


def joint_inputs(wildcards):
    """Input function of stage 2: :func:`stage_checkpoints` of the job's method and, with pretrained PD generators
    and lambda_smooth: auto, the eq. 10 weight that stage 1b chose (smoothness_selection.json)."""
    inputs = stage_checkpoints(wildcards.dataset, wildcards.category, wildcards.method)
    if "pdgen" in inputs and config["methods"][wildcards.method]["lambda_smooth"] == "auto":
        inputs["smoothness"] = inputs["pdgen"].replace("pdgen.pt", "smoothness_selection.json")
    return inputs


def settings(rule):
    """params: the config entries the rule's jobs read, as the stage declares them (toposdf/stages.py), formatted
    with the job's wildcards; for a method, "{geometry}" is its geometric regularizer. Snakemake reruns a job when
    its params change, so a changed entry reruns the jobs that read it and what depends on them, and nothing else.
    Scripts build their config from these settings alone (Config.from_settings): reading another entry raises,
    naming it."""

    def params(wildcards):
        fill = dict(wildcards.items())
        if fill.get("method") in config["methods"]:
            fill.setdefault("geometry", config["methods"][fill["method"]]["geometry"])
        return config_settings(config, stage_reads(rule, **fill))

    return params


def external_folder_files(key):
    """Input function: the mesh files of the entry's ``key`` folder (samples, reconstructions) for the category;
    none where the entry has no such folder."""

    def inputs(wildcards):
        folder = config["external"][wildcards.external][key]
        if folder is None:
            return []
        return [str(path) for path in mesh_files(folder.format(category=wildcards.category))]

    return inputs


def trained_model(wildcards):
    """Input function of evaluate: the method's checkpoint; none for an external row or 3DShape2VecSet's."""
    if wildcards.method in EXTERNAL + VECSET:
        return {}
    return {"model": f"results/{wildcards.dataset}/{wildcards.category}/train/{wildcards.method}/model.pt"}


def training_curves_inputs(wildcards):
    """The loss CSVs of every method of a category, named "{method}_{stage}": stage 1 ("implicit") and stage 1b
    ("pdgen") where the method has them, and stage 2 ("joint")."""
    curves = {}
    for method in config["methods"]:
        stages = stage_checkpoints(wildcards.dataset, wildcards.category, method)
        for stage, checkpoint in stages.items():  # implicit.pt -> implicit_log.csv, pdgen.pt -> pdgen_log.csv
            curves[f"{method}_{stage}"] = checkpoint.replace(".pt", "_log.csv")
        curves[f"{method}_joint"] = f"results/{wildcards.dataset}/{wildcards.category}/train/{method}/joint_log.csv"
    return curves


# The figures' inputs (rules/figures.smk)
OURS = config["figures"]["ours"]
BASELINE = config["figures"]["baseline"]
SHAPES = "results/{dataset}/{category}/generate/{method}/shapes.npz"


def shapes_of(methods):
    """Input function: the first draw's shapes of every category and of ``methods``, named "{category}__{method}"."""

    def inputs(wildcards):
        return {
            f"{category}__{method}": SHAPES.format(
                dataset=wildcards.dataset, category=category, method=method
            )
            for category in CATEGORIES
            for method in methods
        }

    return inputs


def training_shapes(wildcards):
    """Input function: each category's split ("{category}__split") and normalized-mesh manifests
    ("{category}__manifests")."""
    inputs = {}
    for category in CATEGORIES:
        prefix = f"results/{wildcards.dataset}/{category}"
        inputs[f"{category}__split"] = f"{prefix}/split.json"
        inputs[f"{category}__manifests"] = [f"{prefix}/meshes/{shard}.json" for shard in SHARDS]
    return inputs
