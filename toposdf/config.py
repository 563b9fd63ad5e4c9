"""The workflow configuration: validated once against its JSON schema (the one place a default lives), then a tree
of frozen dataclasses generated from the schema (:func:`typed`); a job's tree holds only what its stage reads."""

from __future__ import annotations

import copy
import dataclasses
import functools
import operator
import re
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from toposdf.layout import CALIBRATION_ROWS, SYNSETS, count_test_shapes

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


# JSON Schema counts 32.0 as an integer; the jobs do not (torch's layer sizes, range()). An integer is an int here.
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)),
)


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
        try:
            value = yaml.safe_load(error.instance)
        except yaml.YAMLError:
            continue
        # a scalar of the wanted kind, or of another (then the error shows the number, 1.5, not the string '1.5')
        if not isinstance(value, (str, list, dict)):
            *parents, key = error.absolute_path
            functools.reduce(operator.getitem, parents, config)[key] = value


def validate_config(config: dict) -> dict:
    """Validate a raw config dict against the schema and return a copy with defaults filled in.

    Raises:
        ConfigError: listing every invalid key as ``dataset.kind: 'foo' is not one of [...]``.
    """
    schema = load_schema()
    config = copy.deepcopy(dict(config))
    for block in ("methods", "external"):  # an entry set to null (by a config laid over another, or --config,
        if isinstance(config.get(block), dict):  # which passes it as the string 'null') is dropped
            config[block] = {name: entry for name, entry in config[block].items()
                             if not (entry is None or isinstance(entry, str) and yaml.safe_load(entry) is None)}
    if config.get("external") == {}:  # every external row dropped: none, as if never set (the jobs' params)
        config["external"] = None
    _fill_defaults(config, schema)
    validator = Validator(schema)
    _coerce_strings(config, validator)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [f"{_key_path(e)}: {e.message}" for e in errors] or _path_problems(config) or _disagreements(config)
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {problem}" for problem in problems))
    if config["dataset"].get("name") is None:
        config["dataset"]["name"] = config["dataset"]["kind"]
    return config


def _path_entries(config: dict) -> list[tuple[str, dict, str, bool]]:
    """The config's file-system paths as (key path, holding dict, key, whether ``{category}`` is filled in)."""
    dataset = config["dataset"]
    entries = [("dataset.root", dataset, "root", False)]
    entries += [(f"dataset.splits.{key}", dataset["splits"], key, True) for key in ("train", "test")
                if dataset.get("splits")]
    entries += [(f"external.{name}.{key}", entry, key, True) for name, entry in (config.get("external") or {}).items()
                for key in ("samples", "reconstructions")]
    return [entry for entry in entries if isinstance(entry[1].get(entry[2]), str)]


def _path_problems(config: dict) -> list[str]:
    """Expand ``~`` in every path where the config is read (the jobs see the expanded path), and name any brace but
    ``{category}`` in a path that is formatted per category: such paths become Snakemake inputs, which take no other
    brace, escaped or not."""
    problems = []
    for key_path, holder, key, formatted in _path_entries(config):
        value = holder[key]
        if value.startswith("~"):
            try:
                holder[key] = value = str(Path(value).expanduser())
            except RuntimeError:
                problems.append(f"{key_path}: {value!r}: cannot expand {value.split('/')[0]!r} (no such user)")
                continue
        rest = value.replace("{category}", "") if formatted else value
        if "{" in rest or "}" in rest:
            named = sorted(set(re.findall(r"\{[^{}]*\}", rest)))
            what = f"unknown placeholder {', '.join(named)}" if named else "a brace"
            problems.append(f"{key_path}: {value!r}: {what}; " + (
                "only {category} is replaced (by chair, table or sofa), and no other brace may appear" if formatted
                else "no brace may appear (it is not formatted)"))
    return problems


