"""Scoring another generator's meshes (toposdf.external): the held-out training shapes given as an external folder
reproduce their calibration row; bad meshes, too few samples and wrong reconstruction ids are named; every format
reads the same."""

import json
import shutil

import numpy as np
import pytest
import trimesh

from toposdf.config import Config, validate_config
from toposdf.data import MeshError, mesh_path
from toposdf.calibration import calibration_picks, run_calibrate
from toposdf.evaluation import run_evaluate
from toposdf.external import (MESH_SUFFIXES, draws_from, mesh_files, prepare_mesh, prepare_meshes,
                              reconstruction_files, run_external_reconstructions, run_external_samples)
from toposdf.jobs import Job
from toposdf.stages import reads, settings
from toposdf.preprocess import diagrams_shard, grid_shard, normalize_shard
from toposdf.topology import betti_numbers

RAW = {"dataset": {"kind": "synthetic", "categories": ["chair"], "shapes_per_category": 8, "skip_invalid": False},
       "grid": {"resolution": 16}, "persistence": {"tau": 0.1, "min_persistence": 0.0}, "sdf": {"margin": 1.03},
       "evaluation": {"draws": 3, "seed": 0, "cloud_points": 64, "surface_points": 256}, "shards": 1}


def _raw(external: dict | None = None, evaluation: dict | None = None, **dataset) -> dict:
    raw = json.loads(json.dumps(RAW))
    raw["dataset"] |= dataset
    raw["evaluation"] |= evaluation or {}
    if external is not None:
        raw["external"] = external
    return raw


def _config(external: dict | None = None, evaluation: dict | None = None, **dataset) -> Config:
    return Config.from_dict(_raw(external, evaluation, **dataset))


def _shapes() -> list[trimesh.Trimesh]:
    """Boxes, tori and two-box shapes of several sizes: one, two and several components and tunnels."""
    shapes = []
    for k in range(4):
        shapes.append(trimesh.creation.box(extents=(0.6 + 0.1 * k, 0.4, 0.3)))
        shapes.append(trimesh.creation.torus(0.5, 0.15 + 0.02 * k))
    pair = trimesh.util.concatenate([trimesh.creation.box(extents=(0.3, 0.3, 0.3)),
                                     trimesh.creation.box(extents=(0.3, 0.3, 0.3)).apply_translation((0.6, 0, 0))])
    return shapes + [pair]


@pytest.fixture(scope="module")
def category(tmp_path_factory):
    """A category preprocessed as the workflow does it (normalize, grid, diagrams): 7 training, 2 test shapes."""
    root = tmp_path_factory.mktemp("category")
    shapes, cfg = _shapes(), _config()
    ids = [f"m{k:02d}" for k in range(len(shapes))]
    for model_id, mesh in zip(ids, shapes):
        path = mesh_path(root / "data", "chair", model_id)
        path.parent.mkdir(parents=True)
        mesh.export(path)
    split = {"category": "chair", "root": str(root / "data"), "train": ids[:7], "test": ids[7:]}
    (root / "split.json").write_text(json.dumps({"train": split["train"], "test": split["test"]}))
    (root / "meshes").mkdir()
    normalize_shard(split, 0, 1, root / "meshes" / "0.json", 1.03, False)
    grid_shard(root / "meshes" / "0.json", root / "grids.npz", 16)
    diagrams_shard(root / "grids.npz", root / "diagrams.npz", cfg)
    return root


def _inputs(root) -> dict:
    return {"split": root / "split.json", "diagrams": [root / "diagrams.npz"], "manifests": [root / "meshes" / "0.json"]}


