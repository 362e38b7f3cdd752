"""GTP: the flow map (parametrisation, K-step sampling, semigroup), policy improvement, ablations, config errors."""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from genrl_core.data import bandits
from genrl_core.algorithms.gtp import GTP, GTPConfig, advantage_weight, discretisation, sample_times
from genrl_core.data.loading import load
from genrl_core.evaluation import dataset_score, evaluate_dataset
from genrl_core.generative.flow_map import FlowMap, karras_grid
from genrl_core.generative.metrics import energy_distance, mean_nearest_distance
from genrl_core.run.training import build_agent, train

# Reduced test budget (seconds, not the paper's 2M steps): T = 10 instead of 80 (2-D actions of scale 1 do not need
# it, and fewer log-time decades train faster), the discretisation grows 10 -> 20 instead of 10 -> 1280 (a short
# run cannot propagate consistency along a 1280-point chain) and a higher learning rate.
FAST = dict(t_max=10.0, n_end=20, actor_lr=1e-3)
SMALL = (128, 128, 128)  # actor widths where the default 256 x 3 is not needed
SWISS_STEPS = 4000


def fit(agent: GTP, data, steps: int, seed: int = 0) -> GTP:
    """Plain training loop on an OfflineData."""
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        agent.update(data.sample(256, g), step)
    return agent


# ---------------------------------------------------------------- flow map, no training
def test_karras_grid_and_schedule() -> None:
    grid = karras_grid(5, 0.002, 80.0)
    assert grid[0].item() == 80.0 and grid[-1].item() == pytest.approx(0.002) and bool((grid.diff() < 0).all())
    cfg = GTPConfig(schedule_steps=8000)  # 8 stages of 1000 steps: 10, 20, ..., 1280
    assert [discretisation(s, cfg) for s in (0, 999, 1000, 7999, 10**6)] == [10, 10, 20, 1280, 1280]
    t, u, tau = sample_times(40, 4096, cfg, torch.device("cpu"))
    assert bool((t > u).all()) and bool((u >= tau).all()) and bool((tau >= cfg.t_min * 0.999).all())
    on_grid = karras_grid(40, cfg.t_min, cfg.t_max, descending=False)
    assert bool(torch.isin(t, on_grid).all() and torch.isin(tau, on_grid).all())
    # log-normal time sampling (mean -1.1, std 2): about half of the t fall below exp(-1.1) = 0.33
    assert 0.35 < float((t < 0.33).float().mean()) < 0.65


def test_parametrisation_boundary_and_exact_point_mass_flow() -> None:
    torch.manual_seed(0)
    fm = FlowMap(3, 2, hidden=(32, 32))
    obs, x = torch.randn(64, 3), 5 * torch.randn(64, 2)
    t = torch.full((64,), 5.0)
    torch.testing.assert_close(fm(obs, x, t, t), x)  # Phi(x, t, t) = x
    torch.testing.assert_close(fm.velocity(obs, x, t), (x - fm.denoise(obs, x, t)) / 5.0)
    noise = torch.randn(64, 2)
    torch.testing.assert_close(fm.sample(obs, 3, noise=noise), fm.sample(obs, 3, noise=noise))  # deterministic
    # With phi = a0 (the exact denoiser of a point mass at a0) Phi is the exact VE flow a0 + (tau/t)(x - a0):
    # a semigroup, and K-step sampling from a_T lands at a0 + (t_min/T)(a_T - a0) for every K.
    a0 = torch.tensor([0.3, -0.7])
    fm.phi = lambda obs, a_t, t, tau: a0.expand_as(a_t)
    s, r = torch.full((64,), 1.0), torch.full((64,), 0.01)
    torch.testing.assert_close(fm(obs, fm(obs, x, t, s), s, r), fm(obs, x, t, r))
    expect = a0 + (fm.t_min / fm.t_max) * (fm.t_max * noise - a0)
    for k in (1, 2, 5):
        torch.testing.assert_close(fm.sample(obs, k, noise=noise), expect)


def test_advantage_weight() -> None:
    adv = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    w = advantage_weight(adv, eta=1.0, w_max=100.0)
    torch.testing.assert_close(w[:3], torch.ones(3))  # max(0, A): non-positive advantages get weight 1
    torch.testing.assert_close(w[3:], torch.exp(torch.tensor([1.0, 2.0]) / adv.std()), rtol=1e-4, atol=0)
    assert float(advantage_weight(adv * 1e3, eta=50.0, w_max=7.0).max()) == pytest.approx(7.0)
    torch.testing.assert_close(advantage_weight(adv, eta=0.0, w_max=100.0), torch.ones(5))  # GTP-BC


