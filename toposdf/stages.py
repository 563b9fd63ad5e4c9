"""What each stage of the workflow reads from the configuration, by rule.

A rule passes exactly these entries as its ``params`` (``settings(rule)`` in ``rules/common.smk``), so Snakemake
reruns a job when one of them changes, and nothing else. A key marked ``?`` is passed only when it is set (not
null), so that a setting added later leaves the params of runs that do not use it as they were; the job reads it
with :func:`optional`. The job's config tree (:meth:`toposdf.config.Config.from_settings`)
holds only them: reading any other setting raises :class:`~toposdf.config.ConfigError` naming it, which the workflow
tests would show. ``{method}`` and ``{geometry}`` are the job's method and its geometric regularizer.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Iterable

from toposdf.config import LATE_KEYS, ConfigError

METHOD = "methods.{method}"

READS: dict[str, tuple[str, ...]] = {
    # data (toposdf.preprocess, toposdf.synthetic)
    "synthesize": ("dataset.shapes_per_category", "dataset.seed"),
    "split": ("dataset.kind", "dataset.root", "dataset.shapes_per_category", "dataset.test_fraction", "dataset.seed",
              "?dataset.splits"),
    "normalize": ("shards", "sdf.margin", "dataset.skip_invalid"),
    "sample_sdf": ("sdf.n_points", "sdf.variances", "sdf.uniform_fraction", "dataset.seed"),
    "sdf_grid": ("grid.resolution",),
    "persistence": ("persistence",),
    "contact_sheet": ("preview.n_shapes",),
    # training (toposdf.training.entry)
    "pretrain_implicit": ("model", "latent", "train.seed", "train.implicit", "geometry.{geometry}"),
    "pretrain_pdgen": ("model.latent_size", "train.seed", "train.pdgen", "persistence.tau", f"{METHOD}.lambda_pd",
                       f"{METHOD}.lambda_smooth", f"{METHOD}.diagonal_anchor", f"{METHOD}.from_scratch"),
    # stage 2 reads only these of train.pdgen (the generators' shape and eq. 10), so that stage 1b's schedule (lr,
    # epochs, batch_shapes) reruns the learned methods through pdgen.pt and not the baselines
    "joint_train": ("model", "latent", "train.seed", "train.implicit", "train.pdgen.max_points", "train.pdgen.hidden",
                    "train.pdgen.essential_slot", "train.pdgen.smooth_share", "train.pdgen.smooth_eps",
                    "train.pdgen.smooth_shapes", "train.joint", "grid.resolution", "persistence", "geometry.{geometry}",
                    METHOD),
    # evaluation (toposdf.evaluation)
    "generate": ("evaluation.generated_shapes", "evaluation.draws", "evaluation.seed", "evaluation.score_from",
                 "grid.resolution", "persistence"),
    "interpolate": ("figures.interpolation_shapes", "figures.interpolation_steps", "grid.resolution", "persistence"),
    "reconstruct": ("evaluation.seed", "evaluation.surface_points", "evaluation.reconstruct", "grid.resolution",
                    "persistence.tau"),
    "evaluate": ("evaluation.seed", "evaluation.cloud_points", "grid.resolution", "persistence"),
    "calibrate": ("evaluation.generated_shapes", "evaluation.draws", "evaluation.seed", "evaluation.cloud_points",
                  "grid.resolution", "persistence"),
    "training_fit": ("evaluation.seed", "evaluation.training_fit_shapes", "persistence.tau"),
    # rows scored from another generator's meshes (toposdf.external)
    "external_samples": ("external.{external}", "evaluation.generated_shapes", "evaluation.draws", "grid.resolution",
                         "persistence", "sdf.margin", "dataset.skip_invalid"),
    "external_reconstructions": ("external.{external}", "evaluation.seed", "evaluation.surface_points", "sdf.margin",
                                 "dataset.skip_invalid"),
    # the 3DShape2VecSet row (toposdf.training.vecset, toposdf.external)
    "vecset_autoencoder": ("vecset.autoencoder", "train.seed", "sdf.uniform_fraction"),
    "vecset_diffusion": ("vecset.autoencoder", "vecset.diffusion", "train.seed"),
    "vecset_samples": ("vecset.diffusion.sampler_steps", "evaluation.generated_shapes", "evaluation.draws",
                       "evaluation.seed", "grid.resolution", "persistence"),
    "vecset_reconstructions": ("evaluation.seed", "evaluation.surface_points", "grid.resolution"),
    # tables and figures (toposdf.tables, toposdf.claims, toposdf.figures)
    "tables": ("dataset.categories", "methods", "?external", "?vecset", "evaluation.cd_scale",
               "evaluation.pd_lap_scale"),
    "claims": ("dataset.categories", "methods", "evaluation.cd_scale", "evaluation.pd_lap_scale"),
    "figure_samples": ("dataset.categories", "figures.baseline", "figures.ours", "figures.samples"),
    "figure_interpolation": ("figures.ours", "persistence.tau"),
    "figure_pd_matrices": ("evaluation.seed", "?figures.pd_matrix_shapes", "grid.resolution", "persistence"),
    "figure_methods": ("dataset.categories", "methods", "?external", "?vecset", "figures.samples"),
    "study_1d": ("study_1d",),
}


def reads(rule: str, **wildcards: str) -> list[str]:
    """The dotted config entries that ``rule``'s jobs read, formatted with the job's wildcards."""
    if rule not in READS:
        raise KeyError(f"rule {rule!r} declares no settings in toposdf/stages.py")
    return [key.format(**wildcards) for key in READS[rule]]


def optional(tree, dotted: str):
    """A setting that the stage reads as ``?dotted``: its value, or None where it is unset (then it is not in the
    job's settings)."""
    node = tree
    for part in dotted.split("."):
        if part not in {field.name for field in dataclasses.fields(node)}:
            return None
        node = getattr(node, part)
    return node


def settings(config: dict, keys: Iterable[str]) -> dict:
    """The entries of a validated ``config`` at the dotted ``keys`` (``"persistence"``, ``"train.joint"``,
    ``"methods.ours_deepsdf.lambda_con"``), as one nested dict with sorted keys (the methods keep their order).

    This is what a rule passes through ``params:``: Snakemake reruns a job when its params change, so each job
    reads its settings from here (:meth:`Config.from_settings`) and never from the whole config.
    """
    out: dict = {}
    for dotted in keys:
        optional, dotted = dotted.startswith("?"), dotted.lstrip("?")
        value, parts = config, dotted.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(value, dict) or part not in value:
                raise ConfigError(f"{'.'.join(parts[:depth + 1])}: no such config entry (asked for {dotted!r})")
            value = value[part]
        if optional and value is None:
            continue
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(value)
    for path, keys in LATE_KEYS.items():  # a late key while null (toposdf.config.LATE_KEYS)
        for block in blocks_at(out, path.split(".")):
            for key in keys:
                if key in block and block[key] is None:
                    del block[key]
    return _sorted(out)


def blocks_at(tree: dict, parts: list[str]):
    """The dicts of ``tree`` at a block path split at its dots (``*``: every entry of a named-entries block)."""
    if not isinstance(tree, dict):
        return
    if not parts:
        yield tree
        return
    head, rest = parts[0], parts[1:]
    for child in (tree.values() if head == "*" else [tree[head]] if head in tree else []):
        yield from blocks_at(child, rest)


def _sorted(value, key: str = ""):
    """``value`` with every dict's keys in sorted order (a reordered YAML file must not look like a change), except
    the methods: their order is the order of the tables' rows and the figures' rows."""
    if not isinstance(value, dict):
        return value
    names = list(value) if key == "methods" else sorted(value)
    return {k: _sorted(value[k], f"{key}.{k}".lstrip(".")) for k in names}


DEVICE_POLICY = "TOPOSDF_DEVICE"


def export_device_policy(config: dict) -> None:
    """Hand the validated config's ``device`` to the jobs through their environment (``TOPOSDF_DEVICE``, read by
    :func:`toposdf.checkpoints.pick_device`), not their params, so that changing it reruns no job."""
    os.environ[DEVICE_POLICY] = config["device"]
