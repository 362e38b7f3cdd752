"""Probability paths x_t = alpha_t x0 + sigma_t eps, with data at t = 0 and noise at t = 1.

Every path here is Gaussian given the data point x0, which makes the four things a network can
predict (noise eps, score, velocity of the probability-flow ODE, data x0) interchangeable:
    x = alpha x0 + sigma eps,      v = alpha' x0 + sigma' eps,      score = -eps / sigma.
Paper references (GMPO/GMPG paper, Appendix B): Eqs. 17-20 (diffusion), 27-28 (I-CFM).

I-CFM is written in this module's time direction: the paper's x_t = t x1 + (1 - t) x0 with x1 the data
becomes x_t = (1 - t) x_data + t z + s eps' here (t_ours = 1 - t_paper), so that every path samples
by integrating from t = 1 down to t = 0.
"""
from __future__ import annotations

import math

import torch

PREDICTIONS = ("eps", "score", "velocity", "x0")


class Path:
    """Base class: subclasses give alpha, sigma and their time derivatives."""

    name = "path"
    is_diffusion = False  # diffusion paths (VPSDE, GVP) admit DPM-Solver and eps models by tradition

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Scale of the data in x_t = alpha_t x_0 + sigma_t z."""
        raise NotImplementedError

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Scale of the noise in x_t = alpha_t x_0 + sigma_t z."""
        raise NotImplementedError

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """d alpha_t / dt."""
        raise NotImplementedError

    def d_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """d sigma_t / dt."""
        raise NotImplementedError

    # --- SDE coefficients (Eqs. 18-19) ---
    def drift(self, t: torch.Tensor) -> torch.Tensor:
        """f(t) = d log alpha_t / dt."""
        return self.d_alpha(t) / self.alpha(t)

    def g2(self, t: torch.Tensor) -> torch.Tensor:
        """g^2(t) = d sigma_t^2 / dt - 2 f(t) sigma_t^2."""
        s = self.sigma(t)
        return 2 * s * self.d_sigma(t) - 2 * self.drift(t) * s * s

    def prior_std(self) -> float:
        """Standard deviation of the source N(0, std^2 I) at t = 1."""
        return float(self.sigma(torch.tensor(1.0, dtype=torch.float64)))

    # --- training pairs ---
    def sample_xt(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_t, eps, conditional velocity target) for data x0 [B, d] at times t [B]."""
        eps = torch.randn_like(x0)
        a, s = _col(self.alpha(t)), _col(self.sigma(t))
        return a * x0 + s * eps, eps, _col(self.d_alpha(t)) * x0 + _col(self.d_sigma(t)) * eps

    # --- conversions, all through the (x0, eps) pair ---
    def to_x0_eps(self, pred: torch.Tensor, x: torch.Tensor, t: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0, eps) implied by a prediction of the given kind at (x, t)."""
        a, s = _col(self.alpha(t)), _col(self.sigma(t))
        if kind == "eps":
            return (x - s * pred) / a, pred
        if kind == "score":
            eps = -s * pred
            return (x - s * eps) / a, eps
        if kind == "x0":
            return pred, (x - a * pred) / s
        if kind == "velocity":
            da, ds = _col(self.d_alpha(t)), _col(self.d_sigma(t))
            det = a * ds - s * da
            return (ds * x - s * pred) / det, (a * pred - da * x) / det
        raise ValueError(f"unknown prediction type {kind!r}; valid: {list(PREDICTIONS)}")

    def convert(self, pred: torch.Tensor, x: torch.Tensor, t: torch.Tensor, src: str, dst: str) -> torch.Tensor:
        """Convert a prediction of kind src into kind dst (each one of PREDICTIONS)."""
        if dst not in PREDICTIONS:
            raise ValueError(f"unknown prediction type {dst!r}; valid: {list(PREDICTIONS)}")
        if src == dst:
            return pred
        if src == "eps" and dst == "velocity":  # the hot path of eps models: avoids dividing by alpha twice
            f = _col(self.drift(t))
            return f * x + (_col(self.d_sigma(t)) - f * _col(self.sigma(t))) * pred
        x0, eps = self.to_x0_eps(pred, x, t, src)
        if dst == "eps":
            return eps
        if dst == "score":
            return -eps / _col(self.sigma(t))
        if dst == "x0":
            return x0
        return _col(self.d_alpha(t)) * x0 + _col(self.d_sigma(t)) * eps


