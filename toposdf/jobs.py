"""One workflow job as the library's entry points see it: its settings, typed, and its named inputs and outputs.

A rule's script hands its job over in one line, ``run_evaluate(Job.from_snakemake(snakemake))``; the entry point
reads ``job.input.model``, ``job.output.metrics``, ``job.wildcards.method`` and ``job.cfg``. Tests build one with
:meth:`Job.of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from toposdf.config import Config


@dataclass(frozen=True)
class Job:
    """``settings``: the rule's ``params.settings``, the entries its stage reads (:mod:`toposdf.stages`), as given
    (they go into the provenance of what the job writes); ``cfg``: the same, typed. ``input``, ``output`` and
    ``wildcards`` have one attribute per name (Snakemake's named lists, or namespaces)."""

    settings: dict
    input: Any
    output: Any
    wildcards: Any = field(default_factory=SimpleNamespace)
    threads: int = 1
    cfg: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cfg is None:
            object.__setattr__(self, "cfg", Config.from_settings(self.settings))

    def optional_input(self, name: str) -> Any:
        """The input ``name``, or None where the rule does not give it (e.g. stage 1 for a method from scratch)."""
        return getattr(self.input, name, None)

    @classmethod
    def from_snakemake(cls, snakemake: Any) -> Job:
        return cls(snakemake.params.settings, snakemake.input, snakemake.output, snakemake.wildcards,
                   max(1, snakemake.threads))

    @classmethod
    def of(cls, settings: dict | Any, input: dict, output: dict, threads: int = 1, **wildcards: str) -> Job:
        """A job from plain dicts (tests and tools); ``settings`` may be a typed config tree instead (then the
        provenance records no settings)."""
        typed = None if isinstance(settings, dict) else settings
        return cls({} if typed is not None else settings, SimpleNamespace(**input), SimpleNamespace(**output),
                   SimpleNamespace(**wildcards), threads, typed)
