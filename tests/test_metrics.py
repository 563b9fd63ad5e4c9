"""toposdf.metrics against naive double loops, hand-computed cases and analytic shapes."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from conftest import load_tool
from toposdf.metrics import (
    cd_mean,
    chamfer_distance,
    mmd_cov_1nna,
    one_nn_accuracy,
    pairwise_chamfer,
    pd_lap_parts,
    pd_lap_summary,
)
from toposdf.topology import pd_lap


def naive_chamfer(a, b) -> float:
    """Mean squared nearest-neighbour distance both ways, by a double loop."""
    def one_way(p, q):
        return np.mean([min(np.sum((x - y) ** 2) for y in q) for x in p])
    return one_way(a, b) + one_way(b, a)


def random_clouds(rng, count: int, shift: float = 0.0):
    return [rng.normal(size=(int(rng.integers(5, 12)), 3)) * 0.3 + shift for _ in range(count)]


# --------------------------------------------------------------------------------------------------------------
# Chamfer distance
# --------------------------------------------------------------------------------------------------------------
def test_chamfer_matches_double_loop():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(45, 3)) + 0.2
    assert chamfer_distance(a, b) == pytest.approx(naive_chamfer(a, b), rel=1e-12)
    assert chamfer_distance(a, b) == pytest.approx(chamfer_distance(b, a), rel=1e-12)


def test_chamfer_hand_computed():
    # Two single points at distance 3: 3^2 each way.
    assert chamfer_distance([[0.0, 0.0, 0.0]], [[1.0, 2.0, 2.0]]) == pytest.approx(18.0)
    # A unit lattice against itself shifted by t (|t| < 1/2): every nearest neighbour is the shifted copy.
    lattice = np.stack(np.meshgrid(*[np.arange(4.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    t = np.array([0.1, -0.2, 0.05])
    assert chamfer_distance(lattice, lattice + t) == pytest.approx(2 * np.sum(t**2))
    assert chamfer_distance(lattice, lattice) == 0.0


def test_chamfer_with_an_empty_set_is_nan_and_cd_mean_counts_it():
    points = np.ones((4, 3))
    assert np.isnan(chamfer_distance(np.zeros((0, 3)), points))
    assert np.isnan(chamfer_distance(points, np.zeros((0, 3))))
    assert cd_mean([1.0, float("nan"), 3.0]) == (2.0, 1)
    mean, failures = cd_mean([float("nan")])
    assert np.isnan(mean) and failures == 1


def test_chamfer_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match="same dimension"):
        chamfer_distance(np.zeros((3, 3)), np.zeros((3, 2)))


def test_pairwise_chamfer_matches_chamfer_distance():
    rng = np.random.default_rng(1)
    sets_a = random_clouds(rng, 4) + [np.zeros((0, 3))]
    sets_b = random_clouds(rng, 3, shift=0.5)
    expected = np.array([[chamfer_distance(a, b) for b in sets_b] for a in sets_a])
    np.testing.assert_allclose(pairwise_chamfer(sets_a, sets_b), expected, rtol=1e-12)
    # Against itself (sets_b=None): only the upper triangle is computed, the rest mirrored.
    expected_self = np.array([[chamfer_distance(a, b) for b in sets_a] for a in sets_a])
    np.testing.assert_allclose(pairwise_chamfer(sets_a), expected_self, rtol=1e-12)
    assert np.isnan(pairwise_chamfer(sets_a)[-1]).all()


# --------------------------------------------------------------------------------------------------------------
# MMD, COV, 1-NNA
# --------------------------------------------------------------------------------------------------------------
def naive_generation_metrics(samples, references) -> dict[str, float]:
    """PointFlow's definitions, one shape at a time (no ties in random data)."""
    mmd = np.mean([min(naive_chamfer(s, r) for s in samples) for r in references])
    covered = {int(np.argmin([naive_chamfer(s, r) for r in references])) for s in samples}
    shapes = [(r, 1) for r in references] + [(s, 0) for s in samples]
    correct = 0
    for i, (x, label) in enumerate(shapes):
        distances = [naive_chamfer(x, y) if j != i else np.inf for j, (y, _) in enumerate(shapes)]
        correct += shapes[int(np.argmin(distances))][1] == label
    return {"MMD-CD": mmd, "COV-CD": len(covered) / len(references), "1-NNA-CD": correct / len(shapes)}


def test_generation_metrics_match_naive_definitions():
    rng = np.random.default_rng(2)
    samples, references = random_clouds(rng, 6), random_clouds(rng, 5, shift=0.1)
    got = mmd_cov_1nna(samples, references)
    expected = naive_generation_metrics(samples, references)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert got["empty_samples"] == 0


