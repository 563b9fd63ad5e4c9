"""Shapes on disk: ShapeNet layout, splits, normalization and SDF sampling."""

from __future__ import annotations

#: ShapeNetCore.v2 synset ids of the categories the paper uses.
SYNSETS: dict[str, str] = {"chair": "03001627", "table": "04379243", "sofa": "04256520"}
