"""GMPO (paper Sec. 4.3, Eqs. 7, 39-41, Algorithms 1-2): advantage-weighted matching on dataset actions.

As Algorithm 1 and the authors' code run it (the default): the IQL critic trains alone for critic_steps, then stays
fixed while the policy, from random weights, trains on the weighted matching loss. critic_alongside=True keeps
training the critic during the policy phase (an option, not the paper's)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from genrl_core.algorithms.config import doc, with_defaults
from genrl_core.algorithms.base import (WEIGHT_NORMS, GenerativeAgent, IQLPolicyConfig, advantage_weights, critic_due,
                                        make_iql, make_policy)


@dataclass
@with_defaults(critic_steps=doc(1000, "IQL steps of Algorithm 1's first loop, before the policy trains"),
               critic_alongside=doc(False, "False: the critic is fixed in the policy phase (Algorithm 1); "
                                           "True: trained on"))
class GMPOConfig(IQLPolicyConfig):
    """GMPO: the policy, the IQL critic and the weighting of the matching loss."""

    beta: float = doc(4.0, "temperature of exp(beta (Q - V)) (paper Table 8 gives per-task values)")
    max_weight: float = doc(100.0, "clamp of the exponential weight, its clamp ratio logged (authors: 100; 1000 on "
                                   "hopper-medium, 400 halfcheetah-medium-replay, 10000 walker2d-medium-replay)")
    weight_norm: str = doc("clamp", "clamp (paper) or batch (exp(beta A) / batch mean, no clamp: exact tilt at large "
                                    "beta)")
    softmax_k: int = doc(0, "> 0: Eq. 41's softmax over K behaviour-model actions per state (Algorithm 2)")
    behaviour_steps: int = doc(0, "matching steps of the behaviour model before policy training (softmax only)")

    # read only by the policy phase's loss and held in no state: trials that differ only here share the critic stage
    POLICY_ONLY: ClassVar[frozenset[str]] = frozenset({"beta", "max_weight", "weight_norm"})

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.weight_norm not in WEIGHT_NORMS:
            raise ValueError(f"unknown weight_norm {self.weight_norm!r}; valid: {list(WEIGHT_NORMS)}")

class GMPO(GenerativeAgent):
    """Generative Model Policy Optimisation on an IQL critic."""

    config_class = GMPOConfig

    def __init__(self, cfg: GMPOConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg = cfg
        self.policy = make_policy(cfg, obs_dim, act_dim)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
        self.critic = make_iql(cfg, obs_dim, act_dim)
        if cfg.softmax_k > 0:
            self.behaviour = make_policy(cfg, obs_dim, act_dim)
            self.behaviour_opt = torch.optim.Adam(self.behaviour.parameters(), lr=cfg.lr)
        self.start_phases(max(cfg.critic_steps, cfg.behaviour_steps if cfg.softmax_k > 0 else 0))

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        self.track_phase(step)
        out = self.critic.update(batch) if critic_due(self.cfg, step) else {}
        if self.cfg.softmax_k > 0 and step < self.cfg.behaviour_steps:
            loss = self.behaviour.loss(batch["action"], batch["obs"]).mean()
            self.behaviour_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.behaviour_opt.step()
            out["behaviour_loss"] = loss.detach()
        if step >= self.policy_start:
            out.update(self._softmax_loss(batch) if self.cfg.softmax_k > 0 else self._exp_loss(batch))
            self.opt.zero_grad(set_to_none=True)
            out["policy_loss"].backward()
            self.opt.step()
            out["policy_loss"] = out["policy_loss"].detach()
        return out

    def _exp_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 7: E_D[exp(beta A) * L_matching], weights clamped."""
        obs, act = batch["obs"], batch["action"]
        w, clamp_ratio = advantage_weights(self.critic.advantage(obs, act), self.cfg.beta, self.cfg.max_weight,
                                           self.cfg.weight_norm)
        loss = (w * self.policy.loss(act, obs)).mean()
        return {"policy_loss": loss, "weight_mean": w.mean(), "clamp_ratio": clamp_ratio}

    def _softmax_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 41: K behaviour actions per state, weighted by softmax(beta Q) over the K."""
        k, obs = self.cfg.softmax_k, batch["obs"]
        obs_k = obs.repeat_interleave(k, dim=0)
        with torch.no_grad():
            act_k = self.behaviour.sample(obs_k, solver=self.cfg.solver, steps=self.cfg.sampling_steps)
            w = torch.softmax(self.cfg.beta * self.critic.q_value(obs_k, act_k).view(-1, k), dim=1).flatten()
        loss = (w * self.policy.loss(act_k, obs_k)).sum() / obs.shape[0]
        return {"policy_loss": loss, "weight_max": w.view(-1, k).max(1).values.mean()}