def _col(v: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-sample [B] (or scalar) coefficient against [B, d]."""
    return v.unsqueeze(-1) if v.dim() == 1 else v


class VPSDE(Path):
    """Linear variance-preserving SDE (Song et al. 2021): beta_t = beta_0 + t (beta_1 - beta_0)."""

    name = "vpsde"
    is_diffusion = True

    def __init__(self, beta_0: float = 0.1, beta_1: float = 20.0):
        self.beta_0, self.beta_1 = beta_0, beta_1

    def log_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return -0.25 * t * t * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return self.log_alpha(t).exp()

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return (-torch.expm1(2 * self.log_alpha(t))).sqrt()

    def drift(self, t: torch.Tensor) -> torch.Tensor:
        return -0.5 * (self.beta_0 + t * (self.beta_1 - self.beta_0))

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return self.drift(t) * self.alpha(t)

    def d_sigma(self, t: torch.Tensor) -> torch.Tensor:
        a2 = (2 * self.log_alpha(t)).exp()
        return -self.drift(t) * a2 / self.sigma(t)

    def g2(self, t: torch.Tensor) -> torch.Tensor:
        return self.beta_0 + t * (self.beta_1 - self.beta_0)

    def t_of_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        """Inverse of lambda_t = log(alpha_t / sigma_t) (closed form, DPM-Solver appendix)."""
        log_term = torch.log1p(torch.exp(-2 * lam))
        db = self.beta_1 - self.beta_0
        return 2 * log_term / ((self.beta_0 ** 2 + 2 * db * log_term).sqrt() + self.beta_0)


class GVP(Path):
    """Generalised VP path (Albergo & Vanden-Eijnden 2023): alpha = cos(pi t / 2), sigma = sin(pi t / 2)."""

    name = "gvp"
    is_diffusion = True

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.cos(0.5 * math.pi * t)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sin(0.5 * math.pi * t)

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def d_sigma(self, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def t_of_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        """Inverse of lambda_t = log cot(pi t / 2)."""
        return torch.atan(torch.exp(-lam)) * (2 / math.pi)


class Linear(Path):
    """Rectified-flow / linear interpolation path: alpha = 1 - t, sigma = t."""

    name = "linear"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1 - t

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.ones_like(t)

    def d_sigma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t)


class ICFM(Path):
    """Independent conditional flow matching (Tong et al. 2024): x_t = (1 - t) x0 + t z + s eps'.

    Given x0 this is Gaussian with alpha = 1 - t and sigma = sqrt(t^2 + s^2); training uses the
    paper's conditional velocity z - x0 (Eq. 28, in this module's time direction).
    """

    name = "icfm"

    def __init__(self, sigma_min: float = 0.01):
        self.s = sigma_min  # the policies' default is PolicyConfig.icfm_sigma (0.1, the GMPO/GMPG authors')

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1 - t

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return (t * t + self.s ** 2).sqrt()

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.ones_like(t)

    def d_sigma(self, t: torch.Tensor) -> torch.Tensor:
        return t / self.sigma(t)

    def sample_xt(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z, e = torch.randn_like(x0), torch.randn_like(x0)
        tt = _col(t)
        x_t = (1 - tt) * x0 + tt * z + self.s * e
        eps = (x_t - (1 - tt) * x0) / _col(self.sigma(t))
        return x_t, eps, z - x0


PATHS = {"vpsde": VPSDE, "gvp": GVP, "linear": Linear, "icfm": ICFM}


def make_path(name: str, **kwargs) -> Path:
    """Build a path by name: one of vpsde, gvp, linear, icfm."""
    if name not in PATHS:
        raise ValueError(f"unknown path {name!r}; valid: {sorted(PATHS)}")
    return PATHS[name](**kwargs)