# ---------------------------------------------------------------- Swiss roll: K-step quality and semigroup
@pytest.fixture(scope="module")
def swiss() -> dict:
    """A GTP-BC map (default 256 x 3 MLP) trained on the Swiss roll (1-dim zero observation), and its initial copy."""
    torch.manual_seed(0)
    data = bandits.swissroll(10000, seed=0)
    agent = GTP(GTPConfig(eta=0.0, schedule_steps=SWISS_STEPS, **FAST), 1, 2)
    untrained = copy.deepcopy(agent.actor)
    fit(agent, data, SWISS_STEPS)
    return {"agent": agent, "untrained": untrained, "ref": bandits.swissroll(2000, seed=1).action}


def test_swiss_roll_samples_at_k_1_2_5(swiss: dict) -> None:
    ref, n = swiss["ref"], swiss["ref"].shape[0]
    obs, noise = torch.zeros(n, 1), torch.randn(n, 2, generator=torch.Generator().manual_seed(2))
    spiral = bandits.spiral(torch.linspace(bandits.T_START, bandits.T_END, 4096))
    with torch.no_grad():
        samples = {k: swiss["agent"].ema.sample(obs, k, noise=noise) for k in (1, 2, 5)}
        untrained = {k: swiss["untrained"].sample(obs, k, noise=noise) for k in (1, 5)}
    ed = {k: energy_distance(x, ref) for k, x in samples.items()}
    ed_untrained = {k: energy_distance(x, ref) for k, x in untrained.items()}
    floor = energy_distance(bandits.swissroll(n, seed=5).action, ref)
    near = {k: mean_nearest_distance(x, spiral) for k, x in samples.items()}
    print(f"energy distance {ed}, untrained {ed_untrained}, data floor {floor:.4f}; distance to spiral {near}, "
          f"data {mean_nearest_distance(ref, spiral):.3f}")
    # Untrained: ~0.43 (K=1) and ~0.08 (K=5); two draws of the data: ~0.001. Trained (measured): ~0.01-0.02 at
    # K = 1, ~0.005 at K = 2, ~0.003 at K = 5. 0.03 is < 1/10 of the untrained K=1 distance at every K.
    for k in (1, 2, 5):
        assert ed[k] < 0.03 and ed[k] < 0.1 * ed_untrained[1], (k, ed, ed_untrained)
    assert ed[5] <= ed[1], ed
    # Energy distance barely sees the roll's shape (a Gaussian fit scores ~0.008), so check the shape too:
    # K=5 samples lie near the spiral (measured ~0.06; data 0.034; a Gaussian fit's samples ~0.17).
    assert near[5] < 0.1, near


def test_trained_map_is_close_to_a_semigroup(swiss: dict) -> None:
    ref, n = swiss["ref"], swiss["ref"].shape[0]
    obs, z = torch.zeros(n, 1), torch.randn(n, 2, generator=torch.Generator().manual_seed(3))
    one = torch.ones(n)
    t_min, t_max = swiss["agent"].cfg.t_min, swiss["agent"].cfg.t_max
    triples = [(t_max, 1.0, t_min), (2.0, 0.5, t_min), (5.0, 0.2, 0.02), (1.0, 0.1, t_min)]

    def errors(phi: FlowMap) -> tuple[float, float]:
        err, spread = [], []
        with torch.no_grad():
            for t, s, r in triples:
                x = ref + t * z  # points of the noised data distribution at time t
                direct = phi(obs, x, t * one, r * one)
                two = phi(obs, phi(obs, x, t * one, s * one), s * one, r * one)
                err.append(float((direct - two).norm(dim=-1).mean()))
                spread.append(float((direct - direct.mean(0)).norm(dim=-1).mean()))
        return float(np.mean(err)), float(np.mean(spread))

    trained, spread = errors(swiss["agent"].ema)
    untrained, _ = errors(swiss["untrained"])
    print(f"semigroup error: trained {trained:.4f} (output spread {spread:.3f}), untrained {untrained:.4f}")
    # Measured: trained ~0.05, untrained ~0.18 (an untrained map is nearly linear, hence already fairly
    # composable; its outputs also collapse, spread ~0.1, against ~0.55 for the trained map).
    assert trained < 0.5 * untrained, (trained, untrained)
    assert trained < 0.15 * spread, (trained, spread)


