"""The stages' settings (eqs. 11-15), built from the validated configuration.

The defaults live in one place, the schema (``toposdf/schemas/config.schema.yaml``): these dataclasses have none.
:func:`implicit_train_config`, :func:`pdgen_train_config` and :func:`joint_train_config` fill them from the
typed config (:mod:`toposdf.config`) (``train.implicit``, ``train.pdgen``, ``train.joint``, the method's block, its
geometry entry, ``grid`` and ``persistence``); tests and benchmarks change a few fields with
:func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

TOPOLOGY_MODES = ("none", "learned", "prior")
TARGET_BIRTHS = ("free", "training")  # eq. 8's targets in the network's block: as generated, or births capped


@dataclass(frozen=True)
class ImplicitTermsConfig:
    """Eq. 11's terms, which stage 2 keeps: the SDF data term (``points_per_shape`` samples a shape, clamped at
    ``clamp_delta``), the latent prior's weight, and the geometric regularizer (eq. 5) on ``regularizer_shapes``
    synthetic shapes at ``regularizer_points`` points (the geometry entry's ``lambda_steik``: 0 is the DeepSDF
    variant, > 0 the -SE variant, annealed over stage 1 by ``steik_anneal``,
    :func:`~toposdf.training.base.anneal_scale`)."""

    points_per_shape: int
    clamp_delta: float
    lambda_kl: float
    lambda_eikonal: float
    lambda_steik: float
    steik_anneal: tuple[float, float] | None
    eikonal_p: float
    regularizer_shapes: int
    regularizer_points: int


@dataclass(frozen=True)
class ImplicitTrainConfig(ImplicitTermsConfig):
    """Stage 1 (eq. 11): ``train.implicit``, the geometry entry's ``lambda_steik`` and ``train.seed``."""

    epochs: int
    batch_shapes: int
    lr_decoder: float
    lr_codes: float
    lr_decay_at: float
    lr_decay_factor: float
    seed: int


@dataclass(frozen=True)
class PDGeneratorTrainConfig:
    """Stage 1b (eq. 12): ``train.pdgen``, the method's ``lambda_pd`` and ``lambda_smooth`` (None: ``auto``), and
    ``train.seed``.

    For a :class:`~toposdf.training.pdgen.PDGeneratorTrainer`, ``auto`` is calibrated after the first epoch to
    ``smooth_share`` of the PD fit. Stage 1b's entry point first picks that share among ``smooth_candidates`` by the
    held-out PD-LAP of generators trained on the other training shapes (``select_holdout``, ``select_draws``,
    ``select_epochs``; :mod:`toposdf.training.smoothness_selection`) when ``lambda_pd > 0``.
    """

    epochs: int
    batch_shapes: int
    lr: float
    lambda_pd: float
    lambda_smooth: float | None
    smooth_share: float
    smooth_candidates: list[float]  # shares of the calibration unit (fit / smoothness over the first epoch)
    select_holdout: float
    select_draws: int
    select_epochs: int | None  # None: epochs
    smooth_eps: float
    smooth_shapes: int
    diagonal_anchor: float  # weight of the unused slots' anchor at the training births (losses.diagram_fit_terms)
    max_points: int
    hidden: int
    essential_slot: bool  # the generators' architecture (new_pd_generators), with max_points and hidden
    seed: int


@dataclass(frozen=True)
class JointTrainConfig(ImplicitTermsConfig):
    """Stage 2 (eqs. 13-15): ``rounds`` of one epoch each for the network, the PD generators and the latent codes.

    ``topology`` selects the method family: ``"none"`` (the DeepSDF baselines: the same rounds without topological
    terms, so every method trains the network for the same number of epochs), ``"learned"`` (ours: consistency
    with the PD generators) or ``"prior"`` (the topology layer's fixed prior ``E(p, q, i0; PD_dim)`` on synthetic
    shapes instead of PD generators). Eq. 11's terms (:class:`ImplicitTermsConfig`) are stage 1's, but for
    ``points_per_shape`` (``train.joint``). The first ``warm_rounds`` rounds use stage 1's learning rates, decay and
    points per shape (a method trained from scratch: its stage 1), with the topological term in every
    ``scratch_consistency_every``-th of them. ``lambda_smooth`` None is ``auto``: calibrated in the first phi epoch
    (``smooth_share`` of its fit terms) unless stage 1b calibrated it.
    """

    rounds: int
    batch_shapes: int
    lr_decoder: float
    lr_codes: float
    lr_pdgen: float
    warm_rounds: int
    warm_lr_decoder: float
    warm_lr_codes: float
    warm_lr_decay_at: float
    warm_lr_decay_factor: float
    warm_points_per_shape: int
    scratch_consistency_every: int
    # the topological terms
    topology: str
    lambda_con: float
    lambda_cons: float
    lambda_pd: float
    lambda_smooth: float | None
    smooth_share: float
    smooth_eps: float
    smooth_shapes: int
    diagonal_anchor: float
    target_births: str  # "free" or "training": eq. 8's targets in the network's block (losses.shift_births)
    prior_dim: int
    prior_p: float
    prior_q: int
    prior_i0: int
    # synthetic shapes z ~ N(0, I) per step, their grid, and the persistence workers
    synthetic_shapes: int
    grid_resolution: int
    tau: float
    loss_min_persistence: float
    workers: int
    narrow_band: bool
    reuse_synthetic_for_phi: bool
    seed: int

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGY_MODES:
            raise ValueError(f"topology must be one of {TOPOLOGY_MODES}, got {self.topology!r}")
        if self.target_births not in TARGET_BIRTHS:
            raise ValueError(f"target_births must be one of {TARGET_BIRTHS}, got {self.target_births!r}")
        if self.target_births != "free" and (self.topology != "learned" or self.lambda_pd == 0):
            raise ValueError(f"target_births: {self.target_births} caps the PD generators' targets at the training "
                             "diagrams' births: it needs topology: learned with PD data (lambda_pd > 0)")

    @property
    def epochs(self) -> int:
        return self.rounds

    @property
    def consistency(self) -> bool:
        """Whether the rounds need the diagrams of synthetic shapes."""
        return self.topology != "none" and self.lambda_con > 0


