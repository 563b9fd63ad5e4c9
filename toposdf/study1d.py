"""The 1D study of Section 4.1 and Appendix B: PD matching of trigonometric polynomials under ``lambda_k`` profiles.

The paper's setup
-----------------
A function of the space ``F[0, 2pi]`` spanned by the Fourier basis up to degree ``n`` (App. A, eq. 16)::

    f(a, x) = a_0 + sum_{k=1}^{n} ( a_{2k-1} cos(kx) + a_{2k} sin(kx) ),    a = (a_0, ..., a_{2n})

has at most ``n`` local minima and ``n`` local maxima (Prop. 4.1), so its persistence diagram gives at most ``2n``
constraints on ``2n + 1`` coefficients. Given the diagram ``PD_gt`` of a ground truth ``f(a_gt, .)``, eq. 3 fits

    min_a  d_PD(PD(f(a, .)), PD_gt) + sum_{k=1}^{n} k^2 lambda_k (a_{2k-1}^2 + a_{2k}^2)

where ``d_PD`` is eq. 1 (:func:`toposdf.topology.pd_distance`). ``lambda_k`` weights the ``k``-th frequency of the
regularizer; ``k^2`` are the eigenvalues of the 1D Laplacian, so equal weights ``lambda_k = lambda`` are Laplacian
smoothing, ``integral f'(x)^2 dx`` up to a factor. The paper's claim (App. B): with ``median(lambda_k)`` fixed,
equal weights minimize the relative coefficient error ``||a* - a_gt|| / ||a_gt||``.

Choices made here where the paper is silent
-------------------------------------------
* **Diagram.** Sublevel-set persistence of ``f`` sampled at ``N`` equispaced points of the circle (``f`` is
  2pi-periodic). On a circle, H0 has one finite pair per non-global minimum, an essential class born at the global
  minimum, and H1 one essential class born at the global maximum. The diagram used is H0 with the essential class
  given death ``max f`` (the birth of the H1 class), so it holds every critical value: ``m`` points for ``m``
  minima. It is computed by CubicalRipser on the samples rotated to start, and end, at the global maximum: the
  circle cut at its highest point is an interval with the same sublevel sets below ``max f``, so the diagrams are
  equal. Pairs of zero persistence are dropped.
* **Gradient.** A diagram point is ``(f(x_b), f(x_d))`` at its birth and death samples, and ``f(x_j)`` is linear in
  ``a`` (``f(x_j) = Phi[j] @ a`` with the design matrix ``Phi``), so ``d_PD`` is differentiated through the values at
  the critical samples with the optimal matching held fixed, analytically, in numpy. (At a critical point
  ``f'(c) = 0``, so the motion of ``c`` with ``a`` does not contribute at first order.)
* **Optimizer.** ``"gauss_newton"`` (default): the residuals of eq. 1 (matched pairs' coordinate differences and
  unmatched points' distance to the diagonal) are linear in ``a`` for a fixed critical set and matching, so each
  step solves the regularized linear least-squares problem of App. B's eq. 19 at the current point, scaled by
  ``lr`` with backtracking (a step that does not lower the objective is halved). It reaches a stationary point in
  about 10 steps (median 7), which makes a thousand fits affordable. ``"adam"``: Adam on the same gradient, for
  comparison; from the same start both reach the same minimizer in most fits, either one a lower one in the rest
  (eq. 3 is piecewise quadratic and has several local minima).
* **Ground truth.** ``a_0 ~ N(0, 1)`` and ``a_{2k-1}, a_{2k} ~ N(0, k^(-2 s))``: ``s = 0`` is the classical random
  trigonometric polynomial (white coefficients), larger ``s`` smoother functions. The paper's analysis does not fix
  the spectrum, and the best profile depends on it, so the study sweeps ``s`` (``decays``). One standard normal
  draw per trial is shared by every decay and profile (paired comparisons).
* **Start.** ``a_init = a_gt + init_noise * sigma * xi``, ``xi ~ N(0, I)``, ``sigma`` the ground truth's per-coefficient
  standard deviation: the analysis of App. B concerns the minimizer in the neighbourhood of ``a_gt``.
* **Profiles.** ``lambda_k = lambda * k^p / median_k(k^p)``, so every profile has the same median ``lambda`` (the
  normalization of App. B); ``p = 0`` is the Laplacian, ``p = -2`` a plain ridge on the coefficients and ``p = 2``
  the squared second derivative (bi-Laplacian).
* **Error.** Both terms of eq. 3 are invariant under the circle's symmetries ``x -> x + t`` and ``x -> -x``, so the
  coefficients are determined only up to them; the error is taken after the best such alignment of the fit onto
  ``a_gt`` (``t`` from a grid of 4096 angles, refined by Newton steps). The unaligned error is reported too.

What it finds (the default study, degree 4, 50 trials per spectrum): the paper's claim is not universal. Equal
weights give the lowest mean error for smooth ground truths (``s`` = 1.5 and 2, though within a standard error of
``lambda_k ~ k`` and ``k^2``), while for ``s`` <= 1 ``lambda_k ~ 1/k`` is clearly better (with white coefficients,
about 0.22 against 0.39). The ordering is the same at degrees 2 and 6 and for median weights 0.001 to 0.1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cripser
import numpy as np
import pandas as pd

from .topology import pd_distance

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_POWERS",
    "FitResult",
    "PDObjective",
    "Study1DConfig",
    "design_matrix",
    "fit_coefficients",
    "frequencies",
    "ground_truth_scale",
    "pd_objective",
    "periodic_diagram",
    "plot_study",
    "power_profile",
    "power_profiles",
    "profile_label",
    "profile_name",
    "regularizer_weights",
    "relative_error",
    "representative_trial",
    "run_study",
    "sample_points",
    "summarize",
]

#: Powers p of the default profiles lambda_k ~ k^p.
DEFAULT_POWERS: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0)
_N_ALIGN = 4096
_MAX_HALVINGS = 12


# --------------------------------------------------------------------------------------------------------------
# Trigonometric polynomials and their diagrams
# --------------------------------------------------------------------------------------------------------------
def _check_degree(degree: int) -> int:
    if int(degree) != degree or degree < 1:
        raise ValueError(f"degree must be a positive integer, got {degree!r}")
    return int(degree)


def frequencies(degree: int) -> np.ndarray:
    """``(2n + 1,)`` int64: the frequency ``k`` of each coefficient, ``[0, 1, 1, 2, 2, ..., n, n]``."""
    n = _check_degree(degree)
    return np.concatenate([[0], np.repeat(np.arange(1, n + 1), 2)]).astype(np.int64)


def sample_points(n_samples: int) -> np.ndarray:
    """``(N,)`` equispaced points ``2 pi j / N`` of the circle ``[0, 2 pi)``."""
    if int(n_samples) != n_samples or n_samples < 3:
        raise ValueError(f"n_samples must be an integer >= 3, got {n_samples!r}")
    return 2.0 * np.pi * np.arange(int(n_samples)) / int(n_samples)


def design_matrix(x: np.ndarray, degree: int) -> np.ndarray:
    """``(len(x), 2n + 1)`` matrix ``Phi`` with ``f(a, x) = Phi @ a``: columns ``1, cos x, sin x, ..., cos nx, sin nx``
    (the basis of eq. 16)."""
    n = _check_degree(degree)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    kx = np.outer(x, np.arange(1, n + 1))
    phi = np.empty((len(x), 2 * n + 1))
    phi[:, 0] = 1.0
    phi[:, 1::2] = np.cos(kx)
    phi[:, 2::2] = np.sin(kx)
    return phi


def power_profile(degree: int, power: float, median: float) -> np.ndarray:
    """``(n,)`` weights ``lambda_k = median * k^power / median_k(k^power)`` for k = 1..n (all with the same median)."""
    n = _check_degree(degree)
    if not median > 0:
        raise ValueError(f"the median weight must be positive, got {median}")
    g = np.arange(1, n + 1, dtype=np.float64) ** float(power)
    return median * g / np.median(g)


def profile_name(power: float) -> str:
    """``"equal"`` for power 0, else ``"k^p"``."""
    return "equal" if power == 0 else f"k^{float(power):g}"


def power_profiles(degree: int, powers: Sequence[float], median: float) -> dict[str, np.ndarray]:
    """Name (:func:`profile_name`) -> ``(n,)`` weights of :func:`power_profile`, one per power, in order."""
    profiles = {profile_name(p): power_profile(degree, p, median) for p in powers}
    if len(profiles) != len(powers):
        raise ValueError(f"the powers must be distinct, got {list(powers)}")
    return profiles


def regularizer_weights(lambdas: np.ndarray) -> np.ndarray:
    """``(2n + 1,)`` weights ``w`` with ``sum_k k^2 lambda_k (a_{2k-1}^2 + a_{2k}^2) = sum_i w_i a_i^2`` (``w_0 = 0``).

    Args:
        lambdas: ``(n,)`` non-negative ``lambda_k`` for k = 1..n.
    """
    lambdas = np.asarray(lambdas, dtype=np.float64).reshape(-1)
    if len(lambdas) == 0 or np.any(lambdas < 0) or not np.all(np.isfinite(lambdas)):
        raise ValueError(f"lambdas must be a non-empty array of finite values >= 0, got {lambdas}")
    k = frequencies(len(lambdas))
    return np.concatenate([[0.0], np.repeat(lambdas, 2)]) * k.astype(np.float64) ** 2


def periodic_diagram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H0 sublevel-set diagram of a function sampled on a circle, with its critical samples.

    Args:
        values: ``(N,)`` finite samples ``f(2 pi j / N)``, N >= 3, of a periodic function.

    Returns:
        ``(diagram, critical)``: ``diagram`` the ``(m, 2)`` float64 (birth, death) pairs, sorted by decreasing
        persistence, with the essential class first and given death ``max f``; ``critical`` the ``(m, 2)`` int64
        sample indices with ``values[critical] == diagram``. Pairs of zero persistence are dropped (a constant
        function has an empty diagram).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 3:
        raise ValueError(f"expected a 1D array of at least 3 samples, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("the samples contain NaN or infinite values")
    n = len(values)
    top = int(np.argmax(values))
    # The circle cut at its highest sample: an interval with the same sublevel sets below max f. CubicalRipser gets
    # a 1D array: a (1, N) array is not an interval to cripser 0.0.37 (every vertex stays its own component).
    cut = np.concatenate([values[top:], values[: top + 1]])
    pairs = cripser.compute_ph(cut, filtration="V", maxdim=0)
    pairs = pairs[pairs[:, 0] == 0]
    at = pairs[:, [3, 6]].astype(np.int64)
    at[~np.isfinite(pairs[:, 2]) | (pairs[:, 2] >= np.finfo(np.float64).max / 2), 1] = 0  # essential: dies at max
    critical = (at + top) % n  # the cut's sample i is the circle's sample top + i
    diagram = values[critical]  # exact float64 values (cripser may round)
    persistence = diagram[:, 1] - diagram[:, 0]
    keep = np.flatnonzero(persistence > 0)
    keep = keep[np.argsort(-persistence[keep], kind="stable")]
    diagram, critical = diagram[keep], critical[keep]
    return diagram, critical.reshape(-1, 2).astype(np.int64)


# --------------------------------------------------------------------------------------------------------------
# The objective of eq. 3 and its minimization
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PDObjective:
    """Eq. 3 at one coefficient vector.

    Attributes:
        value: ``pd + regularizer``.
        pd: ``d_PD(PD(f), target)`` (eq. 1).
        regularizer: ``sum_i w_i a_i^2``.
        grad: ``(2n + 1,)`` gradient of ``value`` (matching and critical samples held fixed).
        residuals: ``(r,)`` and ``jacobian``: ``(r, 2n + 1)``, with ``pd = ||residuals||^2 + constant`` (the
            constant: the target points sent to the diagonal) and ``d residuals / d a = jacobian``.
        diagram: ``(m, 2)`` the diagram of ``f``.
    """

    value: float
    pd: float
    regularizer: float
    grad: np.ndarray
    residuals: np.ndarray
    jacobian: np.ndarray
    diagram: np.ndarray


def pd_objective(coefs: np.ndarray, basis: np.ndarray, target: np.ndarray, weights: np.ndarray) -> PDObjective:
    """Eq. 3 for the function ``basis @ coefs`` against the diagram ``target``, with its gradient.

    Args:
        coefs: ``(2n + 1,)`` coefficients ``a``.
        basis: ``(N, 2n + 1)`` design matrix of the sample points (:func:`design_matrix`).
        target: ``(m', 2)`` target diagram.
        weights: ``(2n + 1,)`` regularizer weights (:func:`regularizer_weights`).
    """
    coefs = np.asarray(coefs, dtype=np.float64)
    values = basis @ coefs
    diagram, critical = periodic_diagram(values)
    pd_value, matching = pd_distance(diagram, target, return_matching=True)
    target = np.asarray(target, dtype=np.float64).reshape(-1, 2)
    ours, theirs = matching[:, 0], matching[:, 1]
    matched = (ours >= 0) & (theirs >= 0)
    i, j = ours[matched], theirs[matched]
    diag = ours[(ours >= 0) & (theirs < 0)]
    # Residuals whose squares sum to d_PD minus the (constant) cost of target points sent to the diagonal.
    rows_b, rows_d = basis[critical[i, 0]], basis[critical[i, 1]]
    delta = (basis[critical[diag, 1]] - basis[critical[diag, 0]]) / np.sqrt(2.0)
    residuals = np.concatenate(
        [
            diagram[i, 0] - target[j, 0],
            diagram[i, 1] - target[j, 1],
            (diagram[diag, 1] - diagram[diag, 0]) / np.sqrt(2.0),
        ]
    )
    jacobian = np.concatenate([rows_b, rows_d, delta]).reshape(-1, len(coefs))
    regularizer = float(np.sum(weights * coefs * coefs))
    grad = 2.0 * jacobian.T @ residuals + 2.0 * weights * coefs
    return PDObjective(pd_value + regularizer, pd_value, regularizer, grad, residuals, jacobian, diagram)


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit_coefficients` returns: the ``(2n + 1,)`` coefficients, the objective there, the objective
    after each step (``(steps + 1,)``, the start first), and the number of steps taken."""

    coefs: np.ndarray
    objective: PDObjective
    history: np.ndarray
    steps: int


def fit_coefficients(
    init: np.ndarray,
    basis: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray,
    *,
    steps: int = 60,
    lr: float = 1.0,
    method: str = "gauss_newton",
    tol: float = 1e-12,
) -> FitResult:
    """Minimize eq. 3 from ``init``.

    Args:
        init: ``(2n + 1,)`` starting coefficients.
        basis, target, weights: as in :func:`pd_objective`.
        steps: the most steps.
        lr: step size: the fraction of the Gauss-Newton step (1 is the full step), or Adam's learning rate.
        method: ``"gauss_newton"`` (the regularized least-squares step of App. B's eq. 19, with backtracking) or
            ``"adam"``.
        tol: stop when a step lowers the objective by less than ``tol * (1 + objective)`` (Gauss-Newton only).
    """
    if method not in ("gauss_newton", "adam"):
        raise ValueError(f"method must be 'gauss_newton' or 'adam', got {method!r}")
    if steps < 0 or not lr > 0:
        raise ValueError(f"expected steps >= 0 and lr > 0, got steps={steps}, lr={lr}")
    a = np.array(init, dtype=np.float64)
    obj = pd_objective(a, basis, target, weights)
    history = [obj.value]
    m = np.zeros_like(a)
    v = np.zeros_like(a)
    ridge = 1e-10 * np.eye(len(a))
    last_scale = lr
    for t in range(1, steps + 1):
        if method == "adam":
            m = 0.9 * m + 0.1 * obj.grad
            v = 0.999 * v + 0.001 * obj.grad**2
            a = a - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-12)
            obj = pd_objective(a, basis, target, weights)
            history.append(obj.value)
            continue
        hessian = obj.jacobian.T @ obj.jacobian + np.diag(weights) + ridge
        direction = -np.linalg.solve(hessian, 0.5 * obj.grad)
        if -obj.grad @ direction <= tol * (1.0 + obj.value):  # the model predicts no decrease: converged
            break
        scale, accepted = min(lr, 2.0 * last_scale), None  # start near the last accepted step size
        for _ in range(_MAX_HALVINGS):
            trial = pd_objective(a + scale * direction, basis, target, weights)
            if trial.value <= obj.value:
                accepted = trial
                break
            scale *= 0.5
        if accepted is None:  # no descent along the step: a stationary point up to round-off
            break
        a, last_scale = a + scale * direction, scale
        decrease = obj.value - accepted.value
        obj = accepted
        history.append(obj.value)
        if decrease <= tol * (1.0 + obj.value):
            break
    return FitResult(a, obj, np.asarray(history), len(history) - 1)


