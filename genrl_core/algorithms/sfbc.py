"""SfBC (Chen et al. 2023; paper Appendix C.1, Eq. 29, Table 2): selecting from behaviour candidates.

A behaviour diffusion model is fitted by matching (Eq. 2), a double Q by in-support Q-learning whose next-state
value comes from N behaviour samples (Eq. 29), and an action is the best of N behaviour samples under Q.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import ClassVar

import torch

from genrl_core.algorithms.config import check_choice, check_min, doc
from genrl_core.algorithms.in_support import (SELECTS, InSupportAgent, InSupportConfig,
                                             sample_candidates, select)


@dataclass
class SfBCConfig(InSupportConfig):
    """SfBC: the behaviour model and in-support critic of InSupportConfig, plus how an action is selected."""

    candidates: int = doc(32, "N behaviour samples per state when acting (SfBC: 32)")
    select: str = doc("argmax", "argmax: highest Q (paper C.1); softmax: a draw from softmax(select_beta Q) (SfBC's)")
    select_beta: float = doc(1.0, "temperature of select=softmax")

    algo: ClassVar[str] = "SfBC"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.algo, "select", self.select, SELECTS)
        check_min(self.algo, "candidates", self.candidates, 1)

class SfBC(InSupportAgent):
    """Behaviour model + in-support double Q; acts by the best of N behaviour candidates."""

    config_class = SfBCConfig
    name = "SfBC"

    def __init__(self, cfg: SfBCConfig, obs_dim: int, act_dim: int):
        super().__init__(cfg, obs_dim, act_dim)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        obs_n, cand = sample_candidates(self.behaviour, obs, c.candidates, c.solver, c.sampling_steps)
        return select(cand, self.critic.q_value(obs_n, cand), c.candidates, c.select, c.select_beta)
