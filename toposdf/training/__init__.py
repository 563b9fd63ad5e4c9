"""Training: a Trainer with a ``train_step``, per-epoch CSV logs, atomic checkpoints and exact resume.

Stage 1 of the paper (eq. 11, :mod:`.implicit`): the auto-decoder trained on SDF samples with the latent prior and
the geometric regularizer on synthetic shapes ``f(., z), z ~ N(0, I)``. Stage 1b (eq. 12, :mod:`.pdgen`): the PD
generators fitted to the training diagrams with the latent means fixed, eq. 10's weight first chosen by the held-out
PD-LAP of generators trained on part of the training shapes (:mod:`.smoothness_selection`). Stage 2 (eqs. 13-15,
:mod:`.joint`): rounds of one epoch each for the network, the PD generators and the latent codes, with the
consistency term between the PD generators and the diagrams of synthetic shapes, whose persistence runs in a CPU
pool (:mod:`.pool`) while the network trains.

Modules, each importing only from those listed after it: :mod:`.entry` (the workflow's entry points),
:mod:`.smoothness_selection`, :mod:`.joint`, :mod:`.pdgen`, :mod:`.implicit`, :mod:`.smoothness`, :mod:`.pool`,
:mod:`.base` (the epoch loop, CSV, checkpoints and resume) and :mod:`.configs` (the stages' settings from the
validated configuration). The shards are read with :mod:`toposdf.data`'s loaders.
"""

from toposdf.checkpoints import pick_device
from toposdf.models import PRIOR_COVERAGE_RANGE, check_prior_coverage
from toposdf.training.base import Trainer, TrainingDiverged, TrainingInterrupted
from toposdf.training.configs import (ImplicitTrainConfig, JointTrainConfig, PDGeneratorTrainConfig,
                                      implicit_train_config, joint_train_config, pdgen_train_config)
from toposdf.training.entry import joint_train, new_pd_generators, pretrain_implicit, pretrain_pdgen
from toposdf.training.implicit import ImplicitTrainer
from toposdf.training.joint import JointTrainer
from toposdf.training.pdgen import PDGeneratorTrainer, generator_sizes
from toposdf.training.pool import SyntheticDiagrams
from toposdf.training.smoothness_selection import choose_candidate, holdout_split, select_smoothness
from toposdf.training.smoothness import calibrated_smoothness_weight

__all__ = [
    "PRIOR_COVERAGE_RANGE", "ImplicitTrainConfig", "ImplicitTrainer", "JointTrainConfig", "JointTrainer",
    "PDGeneratorTrainConfig", "PDGeneratorTrainer", "SyntheticDiagrams", "Trainer", "TrainingDiverged", "TrainingInterrupted",
    "calibrated_smoothness_weight", "check_prior_coverage", "choose_candidate", "generator_sizes",
    "holdout_split", "implicit_train_config", "joint_train", "joint_train_config", "new_pd_generators",
    "pdgen_train_config", "pick_device", "pretrain_implicit", "pretrain_pdgen", "select_smoothness",
]