# ---------------------------------------------------------------- policy improvement on the multimodal bandit
def test_gtp_finds_best_mode_and_gtp_bc_does_not() -> None:
    data = bandits.multimodal(10000, seed=0)
    fractions = {}
    for eta in (5.0, 0.0):
        torch.manual_seed(0)
        cfg = GTPConfig(eta=eta, schedule_steps=2000, sampling_steps=2, hidden=SMALL, critic_hidden=(64, 64), **FAST)
        agent = fit(GTP(cfg, 1, 2), data, 2000)
        a = agent.act(torch.zeros(2000, 1))
        fractions[eta] = [float(((a - c).norm(dim=-1) < 0.2).float().mean()) for c in bandits.MODE_CENTRES]
    print("fraction within 0.2 of each mode (best first):", fractions)
    # Data: a quarter per mode (0.86 of a mode's mass lies within 2 std = 0.2). eta = 5 weights the best mode by
    # ~exp(5 * 0.4 / 0.56) ~ 35 against 1 for the others: most mass goes there (measured ~0.7).
    assert fractions[5.0][0] > 0.5, fractions
    # GTP-BC keeps the behaviour's four modes: no mode dominates (measured ~0.09 each at this budget).
    bc = fractions[0.0]
    assert bc[0] < 0.35 and min(bc) > 0.4 * max(bc), fractions


# ---------------------------------------------------------------- Pendulum-v1 medium: GTP > GTP-BC, behaviour
# The TD critic needs >10k steps here before its advantages help (one seed's score: 28-36 up to 10k steps, 57 at
# 14k, 65 at 16k, 75 at 20k), i.e. ~3 min per seed on one CPU core, so this test runs only when asked for:
# GTP_PENDULUM_TEST=1 (GTP_PENDULUM_STEPS overrides the budget).
PENDULUM_SEEDS = (0, 1, 2)
GTP_STEPS = int(os.environ.get("GTP_PENDULUM_STEPS", 20000))
BC_STEPS = 3000  # GTP-BC has converged to the behaviour's score by then
PENDULUM_CFG = dict(FAST, n_end=40, hidden=SMALL, sampling_steps=2, max_action=2.0, critic_lr=1e-3,
                    critic_hidden=(256, 256))


def _score_with_k(out: str, dataset_id: str, k: int, seed: int) -> float:
    """Score of the checkpointed GTP agent acting with K = k flow-map jumps."""
    data = load(dataset_id)
    agent = build_agent("gtp", data.obs_dim, data.act_dim, {**PENDULUM_CFG, "eta": 5.0, "sampling_steps": k})
    agent.load_full_state(torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)["agent"])
    return evaluate_dataset(agent.eval().act, data, 10, seed)["score_mean"]


@pytest.mark.long
@pytest.mark.skipif(os.environ.get("GTP_PENDULUM_TEST") != "1", reason="~15 min on CPU; set GTP_PENDULUM_TEST=1")
def test_pendulum_medium_gtp_beats_gtp_bc_and_behaviour(pendulum_datasets: dict, tmp_path) -> None:
    dataset_id = pendulum_datasets["medium"]
    behaviour = dataset_score(dataset_id)
    scores: dict[str, list[float]] = {"gtp_K2": [], "gtp_K5": [], "gtp_bc": []}
    for seed in PENDULUM_SEEDS:
        out = str(tmp_path / f"gtp{seed}")
        hist = train("gtp", dataset_id, steps=GTP_STEPS, seed=seed, eval_every=GTP_STEPS, eval_episodes=10, out=out,
                     overrides={**PENDULUM_CFG, "eta": 5.0, "schedule_steps": GTP_STEPS}, log=None)
        scores["gtp_K2"].append(hist[-1]["score_mean"])
        scores["gtp_K5"].append(_score_with_k(out, dataset_id, 5, seed))
        hist = train("gtp_bc", dataset_id, steps=BC_STEPS, seed=seed, eval_every=BC_STEPS, eval_episodes=10,
                     overrides={**PENDULUM_CFG, "schedule_steps": BC_STEPS}, log=None)
        scores["gtp_bc"].append(hist[-1]["score_mean"])
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    print(f"Pendulum medium, per seed {scores}; means {mean}; behaviour (dataset) {behaviour:.1f}")
    # GTP improves on the data it learned from; GTP-BC only imitates it (its score is the behaviour's, ~30).
    assert mean["gtp_K2"] > mean["gtp_bc"] + 10 and mean["gtp_K2"] > behaviour + 10, (mean, behaviour)
    # K = 2 is close to K = 5 (10 episodes per seed: the per-episode score std is ~16, so means of 30 episodes
    # differ by a few points from evaluation noise alone).
    assert abs(mean["gtp_K2"] - mean["gtp_K5"]) < 10, mean


