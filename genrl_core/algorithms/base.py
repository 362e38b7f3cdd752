"""The interface every algorithm implements, and the checkpoint plumbing they share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genrl_core.algorithms.config import doc
from genrl_core.algorithms.critics import CriticConfig, IQLCritic, warm_start
from genrl_core.generative.fast_sampling import fast_sample
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.networks import make_backbone
from genrl_core.generative.paths import make_path


class Agent(nn.Module):
    """An offline-RL algorithm: `update(batch, step)` trains, `act(obs)` picks actions.

    Subclasses keep their optimisers as attributes (any torch.optim.Optimizer attribute, also inside
    sub-modules such as a critic, is checkpointed). `update` returns detached loss tensors and
    never reads values back to the host.
    """

    policy_start: int = 0  # first step of the policy phase; > 0 for agents that first train a critic or behaviour

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One training step on `batch` (global step `step`); returns its losses and statistics, detached."""
        raise NotImplementedError

    def batch_size(self, step: int, default: int) -> int:
        """The minibatch size the trainers draw for `step` (the run's batch size unless a phase has its own)."""
        return default

    def start_phases(self, policy_start: int) -> None:
        """For agents that train a critic or a behaviour model mu first (Algorithms 1 and 3): declare the policy
        phase's first step. The flag `policy_started` is a buffer (checkpointed, packed with the seeds)."""
        self.policy_start = policy_start
        self.register_buffer("policy_started", torch.tensor(policy_start <= 0))

    def track_phase(self, step: int) -> None:
        """Record, without a host sync, whether `step` is in the policy phase (call it in update)."""
        if self.policy_start > 0:
            self.policy_started.fill_(step >= self.policy_start)

    def phase(self) -> str:
        """The training phase reached: "policy" once the policy trains; before that "behaviour" where the agent
        trains a behaviour model mu (which then acts), else "critic"."""
        flag = getattr(self, "policy_started", None)  # agents without phases have no flag
        if flag is None or bool(flag):
            return "policy"
        return "behaviour" if isinstance(getattr(self, "behaviour", None), GenerativeModel) else "critic"

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions [B, act_dim] for observations [B, obs_dim]."""
        raise NotImplementedError

    def bind_data(self, data: Any, seed: int) -> None:
        """The dataset this agent's batches come from (their "index" key), and the run's seed; the trainers call it
        once. Most agents need neither; SfBC and QGPO draw their behaviour candidates per dataset state from it."""

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        found = {}
        for mod_name, mod in self.named_modules():
            for attr, value in vars(mod).items():
                if isinstance(value, torch.optim.Optimizer):
                    found[f"{mod_name}.{attr}" if mod_name else attr] = value
        return found

    def full_state(self) -> dict[str, Any]:
        """Parameters, buffers and optimiser states, loadable with torch.load(weights_only=True)."""
        return {"model": self.state_dict(),
                "optim": {k: opt.state_dict() for k, opt in self._optimizers().items()}}

    def load_full_state(self, state: dict[str, Any]) -> None:
        """Restore what full_state() returned."""
        self.load_state_dict(state["model"])
        for k, opt in self._optimizers().items():
            opt.load_state_dict(state["optim"][k])


@dataclass
class PolicyConfig:
    """Fields shared by every algorithm whose policy is a GenerativeModel (subclassed per algorithm)."""

    path: str = doc("icfm", "probability path: vpsde, gvp, linear or icfm")
    icfm_sigma: float = doc(0.1, "I-CFM's constant noise level sigma (the GMPO/GMPG authors' 0.1); other paths ignore "
                                 "it")
    prediction: str = doc("velocity", "what the network predicts: eps, score, velocity or x0")
    backbone: str = doc("resunet", "generative backbone: resunet (512-256-128 residual U-Net) or mlp")
    widths: tuple[int, ...] = doc((512, 256, 128), "backbone widths (U-Net down path, or MLP hidden layers)")
    t_min: float = doc(1e-3, "smallest diffusion / flow time used in training and sampling")
    weighting: str = doc("vanilla", "score-matching weight for eps/score models: vanilla (sigma^2) or mle (g^2)")
    lr: float = doc(1e-4, "Adam learning rate of the policy (paper Table 7)")
    solver: str = doc("euler", "solver used to act: euler, midpoint, rk4, dpm2, dopri5")
    sampling_steps: int = doc(32, "solver steps used to act (paper Table 7: 32)")
    loglik_steps: int = doc(32, "Euler steps of the exact-trace log-likelihood reported at evaluation")


def make_policy(cfg: PolicyConfig, obs_dim: int, act_dim: int) -> GenerativeModel:
    """The generative policy pi(a | s) described by cfg."""
    key = "widths" if cfg.backbone == "resunet" else "hidden"
    net = make_backbone(cfg.backbone, act_dim, obs_dim, **{key: tuple(cfg.widths)})
    path = make_path(cfg.path, **({"sigma_min": cfg.icfm_sigma} if cfg.path == "icfm" else {}))
    return GenerativeModel(path, net, cfg.prediction, t_min=cfg.t_min, weighting=cfg.weighting)


class GenerativeAgent(Agent):
    """An agent whose acting policy is `self.policy`, a GenerativeModel conditioned on the state.

    Until the policy phase starts (Agent.start_phases), act() and log_likelihood() use what the agent has: mu where
    it trains one (the policy is still untrained)."""

    cfg: PolicyConfig
    policy: GenerativeModel

    def acting_model(self) -> GenerativeModel:
        """pi once the policy phase has started; before that mu where the agent trains one, else the policy."""
        if self.phase() == "behaviour":
            return self.behaviour
        return self.policy

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions sampled by the configured solver: the fast sampler where it applies (same samples), else plain."""
        return fast_sample(self.acting_model(), obs, solver=self.cfg.solver, steps=self.cfg.sampling_steps)

    def log_likelihood(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) of given pairs (the paper's Figure 1 metric; mu's before the policy phase), exact trace."""
        return self.acting_model().log_prob(action, obs, solver="euler", steps=self.cfg.loglik_steps, trace="exact")


@dataclass
class IQLPolicyConfig(CriticConfig, PolicyConfig):
    """PolicyConfig plus the IQL critic (paper Eq. 32, Table 7)."""

    expectile: float = doc(0.7, "IQL expectile of V: 0.7 locomotion, 0.9 AntMaze")
    critic_steps: int = doc(0, "IQL steps before policy training starts (Algorithm 1's first loop)")
    critic_alongside: bool = doc(True, "keep training the critic while the policy trains (False: fixed, "
                                       "Algorithms 1, 3)")


def make_iql(cfg: IQLPolicyConfig, obs_dim: int, act_dim: int) -> IQLCritic:
    """The IQL critic described by cfg."""
    critic = IQLCritic(obs_dim, act_dim, cfg, cfg.expectile)
    if cfg.critic_init:
        warm_start(cfg.critic_init, critic, critic.v)
    return critic


def critic_due(cfg: IQLPolicyConfig, step: int) -> bool:
    """Whether the critic trains at this step: always before critic_steps, after that if critic_alongside."""
    return step < cfg.critic_steps or cfg.critic_alongside


WEIGHT_NORMS = ("clamp", "batch")


def advantage_weights(adv: torch.Tensor, beta: float, max_weight: float,
                      norm: str = "clamp") -> tuple[torch.Tensor, torch.Tensor]:
    """Weights exp(beta * A) and the fraction of them clamped.

    norm="clamp": exp(beta A) clamped at max_weight (the paper's choice). norm="batch": exp(beta A) / Z with Z the
    batch mean (a self-normalised estimate of Z, computed stably; nothing is clamped), which keeps the
    exponential tilt intact at large beta.
    """
    if norm == "batch":
        return torch.softmax(beta * adv, dim=0) * adv.shape[0], torch.zeros((), device=adv.device)
    if norm != "clamp":
        raise ValueError(f"unknown weight normalisation {norm!r}; valid: {list(WEIGHT_NORMS)}")
    w = torch.exp(beta * adv)
    return w.clamp(max=max_weight), (w > max_weight).float().mean()
