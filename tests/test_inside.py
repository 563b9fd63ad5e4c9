"""Inside or outside a real mesh (toposdf.inside): fixtures of each kind that fool the winding number, built here
from closed meshes, against an independent reference (the union of the closed parts' insides); the synthetic
meshes keep today's sign, so their samples and grids do not change; a shape with no inside never passes as ok."""

import numpy as np
import pytest
import trimesh

from toposdf.data import grid_points, load_mesh, normalize_mesh, sample_sdf, sdf_grid, signed_distance
from toposdf.inside import inside, mesh_is_clean, robust_inside, solid_fraction, unique_faces
from toposdf.synthetic import generate_shape

RNG = np.random.default_rng(0)


def _box(extents, center) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=extents, transform=trimesh.transformations.translation_matrix(center))
    box.metadata["inside"] = lambda p: np.all(np.abs(p - np.asarray(center)) < np.asarray(extents) / 2, axis=1)
    return box


def _sphere(radius) -> trimesh.Trimesh:
    sphere = trimesh.creation.icosphere(3, radius)  # within 0.003 of the round sphere
    sphere.metadata["inside"] = lambda p: np.linalg.norm(p, axis=1) < radius
    return sphere


def _parts() -> list[trimesh.Trimesh]:
    """A small table: a top and four legs, closed boxes that overlap where they meet."""
    legs = [_box((0.1, 0.8, 0.1), (x, -0.35, z)) for x in (-0.6, 0.6) for z in (-0.3, 0.3)]
    return [_box((1.5, 0.1, 0.9), (0, 0.05, 0))] + legs


def _union(parts) -> trimesh.Trimesh:
    return trimesh.Trimesh(*trimesh.util.append_faces([p.vertices for p in parts], [p.faces for p in parts]),
                           process=False)


def _flipped(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    return trimesh.Trimesh(mesh.vertices, mesh.faces[:, ::-1], process=False)


def _doubled(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Every face stored twice, once with each winding (as many ShapeNet models are)."""
    return trimesh.Trimesh(mesh.vertices, np.concatenate([mesh.faces, mesh.faces[:, ::-1]]), process=False)


def _open(mesh: trimesh.Trimesh, normal) -> trimesh.Trimesh:
    """``mesh`` without the faces whose normal is ``normal`` (a box without its top)."""
    keep = ~np.all(np.isclose(mesh.face_normals, normal), axis=1)
    return trimesh.Trimesh(mesh.vertices, mesh.faces[keep], process=False)


def _reference(parts, points) -> np.ndarray:
    """Inside any of the parts, from their boxes' and spheres' equations (independent of any mesh)."""
    return np.any([part.metadata["inside"](points) for part in parts], axis=0)


FIXTURES = {  # name: (mesh as loaded, the closed parts whose union is its inside)
    "doubled table": (_doubled(_union(_parts())), _parts()),
    "doubled sphere": (_doubled(_sphere(0.7)), [_sphere(0.7)]),
    "table with its top flipped": (_union([_flipped(_parts()[0])] + _parts()[1:]), _parts()),
    "two overlapping boxes, one flipped": (_union([_box((1, 1, 1), (-0.3, 0, 0)), _flipped(_box((1, 1, 1), (0.3, 0, 0)))]),
                                           [_box((1, 1, 1), (-0.3, 0, 0)), _box((1, 1, 1), (0.3, 0, 0))]),
    "box without its top": (_open(_box((1, 1, 1), (0, 0, 0)), (0, 1, 0)), [_box((1, 1, 1), (0, 0, 0))]),
    "table with mixed winding": (trimesh.Trimesh(_union(_parts()).vertices, np.where(
        RNG.random(len(_union(_parts()).faces))[:, None] < 0.5, _union(_parts()).faces,
        _union(_parts()).faces[:, ::-1]), process=False), _parts()),
}


def _scored_points(mesh, parts, n=6000):
    """Uniform points and points near the surface, more than 0.02 from it, in the parts' normalized frame."""
    points = np.concatenate([RNG.uniform(-0.9, 0.9, (n, 3)),
                             mesh.sample(n) + RNG.normal(0, 0.05, (n, 3))])
    far = np.abs(signed_distance(points, mesh.vertices, mesh.faces)) > 0.02
    return points[far]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_the_robust_sign_agrees_with_the_parts_inside_where_the_winding_number_alone_fails(name):
    mesh, parts = FIXTURES[name]
    assert not mesh_is_clean(mesh), name  # each fixture is flagged for the robust sign
    points = _scored_points(mesh, parts)
    reference = _reference(parts, points)
    oriented, _ = normalize_mesh(mesh, margin=1.0)  # what preprocessing hands on: oriented, vertices merged
    scale = 1.0 / np.linalg.norm(mesh.vertices - 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0)), axis=1).max()
    normalized = (points - 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))) * scale
    robust = robust_inside(normalized, oriented.vertices, oriented.faces)
    assert np.mean(robust == reference) == 1.0, name
    if "doubled" in name or "one flipped" in name:  # where the plain |w| > 1/2 is wrong
        plain = signed_distance(normalized, oriented.vertices, oriented.faces) < 0
        assert np.mean(plain == reference) < 0.97, name


