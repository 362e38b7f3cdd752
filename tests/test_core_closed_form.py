"""Closed-form checks of paths, solvers and likelihoods with exact Gaussian velocity fields."""
import math

import pytest
import torch
from torch import nn

from genrl_core.generative import solvers
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.paths import PATHS, make_path

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)


@pytest.fixture(autouse=True)
def float64():
    """Closed-form checks run in double precision; the default dtype is restored for the other test files."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


class AnalyticNet(nn.Module):
    """Outputs the exact marginal velocity of N(MU, COV) data on a path, in the requested prediction type."""

    def __init__(self, path, prediction):
        super().__init__()
        self.path, self.prediction, self.x_dim, self.cond_dim = path, prediction, 2, 0
        self.dummy = nn.Parameter(torch.ones(()))  # gives the model a device, dtype and a gradient target

    def forward(self, x, t, cond=None):
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        a, s = self.path.alpha(t)[:, None, None], self.path.sigma(t)[:, None, None]
        da, ds = self.path.d_alpha(t)[:, None, None], self.path.d_sigma(t)[:, None, None]
        eye = torch.eye(2)
        c_t = a * a * COV + s * s * eye
        gain = (da * a * COV + ds * s * eye) @ torch.linalg.inv(c_t)
        v = da[:, :, 0] * MU + (gain @ (x - a[:, :, 0] * MU).unsqueeze(-1)).squeeze(-1)
        return self.path.convert(v * self.dummy, x, t, "velocity", self.prediction)


def analytic_log_density(path, t, x):
    a, s = path.alpha(torch.tensor(t)), path.sigma(torch.tensor(t))
    dist = torch.distributions.MultivariateNormal(a * MU, a * a * COV + s * s * torch.eye(2))
    return dist.log_prob(x)


def model_log_density(model, x, x_end=None):
    """The density the model defines: p_{t_min} pushed back from its N(0, prior_std^2) source instead of p_{t_max}.

    log p_model(x) = log p_{t_min}(x) + log N(x_T; 0, std^2) - log p_{t_max}(x_T), with x_T the exact flow of x.
    (VPSDE's alpha_1 = 0.0066 and eps models' t_max < 1 make p_{t_max} differ from the source by ~0.02 nats.)
    """
    if x_end is None:
        grid = solvers.time_grid(model.t_min, model.t_max, 400)
        x_end = solvers.integrate(lambda t, y: model.velocity(y, t, None), x, grid, "rk4")
    prior = torch.distributions.Normal(0.0, model.prior_std).log_prob(x_end).sum(-1)
    return analytic_log_density(model.path, model.t_min, x) + prior - analytic_log_density(model.path, model.t_max, x_end)


def test_solver_orders():
    """Global error on dx/dt = -2 t x (x(t) = x0 exp(-t^2)) falls at each solver's order when steps double."""
    f = lambda t, x: -2 * t * x
    x0, exact = torch.ones(1, 1), math.exp(-4.0)
    for solver, order in [("euler", 1), ("midpoint", 2), ("rk4", 4)]:
        errs = [abs(float(solvers.integrate(f, x0, solvers.time_grid(0.0, 2.0, n), solver)) - exact) for n in (20, 40, 80)]
        rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
        assert all(abs(r - order) < 0.25 for r in rates), (solver, rates)


CASES = [("vpsde", "eps"), ("vpsde", "velocity"), ("vpsde", "score"), ("gvp", "velocity"), ("gvp", "eps"),
         ("linear", "velocity"), ("linear", "x0"), ("icfm", "velocity")]


