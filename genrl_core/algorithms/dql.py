"""Diffusion-QL (Wang et al. 2023; paper Appendix C.5, Eqs. 36-37, Table 2): a diffusion policy trained by its
matching loss plus a Q term, with a double-Q TD critic whose next actions come from the EMA policy.

Policy loss = L_matching(theta) - eta * Q(s, a_pi) / mean|Q| (the Q term normalised by the batch's mean |Q|, as
Diffusion-QL does), a_pi drawn with gradient through every sampling step.

As the original code (github.com/Zhendong-Wang/Diffusion-Policies-for-Offline-RL, main.py and agents/) runs it, by
default (diffusion="ddpm"): the policy is a discrete DDPM of N = 5 levels with the "vp" beta schedule
(genrl_core.generative.ddpm), trained by eps regression at a uniformly drawn level and sampled by N ancestral steps with x_0
clipped to [-max_action, max_action] and no noise at the last step, in training (the Q term, with gradient) as in
acting; act() draws 50 actions per state and takes one by a draw from softmax(Q) of the target critic's min-Q; its
network is an MLP of 3 hidden layers of 256. diffusion="ode" keeps this platform's continuous alternative: the
configured path (VP-SDE by default, beta 0.1 -> 20) sampled by `sampling_steps` uniform steps of the ODE solver.

Still simpler than the original (choices of this platform, named so that results are read with them in mind):
- the network: Diffusion-QL's MLP concatenates (a, MLP(sinusoidal(i)), s) into 3 Mish layers of 256; the "mlp"
  backbone here concatenates (a, Fourier features of t = (i + 1) / N, s) into SiLU layers;
- the critic: two Q MLPs of (256, 256) SiLU, where Diffusion-QL has 3 Mish layers of 256 (kept so that one
  pretrained IQL critic, critic_init, warm-starts every algorithm of a sweep);
- the Q term: -mean(min(Q1, Q2)) / mean|min(Q1, Q2)|; Diffusion-QL draws one of the two heads per step and divides
  by the other head's mean |Q|;
- the EMA: Polyak rate ema_tau at every step from the first; Diffusion-QL's EMA (decay 0.995) updates every 5th step
  and only from step 1000 (before it, the critic's next actions come from the initial policy);
- no gradient-norm clipping (Diffusion-QL: per-task `gn`, 1 to 10; a global-norm clip cannot be packed across
  seeds) and no learning-rate decay (its --lr_decay steps a cosine of T_max = num_epochs once per 50 epochs, so the
  rate barely moves);
- no max-Q backup (Diffusion-QL's AntMaze setting: max over 10 EMA samples in the TD target), no AntMaze reward
  tuning, no offline model selection by BC loss (top_k); per-task eta / lr are the sweep presets' business.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genrl_core.algorithms.base import GenerativeAgent, PolicyConfig, make_policy
from genrl_core.algorithms.config import check_choice, check_min, doc, with_defaults
from genrl_core.algorithms.in_support import SELECTS, select
from genrl_core.common import ema_update, frozen_copy
from genrl_core.algorithms.critics import CriticConfig, TDCritic, warm_start
from genrl_core.generative.ddpm import BETA_SCHEDULES, DDPM, DDPM_PREDICTIONS

DIFFUSIONS = ("ddpm", "ode")


@dataclass
@with_defaults(path=doc("vpsde", "diffusion=ode: the policy's path"),
               prediction=doc("eps", "policy network's output (Diffusion-QL: eps); ddpm takes eps or x0, ode any"),
               backbone=doc("mlp", "policy network (Diffusion-QL: an MLP with a time embedding, 3 hidden layers of 256)"),
               widths=doc((256, 256, 256), "hidden widths of the mlp backbone (or the resunet's down path)"),
               sampling_steps=doc(5, "DDPM levels N (ddpm), or solver steps (ode), in training and acting "
                                     "(Diffusion-QL: 5)"),
               lr=doc(3e-4, "Adam learning rate of the policy (Diffusion-QL: 3e-4)"),
               critic_lr=doc(3e-4, "Adam learning rate of the double Q (Diffusion-QL: 3e-4)"),
               critic_hidden=doc((256, 256), "hidden widths of each Q MLP (Diffusion-QL: 256, 256, 256)"))
class DQLConfig(CriticConfig, PolicyConfig):
    """Diffusion-QL: the diffusion policy, its EMA copy, the double-Q TD critic and the Q-term weight."""

    diffusion: str = doc("ddpm", "ddpm: Diffusion-QL's discrete DDPM (sampling_steps levels, ancestral sampling); ode: "
                                 "the continuous path (path, prediction, t_min, weighting) sampled by sampling_steps "
                                 "steps of the ODE solver")
    beta_schedule: str = doc("vp", "diffusion=ddpm: vp (Diffusion-QL's: the VP-SDE, beta 0.1 -> 10, in N pieces) or "
                                   "linear")
    eta: float = doc(1.0, "weight of the normalised Q term (Diffusion-QL: 1.0 on locomotion)")
    ema_tau: float = doc(0.005, "Polyak rate of the EMA policy (the critic's next actions)")
    act_with_ema: bool = doc(False, "act() samples the EMA policy; False: the online one (Diffusion-QL's "
                                    "sample_action)")
    max_action: float = doc(1.0, "actions (and the DDPM's x_0 predictions) are clipped to [-max_action, max_action]")
    candidates: int = doc(50, "policy samples per state at inference, one chosen by Q (Diffusion-QL: 50); 1: no choice")
    select: str = doc("softmax", "how among them: softmax (a draw from softmax(select_beta Q), Diffusion-QL) or argmax")
    select_beta: float = doc(1.0, "temperature of select=softmax (Diffusion-QL: 1)")

    def __post_init__(self) -> None:
        check_choice("Diffusion-QL", "diffusion", self.diffusion, DIFFUSIONS)
        check_choice("Diffusion-QL", "select", self.select, SELECTS)
        check_min("Diffusion-QL", "eta", self.eta, 0.0)
        check_min("Diffusion-QL", "candidates", self.candidates, 1)
        check_min("Diffusion-QL", "sampling_steps", self.sampling_steps, 1)
        if self.diffusion == "ddpm":
            check_choice("Diffusion-QL", "beta_schedule", self.beta_schedule, BETA_SCHEDULES)
            check_choice("Diffusion-QL (diffusion=ddpm)", "prediction", self.prediction, DDPM_PREDICTIONS)

class DQL(GenerativeAgent):
    """Diffusion policy + EMA policy + double-Q TD critic."""

    config_class = DQLConfig

    def __init__(self, cfg: DQLConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg = cfg
        policy = make_policy(cfg, obs_dim, act_dim)
        if cfg.diffusion == "ddpm":
            policy = DDPM(policy.net, cfg.sampling_steps, cfg.beta_schedule, cfg.prediction, cfg.max_action)
        self.policy = policy
        self.ema = frozen_copy(self.policy)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
        self.critic = TDCritic(obs_dim, act_dim, cfg)
        if cfg.critic_init:  # a warm start: Diffusion-QL's own TD learning (Eq. 36) continues from it
            warm_start(cfg.critic_init, self.critic)

    def sample(self, obs: torch.Tensor, ema: bool = True, with_grad: bool = False) -> torch.Tensor:
        """Clipped samples of the EMA (or online) policy."""
        model = self.ema if ema else self.policy
        if self.cfg.diffusion == "ddpm":
            return model.sample(obs, with_grad=with_grad)  # clipped inside, x_0 predictions too
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
        """One policy sample per state, or (candidates > 1) one of `candidates` chosen by the target critic's
        min-Q, as Diffusion-QL's sample_action does."""
        c = self.cfg
        if c.candidates == 1:
            return self.sample(obs, ema=c.act_with_ema)
        obs_n = obs.repeat_interleave(c.candidates, dim=0)
        cand = self.sample(obs_n, ema=c.act_with_ema)
        return select(cand, self.critic.q_value(obs_n, cand, target=True), c.candidates, c.select, c.select_beta)

    def log_likelihood(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) by the ODE's exact trace (diffusion=ode); NaN for the DDPM, whose 5 ancestral steps end in
        a deterministic denoising step and have no tractable density."""
        if self.cfg.diffusion == "ddpm":
            return torch.full((obs.shape[0],), float("nan"), device=obs.device)
        return super().log_likelihood(obs, action)
