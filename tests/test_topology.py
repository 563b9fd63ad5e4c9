"""toposdf.topology against hand-computed cases, gudhi, hera and brute force."""

from itertools import permutations

import numpy as np
import pytest

from toposdf.topology import (
    augmented_cost_matrix,
    batch_cubical_diagrams,
    betti_numbers,
    cubical_diagrams,
    cubical_diagrams_with_critical,
    gudhi_diagrams,
    hera_distance,
    load_diagrams,
    off_diagonal,
    pd_distance,
    pd_lap,
    save_diagrams,
)

N = 40
TAU = 0.2
NOISE_FLOOR = 0.03  # discretization pairs on medial axes are below one grid spacing (2/39 ~ 0.05)


def _coords(n: int = N):
    x = np.linspace(-1, 1, n)
    return np.meshgrid(x, x, x, indexing="ij")


def ball(center=(0, 0, 0), radius=0.5):
    X, Y, Z = _coords()
    return np.sqrt((X - center[0]) ** 2 + (Y - center[1]) ** 2 + (Z - center[2]) ** 2) - radius


def solid_torus(R=0.55, r=0.2):
    X, Y, Z = _coords()
    return np.sqrt((np.sqrt(X**2 + Z**2) - R) ** 2 + Y**2) - r


def hollow_shell(radius=0.6, half_thickness=0.15):
    X, Y, Z = _coords()
    return np.abs(np.sqrt(X**2 + Y**2 + Z**2) - radius) - half_thickness


def test_ball_has_one_component_and_nothing_else():
    pd0, pd1, pd2 = cubical_diagrams(ball(), tau=TAU, min_persistence=NOISE_FLOOR)
    assert pd0.shape == (1, 2) and len(pd1) == 0 and len(pd2) == 0
    assert pd0[0, 1] == TAU  # the essential class dies at tau
    assert pd0[0, 0] == pytest.approx(-TAU)  # the centre is deeper than tau: clamped
    assert betti_numbers([pd0, pd1, pd2]) == (1, 0, 0)


def test_solid_torus_has_one_component_and_one_loop():
    diagrams = cubical_diagrams(solid_torus(), tau=TAU, min_persistence=NOISE_FLOOR)
    assert [len(d) for d in diagrams] == [1, 1, 0]
    assert betti_numbers(diagrams) == (1, 1, 0)
    # The loop is born when the tube closes (about -r... plus discretization) and dies when the hole fills,
    # at the distance from the hole's centre to the tube (R - r = 0.35), clamped to tau.
    birth, death = diagrams[1][0]
    assert birth < 0 and death == pytest.approx(TAU)


def test_hollow_shell_has_one_void():
    diagrams = cubical_diagrams(hollow_shell(), tau=TAU, min_persistence=NOISE_FLOOR)
    assert [len(d) for d in diagrams] == [1, 0, 1]
    assert betti_numbers(diagrams) == (1, 0, 1)
    # The void is born when the shell closes and dies when the cavity fills: at the cavity radius minus the
    # shell's inner radius, 0.6 - 0.15 = 0.45 > tau, so at tau.
    assert diagrams[2][0, 1] == pytest.approx(TAU)


def test_two_balls_give_a_finite_h0_pair_dying_at_half_the_gap():
    gap = 0.3
    r = 0.3
    c = r + gap / 2
    grid = np.minimum(ball((-c, 0, 0), r), ball((c, 0, 0), r))
    pd0, pd1, pd2 = cubical_diagrams(grid, tau=0.4, min_persistence=NOISE_FLOOR)
    assert len(pd0) == 2 and len(pd1) == 0 and len(pd2) == 0
    finite = pd0[pd0[:, 1] < 0.4]
    assert len(finite) == 1
    spacing = 2 / (N - 1)
    assert finite[0, 1] == pytest.approx(gap / 2, abs=spacing)
    assert betti_numbers([pd0, pd1, pd2]) == (2, 0, 0)


