"""Generation, tables and figures: seeded draws, mesh storage, the tables' numbers and formats, and the PNGs."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from toposdf.figures import (interpolation_figure, loss_terms, mesh_rows, method_curve, pd_matrices_figure,
                             training_curves)
from toposdf.generation import (TrainedModel, draw_seeds, draws_of, generate, interpolate, load_meshes,
                                sample_latents, save_generation, save_meshes)
from toposdf.models import PDGenerators
from toposdf.provenance import config_hash, provenance
from toposdf.tables import formatted, wide, write_tables


class SphereDecoder(torch.nn.Module):
    """``f(x, z) = |x| - (0.5 + 0.1 z_0)``: a sphere whose radius the code sets (an exact, known generator)."""

    def forward(self, z, x):
        return x.norm(dim=-1) - (0.5 + 0.1 * z[:, :1])


def _model(generators=None) -> TrainedModel:
    mu = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    return TrainedModel(SphereDecoder(), mu, generators, ["a", "b"], "sphere", torch.device("cpu"))


def test_draws_are_seeded_independent_and_reproducible():
    seeds = draw_seeds(0, 10)
    assert len(set(seeds)) == 10 and seeds == draw_seeds(0, 10) and seeds != draw_seeds(1, 10)
    torch.testing.assert_close(sample_latents(3, 4, seeds[0]), sample_latents(3, 4, seeds[0]))
    assert not torch.equal(sample_latents(3, 4, seeds[0]), sample_latents(3, 4, seeds[1]))


def test_generation_gives_the_spheres_of_the_codes_and_round_trips(tmp_path):
    result = generate(_model(), n_shapes=3, draws=2, seed=7, resolution=24, tau=0.1, min_persistence=0.02,
                      progress=False)
    assert result.z.shape == (2, 3, 2) and result.grids.shape == (3, 24, 24, 24) and len(result.meshes) == 3
    for z, (vertices, faces) in zip(result.z[0], result.meshes):
        radius = 0.5 + 0.1 * z[0]
        assert len(faces) > 0
        np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), radius, atol=2.0 / 23)
    for draw in result.diagrams:  # a ball: one component, no loops or voids
        assert [[len(d) for d in shape] for shape in draw] == [[1, 0, 0]] * 3
    save_generation(result, tmp_path / "d.npz", tmp_path / "s.npz", provenance="{}")
    back = draws_of(tmp_path / "d.npz")
    assert len(back) == 2 and all(len(draw) == 3 for draw in back)
    np.testing.assert_array_equal(back[1][2][0], result.diagrams[1][2][0])
    for (v, f), (v2, f2) in zip(result.meshes, load_meshes(tmp_path / "s.npz")):
        np.testing.assert_allclose(v, v2, atol=1e-6)
        np.testing.assert_array_equal(f, f2)


def test_mesh_storage_keeps_empty_meshes_in_place(tmp_path):
    meshes = [(np.eye(3), np.array([[0, 1, 2]])), (np.zeros((0, 3)), np.zeros((0, 3), int)),
              (np.ones((4, 3)), np.array([[0, 1, 2], [1, 2, 3]]))]
    save_meshes(tmp_path / "m.npz", meshes)
    back = load_meshes(tmp_path / "m.npz")
    assert [len(f) for _, f in back] == [1, 0, 2]
    np.testing.assert_array_equal(back[2][1], meshes[2][1])


def test_interpolation_walks_between_the_two_training_codes():
    torch.manual_seed(0)
    generators = PDGenerators(2, (2, 1, 1), hidden=8).eval()
    result = interpolate(_model(generators), 0, 1, steps=3, resolution=24, tau=0.1, min_persistence=0.02)
    np.testing.assert_allclose(result.t, [0, 0.5, 1])
    radii = [np.linalg.norm(v, axis=1).mean() for v, _ in result.meshes]
    np.testing.assert_allclose(radii, [0.4, 0.5, 0.6], atol=2.0 / 23)
    assert len(result.generator_diagrams) == 3 and result.generator_diagrams[0][0].shape == (2, 2)
    with pytest.raises(ValueError, match="2 training shapes"):
        interpolate(_model(), 0, 5, steps=3, resolution=16, tau=0.1, min_persistence=0.02)


def _metrics_file(path, category, method, cd, lap):
    metrics = {"cd_mean": {"mean": cd, "std": cd / 10, "n": 5}, "pd_lap": {"mean": lap, "std": 0.01, "n": 10}}
    metrics |= {f"pd_lap_h{k}": {"mean": lap / (k + 1), "std": 0.0, "n": 10} for k in range(3)}
    metrics |= {"mmd_cd": {"mean": cd, "std": None, "n": 1}, "cov_cd": {"mean": lap, "std": None, "n": 1},
                "1_nna_cd": {"mean": 0.5, "std": None, "n": 1}}
    path.write_text(json.dumps({"category": category, "method": method, "metrics": metrics}))
    return path


def test_tables_hold_the_numbers_scaled_in_markdown_and_latex_with_the_best_in_bold(tmp_path):
    paths = [_metrics_file(tmp_path / f"{c}_{m}.json", c, m, cd, lap)
             for c, m, cd, lap in [("chair", "deepsdf_vad", 0.002, 0.5), ("chair", "ours_deepsdf", 0.001, 0.25),
                                   ("table", "deepsdf_vad", 0.003, 0.4), ("table", "ours_deepsdf", 0.004, 0.2)]]
    written = write_tables(paths, ["deepsdf_vad", "ours_deepsdf"], ["chair", "table"], tmp_path / "out", 1000, 10)
    assert sorted(p.name for p in written) == sorted(f"{t}.{e}" for t in ("generation", "table1", "table2")
                                                     for e in ("csv", "md", "tex"))
    raw = pd.read_csv(tmp_path / "out" / "table1.csv", index_col="method")
    assert raw.loc["ours_deepsdf", "chair/cd_mean/mean"] == 0.001  # raw, unscaled
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "×1000" in md and "| Ours-DeepSDF | **1.00 ± 0.10** | **2.50 ± 0.10** | 4.00 ± 0.40 | **2.00 ± 0.10** |" in md
    tex = (tmp_path / "out" / "table2.tex").read_text()
    assert "\\begin{tabular}" in tex and "\\textbf{2.50 $\\pm$ 0.00}" in tex and "PD-LAP-H2" in tex
    generation = (tmp_path / "out" / "generation.md").read_text()
    # COV: higher is better, and one draw has no std
    assert ("| DeepSDF-VAD | 2.00 | **50.00** | **50.00** | n/a | n/a | n/a | n/a | **3.00** | **40.00** | **50.00** |"
            in generation)
    t2 = pd.read_csv(tmp_path / "out" / "table2.csv", index_col="method")
    assert list(t2.columns)[:3] == ["chair/pd_lap_h0/mean", "chair/pd_lap_h0/std", "chair/pd_lap_h1/mean"]


def test_provenance_names_the_config_checkpoint_and_seed(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"weights")
    record = provenance({"a": 1, "b": [2]}, checkpoint, seed=3)
    assert record["config_sha256"] == config_hash({"b": [2], "a": 1}) != config_hash({"a": 2, "b": [2]})
    assert record["checkpoint"] == str(checkpoint) and record["seed"] == 3 and len(record["checkpoint_sha256"]) == 64
    assert "train_seed" not in record  # not a trainer's checkpoint: the training seed is not known
    torch.save({"config": {"seed": 1}, "decoder": {}}, checkpoint)  # a trainer's: the seed it was trained with
    record = provenance({"a": 1}, checkpoint, seed=0)
    assert record["train_seed"] == 1 and record["seed"] == 0


def _png_size(path):
    with Image.open(path) as image:
        return image.size


def test_figures_write_readable_pngs(tmp_path):
    sphere = generate(_model(), 2, 1, 0, 16, 0.1, 0.02, progress=False).meshes
    mesh_rows(tmp_path / "rows.png", [("a", sphere), ("b", sphere[:1] + [(np.zeros((0, 3)), np.zeros((0, 3)))])], "t")
    diagrams = [[np.array([[-0.1, 0.1]]), np.zeros((0, 2)), np.zeros((0, 2))]] * 2
    interpolation_figure(tmp_path / "interp.png", np.array([0.0, 1.0]), sphere, diagrams, diagrams, 0.1, "t")
    w = np.arange(9.0).reshape(3, 3)
    pd_matrices_figure(tmp_path / "w.png", [("x", w, 1.0, np.array([2, 0, 1])), ("y", w.T, 2.0, np.arange(3))], "t")
    curve = pd.DataFrame({"epoch": [1, 2], "theta_sdf": [1.0, 0.5], "seconds_theta": [1, 1]})
    training_curves(tmp_path / "c.png", {"m": curve, "n": curve * 2}, "t")
    for name in ("rows", "interp", "w", "c"):
        width, height = _png_size(tmp_path / f"{name}.png")
        assert width > 200 and height > 150


def test_training_curves_plot_loss_terms_only():
    """Timings and the narrow band's evaluated fraction are in the CSVs but are not losses; an all-zero term keeps
    its panel."""
    curve = pd.DataFrame({"epoch": [1, 2], "theta_sdf": [1.0, 0.5], "theta_prior": [0.0, 0.0],
                          "seconds_grid": [0.1, 0.1], "grid_evaluated_fraction": [0.4, 0.5]})
    assert loss_terms({"m": curve}) == ["theta_prior", "theta_sdf"]


def test_method_curve_continues_stage_one_epochs_with_stage_two_rounds(tmp_path):
    pd.DataFrame({"epoch": [1, 2], "sdf": [1.0, 0.8], "kl": [3.0, 2.0], "loss": [1.1, 0.9]}).to_csv(tmp_path / "s1.csv", index=False)
    pd.DataFrame({"epoch": [1], "theta_sdf": [0.7], "loss": [0.7]}).to_csv(tmp_path / "j.csv", index=False)
    curve = method_curve(tmp_path / "s1.csv", tmp_path / "missing.csv", tmp_path / "j.csv")
    assert curve["epoch"].tolist() == [1, 2, 3]
    assert curve["theta_sdf"].tolist() == [1.0, 0.8, 0.7] and curve["z_kl"].tolist()[:2] == [3.0, 2.0]


# ---------------------------------------------------------------------------------------------- calibration rows
def _ring(holes: int) -> list[np.ndarray]:
    """Diagrams of a one-piece shape with ``holes`` tunnels of different sizes."""
    return [np.array([[-0.1, 0.1]]), np.array([[-0.02 * (i + 1), 0.05] for i in range(holes)]).reshape(-1, 2),
            np.zeros((0, 2))]


def test_the_blob_row_is_the_essential_class_alone_with_no_spread():
    from toposdf.calibration import blob_diagrams
    from toposdf.metrics import pd_lap_summary

    blob = blob_diagrams(24, 0.1, 0.02)
    np.testing.assert_allclose(blob[0], [[-0.1, 0.1]])
    assert len(blob[1]) == 0 and len(blob[2]) == 0
    reference = [_ring(h) for h in (1, 2, 3, 4)]
    summary = pd_lap_summary([[blob] * 4] * 3, reference).stats()
    assert summary["total"][0] > 0 and summary["total"][1] == pytest.approx(0.0, abs=1e-12)  # one fixed blob: no std


def test_a_generator_whose_samples_differ_has_a_pd_lap_spread_over_draws():
    from toposdf.metrics import pd_lap_summary

    reference = [_ring(h) for h in (1, 2, 3, 4)]
    rng = np.random.default_rng(0)
    draws = [[_ring(int(h)) for h in rng.integers(0, 6, 4)] for _ in range(5)]
    mean, std = pd_lap_summary(draws, reference).stats()["total"]
    assert std > 0 and mean > 0


def test_a_std_left_out_shows_the_mean_alone_in_the_tables():
    long = pd.DataFrame([{"category": "chair", "method": m, "metric": "pd_lap", "mean": mean, "std": std, "n": n}
                         for m, mean, std, n in (("gen", 0.03, np.nan, 1), ("ours", 0.02, 0.01, 2))])
    cells = formatted(wide(long, ["pd_lap"], ["gen", "ours"], ["chair"]), {"pd_lap": 1000}, {"pd_lap": "PD-LAP"}, "md")
    assert list(cells[("chair", "PD-LAP")]) == ["30.00", "**20.00 ± 10.00**"]


def test_held_out_training_shapes_that_are_the_test_shapes_score_zero_and_the_blob_scores_more(tmp_path):
    from toposdf.calibration import calibration_draws
    from toposdf.metrics import pd_lap_summary

    shapes = [_ring(h) for h in (0, 1, 2, 3, 5)]
    draws = calibration_draws(shapes, n=5, seed=0, draws=3)  # n = all training shapes: permutations of them
    assert all(sorted(len(d[1]) for d in draw) == [0, 1, 2, 3, 5] for draw in draws)
    floor = pd_lap_summary(draws, shapes).stats()["total"]
    assert floor == (0.0, 0.0)
    larger = calibration_draws(shapes, n=8, seed=0, draws=2)  # fewer training shapes than n: with replacement
    assert all(len(draw) == 8 for draw in larger)


def test_calibration_rows_are_in_the_tables_but_never_bold(tmp_path):
    paths = [_metrics_file(tmp_path / f"{c}_{m}.json", c, m, cd, lap)
             for c, m, cd, lap in [("chair", "deepsdf_vad", 0.002, 0.5), ("chair", "ours_deepsdf", 0.001, 0.25)]]
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps({"category": "chair", "rows": [
        {"category": "chair", "method": "heldout_training",
         "metrics": {"pd_lap": {"mean": 0.1, "std": 0.01, "n": 3}}},
        {"category": "chair", "method": "blob", "metrics": {"pd_lap": {"mean": 0.9, "std": 0.0, "n": 1}}}]}))
    write_tables(paths + [calibration], ["deepsdf_vad", "ours_deepsdf"], ["chair"], tmp_path / "out", 1000, 10)
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "| Held-out training shapes (floor) | n/a | 1.00 ± 0.10 |" in md
    assert "| One fixed blob (ceiling) | n/a | 9.00 ± 0.00 |" in md
    assert "| Ours-DeepSDF | **1.00 ± 0.10** | **2.50 ± 0.10** |" in md


def test_thick_shapes_are_those_born_at_the_clamp_and_the_generation_table_shows_their_share(tmp_path):
    """A shape with a point more than tau inside has its deepest component born at -tau (a blob, or a solid
    slab); a thin one does not. Metrics written before the share was measured show n/a."""
    from toposdf.calibration import blob_diagrams
    from toposdf.evaluation import betti_summary

    thin = [np.array([[-0.04, 0.1]]), np.array([[-0.01, 0.03]]), np.zeros((0, 2))]
    solid_with_a_hole = _ring(1)  # essential class at (-0.1, 0.1)
    blob = blob_diagrams(24, 0.1, 0.02)
    summary = betti_summary([thin, thin, solid_with_a_hole, blob], tau=0.1)
    assert summary["thick_fraction"] == 0.5 and summary["blob_fraction"] == 0.25
    assert "thick_fraction" not in betti_summary([thin])
    assert betti_summary([thin], tau=0.05)["thick_fraction"] == 0.0  # born above -tau: not at that clamp

    new = _metrics_file(tmp_path / "new.json", "chair", "ours_deepsdf", 0.001, 0.25)
    entry = json.loads(new.read_text())
    entry["metrics"]["thick_fraction"] = {"mean": 0.25, "std": None, "n": 1}
    new.write_text(json.dumps(entry))
    old = _metrics_file(tmp_path / "old.json", "chair", "deepsdf_vad", 0.002, 0.5)
    write_tables([new, old], ["deepsdf_vad", "ours_deepsdf"], ["chair"], tmp_path / "out", 1000, 10)
    table = (tmp_path / "out" / "generation.md").read_text()
    assert "thick (%)" in table
    assert table.splitlines()[-2].endswith("| n/a |") and table.splitlines()[-1].endswith("| 25.00 |")


def test_training_fit_scores_a_perfect_decoder_one_and_an_average_shape_less(tmp_path, monkeypatch):
    """training_fit decodes the training codes on the ground truth's grid: the sphere decoder reproduces spheres
    of radius 0.4 and 0.6 exactly; a decoder that gives every code the same larger-than-average sphere retrieves
    one shape in two, with IoU below 1 and more volume. tools/training_fit.py prints and writes it."""
    from pathlib import Path

    from toposdf.data import grid_points
    from toposdf.diagnostics import occupancy_fit, training_fit

    resolution = 20
    radius = np.linalg.norm(grid_points(resolution), axis=1).reshape((resolution,) * 3)
    grids = np.stack([radius - 0.4, radius - 0.6])
    np.savez(tmp_path / "0.npz", ids=np.array(["a", "b"]), grids=grids, resolution=resolution)
    fit = training_fit(_model(), [tmp_path / "0.npz"])
    assert fit["decoded_iou"] == 1.0 and fit["retrieval"] == 1.0 and fit["volume_ratio"] == 1.0
    assert 0.2 < fit["nearest_other_iou"] < 0.5  # (0.4 / 0.6)^3 = 0.30
    average = occupancy_fit(np.stack([radius < 0.55] * 2), grids < 0)
    assert average["retrieval"] == 0.5 and average["decoded_iou"] < 1.0 and average["volume_ratio"] > 1.0
    with pytest.raises(ValueError, match="no ground-truth grid"):
        np.savez(tmp_path / "1.npz", ids=np.array(["a"]), grids=grids[:1], resolution=resolution)
        training_fit(_model(), [tmp_path / "1.npz"])

    run = tmp_path / "run"
    (run / "chair" / "grids").mkdir(parents=True)
    (run / "chair" / "train" / "sphere").mkdir(parents=True)
    np.savez(run / "chair" / "grids" / "0.npz", ids=np.array(["a", "b"]), grids=grids, resolution=resolution)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "tools"))
    import training_fit as tool

    monkeypatch.setattr(tool, "load_model", lambda path, device: _model())
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    (run / "chair" / "train" / "sphere" / "model.pt").write_bytes(b"")
    tool.main([str(run), "--out", str(tmp_path / "fit.json")])
    rows = json.loads((tmp_path / "fit.json").read_text())["rows"]
    assert rows == [pytest.approx({"category": "chair", "method": "sphere", **fit}, nan_ok=True)]  # no tunnel: NaN


def test_diagram_summary_counts_and_measures_the_points_above_the_threshold(tmp_path, monkeypatch):
    """diagram_summary keeps the points of persistence above the threshold: per shape their count and total
    persistence, over all of them the median lifetime and mean birth and death (NaN for an empty dimension).
    tools/diagram_stats.py gives it for the ground truth, each method's samples (every draw) and its PD
    generators at prior and at training codes."""
    from pathlib import Path

    from toposdf.diagnostics import diagram_summary
    from toposdf.topology import save_diagrams

    empty = np.zeros((0, 2))
    a = [np.array([[-0.1, 0.1]]), np.array([[-0.02, 0.10], [0.0, 0.01]]), empty]
    b = [np.array([[-0.1, 0.1], [0.0, 0.015]]), np.array([[0.0, 0.05], [0.01, 0.04]]), empty]
    s = diagram_summary([a, b], 0.02)
    assert s["h0_points"] == 1.0 and s["h0_total_persistence"] == pytest.approx(0.2)
    assert s["h1_points"] == 1.5 and s["h1_total_persistence"] == pytest.approx(0.10)
    assert s["h1_median_life"] == pytest.approx(0.05)
    assert s["h1_mean_birth"] == pytest.approx(-0.01 / 3) and s["h1_mean_death"] == pytest.approx(0.19 / 3)
    assert s["h1_born_outside"] == pytest.approx(1 / 3) and s["h0_born_outside"] == 0.0  # (0.01, 0.04) is outside
    assert np.isnan(s["h2_born_outside"])
    assert diagram_summary([a], 0.0)["h1_born_outside"] == 0.0  # (0, 0.01) is born on the surface, not outside
    assert diagram_summary([b], 0.0)["h1_born_outside"] == 0.5
    assert s["h2_points"] == 0.0 and s["h2_total_persistence"] == 0.0 and np.isnan(s["h2_median_life"])
    assert diagram_summary([a, b], 0.11)["h1_points"] == 0.5

    run = tmp_path / "run" / "chair"
    (run / "diagrams").mkdir(parents=True)
    (run / "split.json").write_text(json.dumps({"train": ["a"], "test": ["b"]}))
    save_diagrams(run / "diagrams" / "0.npz", ["a", "b"], [a, b])
    (run / "generate" / "ours").mkdir(parents=True)
    save_diagrams(run / "generate" / "ours" / "diagrams.npz", ["draw0/0", "draw1/0"], [a, b])
    (run / "train" / "ours").mkdir(parents=True)
    (run / "train" / "ours" / "model.pt").write_bytes(b"")

    def generators(z):  # one H1 point of life 0.1 at every code
        one = torch.tensor([[0.0, 0.1]]).expand(len(z), 1, 2)
        return [one * 0, one, one * 0]

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "tools"))
    import diagram_stats as tool

    monkeypatch.setattr(tool, "load_model", lambda path, device: _model(generators))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    tool.main([str(tmp_path / "run"), "--codes", "8", "--out", str(tmp_path / "stats.json")])
    rows = {(r["source"], r["method"]): r for r in json.loads((tmp_path / "stats.json").read_text())["rows"]}
    assert rows["ground truth", "train"]["h1_points"] == 1.0 and rows["ground truth", "test"]["h1_points"] == 2.0
    assert rows["samples", "ours"]["shapes"] == 2 and rows["samples", "ours"]["h1_points"] == 1.5
    assert rows["PD gen prior", "ours"]["shapes"] == 8 and rows["PD gen train", "ours"]["shapes"] == 2
    assert rows["PD gen prior", "ours"]["h1_median_life"] == pytest.approx(0.1)
    offsets = rows["offset stage 2", "ours"]  # (0, 0.1) against a's (-0.02, 0.10) and b's (0, 0.05)
    assert offsets["h1_matched"] == 1.0 and offsets["h1_birth_offset"] == pytest.approx(0.01)
    assert offsets["h1_death_offset"] == pytest.approx(0.025) and ("offset 1b", "ours") not in rows  # no pdgen.pt
    from toposdf.topology import pd_lap

    a_to_b = pd_lap([a], [b], 1).per_dimension  # Table 2's columns of one shape a against the test shape b
    parts = rows["PD-LAP parts", "ours"]  # draw 0 is a, draw 1 is b itself
    assert parts["draws"] == 2 and parts["h1_missing_points"] == pytest.approx(0.5)  # b's (0, 0.05), in draw 0
    for k in range(2):
        assert sum(parts[f"h{k}_{p}"] for p in ("matched", "extra", "missing")) == pytest.approx(a_to_b[k] / 2)
        floor = rows["PD-LAP parts", "held-out train"]  # every draw of the floor is the one training shape a
        assert sum(floor[f"h{k}_{p}"] for p in ("matched", "extra", "missing")) == pytest.approx(a_to_b[k])

    def born_outside(z):  # stage 1b's generators, here with their one H1 point born outside the surface
        one = torch.tensor([[0.01, 0.11]]).expand(len(z), 1, 2)
        return [one * 0, one, one * 0]

    stage1 = {"ids": ["a"], "codes": {"mu": np.zeros((1, 2), np.float32)}}
    monkeypatch.setattr(tool, "stage1b_generators", lambda train: (born_outside, stage1))
    tool.main([str(tmp_path / "run"), "--codes", "8", "--out", str(tmp_path / "stats.json")])
    rows = {(r["source"], r["method"]): r for r in json.loads((tmp_path / "stats.json").read_text())["rows"]}
    assert rows["PD gen 1b prior", "ours"]["shapes"] == 8 and rows["PD gen 1b prior", "ours"]["h1_born_outside"] == 1
    assert rows["PD gen prior", "ours"]["h1_born_outside"] == 0  # stage 2's generators: born at 0, not outside
    assert rows["offset 1b", "ours"]["h1_birth_offset"] == pytest.approx(0.03)  # (0.01, 0.11) against (-0.02, 0.10)


def test_paired_cd_table_pairs_each_topological_method_with_the_baseline_of_its_geometry(tmp_path):
    from toposdf.tables import paired_baselines, write_paired_cd

    methods = {"deepsdf_vad": {"geometry": "eikonal", "topology": "none"},
               "deepsdf_se_vad": {"geometry": "steik", "topology": "none"},
               "ours_deepsdf": {"geometry": "eikonal", "topology": "learned"},
               "no_pd_training": {"geometry": "steik", "topology": "learned"},
               "lonely": {"geometry": "other", "topology": "learned"}}
    pairs = paired_baselines(methods)
    assert pairs == {"ours_deepsdf": "deepsdf_vad", "no_pd_training": "deepsdf_se_vad"}
    ids = [f"s{i}" for i in range(6)]
    base = np.array([0.010, 0.020, 0.015, 0.012, 0.030, 0.011])
    paths = {}
    for method, values in (("deepsdf_vad", base), ("ours_deepsdf", base - 0.002 + 1e-4 * np.arange(6))):
        paths[("chair", method)] = tmp_path / f"{method}.csv"
        # rows in another order than the baseline's: the pairing is by model id
        pd.DataFrame({"model_id": ids[::-1], "chamfer": values[::-1]}).to_csv(paths[("chair", method)], index=False)
    csv_path, md_path = write_paired_cd(paths, [("ours_deepsdf", "deepsdf_vad")], ["chair"], tmp_path / "cd_paired", 1000)
    row = pd.read_csv(csv_path).iloc[0]
    assert row["mean"] == pytest.approx(-0.002 + 2.5e-4) and row["high"] < 0 and row["resolved"] == 1 and row["n"] == 6
    text = md_path.read_text()
    assert "| Ours-DeepSDF | DeepSDF-VAD | -1.75 [" in text and "unresolved" not in text.split("\n", 2)[2]


def test_matched_offsets_give_the_mean_shift_of_matched_points_and_ignore_the_diagonal():
    from toposdf.diagnostics import matched_offsets

    target = [np.array([[-0.1, 0.1]]), np.array([[-0.03, 0.08], [-0.02, 0.06]]), np.zeros((0, 2))]
    shifted = [target[0].copy(), target[1] + [0.01, -0.002], np.zeros((0, 2))]
    shifted[1] = np.vstack([shifted[1], [[0.05, 0.05]]])  # an unused slot on the diagonal: not a point
    offsets = matched_offsets([shifted, shifted], [target, target])
    assert offsets["h1_matched"] == 2 and offsets["h0_matched"] == 1
    assert offsets["h1_birth_offset"] == pytest.approx(0.01) and offsets["h1_death_offset"] == pytest.approx(-0.002)
    assert offsets["h0_birth_offset"] == 0 and np.isnan(offsets["h2_birth_offset"]) and offsets["h2_matched"] == 0
    far = [target[0], np.array([[0.09, 0.1]]), np.zeros((0, 2))]  # a short pair is sent to the diagonal, not matched
    assert matched_offsets([far], [[target[0], np.array([[-0.03, 0.08]]), np.zeros((0, 2))]])["h1_matched"] == 0


def test_consistency_matching_counts_tunnels_by_birth_side_and_partner():
    """tools/consistency_matching.py: which of a shape's tunnels eq. 1 pairs with a target born inside, one born
    outside (a broken ring held broken), or the diagonal (cut)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from consistency_matching import KINDS, match_kinds

    shape = np.array([[-0.02, 0.10], [0.01, 0.06], [0.0, 0.005]])  # a tunnel, a ring born outside, a short one
    held = match_kinds(shape, np.array([[-0.02, 0.10], [0.005, 0.06]]), 0.02)
    assert {k: held[k] for k in KINDS if held[k]} == {"in_to_in": 1, "out_to_out": 1}
    assert (held["targets_in"], held["targets_out"], held["targets_unmatched"]) == (1, 1, 0)
    # one target: the tunnel takes it (0.0017 + 0.00125 for the ring on the diagonal, against 0.0016 + 0.0072)
    cut = match_kinds(shape, np.array([[-0.03, 0.06]]), 0.02)
    assert {k: cut[k] for k in KINDS if cut[k]} == {"in_to_in": 1, "out_to_diagonal": 1}
    none = match_kinds(shape, np.zeros((0, 2)), 0.02)
    assert {k: none[k] for k in KINDS if none[k]} == {"in_to_diagonal": 1, "out_to_diagonal": 1}
    assert none["targets_unmatched"] == 0


