"""IDQL (Hansen-Estruch et al. 2023; paper Appendix C.3, Eqs. 32-34, Table 2): implicit diffusion Q-learning.

A behaviour diffusion model (matching, Eq. 2) and an IQL critic (Eq. 32) train side by side and independently.
An action is resampled among N behaviour candidates with the implicit actor's importance weights (Eq. 34); for
IQL's expectile loss these are |tau - 1(Q(s, a) < V(s))|, or the highest-Q candidate with select="argmax".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genrl_core.algorithms.base import Agent, IQLPolicyConfig, critic_due, make_iql, make_policy
from genrl_core.algorithms.config import check_choice, check_min, doc, with_defaults
from genrl_core.algorithms.in_support import matching_step, pick, sample_candidates, select

IDQL_SELECTS = ("implicit", "argmax")


@dataclass
@with_defaults(path=doc("vpsde", "behaviour model's path (paper Table 3: VPSDE)"),
               prediction=doc("eps", "behaviour network's output (IDQL: a noise-prediction diffusion model)"))
class IDQLConfig(IQLPolicyConfig):
    """IDQL: the behaviour model, the IQL critic and how an action is chosen among behaviour candidates."""

    candidates: int = doc(32, "N behaviour samples per state when acting (a choice; IDQL uses 32 to 256)")
    select: str = doc("implicit", "implicit: draw with Eq. 34's expectile weights |tau - 1(Q < V)|; argmax: highest Q")

    def __post_init__(self) -> None:
        check_choice("IDQL", "select", self.select, IDQL_SELECTS)
        check_min("IDQL", "candidates", self.candidates, 1)
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"IDQL: expectile must lie in (0, 1), got {self.expectile}")

class IDQL(Agent):
    """Behaviour model + IQL critic; acts by importance resampling of behaviour candidates."""

    config_class = IDQLConfig

    def __init__(self, cfg: IDQLConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg = cfg
        self.behaviour = make_policy(cfg, obs_dim, act_dim)
        self.behaviour_opt = torch.optim.Adam(self.behaviour.parameters(), lr=cfg.lr)
        self.critic = make_iql(cfg, obs_dim, act_dim)

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        out = self.critic.update(batch) if critic_due(self.cfg, step) else {}
        out["behaviour_loss"] = matching_step(self.behaviour, self.behaviour_opt, batch)
        return out

    def implicit_weights(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Eq. 34 for the expectile loss: |tau - 1(Q(s, a) - V(s) < 0)| per pair."""
        tau = self.cfg.expectile
        return torch.where(self.critic.advantage(obs, act) < 0, 1.0 - tau, tau)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        obs_n, cand = sample_candidates(self.behaviour, obs, c.candidates, c.solver, c.sampling_steps)
        if c.select == "argmax":
            return select(cand, self.critic.q_value(obs_n, cand), c.candidates, "argmax", 1.0)
        w = self.implicit_weights(obs_n, cand).view(-1, c.candidates)
        return pick(cand, torch.multinomial(w, 1).squeeze(1))
