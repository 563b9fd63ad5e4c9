"""The workflow configuration: validated once against its JSON schema (the one place a default lives), then a tree
of frozen dataclasses generated from the schema (:func:`typed`); a job's tree holds only what its stage reads."""

from __future__ import annotations

import copy
import dataclasses
import functools
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

SCHEMA_FILE = "schemas/config.schema.yaml"


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending key."""


@functools.lru_cache(maxsize=None)
def load_schema() -> dict:
    """The config's JSON schema (parsed once; do not change it)."""
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


_SCALARS = {"integer": int, "number": (int, float), "boolean": bool, "null": type(None)}


def _coerce_strings(config: dict, validator: jsonschema.Draft202012Validator) -> None:
    """Read, as YAML, strings the schema wants as numbers, booleans or null, in place: Snakemake's
    ``--config 'model={latent_size: 32}'`` hands nested values over as strings (``'32'``). An entry that allows
    several kinds (``lambda_smooth``: a number or ``auto``) reports its type error inside the ``anyOf`` error."""

    def with_branches(errors):
        for error in errors:
            yield error
            yield from with_branches(error.context or [])

    for error in with_branches(validator.iter_errors(config)):
        if error.validator != "type" or not isinstance(error.instance, str) or not error.absolute_path:
            continue
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        try:
            value = yaml.safe_load(error.instance)
        except yaml.YAMLError:
            continue
        if any(t in _SCALARS and isinstance(value, _SCALARS[t]) and not (t != "boolean" and isinstance(value, bool))
               for t in wanted):
            *parents, key = error.absolute_path
            container = config
            for part in parents:
                container = container[part]
            container[key] = value


def validate_config(config: dict) -> dict:
    """Validate a raw config dict against the schema and return a copy with defaults filled in.

    Raises:
        ConfigError: listing every invalid key as ``dataset.kind: 'foo' is not one of [...]``.
    """
    schema = load_schema()
    config = copy.deepcopy(dict(config))
    _fill_defaults(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    _coerce_strings(config, validator)
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


class Block:
    """Base of the typed config blocks: frozen dataclasses generated from the schema (:func:`block_class`). A job's
    tree holds only the settings its stage declares (:mod:`toposdf.stages`); reading another raises."""

    _key = ""

    def __getattr__(self, name: str):  # called only for a field the block does not have
        if name.startswith("__"):
            raise AttributeError(name)
        raise ConfigError(f"{self._key}.{name}".lstrip(".").replace("*", "<name>") + ": not in this job's settings; declare it in the "
                          "stage's reads (toposdf/stages.py), so that a change to it reruns the job")


class Entries(Mapping):
    """Named entries of one kind (``methods``, ``geometry``): a read-only mapping of blocks."""

    def __init__(self, key: str, entries: dict) -> None:
        self._key, self._entries = key, entries

    def __getitem__(self, name: str):
        if name not in self._entries:
            raise ConfigError(f"{self._key}.{name}: not configured (or not in this job's settings); "
                              f"configured: {sorted(self._entries)}")
        return self._entries[name]

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other) -> bool:
        return isinstance(other, Entries) and self._entries == other._entries

    def __repr__(self) -> str:
        return f"Entries({self._key!r}, {self._entries!r})"


def _node(path: str) -> dict:
    """The schema of the block at the dotted ``path`` ("" is the whole config; "methods.*" an entry)."""
    node = load_schema()
    for part in filter(None, path.split(".")):
        node = node["additionalProperties"] if part == "*" else node["properties"][part]
    return node


def _entries_schema(node: dict) -> dict | None:
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) and "properties" not in node else None


@functools.lru_cache(maxsize=None)
def block_class(path: str, names: tuple[str, ...] | None = None) -> type:
    """The frozen dataclass of the schema block at ``path`` with the fields ``names`` (None: every property, with
    the schema's defaults as the fields' defaults), keyword-only."""
    properties = _node(path)["properties"]
    specs = []
    for name in names if names is not None else properties:
        default = properties[name].get("default", dataclasses.MISSING) if names is None else dataclasses.MISSING
        value = dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d)) \
            if isinstance(default, (dict, list)) else dataclasses.field(default=default)
        specs.append((name, Any, value))
    title = "".join(part.title() for part in path.replace("*", "entry").split(".")) or "Config"
    return dataclasses.make_dataclass(title.replace("_", ""), specs, bases=(Block,), frozen=True, kw_only=True,
                                      namespace={"_key": path})


