"""QGPO (Lu et al. 2023; paper Appendix C.2, Eqs. 30-31, Table 2): Q-guided policy optimisation.

A behaviour diffusion model, a double Q by in-support Q-learning (Eq. 29, as QGPO does; not IQL), and an energy
model E_phi(s, a_t, t) fitted by contrastive energy prediction over K behaviour samples per state (Eq. 30).
Actions follow the guided score grad log mu_t + s grad_a E_phi (Eq. 31) from noise to data.

Checked in closed form (mu = N(0, 1), exact intermediate energy of E(a) = -c a^2): Euler-guided samples have
the variance of mu exp(E), 1 / (1 + 2c), to 3% at 50 Euler steps (8% at 8). The energy is learnt where the action
still shows through the noise (small t); a uniform time grid of n steps queries it no lower than t = 1/n, so guided
sampling wants more steps than the behaviour alone. With a critic that is wrong in the tails of mu, s < 1 tempers
the tilt mu exp(s beta Q), which otherwise selects those tails (tests/test_pendulum_baselines.py).

Simpler than the original code (github.com/ChenDRAG/CEP-energy-guided-diffusion, Offline_RL_2D/), named so that
results are read with them in mind:
- sampling: QGPO samples (acting and the behaviour candidates alike) with DPM-Solver-2 in its data-prediction form,
  15 steps; here the configured solver (euler by default, dpm2 available) and sampling_steps / train_sampling_steps;
- Eq. 29's target: QGPO takes the softmax(q_alpha Q)-weighted mean over the candidates (q_alpha 1); here one draw from
  that softmax (the same expectation, more noise), or the max;
- candidates: QGPO draws M = 16 per state on locomotion, 32 on AntMaze, for both the TD target and CEP;
- schedules: QGPO trains the Q nets only in the first half of its critic phase (50 of 100 epochs of 10k steps) and
  the energy model throughout; here both train at every step after behaviour_steps (behaviour: 600 epochs there);
- networks and rates: QGPO's Q nets are 3 ReLU layers of 256, its energy net 4 SiLU layers of 256 on (a, a learnt
  projection of 32 Fourier features of t, s), both trained at 3e-4; here critic_hidden / energy_hidden (SiLU) at
  critic_lr / energy_lr (paper Table 7: 1e-4);
- guidance scale: QGPO's train_critic.py evaluates every s of a list at each evaluation ([0, 1, 2, 3, 5, 8, 10] on
  locomotion, [1, 1.5, 2, 2.5, 3, 4] on AntMaze) and reports per task; GUIDANCE_SCALE below holds the per-task
  values where a source gives them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from genrl_core.generative import solvers
from genrl_core.algorithms.config import check_min, doc
from genrl_core.algorithms.in_support import InSupportAgent, InSupportConfig
from genrl_core.generative.networks import GaussianFourierEmbedding, mlp
from genrl_core.generative.paths import make_path

GUIDED_SOLVERS = (*solvers.FIXED_STEP, "dpm2")

# The guidance scale s of QGPO (Lu et al. 2023) per D4RL task, for the sweep presets. Empty on purpose: the authors'
# public code (ChenDRAG/CEP-energy-guided-diffusion: Readme.md, Offline_RL_2D/Readme.md, train_critic.py, utils.py)
# gives no per-task value (train_critic.py logs returns for every s of [0, 1, 2, 3, 5, 8, 10] on locomotion and
# [1, 1.5, 2, 2.5, 3, 4] on AntMaze, the lists it falls back to when --s is not given; its launch line in the
# Readme gives no --s), and the paper's appendix could not be read here. Fill it from the paper (arXiv 2304.12824,
# appendix hyperparameters) with the table's name as source; no value is guessed.
GUIDANCE_SCALE: dict[str, float] = {}


def guidance_scale_for(task: str, default: float = 1.0) -> float:
    """QGPO's guidance scale for a D4RL task name ('hopper-medium-v2', ...), or `default` where none is recorded."""
    return GUIDANCE_SCALE.get(task, default)


@dataclass
class QGPOConfig(InSupportConfig):
    """QGPO: behaviour model and in-support Q (InSupportConfig), the energy model and its guidance."""

    beta: float = doc(3.0, "CEP temperature: targets softmax(beta Q) over the K samples of a state (Eq. 30)")
    energy_candidates: int = doc(16, "K behaviour samples per state in contrastive energy prediction (QGPO: 16)")
    guidance_scale: float = doc(1.0, "s in grad log mu_t + s grad E_phi when sampling (Eq. 31: 1; < 1 tempers)")
    energy_hidden: tuple[int, ...] = doc((256, 256, 256), "hidden widths of the energy MLP")
    energy_lr: float = doc(1e-4, "Adam learning rate of the energy model (paper Table 7's rate)")

    algo: ClassVar[str] = "QGPO"

    def __post_init__(self) -> None:
        if not make_path(self.path).is_diffusion:
            raise ValueError(f"QGPO needs a diffusion path (vpsde or gvp), got {self.path!r}: its energy guidance "
                             "adds to the behaviour's score, which flow models do not give (paper Appendix C.2)")
        if self.solver not in GUIDED_SOLVERS:
            raise ValueError(f"QGPO: guided sampling needs a fixed-step solver, got {self.solver!r}; "
                             f"valid: {list(GUIDED_SOLVERS)}")
        check_min(self.algo, "beta", self.beta, 0.0)
        check_min(self.algo, "energy_candidates", self.energy_candidates, 2)
        super().__post_init__()