def test_clean_meshes_and_every_synthetic_shape_keep_the_winding_number():
    assert mesh_is_clean(_box((1, 1, 1), (0, 0, 0))) and mesh_is_clean(trimesh.creation.icosphere(2))
    assert mesh_is_clean(_union(_parts()))  # overlapping closed parts, each wound outward
    for category in ("chair", "table", "sofa"):
        for index in range(12):
            mesh, _ = generate_shape(category, index, seed=0)
            assert mesh_is_clean(mesh), (category, index)


def test_the_robust_sign_on_a_clean_mesh_is_the_winding_numbers():
    mesh, _ = normalize_mesh(generate_shape("chair", 3, seed=0)[0])
    points = RNG.uniform(-1, 1, (4000, 3))
    assert np.array_equal(signed_distance(points, mesh.vertices, mesh.faces, robust=True),
                          signed_distance(points, mesh.vertices, mesh.faces))
    points_a, sdf_a = sample_sdf(mesh, 2000, seed=1)
    points_b, sdf_b = sample_sdf(mesh, 2000, seed=1, robust=False)
    assert np.array_equal(points_a, points_b) and np.array_equal(sdf_a, sdf_b)
    assert np.array_equal(sdf_grid(mesh, 16), sdf_grid(mesh, 16, robust=False))


def test_repeated_and_degenerate_faces_are_dropped_whatever_their_order():
    faces = np.array([[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 0, 3], [1, 2, 3]])
    assert unique_faces(faces).tolist() == [[0, 1, 2], [1, 2, 3]]


def test_a_single_triangle_and_a_doubled_mesh_under_the_winding_number_have_no_inside():
    triangle = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    assert not mesh_is_clean(triangle)
    normalized, _ = normalize_mesh(triangle)
    assert inside(grid_points(32), normalized.vertices, normalized.faces, True).mean() < 0.001
    assert solid_fraction(normalized, robust=True) == 0.0
    doubled, _ = normalize_mesh(FIXTURES["doubled sphere"][0])
    assert inside(grid_points(32), doubled.vertices, doubled.faces, False).mean() == 0.0  # what the old sign made of it
    assert solid_fraction(doubled, robust=False) == 0.0
    assert inside(grid_points(32), doubled.vertices, doubled.faces, True).mean() > 0.1
    assert solid_fraction(doubled, robust=True) > 0.99


def test_a_closed_shape_thinner_than_the_check_grid_is_a_solid():
    """A table of closed slabs 0.01 thick can fall between a 32^3 grid's vertices; its surface still has the
    inside beside it."""
    slabs = [_box((1.2, 0.01, 0.8), (0, 0.3, 0))] + [_box((0.01, 0.6, 0.01), (x, 0, z)) for x in (-0.5, 0.5)
                                                      for z in (-0.3, 0.3)]
    table, _ = normalize_mesh(_union(slabs))
    assert mesh_is_clean(_union(slabs)) and solid_fraction(table, robust=False) > 0.99


