"""Checkpoints: the device, atomic saves, loading, the networks of a checkpoint, and the ``.work`` resume.

A stage's entry point (:mod:`toposdf.training`) trains into a working checkpoint beside its output
(:func:`work_path`), replaced atomically after every epoch, so a rerun of a killed job resumes from it; the
finished checkpoint is written atomically onto the output and the working one removed (:func:`finish`).

What the finished checkpoints hold, besides the trainer's state (``epoch``, ``optimizers``, random states,
``config``): ``decoder`` and ``codes`` (state dicts of :class:`~toposdf.models.SDFDecoder` and
:class:`~toposdf.models.LatentCodes`), ``pd_generators`` (learned topology), ``ids`` (the training shapes, in the
order of the codes), ``model`` (the decoder's config, ``model`` of the workflow config) and ``latent`` (the
codes' config, ``latent``).
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Mapping

import torch

from toposdf.stages import DEVICE_POLICY, blocks_at
from toposdf.io import atomic_open, atomic_write_json, flatten, read_json
from toposdf.models import DecoderConfig, LatentCodes, LatentConfig, SDFDecoder

log = logging.getLogger(__name__)

# Settings a working checkpoint may be resumed under when they changed: epoch counts (the trainer's own check,
# Trainer._changed_settings, decides whether a longer schedule is the same one) and the persistence threads, which
# change no number. Every other setting of the job must match (work_sources).
NOT_COMPARED = ("train.implicit.epochs", "train.pdgen.epochs", "train.joint.rounds", "train.joint.workers",
                "vecset.autoencoder.epochs", "vecset.diffusion.epochs")


def cpu_threads(threads: int) -> None:
    """Run this process's torch CPU work on ``threads`` threads (at least one), with float32 denormals flushed to
    zero. The decoder's softplus (beta 100) makes denormals wherever a pre-activation is below about -0.9, and x86
    CPUs take them in slow microcode: flushing made stage 1 about 3x faster on 2 CPU cores, with the same losses to
    the last bit (docs/notebook.md, section 12). Call it before the first parallel operation: threads started later
    inherit the mode."""
    torch.set_flush_denormal(True)
    torch.set_num_threads(max(1, threads))


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """``preferred`` when given, else by the policy in the environment variable ``TOPOSDF_DEVICE`` (the config's
    ``device``): ``auto`` (or unset) the CUDA device when one works and the CPU otherwise, ``cpu`` the CPU, ``cuda``
    the CUDA device or a ``RuntimeError`` naming why there is none (a GPU job must not train on the CPU unseen)."""
    if preferred:
        return torch.device(preferred)
    policy = os.environ.get(DEVICE_POLICY, "auto") or "auto"
    if policy not in ("auto", "cpu", "cuda"):
        raise ValueError(f"{DEVICE_POLICY}={policy!r}: expected auto, cpu or cuda (the config's device)")
    if policy == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if policy == "cuda":
        raise RuntimeError(f"device: cuda, but no CUDA device works here: {cuda_unavailable_reason()}. Run on a "
                           "node with a GPU, or set device: auto (or cpu) to train on the CPU")
    return torch.device("cpu")


def cuda_unavailable_reason() -> str:
    """Why ``torch.cuda.is_available()`` is False, in words."""
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "CUDA_VISIBLE_DEVICES hides every GPU"
    try:
        torch.cuda.init()
    except Exception as error:  # the driver's own message: too old for this torch, no device, ...
        return f"CUDA did not start ({error})"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU"


def atomic_torch_save(obj: dict, path: str | Path) -> None:
    """``torch.save`` written atomically (:func:`toposdf.io.atomic_open`): a killed job leaves either the
    previous checkpoint or the new one, never half of one."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint at ``path``, every tensor on the CPU (the caller moves what it needs to its device).

    Loaded with ``weights_only=True``: tensors and plain data (dicts, lists, numbers, strings) only, so that a
    checkpoint from someone else cannot run code on load; anything else raises ``ValueError`` naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path}: not a toposdf checkpoint of tensors and plain data, refused (it would run code "
                         f"on load): {str(error).splitlines()[0]}") from None
    except (EOFError, RuntimeError) as error:  # an empty or truncated file: torch's own messages name no path
        if isinstance(error, RuntimeError) and "PytorchStreamReader" not in str(error):
            raise  # out of memory, an archive of a newer torch: not the file's fault
        raise ValueError(f"{path}: not a readable checkpoint (empty or cut short: {type(error).__name__}"
                         f"{': ' + str(error).splitlines()[0] if str(error) else ''}). If no job is writing it, "
                         "delete it and rerun the job that writes it") from None


