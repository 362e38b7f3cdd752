"""The baselines SfBC, IDQL, QGPO, SRPO and Diffusion-QL (paper Appendix C) on the toy bandits, their checkpoints,
their command line and their config errors.

The behaviour model of SfBC / IDQL / QGPO / SRPO starts as a copy of BC's (trained once per bandit), so each test
runs the algorithm's own update() for its second phase only. Where a test is about policy extraction rather than
Q-learning, the critic is the bandit's exact value (ExactTD); every algorithm also has a test with its real critic.
"""
from __future__ import annotations

import io
import math
import re
import subprocess
import sys

import pytest
import torch

from genrl_core.data import bandits
from genrl_core.algorithms.in_support import CACHE_SEED_OFFSET
from genrl_core.data.loading import load
from genrl_core.generative.ddpm import DDPM
from genrl_core.generative.model import GenerativeModel
from genrl_core.run.training import build_agent, train, train_steps

POLICY = {"backbone": "resunet", "widths": (64, 64), "lr": 2e-3, "path": "vpsde", "prediction": "velocity",
          "sampling_steps": 16}
CRITIC = {"critic_hidden": (128, 128), "critic_lr": 1e-3}
PRETRAIN = 1000  # BC steps of the shared behaviour model
IN_SUPPORT = {"behaviour_steps": PRETRAIN, "target_candidates": 2, "train_sampling_steps": 4}
QGPO = {**IN_SUPPORT, "energy_candidates": 8, "energy_hidden": (128, 128), "energy_lr": 1e-3, "beta": 5.0}
SRPO = {"behaviour_steps": PRETRAIN, "actor_hidden": (64, 64), "actor_lr": 1e-3, "beta": 0.3}
DQL = {"sampling_steps": 5, "ema_tau": 0.05, "prediction": "eps"}  # POLICY is a velocity model; the DDPM predicts eps
# algorithm -> bandit -> (first step, steps, exact critic, config): first step PRETRAIN skips behaviour training
RUNS = {
    "sfbc": {"swissroll": (PRETRAIN, 300, False, {**IN_SUPPORT, "candidates": 16}),
             "multimodal": (PRETRAIN, 300, False, {**IN_SUPPORT, "candidates": 16})},
    "idql": {"swissroll": (0, 300, False, {"candidates": 16, "expectile": 0.95}),
             "multimodal": (0, 300, False, {"candidates": 16, "expectile": 0.95})},
    "qgpo": {"swissroll": (PRETRAIN, 200, False, QGPO), "multimodal": (PRETRAIN, 200, True, QGPO)},
    "srpo": {"swissroll": (PRETRAIN - 300, 600, False, SRPO), "multimodal": (PRETRAIN, 300, True, SRPO)},
    "dql": {"swissroll": (0, 400, False, {**DQL, "eta": 1.0}), "multimodal": (0, 400, True, {**DQL, "eta": 0.3})},
}
TINY = {"backbone": "mlp", "widths": (32, 32), "sampling_steps": 3, "loglik_steps": 3, "critic_hidden": (32, 32)}
TINY_EXTRA = {"sfbc": {"behaviour_steps": 2, "target_candidates": 2, "candidates": 3, "train_sampling_steps": 2},
              "idql": {"candidates": 3}, "dql": {"candidates": 3},
              "qgpo": {"behaviour_steps": 2, "target_candidates": 2, "energy_candidates": 3, "train_sampling_steps": 2,
                       "energy_hidden": (32, 32)},
              "srpo": {"behaviour_steps": 2, "actor_hidden": (32, 32), "actor": "gaussian"}}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these small models only lose time to thread contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ExactTD(bandits.ExactCritic):
    """The bandit's exact value with the update signature of both critics (it learns nothing)."""

    def update(self, batch, *args):
        return {}


def figures(agent, name: str, n: int = 1000) -> tuple[float, float]:
    """(mean true value, fraction within 0.25 of the best mode) of the agent's actions."""
    torch.manual_seed(7)
    acts = agent.act(torch.zeros(n, 1))
    return float(bandits.value(name, acts).mean()), bandits.fraction_near_best(acts, 0.25, name)


