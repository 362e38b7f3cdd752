"""One generative model for diffusion and flow policies: a path, a backbone and what it predicts.

    model = GenerativeModel(make_path("vpsde"), backbone, prediction="eps")
    model.loss(actions, states)                     # per-sample matching loss [B]
    model.sample(states, solver="euler", steps=32)  # actions [B, d]
    model.log_prob(actions, states)                 # log pi(a | s) [B]
    model.sample_with_log_prob(states)              # (actions, log pi) from one pass
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from genrl_core.generative import solvers
from genrl_core.generative.likelihood import augmented_field, gaussian_log_prob, hutchinson_probe
from genrl_core.generative.paths import PREDICTIONS, Path, make_path

WEIGHTINGS = ("vanilla", "mle")


class GenerativeModel(nn.Module):
    """Path + backbone net(x, t, cond) + prediction type (eps, score, velocity or x0)."""

    def __init__(self, path: Path | str, net: nn.Module, prediction: str = "velocity", t_min: float = 1e-3,
                 weighting: str = "vanilla"):
        super().__init__()
        self.path = make_path(path) if isinstance(path, str) else path
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction type {prediction!r}; valid: {list(PREDICTIONS)}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown score-matching weighting {weighting!r}; valid: {list(WEIGHTINGS)}")
        self.net, self.prediction, self.weighting = net, prediction, weighting
        self.x_dim, self.cond_dim = net.x_dim, net.cond_dim
        self.t_min = t_min
        # eps and score predictions cannot express the velocity where alpha_t = 0 (GVP, linear, I-CFM at t = 1)
        singular = prediction in ("eps", "score") and float(self.path.alpha(torch.tensor(1.0))) < 1e-6
        self.t_max = 1.0 - t_min if singular else 1.0
        self.grad_checkpoint = False  # recompute solver steps in backward: memory bounded at large step counts

    # --- network outputs ---
    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Probability-flow velocity dx/dt at (x, t)."""
        return self.path.convert(self.net(x, t, cond), x, t, self.prediction, "velocity")

    def eps(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Noise prediction at (x, t) (what DPM-Solver steps with)."""
        return self.path.convert(self.net(x, t, cond), x, t, self.prediction, "eps")

    # --- training ---
    def loss(self, x0: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample matching loss [B]: score matching for eps/score models, flow matching for velocity, x0 regression."""
        self._check(x0, cond)
        t = self.t_min + (self.t_max - self.t_min) * torch.rand(x0.shape[0], device=x0.device, dtype=x0.dtype)
        x_t, eps, v_target = self.path.sample_xt(x0, t)
        pred = self.net(x_t, t, cond)
        if self.prediction == "velocity":
            err = pred - v_target
        elif self.prediction == "x0":
            err = pred - x0
        else:  # eps or score: lambda(t) ||s - grad log p(x_t | x0)||^2 = (lambda / sigma^2) ||eps_pred - eps||^2
            err = self.path.convert(pred, x_t, t, self.prediction, "eps") - eps
        per_sample = err.pow(2).mean(-1)
        if self.prediction in ("eps", "score") and self.weighting == "mle":
            per_sample = per_sample * self.path.g2(t) / self.path.sigma(t).pow(2)
        return per_sample

    # --- sampling and likelihood ---
    def sample(self, cond: torch.Tensor | None = None, *, n: int | None = None, solver: str = "euler",
               steps: int = 32, with_grad: bool = False, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Samples x [B, d] by integrating from t_max to t_min; noise (scaled N(0, I) draws) may be given."""
        solvers.check_solver(solver, steps)
        x = self._prior_noise(cond, n, noise)
        with _grad(with_grad):
            if solver == "dpm2":
                grid = solvers.time_grid(self.t_max, self.t_min, steps, x.device, x.dtype)
                return solvers.dpm_solver_2(lambda t, y: self.eps(y, t, cond), x, grid, self.path)
            return self._solve(lambda t, y: self.velocity(y, t, cond), x, self.t_max, self.t_min, solver, steps, cond)

    @torch.no_grad()
    def sample_path(self, cond: torch.Tensor | None = None, *, n: int | None = None, solver: str = "euler",
                    steps: int = 32, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(times [steps + 1], states [steps + 1, B, d]) of the generation trajectory from t_max to t_min."""
        if solver not in solvers.FIXED_STEP:
            raise ValueError(f"sample_path needs a fixed-step solver; valid: {list(solvers.FIXED_STEP)}")
        solvers.check_solver(solver, steps)
        x = self._prior_noise(cond, n, noise)
        grid = solvers.time_grid(self.t_max, self.t_min, steps, x.device, x.dtype)
        return grid, solvers.integrate(lambda t, y: self.velocity(y, t, cond), x, grid, solver, keep_path=True)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, solver: str = "euler", steps: int = 32,
                 trace: str = "exact", with_grad: bool = False, probe: str = "rademacher") -> torch.Tensor:
        """log p(x | cond) [B] by integrating x and div v from t_min to t_max in one pass."""
        self._check(x, cond)
        solvers.check_solver(solver, steps)
        state = torch.cat([x, torch.zeros_like(x[:, :1])], dim=-1)
        field = augmented_field(lambda t, y: self.velocity(y, t, cond), trace, hutchinson_probe(x, probe))
        with _grad(with_grad):
            out = self._solve(field, state, self.t_min, self.t_max, solver, steps, cond)
            return gaussian_log_prob(out[:, :-1], self.prior_std) + out[:, -1]

    def sample_with_log_prob(self, cond: torch.Tensor | None = None, *, n: int | None = None, solver: str = "euler",
                             steps: int = 32, trace: str = "exact", with_grad: bool = False,
                             noise: torch.Tensor | None = None, probe: str = "rademacher") -> tuple[torch.Tensor, torch.Tensor]:
        """(x, log p(x | cond)) with the log-density carried along the sampling trajectory (no second solve)."""
        solvers.check_solver(solver, steps)
        x1 = self._prior_noise(cond, n, noise)
        state = torch.cat([x1, torch.zeros_like(x1[:, :1])], dim=-1)
        field = augmented_field(lambda t, y: self.velocity(y, t, cond), trace, hutchinson_probe(x1, probe))
        with _grad(with_grad):
            out = self._solve(field, state, self.t_max, self.t_min, solver, steps, cond)
            return out[:, :-1], gaussian_log_prob(x1, self.prior_std) - out[:, -1]

    @property
    def prior_std(self) -> float:
        """Std of the Gaussian source at t_max."""
        return float(self.path.sigma(torch.tensor(self.t_max, dtype=torch.float64)))

    # --- helpers ---
    def _solve(self, field, x: torch.Tensor, t0: float, t1: float, solver: str, steps: int,
               cond: torch.Tensor | None) -> torch.Tensor:
        """Integrate the field (which reads the parameters and cond) from t0 to t1; gradients reach x, the
        parameters and cond."""
        params = tuple(p for p in self.parameters() if p.requires_grad)
        if cond is not None and cond.requires_grad:
            params += (cond,)  # the recomputed steps of grad_checkpoint pass gradients to their explicit inputs only
        if solver in solvers.FIXED_STEP:
            grid = solvers.time_grid(t0, t1, steps, x.device, x.dtype)
            return solvers.integrate(field, x, grid, solver, checkpoint=self.grad_checkpoint, params=params)
        if solver == "dpm2":
            raise ValueError("dpm2 samples only; use euler, midpoint, rk4 or dopri5 for likelihoods")
        return solvers.integrate_adaptive(field, x, t0, t1, adjoint=solver == "dopri5_adjoint", params=params)

    def _prior_noise(self, cond: torch.Tensor | None, n: int | None, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is not None:
            return noise * self.prior_std
        if cond is None and n is None:
            raise ValueError("sample needs a condition batch or n (the number of samples)")
        if cond is not None:
            self._check(None, cond)
        batch = cond.shape[0] if cond is not None else n
        p = next(self.parameters())
        return torch.randn(batch, self.x_dim, device=p.device, dtype=p.dtype) * self.prior_std

    def _check(self, x: torch.Tensor | None, cond: torch.Tensor | None) -> None:
        if x is not None and (x.dim() != 2 or x.shape[1] != self.x_dim):
            raise ValueError(f"x must have shape [batch, {self.x_dim}], got {list(x.shape)}")
        if self.cond_dim and (cond is None or cond.dim() != 2 or cond.shape[1] != self.cond_dim):
            got = None if cond is None else list(cond.shape)
            raise ValueError(f"condition must have shape [batch, {self.cond_dim}], got {got}")
        if x is not None and cond is not None and cond.shape[0] != x.shape[0]:
            raise ValueError(f"x and condition batch sizes differ: {x.shape[0]} vs {cond.shape[0]}")


def _grad(enabled: bool):
    return contextlib.nullcontext() if enabled else torch.no_grad()
