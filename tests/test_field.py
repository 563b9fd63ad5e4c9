"""toposdf.field: the narrow band against the full grid, marching cubes on analytic shapes, surface sampling
against areas and a triangle's uniform density."""

import numpy as np
import pytest
import torch
import trimesh

from toposdf.data import grid_points
from toposdf.field import evaluate_grid, evaluate_grid_band, extract_mesh, sample_surface
from toposdf.metrics import chamfer_distance
from toposdf.models import DecoderConfig, SDFDecoder
from toposdf.topology import cubical_diagrams_with_critical


def sphere_grid(n: int, center=(0.0, 0.0, 0.0), radius: float = 0.5) -> np.ndarray:
    """The SDF of a sphere on the project's grid (toposdf.data.grid_points), so the test shares its convention."""
    points = grid_points(n)
    return (np.linalg.norm(points - np.asarray(center), axis=1) - radius).reshape(n, n, n)


def tiny_decoder(**kwargs) -> SDFDecoder:
    torch.manual_seed(0)
    cfg = DecoderConfig(latent_size=4, hidden=16, n_layers=4, **kwargs)
    return SDFDecoder(cfg).double()


# --------------------------------------------------------------------------------------------------------------
# Grid evaluation
# --------------------------------------------------------------------------------------------------------------
class TorusAndBall(torch.nn.Module):
    """The exact SDF of a torus (major radius ``0.45 + 0.1 z_0``) and a separate ball: two components, one loop."""

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        major = 0.45 + 0.1 * z[:, :1]
        ring = torch.stack([torch.linalg.norm(x[..., :2], dim=-1) - major, x[..., 2]], dim=-1)
        torus = torch.linalg.norm(ring, dim=-1) - 0.12
        ball = torch.linalg.norm(x - x.new_tensor([0.65, 0.65, 0.65]), dim=-1) - 0.2
        return torch.minimum(torus, ball)


@pytest.mark.parametrize("resolution", [16, 33, 48])
def test_narrow_band_grid_gives_the_same_diagrams_with_fewer_evaluations(resolution):
    torch.manual_seed(0)
    tau = 0.1
    z = torch.randn(3, 4)
    decoders = [TorusAndBall(), SDFDecoder(DecoderConfig(latent_size=4, hidden=32, n_layers=4, geometric_init=True))]
    for decoder in decoders:
        stats = {}
        full = evaluate_grid(decoder, z, resolution)
        band = evaluate_grid_band(decoder, z, resolution, tau, stats=stats)
        # Exact wherever |f| < tau; elsewhere a bound of the right sign, at least tau.
        near = np.abs(full) < tau
        np.testing.assert_allclose(band[near], full[near], atol=1e-6)
        assert np.all(np.sign(band[~near]) == np.sign(full[~near])) and np.all(np.abs(band[~near]) >= tau)
        assert np.all(np.abs(band[~near]) <= np.abs(full[~near]) + 1e-6)  # a lower bound of |f|
        for b in range(len(z)):
            expected, expected_critical = cubical_diagrams_with_critical(full[b], tau, 0.02)
            got, got_critical = cubical_diagrams_with_critical(band[b], tau, 0.02)
            for k in range(3):
                np.testing.assert_allclose(got[k], expected[k], atol=1e-6)
                np.testing.assert_array_equal(got_critical[k], expected_critical[k])
        assert stats["vertices"] == len(z) * resolution**3
        assert stats["evaluated"] < (0.7 if resolution < 32 else 0.5) * stats["vertices"]
    torus_diagrams = cubical_diagrams_with_critical(evaluate_grid_band(decoders[0], z, resolution, tau)[0], tau, 0.02)
    assert [len(d) for d in torus_diagrams[0]] == [2, 1, 0] or resolution == 16  # the test is not vacuous


def test_narrow_band_evaluates_everything_near_a_flat_field():
    """A field that never leaves (-tau, tau) has no far region: every vertex is evaluated, values exact."""
    decoder = tiny_decoder()  # default initialization: |f| is tiny everywhere
    z = torch.randn(2, 4, dtype=torch.float64)
    stats = {}
    band = evaluate_grid_band(decoder, z, 12, tau=0.5, stats=stats)
    np.testing.assert_allclose(band, evaluate_grid(decoder, z, 12), atol=1e-12)
    assert stats["evaluated"] == stats["vertices"]