def _score(root, folder, name="gen", entry=None, reconstructions=None, evaluation=None, **dataset):
    """The external row's samples, reconstructions and metrics, as the rules run them."""
    entry = {"samples": str(folder), "reconstructions": reconstructions} | (entry or {})
    raw = _raw({name: entry}, evaluation, **dataset)
    cfg = Config.from_dict(raw)
    out = root / "out" / name
    out.mkdir(parents=True, exist_ok=True)
    files = [str(p) for p in mesh_files(folder)]
    run_external_samples(Job.of(cfg, {"samples": files, "split": root / "split.json"},
                                {"diagrams": out / "diagrams.npz", "shapes": out / "shapes.npz",
                                 "manifest": out / "manifest.json"}, category="chair", external=name))
    recon = [str(p) for p in mesh_files(reconstructions)] if reconstructions else []
    run_external_reconstructions(Job.of(cfg, {"reconstructions": recon} | _inputs(root),
                                        {"chamfer": out / "reconstruction.csv"}, category="chair", external=name))
    evaluate = settings(validate_config(raw), reads("evaluate"))  # what the rule passes: reading more raises
    run_evaluate(Job.of(evaluate, _inputs(root) | {"generated": out / "diagrams.npz", "shapes": out / "shapes.npz",
                                                   "chamfer": out / "reconstruction.csv"},
                        {"metrics": out / "metrics.json"}, category="chair", method=name))
    return json.loads((out / "metrics.json").read_text()), json.loads((out / "manifest.json").read_text())


def _heldout_folder(root, dest):
    """The calibration draws' training shapes, as preprocessing normalized them, in draw order by file name."""
    train = json.loads((root / "split.json").read_text())["train"]
    n, ev = 2, RAW["evaluation"]
    dest.mkdir(parents=True)
    for d, pick in enumerate(calibration_picks(len(train), n, ev["seed"], ev["draws"])):
        for i, k in enumerate(pick):
            shutil.copy(root / "meshes" / f"{train[k]}.obj", dest / f"{d:02d}_{i:02d}_{train[k]}.obj")
    return dest


@pytest.mark.parametrize("normalize", [False, True])
def test_the_held_out_training_shapes_as_an_external_folder_reproduce_their_calibration_row(category, tmp_path,
                                                                                            normalize):
    """Given in the ground truth's frame (normalize: false), the meshes take exactly the ground truth's path: the
    row's PD-LAP (per dimension too) and Betti statistics equal the held-out training calibration row's. Normalized
    again (the default), a normalized mesh moves by float rounding only: the same numbers within 1e-9."""
    run_calibrate(Job.of(_config(), _inputs(category), {"calibration": tmp_path / "calibration.json"},
                         category="chair"))
    calibration = json.loads((tmp_path / "calibration.json").read_text())
    want = next(row["metrics"] for row in calibration["rows"] if row["method"] == "heldout_training")
    folder = _heldout_folder(category, tmp_path / "heldout")
    got, manifest = _score(category, folder, entry={"normalize": normalize})
    assert manifest["draws"] == 3 and manifest["shapes_per_draw"] == 2 and manifest["skipped"] == 0
    keys = ["pd_lap", "pd_lap_h0", "pd_lap_h1", "pd_lap_h2", "mean_b0", "mean_b1", "mean_b2", "b0_is_1",
            "blob_fraction", "thick_fraction"]
    for key in keys:
        for part in ("mean", "std"):
            if normalize:
                assert got["metrics"][key][part] == pytest.approx(want[key][part], abs=1e-9, nan_ok=True), key
            else:
                assert got["metrics"][key][part] == want[key][part], (key, part)
    assert got["metrics"]["pd_lap"]["mean"] > 0  # not a trivial agreement
    assert got["metrics"]["cd_mean"]["mean"] is None and "no reconstructions given" in got["metrics"]["cd_mean"]["note"]


