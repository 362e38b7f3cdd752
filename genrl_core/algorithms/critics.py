"""Critics shared by all algorithms: IQL (expectile V, double Q) and a double-Q TD critic."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from genrl_core.algorithms.config import doc
from genrl_core.common import ema_update, frozen_copy
from genrl_core.generative.networks import DoubleQNet, VNet


@dataclass
class CriticConfig:
    """The critic's settings, declared once: every algorithm with a critic composes them into its config (as a base
    class), and IQLCritic / TDCritic read them from it."""

    gamma: float = doc(0.99, "discount factor")
    critic_lr: float = doc(1e-4, "Adam learning rate of Q (and V) (paper Table 7)")
    critic_tau: float = doc(0.005, "Polyak rate of the target Q")
    critic_hidden: tuple[int, ...] = doc((256, 256), "hidden widths of each Q (and V) MLP")
    critic_value_init: bool = doc(False, "start Q (and V) at mean(r)/(1-gamma) (a choice, not the paper's; faster at "
                                         "gamma 0.99)")
    critic_init: str = doc("", "file with a pretrained IQL critic's state_dict (torch.save), or a training checkpoint "
                               "(genrl_core.train --out DIR: DIR/checkpoint.pt) whose agent has one, that warm-starts "
                               "Q, target Q (and V where the critic has one) (a choice); \"\" trains from scratch")


class _ValueInit(nn.Module):
    """Sets the output biases of value heads to mean(r) / (1 - gamma) at the first update (once, checkpointed).

    With gamma = 0.99 a zero-initialised critic spends thousands of steps propagating the value's magnitude
    before its action dependence can form; starting at the right magnitude removes that phase.
    """

    def __init__(self, enabled: bool):
        super().__init__()
        self.register_buffer("done", torch.tensor(not enabled))
        self._done_cache = not enabled  # host copy of `done` (no device read in the training loop)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + "done" in state_dict:  # read at load time, never inside an update
            self._done_cache = bool(state_dict[prefix + "done"])

    def mark_done(self) -> None:
        """The heads already hold values (e.g. loaded from a pretrained critic): never initialise them."""
        self.done.fill_(True)
        self._done_cache = True

    @torch.no_grad()
    def __call__(self, reward: torch.Tensor, gamma: float, *heads: nn.Sequential) -> None:
        if self._done_cache:
            return
        for head in heads:
            head[-1].bias.copy_(reward.mean() / (1.0 - gamma))
        self.done.fill_(True)
        self._done_cache = True


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric squared loss |tau - 1(diff < 0)| * diff^2, per element."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff.pow(2)


def _heads(q: DoubleQNet) -> tuple[nn.Sequential, nn.Sequential]:
    return q.q1.net, q.q2.net


def pretrain_iql(critic: "IQLCritic", sample: Callable[[], dict[str, torch.Tensor]], steps: int) -> "IQLCritic":
    """Algorithm 1's first loop on its own: `steps` IQL updates on batches from sample(); returns the critic."""
    for _ in range(steps):
        critic.update(sample())
    return critic


