"""What the trainers read from the workflow's files: the training shapes' SDF samples and ground-truth diagrams."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from toposdf.io import read_json
from toposdf.preprocess import load_category_diagrams


def load_training_samples(sdf_paths: Sequence[str | Path],
                          split_path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The SDF samples of a category's training shapes (``split.json``'s ``train``) from its shards:
    ``(ids, points (n, P, 3), sdf (n, P))``, sorted by id."""
    train = set(read_json(split_path)["train"])
    ids, points, sdf = [], [], []
    for path in sdf_paths:
        with np.load(path) as f:
            for i, model_id in enumerate(f["ids"]):
                if str(model_id) in train:
                    ids.append(str(model_id))
                    points.append(f["points"][i])
                    sdf.append(f["sdf"][i])
    if not ids:
        raise ValueError(f"no training shapes with SDF samples in {list(map(str, sdf_paths))}")
    order = np.argsort(ids)
    return [ids[i] for i in order], np.stack(points)[order], np.stack(sdf)[order]


def training_diagrams(diagram_paths: Sequence[str | Path], ids: Sequence[str]) -> list[list[np.ndarray]]:
    """The ground-truth ``[PD0, PD1, PD2]`` (each ``(m, 2)``) of the shapes ``ids`` (the training shapes of a
    checkpoint), in that order, from the category's diagram shards."""
    all_ids, diagrams, _ = load_category_diagrams(diagram_paths)
    by_id = dict(zip(all_ids, diagrams))
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"no ground-truth diagrams for {len(missing)} training shapes, e.g. {missing[:3]}")
    return [by_id[i] for i in ids]