def build_decoder_and_codes(model: dict, latent: LatentConfig | dict, state: dict | None,
                            n_shapes: int) -> tuple[SDFDecoder, LatentCodes]:
    """The decoder (``model``: the fields of :class:`~toposdf.models.DecoderConfig`) and the ``(n_shapes, L)``
    codes of the training shapes, with ``state``'s ``decoder`` and ``codes`` weights when given."""
    model = model if isinstance(model, Mapping) else asdict(model)  # a dict, or a typed config block
    decoder = SDFDecoder(DecoderConfig(**model))
    latent = latent if isinstance(latent, LatentConfig) else LatentConfig(**(
        latent if isinstance(latent, Mapping) else asdict(latent)))
    codes = LatentCodes(n_shapes, model["latent_size"], latent)
    if state is not None:
        decoder.load_state_dict(state["decoder"])
        codes.load_state_dict(state["codes"])
    return decoder, codes


def work_path(output: str | Path) -> Path:
    """The working checkpoint beside ``output``: it survives Snakemake's removal of a killed job's outputs, so a
    rerun resumes from it; the finished checkpoint is written onto ``output`` by :func:`finish`."""
    output = Path(output)
    return output.with_name(f".{output.name}.work")


def _sources_path(output: str | Path) -> Path:
    work = work_path(output)
    return work.with_name(f"{work.name}.sources.json")


def work_sources(settings: Mapping, inputs: Any) -> dict:
    """What a job's working checkpoint is trained from besides its stage's training settings: the job's settings
    (its rule's params, but :data:`NOT_COMPARED`) and each input file's size and modification time.
    Snakemake reruns a job whose inputs or params changed; a working checkpoint left by a killed attempt at the old
    ones must not be resumed then. ``inputs``: Snakemake's input files, or a namespace of paths (lists allowed)."""
    kept = copy.deepcopy(dict(settings))
    for dotted in NOT_COMPARED:
        *parents, key = dotted.split(".")
        for block in blocks_at(kept, parents):
            block.pop(key, None)
    values = vars(inputs).values() if isinstance(inputs, SimpleNamespace) else list(inputs)
    files: dict[str, list[int]] = {}
    for value in values:
        for path in value if isinstance(value, (list, tuple)) else [value]:
            if path is None:  # an optional input a test leaves out
                continue
            stat = os.stat(path)
            files[str(path)] = [stat.st_size, stat.st_mtime_ns]
    return {"settings": kept, "inputs": files}


def _changed_sources(saved: dict, now: dict) -> list[str]:
    """The settings (dotted) and input files in which ``saved`` differs from ``now``."""
    before, after = flatten(saved.get("settings", {})), flatten(now["settings"])
    keys = sorted(key for key in set(before) | set(after) if before.get(key, "unset") != after.get(key, "unset"))
    files = sorted(Path(path).name for path in set(saved.get("inputs", {})) | set(now["inputs"])
                   if saved.get("inputs", {}).get(path) != now["inputs"].get(path))
    return [f"{key}: {before.get(key, 'unset')} -> {after.get(key, 'unset')}" for key in keys] + \
        [f"input {name}" for name in files]


