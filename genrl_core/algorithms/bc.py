"""Behaviour cloning with a generative policy: plain matching on dataset actions (GMPO at beta = 0)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genrl_core.algorithms.base import GenerativeAgent, PolicyConfig, make_policy


@dataclass
class BCConfig(PolicyConfig):
    """Behaviour cloning: only the generative policy's fields."""


class BC(GenerativeAgent):
    """Fits pi(a | s) to the dataset by the model's matching loss."""

    config_class = BCConfig

    def __init__(self, cfg: BCConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg = cfg
        self.policy = make_policy(cfg, obs_dim, act_dim)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        loss = self.policy.loss(batch["action"], batch["obs"]).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"policy_loss": loss.detach()}
