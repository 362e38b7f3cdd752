"""Toy one-step datasets (bandits) whose true action values are known, so policy improvement is checked exactly.

Both live in a 2-D action space, with a constant 1-dim zero observation, reward = value(action), terminal = 1.

- swissroll: the 2-D Swiss roll of the GMPO/GMPG paper (Appendix C.8). Spiral points are
  t * (cos t, sin t) / (4.5 pi) for t in [1.5 pi, 4.5 pi] (so the outer end is (0, 1)), plus Gaussian noise
  (0.6 / (4.5 pi) by default, the paper's 0.6 in spiral units). The value rises linearly along the spiral from
  -3.5 at the centre (t = 1.5 pi) to 1.5 at the outer end (t = 4.5 pi). The value of any action is the value
  of the nearest spiral point (a dense grid of 4096 points), so it is defined everywhere.
- multimodal: four Gaussian modes (std 0.1, equal weights) at (+-0.5, +-0.5) with rewards 1.0, 0.5, 0.0, -0.5.
  The value of any action is max_k (r_k - 4 |a - c_k|^2): each centre has its mode's reward, and the
  maximum, 1.0, is at the best mode's centre (0.5, 0.5).
"""
from __future__ import annotations

import math

import torch

from genrl_core.data.offline import OfflineData

T_START, T_END = 1.5 * math.pi, 4.5 * math.pi
SWISS_SCALE = T_END  # divides spiral coordinates so that the outer end lies at radius 1
V_CENTRE, V_OUTER = -3.5, 1.5
MODE_CENTRES = torch.tensor([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
MODE_REWARDS = torch.tensor([1.0, 0.5, 0.0, -0.5])
MODE_STD = 0.1
MODE_SHARPNESS = 4.0  # value falls by 4 |a - c_k|^2 away from a centre
BEST_MODE: dict[str, tuple[float, float]] = {
    "multimodal": (0.5, 0.5),
    "swissroll": (math.cos(T_END), math.sin(T_END)),  # the outer end, (0, 1)
}


def spiral(t: torch.Tensor) -> torch.Tensor:
    """Noise-free Swiss roll points at spiral parameters t, in action units."""
    return torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=-1) / SWISS_SCALE


def _spiral_value(t: torch.Tensor) -> torch.Tensor:
    """Value rising linearly from -3.5 at the centre to 1.5 at the outer end."""
    return V_CENTRE + (V_OUTER - V_CENTRE) * (t - T_START) / (T_END - T_START)


def _swissroll_value(action: torch.Tensor) -> torch.Tensor:
    """Value of the nearest point of the spiral (grid of 4096 points)."""
    grid_t = torch.linspace(T_START, T_END, 4096, dtype=torch.float64, device=action.device)
    grid = spiral(grid_t)
    nearest = torch.cdist(action.reshape(-1, 2).double(), grid).argmin(dim=-1)
    return _spiral_value(grid_t[nearest]).to(action.dtype).reshape(action.shape[:-1])


def _multimodal_value(action: torch.Tensor) -> torch.Tensor:
    """max_k (r_k - 4 |a - c_k|^2)."""
    centres, rewards = MODE_CENTRES.to(action), MODE_REWARDS.to(action)
    d2 = ((action.unsqueeze(-2) - centres) ** 2).sum(-1)
    return (rewards - MODE_SHARPNESS * d2).max(dim=-1).values


def value(name: str, action: torch.Tensor) -> torch.Tensor:
    """True value of actions [..., 2] for bandit `name` ('swissroll' or 'multimodal'); returns [...]."""
    if name == "swissroll":
        return _swissroll_value(action)
    if name == "multimodal":
        return _multimodal_value(action)
    raise ValueError(f"unknown bandit {name!r}; valid: swissroll, multimodal")


def fraction_near_best(actions: torch.Tensor, radius: float = 0.2, name: str = "multimodal") -> float:
    """Fraction of actions within `radius` of the best mode's centre."""
    best = torch.tensor(BEST_MODE[name], dtype=actions.dtype, device=actions.device)
    return float(((actions - best).norm(dim=-1) < radius).float().mean())


def _one_step_data(action: torch.Tensor, name: str) -> OfflineData:
    """Wrap bandit actions as a one-step OfflineData (zero obs, reward = value, terminal = 1)."""
    n = action.shape[0]
    obs = torch.zeros(n, 1)
    return OfflineData(obs=obs, action=action.float(), reward=value(name, action).float(), next_obs=obs.clone(),
                       terminal=torch.ones(n), dataset_id=f"toy/{name}-v0", env_id=None,
                       ref_min_score=None, ref_max_score=None, obs_mean=None, obs_std=None)


def swissroll(n: int = 10000, seed: int = 0, noise: float = 0.6) -> OfflineData:
    """Swiss roll bandit: t uniform on [1.5 pi, 4.5 pi], noise in spiral units (paper: 0.6)."""
    g = torch.Generator().manual_seed(seed)
    t = T_START + (T_END - T_START) * torch.rand(n, generator=g, dtype=torch.float64)
    action = spiral(t) + noise / SWISS_SCALE * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return _one_step_data(action.float(), "swissroll")


def multimodal(n: int = 10000, seed: int = 0) -> OfflineData:
    """Four equally likely Gaussian modes with rewards 1.0 (best, at (0.5, 0.5)), 0.5, 0.0, -0.5."""
    g = torch.Generator().manual_seed(seed)
    mode = torch.randint(0, len(MODE_CENTRES), (n,), generator=g)
    action = MODE_CENTRES[mode] + MODE_STD * torch.randn(n, 2, generator=g)
    return _one_step_data(action, "multimodal")


DATASETS = {"toy/swissroll-v0": swissroll, "toy/multimodal-v0": multimodal}


class ExactCritic(torch.nn.Module):
    """The bandit's true value as a critic (Q = value, V = the data's mean value), so that policy extraction
    is checked without critic error. The Swiss roll's value is smoothed over the spiral grid (a softmin of
    squared distances, temperature `smooth`) so that it has an action gradient for GMPG."""

    def __init__(self, name: str, data_value_mean: float, smooth: float = 1e-3):
        super().__init__()
        if name not in BEST_MODE:
            raise ValueError(f"unknown bandit {name!r}; valid: swissroll, multimodal")
        self.name, self.v_mean, self.smooth = name, data_value_mean, smooth

    def q_value(self, obs: torch.Tensor, act: torch.Tensor, target: bool = True) -> torch.Tensor:
        if self.name == "multimodal":
            return _multimodal_value(act)
        grid_t = torch.linspace(T_START, T_END, 1024, device=act.device)
        w = torch.softmax(-torch.cdist(act, spiral(grid_t)).pow(2) / self.smooth, dim=-1)
        return w @ _spiral_value(grid_t)

    def advantage(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.q_value(obs, act) - self.v_mean

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {}