def claim_work(output: str | Path, sources: dict, extra: Iterable[str | Path] = ()) -> None:
    """Before a stage trains into ``work_path(output)``: make the working files the ones of these sources.

    If a killed attempt left working files (the checkpoint, and the working files of ``extra``: the loss CSV, stage
    1b's selection sweep) made from other :func:`work_sources` (an input made again, a setting changed), they move,
    with their record, into a new folder ``.<output>.stale-<n>`` beside the output, and the stage starts over,
    saying which input or setting changed. Nothing is deleted: where no working files are left, a kept attempt made
    from exactly these sources (a setting changed by mistake, then back) is moved back and resumed. Working files
    without a record (from before the record existed) resume as before. Then this attempt's sources are recorded."""
    output = Path(output)
    record = _sources_path(output)
    working = [work_path(output), *(work_path(p) for p in extra)]
    if record.exists() and any(p.exists() for p in working):
        changed = _changed_sources(read_json(record), sources)
        if changed:
            kept = _keep_aside(output, [record, *working])
            log.warning("%s was trained from other inputs or settings (%s): starting over; the attempt is kept in %s",
                        working[0], ", ".join(changed[:6]) + (", ..." if len(changed) > 6 else ""), kept)
    if not any(p.exists() for p in working):
        restored = _restore_kept(output, sources)
        if restored is not None:
            log.warning("resuming the attempt kept in %s: it was made from these inputs and settings", restored)
    atomic_write_json(record, sources)


def _kept_folders(output: Path) -> list[tuple[int, Path]]:
    """The ``.<output>.stale-<n>`` folders beside ``output`` with their ``n``, newest (highest ``n``) first."""
    numbered = ((p.name.rsplit("-", 1)[1], p) for p in output.parent.glob(f".{output.name}.stale-*"))
    return sorted(((int(n), p) for n, p in numbered if n.isdigit()), reverse=True)


def _keep_aside(output: Path, paths: list[Path]) -> Path:
    """Move the existing ``paths`` (all beside ``output``) into a new ``.<output>.stale-<n>`` folder."""
    folders = _kept_folders(output)
    kept = output.with_name(f".{output.name}.stale-{folders[0][0] + 1 if folders else 1}")
    kept.mkdir()
    for path in paths:
        if path.exists():
            os.replace(path, kept / path.name)
    return kept


def _restore_kept(output: Path, sources: dict) -> Path | None:
    """Move back the newest kept attempt whose record is ``sources``; None where there is none."""
    record = _sources_path(output)
    for _, kept in _kept_folders(output):
        saved = kept / record.name
        if saved.exists() and not _changed_sources(read_json(saved), sources):
            for path in kept.iterdir():
                os.replace(path, output.parent / path.name)
            kept.rmdir()
            return kept
    return None


def kept_attempts(root: str | Path) -> list[dict]:
    """Every ``.<output>.stale-<n>`` folder under ``root`` (:func:`claim_work` keeps killed attempts there), oldest
    first: its ``path``, the ``output`` it was training, its ``bytes``, its ``mtime`` and what it was made from that
    the output's current record is not (``changed``: dotted settings and input files; None where the output has no
    record left to compare with)."""
    outputs = {folder.with_name(folder.name[1:].rpartition(".stale-")[0]) for folder in Path(root).rglob(".*.stale-*")}
    found = []
    for output in sorted(outputs):
        current = _sources_path(output)
        for _, folder in _kept_folders(output):
            saved = folder / current.name
            changed = None
            if saved.exists() and current.exists():
                changed = _changed_sources(read_json(saved), read_json(current))
            files = [p for p in folder.rglob("*") if p.is_file()]
            found.append({"path": folder, "output": output, "bytes": sum(p.stat().st_size for p in files),
                          "mtime": max((p.stat().st_mtime for p in files), default=folder.stat().st_mtime),
                          "changed": changed})
    return sorted(found, key=lambda kept: kept["mtime"])


def finish(state: dict, output: str | Path, log_csv: str | Path | None = None) -> None:
    """Write the finished checkpoint ``state`` onto ``output`` atomically and, when given, the loss CSV the
    trainer kept at ``work_path(log_csv)`` onto ``log_csv``; then remove the working files. Until the end both
    working files stay, so a job killed at any point resumes with its checkpoint and its CSV rows (Snakemake
    removes a failed job's outputs, the CSV among them)."""
    atomic_torch_save(state, output)
    if log_csv is not None:
        rows = work_path(log_csv)
        with atomic_open(log_csv, "wb") as fh:
            fh.write(rows.read_bytes() if rows.exists() else b"epoch\n")  # no epoch to train: a header only
        rows.unlink(missing_ok=True)
    work_path(output).unlink(missing_ok=True)
    _sources_path(output).unlink(missing_ok=True)