@pytest.fixture(scope="module")
def bc():
    """BC on each bandit: the baselines' shared behaviour model and the reference figures."""
    out = {}
    for name in ("swissroll", "multimodal"):
        torch.manual_seed(0)
        agent = build_agent("bc", 1, 2, POLICY)
        train_steps(agent, load(f"toy/{name}-v0"), 0, PRETRAIN, 256, torch.Generator().manual_seed(0)).read()
        out[name] = (agent, figures(agent, name))
    return out


def run(algo: str, name: str, bc_agent) -> tuple[float, float]:
    """Train algo on a bandit as RUNS says; its figures."""
    start, steps, exact, extra = RUNS[algo][name]
    data = load(f"toy/{name}-v0")
    torch.manual_seed(0)
    agent = build_agent(algo, 1, 2, {**POLICY, **CRITIC, **extra})
    if hasattr(agent, "behaviour"):
        agent.behaviour.load_state_dict(bc_agent.policy.state_dict())
    if exact:
        agent.critic = ExactTD(name, float(data.reward.mean()))
    agent.bind_data(data, 0)  # SfBC / QGPO: candidates drawn once per dataset state, as train() does
    train_steps(agent, data, start, start + steps, 256, torch.Generator().manual_seed(1)).read()
    return figures(agent, name)


@pytest.mark.parametrize("algo", list(RUNS))
def test_swissroll_value_clearly_above_bc(algo, bc):
    bc_value = bc["swissroll"][1][0]  # about -1.0, the data's mean value
    value, _ = run(algo, "swissroll", bc["swissroll"][0])
    assert value > bc_value + 0.5, (algo, value, bc_value)


@pytest.mark.parametrize("algo", list(RUNS))
def test_multimodal_mass_on_best_mode(algo, bc):
    bc_near = bc["multimodal"][1][1]  # the data put 1/4 of its mass on each mode; BC's blur leaves less near one
    value, near = run(algo, "multimodal", bc["multimodal"][0])
    assert bc_near < 0.35 and near > 0.5, (algo, near, bc_near, value)


def tiny(algo: str):
    torch.manual_seed(0)
    return build_agent(algo, 1, 2, {**TINY, **TINY_EXTRA[algo]})