# --------------------------------------------------------------------------------------------------------------
# Meshes and surface samples
# --------------------------------------------------------------------------------------------------------------
def test_extract_mesh_of_a_sphere_in_world_coordinates():
    n, center, radius = 33, np.array([0.2, -0.1, 0.3]), 0.4
    vertices, faces = extract_mesh(sphere_grid(n, center, radius))
    voxel = 2.0 / (n - 1)
    assert len(faces) > 100 and faces.dtype == np.int64
    # An off-centre sphere catches swapped axes and a wrong origin or spacing.
    assert np.abs(np.linalg.norm(vertices - center, axis=1) - radius).max() < voxel
    assert np.allclose(vertices.mean(axis=0), center, atol=voxel / 4)
    # Normals point outwards (towards increasing SDF).
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(np.sum(normals * (tri.mean(axis=1) - center), axis=1) > 0)


def test_extract_mesh_respects_bounds():
    vertices, _ = extract_mesh(sphere_grid(21, radius=0.5), bounds=(-2.0, 2.0))  # the same grid on a 2x domain
    assert np.abs(np.linalg.norm(vertices, axis=1) - 1.0).max() < 4.0 / 20


@pytest.mark.parametrize("grid", [np.ones((8, 8, 8)), -np.ones((8, 8, 8)), np.full((8, 8, 8), np.nan),
                                  np.where(np.arange(512).reshape(8, 8, 8) == 7, np.nan, sphere_grid(8))])
def test_extract_mesh_without_surface_is_empty_and_its_cd_is_nan(grid):
    vertices, faces = extract_mesh(grid)
    assert vertices.shape == (0, 3) and faces.shape == (0, 3)
    points = sample_surface(vertices, faces, 100, seed=0)
    assert points.shape == (0, 3)
    assert np.isnan(chamfer_distance(points, np.zeros((5, 3))))


def test_extract_mesh_rejects_non_3d_grids():
    with pytest.raises(ValueError, match="3D grid"):
        extract_mesh(np.zeros((8, 8)))


def test_sample_surface_lies_on_the_mesh_and_is_area_weighted():
    box = trimesh.creation.box(extents=(1.0, 1.0, 4.0))
    points = sample_surface(box.vertices, box.faces, 20_000, seed=0)
    assert points.shape == (20_000, 3)
    # On the surface of the box: some coordinate sits on its face.
    on_face = np.isclose(np.abs(points), [0.5, 0.5, 2.0]).any(axis=1)
    assert on_face.all()
    assert np.all(np.abs(points) <= [0.5 + 1e-12, 0.5 + 1e-12, 2.0 + 1e-12])
    # The two 1x1 caps are 2 of the 18 units of area.
    assert np.mean(np.isclose(np.abs(points[:, 2]), 2.0)) == pytest.approx(2 / 18, abs=0.01)


def test_sample_surface_is_deterministic_for_a_seed_and_lies_on_a_sphere():
    vertices, faces = extract_mesh(sphere_grid(25, radius=0.6))
    a = sample_surface(vertices, faces, 500, seed=7)
    np.testing.assert_array_equal(a, sample_surface(vertices, faces, 500, seed=7))
    assert not np.array_equal(a, sample_surface(vertices, faces, 500, seed=8))
    assert np.abs(np.linalg.norm(a, axis=1) - 0.6).max() < 2.0 / 24


def test_sample_surface_is_uniform_within_a_triangle():
    # Uniform on the triangle: the mean is the centroid, and a quarter of the points fall in the corner triangle
    # cut off by the midpoints of the edges at vertex 0 (a naive barycentric draw crowds one vertex).
    vertices = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    points = sample_surface(vertices, [[0, 1, 2]], 40_000, seed=1)
    np.testing.assert_allclose(points.mean(axis=0), vertices.mean(axis=0), atol=0.005)
    assert np.mean(points[:, 0] + points[:, 1] < 0.5) == pytest.approx(0.25, abs=0.01)


def test_sample_surface_of_a_zero_area_mesh_is_empty():
    vertices = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])  # collinear
    assert sample_surface(vertices, [[0, 1, 2]], 10, seed=0).shape == (0, 3)
