"""The 1D study of Section 4.1 and Appendix B: PD matching of trigonometric polynomials under ``lambda_k`` profiles.

The paper's setup
-----------------
A function of the space ``F[0, 2pi]`` spanned by the Fourier basis up to degree ``n`` (App. A, eq. 16)::

    f(a, x) = a_0 + sum_{k=1}^{n} ( a_{2k-1} cos(kx) + a_{2k} sin(kx) ),    a = (a_0, ..., a_{2n})

has at most ``n`` local minima and ``n`` local maxima (Prop. 4.1), so its persistence diagram gives at most ``2n``
constraints on ``2n + 1`` coefficients. Given the diagram ``PD_gt`` of a ground truth ``f(a_gt, .)``, eq. 3 fits

    min_a  d_PD(PD(f(a, .)), PD_gt) + sum_{k=1}^{n} k^2 lambda_k (a_{2k-1}^2 + a_{2k}^2)

where ``d_PD`` is eq. 1 (:func:`toposdf.topology.pd_distance`); the diagrams, eq. 3 and its minimization are in
:mod:`toposdf.trigpd`, whose notes give the choices they make. ``lambda_k`` weights the ``k``-th frequency of the
regularizer; ``k^2`` are the eigenvalues of the 1D Laplacian, so equal weights ``lambda_k = lambda`` are Laplacian
smoothing, ``integral f'(x)^2 dx`` up to a factor. The paper's claim (App. B): with ``median(lambda_k)`` fixed,
equal weights minimize the relative coefficient error ``||a* - a_gt|| / ||a_gt||``.

Choices made here where the paper is silent
-------------------------------------------
* **Ground truth.** ``a_0 ~ N(0, 1)`` and ``a_{2k-1}, a_{2k} ~ N(0, k^(-2 s))``: ``s = 0`` is the classical random
  trigonometric polynomial (white coefficients), larger ``s`` smoother functions. The paper's analysis does not fix
  the spectrum, and the best profile depends on it, so the study sweeps ``s`` (``decays``). One standard normal
  draw per trial is shared by every decay and profile (paired comparisons).
* **Start.** ``a_init = a_gt + init_noise * sigma * xi``, ``xi ~ N(0, I)``, ``sigma`` the ground truth's per-coefficient
  standard deviation: the analysis of App. B concerns the minimizer in the neighbourhood of ``a_gt``.
* **Profiles.** ``lambda_k = lambda * k^p / median_k(k^p)``, so every profile has the same median ``lambda`` (the
  normalization of App. B); ``p = 0`` is the Laplacian, ``p = -2`` a plain ridge on the coefficients and ``p = 2``
  the squared second derivative (bi-Laplacian).
* **Error.** Relative, after the best alignment of the fit onto ``a_gt`` by the circle's symmetries
  (:func:`toposdf.trigpd.relative_error`); the unaligned error is reported too.

What it finds (the default study, degree 4, 50 trials per spectrum): the paper's claim is not universal. Equal
weights give the lowest mean error for smooth ground truths (``s`` = 1.5 and 2, though within a standard error of
``lambda_k ~ k`` and ``k^2``), while for ``s`` <= 1 ``lambda_k ~ 1/k`` is clearly better (with white coefficients,
about 0.22 against 0.39). The ordering is the same at degrees 2 and 6 and for median weights 0.001 to 0.1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .config import schema_dataclass

from .trigpd import (FitResult, check_degree, design_matrix, fit_coefficients, frequencies, periodic_diagram,
                     regularizer_weights, relative_error, sample_points)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------
# Profiles and ground truths
# --------------------------------------------------------------------------------------------------------------
def power_profile(degree: int, power: float, median: float) -> np.ndarray:
    """``(n,)`` weights ``lambda_k = median * k^power / median_k(k^power)`` for k = 1..n (all with the same median)."""
    n = check_degree(degree)
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


def ground_truth_scale(degree: int, decay: float) -> np.ndarray:
    """``(2n + 1,)`` standard deviations of the ground-truth coefficients: 1 for ``a_0``, ``k^-decay`` for frequency k."""
    k = frequencies(degree).astype(np.float64)
    return np.where(k == 0, 1.0, np.maximum(k, 1.0) ** -float(decay))


# --------------------------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------------------------
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
    n = check_degree(degree)
    if n_trials < 1 or not profiles or not len(decays):
        raise ValueError("run_study needs at least one trial, one profile and one decay")
    weights = _profile_weights(profiles, n)
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
                rows.append(_row(decay, trial, name, lambdas, truth, init, fit, len(target)))
        if (trial + 1) % 10 == 0 or trial + 1 == n_trials:
            log.info("1D study: %d/%d trials done", trial + 1, n_trials)
    return pd.DataFrame(rows)


def _profile_weights(profiles: Mapping[str, np.ndarray], n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Name -> ``(lambdas (n,), regularizer weights (2n + 1,))``; a profile without one weight per frequency raises."""
    weights = {}
    for name, lambdas in profiles.items():
        lambdas = np.asarray(lambdas, dtype=np.float64).reshape(-1)
        if len(lambdas) != n:
            raise ValueError(f"profile {name!r} has {len(lambdas)} weights, expected one per frequency 1..{n}")
        weights[name] = (lambdas, regularizer_weights(lambdas))
    return weights


def _row(decay: float, trial: int, name: str, lambdas: np.ndarray, truth: np.ndarray, init: np.ndarray,
         fit: FitResult, n_target: int) -> dict:
    """One row of :func:`run_study`'s table."""
    n = len(lambdas)
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
        "n_points_target": n_target,
        "n_points_fit": len(fit.objective.diagram),
    }
    row.update({f"lambda_{k + 1}": lambdas[k] for k in range(n)})
    for prefix, c in (("true", truth), ("init", init), ("fit", fit.coefs)):
        row.update({f"{prefix}_a{i}": c[i] for i in range(2 * n + 1)})
    return row


@schema_dataclass("study_1d")
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

    degree: int
    powers: tuple[float, ...]
    lambda_median: float
    decays: tuple[float, ...]
    plot_decay: float
    n_trials: int
    init_noise: float
    n_samples: int
    steps: int
    lr: float
    method: str
    seed: int

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
        check_degree(cfg.degree)
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


def representative_trial(df: pd.DataFrame, decay: float) -> int:
    """The trial at ``decay`` whose error, averaged over the profiles, is the median one."""
    at = df[np.isclose(df["decay"], decay)]
    mean = at.groupby("trial")["rel_error"].mean().sort_values(kind="stable")
    return int(mean.index[(len(mean) - 1) // 2])