@pytest.mark.parametrize("algo", list(RUNS))
def test_checkpoint_round_trip_gives_the_same_actions(algo):
    data = load("toy/multimodal-v0")
    agent = tiny(algo)
    train_steps(agent, data, 0, 4, 32, torch.Generator().manual_seed(0)).read()  # through both phases
    buf = io.BytesIO()
    torch.save(agent.full_state(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["optim"] and all(v["state"] for v in state["optim"].values()), list(state["optim"])
    twin = tiny(algo)
    twin.load_full_state(state)
    obs = torch.zeros(8, 1)
    torch.manual_seed(3)
    a = agent.act(obs)
    torch.manual_seed(3)
    assert torch.equal(a, twin.act(obs))


@pytest.mark.parametrize("algo", list(RUNS))
def test_trainer_runs_each_baseline(algo):
    rows = train(algo, "toy/multimodal-v0", steps=4, batch_size=32, eval_every=4, log=None,
                 overrides={**TINY, **TINY_EXTRA[algo]})
    assert rows[-1]["step"] == 4 and rows[-1]["return_mean"] == rows[-1]["return_mean"]  # finite value


@pytest.mark.parametrize("algo", ["sfbc", "qgpo"])
def test_candidate_cache_holds_behaviour_samples_looked_up_by_index(algo, hopper_datasets):
    """Each dataset state's candidates are drawn once from the behaviour model with the cache's own generator; a
    batch gets the rows of its dataset indices (Eq. 29: next states; QGPO's Eq. 30: states)."""
    data = load(hopper_datasets["medium"])
    agent = build_agent(algo, data.obs_dim, data.act_dim, {**TINY, **TINY_EXTRA[algo]})
    batch = data.sample(64, torch.Generator().manual_seed(0))
    assert agent.cached(batch, "next_obs") is None  # unbound: fresh samples in every update
    agent.bind_data(data, seed=5)
    rng = torch.get_rng_state()
    got = {key: agent.cached(batch, key) for key in agent.cache_sizes()}  # the first look-up builds the cache
    assert torch.equal(torch.get_rng_state(), rng)  # the global random stream is left alone (exact resume)
    g, c = torch.Generator().manual_seed(5 + CACHE_SEED_OFFSET), agent.cfg
    assert list(agent.cache) == list(agent.cache_sizes()) == (["next_obs"] if algo == "sfbc" else ["next_obs", "obs"])
    for key, n in agent.cache_sizes().items():
        states = getattr(data, key)
        assert agent.cache[key].shape == (len(data), n, data.act_dim)
        torch.testing.assert_close(got[key], agent.cache[key][batch["index"]].flatten(0, 1), rtol=0, atol=0)
        noise = torch.randn(len(data) * n, data.act_dim, generator=g)  # the dataset fits one chunk
        want = agent.behaviour.sample(states.repeat_interleave(n, dim=0), solver=c.solver, steps=c.train_sampling_steps,
                                      noise=noise)
        torch.testing.assert_close(agent.cache[key].flatten(0, 1), want)
        assert float(agent.cache[key][:, 0].std()) > 0.1  # distinct states, distinct noise: distinct candidates
    off = build_agent(algo, data.obs_dim, data.act_dim, {**TINY, **TINY_EXTRA[algo], "candidate_cache": False})
    off.bind_data(data, seed=5)
    assert off.cached(batch, "next_obs") is None and off.cache is None


def test_cli_help_lists_the_baseline_fields():
    out = subprocess.run([sys.executable, "-m", "genrl_core.train", "--algo", "qgpo", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--energy-candidates", "--guidance-scale", "--target-candidates", "--behaviour-steps"):
        assert flag in out


@pytest.mark.parametrize("algo, overrides, message", [
    ("qgpo", {"path": "icfm", "prediction": "velocity"}, "QGPO needs a diffusion path (vpsde or gvp), got 'icfm'"),
    ("qgpo", {"path": "linear"}, "paper Appendix C.2"),
    ("qgpo", {"solver": "dopri5"}, "QGPO: guided sampling needs a fixed-step solver, got 'dopri5'"),
    ("srpo", {"path": "icfm"}, "SRPO needs a diffusion path (vpsde or gvp), got 'icfm'"),
    ("srpo", {"actor": "beta"}, "SRPO: unknown actor 'beta'; valid: ['deterministic', 'gaussian']"),
    ("sfbc", {"select": "best"}, "SfBC: unknown select 'best'; valid: ['argmax', 'softmax']"),
    ("sfbc", {"target": "mean"}, "SfBC: unknown target 'mean'; valid: ['softmax', 'max']"),
    ("idql", {"select": "softmax"}, "IDQL: unknown select 'softmax'; valid: ['implicit', 'argmax']"),
    ("idql", {"candidates": 0}, "IDQL: candidates must be >= 1, got 0"),
    ("dql", {"eta": -1.0}, "Diffusion-QL: eta must be >= 0.0, got -1.0"),
    ("dql", {"diffusion": "sde"}, "Diffusion-QL: unknown diffusion 'sde'; valid: ['ddpm', 'ode']"),
    ("dql", {"prediction": "velocity"},
     "Diffusion-QL (diffusion=ddpm): unknown prediction 'velocity'; valid: ['eps', 'x0']"),
    ("dql", {"beta_schedule": "cosine"}, "Diffusion-QL: unknown beta_schedule 'cosine'; valid: ['vp', 'linear']"),
])
def test_bad_configs_are_one_clear_line(algo, overrides, message):
    with pytest.raises(ValueError) as err:
        build_agent(algo, 1, 2, {**TINY, **overrides})
    assert message in str(err.value) and "\n" not in str(err.value)


class _ExactEps(torch.nn.Module):
    """The noise prediction of data N(0, 1) under a VP path: eps(x_t, t) = sigma_t x_t (its marginals stay N(0, 1))."""

    x_dim, cond_dim = 1, 1

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.unused = torch.nn.Parameter(torch.zeros(1))  # the model reads its device and dtype off a parameter

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.path.sigma(t.expand(x.shape[0]) if t.dim() == 0 else t).unsqueeze(-1) * x


class _QuadraticEnergy(torch.nn.Module):
    """The exact intermediate energy of E(a) = -c a^2 on mu = N(0, 1): E_t(x) = -c alpha_t^2 x^2 / (1 + 2 c sigma_t^2)."""

    def __init__(self, path, c: float):
        super().__init__()
        self.path, self.c = path, c

    def forward(self, x: torch.Tensor, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        a, s = self.path.alpha(t), self.path.sigma(t)
        return -self.c * a ** 2 * x[:, 0] ** 2 / (1 + 2 * self.c * s ** 2)


@pytest.mark.parametrize("solver,steps", [("euler", 50), ("midpoint", 16)])
def test_qgpo_guidance_samples_the_closed_form_tilt(solver: str, steps: int):
    """mu = N(0, 1) tilted by exp(E), E(a) = -c a^2, is N(0, 1 / (1 + 2c)): QGPO's guided sampling (Eq. 31) with the
    exact behaviour score and the exact intermediate energy must give that variance (and 1 without guidance)."""
    agent = build_agent("qgpo", 1, 1, {"backbone": "mlp", "widths": (8,), "solver": solver, "sampling_steps": steps})
    path = agent.behaviour.path
    agent.behaviour.net, agent.energy = _ExactEps(path), _QuadraticEnergy(path, c=2.0)
    torch.manual_seed(0)
    obs = torch.zeros(40_000, 1)
    guided, plain = agent.act(obs), agent.behaviour.sample(obs, solver=solver, steps=steps)
    assert float(guided.var()) == pytest.approx(0.2, abs=0.015) and float(plain.var()) == pytest.approx(1.0, abs=0.04)


# --- Diffusion-QL as its code runs it: a discrete DDPM of 5 "vp" levels, 50 candidates chosen by softmax(Q) -----

B_MIN, B_MAX = 0.1, 10.0  # Diffusion-QL's vp_beta_schedule


def _vp_abar(tau):
    """exp(-integral_0^tau beta(u) du) for beta(u) = B_MIN + (B_MAX - B_MIN) u: the VP-SDE's abar at time tau."""
    return (torch.as_tensor(tau) * -(B_MIN + 0.5 * (B_MAX - B_MIN) * torch.as_tensor(tau))).exp()


def test_ddpm_vp_schedule_is_diffusion_qls():
    """Diffusion-QL's vp schedule at T = 5: beta_k = 1 - exp(-b_min / T - (b_max - b_min) (2k - 1) / (2 T^2)), whose
    cumulative products are the VP-SDE's abar at tau = k / T; the DQL default samples with it."""
    agent = build_agent("dql", 1, 1, {"backbone": "mlp", "widths": (8,), "critic_hidden": (8,)})
    model = agent.policy
    assert isinstance(model, DDPM) and isinstance(agent.ema, DDPM) and model.steps == 5
    betas = [1 - math.exp(-B_MIN / 5 - 0.5 * (B_MAX - B_MIN) * (2 * k - 1) / 25) for k in range(1, 6)]
    torch.testing.assert_close(model.betas, torch.tensor(betas), rtol=1e-6, atol=0)
    abar = _vp_abar(torch.arange(1, 6, dtype=torch.float64) / 5)
    torch.testing.assert_close(model.alphas_cumprod.double(), abar, rtol=1e-6, atol=0)
    assert [round(float(a), 4) for a in abar] == [0.8041, 0.4352, 0.1585, 0.0389, 0.0064]
    # the DDPM posterior q(x_{i-1} | x_i, x_0): variance beta_i (1 - abar_{i-1}) / (1 - abar_i), 0 at the last step
    prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    post_var = torch.tensor(betas, dtype=torch.float64) * (1 - prev) / (1 - abar)
    torch.testing.assert_close(model.post_std[1:].double(), post_var[1:].sqrt(), rtol=1e-5, atol=0)
    assert float(model.post_std[0]) < 1e-9


class _GaussianDenoiser(torch.nn.Module):
    """The exact prediction for data N(m, s^2) under the vp chain, level read off the time input t = (i + 1) / N:
    x_t = sqrt(a) x_0 + sqrt(1 - a) eps, a = abar(t), v = a s^2 + 1 - a; E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) m)
    / v and E[x_0 | x_t] = m + sqrt(a) s^2 (x_t - sqrt(a) m) / v."""

    x_dim, cond_dim = 1, 1

    def __init__(self, m: float, s: float, prediction: str):
        super().__init__()
        self.m, self.s, self.prediction = m, s, prediction
        self.unused = torch.nn.Parameter(torch.zeros(1))  # the sampler reads its device and dtype off a parameter

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        a = _vp_abar(t.expand(x.shape[0]) if t.dim() == 0 else t).unsqueeze(-1)
        resid = (x - a.sqrt() * self.m) / (a * self.s ** 2 + 1 - a)
        return (1 - a).sqrt() * resid if self.prediction == "eps" else self.m + a.sqrt() * self.s ** 2 * resid


def _chain_law(m: float, s: float, n: int) -> tuple[float, float]:
    """(mean, std) of N ancestral DDPM steps from N(0, 1) with the exact x_0 prediction (unclipped): each step is
    affine, x_{i-1} = k0 E[x_0 | x_i] + k1 x_i + sigma_i z, so the law stays Gaussian."""
    abar = [float(_vp_abar((k + 1) / n)) for k in range(n)]
    mean, var = 0.0, 1.0
    for i in reversed(range(n)):
        a, a_prev = abar[i], abar[i - 1] if i else 1.0
        beta = 1 - a / a_prev
        gain = math.sqrt(a) * s * s / (a * s * s + 1 - a)  # E[x_0 | x_i] = m + gain (x_i - sqrt(a) m)
        k0, k1 = math.sqrt(a_prev) * beta / (1 - a), math.sqrt(1 - beta) * (1 - a_prev) / (1 - a)
        mean = (k0 * gain + k1) * mean + k0 * m * (1 - gain * math.sqrt(a))
        var = (k0 * gain + k1) ** 2 * var + beta * (1 - a_prev) / (1 - a)
    return mean, math.sqrt(var)


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_ddpm_with_the_exact_prediction_samples_its_closed_form_law(prediction: str):
    """Data N(0.4, 0.3^2), the exact eps (or x_0) prediction: the sampler's output is the Gaussian of _chain_law. At
    N = 5 that is much narrower than the data (std 0.14: the last, deterministic step denoises from abar = 0.80, and
    each step's posterior variance leaves out Var(x_0 | x_i)); at N = 1000 it is the data's law (std 0.297). The
    training loss at a uniform level is E_i Var(target | x_i), in closed form too."""
    m, s = 0.4, 0.3
    torch.manual_seed(0)
    obs = torch.zeros(40_000, 1)
    for n in (5, 1000):
        want = _chain_law(m, s, n)
        model = DDPM(_GaussianDenoiser(m, s, prediction), steps=n, schedule="vp", prediction=prediction, clip=10.0)
        x = model.sample(obs)
        assert float(x.mean()) == pytest.approx(want[0], abs=0.006), (n, want)
        assert float(x.std()) == pytest.approx(want[1], rel=0.02), (n, want)
    assert float(x.mean()) == pytest.approx(m, abs=0.006) and float(x.std()) == pytest.approx(s, rel=0.03)
    assert _chain_law(m, s, 5)[1] < 0.5 * s  # the 5-level chain really is narrower: the check above sees the chain
    a = _vp_abar((torch.arange(5, dtype=torch.float64) + 1) / 5)
    v = a * s * s + 1 - a
    want_loss = float((a * s * s / v if prediction == "eps" else s * s * (1 - a) / v).mean())
    model = DDPM(_GaussianDenoiser(m, s, prediction), steps=5, prediction=prediction, clip=10.0)
    x0 = m + s * torch.randn(200_000, 1)
    assert float(model.loss(x0, torch.zeros(200_000, 1)).mean()) == pytest.approx(want_loss, rel=0.02)
    clipped = DDPM(_GaussianDenoiser(m, s, prediction), steps=5, prediction=prediction, clip=0.5).sample(obs)
    assert float(clipped.max()) <= 0.5 and float(clipped.min()) >= -0.5


class _SlopeQ(torch.nn.Module):
    """Both Q heads as slope * a[:, 0] (the second shifted up, so min-Q is the first head's)."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = slope

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        q = self.slope * act[:, 0]
        return torch.stack([q, q + 0.5])


def test_dql_acts_by_a_softmax_draw_over_50_candidates_scored_by_the_target_critic():
    """Diffusion-QL's sample_action: 50 samples of the online actor per state, one drawn from softmax(Q) of the
    target critic's min-Q. With fixed candidates the drawn indices follow softmax(Q) (not the online critic's)."""
    agent = build_agent("dql", 1, 1, {"backbone": "mlp", "widths": (8,), "critic_hidden": (8,)})
    c = agent.cfg
    assert (c.diffusion, c.sampling_steps, c.beta_schedule, c.candidates, c.select, c.select_beta, c.act_with_ema) == \
        ("ddpm", 5, "vp", 50, "softmax", 1.0, False)
    grid = torch.linspace(-1, 1, 50)
    used_ema = []

    def fixed_candidates(obs, ema=True, with_grad=False):
        used_ema.append(ema)
        return grid.repeat(obs.shape[0] // 50 + 1)[:obs.shape[0]].unsqueeze(-1)

    agent.sample = fixed_candidates
    agent.critic.q_target, agent.critic.q = _SlopeQ(8.0), _SlopeQ(-8.0)
    torch.manual_seed(0)
    acts = agent.act(torch.zeros(20_000, 1))
    assert used_ema == [False]
    index = ((acts[:, 0] + 1) * 49 / 2).round().long()
    freq = torch.bincount(index, minlength=50).float() / len(index)
    p = torch.softmax(8.0 * grid, 0)
    assert float((freq - p).abs().max()) < 0.015, (freq[-5:], p[-5:])  # p[-1] = 0.28, p[-2] = 0.20, ...
    assert int(freq.argmax()) == 49


@pytest.mark.parametrize("diffusion", ["ddpm", "ode"])
def test_dql_trains_with_gradient_through_the_sampler_and_ema_next_actions(diffusion: str):
    """A few updates with either policy: finite losses; the critic's next actions come from the EMA policy, the Q
    term's from the online policy with gradient through all 5 sampling steps to every network weight."""
    data = load("toy/multimodal-v0")
    torch.manual_seed(0)
    agent = build_agent("dql", 1, 2, {"backbone": "mlp", "widths": (32, 32), "critic_hidden": (32, 32),
                                      "diffusion": diffusion})
    assert isinstance(agent.policy, DDPM if diffusion == "ddpm" else GenerativeModel)
    agent.sample(torch.zeros(16, 1), ema=False, with_grad=True).sum().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in agent.policy.parameters())
    agent.policy.zero_grad(set_to_none=True)
    calls = []
    for name, model in (("ema", agent.ema), ("online", agent.policy)):
        def spy(*args, _sample=model.sample, _name=name, **kwargs):
            calls.append((_name, kwargs.get("with_grad", False)))
            return _sample(*args, **kwargs)
        model.sample = spy
    before = [p.detach().clone() for p in agent.policy.parameters()]
    losses = train_steps(agent, data, 0, 4, 64, torch.Generator().manual_seed(0)).read()
    assert set(losses) == {"q_loss", "policy_loss", "bc_loss", "q_policy"}
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert calls == [("ema", False), ("online", True)] * 4
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))


def test_qgpo_guidance_scale_per_task_table():
    """GUIDANCE_SCALE holds D4RL task names -> s; guidance_scale_for falls back to the given default."""
    from genrl_core.algorithms.qgpo import GUIDANCE_SCALE, guidance_scale_for
    assert guidance_scale_for("no-such-task-v2") == 1.0 and guidance_scale_for("no-such-task-v2", 0.3) == 0.3
    for task, scale in GUIDANCE_SCALE.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*-v\d", task) and scale >= 0 and guidance_scale_for(task) == scale
