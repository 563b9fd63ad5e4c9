"""Meshes, signed distances, splits and the shard-level preprocessing, including broken input."""

import json
import shutil

import numpy as np
import pytest
import trimesh

from toposdf.config import Config
from toposdf.data import (
    MeshError,
    category_meshes,
    grid_points,
    load_mesh,
    load_normalized_mesh,
    load_sdf_samples,
    load_shape_diagrams,
    mesh_path,
    normalize_mesh,
    sample_sdf,
    sdf_grid,
    shard_of,
    signed_distance,
    split_ids,
    split_models,
)
from toposdf.io import read_json
from toposdf.preprocess import make_split, normalize_shard, shard_models
from toposdf.topology import save_diagrams


def box_sdf(points, half=0.5):
    """Exact SDF of the axis-aligned cube [-half, half]^3."""
    q = np.abs(points) - half
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


def open_box(scramble=False):
    """A unit cube with its top (z = +0.5) removed: not watertight. ``scramble`` flips every other face."""
    box = trimesh.creation.box([1, 1, 1])
    faces = np.delete(box.faces, np.flatnonzero(box.triangles_center[:, 2] > 0.49), axis=0)
    if scramble:
        faces[::2] = faces[::2, ::-1]
    return trimesh.Trimesh(box.vertices, faces, process=False)


INSIDE = np.array([[0.0, 0.0, 0.0], [0.2, -0.3, -0.2], [0.0, 0.1, 0.25], [-0.4, 0.4, -0.4]])
OUTSIDE = np.array([[0.0, 0.0, -0.8], [0.9, 0.0, 0.0], [0.0, 0.0, 0.9], [0.6, 0.6, 0.6]])


def _check_open_box_sign(mesh):
    d_in, d_out = signed_distance(INSIDE, mesh.vertices, mesh.faces), signed_distance(OUTSIDE, mesh.vertices, mesh.faces)
    assert np.all(d_in < 0) and np.all(d_out > 0)
    # Below the opening, the magnitude is the distance to the closest remaining face, not a scaled value.
    np.testing.assert_allclose(d_in[[0, 1, 3]], -np.array([0.5, 0.2, 0.1]), atol=1e-12)
    np.testing.assert_allclose(d_out[[0, 1]], [0.3, 0.4], atol=1e-12)


def test_sign_on_an_open_box_uses_winding_numbers():
    mesh = open_box()
    assert not mesh.is_watertight
    _check_open_box_sign(mesh)
    _check_open_box_sign(trimesh.Trimesh(mesh.vertices, mesh.faces[:, ::-1], process=False))  # reversed


def test_scrambled_orientation_is_fixed_by_normalization():
    scrambled = open_box(scramble=True)
    assert np.any(signed_distance(INSIDE, scrambled.vertices, scrambled.faces) > 0)  # the raw winding number fails
    normalized, norm = normalize_mesh(scrambled, margin=1.0)
    d = signed_distance(norm.apply(INSIDE), normalized.vertices, normalized.faces)
    assert np.all(d < 0)


def test_signed_distance_matches_the_exact_box_sdf():
    box = trimesh.creation.box([1, 1, 1])
    points = np.random.default_rng(0).uniform(-1, 1, (2000, 3))
    np.testing.assert_allclose(signed_distance(points, box.vertices, box.faces), box_sdf(points), atol=1e-9)


def test_grid_is_c_ordered_over_the_cube():
    box, _ = normalize_mesh(trimesh.creation.box([1.0, 0.5, 0.25]), margin=1.0)
    grid = sdf_grid(box, 17)
    assert grid.shape == (17, 17, 17) and grid.dtype == np.float32
    pts = grid_points(17)
    np.testing.assert_array_equal(pts[17 * 17 * 3 + 17 * 5 + 2], [np.linspace(-1, 1, 17)[i] for i in (3, 5, 2)])
    np.testing.assert_allclose(grid.ravel(), signed_distance(pts, box.vertices, box.faces), atol=1e-6)


