"""Every training step kind reads back from the device at most SYNC_BUDGET times (docs/method.md, Training).

On the CPU the test counts the calls that would wait for a GPU (``Tensor.item``, ``float()``, ``.cpu()``, ...),
leaving out the tensors that stay on the host in a GPU run too: the optimizers' step counters (torch keeps them on
the CPU unless ``capturable``) and the batches' shape indices. With ``TOPOSDF_TEST_DEVICE=cuda`` the same steps also
run under ``torch.cuda.set_sync_debug_mode("warn")``, which counts every synchronizing CUDA call, host-to-device
copies that block included.
"""

import contextlib
import warnings
from collections import Counter

import pytest
import torch
from conftest import DEVICE
from test_training import implicit_trainer, joint_trainer, pd_trainer

SYNC_BUDGET = 20
SYNCING = ("item", "__float__", "__int__", "__bool__", "__index__", "tolist", "cpu", "numpy")


class SyncCounter:
    """Counts, while active, the calls of :data:`SYNCING` on tensors other than ``host`` (ids); a ``.numpy()`` of
    what a ``.cpu()`` returned is that copy, counted once."""

    def __init__(self, host: set[int]) -> None:
        self.host, self.copied, self.calls = host, {}, Counter()
        self.original = {name: getattr(torch.Tensor, name) for name in SYNCING}

    def _wrapped(self, name: str):
        original = self.original[name]

        def call(tensor, *args, **kwargs):
            result = original(tensor, *args, **kwargs)
            if id(tensor) in self.host or (name == "numpy" and id(tensor) in self.copied):
                return result
            self.calls[name] += 1
            if name == "cpu":
                self.copied[id(result)] = result  # kept alive: its id is not reused while counting
            return result

        return call

    def __enter__(self):
        for name in SYNCING:
            setattr(torch.Tensor, name, self._wrapped(name))
        return self

    def __exit__(self, *exc):
        for name, original in self.original.items():
            setattr(torch.Tensor, name, original)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@contextlib.contextmanager
def cuda_sync_warnings():
    """The synchronizing CUDA calls inside the block, as warnings (none collected off a GPU)."""
    if not str(DEVICE).startswith("cuda"):
        yield []
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield caught
        finally:
            torch.cuda.set_sync_debug_mode("default")


def host_tensors(trainer) -> set[int]:
    """Ids of the trainer's host-side tensors: the optimizers' step counters and the next epoch's batches (the
    trainer's ``_batches`` is wrapped to record them). They are kept alive on the trainer, so that no other tensor
    takes one of their ids."""
    trainer.kept_for_the_test = [state["step"] for opt in trainer.optimizers.values() for state in opt.state.values()
                                 if torch.is_tensor(state.get("step"))]
    ids = {id(step) for step in trainer.kept_for_the_test}
    batches = trainer._batches

    def recorded():
        out = batches()
        trainer.kept_for_the_test += out
        ids.update(id(batch) for batch in out)
        return out

    trainer._batches = recorded
    return ids


def per_step(trainer, epoch) -> tuple[float, float]:
    """``(counted calls, CUDA sync warnings)`` per step of one ``epoch()`` of ``trainer`` (after a warm-up epoch,
    so that the optimizers' states exist)."""
    epoch()
    steps = len(trainer._batches())
    with SyncCounter(host_tensors(trainer)) as counter, cuda_sync_warnings() as caught:
        epoch()
    return counter.total / steps, len(caught) / steps


STEP_KINDS = {
    "stage 1": lambda tmp: (implicit_trainer(tmp), "train_epoch"),
    "stage 1b": lambda tmp: (pd_trainer(tmp, "pd"), "train_epoch"),
    "stage 2, plain theta": lambda tmp: (joint_trainer(tmp, "deepsdf_se_vad"), "_theta_epoch"),
    "stage 2, topological theta": lambda tmp: (joint_trainer(tmp, "ours_deepsdf_se"), "_theta_epoch"),
    "stage 2, prior theta": lambda tmp: (joint_trainer(tmp, "deepsdf_topoprior"), "_theta_epoch"),
    # without a theta block before it in the round, phi computes synthetic shapes of its own: its costliest case
    "stage 2, phi": lambda tmp: (joint_trainer(tmp, "ours_deepsdf_se"), "_phi_epoch"),
    "stage 2, z": lambda tmp: (joint_trainer(tmp, "ours_deepsdf_se"), "_z_epoch"),
}


@pytest.mark.parametrize("kind", STEP_KINDS)
def test_every_step_kind_reads_back_from_the_device_at_most_the_budget(tmp_path, kind):
    trainer, epoch = STEP_KINDS[kind](tmp_path)
    try:
        counted, cuda_warnings = per_step(trainer, getattr(trainer, epoch))
    finally:
        getattr(trainer, "close", lambda: None)()
    assert counted <= SYNC_BUDGET, f"{kind}: {counted:.1f} syncing calls per step"
    assert cuda_warnings <= SYNC_BUDGET, f"{kind}: {cuda_warnings:.1f} synchronizing CUDA calls per step"


def test_the_counter_sees_the_copies_a_step_makes(tmp_path):
    """The counter is not blind: the topological step brings its synthetic grids and the PD generators' diagrams
    back for the persistence, and a step that logged every term with float() would read back each of them."""
    trainer = joint_trainer(tmp_path, "ours_deepsdf_se")
    try:
        counted, _ = per_step(trainer, trainer._theta_epoch)
    finally:
        trainer.close()
    assert counted >= 2
    terms = {"a": torch.ones(()), "b": torch.zeros(())}
    with SyncCounter(set()) as counter:
        [float(value) for value in terms.values()]
        torch.ones(3).cpu().numpy()
    assert counter.calls == Counter({"__float__": 2, "cpu": 1})
