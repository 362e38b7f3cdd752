"""A conditional 2-D Swiss roll for exercising generative models (the bandits live in bandits.py)."""
from __future__ import annotations

import math

import torch


def swiss_roll(n: int, generator: torch.Generator | None = None, noise: float = 0.02) -> torch.Tensor:
    """n points [n, 2] on a 2-D Swiss roll scaled to about [-1, 1]^2, with a little Gaussian noise."""
    u = torch.rand(n, generator=generator)
    theta = 1.5 * math.pi * (1 + 2 * u)
    pts = torch.stack([theta * torch.cos(theta), theta * torch.sin(theta)], dim=-1) / (4.5 * math.pi)
    return pts + noise * torch.randn(n, 2, generator=generator)


def conditional_swiss_roll(n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [n, 2], cond [n, 1]): cond = 0 gives the roll, cond = 1 the roll mirrored through the origin."""
    x = swiss_roll(n, generator)
    c = torch.randint(0, 2, (n, 1), generator=generator).float()
    return x * (1 - 2 * c), c