def _filled(cls, block, **given):
    """``cls`` with the ``given`` fields and every other field read from ``block`` (a typed config block)."""
    return cls(**{f.name: given[f.name] if f.name in given else getattr(block, f.name) for f in fields(cls)})


def smoothness_weight(method) -> float | None:
    """A method's ``lambda_smooth``: a number, or None for ``auto`` (calibrated during training)."""
    return None if method.lambda_smooth == "auto" else float(method.lambda_smooth)


def _geometry_terms(cfg, geometry: str) -> dict:
    """The geometry entry's StEik weight and its anneal (a tuple, or None)."""
    entry = cfg.geometry[geometry]
    anneal = entry.steik_anneal
    return {"lambda_steik": float(entry.lambda_steik),
            "steik_anneal": None if anneal is None else (float(anneal[0]), float(anneal[1]))}


def implicit_train_config(cfg, geometry: str) -> ImplicitTrainConfig:
    """Stage 1's settings for the geometric regularizer ``geometry`` (a key of the ``geometry`` block)."""
    return _filled(ImplicitTrainConfig, cfg.train.implicit, **_geometry_terms(cfg, geometry), seed=cfg.train.seed)


def pdgen_train_config(cfg, method: str) -> PDGeneratorTrainConfig:
    """Stage 1b's settings for ``method`` (a key of the ``methods`` block)."""
    block = cfg.methods[method]
    return _filled(PDGeneratorTrainConfig, cfg.train.pdgen, lambda_pd=float(block.lambda_pd),
                   lambda_smooth=smoothness_weight(block), diagonal_anchor=float(block.diagonal_anchor),
                   smooth_candidates=list(cfg.train.pdgen.smooth_candidates), seed=cfg.train.seed)


def joint_train_config(cfg, method: str, threads: int = 1) -> JointTrainConfig:
    """Stage 2's settings for ``method``: ``train.joint``, stage 1's loss weights, the method's geometric
    regularizer and topological weights, and the grid and persistence settings. ``workers``: ``train.joint.workers``,
    else ``threads - 1`` (at least 1). A method ``from_scratch`` gets ``train.implicit.epochs`` warm rounds more."""
    block, implicit, joint, pdgen = cfg.methods[method], cfg.train.implicit, cfg.train.joint, cfg.train.pdgen
    warm = int(implicit.epochs) if block.from_scratch else 0
    stage1_terms = [f.name for f in fields(ImplicitTermsConfig)
                    if f.name not in ("points_per_shape", "lambda_steik", "steik_anneal")]
    return _filled(
        JointTrainConfig, joint,
        rounds=joint.rounds + warm, workers=joint.workers or max(1, threads - 1),
        warm_rounds=warm, **{f"warm_{key}": getattr(implicit, key) for key in
                             ("lr_decoder", "lr_codes", "lr_decay_at", "lr_decay_factor", "points_per_shape")},
        **{key: getattr(implicit, key) for key in stage1_terms},
        **_geometry_terms(cfg, block.geometry),
        topology=block.topology, lambda_con=float(block.lambda_con), lambda_pd=float(block.lambda_pd),
        lambda_cons=float(block.lambda_con if block.lambda_cons is None else block.lambda_cons),
        lambda_smooth=smoothness_weight(block), smooth_share=float(pdgen.smooth_share),
        smooth_eps=float(pdgen.smooth_eps), smooth_shapes=int(pdgen.smooth_shapes),
        diagonal_anchor=float(block.diagonal_anchor), target_births=str(block.target_births),
        **{f"prior_{key}": value for key, value in asdict(block.prior).items()},
        grid_resolution=joint.grid_resolution or cfg.grid.resolution, tau=cfg.persistence.tau,
        seed=cfg.train.seed,
    )
