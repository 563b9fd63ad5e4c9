"""The networks: a DeepSDF auto-decoder with variational latent codes, and PD generators (paper Sec. 5.2); the
check that the codes cover the prior, and :func:`frozen` for optimizing one network while another is fixed.

Shapes: ``z`` is ``(B, L)`` latent codes, ``x`` ``(B, P, 3)`` query points in ``[-1, 1]^3``; the decoder returns
``(B, P)`` signed distances (negative inside). A PD generator maps ``(B, L)`` codes to ``(B, n_k, 2)`` diagram
points with birth <= death.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Iterator, Mapping

import torch
from torch import nn

from toposdf.config import schema_dataclass

log = logging.getLogger(__name__)


@schema_dataclass("model")
class DecoderConfig:
    """The decoder's shape: the schema's ``model`` block (defaults there: DeepSDF's 8 layers of 512, latent 256,
    ``[z, x]`` re-injected at the middle layer), plus two settings only tests and tools change."""

    latent_size: int
    hidden: int
    n_layers: int
    weight_norm: bool
    softplus_beta: float
    geometric_init: bool
    init_radius: float = 0.5
    output_tanh: bool = True


@schema_dataclass("latent")
class LatentConfig:
    """The latent codes and their prior term (eqs. 9, 11, 15), the schema's ``latent`` block.

    ``prior="set"`` is the paper's ``D_KL({z_i}, N_d)``: one term on the whole set of codes
    (:meth:`LatentCodes.set_kl`). ``prior="per_code"`` is the variational auto-decoder's KL of each code's
    posterior (Zadeh et al.; needs ``variational``). ``variational`` codes carry a log-variance and are sampled
    by reparameterization; ``init_std`` and ``init_logvar`` are the codes' start (means ``N(0, init_std^2)``).
    ``covariance``: ``"full"``, ``"diagonal"`` or ``"auto"`` (full when there are more than twice as many codes
    as dimensions, see :meth:`LatentCodes.set_kl`).
    """

    prior: str
    variational: bool
    init_std: float
    init_logvar: float
    covariance: str

    def __post_init__(self) -> None:
        if self.prior not in ("set", "per_code"):
            raise ValueError(f"latent prior must be set or per_code, got {self.prior!r}")
        if self.prior == "per_code" and not self.variational:
            raise ValueError("the per-code KL needs variational codes (latent.variational: true)")
        if self.covariance not in ("auto", "full", "diagonal"):
            raise ValueError(f"latent covariance must be auto, full or diagonal, got {self.covariance!r}")
        if not self.init_std > 0:
            raise ValueError(f"latent init_std must be > 0, got {self.init_std}")


class SDFDecoder(nn.Module):
    """DeepSDF's MLP ``f(x, z)`` with softplus activations (twice differentiable, for the StEik term).

    Layer ``n_layers // 2`` takes ``[h, z, x]``: the preceding layer is narrowed so its width stays ``hidden``.
    With ``geometric_init`` (IGR), the network starts close to the SDF of a sphere of ``init_radius``.
    """

    def __init__(self, cfg: DecoderConfig = DecoderConfig()) -> None:
        super().__init__()
        if cfg.n_layers < 2:
            raise ValueError(f"n_layers must be >= 2, got {cfg.n_layers}")
        self.cfg = cfg
        d_in = cfg.latent_size + 3
        self.skip = cfg.n_layers // 2
        layers = []
        for i in range(cfg.n_layers):
            fan_in = d_in if i == 0 else cfg.hidden
            if i == self.skip:
                fan_in = cfg.hidden  # (hidden - d_in) from the previous layer plus d_in re-injected
            fan_out = 1 if i == cfg.n_layers - 1 else (cfg.hidden - d_in if i + 1 == self.skip else cfg.hidden)
            linear = nn.Linear(fan_in, fan_out)
            if cfg.geometric_init:
                _geometric_init(linear, last=i == cfg.n_layers - 1, radius=cfg.init_radius, first=i == 0,
                                skip=i == self.skip, d_in=d_in)
            layers.append(nn.utils.parametrizations.weight_norm(linear) if cfg.weight_norm else linear)
        self.layers = nn.ModuleList(layers)
        self.activation = nn.Softplus(beta=cfg.softplus_beta)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``z`` ``(B, L)`` and ``x`` ``(B, P, 3)`` give ``(B, P)`` signed distances."""
        if z.ndim != 2 or x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] != z.shape[0]:
            raise ValueError(f"expected z (B, L) and x (B, P, 3), got {tuple(z.shape)} and {tuple(x.shape)}")
        inputs = torch.cat([z[:, None, :].expand(-1, x.shape[1], -1), x], dim=-1)
        h = inputs
        for i, layer in enumerate(self.layers):
            if i == self.skip:
                h = torch.cat([h, inputs], dim=-1)
                if self.cfg.geometric_init:
                    h = h / math.sqrt(2)
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        out = h[..., 0]
        return torch.tanh(out) if self.cfg.output_tanh else out