def _noisy_shape(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.minimum(solid_torus(), ball((0, 0.4, 0), 0.25)) + 0.03 * rng.standard_normal((N, N, N))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("tau,min_persistence", [(0.1, 0.0), (None, 0.0), (0.1, 0.02)])
def test_cripser_agrees_with_gudhi(seed, tau, min_persistence):
    grid = _noisy_shape(seed)
    ours = cubical_diagrams(grid, tau=tau, min_persistence=min_persistence)
    ref = gudhi_diagrams(grid, tau=tau, min_persistence=min_persistence)
    for k in range(3):
        assert len(ours[k]) == len(ref[k]), f"H{k}"
        np.testing.assert_allclose(np.sort(ours[k], axis=0), np.sort(ref[k], axis=0), atol=1e-12)
    assert sum(len(d) for d in ours) > 10  # the noise makes the comparison non-trivial


@pytest.mark.parametrize("dims", [3, 2])
def test_critical_vertices_reproduce_the_diagram_values(dims):
    grid = _noisy_shape(3) if dims == 3 else _noisy_shape(3)[:, N // 2, :]
    for tau in (0.1, None):
        diagrams, critical = cubical_diagrams_with_critical(grid, tau=tau)
        values = np.clip(grid, -tau, tau) if tau else grid
        for d, c in zip(diagrams, critical):
            assert c.dtype == np.int64 and c.shape == d.shape
            np.testing.assert_array_equal(values.ravel()[c], d)


@pytest.mark.parametrize("shape", ["thick_and_off_centre", "touching_the_border", "noisy", "2d"])
def test_persistence_on_the_box_below_tau_equals_the_whole_grid(shape):
    """Diagrams and critical vertices are computed on the bounding box of the vertices below tau. The diagrams
    must be the whole grid's; so must the critical vertices, up to the choice among vertices of equal value (an
    analytic SDF has exact ties; a network's field has none off the clamped values, where the losses see
    constants)."""
    import toposdf.topology.persistence as persistence

    grid = {"thick_and_off_centre": np.minimum(ball((0.3, -0.2, 0.1), 0.45), solid_torus(0.4, 0.15) + 0.2),
            "touching_the_border": np.minimum(ball((0.9, 0.0, 0.0), 0.4), ball((-0.2, 0.5, 0.0), 0.2)),
            "noisy": _noisy_shape(5),
            "2d": _noisy_shape(6)[:, :, N // 2]}[shape]
    for tau, min_persistence in ((0.1, 0.0), (TAU, 0.02)):
        box = persistence._below_tau_box(np.clip(grid, -tau, tau), tau)
        cropped = cubical_diagrams_with_critical(grid, tau, min_persistence)
        whole = cubical_diagrams_with_critical(grid, tau, min_persistence, crop=False)
        values = np.clip(grid, -tau, tau).ravel()
        for k in range(3):
            np.testing.assert_array_equal(cropped[0][k], whole[0][k])
            essential = (np.arange(len(whole[0][k])) == 0) & (k == 0)  # its death vertex: one of value tau
            np.testing.assert_array_equal(values[cropped[1][k]][~essential], whole[0][k][~essential])
            if shape == "noisy":  # exact, except at the clamped values (constants in the losses)
                inner = (whole[0][k][:, 0] > -tau) & (whole[0][k][:, 1] < tau)
                np.testing.assert_array_equal(cropped[1][k][inner], whole[1][k][inner])
        if shape in ("thick_and_off_centre", "touching_the_border"):  # (the noise reaches below tau widely)
            assert np.prod([s.stop - s.start for s in box]) < 0.6 * grid.size  # the box is a real crop
    assert sum(len(d) for d in whole[0]) >= 1


def test_diagrams_are_well_formed_and_thresholded():
    grid = _noisy_shape(4)
    all_pairs = cubical_diagrams(grid, tau=0.1)
    kept = cubical_diagrams(grid, tau=0.1, min_persistence=0.05)
    for d, k in zip(all_pairs, kept):
        assert d.dtype == np.float64 and d.ndim == 2 and d.shape[1] == 2
        assert np.all(d[:, 0] <= d[:, 1])
        assert np.all(k[:, 1] - k[:, 0] >= 0.05) and len(k) <= len(d)
    assert len(kept[0]) >= 1  # the essential class is always kept


def test_batch_matches_serial():
    grids = [_noisy_shape(s) for s in range(3)]
    serial = [cubical_diagrams(g, tau=0.1) for g in grids]
    threaded = batch_cubical_diagrams(grids, tau=0.1, workers=2)
    for a, b in zip(serial, threaded):
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("bad", [np.zeros((4,)), np.full((3, 3, 3), np.nan), np.zeros((0, 3, 3))])
def test_bad_grids_raise_value_error(bad):
    with pytest.raises(ValueError):
        cubical_diagrams(bad)


# ------------------------------------------------------------------------------------------------------------
# Eq. 1
# ------------------------------------------------------------------------------------------------------------
def _random_diagram(rng, n):
    birth = rng.uniform(-0.1, 0.1, n)
    return np.stack([birth, birth + rng.uniform(0, 0.1, n)], axis=1)


def _brute_force_distance(a, b):
    """Enumerate every partial matching: pad both sides with diagonal slots and try all permutations."""
    n1, n2 = len(a), len(b)
    best = np.inf
    for perm in permutations(range(n1 + n2)):
        cost = 0.0
        used_b = set()
        for i in range(n1 + n2):
            j = perm[i]
            if i < n1 and j < n2:
                cost += np.sum((a[i] - b[j]) ** 2)
                used_b.add(j)
            elif i < n1:
                cost += (a[i, 1] - a[i, 0]) ** 2 / 2
        cost += sum((b[j, 1] - b[j, 0]) ** 2 / 2 for j in range(n2) if j not in used_b)
        best = min(best, cost)
    return best


@pytest.mark.parametrize("n1,n2", [(0, 0), (0, 3), (2, 0), (1, 1), (3, 2), (2, 4), (3, 3)])
def test_pd_distance_matches_brute_force(n1, n2):
    rng = np.random.default_rng(10 * n1 + n2)
    a, b = _random_diagram(rng, n1), _random_diagram(rng, n2)
    assert pd_distance(a, b) == pytest.approx(_brute_force_distance(a, b), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_pd_distance_matches_hera(seed):
    rng = np.random.default_rng(seed)
    a, b = _random_diagram(rng, rng.integers(5, 60)), _random_diagram(rng, rng.integers(5, 60))
    assert pd_distance(a, b) == pytest.approx(hera_distance(a, b), rel=1e-5)


def test_pd_distance_matching_is_complete_and_gives_the_cost():
    rng = np.random.default_rng(7)
    a, b = _random_diagram(rng, 12), _random_diagram(rng, 9)
    cost, matching = pd_distance(a, b, return_matching=True)
    assert sorted(matching[matching[:, 0] >= 0, 0]) == list(range(12))
    assert sorted(matching[matching[:, 1] >= 0, 1]) == list(range(9))
    recomputed = 0.0
    for i, j in matching:
        if i >= 0 and j >= 0:
            recomputed += np.sum((a[i] - b[j]) ** 2)
        elif i >= 0:
            recomputed += (a[i, 1] - a[i, 0]) ** 2 / 2
        else:
            recomputed += (b[j, 1] - b[j, 0]) ** 2 / 2
    assert cost == pytest.approx(recomputed)
    assert pd_distance(a, a) == pytest.approx(0.0, abs=1e-15)
    assert pd_distance(a, b) == pytest.approx(pd_distance(b, a))


def test_pd_distance_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        pd_distance(np.zeros((3, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        pd_distance(np.array([[0.0, np.inf]]), np.zeros((1, 2)))


# ------------------------------------------------------------------------------------------------------------
# Eq. 2
# ------------------------------------------------------------------------------------------------------------
def _random_shapes(rng, n):
    return [[_random_diagram(rng, rng.integers(1, 6)) for _ in range(3)] for _ in range(n)]


def _brute_force_pd_lap(A, B):
    n = len(A)
    W = np.array([[sum(pd_distance(p, q) for p, q in zip(a, b)) for b in B] for a in A])
    return min(W[np.arange(n), list(perm)].sum() for perm in permutations(range(n))) / n


@pytest.mark.parametrize("processes", [1, 2])
def test_pd_lap_matches_brute_force(processes):
    rng = np.random.default_rng(processes)
    A, B = _random_shapes(rng, 6), _random_shapes(rng, 6)
    result = pd_lap(A, B, processes=processes)
    assert result.value == pytest.approx(_brute_force_pd_lap(A, B))
    np.testing.assert_allclose(result.W, result.W_per_dimension.sum(axis=0))
    for k in range(3):
        only_k = [[s[k] if j == k else np.zeros((0, 2)) for j in range(3)] for s in A]
        only_k_b = [[s[k] if j == k else np.zeros((0, 2)) for j in range(3)] for s in B]
        assert result.per_dimension[k] == pytest.approx(_brute_force_pd_lap(only_k, only_k_b))
    assert sorted(result.assignment) == list(range(6))


def test_pd_lap_with_empty_diagrams_matches_brute_force():
    rng = np.random.default_rng(11)
    A, B = _random_shapes(rng, 5), _random_shapes(rng, 5)
    for shapes, holes in ((A, [(0, 2), (3, 1), (3, 2)]), (B, [(1, 2), (2, 0), (4, 2)])):
        for i, k in holes:
            shapes[i][k] = np.zeros((0, 2))
    result = pd_lap(A, B, processes=1)
    assert result.value == pytest.approx(_brute_force_pd_lap(A, B))
    for i in range(5):
        for j in range(5):
            assert result.W[i, j] == pytest.approx(sum(pd_distance(p, q) for p, q in zip(A[i], B[j])), abs=1e-15)


def test_pd_lap_pool_matches_serial():
    rng = np.random.default_rng(5)
    A, B = _random_shapes(rng, 20), _random_shapes(rng, 20)
    serial, pooled = pd_lap(A, B, processes=1), pd_lap(A, B, processes=2)
    np.testing.assert_array_equal(serial.W_per_dimension, pooled.W_per_dimension)
    assert pd_lap(A, A, processes=2).value == pytest.approx(0.0, abs=1e-15)


def test_pd_lap_rejects_unequal_sizes():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="equal size"):
        pd_lap(_random_shapes(rng, 3), _random_shapes(rng, 4))


def test_diagram_storage_round_trip(tmp_path):
    grids = [_noisy_shape(s) for s in range(2)]
    results = [cubical_diagrams_with_critical(g, tau=0.1) for g in grids]
    path = tmp_path / "pd.npz"
    save_diagrams(path, ["a", "b"], [r[0] for r in results], [r[1] for r in results], tau=0.1)
    ids, diagrams, meta = load_diagrams(path)
    assert ids == ["a", "b"] and meta == {"tau": 0.1}
    for (ref, _), got in zip(results, diagrams):
        for p, q in zip(ref, got):
            np.testing.assert_array_equal(p, q)


def test_off_diagonal_drops_only_parked_slots():
    kept = off_diagonal([np.array([[0.0, 0.0], [-0.1, 0.05]]), np.zeros((0, 2)), np.array([[0.2, 0.2]])])
    assert [len(d) for d in kept] == [1, 0, 0]


def test_the_augmented_matrix_solved_by_brute_force_is_eq_1():
    rng = np.random.default_rng(5)
    a, b = np.sort(rng.uniform(-0.1, 0.1, (3, 2)), axis=1), np.sort(rng.uniform(-0.1, 0.1, (2, 2)), axis=1)
    cost = augmented_cost_matrix(a, b)
    assert cost.shape == (5, 5)
    best = min(cost[np.arange(5), list(p)].sum() for p in permutations(range(5)))
    assert best == pytest.approx(pd_distance(a, b), rel=1e-12)