def test_too_few_samples_say_how_many_are_needed_unless_the_entry_sets_its_draws(category, tmp_path):
    folder = tmp_path / "few"
    folder.mkdir()
    for k in range(5):  # 3 draws x 2 test shapes need 6
        trimesh.creation.box(extents=(0.5, 0.4 + 0.05 * k, 0.3)).export(folder / f"s{k}.obj")
    with pytest.raises(ValueError, match=r"needs 3 draws x 2 shapes = 6 meshes, found 5 usable.*up to 2"):
        _score(category, folder)
    metrics, manifest = _score(category, folder, entry={"draws": 2})
    assert manifest["draws"] == 2 and manifest["unused"] == 1 and metrics["metrics"]["pd_lap"]["n"] == 2
    assert metrics["metrics"]["pd_lap"]["std"] >= 0
    one, _ = _score(category, folder, name="one", entry={"draws": 1})
    assert one["metrics"]["pd_lap"]["n"] == 1 and one["metrics"]["pd_lap"]["std"] is None  # not 0: no spread measured
    assert one["metrics"]["pd_lap_h1"]["std"] is None and one["metrics"]["pd_lap"]["draws"] == [
        one["metrics"]["pd_lap"]["mean"]]
    with pytest.raises(ValueError, match="needs 3 draws"):
        draws_from(5, 2, 10, 3, "here")


def test_a_test_shape_skipped_in_preprocessing_scores_the_first_shapes_of_each_draw(category, tmp_path):
    """A test shape skipped in preprocessing (``dataset.skip_invalid``) stays in the split without ground truth: the
    draws hold as many shapes as the split's test shapes, and each draw is scored on its first ones, one per test
    shape with ground truth. The numbers are those of the same draws without the extra shape; fewer shapes than the
    test shapes are refused before anything is scored."""
    heldout = _heldout_folder(category, tmp_path / "heldout")
    want, _ = _score(category, heldout)
    root = tmp_path / "skipped"
    shutil.copytree(category, root, ignore=shutil.ignore_patterns("out"))
    split = json.loads((root / "split.json").read_text())
    (root / "split.json").write_text(json.dumps(split | {"test": split["test"] + ["m99"]}))  # m99: no mesh, no PDs
    folder = tmp_path / "longer"
    folder.mkdir()
    for path in sorted(heldout.iterdir()):  # draw d: its two held-out shapes first, then one more
        shutil.copy(path, folder / path.name)
    for d in range(3):
        trimesh.creation.box(extents=(0.5, 0.4, 0.3 + 0.05 * d)).export(folder / f"{d:02d}_99_extra.obj")
    got, manifest = _score(root, folder)
    assert manifest["shapes_per_draw"] == 3 and got["test_shapes"] == 3
    keys = ["pd_lap", "pd_lap_h0", "pd_lap_h1", "mean_b0", "mean_b1", "mmd_cd", "cov_cd", "1_nna_cd"]
    assert {k: got["metrics"][k] for k in keys} == {k: want["metrics"][k] for k in keys}
    assert got["metrics"]["pd_lap"]["n"] == 3 and got["metrics"]["pd_lap"]["mean"] > 0
    with pytest.raises(ValueError, match=r"generated_shapes: 1 is fewer than the 2 test shapes"):  # at start-up
        _score(category, heldout, name="few", evaluation={"generated_shapes": 1})
    from toposdf.generation import draw_size  # a split file's or ShapeNet's test count is known in the job only

    with pytest.raises(ValueError, match=r"generated_shapes is 1, fewer than the category's 2 test shapes"):
        draw_size(1, 2)


def _bad_meshes(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "unreadable.glb").write_bytes(b"\x00\x01 not a mesh \xff" * 10)
    (folder / "empty.obj").write_text("# no faces\nv 0 0 0\nv 1 0 0\n")
    sheet = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]])
    sheet.export(folder / "insideless.obj")


