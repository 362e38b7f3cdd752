"""A compact soft actor-critic (SAC), used only to train behaviour policies for locally made datasets."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from genrl_core.generative.networks import mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass
class SACConfig:
    """SAC, the online agent that trains the behaviour policies of the local datasets."""

    hidden: tuple[int, ...] = (256, 256)  # hidden widths of the actor and of each critic
    lr: float = 3e-4  # Adam learning rate of actor, critics and temperature
    gamma: float = 0.99  # discount factor
    tau: float = 0.005  # Polyak rate of the target critics
    batch_size: int = 256  # minibatch size per update
    init_alpha: float = 0.2  # initial entropy temperature
    target_entropy: float | None = None  # entropy target; None -> -act_dim


class TanhGaussianActor(nn.Module):
    """Gaussian policy squashed by tanh and rescaled to the action box [low, high]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], low: np.ndarray, high: np.ndarray):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 2 * act_dim], act=nn.ReLU)
        self.register_buffer("scale", torch.as_tensor((high - low) / 2, dtype=torch.float32))
        self.register_buffer("bias", torch.as_tensor((high + low) / 2, dtype=torch.float32))

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (action, log_prob) for a batch of observations."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        u = mean if deterministic else mean + std * torch.randn_like(mean)
        a = torch.tanh(u)
        log_prob = (-0.5 * ((u - mean) / std) ** 2 - std.log() - 0.5 * np.log(2 * np.pi)).sum(-1)
        log_prob = log_prob - (2 * (np.log(2) - u - F.softplus(-2 * u))).sum(-1) - self.scale.log().sum()
        return a * self.scale + self.bias, log_prob


class TwinQ(nn.Module):
    """Two Q networks evaluated together as batched matrix products (ReLU MLPs); forward returns [2, B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], n: int = 2):
        super().__init__()
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / np.sqrt(d_in)  # nn.Linear's default initialisation range
            self.weights.append(nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, d_out).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, act: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Q values [2, B]; detach_params lets gradients reach only the inputs (for the actor loss)."""
        h = torch.cat([obs, act], dim=-1).expand(len(self.weights[0]), -1, -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            w, b = (w.detach(), b.detach()) if detach_params else (w, b)
            h = torch.baddbmm(b, h, w)
            h = torch.relu(h) if i < len(self.weights) - 1 else h
        return h.squeeze(-1)


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam, fused where torch supports it (much less per-step overhead on small nets)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions held as tensors."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        self.capacity, self.size, self.ptr = capacity, 0, 0
        self.data = {k: torch.zeros(capacity, d) for k, d in
                     (("obs", obs_dim), ("action", act_dim), ("next_obs", obs_dim))}
        self.data["reward"] = torch.zeros(capacity)
        self.data["terminal"] = torch.zeros(capacity)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminal: bool) -> None:
        """Store one transition, overwriting the oldest when full."""
        for key, value in (("obs", obs), ("action", action), ("reward", reward), ("next_obs", next_obs),
                           ("terminal", float(terminal))):
            self.data[key][self.ptr] = torch.as_tensor(value, dtype=torch.float32)
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A uniformly drawn minibatch."""
        idx = torch.randint(0, self.size, (batch_size,), generator=generator)
        return {k: v[idx] for k, v in self.data.items()}


class SAC(nn.Module):
    """Actor, twin critics with targets and a learned entropy temperature."""

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray, config: SACConfig):
        super().__init__()
        self.config = config
        self.actor = TanhGaussianActor(obs_dim, act_dim, config.hidden, low, high)
        self.critic = TwinQ(obs_dim, act_dim, config.hidden)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(float(np.log(config.init_alpha))))
        self.target_entropy = -float(act_dim) if config.target_entropy is None else config.target_entropy
        self.actor_opt = _adam(list(self.actor.parameters()), config.lr)
        self.critic_opt = _adam(list(self.critic.parameters()), config.lr)
        self.alpha_opt = _adam([self.log_alpha], config.lr)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action(s) for a single observation or a batch, as a numpy array."""
        o = torch.as_tensor(obs, dtype=torch.float32)
        a, _ = self.actor(o.unsqueeze(0) if o.dim() == 1 else o, deterministic)
        return (a[0] if o.dim() == 1 else a).numpy()

    def update(self, batch: dict[str, torch.Tensor]) -> None:
        """One gradient step on critics, actor and temperature."""
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_a, next_logp = self.actor(batch["next_obs"])
            next_q = self.critic_target(batch["next_obs"], next_a).min(0).values - alpha * next_logp
            target = batch["reward"] + self.config.gamma * (1 - batch["terminal"]) * next_q
        critic_loss = ((self.critic(batch["obs"], batch["action"]) - target) ** 2).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        a, logp = self.actor(batch["obs"])
        actor_loss = (alpha * logp - self.critic(batch["obs"], a, detach_params=True).min(0).values).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        with torch.no_grad():
            for p, tp in zip(self.critic.parameters(), self.critic_target.parameters()):
                tp.lerp_(p, self.config.tau)
