"""GTP's flow-map policy Phi_theta(s, a_t, t, tau): the solution map of a variance-exploding policy ODE.

Noise process a_t = a + t z (z ~ N(0, I)), t in [t_min, T]. The map uses the Consistency Trajectory Model
parametrisation Phi(a_t, t, tau) = (1 - tau/t) phi(a_t, t, tau) + (tau/t) a_t, so Phi(a_t, t, t) = a_t;
phi(a_t, t, t) is a denoiser (an estimate of the clean action) and the ODE velocity is (a_t - phi(a_t, t, t)) / t.
Sampling draws a_T ~ N(0, T^2 I) and jumps along a Karras (rho = 7) grid T = t_0 > ... > t_K = t_min.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from genrl_core.generative.networks import GaussianFourierEmbedding, make_backbone

BACKBONE_TIME_SCALE = 30.0  # std of the backbones' own Fourier time frequencies (networks.py default)


def karras_grid(n: int, t_min: float, t_max: float, rho: float = 7.0, device: torch.device | str = "cpu",
                descending: bool = True) -> torch.Tensor:
    """n + 1 Karras-spaced times from t_max down to t_min (ascending if descending=False); n >= 1."""
    if n < 1:
        raise ValueError(f"a time grid needs at least 1 interval, got {n}")
    i = torch.linspace(0.0, 1.0, n + 1, device=device, dtype=torch.float64)
    lo, hi = t_min ** (1.0 / rho), t_max ** (1.0 / rho)
    grid = (hi + i * (lo - hi)) ** rho
    grid[0], grid[-1] = t_max, t_min  # exact end points despite rounding
    grid = grid.float()
    return grid if descending else grid.flip(0)


class FlowMap(nn.Module):
    """Phi_theta(s, a_t, t, tau) conditioned on the state s; see the module docstring."""

    def __init__(self, obs_dim: int, act_dim: int, backbone: str = "mlp", hidden: tuple[int, ...] = (256, 256, 256),
                 t_min: float = 0.002, t_max: float = 80.0, sigma_data: float = 0.5, precond: bool = True,
                 tau_emb_dim: int = 32, time_freq: float = 1.0):
        """Build the map.

        backbone, hidden: the network phi (a choice; 'mlp' takes `hidden` widths, 'resunet' its default widths).
        t_min, T (t_max): noise range; a choice, not the paper's number (EDM / consistency-policy defaults).
        sigma_data: assumed std of the actions for EDM preconditioning; a choice.
        precond: EDM c_skip/c_out preconditioning of phi (whether GTP uses it is not confirmed; a choice).
            The input is always scaled by c_in(t) = 1 / sqrt(t^2 + sigma_data^2) to keep it O(1).
        time_freq: std of the Fourier frequencies of t and tau, in cycles over the log-time range [t_min, T] (a choice).
            Low frequencies keep the map smooth in t and tau between the training grid's points, so any K works.
        The backbone sees time as (log t - log t_min) / (log T - log t_min) in [0, 1] (rescaled for its own Fourier
        embedding); tau, Fourier-embedded the same way, enters with the state as the backbone's condition.
        """
        super().__init__()
        if not 0.0 < t_min < t_max:
            raise ValueError(f"need 0 < t_min < t_max, got t_min={t_min}, t_max={t_max}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.t_min, self.t_max, self.sigma_data, self.precond = t_min, t_max, sigma_data, precond
        self.time_freq = time_freq
        self.tau_embed = GaussianFourierEmbedding(tau_emb_dim, scale=time_freq)
        kwargs = {"hidden": tuple(hidden)} if backbone == "mlp" else {}
        self.net = make_backbone(backbone, act_dim, obs_dim + tau_emb_dim, **kwargs)

    def _log_time(self, t: torch.Tensor) -> torch.Tensor:
        """Time mapped to [0, 1] on a log scale."""
        lo, hi = math.log(self.t_min), math.log(self.t_max)
        return (t.clamp_min(1e-12).log() - lo) / (hi - lo)

    def phi(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """The surrogate phi_theta(s, a_t, t, tau); t and tau are [B] tensors."""
        t_col = t.reshape(-1, 1)
        c_in = (t_col.pow(2) + self.sigma_data ** 2).rsqrt()
        cond = torch.cat([obs, self.tau_embed(self._log_time(tau))], dim=-1)
        out = self.net(c_in * a_t, self._log_time(t) * (self.time_freq / BACKBONE_TIME_SCALE), cond)
        if not self.precond:
            return out
        c_skip = self.sigma_data ** 2 / (t_col.pow(2) + self.sigma_data ** 2)
        c_out = t_col * self.sigma_data * c_in
        return c_skip * a_t + c_out * out

    def forward(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Phi_theta(s, a_t, t, tau) = (1 - tau/t) phi + (tau/t) a_t, for tau <= t."""
        ratio = (tau / t).reshape(-1, 1)
        return (1.0 - ratio) * self.phi(obs, a_t, t, tau) + ratio * a_t

    def denoise(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """phi_inst(s, a_t, t) = phi(s, a_t, t, t): the clean-action estimate."""
        return self.phi(obs, a_t, t, t)

    def velocity(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The probability-flow ODE velocity da_t/dt = (a_t - phi_inst) / t."""
        return (a_t - self.denoise(obs, a_t, t)) / t.reshape(-1, 1)

    def noisy(self, action: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Variance-exploding noising a_t = a + t z."""
        return action + t.reshape(-1, 1) * z

    def sample(self, obs: torch.Tensor, steps: int, noise: torch.Tensor | None = None, rho: float = 7.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """K-step sampling from a_T = T * noise along a Karras grid; deterministic given `noise` ([B, act_dim])."""
        if steps < 1:
            raise ValueError(f"sampling steps K must be >= 1, got {steps}")
        if noise is None:
            noise = torch.randn(obs.shape[0], self.act_dim, device=obs.device, generator=generator)
        grid = karras_grid(steps, self.t_min, self.t_max, rho, device=obs.device)
        a = self.t_max * noise
        ones = torch.ones(obs.shape[0], device=obs.device)
        for i in range(steps):
            a = self(obs, a, grid[i] * ones, grid[i + 1] * ones)
        return a