def test_one_nn_accuracy_extremes_and_coverage_of_identical_sets():
    rng = np.random.default_rng(3)
    references = random_clouds(rng, 5)
    same = mmd_cov_1nna([r.copy() for r in references], references)
    # Every shape's nearest other shape is its copy in the other set: all misclassified (memorization).
    assert same["1-NNA-CD"] == 0.0
    assert same["COV-CD"] == 1.0 and same["MMD-CD"] == 0.0
    far = mmd_cov_1nna(random_clouds(rng, 5, shift=100.0), references)
    assert far["1-NNA-CD"] == 1.0
    assert far["MMD-CD"] > 1e4


def test_one_nn_accuracy_is_near_half_for_two_samples_of_one_distribution():
    # Single-point "shapes": the Chamfer distance is 2 |p - q|^2, so the classifier is Euclidean 1-NN.
    rng = np.random.default_rng(4)
    references, samples = rng.normal(size=(150, 3)), rng.normal(size=(150, 3))

    def cd(p, q):
        return 2 * cdist(p, q, "sqeuclidean")

    as_sets = pairwise_chamfer(references[:3, None], samples[:2, None])  # each point as a one-point cloud
    np.testing.assert_allclose(cd(references[:3], samples[:2]), as_sets)
    accuracy = one_nn_accuracy(cd(references, references), cd(references, samples), cd(samples, samples))
    assert 0.4 < accuracy < 0.6


def test_an_empty_sample_covers_nothing_and_scores_a_coin_flip():
    rng = np.random.default_rng(5)
    samples, references = random_clouds(rng, 4), random_clouds(rng, 5, shift=0.1)
    without = mmd_cov_1nna(samples, references)
    with_empty = mmd_cov_1nna(samples + [np.zeros((0, 3))], references)
    assert with_empty["empty_samples"] == 1
    assert with_empty["MMD-CD"] == without["MMD-CD"]
    assert with_empty["COV-CD"] == without["COV-CD"]
    # It is nobody's nearest neighbour, and its own neighbours are all tied at +inf: it scores the share of
    # samples among the other shapes.
    n = len(samples) + len(references)
    expected = (without["1-NNA-CD"] * n + len(samples) / n) / (n + 1)
    assert with_empty["1-NNA-CD"] == pytest.approx(expected)


def test_empty_reference_is_an_error():
    with pytest.raises(ValueError, match="reference point clouds must not be empty"):
        mmd_cov_1nna([np.ones((3, 3))], [np.zeros((0, 3))])


# --------------------------------------------------------------------------------------------------------------
# PD-LAP over draws
# --------------------------------------------------------------------------------------------------------------
def one_shape(pd0, pd1=()):
    return [np.array(pd0, float).reshape(-1, 2), np.array(pd1, float).reshape(-1, 2), np.zeros((0, 2))]


def test_pd_lap_summary_on_hand_made_diagrams():
    reference = [one_shape([[0.0, 1.0]])]
    # Draw 1: PD0 off by 0.1 in death (cost 0.01), an extra PD1 point of persistence 0.2 (cost 0.2^2 / 2 = 0.02).
    # Draw 2: PD0 off by 0.3 (0.09), nothing in PD1.
    draws = [[one_shape([[0.0, 1.1]], [[0.0, 0.2]])], [one_shape([[0.0, 1.3]])]]
    summary = pd_lap_summary(draws, reference, processes=1)
    np.testing.assert_allclose(summary.values, [0.03, 0.09])
    np.testing.assert_allclose(summary.per_dimension, [[0.01, 0.02, 0.0], [0.09, 0.0, 0.0]])
    stats = summary.stats()
    assert set(stats) == {"total", "H0", "H1", "H2"}
    assert stats["total"] == pytest.approx((0.06, 0.03))
    assert stats["H0"] == pytest.approx((0.05, 0.04))
    assert stats["H1"] == pytest.approx((0.01, 0.01))
    assert stats["H2"] == (0.0, 0.0)


def test_pd_lap_summary_of_identical_draws_has_zero_spread():
    reference = [one_shape([[0.0, 1.0]]), one_shape([[-0.5, 1.0]], [[0.1, 0.4]])]
    draw = [one_shape([[0.1, 1.0]]), one_shape([[-0.3, 1.0]], [[0.1, 0.5]])]
    stats = pd_lap_summary([draw] * 3, reference, processes=1).stats()
    assert stats["total"][1] == 0.0 and stats["total"][0] > 0
    assert all(std == 0.0 for _, std in stats.values())


