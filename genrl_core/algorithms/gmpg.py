"""GMPG (paper Sec. 4.3, Eqs. 8 and 42, Algorithm 3): policy gradient through the flow's own likelihood.

As Algorithm 3 and the authors' code run it (the default): mu and the IQL critic train first (behaviour_steps,
critic_steps), then pi starts as a copy of mu and trains with mu and the critic fixed; until then act() uses mu.
The authors' code divides log pi and log mu by action_dim * ln 2 (bits per dimension) in the loss, and Table 8's
GMPG betas are on that scale: log_ratio_scale="bits" (default). "nats" is Eq. 8 as printed; the two are the same
objective with beta_nats = beta_bits * action_dim * ln 2, the loss divided by that factor (Adam undoes it).
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from typing import ClassVar

import torch

from genrl_core.algorithms.config import doc, with_defaults
from genrl_core.algorithms.base import (GenerativeAgent, IQLPolicyConfig, advantage_weights, critic_due, make_iql,
                                        make_policy)


@dataclass
@with_defaults(critic_steps=doc(1000, "IQL steps before policy training (run alongside behaviour pretraining)"),
               critic_alongside=doc(False, "False: the critic is fixed in the policy phase (Algorithm 3); "
                                           "True: trained on"))
class GMPGConfig(IQLPolicyConfig):
    """GMPG: behaviour pretraining, IQL critic, then the reverse-KL policy gradient of Eq. 8."""

    beta: float = doc(4.0, "weight of Q in -beta Q + log pi - log mu (paper Table 8 gives per-task values)")
    behaviour_steps: int = doc(1000, "flow-matching steps of mu before pi = copy(mu) starts training")
    policy_batch_size: int = doc(0, "minibatch of the policy phase (authors: 40960); 0: the run's batch size")
    behaviour_lr: float = doc(1e-4, "Adam learning rate of mu's pretraining (lr is the policy-gradient rate)")
    log_ratio_scale: str = doc("bits", "bits: log pi - log mu divided by action_dim ln 2 (the authors' code, Table 8's "
                                       "betas); nats: Eq. 8 as printed")
    train_steps: int = doc(32, "solver steps T of the sampled action and its log-likelihoods in training")
    train_solver: str = doc("euler", "fixed-step solver used in training")
    trace: str = doc("hutchinson", "divergence estimator in training: exact or hutchinson (Eq. 45)")
    grad_checkpoint: bool = doc(False, "recompute solver steps in backward: bounded memory at large T")
    static: bool = doc(False, "Eq. 42: importance-weighted gradient on dataset actions instead of sampling pi")
    max_weight: float = doc(100.0, "clamp of exp(beta A) in the static variant")
    max_action: float = doc(0.0, "> 0: Eq. 8 scores Q(s, clip(a)), as the environment clips, so Q's extrapolation past "
                                 "the action bound is not followed (a choice, not the paper's; 0: Q(s, a) as in Eq. 8)")

    # read only by the policy phase and held in no state: trials that differ only here share the critic + mu stage
    POLICY_ONLY: ClassVar[frozenset[str]] = frozenset({"beta", "log_ratio_scale", "max_action", "static",
                                                       "max_weight", "policy_batch_size", "train_steps",
                                                       "train_solver", "trace", "grad_checkpoint"})

    def __post_init__(self) -> None:
        if self.prediction != "velocity":
            raise ValueError(f"GMPG needs a velocity model (prediction='velocity'), got {self.prediction!r}: "
                             "eps/score outputs make the likelihood gradient unstable (paper Appendix C.7)")
        if self.beta < 0 or self.max_action < 0:
            raise ValueError(f"beta and max_action must be >= 0, got {self.beta} and {self.max_action}")
        if self.policy_batch_size < 0:
            raise ValueError(f"policy_batch_size must be >= 0 (0: the run's batch size), got {self.policy_batch_size}")
        if self.log_ratio_scale not in LOG_RATIO_SCALES:
            raise ValueError(f"unknown log_ratio_scale {self.log_ratio_scale!r}; valid: {list(LOG_RATIO_SCALES)}")

LOG_RATIO_SCALES = ("bits", "nats")


class GMPG(GenerativeAgent):
    """Generative Model Policy Gradient; velocity models only (paper Appendix C.7)."""

    config_class = GMPGConfig

    def __init__(self, cfg: GMPGConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg = cfg
        self.behaviour = make_policy(cfg, obs_dim, act_dim)
        self.behaviour_opt = torch.optim.Adam(self.behaviour.parameters(), lr=cfg.behaviour_lr)
        self.policy = make_policy(cfg, obs_dim, act_dim)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
        self.policy.grad_checkpoint = self.behaviour.grad_checkpoint = cfg.grad_checkpoint
        self.critic = make_iql(cfg, obs_dim, act_dim)
        self.start_phases(max(cfg.behaviour_steps, cfg.critic_steps))
        # nats per unit of the loss's log-ratio: action_dim * ln 2 on the bits-per-dimension scale
        self.log_scale = act_dim * math.log(2.0) if cfg.log_ratio_scale == "bits" else 1.0

    def batch_size(self, step: int, default: int) -> int:
        """policy_batch_size in the policy phase when set, else the run's."""
        return self.cfg.policy_batch_size if step >= self.policy_start and self.cfg.policy_batch_size else default

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        self.track_phase(step)
        out = self.critic.update(batch) if critic_due(self.cfg, step) else {}
        if step < self.cfg.behaviour_steps:
            loss = self.behaviour.loss(batch["action"], batch["obs"]).mean()
            self.behaviour_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.behaviour_opt.step()
            out["behaviour_loss"] = loss.detach()
        if step == self.policy_start:  # pi starts as a copy of the pretrained mu; mu is frozen from here on
            self.policy.load_state_dict(self.behaviour.state_dict())
        if step >= self.policy_start:
            self.behaviour.requires_grad_(False)
            parts = self._static_loss(batch) if self.cfg.static else self._kl_loss(batch)
            self.opt.zero_grad(set_to_none=True)
            parts["policy_loss"].backward()
            self.opt.step()
            out.update({k: v.detach() for k, v in parts.items()})
        return out

    def _kl_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 8: E_{a ~ pi}[-beta Q + log pi - log mu]; log pi along the sample's own path (two ODE passes)."""
        obs, c = batch["obs"], self.cfg
        act, log_pi = self.policy.sample_with_log_prob(obs, solver=c.train_solver, steps=c.train_steps,
                                                       trace=c.trace, with_grad=True)
        log_mu = self.behaviour.log_prob(act, obs, solver=c.train_solver, steps=c.train_steps, trace=c.trace,
                                         with_grad=True)
        q = self.critic.q_value(obs, act.clamp(-c.max_action, c.max_action) if c.max_action > 0 else act)
        kl = (log_pi - log_mu).mean()
        return {"policy_loss": -c.beta * q.mean() + kl / self.log_scale, "q_policy": q.mean(), "kl": kl}

    def _static_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 42: dataset actions a ~ mu, weights exp(beta A), surrogate w * sg(-beta A + log pi - log mu) * log pi.

        On the bits scale the log-ratio in the coefficient is divided by action_dim ln 2 and the weight is
        exp(beta action_dim ln 2 A), the optimum pi* of that objective (a choice: the authors' code is not known to
        run Eq. 42); with beta rescaled, the gradient is the nats one divided by action_dim ln 2.

        Q enters as the advantage A = Q - V: V(s) is a per-state baseline, which leaves the exact gradient unchanged
        at pi = pi* but, unlike -beta Q (of order 1 / (1 - gamma) times the reward), does not push every dataset
        action's log pi down when Q is large and negative.
        """
        obs, act, c = batch["obs"], batch["action"], self.cfg
        adv = self.critic.advantage(obs, act)
        w, clamp_ratio = advantage_weights(adv, c.beta * self.log_scale, c.max_weight)
        log_pi = self.policy.log_prob(act, obs, solver=c.train_solver, steps=c.train_steps, trace=c.trace,
                                      with_grad=True)
        with torch.no_grad():
            log_mu = self.behaviour.log_prob(act, obs, solver=c.train_solver, steps=c.train_steps, trace=c.trace)
            coef = -c.beta * adv + (log_pi - log_mu) / self.log_scale
        loss = (w * coef * log_pi).mean()
        return {"policy_loss": loss, "kl": (log_pi - log_mu).mean().detach(), "clamp_ratio": clamp_ratio}