# --------------------------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------------------------
def ground_truth_scale(degree: int, decay: float) -> np.ndarray:
    """``(2n + 1,)`` standard deviations of the ground-truth coefficients: 1 for ``a_0``, ``k^-decay`` for frequency k."""
    k = frequencies(degree).astype(np.float64)
    return np.where(k == 0, 1.0, np.maximum(k, 1.0) ** -float(decay))


def _align(coefs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The image of ``coefs`` under the circle symmetry (``x -> x + t``, optionally ``x -> -x``) closest to
    ``reference``: ``t`` from a grid of 4096 angles, refined by Newton steps on the squared distance."""
    n = (len(coefs) - 1) // 2
    k = np.arange(1, n + 1)
    t = 2.0 * np.pi * np.arange(_N_ALIGN) / _N_ALIGN
    ref = reference[1::2] - 1j * reference[2::2]
    best, best_cost = coefs, np.inf
    for sign in (1.0, -1.0):
        z = coefs[1::2] - 1j * sign * coefs[2::2]  # a_c cos kx + a_s sin kx = Re(z e^{ikx}); f(x + t): z e^{ikt}
        # |z e^{ikt} - ref|^2 summed over k = const - 2 Re sum_k conj(ref_k) z_k e^{ikt}: maximize the sum.
        w = np.conj(ref) * z
        score = (np.exp(1j * np.outer(t, k)) @ w).real
        s = t[int(np.argmax(score))]
        for _ in range(4):
            e = w * np.exp(1j * k * s)
            d1, d2 = -(k * e).imag.sum(), -(k * k * e).real.sum()  # first and second derivatives of the score
            if d2 >= 0:
                break
            s -= d1 / d2
        zs = z * np.exp(1j * k * s)
        cost = float(np.sum(np.abs(zs - ref) ** 2))
        if cost < best_cost:
            best_cost = cost
            best = np.concatenate([[coefs[0]], np.stack([zs.real, -zs.imag], axis=1).ravel()])
    return best


def relative_error(coefs: np.ndarray, truth: np.ndarray, align: bool = True) -> float:
    """``||a - a_gt|| / ||a_gt||``, after the best circle symmetry of ``a`` when ``align`` (see the module notes)."""
    coefs, truth = np.asarray(coefs, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if coefs.shape != truth.shape or coefs.ndim != 1 or len(coefs) % 2 != 1:
        raise ValueError(f"expected two (2n + 1,) coefficient vectors, got shapes {coefs.shape} and {truth.shape}")
    if align:
        coefs = _align(coefs, truth)
    return float(np.linalg.norm(coefs - truth) / np.linalg.norm(truth))


def run_study(
    profiles: Mapping[str, np.ndarray],
    n_trials: int = 50,
    degree: int = 4,
    steps: int = 60,
    lr: float = 1.0,
    seed: int = 0,
    *,
    decays: Sequence[float] = (0.0, 1.0, 1.5, 2.0),
    init_noise: float = 0.2,
    n_samples: int = 256,
    method: str = "gauss_newton",
) -> pd.DataFrame:
    """Fit every ground truth with every ``lambda_k`` profile and measure the relative coefficient error.

    Args:
        profiles: name -> ``(degree,)`` weights ``lambda_1..lambda_n`` (e.g. from :func:`power_profile`).
        n_trials: ground truths per decay.
        degree: ``n``, the highest frequency.
        steps, lr, method: the optimizer (:func:`fit_coefficients`).
        seed: seeds the ground truths and the starting points.
        decays: spectra of the ground truth, ``a_k ~ N(0, k^(-2 decay))``.
        init_noise: relative perturbation of the start (see the module notes).
        n_samples: samples of the circle on which the diagrams are computed.

    Returns:
        One row per decay x trial x profile: ``decay, trial, profile, rel_error`` (aligned), ``rel_error_unaligned,
        pd_distance, regularizer, objective, grad_norm, steps, n_points_target, n_points_fit``, the profile's
        ``lambda_1..lambda_n``, and the coefficients ``true_a{i}``, ``init_a{i}``, ``fit_a{i}`` for i = 0..2n.
    """
    n = _check_degree(degree)
    if n_trials < 1 or not profiles or not len(decays):
        raise ValueError("run_study needs at least one trial, one profile and one decay")
    weights = {}
    for name, lambdas in profiles.items():
        lambdas = np.asarray(lambdas, dtype=np.float64).reshape(-1)
        if len(lambdas) != n:
            raise ValueError(f"profile {name!r} has {len(lambdas)} weights, expected one per frequency 1..{n}")
        weights[name] = (lambdas, regularizer_weights(lambdas))
    basis = design_matrix(sample_points(n_samples), n)
    rows = []
    for trial in range(n_trials):
        rng = np.random.default_rng([seed, trial])
        draw, noise = rng.standard_normal(2 * n + 1), rng.standard_normal(2 * n + 1)
        for decay in decays:
            scale = ground_truth_scale(n, decay)
            truth = draw * scale
            init = truth + init_noise * scale * noise
            target, _ = periodic_diagram(basis @ truth)
            for name, (lambdas, w) in weights.items():
                fit = fit_coefficients(init, basis, target, w, steps=steps, lr=lr, method=method)
                row = {
                    "decay": float(decay),
                    "trial": trial,
                    "profile": name,
                    "rel_error": relative_error(fit.coefs, truth),
                    "rel_error_unaligned": relative_error(fit.coefs, truth, align=False),
                    "pd_distance": fit.objective.pd,
                    "regularizer": fit.objective.regularizer,
                    "objective": fit.objective.value,
                    "grad_norm": float(np.linalg.norm(fit.objective.grad)),
                    "steps": fit.steps,
                    "n_points_target": len(target),
                    "n_points_fit": len(fit.objective.diagram),
                }
                row.update({f"lambda_{k + 1}": lambdas[k] for k in range(n)})
                for prefix, c in (("true", truth), ("init", init), ("fit", fit.coefs)):
                    row.update({f"{prefix}_a{i}": c[i] for i in range(2 * n + 1)})
                rows.append(row)
        if (trial + 1) % 10 == 0 or trial + 1 == n_trials:
            log.info("1D study: %d/%d trials done", trial + 1, n_trials)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Study1DConfig:
    """The study's settings (the ``study_1d`` section of the workflow's configuration; every key is optional).

    Attributes:
        degree: ``n``, the highest frequency of the trigonometric polynomials.
        powers: the profiles ``lambda_k ~ k^p`` compared, one per power (0: equal weights, the Laplacian).
        lambda_median: the median of every profile's ``lambda_k``.
        decays: ground-truth spectra ``a_k ~ N(0, k^(-2 s))``, one per ``s``.
        plot_decay: the ``s`` of the figure's panels (a) and (b); one of ``decays``.
        n_trials: ground truths per decay.
        init_noise: relative perturbation of the starting coefficients.
        n_samples: samples of the circle for the diagrams.
        steps, lr, method: the optimizer (:func:`fit_coefficients`).
        seed: seeds the ground truths and the starts.
    """

    degree: int = 4
    powers: tuple[float, ...] = DEFAULT_POWERS
    lambda_median: float = 0.01
    decays: tuple[float, ...] = (0.0, 1.0, 1.5, 2.0)
    plot_decay: float = 1.0
    n_trials: int = 50
    init_noise: float = 0.2
    n_samples: int = 256
    steps: int = 60
    lr: float = 1.0
    method: str = "gauss_newton"
    seed: int = 0

    @classmethod
    def from_dict(cls, settings: Mapping | None) -> Study1DConfig:
        """Defaults overridden by ``settings``; unknown keys and bad values raise ``ValueError``."""
        settings = dict(settings or {})
        unknown = set(settings) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown study_1d settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        for key in ("powers", "decays"):
            if key in settings:
                settings[key] = tuple(float(v) for v in settings[key])
        cfg = cls(**settings)
        _check_degree(cfg.degree)
        if not cfg.powers or not cfg.decays:
            raise ValueError("study_1d needs at least one power and one decay")
        if not np.any(np.isclose(cfg.decays, cfg.plot_decay)):
            raise ValueError(f"study_1d.plot_decay {cfg.plot_decay} must be one of decays {list(cfg.decays)}")
        if cfg.n_trials < 1 or cfg.steps < 0 or cfg.n_samples < 3 or not cfg.lr > 0 or cfg.init_noise < 0:
            raise ValueError(f"study_1d: expected n_trials >= 1, steps >= 0, n_samples >= 3, lr > 0 and "
                             f"init_noise >= 0, got {cfg}")
        power_profiles(cfg.degree, cfg.powers, cfg.lambda_median)  # validates the powers and the median
        return cfg

    def profiles(self) -> dict[str, np.ndarray]:
        """Name -> ``(degree,)`` weights ``lambda_k`` of every profile."""
        return power_profiles(self.degree, self.powers, self.lambda_median)

    def run(self) -> pd.DataFrame:
        """:func:`run_study` with these settings."""
        return run_study(self.profiles(), self.n_trials, self.degree, self.steps, self.lr, self.seed,
                         decays=self.decays, init_noise=self.init_noise, n_samples=self.n_samples,
                         method=self.method)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard error and median of the relative error, and the share of trials a profile is best, per
    decay and profile (rows in the study's order)."""
    g = df.groupby(["decay", "profile"], sort=False)["rel_error"]
    table = g.agg(mean="mean", sem="sem", median="median").reset_index()
    wide = df.pivot_table(index=["decay", "trial"], columns="profile", values="rel_error")
    best = wide.idxmin(axis=1).groupby(level="decay").value_counts(normalize=True)
    table["best_share"] = [float(best.get((d, p), 0.0)) for d, p in zip(table["decay"], table["profile"])]
    return table


