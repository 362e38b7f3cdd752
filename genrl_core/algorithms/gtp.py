"""GTP: Generative Trajectory Policies (arXiv 2510.11499): a flow-map actor trained by surrogate-score consistency.

Actor loss = E[w (||Phi(s, a_t, t, tau) - sg Phi_ema(s, a + u z, u, tau)||^2 + lambda_flow ||a - phi(s, a_t, t, t)||^2)]
with w = exp(eta max(0, A) / (std(A) + eps)) clamped at w_max (eta = 0 is GTP-BC), t > u > tau drawn on a Karras grid
whose size doubles 10 -> 1280 over training, and a double-Q TD critic whose target action comes from the EMA actor.
Ablations of the paper's Table 3: teacher="ode" (Euler steps of the EMA model's own velocity from t to u instead of
the surrogate point) and q_term="linear" (- lambda_q Q(s, a_pi) added to the loss instead of the exp weight).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genrl_core.algorithms.config import doc, with_defaults
from genrl_core.algorithms.base import Agent
from genrl_core.common import ema_update, frozen_copy
from genrl_core.algorithms.critics import CriticConfig, TDCritic, expectile_loss, warm_start
from genrl_core.generative.flow_map import FlowMap, karras_grid
from genrl_core.generative.networks import VNet

TEACHERS = ("surrogate", "ode")
Q_TERMS = ("exp", "linear")
V_SOURCES = ("policy", "expectile")
FLOW_WEIGHTS = ("edm", "uniform")


@dataclass
@with_defaults(critic_lr=doc(3e-4, "Adam learning rate of the critic and V; 0 freezes them (their steps are skipped)"),
               critic_init=doc("", "pretrained IQL critic file whose Q (and V) warm-start the TD critic (a "
                                   "choice); \"\" = none"))
class GTPConfig(CriticConfig):
    """GTP's fields; 'a choice' marks what the paper leaves open (defaults from EDM / iCT / consistency policies)."""

    eta: float = doc(1.0, "advantage temperature of w = exp(eta max(0, A) / std(A)); 0 = GTP-BC")
    w_max: float = doc(100.0, "clamp on the advantage weight (a choice; the paper gives none)")
    adv_eps: float = doc(1e-6, "eps in the weight's std(A) + eps")
    q_term: str = doc("exp", "\"exp\": advantage weight; \"linear\": ablation, - lambda_q Q(s, a_pi) added, w = 1")
    lambda_q: float = doc(0.01, "coefficient of the linear Q term (paper: 0.01 works, 0.1 / 1.0 diverge)")
    teacher: str = doc("surrogate", "\"surrogate\": teacher at a + u z; \"ode\": ablation, EMA-velocity Euler steps t -> u")
    ode_steps: int = doc(2, "Euler steps of the ODE teacher (paper: <= 3)")
    lambda_flow: float = doc(0.05, "weight of the flow (denoising) loss (a choice; not given in the paper)")
    flow_weight: str = doc("edm", "per-t weight of the flow loss (a choice): \"edm\" (t^2 + sd^2) / (t sd)^2, \"uniform\"")
    v_source: str = doc("expectile", "how V(s) is formed (a choice): \"expectile\" V net on Q, \"policy\" mean Q of EMA "
                                     "actor")
    v_samples: int = doc(4, "EMA-actor samples per state for v_source=\"policy\"")
    expectile: float = doc(0.7, "expectile of the V net for v_source=\"expectile\"")
    t_min: float = doc(0.002, "smallest noise level (a choice: EDM / consistency-policy default)")
    t_max: float = doc(80.0, "largest noise level T (a choice: EDM / consistency-policy default)")
    sigma_data: float = doc(0.5, "action std assumed by the EDM preconditioning (a choice)")
    precond: bool = doc(True, "EDM c_skip / c_out preconditioning of phi (a choice; not confirmed in the paper)")
    rho: float = doc(7.0, "Karras grid exponent, training and sampling")
    n_start: int = doc(10, "initial number of discretisation intervals")
    n_end: int = doc(1280, "final number of discretisation intervals (doubling from n_start)")
    schedule_steps: int = doc(1_000_000, "training steps over which the discretisation grows (set to the run length)")
    p_mean: float = doc(-1.1, "mean of the log-normal time sampling (log t)")
    p_std: float = doc(2.0, "std of the log-normal time sampling (log t)")
    sampling_steps: int = doc(5, "K, flow-map jumps per action in act() and for critic targets (paper: 5; 2 nearly as "
                                 "good)")
    backbone: str = doc("mlp", "phi network: \"mlp\" or \"resunet\" (a choice)")
    hidden: tuple[int, ...] = doc((256, 256, 256), "hidden widths of the \"mlp\" backbone")
    time_freq: float = doc(1.0, "std of the Fourier frequencies of t and tau over the log-time range (a choice)")
    actor_lr: float = doc(3e-4, "Adam learning rate of the flow map")
    ema_tau: float = doc(0.005, "Polyak rate of the EMA actor (teacher, critic target actor, acting)")
    act_with_ema: bool = doc(True, "act() samples from the EMA actor (else the online one)")
    max_action: float = doc(1.0, "actions are clipped to [-max_action, max_action] in act() and critic targets")

    def __post_init__(self) -> None:
        for name, value, valid in (("teacher", self.teacher, TEACHERS), ("q_term", self.q_term, Q_TERMS),
                                   ("v_source", self.v_source, V_SOURCES),
                                   ("flow_weight", self.flow_weight, FLOW_WEIGHTS)):
            if value not in valid:
                raise ValueError(f"GTPConfig: unknown {name} {value!r}; valid: {list(valid)}")
        for name in ("sampling_steps", "ode_steps", "v_samples", "n_start", "n_end", "schedule_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"GTPConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.n_end < self.n_start:
            raise ValueError(f"GTPConfig: n_end ({self.n_end}) must be >= n_start ({self.n_start})")


def discretisation(step: int, cfg: GTPConfig) -> int:
    """Number of grid intervals at a step: n_start doubling in equal stages up to n_end over schedule_steps."""
    stages = int(math.log2(cfg.n_end / cfg.n_start)) + 1
    per_stage = max(1, cfg.schedule_steps // stages)
    return min(cfg.n_start * 2 ** (step // per_stage), cfg.n_end)


def sample_times(n: int, batch: int, cfg: GTPConfig, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(t, u, tau) per sample: adjacent Karras points u < t chosen log-normally, tau uniform on the grid <= u."""
    grid = karras_grid(n, cfg.t_min, cfg.t_max, cfg.rho, device=device, descending=False)
    cdf = torch.erf((grid.log() - cfg.p_mean) / (math.sqrt(2.0) * cfg.p_std))
    idx = torch.multinomial(cdf[1:] - cdf[:-1] + 1e-12, batch, replacement=True)
    tau_idx = (torch.rand(batch, device=device) * (idx + 1)).long().clamp_max(idx)
    return grid[idx + 1], grid[idx], grid[tau_idx]


def advantage_weight(adv: torch.Tensor, eta: float, w_max: float, eps: float = 1e-6) -> torch.Tensor:
    """w = exp(eta max(0, A) / (std(A) + eps)), clamped at w_max."""
    scaled = eta * adv.clamp_min(0.0) / (adv.std() + eps)
    return scaled.clamp_max(math.log(w_max)).exp()


class GTP(Agent):
    """Flow-map actor + EMA teacher + double-Q TD critic (+ optional expectile V net)."""

    config_class = GTPConfig

    def __init__(self, cfg: GTPConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg = cfg
        self.actor = FlowMap(obs_dim, act_dim, cfg.backbone, cfg.hidden, cfg.t_min, cfg.t_max, cfg.sigma_data,
                             cfg.precond, time_freq=cfg.time_freq)
        self.ema = frozen_copy(self.actor)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        # GTP-BC (eta = 0 with the exp weight) has no critic: it could not affect the actor
        self.uses_critic = cfg.q_term == "linear" or cfg.eta != 0.0
        self.critic = TDCritic(obs_dim, act_dim, cfg) if self.uses_critic else None
        self.v = VNet(obs_dim, tuple(cfg.critic_hidden)) if self.uses_critic and cfg.v_source == "expectile" else None
        self.v_opt = torch.optim.Adam(self.v.parameters(), lr=cfg.critic_lr) if self.v is not None else None
        if cfg.critic_init and self.uses_critic:
            warm_start(cfg.critic_init, self.critic, self.v)

    def _ema_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """Clipped K-step samples from the EMA actor."""
        return self.ema.sample(obs, self.cfg.sampling_steps, rho=self.cfg.rho).clamp(-self.cfg.max_action,
                                                                                     self.cfg.max_action)

    def _value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) by the configured choice (no gradient)."""
        if self.v is not None:
            return self.v(obs)
        rep = obs.repeat(self.cfg.v_samples, 1)
        return self.critic.q_value(rep, self._ema_actions(rep)).reshape(self.cfg.v_samples, -1).mean(0)

    def _update_v(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """One expectile-regression step of the V net on the target min-Q."""
        with torch.no_grad():
            q = self.critic.q_value(obs, act, target=True)
        loss = expectile_loss(q - self.v(obs), self.cfg.expectile).mean()
        self.v_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.v_opt.step()
        return loss.detach()

    @torch.no_grad()
    def _weights(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Per-sample actor-loss weights: the advantage weight, or ones."""
        if self.cfg.q_term == "linear" or self.cfg.eta == 0.0:
            return torch.ones(obs.shape[0], device=obs.device)
        adv = self.critic.q_value(obs, act) - self._value(obs)
        return advantage_weight(adv, self.cfg.eta, self.cfg.w_max, self.cfg.adv_eps)

    @torch.no_grad()
    def _teacher(self, obs: torch.Tensor, act: torch.Tensor, a_t: torch.Tensor, z: torch.Tensor, t: torch.Tensor,
                 u: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """sg Phi_ema(s, a_u, u, tau), a_u the surrogate point a + u z or EMA-velocity Euler steps from a_t."""
        if self.cfg.teacher == "surrogate":
            a_u = self.ema.noisy(act, u, z)
        else:
            a_u, h = a_t, (u - t) / self.cfg.ode_steps
            for k in range(self.cfg.ode_steps):
                a_u = a_u + h.reshape(-1, 1) * self.ema.velocity(obs, a_u, t + k * h)
        return self.ema(obs, a_u, u, tau)

    def _flow_weight(self, t: torch.Tensor) -> torch.Tensor:
        """Per-sample weight of the denoising error: EDM's 1 / c_out(t)^2, or ones."""
        if self.cfg.flow_weight == "uniform":
            return torch.ones_like(t)
        sd2 = self.cfg.sigma_data ** 2
        return (t.pow(2) + sd2) / (t.pow(2) * sd2)

    def actor_loss(self, obs: torch.Tensor, act: torch.Tensor, w: torch.Tensor,
                   step: int) -> dict[str, torch.Tensor]:
        """Weighted consistency + flow losses (and the linear Q term if chosen); 'loss' is the total."""
        batch = obs.shape[0]
        t, u, tau = sample_times(discretisation(step, self.cfg), batch, self.cfg, obs.device)
        z = torch.randn_like(act)
        a_t = self.actor.noisy(act, t, z)
        target = self._teacher(obs, act, a_t, z, t, u, tau)
        # one backbone pass for phi(a_t, t, tau) and phi(a_t, t, t)
        phi = self.actor.phi(obs.repeat(2, 1), a_t.repeat(2, 1), t.repeat(2), torch.cat([tau, t]))
        ratio = (tau / t).reshape(-1, 1)
        student = (1.0 - ratio) * phi[:batch] + ratio * a_t
        cons = (w * (student - target).pow(2).mean(-1)).mean()
        flow = (w * self._flow_weight(t) * (phi[batch:] - act).pow(2).mean(-1)).mean()
        out = {"cons_loss": cons, "flow_loss": flow, "loss": cons + self.cfg.lambda_flow * flow}
        if self.cfg.q_term == "linear":
            a_pi = self.actor.sample(obs, self.cfg.sampling_steps, rho=self.cfg.rho)
            q_pi = self.critic.q_value(obs, a_pi.clamp(-self.cfg.max_action, self.cfg.max_action)).mean()
            out["q_pi"] = q_pi
            out["loss"] = out["loss"] - self.cfg.lambda_q * q_pi
        return out

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Critic step (unless GTP-BC or frozen), V step (if a V net), actor step, EMA; detached metrics."""
        obs, act = batch["obs"], batch["action"]
        metrics: dict[str, torch.Tensor] = {}
        if self.uses_critic and self.cfg.critic_lr > 0:  # a frozen critic (lr 0, e.g. from critic_init) costs nothing
            metrics.update(self.critic.update(batch, self._ema_actions))
            if self.v is not None:
                metrics["v_loss"] = self._update_v(obs, act)
        w = self._weights(obs, act)
        losses = self.actor_loss(obs, act, w, step)
        self.actor_opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.actor_opt.step()
        ema_update(self.ema, self.actor, self.cfg.ema_tau)
        metrics.update({k: v.detach() for k, v in losses.items() if k != "loss"})
        metrics["actor_loss"], metrics["w_mean"], metrics["w_max"] = losses["loss"].detach(), w.mean(), w.max()
        return metrics

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """K = sampling_steps flow-map jumps from noise, clipped to the action bounds."""
        model = self.ema if self.cfg.act_with_ema else self.actor
        return model.sample(obs, self.cfg.sampling_steps, rho=self.cfg.rho).clamp(-self.cfg.max_action,
                                                                                  self.cfg.max_action)
