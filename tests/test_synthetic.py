"""The synthetic furniture: deterministic, watertight, one piece, varied, and resolved by the default 48^3 grid."""

import filecmp
import json

import numpy as np
import pytest

from toposdf.data import SYNSETS, normalize_mesh, sdf_grid
from toposdf.synthetic import MIN_GAP, MIN_PART, generate_shape, model_id, write_synthetic_dataset
from toposdf.topology import betti_numbers, cubical_diagrams

CATEGORIES = ["chair", "table", "sofa"]


@pytest.mark.parametrize("category", CATEGORIES)
def test_generation_is_deterministic(category):
    a, info_a = generate_shape(category, 3, seed=7)
    b, info_b = generate_shape(category, 3, seed=7)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)
    assert info_a == info_b
    c, _ = generate_shape(category, 3, seed=8)
    assert len(c.vertices) != len(a.vertices) or not np.array_equal(c.vertices, a.vertices)


@pytest.mark.parametrize("category", CATEGORIES)
def test_shapes_are_single_watertight_pieces_thick_enough(category):
    """Every part at least MIN_PART thick and every opening at least MIN_GAP wide after normalization."""
    for index in range(16):
        mesh, info = generate_shape(category, index, seed=0)
        assert mesh.is_watertight and mesh.is_volume and mesh.volume > 0, info
        assert len(mesh.split(only_watertight=False)) == 1, info
        assert info["genus"] == (2 - mesh.euler_number) // 2 == info["loops"], info
        assert info["n_faces"] == len(mesh.faces) < 5000, info
        _, norm = normalize_mesh(mesh)
        assert info["min_part"] * norm.scale >= MIN_PART, info
        if info["genus"] > 0:
            assert info["min_gap"] * norm.scale >= MIN_GAP, info
        json.dumps(info)


def test_topological_variety():
    genus = {c: [generate_shape(c, i, seed=0)[1]["genus"] for i in range(20)] for c in CATEGORIES}
    for category in ("chair", "table"):
        assert 0 in genus[category] and len(set(genus[category])) >= 3, genus[category]
        assert max(genus[category]) >= 6, genus[category]
    assert 0 in genus["sofa"] and max(genus["sofa"]) > 0, genus["sofa"]


@pytest.mark.parametrize("category", CATEGORIES)
def test_the_default_grid_resolves_the_topology(category):
    """Ground-truth diagrams on the default 48^3 grid give Betti numbers (1, genus, 0): no loop is closed up
    and none is opened by the grid. Checked on the two shapes of highest genus among ten."""
    shapes = sorted((generate_shape(category, i, seed=1) for i in range(10)), key=lambda s: -s[1]["genus"])
    for mesh, info in shapes[:2]:
        normalized, _ = normalize_mesh(mesh)
        diagrams = cubical_diagrams(sdf_grid(normalized, 48), tau=0.1, min_persistence=0.02)
        assert betti_numbers(diagrams) == (1, info["genus"], 0), info


def test_dataset_layout_and_byte_identical_rewrites(tmp_path):
    records = write_synthetic_dataset(tmp_path / "a", "chair", 3, seed=2, progress=False)
    write_synthetic_dataset(tmp_path / "b", "chair", 3, seed=2, progress=False)
    synset = SYNSETS["chair"]
    assert [r["model_id"] for r in records] == [model_id("chair", i) for i in range(3)] == [
        "syn_chair_00000", "syn_chair_00001", "syn_chair_00002"]
    for r in records:
        rel = f"{synset}/{r['model_id']}/models/model_normalized.obj"
        assert filecmp.cmp(tmp_path / "a" / rel, tmp_path / "b" / rel, shallow=False)
        assert {"category", "index", "seed", "model_id", "genus", "n_faces"} <= set(r)
    index = tmp_path / "a" / synset / "index.json"
    assert filecmp.cmp(index, tmp_path / "b" / synset / "index.json", shallow=False)
    assert json.loads(index.read_text()) == records
    assert not [p for p in (tmp_path / "a").rglob("*") if ".tmp" in p.name]  # no temporary files left
    assert write_synthetic_dataset(tmp_path / "c", "sofa", 0, seed=0, progress=False) == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="category"):
        generate_shape("lamp", 0, 0)
    with pytest.raises(ValueError, match="category"):
        write_synthetic_dataset("/tmp/unused", "lamp", 1, 0)
    with pytest.raises(ValueError, match="category"):
        model_id("lamp", 0)
    with pytest.raises(ValueError, match="n_shapes"):
        write_synthetic_dataset("/tmp/unused", "chair", -1, 0)
    with pytest.raises(ValueError, match="index"):
        generate_shape("chair", -1, 0)
