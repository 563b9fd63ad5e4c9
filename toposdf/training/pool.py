"""The persistence pool of stage 2: the diagrams of synthetic shapes ``f(., z), z ~ N(0, I)``, computed by CPU
worker threads while the network trains (docs/method.md, Training: the grid without autograd, persistence and matching
in a pool that overlaps the step)."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from toposdf.field import GridDiagrams, evaluate_grid, evaluate_grid_band
from toposdf.losses import match_diagrams
from toposdf.surface_field import surface_diagrams
from toposdf.topology import joining_diagrams
from toposdf.transfer import to_host


class SyntheticDiagrams:
    """Diagrams of synthetic shapes ``f(., z)``, computed by a CPU worker pool while the caller trains.

    :meth:`submit` evaluates the network on the grid (no autograd, on the training device) and hands each shape's
    grid to a worker, which computes its diagrams and critical vertices (CubicalRipser releases the GIL) and, when
    the PD generators' output is given, the optimal matchings of eq. 1 against it. :meth:`next` returns the
    oldest submitted batch, waiting only if its workers are not done yet. Submitting batch ``t + 1`` before
    training on batch ``t`` overlaps the persistence with the step; its diagrams are then one step old, but the
    loss re-evaluates the network at their critical vertices with the current weights.

    ``seconds`` accumulates the time spent per part: ``grid`` (evaluation), ``persistence`` and ``assignment``
    (worker time, summed over workers), and ``wait`` (the caller blocked on workers). With ``narrow_band``, the
    grid is evaluated only near the zero level set (:func:`toposdf.field.evaluate_grid_band`), and
    ``grid_counts`` counts the network evaluations against the grid's vertices. ``crop`` (default True) computes
    the persistence on the box of the vertices below ``tau`` (see :func:`cubical_diagrams_with_critical`); with
    ``narrow_band`` False as well, every vertex is evaluated and the whole grid is filtered: the reference path.
    ``field`` (``train.joint.synthetic_field``): ``"surface"`` or ``"both"`` take the diagrams of the signed
    distance of each grid's marching-cubes surface instead, with its critical vertices' closest surface points
    (:func:`toposdf.surface_field.surface_diagrams`; a grid without a surface keeps the field's). ``join_tau``
    (``train.joint.join_tau``): the diagrams mark each floating piece's joining saddle
    (:func:`toposdf.topology.joining_diagrams`, ``GridDiagrams.joins``).
    """

    @property
    def evaluated_fraction(self) -> float:
        """Network evaluations per grid vertex since the counts were last cleared (1 without the narrow band)."""
        counts = self.grid_counts
        return counts["evaluated"] / counts["vertices"] if counts.get("vertices") else 1.0

    def __init__(self, resolution: int, tau: float, min_persistence: float, workers: int = 1,
                 narrow_band: bool = True, crop: bool = True, field: str = "network",
                 join_tau: float | None = None) -> None:
        if field not in ("network", "surface", "both"):
            raise ValueError(f"field must be 'network', 'surface' or 'both', got {field!r}")
        self.resolution, self.tau, self.min_persistence, self.field = resolution, tau, min_persistence, field
        self.join_tau = join_tau
        self.narrow_band, self.crop = narrow_band, crop
        self.workers = max(1, workers)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="persistence")
        self.pending: deque[tuple[torch.Tensor, list[Future]]] = deque()
        self.seconds: dict[str, float] = defaultdict(float)
        self.grid_counts: dict[str, int] = {}  # network evaluations and grid vertices (evaluate_grid_band's stats)

    def _one(self, grid: np.ndarray, generated: list[np.ndarray] | None):
        start = time.perf_counter()
        found = (surface_diagrams(grid, self.tau, self.min_persistence, self.crop, self.join_tau)
                 if self.field != "network" else None)
        if found is None:  # the network's field (or a shape without a surface)
            diagrams, critical, joins = joining_diagrams(grid, self.tau, self.join_tau, self.min_persistence, self.crop)
            surface = None
        else:
            diagrams, critical, surface, joins = found
        middle = time.perf_counter()
        matchings = None if generated is None else [match_diagrams(g, d) for g, d in zip(generated, diagrams)]
        return diagrams, critical, matchings, middle - start, time.perf_counter() - middle, surface, joins

    def submit(self, decoder: torch.nn.Module, z: torch.Tensor, generated: list[torch.Tensor] | None = None) -> None:
        """Queue the shapes ``f(., z)`` (``z`` ``(B, L)``); ``generated[k]`` ``(B, n_k, 2)``, when given, is the
        PD generators' output at ``z`` to match against."""
        start = time.perf_counter()
        if self.narrow_band:
            # the field's own diagrams with joining saddles need its values up to join_tau; the surface's only
            # its sign and the level set
            band = self.join_tau if self.join_tau is not None and self.field == "network" else self.tau
            grids = evaluate_grid_band(decoder, z, self.resolution, band, stats=self.grid_counts)
        else:
            grids = evaluate_grid(decoder, z, self.resolution)
        self.seconds["grid"] += time.perf_counter() - start
        gen = None if generated is None else to_host(generated)  # one copy
        futures = [self.pool.submit(self._one, grids[b], None if gen is None else [g[b] for g in gen])
                   for b in range(len(grids))]
        self.pending.append((z, futures))

    def next(self) -> tuple[torch.Tensor, GridDiagrams, list | None]:
        """``(z, computed, matchings)`` of the oldest submitted batch (``matchings`` None without generators)."""
        z, futures = self.pending.popleft()
        start = time.perf_counter()
        results = [f.result() for f in futures]
        self.seconds["wait"] += time.perf_counter() - start
        self.seconds["persistence"] += sum(r[3] for r in results)
        self.seconds["assignment"] += sum(r[4] for r in results)
        surface = [r[5] for r in results] if self.field != "network" else None
        computed = GridDiagrams([r[0] for r in results], [r[1] for r in results], surface, self.field == "both",
                                [r[6] for r in results] if self.join_tau is not None else None)
        matchings = None if results[0][2] is None else [r[2] for r in results]
        return z, computed, matchings

    def clear(self) -> None:
        """Drop the batches not consumed (each sub-epoch starts fresh, so a resumed run repeats it exactly)."""
        for _, futures in self.pending:
            for f in futures:
                f.cancel()
        self.pending.clear()

    def close(self) -> None:
        self.clear()
        self.pool.shutdown(wait=True)
