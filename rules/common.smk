# Validation, shape lists and input functions. The logic lives in the toposdf package.
from toposdf.config import validate_config
from toposdf.data import SYNSETS

# Validate once, before any job runs: an invalid key stops here with a message naming it.
config.update(validate_config(config))

DATASET = config["dataset"]["name"]
CATEGORIES = config["dataset"]["categories"]
SHARDS = list(range(config["shards"]))
CATEGORY_OF_SYNSET = {synset: category for category, synset in SYNSETS.items()}


wildcard_constraints:
    dataset=DATASET,
    category="|".join(SYNSETS),
    synset=r"\d{8}",
    shard=r"\d+",
    method="|".join(config["methods"]),
    geometry="|".join(config["geometry"]),


def split_inputs(wildcards):
    """The synthetic shapes of a category, or nothing for a ShapeNet folder (named in the config)."""
    if config["dataset"]["kind"] == "synthetic":
        return {
            "shapes": f"results/{wildcards.dataset}/shapes/{SYNSETS[wildcards.category]}"
        }
    return {}


def category_shards(pattern):
    """Input function: one path per shard of the category, e.g. every diagrams/{shard}.npz."""

    def inputs(wildcards):
        return expand(pattern, shard=SHARDS, **wildcards)

    return inputs


def stage1_checkpoint(wildcards):
    """The stage-1 checkpoint a method starts from: the one of its geometric regularizer."""
    geometry = config["methods"][wildcards.method]["geometry"]
    return f"results/{wildcards.dataset}/{wildcards.category}/train/stage1/{geometry}/implicit.pt"


def joint_inputs(wildcards):
    """Stage 2's checkpoints: stage 1, and stage 1b for methods with pretrained PD generators; none for a method
    trained from scratch (Sec. 6.3's No PD Training)."""
    method = config["methods"][wildcards.method]
    if method["from_scratch"]:
        return {}
    inputs = {"implicit": stage1_checkpoint(wildcards)}
    if method["topology"] == "learned" and method["pretrain_pdgen"]:
        inputs["pdgen"] = (
            f"results/{wildcards.dataset}/{wildcards.category}/train/{wildcards.method}/pdgen.pt"
        )
    return inputs
