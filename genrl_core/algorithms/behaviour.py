"""Pieces the baselines share (paper Appendix C): a behaviour model's matching step, behaviour candidates per
state, choosing among candidates, and the in-support Q-learning of SfBC and QGPO (Eq. 29)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from genrl_core.algorithms.base import Agent, PolicyConfig, make_policy
from genrl_core.critics import CriticConfig, TDCritic, warm_start
from genrl_core.generative import GenerativeModel

SELECTS = ("argmax", "softmax")  # how an action is chosen among candidates scored by Q
TARGETS = ("softmax", "max")  # the next-state value of Eq. 29 over behaviour candidates


def check_choice(algo: str, name: str, value: str, valid: Sequence[str]) -> None:
    """One clear line for a config string outside its valid set."""
    if value not in valid:
        raise ValueError(f"{algo}: unknown {name} {value!r}; valid: {list(valid)}")


def check_min(algo: str, name: str, value: float, low: float) -> None:
    """One clear line for a config number below its minimum."""
    if value < low:
        raise ValueError(f"{algo}: {name} must be >= {low}, got {value}")


def matching_step(model: GenerativeModel, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One step of the model's matching loss on dataset (state, action) pairs (paper Eq. 2); the detached loss."""
    loss = model.loss(batch["action"], batch["obs"]).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def sample_candidates(model: GenerativeModel, obs: torch.Tensor, n: int, solver: str,
                      steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(states [B*n, o], actions [B*n, d]): n samples of the model per state, grouped state by state, no gradient."""
    obs_n = obs.repeat_interleave(n, dim=0)
    with torch.no_grad():
        return obs_n, model.sample(obs_n, solver=solver, steps=steps)


def pick(actions: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Row index[b] of each state's group of candidates: actions [B*n, d], index [B] -> [B, d]."""
    grouped = actions.view(index.shape[0], -1, actions.shape[-1])
    return grouped[torch.arange(index.shape[0], device=index.device), index]


def select(actions: torch.Tensor, scores: torch.Tensor, n: int, how: str, beta: float) -> torch.Tensor:
    """One action per state among n candidates: the highest score (argmax) or a draw from softmax(beta * score)."""
    scores = scores.view(-1, n)
    if how == "argmax":
        return pick(actions, scores.argmax(dim=1))
    return pick(actions, torch.multinomial(torch.softmax(beta * scores, dim=1), 1).squeeze(1))


@dataclass
class InSupportConfig(PolicyConfig):
    """A behaviour model and a double-Q critic trained by in-support Q-learning (paper Eq. 29): SfBC and QGPO."""

    path: str = "vpsde"  # behaviour model's path: SfBC and QGPO use VPSDE (paper Table 3)
    prediction: str = "eps"  # behaviour network's output (SfBC / QGPO: a noise-prediction score model)
    behaviour_steps: int = 1000  # matching steps of the behaviour model; then it is frozen and the critic trains
    target_candidates: int = 16  # N behaviour samples per next state in Eq. 29's target (a choice)
    target: str = "softmax"  # next-state value over the N: softmax (Eq. 29, one draw from softmax(beta Q)) or max
    target_beta: float = 1.0  # temperature of the target softmax (Eq. 29: 1)
    train_sampling_steps: int = 16  # solver steps of the behaviour samples drawn in training (a choice)
    gamma: float = 0.99  # discount factor
    critic_lr: float = 1e-4  # Adam learning rate of the double Q (paper Table 7)
    critic_tau: float = 0.005  # Polyak rate of the target Q
    critic_hidden: tuple[int, ...] = (256, 256)  # hidden widths of each Q MLP
    critic_value_init: bool = False  # start Q at mean(r)/(1-gamma) (a choice, not the paper's; faster at gamma 0.99)
    critic_init: str = ""  # pretrained IQL critic file warm-starting Q and target Q (a choice); "" = from scratch


class InSupportAgent(Agent):
    """Behaviour pretraining, then TD learning whose next action is chosen among the frozen behaviour's samples."""

    cfg: InSupportConfig
    name = "in-support"

    def __init__(self, cfg: InSupportConfig, obs_dim: int, act_dim: int):
        super().__init__()
        check_choice(self.name, "target", cfg.target, TARGETS)
        for field in ("target_candidates", "train_sampling_steps", "sampling_steps"):
            check_min(self.name, field, getattr(cfg, field), 1)
        self.cfg = cfg
        self.behaviour = make_policy(cfg, obs_dim, act_dim)
        self.behaviour_opt = torch.optim.Adam(self.behaviour.parameters(), lr=cfg.lr)
        ccfg = CriticConfig(hidden=tuple(cfg.critic_hidden), lr=cfg.critic_lr, gamma=cfg.gamma, tau=cfg.critic_tau,
                            value_init=cfg.critic_value_init)
        self.critic = TDCritic(obs_dim, act_dim, ccfg)
        if cfg.critic_init:  # a warm start: the in-support Q-learning of Eq. 29 continues from it
            warm_start(cfg.critic_init, self.critic)

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Behaviour matching before behaviour_steps, in-support TD learning after."""
        if step < self.cfg.behaviour_steps:
            return {"behaviour_loss": matching_step(self.behaviour, self.behaviour_opt, batch)}
        return self.critic.update(batch, self.next_action)

    @torch.no_grad()
    def next_action(self, next_obs: torch.Tensor) -> torch.Tensor:
        """a' for Eq. 29: the max-Q one of N behaviour samples, or one drawn from softmax(beta Q) over them
        (E over that draw of Q(s', a') is exactly Eq. 29's softmax-weighted value)."""
        c = self.cfg
        obs_n, cand = sample_candidates(self.behaviour, next_obs, c.target_candidates, c.solver, c.train_sampling_steps)
        how = "argmax" if c.target == "max" else "softmax"
        return select(cand, self.critic.q_value(obs_n, cand, target=True), c.target_candidates, how, c.target_beta)
