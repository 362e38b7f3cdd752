"""Diffusion-QL (Wang et al. 2023; paper Appendix C.5, Eqs. 36-37, Table 2): a diffusion policy trained by its
matching loss plus a Q term, with a double-Q TD critic whose next actions come from the EMA policy.

Policy loss = L_matching(theta) - eta * Q(s, a_pi) / mean|Q| (the Q term normalised by the batch's mean |Q|, as
Diffusion-QL does), a_pi drawn with gradient through a few solver steps (5 by default). At inference the action can
be chosen among N policy samples by Q (the paper's resampling; off by default).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genrl_core.algorithms.base import GenerativeAgent, PolicyConfig, make_policy
from genrl_core.algorithms.behaviour import SELECTS, check_choice, check_min, select
from genrl_core.common import ema_update, frozen_copy
from genrl_core.critics import CriticConfig, TDCritic, warm_start


@dataclass
class DQLConfig(PolicyConfig):
    """Diffusion-QL: the diffusion policy, its EMA copy, the double-Q TD critic and the Q-term weight."""

    path: str = "vpsde"  # policy's path (Diffusion-QL: a discrete VP diffusion, DDPM; paper Table 3)
    prediction: str = "eps"  # policy network's output (Diffusion-QL: noise prediction)
    sampling_steps: int = 5  # solver steps of every policy sample, in training and acting (Diffusion-QL: 5)
    lr: float = 3e-4  # Adam learning rate of the policy (Diffusion-QL: 3e-4)
    eta: float = 1.0  # weight of the normalised Q term (Diffusion-QL: 1.0 on locomotion)
    ema_tau: float = 0.005  # Polyak rate of the EMA policy (critic's next actions, acting)
    act_with_ema: bool = True  # act() samples the EMA policy (else the online one)
    max_action: float = 1.0  # sampled actions are clipped to [-max_action, max_action]
    candidates: int = 1  # > 1: choose among N policy samples per state at inference (paper C.5: 50)
    select: str = "softmax"  # how among the N: softmax (a draw from softmax(select_beta Q), paper C.5) or argmax
    select_beta: float = 1.0  # temperature of select=softmax
    gamma: float = 0.99  # discount factor
    critic_lr: float = 3e-4  # Adam learning rate of the double Q (Diffusion-QL: 3e-4)
    critic_tau: float = 0.005  # Polyak rate of the target Q
    critic_hidden: tuple[int, ...] = (256, 256)  # hidden widths of each Q MLP
    critic_value_init: bool = False  # start Q at mean(r)/(1-gamma) (a choice, not the paper's; faster at gamma 0.99)
    critic_init: str = ""  # pretrained IQL critic file warm-starting Q and target Q (a choice); "" = from scratch


class DQL(GenerativeAgent):
    """Diffusion policy + EMA policy + double-Q TD critic."""

    config_class = DQLConfig

    def __init__(self, cfg: DQLConfig, obs_dim: int, act_dim: int):
        super().__init__()
        check_choice("Diffusion-QL", "select", cfg.select, SELECTS)
        check_min("Diffusion-QL", "eta", cfg.eta, 0.0)
        check_min("Diffusion-QL", "candidates", cfg.candidates, 1)
        self.cfg = cfg
        self.policy = make_policy(cfg, obs_dim, act_dim)
        self.ema = frozen_copy(self.policy)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
        ccfg = CriticConfig(hidden=tuple(cfg.critic_hidden), lr=cfg.critic_lr, gamma=cfg.gamma, tau=cfg.critic_tau,
                            value_init=cfg.critic_value_init)
        self.critic = TDCritic(obs_dim, act_dim, ccfg)
        if cfg.critic_init:  # a warm start: Diffusion-QL's own TD learning (Eq. 36) continues from it
            warm_start(cfg.critic_init, self.critic)

    def sample(self, obs: torch.Tensor, ema: bool = True, with_grad: bool = False) -> torch.Tensor:
        """Clipped samples of the EMA (or online) policy."""
        model = self.ema if ema else self.policy
        act = model.sample(obs, solver=self.cfg.solver, steps=self.cfg.sampling_steps, with_grad=with_grad)
        return act.clamp(-self.cfg.max_action, self.cfg.max_action)

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """A TD step (Eq. 36), a policy step (Eq. 37), an EMA step."""
        out = self.critic.update(batch, self.sample)
        obs = batch["obs"]
        q = self.critic.q_value(obs, self.sample(obs, ema=False, with_grad=True))
        q_loss = -q.mean() / q.abs().mean().detach().clamp_min(1e-6)
        bc_loss = self.policy.loss(batch["action"], obs).mean()
        loss = bc_loss + self.cfg.eta * q_loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        ema_update(self.ema, self.policy, self.cfg.ema_tau)
        return {**out, "policy_loss": loss.detach(), "bc_loss": bc_loss.detach(), "q_policy": q.mean().detach()}

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        if c.candidates == 1:
            return self.sample(obs, ema=c.act_with_ema)
        obs_n = obs.repeat_interleave(c.candidates, dim=0)
        cand = self.sample(obs_n, ema=c.act_with_ema)
        return select(cand, self.critic.q_value(obs_n, cand), c.candidates, c.select, c.select_beta)