def _coefs(df: pd.DataFrame, prefix: str) -> np.ndarray:
    """``(rows, 2n + 1)`` the coefficients ``{prefix}_a0..`` of the rows of ``df``."""
    cols = sorted((c for c in df.columns if c.startswith(f"{prefix}_a")), key=lambda c: int(c.rsplit("a", 1)[1]))
    return df[cols].to_numpy(dtype=np.float64)


def _tex_profile(name: str) -> str:
    """Mathtext for a profile name: ``k^-2`` -> ``$\\lambda_k \\propto k^{-2}$``."""
    if name == "equal":
        return r"equal $\lambda_k$"
    if name.startswith("k^"):
        return rf"$\lambda_k \propto k^{{{name[2:]}}}$"
    return name


def profile_label(name: str, lambdas: np.ndarray) -> str:
    """Legend text for a profile: its name and its weights ``lambda_1..lambda_n``."""
    return f"{_tex_profile(name)}  (λ = {', '.join(f'{v:.3g}' for v in lambdas)})"


def representative_trial(df: pd.DataFrame, decay: float) -> int:
    """The trial at ``decay`` whose error, averaged over the profiles, is the median one."""
    at = df[np.isclose(df["decay"], decay)]
    mean = at.groupby("trial")["rel_error"].mean().sort_values(kind="stable")
    return int(mean.index[(len(mean) - 1) // 2])


def plot_study(
    df: pd.DataFrame,
    path: str | Path,
    *,
    decay: float | None = None,
    example_trial: int | None = None,
    n_samples: int = 512,
    dpi: int = 120,
) -> None:
    """The study's figure, saved as a PNG.

    (a) the relative coefficient error of each profile over the trials at one ground-truth decay (box plot, mean
    marked); (b) one example: the ground truth, the start and each profile's fit (aligned to the ground truth by the
    circle symmetry of the error); (c) the mean error (± s.e.m.) against the decay of the ground truth's spectrum.

    Args:
        df: what :func:`run_study` returns.
        path: output PNG.
        decay: the ground-truth decay of panels (a) and (b); default: the median of the decays in ``df``.
        example_trial: the trial shown in (b); default: :func:`representative_trial`.
        n_samples: points at which the functions of (b) are drawn.
    """
    from .plotting import _save  # noqa: I001  (first: it selects the Agg backend)

    import matplotlib.pyplot as plt

    if df.empty:
        raise ValueError("the study's table is empty")
    decays = np.sort(df["decay"].unique())
    if decay is None:
        decay = float(decays[len(decays) // 2])
    if not np.any(np.isclose(decays, decay)):
        raise ValueError(f"decay {decay} is not in the study (decays: {decays.tolist()})")
    if example_trial is None:
        example_trial = representative_trial(df, decay)
    names = list(dict.fromkeys(df["profile"]))
    lambda_cols = sorted((c for c in df.columns if c.startswith("lambda_")), key=lambda c: int(c.split("_")[1]))
    lambdas = {name: df.loc[df["profile"] == name, lambda_cols].iloc[0].to_numpy() for name in names}
    cmap = plt.get_cmap("coolwarm")
    colours = {name: cmap(i / max(1, len(names) - 1)) for i, name in enumerate(names)}
    if "equal" in colours:
        colours["equal"] = "black"
    n_trials = df["trial"].nunique()
    degree = len(lambda_cols)
    spectrum = rf"$a_k \sim N(0, k^{{{-2 * decay:g}}})$"

    fig, axes = plt.subplots(1, 3, figsize=(17.0, 5.6), gridspec_kw={"width_ratios": [1.0, 1.3, 1.15]})
    at = df[np.isclose(df["decay"], decay)]

    ax = axes[0]
    data = [at.loc[at["profile"] == name, "rel_error"].to_numpy() for name in names]
    box = ax.boxplot(data, patch_artist=True, widths=0.55, medianprops={"color": "white", "linewidth": 1.5},
                     flierprops={"markersize": 3})
    for patch, name in zip(box["boxes"], names):
        patch.set_facecolor(colours[name])
        patch.set_alpha(0.85)
    means = [d.mean() for d in data]
    ax.scatter(range(1, len(names) + 1), means, marker="D", s=30, color="gold", edgecolor="black", zorder=3,
               label="mean (white line: median)")
    for i, value in enumerate(means):
        ax.annotate(f"{value:.3f}", (i + 1, value), textcoords="offset points", xytext=(0, -14), fontsize=8,
                    ha="center", va="center", color="black",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_xticks(range(1, len(names) + 1), [_tex_profile(n).replace("  ", "\n") for n in names], fontsize=9)
    ax.set_ylabel(r"relative coefficient error  $\|a^\star - a_{gt}\| \,/\, \|a_{gt}\|$")
    ax.set_title(f"(a) error per $\\lambda_k$ profile\nground truth {spectrum}, {n_trials} trials", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(bottom=0)

    ax = axes[1]
    example = at[at["trial"] == example_trial]
    if example.empty:
        raise ValueError(f"trial {example_trial} is not in the study")
    x = np.linspace(0.0, 2.0 * np.pi, n_samples)
    phi = design_matrix(x, degree)
    truth = _coefs(example.iloc[[0]], "true")[0]
    ax.plot(x, phi @ truth, color="0.55", linewidth=5, alpha=0.55, label=r"ground truth $f(a_{gt}, x)$")
    ax.plot(x, phi @ _align(_coefs(example.iloc[[0]], "init")[0], truth), color="0.3", linestyle=":",
            linewidth=1.3, label="start")
    for (_, row), coefs in zip(example.iterrows(), _coefs(example, "fit")):
        ax.plot(x, phi @ _align(coefs, truth), color=colours[row["profile"]], linewidth=1.4,
                label=f"{_tex_profile(row['profile'])}: error {row['rel_error']:.2f}, $d_{{PD}}$ "
                      f"{row['pd_distance']:.1e}")
    ax.set_xlim(0, 2 * np.pi)
    ax.set_xticks(np.arange(5) * np.pi / 2, ["0", "π/2", "π", "3π/2", "2π"])
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title(f"(b) one ground truth and its fits (trial {example_trial}, degree n = {degree})\n"
                 "fits shown after the best shift / reflection of the circle", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)

    ax = axes[2]
    summary = df.groupby(["profile", "decay"])["rel_error"].agg(["mean", "sem"]).reset_index()
    for name in names:
        s = summary[summary["profile"] == name].sort_values("decay")
        ax.plot(s["decay"], s["mean"], marker="o", markersize=4, color=colours[name],
                linewidth=2.4 if name == "equal" else 1.4, label=profile_label(name, lambdas[name]))
        ax.fill_between(s["decay"], s["mean"] - s["sem"], s["mean"] + s["sem"], color=colours[name], alpha=0.12,
                        linewidth=0)
    ax.axvline(decay, color="0.6", linestyle="--", linewidth=1)
    ax.set_xlabel(r"decay $s$ of the ground truth's spectrum, $a_k \sim N(0, k^{-2s})$")
    ax.set_ylabel("mean relative coefficient error (± s.e.m.)")
    ax.set_title("(c) the best profile depends on the spectrum\n(dashed: the decay of panels a and b)",
                 fontsize=10)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    ax.set_ylim(bottom=0)

    fig.suptitle(r"Sec. 4.1: fitting $a$ by $\min_a\, d_{PD}(PD(f_a), PD_{gt}) + \sum_k k^2 \lambda_k "
                 r"(a_{2k-1}^2 + a_{2k}^2)$, trigonometric polynomials of degree " + f"{degree}, "
                 r"profiles $\lambda_k$ with equal median", fontsize=11.5)
    fig.tight_layout()
    _save(fig, path, dpi)
    plt.close(fig)