def warm_start(path: str, critic: nn.Module, v: nn.Module | None = None) -> None:
    """Load Q, target Q (and V) of an IQL critic saved with torch.save(critic.state_dict(), path), or of the critic
    of a training checkpoint's agent (e.g. a GMPO run's), into `critic`."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        if "agent" in state:  # a checkpoint of run.training.train: the IQL critic inside its agent
            state = {k[len("critic."):]: t for k, t in state["agent"]["model"].items() if k.startswith("critic.")}
        for name, module in (("q", critic.q), ("q_target", critic.q_target), ("v", v)):
            if module is not None:
                module.load_state_dict({k[len(name) + 1:]: t for k, t in state.items() if k.startswith(name + ".")})
    except (OSError, RuntimeError, KeyError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"critic_init {path!r} is neither an IQL critic state_dict of this size nor a training "
                         f"checkpoint whose agent has one (save one with torch.save(critic.state_dict(), path)): "
                         f"{first}") from None
    critic.value_init.mark_done()


class IQLCritic(nn.Module):
    """Implicit Q-learning (Kostrikov et al. 2022, paper Eq. 32): V by expectile regression on min-Q."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: CriticConfig | None = None, expectile: float = 0.7):
        super().__init__()
        self.cfg, self.expectile = cfg or CriticConfig(), expectile  # expectile: 0.7 locomotion, 0.9 AntMaze
        self.q = DoubleQNet(obs_dim, act_dim, tuple(self.cfg.critic_hidden))
        self.v = VNet(obs_dim, tuple(self.cfg.critic_hidden))
        self.q_target = frozen_copy(self.q)
        self.q_opt = torch.optim.Adam(self.q.parameters(), lr=self.cfg.critic_lr)
        self.v_opt = torch.optim.Adam(self.v.parameters(), lr=self.cfg.critic_lr)
        self.value_init = _ValueInit(self.cfg.critic_value_init)

    def q_value(self, obs: torch.Tensor, act: torch.Tensor, target: bool = True) -> torch.Tensor:
        """min over the two Q heads (target network by default, as IQL's policy extraction uses)."""
        return (self.q_target if target else self.q)(obs, act).min(0).values

    def advantage(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q(s, a) - V(s) with the target Q, no gradient."""
        with torch.no_grad():
            return self.q_value(obs, act) - self.v(obs)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One V step and one Q step; returns detached losses (no host sync)."""
        obs, act = batch["obs"], batch["action"]
        self.value_init(batch["reward"], self.cfg.gamma, self.v.net, *_heads(self.q), *_heads(self.q_target))
        with torch.no_grad():
            q_t = self.q_value(obs, act)
        v_loss = expectile_loss(q_t - self.v(obs), self.expectile).mean()
        self.v_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        self.v_opt.step()
        with torch.no_grad():
            target = batch["reward"] + self.cfg.gamma * (1.0 - batch["terminal"]) * self.v(batch["next_obs"])
        q_loss = (self.q(obs, act) - target).pow(2).mean(-1).sum()
        self.q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.q_opt.step()
        ema_update(self.q_target, self.q, self.cfg.critic_tau)
        return {"v_loss": v_loss.detach(), "q_loss": q_loss.detach()}


class TDCritic(nn.Module):
    """Double-Q TD learning: target r + gamma (1 - d) min_j Q_target_j(s', a'), a' from the given actor."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: CriticConfig | None = None):
        super().__init__()
        self.cfg = cfg or CriticConfig()
        self.q = DoubleQNet(obs_dim, act_dim, tuple(self.cfg.critic_hidden))
        self.q_target = frozen_copy(self.q)
        self.q_opt = torch.optim.Adam(self.q.parameters(), lr=self.cfg.critic_lr)
        self.value_init = _ValueInit(self.cfg.critic_value_init)

    def q_value(self, obs: torch.Tensor, act: torch.Tensor, target: bool = False) -> torch.Tensor:
        """min over the two Q heads (online network by default, differentiable in act)."""
        return (self.q_target if target else self.q)(obs, act).min(0).values

    def update(self, batch: dict[str, torch.Tensor],
               next_action_fn: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
        """One TD step; next_action_fn(next_obs) draws a' (e.g. from an EMA actor)."""
        self.value_init(batch["reward"], self.cfg.gamma, *_heads(self.q), *_heads(self.q_target))
        with torch.no_grad():
            next_q = self.q_value(batch["next_obs"], next_action_fn(batch["next_obs"]), target=True)
            target = batch["reward"] + self.cfg.gamma * (1.0 - batch["terminal"]) * next_q
        q_loss = (self.q(batch["obs"], batch["action"]) - target).pow(2).mean(-1).sum()
        self.q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.q_opt.step()
        ema_update(self.q_target, self.q, self.cfg.critic_tau)
        return {"q_loss": q_loss.detach()}
