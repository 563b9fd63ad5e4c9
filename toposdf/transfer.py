"""Copies between the host and the training device that keep a GPU step from waiting on the host.

A training step that reads one tensor back (``.item()``, ``float()``, ``.cpu()``) or copies a host array in the
blocking way waits until the GPU has finished everything queued before it. A step has many small host-side parts
(the batch's sample indices, the persistence diagrams' matchings, the critical vertices): each of them is packed into
one array and copied with :func:`to_device` (pinned and ``non_blocking`` on a GPU), and what the host needs from the
device comes back in one copy with :func:`to_host`. ``tests/test_syncs.py`` counts the copies back per step kind.
"""

from __future__ import annotations

import numpy as np
import torch


def to_device(data, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``data`` (a host array or tensor) on ``device`` as ``dtype``. On a CUDA device the copy comes from pinned
    memory and does not block the host; on the CPU it is ``torch.as_tensor`` (no copy where none is needed)."""
    if isinstance(data, np.ndarray) and not data.flags.writeable:
        data = data.copy()  # torch cannot wrap a read-only array (grid_points_cached's)
    tensor = torch.as_tensor(data, dtype=dtype)
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def to_host(tensors: list[torch.Tensor], dtype=np.float64) -> list[np.ndarray]:
    """The ``tensors`` (detached, any shapes, any floating dtypes) as ``dtype`` arrays, in one device-to-host copy.
    Float32 values come back exact in float64, as from ``tensor.double().cpu().numpy()``."""
    if not tensors:
        return []
    flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors]).cpu().numpy()
    ends = np.cumsum([t.numel() for t in tensors])
    return [part.reshape(tuple(t.shape)).astype(dtype, copy=False)
            for part, t in zip(np.split(flat, ends[:-1]), tensors)]


def to_device_packed(arrays: list[np.ndarray], device: torch.device | str, dtype: torch.dtype) -> list[torch.Tensor]:
    """Host arrays of one trailing shape (any lengths along the first axis) on ``device`` as ``dtype``, sent in one
    copy (:func:`to_device`) and sliced there."""
    if not arrays:
        return []
    ends = np.cumsum([len(a) for a in arrays])
    packed = to_device(np.concatenate(arrays), device, dtype)
    return [packed[end - len(a):end] for a, end in zip(arrays, ends)]


def pack_indices(arrays: list[np.ndarray], device: torch.device | str) -> list[torch.Tensor]:
    """Integer arrays (any lengths) as ``long`` tensors on ``device``, sent in one copy (:func:`to_device_packed`)."""
    return to_device_packed([np.asarray(a, np.int64).ravel() for a in arrays], device, torch.long)