# ---------------------------------------------------------------- ablation switches, checkpoints, config errors
@pytest.mark.parametrize("overrides", [{"teacher": "ode", "ode_steps": 3}, {"q_term": "linear"},
                                       {"v_source": "policy", "v_samples": 2}, {"precond": False},
                                       {"backbone": "resunet"}])
def test_variants_train_and_checkpoint(overrides: dict) -> None:
    torch.manual_seed(0)
    data = bandits.multimodal(512, seed=0)
    cfg = GTPConfig(eta=1.0, sampling_steps=2, critic_hidden=(32, 32), **{**FAST, "hidden": (32, 32), **overrides})
    agent = GTP(cfg, 1, 2)
    g = torch.Generator().manual_seed(0)
    for step in range(3):
        losses = agent.update(data.sample(64, g), step)
    assert all(bool(torch.isfinite(v).all()) for v in losses.values()), losses
    if cfg.q_term == "linear":
        assert "q_pi" in losses
    twin = GTP(cfg, 1, 2)
    twin.load_full_state(agent.full_state())
    obs = torch.zeros(8, 1)
    torch.manual_seed(1)
    first = agent.act(obs)
    torch.manual_seed(1)
    torch.testing.assert_close(twin.act(obs), first)


def test_frozen_critic_is_not_stepped_and_the_actor_still_learns() -> None:
    """critic_lr 0 skips the critic and V steps: their weights stay bit-identical while the actor moves."""
    torch.manual_seed(0)
    data = bandits.multimodal(256, seed=0)
    agent = GTP(GTPConfig(eta=1.0, critic_lr=0.0, critic_hidden=(32, 32), **{**FAST, "hidden": (32, 32)}), 1, 2)
    frozen = {k: v.clone() for k, v in agent.state_dict().items() if k.startswith(("critic.", "v."))}
    actor = [p.clone() for p in agent.actor.parameters()]
    g = torch.Generator().manual_seed(0)
    for step in range(3):
        metrics = agent.update(data.sample(64, g), step)
    assert "q_loss" not in metrics and "v_loss" not in metrics, metrics
    assert all(torch.equal(v, agent.state_dict()[k]) for k, v in frozen.items())
    assert any(not torch.equal(a, b) for a, b in zip(actor, agent.actor.parameters()))


def test_ode_teacher_with_one_step_from_the_data_point_matches_surrogate() -> None:
    """At a_t = a + t z, one Euler step of the exact point-mass velocity (a_t - a) / t lands on a + u z."""
    torch.manual_seed(0)
    cfg = GTPConfig(teacher="ode", ode_steps=1, hidden=(32, 32))
    agent = GTP(cfg, 1, 2)
    act, z = torch.randn(16, 2), torch.randn(16, 2)
    t, u, tau = torch.full((16,), 2.0), torch.full((16,), 1.0), torch.full((16,), 0.1)
    agent.ema.phi = lambda obs, a_t, t_, tau_: act  # denoiser that knows the data point
    obs = torch.zeros(16, 1)
    ode = agent._teacher(obs, act, act + 2.0 * z, z, t, u, tau)
    agent.cfg.teacher = "surrogate"
    torch.testing.assert_close(ode, agent._teacher(obs, act, act + 2.0 * z, z, t, u, tau))


@pytest.mark.parametrize("kwargs,match", [({"teacher": "euler"}, "unknown teacher 'euler'"),
                                          ({"q_term": "quadratic"}, "unknown q_term 'quadratic'"),
                                          ({"v_source": "mc"}, "unknown v_source 'mc'"),
                                          ({"sampling_steps": 0}, "sampling_steps must be >= 1, got 0")])
def test_bad_config_is_one_clear_line(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        GTPConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_sampling_with_k_below_one_is_one_clear_line() -> None:
    fm = FlowMap(1, 2, hidden=(16,))
    with pytest.raises(ValueError, match="sampling steps K must be >= 1, got 0") as err:
        fm.sample(torch.zeros(4, 1), 0)
    assert "\n" not in str(err.value)