def _geometric_init(linear: nn.Linear, *, last: bool, radius: float, first: bool, skip: bool, d_in: int) -> None:
    """IGR/SAL's geometric initialization: the network starts near ``||x|| - radius``.

    The latent inputs start disconnected (zero weights) so every code gives the same sphere.
    """
    out_dim, in_dim = linear.weight.shape
    with torch.no_grad():
        if last:
            nn.init.normal_(linear.weight, mean=math.sqrt(math.pi) / math.sqrt(in_dim), std=1e-5)
            nn.init.constant_(linear.bias, -radius)
            return
        nn.init.normal_(linear.weight, 0.0, math.sqrt(2) / math.sqrt(out_dim))
        nn.init.zeros_(linear.bias)
        if first:
            linear.weight[:, : d_in - 3] = 0.0  # latent part of [z, x]
        if skip:
            linear.weight[:, -d_in : -3] = 0.0  # re-injected latent part


class LatentCodes(nn.Module):
    """The training shapes' latent codes ``(n, L)``: means, and a log-variance each when variational."""

    def __init__(self, n_shapes: int, latent_size: int, cfg: LatentConfig = LatentConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.mu = nn.Parameter(torch.randn(n_shapes, latent_size) * cfg.init_std)
        self.logvar = (nn.Parameter(torch.full((n_shapes, latent_size), float(cfg.init_logvar)))
                       if cfg.variational else None)

    def sample(self, index: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` codes of the shapes ``index``: ``mu_i + exp(logvar_i / 2) * eps`` when variational, else
        ``mu_i``."""
        mu = self.mu[index]
        if self.logvar is None:
            return mu
        return mu + torch.exp(0.5 * self.logvar[index]) * torch.randn_like(mu)

    def _posterior_variance(self) -> torch.Tensor:
        """``(L,)`` mean posterior variance per dimension (0 for deterministic codes)."""
        return self.logvar.exp().mean(dim=0) if self.logvar is not None else self.mu.new_zeros(self.mu.shape[1])

    @torch.no_grad()
    def aggregate_std(self) -> float:
        """The aggregate posterior's standard deviation per latent dimension, averaged over dimensions:
        ``mean_d sqrt(var_i(mu_id) + mean_i exp(logvar_id))``. About 1 when the codes cover ``N(0, I)``, which
        is what sampling from the prior assumes."""
        variance = self.mu.var(dim=0, unbiased=False) + self._posterior_variance()
        return float(variance.sqrt().mean())

    def full_covariance(self) -> bool:
        """Whether :meth:`set_kl` uses the full covariance (see :class:`LatentConfig`)."""
        n, size = self.mu.shape
        return self.cfg.covariance == "full" or (self.cfg.covariance == "auto" and n > 2 * size)

    def set_kl(self, eps: float = 1e-6) -> torch.Tensor:
        """The paper's ``D_KL({z_i}, N_d)``: ``KL(N(m, S) || N(0, I))`` of the codes' moment-matched Gaussian.

        ``m`` is the mean of the code means and ``S`` their (population) covariance plus the mean posterior
        variance on the diagonal when the codes are variational:
        ``KL = (tr S + m^T m - L - log det S) / 2``. With the full covariance (when there are more than ``2 L``
        codes, or ``covariance="full"``) it also penalizes correlated dimensions; with fewer codes the sample
        covariance is singular or nearly so, and the diagonal one is used:
        ``sum_d (s_d + m_d^2 - 1 - log s_d) / 2``. Its gradient pushes each dimension's spread towards 1 from
        either side (it is 0 at 1), so it spreads codes that are narrower than the prior and never shrinks them
        below it. ``eps`` is added to the variances.
        """
        mu = self.mu
        n, size = mu.shape
        mean = mu.mean(dim=0)
        centered = mu - mean
        posterior = self._posterior_variance()
        if self.full_covariance():
            cov = centered.T @ centered / n + torch.diag(posterior + eps)
            return 0.5 * (torch.diagonal(cov).sum() + mean.pow(2).sum() - size - torch.logdet(cov))
        variance = centered.pow(2).mean(dim=0) + posterior + eps
        return 0.5 * (variance + mean.pow(2) - 1.0 - variance.log()).sum()

    def kl(self, index: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of ``KL(N(mu_i, diag(exp(logvar_i))) || N(0, I))`` (the per-code VAD term)."""
        if self.logvar is None:
            raise ValueError("the per-code KL needs variational codes")
        mu, logvar = self.mu[index], self.logvar[index]
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1).mean()

    def prior_loss(self, index: torch.Tensor) -> torch.Tensor:
        """The configured latent prior term: :meth:`set_kl` (every code), or :meth:`kl` of the batch ``index``."""
        return self.set_kl() if self.cfg.prior == "set" else self.kl(index)


# Outside this range of the aggregate posterior std (LatentCodes.aggregate_std), shapes drawn from N(0, I) lie
# mostly outside the codes the decoder was trained on (too narrow), or the codes leave holes in it (too wide).
PRIOR_COVERAGE_RANGE = (0.8, 1.2)


def check_prior_coverage(spread: float, where: str) -> float:
    """Log how well the training codes cover ``N(0, I)`` (``spread``, their :meth:`LatentCodes.aggregate_std`),
    with a warning outside :data:`PRIOR_COVERAGE_RANGE`; returns ``spread``."""
    low, high = PRIOR_COVERAGE_RANGE
    if not low <= spread <= high:
        log.warning("%s: the latent codes cover N(0, I) poorly (aggregate posterior std %.3f, N(0, I) has 1): "
                    "shapes drawn from the prior will not look like training shapes, whatever the method. "
                    "With latent.prior: per_code, use the set-level prior (set) with codes started on N(0, I); with "
                    "set, raise its weight (train.implicit.lambda_kl). A handful of training shapes cannot cover "
                    "N(0, I) (the tiny preset's, for one).", where, spread)
    else:
        log.info("%s: aggregate posterior std of the latent codes %.3f (N(0, I) has 1)", where, spread)
    return spread


def rectify(raw: torch.Tensor, tau: float | None = None) -> torch.Tensor:
    """The rectification layer ``R(x, y) = (x, x + relu(y))``: ``(..., 2)`` to points with birth <= death.

    Points with ``y <= 0`` land on the diagonal: those are the unused slots. With ``tau``, the points are kept
    in the ground truth's range ``[-tau, tau]`` (every diagram of the clamped SDF lies there): the birth is
    clamped to it and the death to ``tau``, so a slot can reach the essential class ``(b, tau)`` exactly.
    """
    birth = raw[..., 0]
    if tau is not None:
        birth = birth.clamp(-tau, tau)
    death = birth + torch.relu(raw[..., 1])
    if tau is not None:
        death = death.clamp(max=tau)
    return torch.stack([birth, death], dim=-1)


class PDGenerator(nn.Module):
    """A point-cloud decoder ``z -> n_points`` diagram points: a shared MLP over ``[z, e_j]`` with a learned
    embedding ``e_j`` per output slot, followed by :func:`rectify` (within ``[-tau, tau]`` when ``tau`` is given).

    With ``essential``, slot 0 is the essential class: its death is ``tau`` and only its birth is learned, so it
    never lands on the diagonal (every PD0 of the clamped SDF has exactly one such point). The birth goes through
    ``tau * tanh(raw / tau)`` instead of the clamp, whose gradient is zero beyond ``±tau``; the tanh's only fades
    (start the slot near the data, as :meth:`PDGenerators.initialize_from` does).
    """

    def __init__(self, latent_size: int, n_points: int, hidden: int = 256, n_layers: int = 3, embed_size: int = 32,
                 tau: float | None = None, essential: bool = False):
        super().__init__()
        if n_points < 1:
            raise ValueError(f"a PD generator needs at least one slot, got n_points={n_points}")
        if essential and tau is None:
            raise ValueError("an essential slot dies at tau: give tau")
        self.n_points, self.tau, self.essential = n_points, tau, essential
        self.embedding = nn.Parameter(torch.randn(n_points, embed_size))
        dims = [latent_size + embed_size] + [hidden] * (n_layers - 1) + [2]
        blocks: list[nn.Module] = []
        for i in range(len(dims) - 1):
            blocks.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                blocks.append(nn.ReLU())
        self.mlp = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` codes to ``(B, n_points, 2)`` points with birth <= death."""
        e = self.embedding[None].expand(z.shape[0], -1, -1)
        h = torch.cat([z[:, None, :].expand(-1, self.n_points, -1), e], dim=-1)
        raw = self.mlp(h)
        points = rectify(raw, self.tau)
        if not self.essential:
            return points
        # a smooth squash instead of the clamp, so that the birth never loses its gradient at -tau or tau
        birth = self.tau * torch.tanh(raw[:, :1, 0] / self.tau)
        first = torch.stack([birth, torch.full_like(birth, self.tau)], dim=-1)
        return torch.cat([first, points[:, 1:]], dim=1)


class PDGenerators(nn.Module):
    """One :class:`PDGenerator` per homology dimension; ``n_points[k]`` is the largest training ``|PD_k|``. With
    ``essential_slot``, PD0's generator keeps its first slot for the essential class (see :class:`PDGenerator`)."""

    def __init__(self, latent_size: int, n_points: tuple[int, int, int], essential_slot: bool = False,
                 **kwargs) -> None:
        super().__init__()
        self.essential_slot = essential_slot
        self.generators = nn.ModuleList(PDGenerator(latent_size, max(1, n), essential=essential_slot and k == 0,
                                                    **kwargs) for k, n in enumerate(n_points))

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        return [g(z) for g in self.generators]

    @classmethod
    def from_state(cls, state: Mapping) -> PDGenerators:
        """The generators saved in a stage-1b ``pdgen.pt`` or stage-2 ``model.pt`` (its ``pd_generators`` weights,
        ``n_points``, ``tau`` and ``essential_slot``), weights loaded. The latent size and hidden width are read
        off the first layer's weights."""
        weights = state["pd_generators"]
        first, embedding = weights["generators.0.mlp.0.weight"], weights["generators.0.embedding"]
        generators = cls(first.shape[1] - embedding.shape[1], tuple(state["n_points"]), hidden=first.shape[0],
                         embed_size=embedding.shape[1], tau=state.get("tau"),
                         essential_slot=bool(state.get("essential_slot", False)))
        generators.load_state_dict(weights)
        return generators

    @torch.no_grad()
    def initialize_from(self, diagrams: list[list], weight_scale: float = 0.1) -> None:
        """Start every slot near the centroid of the training points of its dimension, off the diagonal.

        A slot on the diagonal (``y <= 0`` before :func:`rectify`) gets no gradient through the ``relu``, and an
        optimal matching never pairs a target with a diagonal point, so a slot that falls there early never comes
        back (measured: a small problem stalled at 20% of its initial loss). The last layer's weights are scaled
        down and its bias set to ``(mean birth, mean persistence)``; a dimension without training points starts
        just below the diagonal.
        """
        for k, generator in enumerate(self.generators):
            points = [torch.as_tensor(shape[k], dtype=torch.float32).reshape(-1, 2) for shape in diagrams]
            points = torch.cat(points) if points else torch.zeros(0, 2)
            last = generator.mlp[-1]
            last.weight.mul_(weight_scale)
            if len(points):
                last.bias.copy_(torch.stack([points[:, 0].mean(), (points[:, 1] - points[:, 0]).mean()]))
            else:
                last.bias.copy_(torch.tensor([0.0, -0.05]))


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Turn off ``requires_grad`` of the modules' parameters for one block (None entries are skipped): a step that
    optimizes one block of eqs. 13-15, or a test-time latent fit, computes no gradients for the others (autograd
    still flows *through* them)."""
    params = [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