def test_an_unreadable_an_empty_and_an_insideless_mesh_are_named_or_skipped_with_their_reason(tmp_path):
    folder = tmp_path / "bad"
    _bad_meshes(folder)
    trimesh.creation.box().export(folder / "good.obj")
    paths = mesh_files(folder)
    with pytest.raises(MeshError) as error:
        prepare_meshes(paths, True, 1.03, False, "external.gen.skip_invalid", "meshes")
    for name in ("unreadable.glb", "empty.obj", "insideless.obj"):
        assert name in str(error.value)
    assert "good.obj" not in str(error.value) and "3 of the 4 meshes" in str(error.value)
    assert "set external.gen.skip_invalid: true" in str(error.value)  # the entry's own: only its row reruns
    usable, records = prepare_meshes(paths, True, 1.03, True, what="meshes")
    assert [path.name for path, _, _ in usable] == ["good.obj"]
    reasons = {r["file"]: r["reason"] for r in records if r["status"] == "skipped"}
    assert set(reasons) == {"unreadable.glb", "empty.obj", "insideless.obj"}
    assert "cannot read" in reasons["unreadable.glb"] and "no triangles" in reasons["empty.obj"]
    assert "not a solid" in reasons["insideless.obj"]


def test_skipped_samples_are_in_the_rows_manifest_and_count_against_the_draws(category, tmp_path):
    folder = tmp_path / "mixed"
    _bad_meshes(folder)
    for k in range(6):
        trimesh.creation.box(extents=(0.5, 0.4 + 0.05 * k, 0.3)).export(folder / f"s{k}.obj")
    _, manifest = _score(category, folder, skip_invalid=True)  # dataset.skip_invalid, which the entry follows
    assert manifest["skipped"] == 3 and manifest["usable"] == 6
    assert {r["file"] for r in manifest["files"] if r["status"] == "skipped"} == {"unreadable.glb", "empty.obj",
                                                                                    "insideless.obj"}
    _, own = _score(category, folder, name="own", entry={"skip_invalid": True})  # the entry's own: only its row
    assert (own["skipped"], own["usable"]) == (3, 6)
    with pytest.raises(MeshError, match=r"set external\.strict\.skip_invalid: true"):
        _score(category, folder, name="strict", entry={"skip_invalid": False}, skip_invalid=True)  # the entry's wins


@pytest.mark.parametrize("suffix", MESH_SUFFIXES)
def test_every_format_gives_the_same_normalized_mesh_and_diagrams(tmp_path, suffix):
    torus = trimesh.creation.torus(0.5, 0.2)
    path = tmp_path / f"torus{suffix}"
    torus.export(path)
    mesh, record = prepare_mesh(path, True, 1.03)
    reference, _ = prepare_mesh(_export(torus, tmp_path / "reference.obj"), True, 1.03)
    assert record["sign"] == "winding" and record["solid_fraction"] == 1.0
    np.testing.assert_allclose(np.sort(mesh.vertices, axis=0), np.sort(reference.vertices, axis=0), atol=1e-6)
    from toposdf.external import grids_and_diagrams

    _, (diagrams,) = grids_and_diagrams([(mesh, record)], 24, 0.1, 0.0)
    assert betti_numbers(diagrams) == (1, 1, 0)


def _export(mesh, path):
    mesh.export(path)
    return path


def test_reconstructions_are_one_per_test_shape_named_by_its_id(category, tmp_path):
    """A missing and an extra id are named; given all, CD-mean is that of the truth's own meshes: near 0."""
    folder = tmp_path / "recon"
    folder.mkdir()
    for model_id in ("m07", "m08"):
        shutil.copy(category / "meshes" / f"{model_id}.obj", folder / f"{model_id}.obj")
    (folder / "m08.obj").rename(folder / "m99.obj")
    with pytest.raises(ValueError, match=r"no reconstruction of test shape\(s\) m08; file\(s\) named by no test "
                                         r"shape: m99.obj"):
        reconstruction_files(mesh_files(folder), ["m07", "m08"], "here")
    (folder / "m99.obj").rename(folder / "m08.obj")
    samples = _heldout_folder(category, tmp_path / "samples")
    metrics, _ = _score(category, samples, reconstructions=str(folder), entry={"normalize": False})
    cd = metrics["metrics"]["cd_mean"]
    assert cd["n"] == 2 and cd["failed"] == 0 and 0 <= cd["mean"] < 1e-3 and "note" not in cd


