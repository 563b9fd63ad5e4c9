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
