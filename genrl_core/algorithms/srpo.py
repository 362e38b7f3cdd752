"""SRPO (Chen et al. 2024; paper Appendix C.4, Eq. 35, Table 2): score-regularised policy optimisation.

A behaviour diffusion model is pretrained by matching (Eq. 2) and an IQL critic trains alongside (Eq. 32). Then an
MLP policy (deterministic, as SRPO's Dirac policy, or Gaussian) is trained on -beta Q(s, a) plus the score
regulariser: its gradient is w(t) (eps_mu(a_t, t | s) - eps) da/dpsi, with a_t = alpha_t a + sigma_t eps, a
score-distillation estimate of grad KL(pi || mu). Acting is one network call per action.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genrl_core.algorithms.base import Agent, IQLPolicyConfig, critic_due, make_iql, make_policy
from genrl_core.generative.fast_sampling import fast_sample
from genrl_core.algorithms.config import check_choice, check_min, doc, with_defaults
from genrl_core.algorithms.in_support import matching_step
from genrl_core.generative.networks import mlp
from genrl_core.generative.paths import make_path

ACTORS = ("deterministic", "gaussian")
SQUASHES = ("tanh", "clip")
REG_WEIGHTS = ("sigma2", "uniform", "snr")


@dataclass
@with_defaults(path=doc("vpsde", "behaviour model's path: SRPO uses VPSDE (paper Table 3)"),
               prediction=doc("eps", "behaviour network's output (SRPO: a noise-prediction score model)"))
class SRPOConfig(IQLPolicyConfig):
    """SRPO: behaviour model and IQL critic (IQLPolicyConfig), then the regularised MLP policy of Eq. 35."""

    behaviour_steps: int = doc(1000, "matching steps of the behaviour model before the policy trains (it is then "
                                     "frozen)")
    beta: float = doc(1.0, "weight of Q in -beta Q + regulariser (Eq. 35), Q divided by its batch mean |Q| if q_norm")
    q_norm: bool = doc(True, "divide Q by the detached batch mean |Q| (scale-free beta; a choice, as Diffusion-QL "
                             "does)")
    actor: str = doc("deterministic", "deterministic (SRPO's Dirac policy) or gaussian (mean and state-dependent std)")
    squash: str = doc("tanh", "how actions are bounded to [-max_action, max_action]: tanh or clip")
    max_action: float = doc(1.0, "action bound")
    actor_hidden: tuple[int, ...] = doc((256, 256), "hidden widths of the policy MLP")
    actor_lr: float = doc(3e-4, "Adam learning rate of the policy (SRPO: 3e-4)")
    reg_weight: str = doc("sigma2", "w(t) multiplying eps_mu - eps: sigma2 (sigma_t^2, SRPO's), uniform, snr "
                                    "(alpha/sigma)")
    reg_t_min: float = doc(0.02, "smallest diffusion time of the regulariser (SRPO: t ~ U[0.02, 0.98])")
    reg_t_max: float = doc(0.98, "largest diffusion time of the regulariser")

    def __post_init__(self) -> None:
        for name, valid in (("actor", ACTORS), ("squash", SQUASHES), ("reg_weight", REG_WEIGHTS)):
            check_choice("SRPO", name, getattr(self, name), valid)
        if not make_path(self.path).is_diffusion:
            raise ValueError(f"SRPO needs a diffusion path (vpsde or gvp), got {self.path!r}: its regulariser is the "
                             "behaviour's score, which flow models do not give (paper Appendix C.4)")
        check_min("SRPO", "beta", self.beta, 0.0)
        if not 0.0 < self.reg_t_min < self.reg_t_max <= 1.0:
            raise ValueError(f"SRPO: need 0 < reg_t_min < reg_t_max <= 1, got {self.reg_t_min}, {self.reg_t_max}")

class SquashedActor(nn.Module):
    """a = squash(mu(s) [+ std(s) z]): an MLP giving a mean (and a log-std for the Gaussian policy)."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: SRPOConfig):
        super().__init__()
        self.gaussian, self.tanh, self.max_action = cfg.actor == "gaussian", cfg.squash == "tanh", cfg.max_action
        self.net = mlp([obs_dim, *cfg.actor_hidden, act_dim * (2 if self.gaussian else 1)], act=nn.ReLU)

    def forward(self, obs: torch.Tensor, sample: bool = True) -> torch.Tensor:
        out = self.net(obs)
        if self.gaussian:
            mean, log_std = out.chunk(2, dim=-1)
            out = mean + log_std.clamp(-5.0, 2.0).exp() * torch.randn_like(mean) if sample else mean
        if self.tanh:
            return self.max_action * torch.tanh(out)
        return out.clamp(-self.max_action, self.max_action)


class SRPO(Agent):
    """Behaviour model + IQL critic + an MLP policy regularised by the behaviour's score."""

    config_class = SRPOConfig

    def __init__(self, cfg: SRPOConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg = cfg
        self.behaviour = make_policy(cfg, obs_dim, act_dim)
        self.behaviour_opt = torch.optim.Adam(self.behaviour.parameters(), lr=cfg.lr)
        self.critic = make_iql(cfg, obs_dim, act_dim)
        self.actor = SquashedActor(obs_dim, act_dim, cfg)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.start_phases(cfg.behaviour_steps)

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        self.track_phase(step)
        out = self.critic.update(batch) if critic_due(self.cfg, step) else {}
        if step < self.cfg.behaviour_steps:
            out["behaviour_loss"] = matching_step(self.behaviour, self.behaviour_opt, batch)
            return out
        parts = self.policy_loss(batch["obs"])
        self.actor_opt.zero_grad(set_to_none=True)
        parts["policy_loss"].backward()
        self.actor_opt.step()
        out.update({k: v.detach() for k, v in parts.items()})
        return out

    def reg_weight(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) of the score regulariser."""
        path = self.behaviour.path
        if self.cfg.reg_weight == "sigma2":
            return path.sigma(t).pow(2)
        if self.cfg.reg_weight == "snr":
            return path.alpha(t) / path.sigma(t)
        return torch.ones_like(t)

    def policy_loss(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 35 as a surrogate: -beta Q(s, pi(s)) / scale + sum_d sg(w(t) (eps_mu(a_t, t) - eps)) * a."""
        c = self.cfg
        act = self.actor(obs)
        q = self.critic.q_value(obs, act)
        scale = q.abs().mean().detach().clamp_min(1e-6) if c.q_norm else 1.0
        t = c.reg_t_min + (c.reg_t_max - c.reg_t_min) * torch.rand(obs.shape[0], device=obs.device)
        with torch.no_grad():
            act_t, eps, _ = self.behaviour.path.sample_xt(act.detach(), t)
            guide = self.reg_weight(t).unsqueeze(-1) * (self.behaviour.eps(act_t, t, obs) - eps)
        reg = (guide * act).sum(-1).mean()
        return {"policy_loss": -c.beta * q.mean() / scale + reg, "q_policy": q.mean(),
                "reg_grad_norm": guide.norm(dim=-1).mean()}

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action, or the Gaussian policy's squashed mean; mu's sample before the actor trains."""
        if self.phase() == "behaviour":
            return fast_sample(self.behaviour, obs, solver=self.cfg.solver, steps=self.cfg.sampling_steps)
        return self.actor(obs, sample=False)
