"""PD fitting of trigonometric polynomials: eq. 3 of Sec. 4.1 and its minimization (the 1D study's engine).

A function of the space spanned by the Fourier basis up to degree ``n`` (App. A, eq. 16)::

    f(a, x) = a_0 + sum_{k=1}^{n} ( a_{2k-1} cos(kx) + a_{2k} sin(kx) ),    a = (a_0, ..., a_{2n})

is fitted to a target diagram by

    min_a  d_PD(PD(f(a, .)), PD_gt) + sum_{k=1}^{n} k^2 lambda_k (a_{2k-1}^2 + a_{2k}^2)

with ``d_PD`` eq. 1 (:func:`toposdf.topology.pd_distance`). :mod:`toposdf.study1d` runs the study on top of this.

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
* **Error.** Both terms of eq. 3 are invariant under the circle's symmetries ``x -> x + t`` and ``x -> -x``, so the
  coefficients are determined only up to them; the error is taken after the best such alignment of the fit onto
  ``a_gt`` (``t`` from a grid of 4096 angles, refined by Newton steps). The unaligned error is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .topology import pd_distance
from .topology.persistence import cripser_pairs

_N_ALIGN = 4096
_MAX_HALVINGS = 12


# --------------------------------------------------------------------------------------------------------------
# Trigonometric polynomials and their diagrams
# --------------------------------------------------------------------------------------------------------------
def check_degree(degree: int) -> int:
    """``degree`` as an int, or ``ValueError`` when it is not a positive integer."""
    if int(degree) != degree or degree < 1:
        raise ValueError(f"degree must be a positive integer, got {degree!r}")
    return int(degree)


def frequencies(degree: int) -> np.ndarray:
    """``(2n + 1,)`` int64: the frequency ``k`` of each coefficient, ``[0, 1, 1, 2, 2, ..., n, n]``."""
    n = check_degree(degree)
    return np.concatenate([[0], np.repeat(np.arange(1, n + 1), 2)]).astype(np.int64)


def sample_points(n_samples: int) -> np.ndarray:
    """``(N,)`` equispaced points ``2 pi j / N`` of the circle ``[0, 2 pi)``."""
    if int(n_samples) != n_samples or n_samples < 3:
        raise ValueError(f"n_samples must be an integer >= 3, got {n_samples!r}")
    return 2.0 * np.pi * np.arange(int(n_samples)) / int(n_samples)


def design_matrix(x: np.ndarray, degree: int) -> np.ndarray:
    """``(len(x), 2n + 1)`` matrix ``Phi`` with ``f(a, x) = Phi @ a``: columns ``1, cos x, sin x, ..., cos nx, sin nx``
    (the basis of eq. 16)."""
    n = check_degree(degree)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    kx = np.outer(x, np.arange(1, n + 1))
    phi = np.empty((len(x), 2 * n + 1))
    phi[:, 0] = 1.0
    phi[:, 1::2] = np.cos(kx)
    phi[:, 2::2] = np.sin(kx)
    return phi


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
    pairs = cripser_pairs(cut, 0)
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


def _backtrack(a: np.ndarray, direction: np.ndarray, obj: PDObjective, basis: np.ndarray, target: np.ndarray,
               weights: np.ndarray, scale: float) -> tuple[float, PDObjective] | None:
    """The first step size of ``scale, scale / 2, ...`` (at most ``_MAX_HALVINGS``) along ``direction`` that does not
    raise the objective, with the objective there; ``None`` when none does."""
    for _ in range(_MAX_HALVINGS):
        trial = pd_objective(a + scale * direction, basis, target, weights)
        if trial.value <= obj.value:
            return scale, trial
        scale *= 0.5
    return None


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
        found = _backtrack(a, direction, obj, basis, target, weights, min(lr, 2.0 * last_scale))  # near the last
        if found is None:  # no descent along the step: a stationary point up to round-off
            break
        scale, accepted = found
        a, last_scale = a + scale * direction, scale
        decrease = obj.value - accepted.value
        obj = accepted
        history.append(obj.value)
        if decrease <= tol * (1.0 + obj.value):
            break
    return FitResult(a, obj, np.asarray(history), len(history) - 1)


# --------------------------------------------------------------------------------------------------------------
# The error up to the circle's symmetries
# --------------------------------------------------------------------------------------------------------------
def align_to_reference(coefs: np.ndarray, reference: np.ndarray) -> np.ndarray:
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
    """``||a - a_gt|| / ||a_gt||``, after the best circle symmetry of ``a`` when ``align`` (:func:`align_to_reference`)."""
    coefs, truth = np.asarray(coefs, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if coefs.shape != truth.shape or coefs.ndim != 1 or len(coefs) % 2 != 1:
        raise ValueError(f"expected two (2n + 1,) coefficient vectors, got shapes {coefs.shape} and {truth.shape}")
    if align:
        coefs = align_to_reference(coefs, truth)
    return float(np.linalg.norm(coefs - truth) / np.linalg.norm(truth))