def test_an_external_name_must_not_be_a_method_and_its_folders_must_exist(tmp_path):
    from toposdf.config import ConfigError

    with pytest.raises(ConfigError, match=r"(?s)external.deepsdf_vad: the name is taken.*external.deepsdf_vad.samples: "
                                          r"'/nonexistent/chair' \(chair\) is not a folder"):
        _config({"deepsdf_vad": {"samples": "/nonexistent/{category}"}})


def test_score_from_meshes_scores_a_trained_rows_draws_through_the_mesh_path():
    """evaluation.score_from: meshes: each draw of a (sphere) generator is scored from its marching-cubes meshes on
    the external rows' path; an exact SDF's ball keeps its one component, born within a voxel of the network's."""
    from test_evaluation import _model

    from toposdf.evaluation import mesh_rescoring
    from toposdf.generation import generate

    cfg = Config.from_settings({"evaluation": {"score_from": "meshes"}, "grid": {"resolution": 24},
                                "persistence": {"tau": 0.8, "min_persistence": 0.02}})
    calls = []
    rescore = mesh_rescoring(cfg)

    def counted(grids, diagrams):
        calls.append(len(grids))
        return rescore(grids, diagrams)

    network = generate(_model(), 3, 2, 7, 24, 0.8, 0.02, progress=False)  # tau above the radii: no clamp
    meshed = generate(_model(), 3, 2, 7, 24, 0.8, 0.02, progress=False, rescore=counted)
    assert calls == [3, 3]
    for a, b in zip(network.diagrams, meshed.diagrams):
        for x, y in zip(a, b):
            assert len(y[0]) == 1 and [len(d) for d in x] == [len(d) for d in y]
            assert abs(x[0][0, 0] - y[0][0, 0]) < 2 / 23 and x[0][0, 0] != y[0][0, 0]
    assert mesh_rescoring(Config.from_settings({"evaluation": {"draws": 2}})) is None  # the network's grid


def test_the_obj_round_trip_is_trimeshs_writer_and_reader_to_the_last_bit():
    """obj_round_trip skips the text; trimesh's OBJ writer (8 decimals) and reader (unprocessed) give the same
    vertices, bit for bit (signed zeros and decimal ties included), and the same faces, unused vertices dropped."""
    from toposdf.external import obj_decimals, obj_round_trip

    rng = np.random.default_rng(0)
    ties = np.array([1 / 512, -1 / 512, 3 / 1024, 0.5e-8, -2e-9, -0.0, 0.0, 0.123456785, 1 - 2**-40, 7e9, -1.0])
    values = np.concatenate([ties, rng.uniform(-1, 1, 5000), rng.normal(0, 1e-6, 500)])
    text = np.array([float(f"{v:.8f}") for v in values])
    decimals = obj_decimals(values)
    assert np.array_equal(decimals, text) and np.array_equal(np.signbit(decimals), np.signbit(text))
    box = trimesh.creation.box([0.8, 0.5, 0.6])
    meshes = [_shapes()[1], trimesh.Trimesh(rng.uniform(-1, 1, (40, 3)), rng.integers(0, 30, (25, 3)), process=False),
              trimesh.Trimesh(np.concatenate([[[0.3, -1e-10, 0.2]], box.vertices]), box.faces + 1, process=False)]
    for mesh in meshes:
        written = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_texture=False)
        read = trimesh.load(trimesh.util.wrap_as_stream(written), file_type="obj", force="mesh", process=False)
        fast = obj_round_trip(mesh)
        assert np.array_equal(fast.faces, read.faces) and fast.vertices.shape == read.vertices.shape
        assert np.array_equal(fast.vertices, read.vertices)
        assert np.array_equal(np.signbit(fast.vertices), np.signbit(read.vertices))
    assert len(obj_round_trip(meshes[2]).vertices) == 8  # the unused first vertex is not read back