def test_the_tables_rule_takes_its_job_and_writes_every_table_with_the_paired_cd(tmp_path):
    from toposdf.config import Config
    from toposdf.jobs import Job
    from toposdf.tables import run_tables

    cfg = Config.from_dict({"dataset": {"kind": "synthetic", "categories": ["chair"], "shapes_per_category": 4},
                            "sdf": {}, "grid": {}, "persistence": {}, "shards": 1,
                            "methods": {"deepsdf_vad": {"geometry": "eikonal"},
                                        "ours_deepsdf": {"geometry": "eikonal", "topology": "learned"}},
                            "figures": {"baseline": "deepsdf_vad", "ours": "ours_deepsdf"}})
    metrics, reconstructions = [], []
    for method, cd, lap, chamfer in (("deepsdf_vad", 0.002, 0.5, 0.012), ("ours_deepsdf", 0.001, 0.25, 0.010)):
        folder = tmp_path / "results" / "run" / "chair" / "eval" / method
        folder.mkdir(parents=True)
        metrics.append(_metrics_file(folder / "metrics.json", "chair", method, cd, lap))
        reconstructions.append(folder / "reconstruction.csv")
        pd.DataFrame({"model_id": ["a", "b", "c"], "chamfer": [chamfer, chamfer * 1.1, chamfer * 0.9]}).to_csv(
            reconstructions[-1], index=False)
    tables = tmp_path / "results" / "run" / "tables"
    out = {name: [tables / f"{name}.{ext}" for ext in ("csv", "md", "tex")] for name in ("table1", "table2", "generation")}
    job = Job.of(cfg, dict(metrics=metrics, calibration=[], reconstructions=reconstructions),
                 dict(out, cd_paired=[tables / "cd_paired.csv", tables / "cd_paired.md"]))
    written = run_tables(job)
    assert {p.name for p in written} == {p.name for paths in out.values() for p in paths} | {"cd_paired.csv",
                                                                                              "cd_paired.md"}
    paired = pd.read_csv(tables / "cd_paired.csv").iloc[0]
    assert (paired["method"], paired["baseline"]) == ("ours_deepsdf", "deepsdf_vad")
    assert paired["mean"] == pytest.approx(-0.002)
