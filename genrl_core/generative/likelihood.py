"""Log-likelihoods by the instantaneous change of variables (GMPO/GMPG paper Eqs. 44-45).

The ODE state is augmented with the running integral of div v, so x and the divergence are
integrated in one pass: log p_0(x_0) = log p_1(x_1) + int_0^1 div v(x_t, t) dt. The same augmented
field run backwards from noise gives a sample together with its own log-probability.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

TRACES = ("exact", "hutchinson")


def divergence(v: torch.Tensor, x: torch.Tensor, trace: str, probe: torch.Tensor | None,
               create_graph: bool) -> torch.Tensor:
    """div_x v per sample [B]: the exact Jacobian trace (d backward passes) or Hutchinson's probe^T J probe."""
    if trace == "exact":
        div = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for i in range(x.shape[1]):
            (g,) = torch.autograd.grad(v[:, i].sum(), x, create_graph=create_graph, retain_graph=True)
            div = div + g[:, i]
        return div
    if trace == "hutchinson":
        (vjp,) = torch.autograd.grad(v, x, probe, create_graph=create_graph)
        return (vjp * probe).sum(-1)
    raise ValueError(f"unknown trace estimator {trace!r}; valid: {list(TRACES)}")


def augmented_field(v_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], trace: str,
                    probe: torch.Tensor | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The field of the state [x, acc] with dx/dt = v and d acc/dt = div v.

    Builds a graph through v and the divergence only when gradients are enabled by the caller.
    """
    if trace not in TRACES:
        raise ValueError(f"unknown trace estimator {trace!r}; valid: {list(TRACES)}")

    def field(t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        keep = torch.is_grad_enabled()
        with torch.enable_grad():
            x = state[:, :-1]
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            v = v_fn(t, x)
            div = divergence(v, x, trace, probe, create_graph=keep)
        out = torch.cat([v, div.unsqueeze(-1)], dim=-1)
        return out if keep else out.detach()

    return field


def hutchinson_probe(like: torch.Tensor, kind: str = "rademacher") -> torch.Tensor:
    """A probe vector for Hutchinson's estimator, fixed for one whole solve."""
    if kind == "rademacher":
        return torch.randint(0, 2, like.shape, device=like.device).to(like.dtype) * 2 - 1
    return torch.randn_like(like)


def gaussian_log_prob(x: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x; 0, std^2 I) per sample."""
    d = x.shape[-1]
    return -0.5 * (x * x).sum(-1) / std ** 2 - d * math.log(std) - 0.5 * d * math.log(2 * math.pi)
