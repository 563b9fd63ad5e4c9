"""What every stage's trainer shares: the epoch loop, the per-epoch CSV, atomic checkpoints and exact resume."""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import signal
import threading
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import torch
from torch.profiler import record_function
from tqdm import tqdm

from toposdf.checkpoints import atomic_torch_save, load_checkpoint
from toposdf.io import atomic_open
from toposdf.transfer import to_host

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left in place."""


class TrainingInterrupted(RuntimeError):
    """SIGTERM or SIGUSR1 arrived (a cluster's time limit near, a preemption): the step in flight finished, the last
    epoch's checkpoint is kept, and the job exits non-zero so that its retry resumes from that checkpoint."""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


@contextlib.contextmanager
def stop_on_signals(trainer):
    """While training, SIGTERM and SIGUSR1 set ``trainer.stop_signal`` instead of killing the process, so that the
    step in flight finishes (:meth:`Trainer._step` then raises :class:`TrainingInterrupted`). Outside the main
    thread, where Python cannot take signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        trainer.stop_signal = signum

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def mean_terms(rows: Iterable[dict]) -> dict[str, float]:
    """The mean of every key over an iterable of term dicts (keys missing from a row count as absent). The values
    are floats or 0-d tensors (a step's terms, on the training device): the tensors come to the host in one copy,
    and the sums are float64 in row order, as ``float()`` of each term would give."""
    rows = list(rows)
    tensors = [value for row in rows for value in row.values() if torch.is_tensor(value)]
    host = iter([float(value) for value in to_host(tensors)])
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        for key, value in row.items():
            sums[key] += next(host) if torch.is_tensor(value) else value
            counts[key] += 1
    return {key: sums[key] / counts[key] for key in sums}


def non_finite_losses(row: dict[str, float]) -> dict[str, float]:
    """The losses of an epoch's row (``loss`` and every ``*_loss``) that are NaN or infinite."""
    return {key: value for key, value in row.items()
            if (key == "loss" or key.endswith("_loss")) and not math.isfinite(value)}


def step_decay(epoch: int, epochs: int, at: float, factor: float) -> float:
    """DeepSDF's step schedule as a multiplier of the base learning rate: ``factor`` from epoch
    ``round(at * epochs)`` on (0-based), 1 before; ``at >= 1`` never decays. A function of the epoch alone, so a
    resumed run takes the same rates."""
    return factor if at < 1 and epoch >= round(at * epochs) else 1.0


def anneal_scale(epoch: int, epochs: int, anneal: tuple[float, float] | list[float] | None) -> float:
    """StEik's linear decay of its term, as a multiplier of its weight at ``epoch`` of ``epochs`` (0-based): 1
    before ``anneal[0] * epochs``, linearly down to 0 at ``anneal[1] * epochs``, 0 after; ``epoch >= epochs`` is
    past the schedule's end (stage 2 after a stage 1 of ``epochs``). None: always 1. A function of the epoch alone,
    like :func:`step_decay`."""
    if anneal is None:
        return 1.0
    start, end = (a * epochs for a in anneal)
    if epoch < start:
        return 1.0
    if epoch >= end:
        return 0.0
    return (end - epoch) / (end - start)


class Trainer:
    """An epoch loop over random batches of training shapes, a per-epoch CSV of every loss term, an atomic
    checkpoint after each epoch, exact resume (weights, optimizer and random states), and a clear stop on a
    non-finite loss.

    Subclasses set ``cfg`` (with ``epochs``), ``modules`` (name -> module), ``optimizers`` (name -> optimizer;
    ``"main"`` for a single one) and ``n_shapes``, call :meth:`_start` last in ``__init__``, and implement
    :meth:`train_step` (or :meth:`train_epoch`).
    """

    desc = "train"
    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    n_shapes: int

    def _start(self, seed: int, batch_shapes: int, checkpoint: str | Path, log_csv: str | Path) -> None:
        self.batch_shapes = batch_shapes
        self._losses: list[torch.Tensor] = []  # this epoch's step losses, on the device (_step)
        self.generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.epoch = 0
        self.checkpoint, self.log_csv = Path(checkpoint), Path(log_csv)
        state = load_checkpoint(self.checkpoint) if self.checkpoint.exists() else None
        changed = self._changed_settings(state.get("config", {})) if state is not None else []
        if changed:
            raise ValueError(f"{self.checkpoint} was trained with other settings ({', '.join(changed)}): resuming "
                             "would mix them. Restore those settings to resume it, or delete it to start over "
                             f"(rm {self.checkpoint})")
        if state is not None:
            self.restore(state)
            log.info("resumed from %s at epoch %d", self.checkpoint, self.epoch)
            return
        self.log_csv.unlink(missing_ok=True)  # a fresh start: rows of an earlier attempt do not count

    def _changed_settings(self, saved: dict) -> list[str]:
        """The settings (fields of ``cfg`` but ``workers``, which changes no number) in which a checkpoint's
        ``config`` differs from this run, as ``name: then -> now``: a job killed, then rerun after a config change,
        must not resume. A larger epoch count (``epochs``, stage 2's ``rounds``) is no change, training goes on,
        unless the trainer's schedule is a fraction of it (:meth:`schedule_scales_with_epochs`). A setting the
        checkpoint lacks that is null now is one added since (``toposdf.config.LATE_KEYS``) at its default: no change."""
        now = {key: value for key, value in asdict(self.cfg).items() if key != "workers"}
        longer = [key for key in ("epochs", "rounds") if key in now and key in saved and now[key] > saved[key]
                  and not self.schedule_scales_with_epochs()]
        return [f"{key}: {saved.get(key, 'unset')} -> {value}" for key, value in now.items()
                if (saved[key] != value if key in saved else value is not None) and key not in longer]

    def schedule_scales_with_epochs(self) -> bool:
        """Whether a learning-rate decay or an anneal is placed at a fraction of the epoch count (then a longer run
        is another schedule, and its checkpoint cannot be resumed with more epochs)."""
        return False

    def train_step(self, shape_index: torch.Tensor) -> dict:
        """One optimizer step on the shapes ``shape_index`` ``(B,)``; returns every loss term (0-d tensors, as
        :meth:`_step` returns them, or floats)."""
        raise NotImplementedError

    def _step(self, terms: dict[str, torch.Tensor], loss: torch.Tensor, optimizer: str = "main") -> dict:
        """Take one step of ``optimizers[optimizer]`` and return the terms and the loss, detached, on the device:
        nothing is read back here, :func:`mean_terms` brings an epoch's terms to the host at once, and
        :meth:`fit` stops on a non-finite loss then."""
        values = {key: value.detach() for key, value in terms.items()} | {"loss": loss.detach()}
        self._losses.append(values["loss"])
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        with record_function("toposdf::backward"):
            loss.backward()
        with record_function("toposdf::optimizer"):
            opt.step()
        if getattr(self, "stop_signal", None) is not None:
            kept = (f"the checkpoint of epoch {self.epoch} ({self.checkpoint}) is kept and a rerun resumes from it"
                    if self.checkpoint.exists() else "no checkpoint was written yet, so a rerun starts this stage over")
            raise TrainingInterrupted(
                f"{signal.Signals(self.stop_signal).name} in epoch {self.epoch + 1}: stopped after this step; {kept}")
        return values

    def _diverged(self, detail: str) -> TrainingDiverged:
        return TrainingDiverged(f"non-finite loss at epoch {self.epoch + 1}: {detail}; the last good checkpoint "
                                f"({self.checkpoint if self.checkpoint.exists() else 'none yet'}) is kept")

    def _train_checked_epoch(self) -> dict[str, float]:
        """:meth:`train_epoch`, stopped by :class:`TrainingDiverged` when a step's loss was not finite: after the
        epoch, or at the error a non-finite value caused later in it (a matching of NaN diagrams, say)."""
        self._losses = []
        try:
            means = self.train_epoch()
        except (TrainingInterrupted, KeyboardInterrupt):
            raise
        except Exception as error:
            steps = mean_terms([{"loss": loss} for loss in self._losses]) if self._losses else {}
            if steps and not math.isfinite(steps["loss"]):
                raise self._diverged(f"{type(error).__name__} after it ({error})") from error
            raise
        bad = non_finite_losses(means)
        if bad:
            raise self._diverged(f"epoch means {bad}")
        return means

    def _batches(self) -> list[torch.Tensor]:
        return list(torch.randperm(self.n_shapes, generator=self.generator).split(self.batch_shapes))

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training shapes in random batches; returns the mean of every term."""
        return mean_terms(self.train_step(batch) for batch in self._batches())

    def fit(self, epochs: int | None = None, progress: bool = True) -> None:
        """Train up to ``epochs`` (default: the config's) epochs in total, resuming where the checkpoint stopped;
        after every epoch the CSV gets a row and the checkpoint is replaced atomically. SIGTERM or SIGUSR1 stops
        training after the step in flight (:class:`TrainingInterrupted`), keeping the last epoch's checkpoint."""
        epochs = self.cfg.epochs if epochs is None else epochs
        bar = tqdm(range(self.epoch, epochs), desc=self.desc, unit="epoch", disable=not progress,
                   initial=self.epoch, total=epochs)
        self.stop_signal = None  # set by SIGTERM or SIGUSR1 (stop_on_signals)
        with stop_on_signals(self):
            for _ in bar:
                means = self._train_checked_epoch()
                self.epoch += 1
                self._append_csv({"epoch": self.epoch, **means})
                self.save(self.checkpoint)
                bar.set_postfix(loss=f"{means['loss']:.4g}")

    def _append_csv(self, row: dict) -> None:
        """Append ``row`` under the file's header; a term absent from this row (a block skipped this round) is
        written as nan, and a term new to the file widens its header (the earlier rows get nan)."""
        self.log_csv.parent.mkdir(parents=True, exist_ok=True)
        fieldnames: list[str] = []
        if self.log_csv.exists():
            with open(self.log_csv, newline="") as fh:
                fieldnames = next(csv.reader(fh), [])
        new_keys = [key for key in row if key not in fieldnames]
        if fieldnames and not new_keys:  # the usual case: one row appended, the file's rows left unread
            with open(self.log_csv, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=fieldnames, restval="nan").writerow(row)
            return
        rows: list[dict] = []
        if fieldnames:
            with open(self.log_csv, newline="") as fh:
                rows = list(csv.DictReader(fh))
        with open(self.log_csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fieldnames + new_keys, restval="nan")
            writer.writeheader()
            writer.writerows(rows + [row])

    def _truncate_csv(self) -> None:
        """Drop the CSV rows written after the checkpoint (a job killed between the two), so rows match epochs."""
        if not self.log_csv.exists():
            return
        with open(self.log_csv) as fh:
            rows = list(csv.DictReader(fh))
        if len(rows) > self.epoch:
            with atomic_open(self.log_csv, "w", newline="") as fh:  # a kill here keeps the rows as they were
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows[: self.epoch])

    def state(self) -> dict:
        """Everything a resume needs: the epoch, the modules' and optimizers' states, the random states and the
        stage's settings (``config``, as a dict)."""
        return {
            "epoch": self.epoch,
            **{name: module.state_dict() for name, module in self.modules.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "config": asdict(self.cfg),
        }

    def save(self, path: str | Path) -> None:
        atomic_torch_save(self.state(), path)

    def restore(self, state: dict) -> None:
        """Restore :meth:`state`, as read onto the CPU by :func:`~toposdf.checkpoints.load_checkpoint`: the random
        states must stay CPU byte tensors; the modules and optimizers copy their tensors onto the training device."""
        for name, module in self.modules.items():
            module.load_state_dict(state[name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch = int(state["epoch"])
        self._truncate_csv()
