"""The workflow configuration: validated once against its JSON schema, then handed around as dataclasses."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from toposdf.models import LatentConfig

SCHEMA_FILE = "schemas/config.schema.yaml"


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending key."""


def load_schema() -> dict:
    return yaml.safe_load(resources.files("toposdf").joinpath(SCHEMA_FILE).read_text())


def _fill_defaults(instance: Any, schema: dict) -> None:
    """Insert the schema's ``default`` for every missing property, recursively, in place."""
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra)


def _key_path(error: jsonschema.ValidationError) -> str:
    """The dotted key an error is about, e.g. ``dataset.kind`` (for a missing or unknown key: that key)."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator in ("required", "additionalProperties") and "'" in error.message:
        parts.append(error.message.split("'")[1])
    return ".".join(parts) or "<top level>"


def validate_config(config: dict) -> dict:
    """Validate a raw config dict against the schema and return a copy with defaults filled in.

    Raises:
        ConfigError: listing every invalid key as ``dataset.kind: 'foo' is not one of [...]``.
    """
    schema = load_schema()
    config = copy.deepcopy(dict(config))
    _fill_defaults(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [f"  {_key_path(e)}: {e.message}" for e in errors]
    dataset = config.get("dataset", {})
    if not errors and dataset.get("kind") == "shapenet":
        root = dataset.get("root")
        if not root:
            problems.append("  dataset.root: required when dataset.kind is 'shapenet' (the ShapeNetCore.v2 folder)")
        elif not Path(root).expanduser().is_dir():
            problems.append(f"  dataset.root: {root!r} is not a folder")
    if not errors and dataset.get("kind") == "synthetic" and dataset.get("shapes_per_category") is None:
        problems.append("  dataset.shapes_per_category: required (an integer) when dataset.kind is 'synthetic'")
    if not errors:
        for name, block in config.get("methods", {}).items():
            if block["geometry"] not in config["geometry"]:
                problems.append(f"  methods.{name}.geometry: {block['geometry']!r} is not one of the configured "
                                f"geometry entries {sorted(config['geometry'])}")
        methods, figures = config.get("methods", {}), config.get("figures", {})
        for role in ("baseline", "ours"):
            if figures[role] not in methods:
                problems.append(f"  figures.{role}: {figures[role]!r} is not one of the configured methods {sorted(methods)}")
        if figures["ours"] in methods and methods[figures["ours"]]["topology"] != "learned":
            problems.append(f"  figures.ours: {figures['ours']!r} has no PD generators (topology must be 'learned')")
        latent = config["latent"]
        if latent["prior"] == "per_code" and not latent["variational"]:
            problems.append("  latent.variational: the per-code KL (latent.prior: per_code) needs variational codes (true)")
        study = config.get("study_1d", {})
        if not any(abs(study["plot_decay"] - s) < 1e-9 for s in study["decays"]):
            problems.append(f"  study_1d.plot_decay: {study['plot_decay']} is not one of study_1d.decays {study['decays']}")
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(problems))
    if dataset.get("name") is None:
        dataset["name"] = dataset["kind"]
    return config


@dataclass(frozen=True)
class DatasetConfig:
    kind: str
    name: str
    root: str | None
    categories: tuple[str, ...]
    shapes_per_category: int | None
    test_fraction: float
    seed: int
    skip_invalid: bool


@dataclass(frozen=True)
class SdfConfig:
    n_points: int
    variances: tuple[float, ...]
    uniform_fraction: float
    margin: float


@dataclass(frozen=True)
class PersistenceConfig:
    tau: float
    min_persistence: float


@dataclass(frozen=True)
class Config:
    dataset: DatasetConfig
    sdf: SdfConfig
    grid_resolution: int
    persistence: PersistenceConfig
    shards: int
    preview_shapes: int
    model: dict
    latent: LatentConfig
    train_seed: int
    implicit: dict
    pdgen: dict
    joint: dict
    geometries: dict
    methods: dict
    evaluation: dict
    figures: dict

    def method(self, name: str) -> dict:
        """The weights and flags of one method (a row of Table 1), defaults filled in."""
        if name not in self.methods:
            raise ConfigError(f"methods.{name}: not configured; configured methods: {sorted(self.methods)}")
        return self.methods[name]

    def geometry(self, name: str) -> dict:
        """The weights of one geometric regularizer (eq. 5), shared by the methods that name it."""
        if name not in self.geometries:
            raise ConfigError(f"geometry.{name}: not configured; configured: {sorted(self.geometries)}")
        return self.geometries[name]

    @classmethod
    def from_dict(cls, raw: dict) -> "Config":
        """Validate ``raw`` (as Snakemake's ``config``) and build the typed configuration."""
        c = validate_config(raw)
        d = c["dataset"]
        return cls(
            dataset=DatasetConfig(
                kind=d["kind"],
                name=d["name"],
                root=d["root"],
                categories=tuple(d["categories"]),
                shapes_per_category=d["shapes_per_category"],
                test_fraction=float(d["test_fraction"]),
                seed=int(d["seed"]),
                skip_invalid=bool(d["skip_invalid"]),
            ),
            sdf=SdfConfig(
                n_points=int(c["sdf"]["n_points"]),
                variances=tuple(float(v) for v in c["sdf"]["variances"]),
                uniform_fraction=float(c["sdf"]["uniform_fraction"]),
                margin=float(c["sdf"]["margin"]),
            ),
            grid_resolution=int(c["grid"]["resolution"]),
            persistence=PersistenceConfig(
                tau=float(c["persistence"]["tau"]), min_persistence=float(c["persistence"]["min_persistence"])
            ),
            shards=int(c["shards"]),
            preview_shapes=int(c["preview"]["n_shapes"]),
            model=dict(c["model"]),
            latent=LatentConfig(**c["latent"]),
            train_seed=int(c["train"]["seed"]),
            implicit=dict(c["train"]["implicit"]),
            pdgen=dict(c["train"]["pdgen"]),
            joint=dict(c["train"]["joint"]),
            geometries={name: dict(block) for name, block in c["geometry"].items()},
            methods={name: dict(block) for name, block in c["methods"].items()},
            evaluation=dict(c["evaluation"]),
            figures=dict(c["figures"]),
        )


def load_config_file(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    with open(path) as fh:
        return Config.from_dict(yaml.safe_load(fh) or {})
