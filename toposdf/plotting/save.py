"""Writing figures: the Agg backend (headless, selected on import, before pyplot) and PNG output."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402


def save_figure(fig: Figure, path: str | Path, dpi: int, *, tight: bool = True) -> None:
    """Write ``fig`` as a PNG at ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white", **({"bbox_inches": "tight", "pad_inches": 0.08} if tight else {}))
