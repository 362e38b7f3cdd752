"""ODE solvers over a time grid: fixed-step Euler, midpoint, RK4 (3/8 rule), DPM-Solver-2, and
adaptive dopri5 through torchdiffeq (optionally with the adjoint method).

Fixed-step solvers are plain loops: no host synchronisation, everything on the state's device.
Gradients flow through them unless the caller runs them under torch.no_grad().
"""
from __future__ import annotations

from typing import Callable

import torch

from genrl_core.generative.paths import Path

VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (t scalar tensor, x) -> dx/dt

FIXED_STEP = ("euler", "midpoint", "rk4")
SOLVERS = (*FIXED_STEP, "dpm2", "dopri5", "dopri5_adjoint")


def check_solver(solver: str, steps: int) -> None:
    """One clear error for an unknown solver or a step count below 1."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid: {list(SOLVERS)}")
    if int(steps) < 1:
        raise ValueError(f"sampling steps must be >= 1, got {steps}")


def time_grid(t_start: float, t_end: float, steps: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """steps + 1 evenly spaced times from t_start to t_end (either direction)."""
    return torch.linspace(t_start, t_end, steps + 1, device=device, dtype=dtype)


def _euler(f: VectorField, x: torch.Tensor, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return x + h * f(t, x)


def _midpoint(f: VectorField, x: torch.Tensor, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return x + h * f(t + 0.5 * h, x + 0.5 * h * f(t, x))


def _rk4(f: VectorField, x: torch.Tensor, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Kutta's 3/8 rule."""
    k1 = f(t, x)
    k2 = f(t + h / 3, x + h * k1 / 3)
    k3 = f(t + 2 * h / 3, x + h * (k2 - k1 / 3))
    k4 = f(t + h, x + h * (k1 - k2 + k3))
    return x + h * (k1 + 3 * (k2 + k3) + k4) / 8


_STEPPERS = {"euler": _euler, "midpoint": _midpoint, "rk4": _rk4}


class _RecomputedStep(torch.autograd.Function):
    """One solver step that keeps only its input state for backward and recomputes the step there.

    torch.utils.checkpoint cannot serve here: a field that differentiates inside the step (the divergence of
    likelihood.augmented_field) makes its non-reentrant form recompute and keep every step's activations during the
    forward pass already, so memory grew with the step count. Gradients reach the field's parameters because they
    are inputs of this function.
    """

    @staticmethod
    def forward(ctx, step, f: VectorField, x: torch.Tensor, t: torch.Tensor, h: torch.Tensor,
                *params: torch.Tensor) -> torch.Tensor:
        ctx.step, ctx.f = step, f
        ctx.save_for_backward(x, t, h, *params)
        return step(f, x, t, h)  # grad mode is off here: the field builds no graph

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, t, h, *params = ctx.saved_tensors
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            out = ctx.step(ctx.f, x, t, h)
            wrt = [x, *(p for p in params if p.requires_grad)]
            grads = iter(torch.autograd.grad(out, wrt, grad, allow_unused=True))
        gx = next(grads)
        return (None, None, gx if ctx.needs_input_grad[2] else None, None, None,
                *(next(grads) if p.requires_grad else None for p in params))


def integrate(f: VectorField, x: torch.Tensor, grid: torch.Tensor, solver: str = "euler",
              checkpoint: bool = False, keep_path: bool = False,
              params: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
    """Integrate dx/dt = f(t, x) from grid[0] to grid[-1] with a fixed-step solver.

    checkpoint=True recomputes each step in the backward pass, so the forward pass keeps one state per step and
    memory stays bounded by one step's activations however many steps there are; gradients then reach the field's
    parameters only if they are given as `params`. keep_path=True returns every state on the grid stacked as
    [len(grid), *x.shape].
    """
    step = _STEPPERS.get(solver)
    if step is None:
        raise ValueError(f"unknown fixed-step solver {solver!r}; valid: {list(FIXED_STEP)}")
    checkpoint = checkpoint and torch.is_grad_enabled()
    path = [x] if keep_path else None
    for i in range(grid.shape[0] - 1):
        if checkpoint:
            x = _RecomputedStep.apply(step, f, x, grid[i], grid[i + 1] - grid[i], *params)
        else:
            x = step(f, x, grid[i], grid[i + 1] - grid[i])
        if keep_path:
            path.append(x)
    return torch.stack(path) if keep_path else x


def integrate_adaptive(f: VectorField, x: torch.Tensor, t_start: float, t_end: float, *, adjoint: bool = False,
                       params: tuple[torch.Tensor, ...] = (), rtol: float = 1e-5, atol: float = 1e-5) -> torch.Tensor:
    """Adaptive dopri5 through torchdiffeq; with adjoint=True gradients reach `params` by the adjoint ODE."""
    import torchdiffeq

    span = torch.tensor([t_start, t_end], device=x.device, dtype=x.dtype)
    if adjoint:
        out = torchdiffeq.odeint_adjoint(f, x, span, method="dopri5", rtol=rtol, atol=atol,
                                         adjoint_params=tuple(params))
    else:
        out = torchdiffeq.odeint(f, x, span, method="dopri5", rtol=rtol, atol=atol)
    return out[-1]


def dpm_solver_2(eps_fn: VectorField, x: torch.Tensor, grid: torch.Tensor, path: Path) -> torch.Tensor:
    """Single-step DPM-Solver of order 2 (Lu et al. 2022) for a diffusion path, given eps_fn(t, x).

    The intermediate time of each step sits at the midpoint in lambda = log(alpha / sigma).
    """
    if not path.is_diffusion:
        raise ValueError(f"DPM-Solver needs a diffusion path (vpsde or gvp), got {path.name!r}")
    lam = torch.log(path.alpha(grid) / path.sigma(grid))
    for i in range(grid.shape[0] - 1):
        s, t = grid[i], grid[i + 1]
        h = lam[i + 1] - lam[i]
        s1 = path.t_of_lambda(lam[i] + 0.5 * h)
        a_s, a_s1, a_t = path.alpha(s), path.alpha(s1), path.alpha(t)
        u = (a_s1 / a_s) * x - path.sigma(s1) * torch.expm1(0.5 * h) * eps_fn(s, x)
        x = (a_t / a_s) * x - path.sigma(t) * torch.expm1(h) * eps_fn(s1, u)
    return x