def _disagreements(config: dict) -> list[str]:
    """What the schema cannot say: entries of a valid config that contradict each other or the file system."""
    dataset, methods, figures, latent, study = (config[key] for key in ("dataset", "methods", "figures", "latent",
                                                                        "study_1d"))
    problems = [f"methods.{name}.geometry: {block['geometry']!r} is not one of the configured geometry entries "
                f"{sorted(config['geometry'])}" for name, block in methods.items()
                if block["geometry"] not in config["geometry"]]
    problems += [f"figures.{role}: {figures[role]!r} is not one of the configured methods {sorted(methods)}"
                 for role in ("baseline", "ours") if figures[role] not in methods]
    if figures["baseline"] == figures["ours"]:
        problems.append(f"figures.baseline and figures.ours: both {figures['ours']!r}; Figs. 1 and 2 compare two "
                        "methods")
    if not dataset.get("splits") and dataset["test_fraction"] <= 0:
        problems.append(f"dataset.test_fraction: {dataset['test_fraction']} leaves no test shapes, on which every "
                        "method is scored (reconstruction, the generation metrics); give a share above 0, or "
                        "dataset.splits")
    if dataset["kind"] == "shapenet" and not dataset.get("root"):
        problems.append("dataset.root: required when dataset.kind is 'shapenet' (the ShapeNetCore.v2 folder)")
    elif dataset["kind"] == "shapenet" and not Path(dataset["root"]).is_dir():
        problems.append(f"dataset.root: {dataset['root']!r} is not a folder")
    elif dataset["kind"] == "shapenet":
        root = Path(dataset["root"])
        missing = [f"{c} ({SYNSETS[c]}/)" for c in dataset["categories"] if not (root / SYNSETS[c]).is_dir()]
        if missing:
            problems.append(f"dataset.root: {dataset['root']!r} has no folder for {', '.join(missing)}; ShapeNetCore.v2 "
                            "keeps a category's models in <root>/<synset>/<model_id>/models/model_normalized.obj")
    if dataset["kind"] == "synthetic" and dataset.get("root"):
        problems.append(f"dataset.root: {dataset['root']!r} is read only when dataset.kind is 'shapenet' (it is "
                        "'synthetic': the shipped shapes would be used); add kind: shapenet, or use "
                        "presets/shapenet.yaml, which sets it")
    if dataset["kind"] == "shapenet" and dataset.get("name") == "synthetic":
        problems.append("dataset.name: 'synthetic' is the shipped synthetic dataset's results folder "
                        "(results/synthetic/), which a ShapeNet run would overwrite; name the run (e.g. name: "
                        "shapenet, as presets/shapenet.yaml does with every shape: shapes_per_category null)")
    if dataset["kind"] == "synthetic" and dataset.get("shapes_per_category") is None:
        problems.append("dataset.shapes_per_category: required (an integer) when dataset.kind is 'synthetic'")
    if figures["ours"] in methods and methods[figures["ours"]]["topology"] != "learned":
        problems.append(f"figures.ours: {figures['ours']!r} has no PD generators (topology must be 'learned')")
    join_tau = config["train"]["joint"].get("join_tau")
    if join_tau is not None and not join_tau > config["persistence"]["tau"]:
        problems.append(f"train.joint.join_tau: {join_tau} must exceed persistence.tau "
                        f"({config['persistence']['tau']}), or be null")
    if latent["prior"] == "per_code" and not latent["variational"]:
        problems.append("latent.variational: the per-code KL (latent.prior: per_code) needs variational codes (true)")
    if not any(abs(study["plot_decay"] - s) < 1e-9 for s in study["decays"]):
        problems.append(f"study_1d.plot_decay: {study['plot_decay']} is not one of study_1d.decays {study['decays']}")
    return problems + _split_disagreements(config) + _external_disagreements(config)


def _split_disagreements(config: dict) -> list[str]:
    """Settings that need more shapes than a synthetic split gives a category (its counts are known before any job;
    a ShapeNet copy's or a split file's are not): the generated shapes a draw, Fig. 2's training shapes."""
    dataset, n = config["dataset"], config["dataset"].get("shapes_per_category")
    if dataset["kind"] != "synthetic" or dataset.get("splits") or not n:
        return []
    problems, n_test = [], count_test_shapes(n, dataset["test_fraction"])
    generated = config["evaluation"].get("generated_shapes")
    if generated is not None and generated < n_test:
        problems.append(f"evaluation.generated_shapes: {generated} is fewer than the {n_test} test shapes a category "
                        "gets: PD-LAP (eq. 2) pairs every test shape with a generated one; set it to null (as many as "
                        "the test shapes) or to at least that")
    outside = [i for i in config["figures"]["interpolation_shapes"] if i >= n - n_test]
    if outside:
        problems.append(f"figures.interpolation_shapes: {outside[0]} is not a training shape (a category has "
                        f"{n - n_test}, indices 0-{n - n_test - 1})")
    return problems


def _external_disagreements(config: dict) -> list[str]:
    """Rows named alike (an external row like a method, a calibration row or 3DShape2VecSet's row ``vecset``; a
    method like ``vecset`` where that row is on), or external folders missing for a category."""
    problems = []
    if config.get("vecset") is not None and "vecset" in config["methods"]:
        problems.append("methods.vecset: the name is taken by the 3DShape2VecSet row (vecset is set); choose another")
    problems += [f"methods.{name}: the name is taken by a calibration row of the tables; choose another"
                 for name in CALIBRATION_ROWS if name in config["methods"]]
    several = len(config["dataset"]["categories"]) > 1
    for name, entry in (config.get("external") or {}).items():
        if name in config["methods"] or name in (*CALIBRATION_ROWS, "vecset"):
            problems.append(f"external.{name}: the name is taken by a method, a calibration row or the "
                            "3DShape2VecSet row; choose another")
        for key in ("samples", "reconstructions"):
            if entry.get(key) and several and "{category}" not in entry[key]:
                problems.append(f"external.{name}.{key}: {entry[key]!r} has no {{category}}, so every category "
                                f"({', '.join(config['dataset']['categories'])}) would score the same meshes; write "
                                "the path with {category} where the category's folder name goes")
                continue
            for category in config["dataset"]["categories"] if entry.get(key) else ():
                folder = Path(entry[key].format(category=category))
                if not folder.is_dir():
                    problems.append(f"external.{name}.{key}: {str(folder)!r} ({category}) is not a folder")
    return problems