@pytest.mark.parametrize("path_name,prediction", CASES)
def test_log_prob_matches_analytic_density(path_name, prediction):
    torch.manual_seed(0)
    path = make_path(path_name)
    model = GenerativeModel(path, AnalyticNet(path, prediction), prediction)
    x = torch.distributions.MultivariateNormal(MU, COV).sample((64,))
    truth = model_log_density(model, x)
    exact = model.log_prob(x, solver="rk4", steps=32, trace="exact")
    assert (exact - truth).abs().max() < 1e-2
    # Hutchinson: unbiased, so the mean of many probes is within 3 standard errors of the exact trace
    reps = 300  # 300 independent probes for each of 8 points, in one batch
    est = model.log_prob(x[:8].repeat(reps, 1), solver="rk4", steps=32, trace="hutchinson").view(reps, 8)
    se = est.std(0) / math.sqrt(reps)
    assert ((est.mean(0) - exact[:8]).abs() < 3 * se + 1e-3).all()


@pytest.mark.parametrize("path_name,prediction", CASES)
def test_samples_match_target_and_carry_their_log_prob(path_name, prediction):
    torch.manual_seed(1)
    path = make_path(path_name)
    model = GenerativeModel(path, AnalyticNet(path, prediction), prediction)
    x = model.sample(n=20000, solver="rk4", steps=32)
    cov_err = (torch.cov(x.T) - COV).abs() / COV.abs().max()
    assert ((x.mean(0) - MU).abs() < 0.05 * MU.abs().max()).all() and (cov_err < 0.05).all()
    noise = torch.randn(64, 2)
    xs, logp = model.sample_with_log_prob(noise=noise, solver="rk4", steps=64)
    assert (logp - model_log_density(model, xs, noise * model.prior_std)).abs().max() < 1e-2


@pytest.mark.parametrize("path_name", ["vpsde", "gvp"])
def test_dpm_solver_matches_target(path_name):
    torch.manual_seed(2)
    path = make_path(path_name)
    model = GenerativeModel(path, AnalyticNet(path, "eps"), "eps")
    noise = torch.randn(4000, 2)
    ref = model.sample(noise=noise, solver="rk4", steps=400)
    errs = [(model.sample(noise=noise, solver="dpm2", steps=n) - ref).abs().mean() for n in (20, 40, 80)]
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(abs(r - 2) < 0.3 for r in rates), rates  # second order
    assert (model.sample(noise=noise, solver="dpm2", steps=20).mean(0) - MU).abs().max() < 0.05


def test_adaptive_solver_matches_fixed_step():
    torch.manual_seed(3)
    path = make_path("gvp")
    model = GenerativeModel(path, AnalyticNet(path, "velocity"), "velocity")
    noise = torch.randn(16, 2)
    ref = model.sample(noise=noise, solver="rk4", steps=200)
    for s in ("dopri5", "dopri5_adjoint"):
        assert (model.sample(noise=noise, solver=s) - ref).abs().max() < 1e-3


@pytest.mark.parametrize("path_name", sorted(PATHS))
def test_conversions_round_trip(path_name):
    path = make_path(path_name)
    x, t = torch.randn(10, 3), torch.rand(10) * 0.9 + 0.05
    v = torch.randn(10, 3)
    for kind in ("eps", "score", "x0"):
        back = path.convert(path.convert(v, x, t, "velocity", kind), x, t, kind, "velocity")
        assert torch.allclose(back, v, atol=1e-8)


def test_sde_coefficients_match_definitions():
    """f = d log alpha / dt and g^2 = d sigma^2/dt - 2 f sigma^2 (Eqs. 18-19), by finite differences."""
    t, h = torch.linspace(0.05, 0.95, 19), 1e-6
    for name in PATHS:
        p = make_path(name)
        assert torch.allclose(p.d_alpha(t), (p.alpha(t + h) - p.alpha(t - h)) / (2 * h), atol=1e-5)
        assert torch.allclose(p.d_sigma(t), (p.sigma(t + h) - p.sigma(t - h)) / (2 * h), atol=1e-5)
        if name == "vpsde":
            assert torch.allclose(p.g2(t), 2 * p.sigma(t) * p.d_sigma(t) - 2 * p.drift(t) * p.sigma(t) ** 2)