def test_normalization_fits_the_unit_sphere_and_inverts():
    mesh = trimesh.creation.box([2.0, 1.0, 4.0])
    mesh.apply_translation([3.0, -1.0, 2.0])
    normalized, norm = normalize_mesh(mesh, margin=1.03)
    radius = np.linalg.norm(normalized.vertices, axis=1).max()
    assert radius == pytest.approx(1 / 1.03)
    np.testing.assert_allclose(normalized.bounds.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(norm.invert(normalized.vertices), mesh.vertices, atol=1e-12)


def test_normalization_ignores_vertices_of_no_face():
    """Some files keep vertices no face uses; one far away must not shrink the shape."""
    box = trimesh.creation.box([2.0, 1.0, 4.0])
    loose = trimesh.Trimesh(np.vstack([box.vertices, [[50.0, 0, 0]]]), box.faces, process=False)
    _, want = normalize_mesh(box)
    _, got = normalize_mesh(loose)
    assert got.scale == want.scale and np.array_equal(got.offset, want.offset)


def test_a_shape_shrunk_by_a_far_stray_triangle_is_skipped_with_its_reason(tmp_path):
    """A cube with one stray triangle far away normalizes to a speck: too small to train on, skipped (or an
    error naming the file); the shapes beside it are kept."""
    root = tmp_path / "shapenet"
    box = trimesh.creation.box([1.0, 1.0, 1.0])
    stray = trimesh.Trimesh([[40.0, 0, 0], [40.5, 0, 0], [40.0, 0.5, 0]], [[0, 1, 2]])
    for name, mesh in (("speck", trimesh.util.concatenate([box, stray])), ("good", box)):
        path = mesh_path(root, "chair", name)
        path.parent.mkdir(parents=True)
        mesh.export(path)
    split = {"category": "chair", "root": str(root), "train": ["good"], "test": ["speck"]}
    records = normalize_shard(split, 0, 1, tmp_path / "out" / "0.json", 1.03, skip_invalid=True)
    status = {r["model_id"]: (r["status"], r["reason"]) for r in records}
    assert status["good"] == ("ok", "")
    assert status["speck"][0] == "skipped" and "too small in its bounding sphere" in status["speck"][1]
    with pytest.raises(MeshError, match=r"speck.*too small in its bounding sphere"):
        normalize_shard(split, 0, 1, tmp_path / "strict" / "0.json", 1.03, skip_invalid=False)


def test_sdf_samples_follow_the_deepsdf_scheme():
    box = trimesh.creation.box([1, 1, 1])
    points, sdf = sample_sdf(box, 10000, variances=(0.0025, 0.00025), uniform_fraction=0.1, seed=3)
    assert points.shape == (10000, 3) and sdf.shape == (10000,) and points.dtype == np.float32
    np.testing.assert_allclose(sdf, box_sdf(points.astype(np.float64)), atol=1e-5)
    near, uniform = np.abs(sdf[:9000]), points[9000:]
    assert np.median(near) < 0.05 and np.all(np.abs(uniform) <= 1)
    again, _ = sample_sdf(box, 10000, variances=(0.0025, 0.00025), uniform_fraction=0.1, seed=3)
    np.testing.assert_array_equal(points, again)


def test_split_is_deterministic_and_disjoint():
    ids = [f"m{i:03d}" for i in range(50)]
    a = split_models(ids, 0.2, seed=1)
    assert a == split_models(list(reversed(ids)), 0.2, seed=1)
    assert len(a["test"]) == 10 and not set(a["train"]) & set(a["test"])
    assert split_models(ids, 0.2, seed=2) != a
    limited = split_models(ids, 0.25, seed=1, limit=8)
    assert len(limited["train"]) + len(limited["test"]) == 8 and len(limited["test"]) == 2
    shards = [shard_of(ids, s, 3) for s in range(3)]
    assert sorted(sum(shards, [])) == ids


@pytest.mark.parametrize("content,match", [(None, "no such mesh file"), ("", "no triangles"),
                                           ("v 0 0 0\nv 1 0 0\nf 1 2 7 9\n", "cannot read|no triangles")])
def test_broken_meshes_raise_naming_the_file(tmp_path, content, match):
    path = tmp_path / "model_normalized.obj"
    if content is not None:
        path.write_text(content)
    with pytest.raises(MeshError, match=match) as info:
        load_mesh(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------------------------
# Shard-level normalization with broken input
# ------------------------------------------------------------------------------------------------------------
def _shapenet_like(root, n_good=4):
    for i in range(n_good):
        path = mesh_path(root, "chair", f"good{i}")
        path.parent.mkdir(parents=True)
        trimesh.creation.box([1 + i, 1, 1]).export(path)
    for name, text in [("corrupt", "v 1 2\nf x y z\n"), ("empty", "")]:
        path = mesh_path(root, "chair", name)
        path.parent.mkdir(parents=True)
        path.write_text(text)


def _cfg(skip_invalid):
    return Config.from_dict({
        "dataset": {"kind": "synthetic", "categories": ["chair"], "shapes_per_category": 100, "test_fraction": 0.25,
                    "skip_invalid": skip_invalid},
        "sdf": {}, "grid": {}, "persistence": {}, "shards": 1,
    })


def test_skip_invalid_records_skips_in_the_manifest(tmp_path):
    _shapenet_like(tmp_path / "shapenet")
    cfg = _cfg(True)
    split = make_split(cfg, "chair", tmp_path / "shapenet")
    assert len(split["train"]) + len(split["test"]) == 6
    records = normalize_shard(split, 0, 1, tmp_path / "out" / "0.json", 1.03, skip_invalid=True)
    status = {r["model_id"]: r["status"] for r in records}
    assert status == {"corrupt": "skipped", "empty": "skipped", **{f"good{i}": "ok" for i in range(4)}}
    manifest = read_json(tmp_path / "out" / "0.json")
    reasons = {r["model_id"]: r["reason"] for r in manifest["shapes"]}
    assert "corrupt" in reasons["corrupt"] and "no triangles" in reasons["empty"]


def test_a_broken_mesh_fails_the_shard_but_keeps_the_other_shapes(tmp_path):
    _shapenet_like(tmp_path / "shapenet")
    split = make_split(_cfg(False), "chair", tmp_path / "shapenet")
    out = tmp_path / "out" / "0.json"
    with pytest.raises(MeshError) as info:
        normalize_shard(split, 0, 1, out, 1.03, skip_invalid=False)
    message = str(info.value)
    assert "2 mesh(es)" in message and "corrupt" in message and "empty" in message and "skip_invalid" in message
    assert not out.exists()
    kept = sorted(p.name for p in out.parent.glob("*.obj"))
    assert kept == [f"good{i}.obj" for i in range(4)]
    # After the user removes the broken models, the rerun reuses the normalized meshes it already has.
    before = {p.name: p.stat().st_mtime_ns for p in out.parent.glob("*.obj")}
    for bad in ("corrupt", "empty"):  # their folders (a folder left without its mesh is recorded as such)
        shutil.rmtree(mesh_path(tmp_path / "shapenet", "chair", bad).parents[1])
    split = make_split(_cfg(False), "chair", tmp_path / "shapenet")
    records = normalize_shard(split, 0, 1, out, 1.03, skip_invalid=False)
    assert [r["status"] for r in records] == ["ok"] * 4
    assert {p.name: p.stat().st_mtime_ns for p in out.parent.glob("*.obj")} == before


def test_shards_cover_the_split_once():
    split = {"train": ["a", "c", "d"], "test": ["b", "e"]}
    got = [m for s in range(2) for m in shard_models(split, s, 2)]
    assert sorted(got) == [("a", "train"), ("b", "test"), ("c", "train"), ("d", "train"), ("e", "test")]


# ------------------------------------------------------------------------------------------------------------
# Loaders of what preprocessing wrote
# ------------------------------------------------------------------------------------------------------------
def _ring(holes: int) -> list[np.ndarray]:
    return [np.array([[-0.1, 0.1]]), np.array([[-0.05, 0.02]] * holes).reshape(-1, 2), np.zeros((0, 2))]


def test_sample_and_diagram_loaders_gather_shards_by_id(tmp_path):
    ids = [["c", "a"], ["b", "d"]]  # two shards, not sorted
    for s, shard in enumerate(ids):
        points = np.stack([np.full((5, 3), ord(i), np.float32) for i in shard])
        np.savez(tmp_path / f"sdf{s}.npz", ids=np.array(shard), points=points, sdf=points[..., 0])
        save_diagrams(tmp_path / f"pd{s}.npz", shard, [_ring(ord(i) - ord("a")) for i in shard], tau=0.1)
    found, points, sdf = load_sdf_samples([tmp_path / "sdf0.npz", tmp_path / "sdf1.npz"], ["d", "a", "x"])
    assert found == ["a", "d"] and points.shape == (2, 5, 3) and sdf.shape == (2, 5)
    assert points[0, 0, 0] == ord("a") and sdf[1, 0] == ord("d")
    assert load_sdf_samples([tmp_path / "sdf0.npz"], ["x"])[1].shape == (0, 0, 3)
    paths = [tmp_path / "pd0.npz", tmp_path / "pd1.npz"]
    diagrams = load_shape_diagrams(paths, ["d", "b"])
    assert list(diagrams) == ["d", "b"] and [len(d[1]) for d in diagrams.values()] == [3, 1]
    with pytest.raises(ValueError, match="no ground-truth diagrams for 1 shapes"):
        load_shape_diagrams(paths, ["a", "x"])
    assert list(load_shape_diagrams(paths, ["a", "x"], skip_missing=True)) == ["a"]


def test_split_ids_and_category_meshes(tmp_path):
    _shapenet_like(tmp_path / "shapenet", n_good=3)
    split = make_split(_cfg(True), "chair", tmp_path / "shapenet")
    (tmp_path / "split.json").write_text(json.dumps(split))
    assert split_ids(tmp_path / "split.json", "test") == sorted(split["test"])
    with pytest.raises(ValueError, match="'train' or 'test'"):
        split_ids(tmp_path / "split.json", "val")
    normalize_shard(split, 0, 1, tmp_path / "out" / "0.json", 1.03, skip_invalid=True)
    meshes = category_meshes([tmp_path / "out" / "0.json"], ["good0", "good2", "corrupt"])
    assert sorted(meshes) == ["good0", "good2"]  # skipped shapes are absent
    assert len(load_normalized_mesh(meshes["good2"]).faces) == 12


def test_the_sample_loader_decompresses_each_array_of_a_shard_once(tmp_path, monkeypatch):
    """Indexing ``f["points"][i]`` on an open npz decompresses the whole array per row (quadratic in the shapes)."""
    shards = [[f"s{s}_{i}" for i in range(6)] for s in range(3)]
    for s, shard in enumerate(shards):
        points = np.random.default_rng(s).random((len(shard), 7, 3), dtype=np.float32)
        np.savez_compressed(tmp_path / f"sdf{s}.npz", ids=np.array(shard), points=points, sdf=points[..., 0])
    reads = []
    original = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__",
                        lambda self, key: reads.append((self.fid.name, key)) or original(self, key))
    wanted = [i for shard in shards for i in shard[::2]] + ["missing"]
    found, points, sdf = load_sdf_samples([tmp_path / f"sdf{s}.npz" for s in range(3)], wanted)
    assert found == sorted(wanted[:-1]) and points.shape == (9, 7, 3) and sdf.shape == (9, 7)
    assert max(reads.count(read) for read in set(reads)) == 1  # "ids" once per pass, "points" and "sdf" once
    assert len([r for r in reads if r[1] != "ids"]) == 6
    monkeypatch.undo()
    for model_id, row, values in zip(found, points, sdf):
        s, i = int(model_id[1]), int(model_id.split("_")[1])
        with np.load(tmp_path / f"sdf{s}.npz") as f:
            assert np.array_equal(row, f["points"][i]) and np.array_equal(values, f["sdf"][i])


def test_deepsdf_split_files_replace_the_random_split_and_unknown_ids_are_named(tmp_path):
    from toposdf.stages import settings

    _shapenet_like(tmp_path / "shapenet")
    files = {}
    for subset, ids in (("train", ["good0", "good2", "corrupt"]), ("test", ["good1"])):
        files[subset] = tmp_path / f"sv2_{{category}}s_{subset}.json"
        (tmp_path / f"sv2_chairs_{subset}.json").write_text(json.dumps({"ShapeNetV2": {"03001627": ids}}))
    raw = {"dataset": {"kind": "synthetic", "categories": ["chair"], "shapes_per_category": 100,
                       "splits": {subset: str(path) for subset, path in files.items()}},
           "sdf": {}, "grid": {}, "persistence": {}, "shards": 1}
    full = Config.from_dict(raw)
    split = make_split(full, "chair", tmp_path / "shapenet")
    assert (split["train"], split["test"]) == (["corrupt", "good0", "good2"], ["good1"])
    assert split["split_files"]["test"].endswith("sv2_{category}s_test.json") and split["test_fraction"] is None
    # the split rule's params: the files where set, nothing (as before the setting existed) where not
    from toposdf.config import validate_config
    assert settings(validate_config(raw), ["?dataset.splits"])["dataset"]["splits"]["train"] == str(files["train"])
    assert settings(validate_config({**raw, "dataset": {**raw["dataset"], "splits": None}}), ["?dataset.splits"]) == {}
    default = make_split(Config.from_settings(settings(validate_config({**raw, "dataset": {
        **raw["dataset"], "splits": None}}), ["dataset", "?dataset.splits"])), "chair", tmp_path / "shapenet")
    assert len(default["train"]) + len(default["test"]) == 6 and "split_files" not in default  # the random split
    (tmp_path / "sv2_chairs_test.json").write_text(json.dumps({"ShapeNetV2": {"03001627": ["good1", "ghost_7"]}}))
    with pytest.raises(ValueError, match=r"sv2_chairs_test\.json: 1 of its chair ids are not in the dataset.*ghost_7"):
        make_split(full, "chair", tmp_path / "shapenet")
    (tmp_path / "sv2_chairs_test.json").write_text(json.dumps({"ShapeNetV2": {"03001627": ["good0"]}}))
    with pytest.raises(ValueError, match="in both the train and the test file.*good0"):
        make_split(full, "chair", tmp_path / "shapenet")


def test_samples_above_the_spill_size_are_memory_mapped_with_the_same_values(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    shards = [tmp_path / f"sdf{s}.npz" for s in range(2)]
    for s, path in enumerate(shards):
        points = np.random.default_rng(s).random((4, 50, 3), dtype=np.float32)
        np.savez_compressed(path, ids=np.array([f"m{s}{i}" for i in range(4)]), points=points, sdf=points[..., 1])
    wanted = ["m00", "m03", "m11", "m12"]
    held = load_sdf_samples(shards, wanted)
    mapped = load_sdf_samples(shards, wanted, spill_bytes=100)
    assert held[0] == mapped[0] and isinstance(mapped[1], np.memmap) and not isinstance(held[1], np.memmap)
    assert np.array_equal(held[1], mapped[1]) and np.array_equal(held[2], mapped[2])
    assert list((tmp_path / "scratch").iterdir()) == []  # the maps' files are unlinked at once
    assert not isinstance(load_sdf_samples(shards, wanted, spill_bytes=10**9)[1], np.memmap)


def test_a_shard_without_shapes_keeps_the_grid_resolution_in_its_diagrams(tmp_path):
    """With more shards than shapes some shards are empty; the category's diagram metadata (the figure's title)
    must still say the grid's resolution, whichever shard is read last."""
    from toposdf.data import load_category_diagrams
    from toposdf.preprocess import diagrams_shard, grid_shard

    cfg = _cfg(True)
    box = trimesh.creation.box([1, 1, 1])
    box.export(tmp_path / "box.obj")
    full = {"category": "chair", "shard": 0, "shapes": [{"model_id": "a", "split": "train", "status": "ok",
                                                         "mesh": "box.obj"}]}
    (tmp_path / "0.json").write_text(json.dumps(full))
    (tmp_path / "1.json").write_text(json.dumps({"category": "chair", "shard": 1, "shapes": []}))
    for shard in (0, 1):
        grid_shard(tmp_path / f"{shard}.json", tmp_path / f"grids{shard}.npz", 12)
        diagrams_shard(tmp_path / f"grids{shard}.npz", tmp_path / f"pd{shard}.npz", cfg)
    ids, diagrams, meta = load_category_diagrams([tmp_path / "pd0.npz", tmp_path / "pd1.npz"])
    assert ids == ["a"] and meta["resolution"] == 12


def test_training_memory_grows_with_the_samples_held_and_stops_where_they_are_memory_mapped():
    from toposdf.data import SPILL_BYTES, training_memory_mb

    assert training_memory_mb(64, 20000, 4000) == 5000  # the CPU default's 64 chairs: 20 MB of samples
    # 1,000 shapes x 100,000 samples: 1.6 GB held, twice while loading
    assert training_memory_mb(1000, 100_000, 6000) == 10000
    # ShapeNet's chairs at the preset's sizes hold 4 GiB at most, the rest is memory-mapped
    chairs = training_memory_mb(5422, 250_000, 6000)
    assert chairs == training_memory_mb(50_000, 250_000, 6000) == 6000 + 1000 * -(-2 * SPILL_BYTES // 10**9)


def _band_fixtures() -> dict[str, tuple[trimesh.Trimesh, bool]]:
    """Meshes of each kind the mesh path meets, with the sign each takes (robust or not): a marching-cubes table (a
    slab on four legs, from an exact SDF), a box with every face stored twice, an open box, a torus, a box with
    unused vertices, and a box reaching past the grid."""
    from toposdf.field import extract_mesh

    pts = grid_points(24)
    slab = box_sdf((pts - [0, 0.3, 0]) / [1, 0.15, 0.8]) * 0.15
    legs = [box_sdf((pts - [x, -0.25, z]) / [0.12, 0.8, 0.12]) * 0.12 for x in (-0.6, 0.6) for z in (-0.5, 0.5)]
    table = trimesh.Trimesh(*extract_mesh(np.minimum.reduce([slab, *legs]).reshape((24,) * 3)), process=False)
    box = trimesh.creation.box([0.8, 0.5, 0.6])
    doubled = trimesh.Trimesh(box.vertices, np.concatenate([box.faces, box.faces[:, ::-1]]), process=False)
    unused = trimesh.Trimesh(np.concatenate([box.vertices, [[0.9, 0.9, 0.9], [5.0, 5.0, 5.0]]]), box.faces,
                             process=False)
    return {"marching cubes": (table, False), "doubled faces": (doubled, True), "open": (open_box(), False),
            "torus": (trimesh.creation.torus(0.6, 0.1), False), "unused vertices": (unused, False),
            "past the grid": (trimesh.creation.box([2.6, 0.3, 0.3]), False)}


@pytest.mark.parametrize("name", list(_band_fixtures()))
def test_the_band_grid_equals_the_full_grid_where_persistence_sees_it(name):
    """sdf_grid(band=tau): its lower bound never exceeds the distance, and clamped to [-tau, tau] (as persistence
    clamps) it is the full grid to the last bit, with the same diagrams."""
    from toposdf.data import distance_lower_bound
    from toposdf.topology import batch_cubical_diagrams

    mesh, robust = _band_fixtures()[name]
    distance = np.abs(signed_distance(grid_points(24), mesh.vertices, mesh.faces, robust))
    bound = distance_lower_bound(mesh.vertices, mesh.faces, 24)
    assert np.all(bound <= distance + 1e-12)
    full = sdf_grid(mesh, 24, robust)
    for tau in (0.05, 0.1, 0.3):
        band = sdf_grid(mesh, 24, robust, band=tau)
        np.testing.assert_array_equal(np.clip(band, -tau, tau), np.clip(full, -tau, tau))
        near = np.abs(full) < tau
        np.testing.assert_array_equal(band[near], full[near])  # exact, not merely clamped alike
        a, b = batch_cubical_diagrams([full, band], tau, 0.0)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    if name == "marching cubes":  # the point of it: most of the grid needs no distance query
        assert (bound < 0.1 + 1e-6).mean() < 0.6


def test_grid_distance_gives_each_exact_vertex_its_closest_point_and_nan_beyond_the_band():
    """grid_distance(closest=True): within the band the distance is that to the returned point, which lies on the
    surface (a sphere's points at its radius); beyond the band the point is NaN and the distance a bound above it."""
    from toposdf.data import grid_distance

    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    distance, closest = grid_distance(mesh.vertices, mesh.faces, 20, band=0.2, closest=True)
    exact = ~np.isnan(closest[:, 0])
    assert 0 < exact.sum() < len(exact)
    np.testing.assert_allclose(np.linalg.norm(grid_points(20)[exact] - closest[exact], axis=1), distance[exact])
    np.testing.assert_allclose(np.linalg.norm(closest[exact], axis=1), 0.5, atol=2e-3)
    assert np.all(distance[~exact] > 0.2)
    full, none = grid_distance(mesh.vertices, mesh.faces, 20)
    assert none is None
    np.testing.assert_array_equal(full[exact], distance[exact])
