"""Samples near the training codes (toposdf.diagnostics.near_code_latents, near_code_scores, tools/near_codes.py):
how much of a generator's PD-LAP its decoder's fit costs, and how much its samples between the codes add."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_evaluation import SphereDecoder

from toposdf.diagnostics import near_code_latents
from toposdf.generation import TrainedModel, shapes_at
from toposdf.topology import save_diagrams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import near_codes as tool  # noqa: E402  (tools/ is no package)

near_code_scores = tool.near_code_scores

RESOLUTION, TAU, MIN_PERSISTENCE = 20, 1.0, 0.02  # tau above the radii: the diagrams tell radii apart


def _one_sphere() -> TrainedModel:
    """One training sphere of radius 0.4 (SphereDecoder: 0.5 + 0.1 z_0 at z_0 = -1)."""
    return TrainedModel(SphereDecoder(), torch.tensor([[-1.0, 0.0]]), None, ["a"], "sphere", torch.device("cpu"))


def _reference(model: TrainedModel, n: int) -> list:
    """The network-grid diagrams of n copies of the model's first training shape."""
    _, diagrams = shapes_at(model, model.mu[:1].repeat(n, 1), RESOLUTION, TAU, MIN_PERSISTENCE)
    return diagrams


def test_codes_are_the_training_codes_at_scale_0_and_spread_with_the_scale():
    mu = torch.tensor([[3.0, 0.0], [0.0, 3.0], [-3.0, -3.0]])
    z = near_code_latents(mu, 50, 0.0, seed=1)
    assert z.shape == (50, 2) and all(any(torch.equal(row, m) for m in mu) for row in z)
    assert len({tuple(row.tolist()) for row in z}) == 3  # every code drawn among 50
    torch.testing.assert_close(near_code_latents(mu, 50, 0.5, seed=1), near_code_latents(mu, 50, 0.5, seed=1))
    near = (near_code_latents(mu, 400, 0.5, seed=2)[:, None] - mu).norm(dim=-1).min(dim=1).values
    far = (near_code_latents(mu, 400, 2.0, seed=2)[:, None] - mu).norm(dim=-1).min(dim=1).values
    assert near.mean() < far.mean()
    prior = near_code_latents(mu, 4000, None, seed=3)
    assert abs(prior.mean()) < 0.1 and abs(prior.std() - 1) < 0.1  # N(0, I), not around the codes
    with pytest.raises(ValueError, match="scale"):
        near_code_latents(mu, 5, -1.0, seed=0)


def test_the_decoded_training_shape_scores_zero_and_the_prior_does_not():
    """One training sphere against copies of itself: at scale 0 every drawn shape is that sphere (PD-LAP exactly 0
    on the network's grid); noise around the code and the prior draw other radii (PD-LAP above 0)."""
    model = _one_sphere()
    rows = near_code_scores(model, _reference(model, 4), [0.0, 1.0, None], draws=2, seed=0, resolution=RESOLUTION,
                            tau=TAU, min_persistence=MIN_PERSISTENCE, from_meshes=False)
    assert [row["scale"] for row in rows] == [0.0, 1.0, None]
    assert rows[0]["pd_lap"] == (0.0, 0.0) and rows[0]["H0"] == (0.0, 0.0)
    assert rows[1]["pd_lap"][0] > 0 and rows[2]["pd_lap"][0] > 0
    meshed = near_code_scores(model, _reference(model, 4), [0.0, None], draws=1, seed=0, resolution=RESOLUTION,
                              tau=TAU, min_persistence=MIN_PERSISTENCE, from_meshes=True)
    assert meshed[0]["pd_lap"][0] < meshed[1]["pd_lap"][0]  # from meshes too, near the code scores best


def test_the_tool_scores_a_finished_run(tmp_path, monkeypatch):
    model = _one_sphere()
    folder = tmp_path / "run" / "chair"
    (folder / "diagrams").mkdir(parents=True)
    (folder / "train" / "sphere").mkdir(parents=True)
    (folder / "train" / "sphere" / "model.pt").write_bytes(b"")
    (folder / "split.json").write_text(json.dumps({"train": ["a"], "test": ["t0", "t1", "t2"]}))
    save_diagrams(folder / "diagrams" / "0.npz", ["a", "t0", "t1", "t2"], _reference(model, 4))
    other = [np.array([[-0.5, 0.5]]), np.zeros((0, 2)), np.zeros((0, 2))]  # not a shard: the tool must not read it
    save_diagrams(folder / "diagrams" / "stale.npz", ["t0"], [other])
    monkeypatch.setattr(tool, "load_model", lambda path, device: model)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    tool.main([str(tmp_path / "run"), "--scales", "0", "--draws", "1", "--resolution", str(RESOLUTION), "--tau",
               str(TAU), "--from-network", "--out", str(tmp_path / "near.json")])
    result = json.loads((tmp_path / "near.json").read_text())
    assert [(r["category"], r["method"], r["scale"]) for r in result["rows"]] == [("chair", "sphere", 0.0),
                                                                                 ("chair", "sphere", None)]
    assert result["rows"][0]["pd_lap"] == [0.0, 0.0] and result["scored_from"] == "network grid"
    assert np.isfinite(result["rows"][1]["pd_lap"][0]) and result["settings"]["draws"] == 1