def test_paired_difference_is_a_t_interval_over_shapes_finite_in_both():
    from scipy import stats

    from toposdf.metrics import paired_difference

    a = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    b = np.array([0.5, 1.0, 2.5, 3.0, 1.0])
    out = paired_difference(a, b)
    d = np.array([0.5, 1.0, 0.5, 1.0])
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert out["n"] == 4 and out["mean"] == pytest.approx(0.75)
    assert (out["low"], out["high"]) == pytest.approx((0.75 - half, 0.75 + half))
    assert out["resolved"] == 1.0
    assert paired_difference([1.0, -1.0, 2.0], [0.0, 0.0, 0.0])["resolved"] == 0.0  # the interval holds 0
    with pytest.raises(ValueError, match="same shapes"):
        paired_difference([1.0], [1.0, 2.0])


def _h1_only(*tunnels) -> list[np.ndarray]:
    return [np.zeros((0, 2)), np.asarray(tunnels, np.float64).reshape(-1, 2), np.zeros((0, 2))]


def test_pd_lap_parts_split_the_column_into_matched_extra_and_missing():
    # Shape B has two tunnels, A one. PD-LAP pairs the generated shape that has a tunnel and a ring born outside
    # (+0.01) with B (its points matched to B's two tunnels: 0.01^2 + 0.02^2 and 0.03^2 + 0.04^2) and the empty
    # one with A, whose tunnel goes missing: 0.003 + 0.0072 against 0.00125 + 0.01845 the other way round.
    reference = [_h1_only((-0.02, 0.10)), _h1_only((-0.02, 0.10), (-0.03, 0.12))]
    generated = [_h1_only((-0.02, 0.10), (0.01, 0.06)), _h1_only()]
    parts = pd_lap_parts(generated, reference, 1)
    assert parts["matched"] == pytest.approx((0.01**2 + 0.02**2 + 0.03**2 + 0.04**2) / 2)
    assert parts["extra"] == 0.0
    assert parts["missing"] == pytest.approx(0.5 * 0.12**2 / 2)
    assert parts["matched"] + parts["extra"] + parts["missing"] == pytest.approx(
        pd_lap(generated, reference, 1).per_dimension[1])
    assert (parts["matched_points"], parts["extra_points"], parts["missing_points"]) == (1.0, 0.0, 0.5)
    assert np.isnan(parts["extra_born_outside"])


def test_pd_lap_parts_count_extra_rings_born_outside_above_the_threshold():
    generated = [_h1_only((-0.02, 0.10), (0.01, 0.06), (0.02, 0.03))]  # a ring born outside; a short one
    parts = pd_lap_parts(generated, [_h1_only((-0.02, 0.10))], 1)
    assert parts["extra"] == pytest.approx(0.5 * (0.05**2 + 0.01**2))
    assert (parts["matched"], parts["missing"]) == (0.0, 0.0)
    assert parts["extra_points"] == 1.0  # the short one is under min_life
    assert parts["extra_born_outside"] == 1.0


def test_the_independent_generation_metrics_tool_agrees_with_the_library():
    """tools/check_generation_metrics.py is a second implementation (PointFlow's definitions, scipy's KD-tree): on
    random clouds of different sizes, with a duplicated sample and a near tie, both give the same MMD, COV and 1-NNA,
    and its sampler gives the library's clouds."""
    from toposdf.field import sample_surface
    from toposdf.metrics import mmd_cov_1nna

    tool = load_tool("check_generation_metrics")
    rng = np.random.default_rng(4)
    references = [rng.normal(size=(int(rng.integers(20, 60)), 3)) * (1 + 0.3 * k) for k in range(7)]
    samples = [rng.normal(size=(int(rng.integers(20, 60)), 3)) * (1 + 0.2 * k) + 0.1 * k for k in range(6)]
    samples.append(samples[2].copy())
    want = mmd_cov_1nna(samples, references)
    got = tool.generation_metrics(tool.distances(references, samples), tool.distances(references, references),
                                  tool.distances(samples, samples))
    assert got["mmd"] == pytest.approx(want["MMD-CD"], rel=1e-12)
    assert got["cov"] == want["COV-CD"] and got["nna"] == want["1-NNA-CD"]
    import trimesh

    box = trimesh.creation.box([0.5, 0.3, 0.2])
    np.testing.assert_array_equal(tool.run_sampler(box.vertices, box.faces, 500, 7),
                                  sample_surface(box.vertices, box.faces, 500, 7))
