"""Small shared pieces: EMA / Polyak averaging, divergence checks, seeding."""
from __future__ import annotations

import copy
import random

import numpy as np
import torch
from torch import nn


class DivergenceError(RuntimeError):
    """A loss became non-finite; the message names the step and the loss."""


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, parameter-wise (buffers copied)."""
    tp, sp = list(target.parameters()), list(source.parameters())
    torch._foreach_lerp_(tp, sp, tau)
    for tb, sb in zip(target.buffers(), source.buffers()):
        tb.copy_(sb)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off, for targets and EMA teachers."""
    twin = copy.deepcopy(module)
    twin.requires_grad_(False)
    return twin


def check_finite(step: int, losses: dict[str, torch.Tensor | float]) -> None:
    """Raise DivergenceError naming the step and the first non-finite loss (reads values: call at report time)."""
    for name, value in losses.items():
        v = float(value)
        if not np.isfinite(v):
            raise DivergenceError(f"training diverged at step {step}: loss {name!r} became {v}")


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch.Generator seeded the same for batch sampling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
