"""The stages' settings (eqs. 11-15), composed from the typed configuration (:mod:`toposdf.config`).

A stage's settings are a frozen dataclass of the schema's entries of the blocks it reads and the few it derives: the
schema is the one place a field, its type and its default live. Tests change fields with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import asdict, fields, make_dataclass

from toposdf.config import block_fields

GEOMETRY = block_fields("geometry.*")  # lambda_steik (0: DeepSDF, > 0: -SE), its anneal over stage 1
STAGE1_TERMS = ("clamp_delta", "hard_sample_weight", "lambda_kl", "lambda_eikonal", "eikonal_p", "regularizer_shapes",
                "regularizer_points")
WARM = ("lr_decoder", "lr_codes", "lr_decay_at", "lr_decay_factor", "points_per_shape")  # stage 1's, warm_* in 2
METHOD_TERMS = ("topology", "lambda_con", "lambda_cons", "lambda_pd", "lambda_smooth", "diagonal_anchor",
                "target_births", "target_persistence", "consistency_dims")
PRIOR = tuple(f"prior_{key}" for key in block_fields("methods.*.prior"))  # E(p, q, i0; PD_dim) of the prior methods


def _stage_class(name: str, doc: str, *names: str, namespace: dict | None = None) -> type:
    """A frozen dataclass ``name`` with the fields ``names`` in order (a repeated name counts once), no defaults."""
    unique = list(dict.fromkeys(names))
    return make_dataclass(name, unique, frozen=True,
                          namespace={"__doc__": doc, "__module__": __name__, **(namespace or {})})


ImplicitTrainConfig = _stage_class(
    "ImplicitTrainConfig",
    """Stage 1 (eq. 11): ``train.implicit``, the geometry entry (``lambda_steik``, its ``steik_anneal``:
    :func:`~toposdf.training.base.anneal_scale`) and ``train.seed``.""",
    *block_fields("train.implicit"), *GEOMETRY, "seed")

PDGeneratorTrainConfig = _stage_class(
    "PDGeneratorTrainConfig",
    """Stage 1b (eq. 12): ``train.pdgen``, the method's ``lambda_pd``, ``lambda_smooth`` (None: ``auto``) and
    ``diagonal_anchor``, and ``train.seed``.

    For a :class:`~toposdf.training.pdgen.PDGeneratorTrainer`, ``auto`` is calibrated after the first epoch to
    ``smooth_share`` of the PD fit. Stage 1b's entry point first picks that share among ``smooth_candidates`` by the
    held-out PD-LAP of generators trained on the other training shapes (:mod:`toposdf.training.smoothness_selection`)
    when ``lambda_pd > 0``.""",
    *block_fields("train.pdgen"), "lambda_pd", "lambda_smooth", "diagonal_anchor", "seed")


def _check_joint(self) -> None:
    """The values of ``topology``, ``target_births`` and ``target_persistence`` are the schema's enums; this is the
    one rule across them."""
    for key, what in (("target_births", "caps the PD generators' targets at the training diagrams' births"),
                      ("target_persistence", "rounds the PD generators' targets to the training diagrams' "
                                             "shortest persistence")):
        if getattr(self, key) != "free" and (self.topology != "learned" or self.lambda_pd == 0):
            raise ValueError(f"{key}: {getattr(self, key)} {what}: it needs topology: learned with PD data "
                             "(lambda_pd > 0)")
    if self.consistency_dims is not None and self.topology != "learned":
        raise ValueError(f"consistency_dims: {list(self.consistency_dims)} selects eq. 8's dimensions: it needs "
                         "topology: learned (the prior's dimension is prior.dim)")


JointTrainConfig = _stage_class(
    "JointTrainConfig",
    """Stage 2 (eqs. 13-15): ``rounds`` of one epoch each for the network, the PD generators and the latent codes.

    Fields: ``train.joint``; eq. 11's terms of ``train.implicit`` and the geometry entry's; ``warm_rounds`` and the
    ``warm_*`` learning rates, decay and points per shape (stage 1's, for a method trained from scratch, with the
    topological term in ``scratch_consistency_rounds`` of its warm rounds); the method's topological weights and its
    ``prior_*``; ``train.pdgen``'s smoothness settings; ``tau``; ``train.seed``. ``topology`` selects the method
    family: ``"none"`` (the DeepSDF baselines: the same rounds without topological terms), ``"learned"`` (ours:
    consistency with the PD generators) or ``"prior"`` (the topology layer's fixed prior on synthetic shapes).
    ``lambda_smooth`` None is ``auto``: calibrated in the first phi epoch unless stage 1b calibrated it.""",
    *block_fields("train.joint"), *STAGE1_TERMS, *GEOMETRY, "warm_rounds", *(f"warm_{key}" for key in WARM),
    *METHOD_TERMS, *PRIOR, "smooth_share", "smooth_eps", "smooth_shapes", "tau", "seed",
    namespace={"__post_init__": _check_joint,
               "epochs": property(lambda self: self.rounds),
               "consistency": property(lambda self: self.topology != "none" and self.lambda_con > 0,
                                       doc="Whether the rounds need the diagrams of synthetic shapes.")})


def _composed(cls, *blocks, **given):
    """``cls`` with the ``given`` fields and every other field read from the first of ``blocks`` (typed config
    blocks) that has it."""
    owner = {f.name: block for block in reversed(blocks) for f in fields(block)}
    return cls(**{f.name: given[f.name] if f.name in given else getattr(owner[f.name], f.name) for f in fields(cls)})


def smoothness_weight(method) -> float | None:
    """A method's ``lambda_smooth``: a number, or None for ``auto`` (calibrated during training)."""
    return None if method.lambda_smooth == "auto" else float(method.lambda_smooth)


def implicit_train_config(cfg, geometry: str) -> ImplicitTrainConfig:
    """Stage 1's settings for the geometric regularizer ``geometry`` (a key of the ``geometry`` block)."""
    return _composed(ImplicitTrainConfig, cfg.train.implicit, cfg.geometry[geometry], seed=cfg.train.seed)


def pdgen_train_config(cfg, method: str) -> PDGeneratorTrainConfig:
    """Stage 1b's settings for ``method`` (a key of the ``methods`` block)."""
    return _composed(PDGeneratorTrainConfig, cfg.train.pdgen, cfg.methods[method],
                     lambda_smooth=smoothness_weight(cfg.methods[method]),
                     smooth_candidates=list(cfg.train.pdgen.smooth_candidates), seed=cfg.train.seed)


def joint_train_config(cfg, method: str, threads: int = 1) -> JointTrainConfig:
    """Stage 2's settings for ``method``. ``workers``: ``train.joint.workers``, else ``threads - 1`` (at least 1);
    ``grid_resolution``: ``train.joint.grid_resolution``, else ``grid.resolution``. A method ``from_scratch`` gets
    ``train.implicit.epochs`` warm rounds more. ``synthetic_field``: the method's, else ``train.joint``'s."""
    block, implicit, joint = cfg.methods[method], cfg.train.implicit, cfg.train.joint
    warm = int(implicit.epochs) if block.from_scratch else 0
    return _composed(
        JointTrainConfig, joint, implicit, cfg.geometry[block.geometry], block, cfg.train.pdgen,
        rounds=joint.rounds + warm, workers=joint.workers or max(1, threads - 1), warm_rounds=warm,
        **{f"warm_{key}": getattr(implicit, key) for key in WARM},
        lambda_cons=block.lambda_con if block.lambda_cons is None else block.lambda_cons,
        synthetic_field=block.synthetic_field or joint.synthetic_field,
        lambda_smooth=smoothness_weight(block), **{f"prior_{k}": v for k, v in asdict(block.prior).items()},
        grid_resolution=joint.grid_resolution or cfg.grid.resolution, tau=cfg.persistence.tau, seed=cfg.train.seed)


AutoencoderTrainConfig = _stage_class(
    "AutoencoderTrainConfig",
    """The 3DShape2VecSet autoencoder's sizes and training (``vecset.autoencoder``) and ``train.seed``.""",
    *block_fields("vecset.autoencoder"), "seed")

DiffusionTrainConfig = _stage_class(
    "DiffusionTrainConfig",
    """The 3DShape2VecSet latent diffusion's sizes and training (``vecset.diffusion``) and ``train.seed``.""",
    *block_fields("vecset.diffusion"), "seed")


def autoencoder_train_config(cfg) -> AutoencoderTrainConfig:
    """The 3DShape2VecSet autoencoder's settings (``vecset`` must be set)."""
    return _composed(AutoencoderTrainConfig, cfg.vecset.autoencoder, seed=cfg.train.seed)


def diffusion_train_config(cfg) -> DiffusionTrainConfig:
    """The 3DShape2VecSet diffusion model's settings (``vecset`` must be set)."""
    return _composed(DiffusionTrainConfig, cfg.vecset.diffusion, seed=cfg.train.seed)
