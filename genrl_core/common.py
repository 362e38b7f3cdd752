"""Small shared pieces: EMA / Polyak averaging, the divergence error, seeding."""
from __future__ import annotations

import copy
import random

import numpy as np
import torch
from torch import nn

from genrl_core.torch_compat import foreach_lerp_


class DivergenceError(RuntimeError):
    """A loss became non-finite; the message names the step and the loss."""


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, parameter-wise (buffers copied)."""
    tp, sp = list(target.parameters()), list(source.parameters())
    foreach_lerp_(tp, sp, tau)
    for tb, sb in zip(target.buffers(), source.buffers()):
        tb.copy_(sb)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off, for targets and EMA teachers."""
    twin = copy.deepcopy(module)
    twin.requires_grad_(False)
    return twin


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch.Generator seeded the same for batch sampling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