class EnergyNet(nn.Module):
    """E_phi(s, a_t, t): an MLP on concat(a_t, Fourier features of t, s) returning [B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], t_dim: int = 32):
        super().__init__()
        self.t_embed = GaussianFourierEmbedding(t_dim)
        self.net = mlp([act_dim + t_dim + obs_dim, *hidden, 1])

    def forward(self, act: torch.Tensor, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        t = t.expand(act.shape[0]) if t.dim() == 0 else t
        return self.net(torch.cat([act, self.t_embed(t), obs], dim=-1)).squeeze(-1)


class QGPO(InSupportAgent):
    """Behaviour model + in-support Q + energy guidance; diffusion paths only (paper Appendix C.2)."""

    config_class = QGPOConfig
    name = "QGPO"

    def __init__(self, cfg: QGPOConfig, obs_dim: int, act_dim: int):
        super().__init__(cfg, obs_dim, act_dim)
        self.energy = EnergyNet(obs_dim, act_dim, tuple(cfg.energy_hidden))
        self.energy_opt = torch.optim.Adam(self.energy.parameters(), lr=cfg.energy_lr)

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Behaviour matching first; then an in-support TD step and a CEP step of the energy model."""
        out = super().update(batch, step)
        if step >= self.cfg.behaviour_steps:
            loss = self.cep_loss(batch["obs"], self.cached(batch, "obs"))
            self.energy_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.energy_opt.step()
            out["energy_loss"] = loss.detach()
        return out

    def cache_sizes(self) -> dict[str, int]:
        """Eq. 29's N candidates per next state, and Eq. 30's K per state."""
        return {**super().cache_sizes(), "obs": self.cfg.energy_candidates}

    def cep_loss(self, obs: torch.Tensor, cand: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 30: cross-entropy between softmax(beta Q) and softmax(E_phi(s, a_i,t, t)) over K behaviour samples
        (cand [B*K, d] if given, else fresh ones), one diffusion time per state shared by its K samples."""
        c, k = self.cfg, self.cfg.energy_candidates
        obs_k, act_k = self.candidates(obs, k, cand)
        with torch.no_grad():
            target = torch.softmax(c.beta * self.critic.q_value(obs_k, act_k, target=True).view(-1, k), dim=1)
        b = self.behaviour
        t = (b.t_min + (b.t_max - b.t_min) * torch.rand(obs.shape[0], device=obs.device)).repeat_interleave(k)
        act_t = b.path.sample_xt(act_k, t)[0]
        logits = self.energy(act_t, t, obs_k).view(-1, k)
        return -(target * torch.log_softmax(logits, dim=1)).sum(1).mean()

    def energy_grad(self, act_t: torch.Tensor, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """grad_a E_phi(s, a_t, t), computed even under no_grad."""
        with torch.enable_grad():
            x = act_t.detach().requires_grad_(True)
            return torch.autograd.grad(self.energy(x, t, obs).sum(), x)[0]

    def guided_eps(self, obs: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Eq. 31 as a noise prediction: eps_mu - sigma_t s grad E (score = -eps / sigma_t)."""
        b, s = self.behaviour, self.cfg.guidance_scale
        return lambda t, x: b.eps(x, t, obs) - b.path.sigma(t) * s * self.energy_grad(x, t, obs)

    def guided_velocity(self, obs: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Eq. 31 in the probability-flow ODE: v_mu - g^2(t) / 2 * s grad E (v = f x - g^2 / 2 * score)."""
        b, s = self.behaviour, self.cfg.guidance_scale
        return lambda t, x: b.velocity(x, t, obs) - 0.5 * b.path.g2(t) * s * self.energy_grad(x, t, obs)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        b, c = self.behaviour, self.cfg
        x = torch.randn(obs.shape[0], b.x_dim, device=obs.device, dtype=obs.dtype) * b.prior_std
        t_start = min(b.t_max, 1.0 - b.t_min)  # g^2 and the eps <-> score map are singular where alpha_t = 0
        grid = solvers.time_grid(t_start, b.t_min, c.sampling_steps, obs.device, obs.dtype)
        if c.solver == "dpm2":
            return solvers.dpm_solver_2(self.guided_eps(obs), x, grid, b.path)
        return solvers.integrate(self.guided_velocity(obs), x, grid, c.solver)
