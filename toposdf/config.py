"""The workflow configuration: validated once against its JSON schema, then handed around as dataclasses."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

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


class Absent:
    """A config entry that the job's settings (its rule's ``params``) do not include. Reading it raises, so a job
    cannot depend on a setting that Snakemake does not watch for changes."""

    def __init__(self, key: str) -> None:
        self.key = key

    def _raise(self, *_args, **_kwargs):
        raise ConfigError(f"{self.key}: not in this job's settings; add it to its rule's params (settings(...) in "
                          "rules/*.smk), so that a change to it reruns the job")

    def __getattr__(self, name: str):
        if name.startswith("__"):  # copy, pickle and hasattr probe for these
            raise AttributeError(name)
        self._raise()

    __getitem__ = __iter__ = __len__ = __bool__ = __float__ = __int__ = __index__ = _raise
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _raise
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __str__ = __format__ = _raise
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<absent: {self.key}>"


class Section(dict):
    """A config block as a dict whose missing keys raise :class:`ConfigError` naming the dotted key. After
    validation every schema key has a value, so a missing key is one the job's settings left out."""

    def __init__(self, key: str, values: dict) -> None:
        super().__init__({k: Section(f"{key}.{k}", v) if isinstance(v, dict) else v for k, v in values.items()})
        self.key = key

    def __missing__(self, name: str):
        Absent(f"{self.key}.{name}")._raise()

    def get(self, name: str, default=None):
        return self[name]


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


LATENT_PRIORS = ("set", "per_code")


@dataclass(frozen=True)
class LatentConfig:
    """The latent codes and their prior term (eqs. 9, 11, 15).

    ``prior="set"`` is the paper's ``D_KL({z_i}, N_d)``: one term on the whole set of codes
    (:meth:`LatentCodes.set_kl`). ``prior="per_code"`` is the variational auto-decoder's KL of each code's
    posterior (Zadeh et al.; needs ``variational``). ``variational`` codes carry a log-variance and are sampled
    by reparameterization; ``init_std`` and ``init_logvar`` are the codes' start (means ``N(0, init_std^2)``).
    ``covariance``: ``"full"``, ``"diagonal"`` or ``"auto"`` (full when there are more than twice as many codes
    as dimensions, see :meth:`LatentCodes.set_kl`).
    """

    prior: str = "set"
    variational: bool = False
    init_std: float = 1.0
    init_logvar: float = -6.0
    covariance: str = "auto"

    def __post_init__(self) -> None:
        if self.prior not in LATENT_PRIORS:
            raise ValueError(f"latent prior must be one of {LATENT_PRIORS}, got {self.prior!r}")
        if self.prior == "per_code" and not self.variational:
            raise ValueError("the per-code KL needs variational codes (latent.variational: true)")
        if self.covariance not in ("auto", "full", "diagonal"):
            raise ValueError(f"latent covariance must be auto, full or diagonal, got {self.covariance!r}")
        if not self.init_std > 0:
            raise ValueError(f"latent init_std must be > 0, got {self.init_std}")


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


def _typed(cls, raw: dict, key: str, **casts):
    """``cls`` from ``raw[key]``, each field through its cast; fields (or the whole block) that ``raw`` lacks are
    :class:`Absent`."""
    if key not in raw:
        return Absent(key)
    block = raw[key]
    return cls(**{f.name: casts.get(f.name, _same)(block[f.name]) if f.name in block else Absent(f"{key}.{f.name}")
                  for f in fields(cls)})


def _same(value):
    return value


def _scalar(raw: dict, dotted: str, cast):
    head, _, tail = dotted.partition(".")
    if head not in raw or (tail and tail not in raw[head]):
        return Absent(dotted)
    return cast(raw[head][tail] if tail else raw[head])


def _block(raw: dict, dotted: str) -> Section | Absent:
    value = raw
    for part in dotted.split("."):
        if part not in value:
            return Absent(dotted)
        value = value[part]
    return Section(dotted, value)


@dataclass(frozen=True)
class Config:
    """The typed configuration. Built from the whole config (:meth:`from_dict`, validated) or from one job's
    settings (:meth:`from_settings`), where every entry the settings leave out is :class:`Absent`."""

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
        return cls.from_settings(validate_config(raw))

    @classmethod
    def from_settings(cls, raw: dict) -> "Config":
        """The typed configuration of an already validated config, or of the part of one that :func:`settings`
        took for a job (a rule's ``params.settings``); what ``raw`` leaves out is :class:`Absent`."""
        return cls(
            dataset=_typed(DatasetConfig, raw, "dataset", categories=tuple, test_fraction=float, seed=int,
                           skip_invalid=bool),
            sdf=_typed(SdfConfig, raw, "sdf", n_points=int, variances=lambda v: tuple(map(float, v)),
                       uniform_fraction=float, margin=float),
            grid_resolution=_scalar(raw, "grid.resolution", int),
            persistence=_typed(PersistenceConfig, raw, "persistence", tau=float, min_persistence=float),
            shards=_scalar(raw, "shards", int),
            preview_shapes=_scalar(raw, "preview.n_shapes", int),
            model=_block(raw, "model"),
            latent=LatentConfig(**raw["latent"]) if "latent" in raw else Absent("latent"),
            train_seed=_scalar(raw, "train.seed", int),
            implicit=_block(raw, "train.implicit"),
            pdgen=_block(raw, "train.pdgen"),
            joint=_block(raw, "train.joint"),
            geometries=_block(raw, "geometry"),
            methods=_block(raw, "methods"),
            evaluation=_block(raw, "evaluation"),
            figures=_block(raw, "figures"),
        )


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