def typed(value: Any, path: str = "", node: dict | None = None) -> Any:
    """A validated config (or the slice of one that :func:`settings` took) as a tree of frozen blocks: dicts become
    :func:`block_class` instances or :class:`Entries`, lists tuples, integers where the schema wants a number
    floats."""
    node = _node(path) if node is None else node
    if isinstance(value, dict):
        if _entries_schema(node) is not None:
            return Entries(path, {name: typed(entry, f"{path}.*") for name, entry in value.items()})
        names = tuple(value)
        cls = block_class(path) if set(names) == set(node["properties"]) else block_class(path, names)
        return cls(**{name: typed(item, f"{path}.{name}".lstrip(".")) for name, item in value.items()})
    if isinstance(value, list):
        return tuple(typed(item, path, node.get("items", {})) for item in value)
    kinds = node.get("type") or [branch.get("type") for branch in node.get("anyOf", [])]
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if isinstance(value, int) and not isinstance(value, bool) and "number" in kinds and "integer" not in kinds:
        return float(value)
    return value


def settings(config: dict, keys: Iterable[str]) -> dict:
    """The entries of a validated ``config`` at the dotted ``keys`` (``"persistence"``, ``"train.joint"``,
    ``"methods.ours_deepsdf.lambda_con"``), as one nested dict with sorted keys (the methods keep their order).

    This is what a rule passes through ``params:``: Snakemake reruns a job when its params change, so each job
    reads its settings from here (:meth:`Config.from_settings`) and never from the whole config.
    """
    out: dict = {}
    for dotted in keys:
        value, parts = config, dotted.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(value, dict) or part not in value:
                raise ConfigError(f"{'.'.join(parts[:depth + 1])}: no such config entry (asked for {dotted!r})")
            value = value[part]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(value)
    return _sorted(out)


def _sorted(value, key: str = ""):
    """``value`` with every dict's keys in sorted order (a reordered YAML file must not look like a change), except
    the methods: their order is the order of the tables' rows and the figures' rows."""
    if not isinstance(value, dict):
        return value
    names = list(value) if key == "methods" else sorted(value)
    return {k: _sorted(value[k], f"{key}.{k}".lstrip(".")) for k in names}


class Config:
    """The typed configuration: :func:`typed` of a validated config (:meth:`from_dict`) or of one job's settings
    (:meth:`from_settings`)."""

    @staticmethod
    def from_dict(raw: dict):
        """Validate ``raw`` (as Snakemake's ``config``) and build the typed tree."""
        return typed(validate_config(raw))

    @staticmethod
    def from_settings(raw: dict):
        """The typed tree of an already validated config, or of the part of one a job's rule passes as params."""
        return typed(raw)


def updated(tree: Any, changes: dict[str, Any]) -> Any:
    """``tree`` with the entries at the dotted keys of ``changes`` replaced (for tests and tools: a job never
    changes its settings)."""
    for dotted, value in changes.items():
        tree = _updated(tree, dotted.split("."), value)
    return tree


def _updated(node: Any, parts: list[str], value: Any) -> Any:
    head, *rest = parts
    new = _updated(node[head] if isinstance(node, Entries) else getattr(node, head), rest, value) if rest else value
    if isinstance(node, Entries):
        return Entries(node._key, {**node._entries, head: new})
    return dataclasses.replace(node, **{head: new})


def schema_defaults(path: str) -> dict:
    """The schema's defaults of the block at ``path`` (library dataclasses take theirs from here)."""
    return {name: prop["default"] for name, prop in _node(path)["properties"].items() if "default" in prop}


def merge_configs(base: dict, overlay: dict) -> dict:
    """``base`` with ``overlay``'s entries, nested dicts merged key by key and anything else (lists too) replaced:
    what Snakemake does with a second ``--configfile``. Neither argument is changed."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_configs(out[key], value) if both else copy.deepcopy(value)
    return out


def read_config_files(*paths: str | Path) -> dict:
    """YAML config files merged in order, as ``snakemake --configfile config.yaml preset.yaml``; not validated."""
    merged: dict = {}
    for path in paths:
        with open(path) as fh:
            merged = merge_configs(merged, yaml.safe_load(fh) or {})
    return merged


def load_config_file(*paths: str | Path) -> Config:
    """Read, merge (see :func:`read_config_files`) and validate YAML config files."""
    return Config.from_dict(read_config_files(*paths))