class Block:
    """Base of the typed config blocks: frozen dataclasses generated from the schema (:func:`block_class`). A job's
    tree holds only the settings its stage declares (:mod:`toposdf.stages`); reading another raises."""

    _key = ""

    def __getattr__(self, name: str):  # called only for a field the block does not have
        if name.startswith("__"):
            raise AttributeError(name)
        key = f"{self._key}.{name}".lstrip(".").replace("*", "<name>")
        raise ConfigError(f"{key}: not in this job's settings; declare it in the stage's reads (toposdf/stages.py), "
                          "so that a change to it reruns the job")


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

    def __repr__(self) -> str:
        return f"Entries({self._key!r}, {self._entries!r})"


def _node(path: str) -> dict:
    """The schema of the block at the dotted ``path`` ("" is the whole config; "methods.*" an entry)."""
    node = load_schema()
    for part in filter(None, path.split(".")):
        node = node["additionalProperties"] if part == "*" else node["properties"][part]
    return node


@functools.lru_cache(maxsize=None)
def block_class(path: str, names: tuple[str, ...]) -> type:
    """The frozen dataclass of the schema block at ``path`` with the keyword-only fields ``names``."""
    title = "".join(part.title() for part in path.replace("*", "entry").split(".")) or "Config"
    return dataclasses.make_dataclass(title.replace("_", ""), [(name, Any) for name in names], bases=(Block,),
                                      frozen=True, kw_only=True, namespace={"_key": path})


# Keys added to a block after runs were made with it, by block path: a job's settings leave such a key out while it
# is null (toposdf.stages.settings), so that those runs' params, and so their outputs, stay as they were; a job
# reads it back as null.
LATE_KEYS: dict[str, tuple[str, ...]] = {"methods.*": ("consistency_dims",), "train.joint": ("data_epochs",),
                                         "external.*": ("skip_invalid",), "geometry.*": ("steik_gradient",)}


def typed(value: Any, path: str = "", node: dict | None = None) -> Any:
    """A validated config (or the slice of one that :func:`settings` took) as a tree of frozen blocks: dicts become
    :func:`block_class` instances or :class:`Entries`, lists tuples, integers where the schema wants a number
    floats."""
    node = _node(path) if node is None else node
    if isinstance(value, dict):
        if "properties" not in node:  # named entries: methods, geometry
            return Entries(path, {name: typed(entry, f"{path}.*") for name, entry in value.items()})
        late = LATE_KEYS.get(path, ())  # left out of a job's settings while null: null again here
        names = tuple(name for name in node["properties"] if name in value or name in late)  # the schema's order
        return block_class(path, names)(**{name: typed(value.get(name), f"{path}.{name}".lstrip("."))
                                           for name in names})
    if isinstance(value, list):
        return tuple(typed(item, path, node.get("items", {})) for item in value)
    kinds = node.get("type") or [branch.get("type") for branch in node.get("anyOf", [])]
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if isinstance(value, int) and not isinstance(value, bool) and "number" in kinds and "integer" not in kinds:
        return float(value)
    return value


class Config:
    """The typed configuration (:func:`typed`): ``from_dict`` validates a raw config (as Snakemake's ``config``)
    first; ``from_settings`` takes a validated config, or the part of one a job's rule passes as params."""

    from_dict = staticmethod(lambda raw: typed(validate_config(raw)))
    from_settings = staticmethod(typed)


def block_fields(path: str) -> tuple[str, ...]:
    """The entries of the schema block at ``path`` (``"methods.*.prior"``), in the schema's order."""
    return tuple(_node(path)["properties"])


def schema_dataclass(path: str):
    """Class decorator: a frozen dataclass whose fields named as entries of the schema block at ``path`` take the
    schema's defaults (as :func:`typed` gives them: tuples, floats where the schema wants a number)."""
    def wrap(cls):
        properties = _node(path)["properties"]
        for name in cls.__annotations__:
            if name in properties and "default" in properties[name] and name not in vars(cls):
                setattr(cls, name, typed(properties[name]["default"], f"{path}.{name}"))
        return dataclasses.dataclass(frozen=True)(cls)
    return wrap


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