def test_normalization_records_the_sign_and_inside_and_refuses_a_shape_without_inside(tmp_path):
    from toposdf.data import MeshError
    from toposdf.preprocess import normalize_shard

    root = tmp_path / "ShapeNetCore.v2" / "03001627"
    meshes = {"a_doubled": FIXTURES["doubled table"][0], "b_clean": _union(_parts()),
              "c_triangle": trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)}
    for model_id, mesh in meshes.items():
        (root / model_id / "models").mkdir(parents=True)
        mesh.export(root / model_id / "models" / "model_normalized.obj")
    (root / "d_no_mesh" / "models").mkdir(parents=True)  # a model folder without its mesh
    (root / "e_v1").mkdir()  # ShapeNetCore.v1's layout: <model_id>/model.obj
    trimesh.creation.box().export(root / "e_v1" / "model.obj")
    from toposdf.config import Config
    from toposdf.preprocess import make_split

    cfg = Config.from_dict({"dataset": {"kind": "shapenet", "root": str(tmp_path / "ShapeNetCore.v2"),
                                        "categories": ["chair"], "test_fraction": 0.25},
                            "sdf": {}, "grid": {}, "persistence": {}, "shards": 1})
    split = make_split(cfg, "chair", tmp_path / "ShapeNetCore.v2")
    assert sorted(split["train"] + split["test"]) == ["a_doubled", "b_clean", "c_triangle"]
    assert split["no_mesh"] == ["d_no_mesh", "e_v1"]
    assert load_mesh(root / "a_doubled" / "models" / "model_normalized.obj").faces.shape[0] == \
        2 * _union(_parts()).faces.shape[0]  # the doubled faces survive the OBJ round trip
    records = {r["model_id"]: r for r in normalize_shard(split, 0, 1, tmp_path / "out" / "m.json", 1.03, True)}
    assert (records["a_doubled"]["status"], records["a_doubled"]["sign"]) == ("ok", "robust")
    assert (records["b_clean"]["status"], records["b_clean"]["sign"]) == ("ok", "winding")
    assert records["a_doubled"]["inside_fraction"] == pytest.approx(records["b_clean"]["inside_fraction"], abs=0.002)
    assert records["c_triangle"]["status"] == "skipped" and "not a solid" in records["c_triangle"]["reason"]
    assert records["d_no_mesh"]["status"] == "skipped" and "no such mesh file" in records["d_no_mesh"]["reason"]
    assert "it has model.obj: ShapeNetCore.v1's layout?" in records["e_v1"]["reason"]
    assert "ShapeNetCore.v1" not in records["d_no_mesh"]["reason"]
    assert records["b_clean"]["solid_fraction"] > 0.99 and records["a_doubled"]["solid_fraction"] > 0.99
    with pytest.raises(MeshError, match=r"(?s)d_no_mesh.*no such mesh file.*c_triangle.*not a solid"):
        normalize_shard(split, 0, 1, tmp_path / "strict" / "m.json", 1.03, False)


def test_a_shapenet_v1_copy_is_named_as_such(tmp_path):
    """ShapeNetCore.v1 keeps ``<model_id>/model.obj``: under a v1 root no model is found, and the error says which
    layout it found and which one is expected."""
    from toposdf.config import Config
    from toposdf.preprocess import make_split

    root = tmp_path / "ShapeNetCore.v1"
    for model_id in ("m1", "m2", "m3"):
        (root / "03001627" / model_id).mkdir(parents=True)
        trimesh.creation.box().export(root / "03001627" / model_id / "model.obj")
    cfg = Config.from_dict({"dataset": {"kind": "shapenet", "root": str(root), "categories": ["chair"]},
                            "sdf": {}, "grid": {}, "persistence": {}, "shards": 1})
    with pytest.raises(ValueError, match=r"found 0 models .*need >= 2; it has model\.obj: ShapeNetCore\.v1's layout\?"):
        make_split(cfg, "chair", root)
