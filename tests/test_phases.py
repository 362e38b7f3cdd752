"""Algorithms 1 and 3 as the authors ran them: a fixed critic in the policy phase, mu acting until pi trains, GMPG's
bits-per-dimension scale, a separate policy batch, phases given in epochs, evaluations through the policy phase."""
import copy
import math

import pytest
import torch

from genrl_core.data import bandits
from genrl_core.generative.fast_sampling import fast_sample
from genrl_core.run.training import build_agent, next_eval, steps_from_epochs, train, train_steps

TINY = {"backbone": "mlp", "widths": (16, 16), "critic_hidden": (16, 16), "sampling_steps": 2, "loglik_steps": 2}


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("algo, extra", [("gmpo", {}), ("gmpg", {"behaviour_steps": 3, "train_steps": 2})])
def test_the_critic_is_fixed_in_the_policy_phase(algo, extra):
    data = bandits.multimodal(256, seed=0)
    torch.manual_seed(0)
    agent = build_agent(algo, 1, 2, {**TINY, "critic_steps": 3, **extra})
    gen = torch.Generator().manual_seed(0)
    before = _params(agent.critic)
    train_steps(agent, data, 0, 3, 32, gen)
    trained = _params(agent.critic)
    assert any(not torch.equal(a, b) for a, b in zip(before, trained))  # the critic phase trains it
    policy_before = _params(agent.policy)
    train_steps(agent, data, 3, 6, 32, gen)
    assert all(torch.equal(a, b) for a, b in zip(trained, _params(agent.critic)))  # fixed from then on
    assert any(not torch.equal(a, b) for a, b in zip(policy_before, _params(agent.policy)))


def test_critic_alongside_stays_an_option():
    data = bandits.multimodal(256, seed=0)
    agent = build_agent("gmpo", 1, 2, {**TINY, "critic_steps": 2, "critic_alongside": True})
    gen = torch.Generator().manual_seed(0)
    train_steps(agent, data, 0, 2, 32, gen)
    trained = _params(agent.critic)
    train_steps(agent, data, 2, 4, 32, gen)
    assert any(not torch.equal(a, b) for a, b in zip(trained, _params(agent.critic)))


def test_gmpo_policy_starts_from_random_weights_and_waits_for_the_critic():
    data = bandits.multimodal(256, seed=0)
    torch.manual_seed(0)
    agent = build_agent("gmpo", 1, 2, {**TINY, "critic_steps": 4})
    start = _params(agent.policy)
    out = train_steps(agent, data, 0, 4, 32, torch.Generator().manual_seed(0)).read()
    assert "policy_loss" not in out and agent.phase() == "critic"
    assert all(torch.equal(a, b) for a, b in zip(start, _params(agent.policy)))
    train_steps(agent, data, 4, 5, 32, torch.Generator().manual_seed(1))
    assert agent.phase() == "policy"


def test_gmpg_acts_with_mu_until_its_policy_starts_then_with_pi():
    data = bandits.multimodal(256, seed=0)
    torch.manual_seed(0)
    agent = build_agent("gmpg", 1, 2, {**TINY, "behaviour_steps": 4, "critic_steps": 4, "train_steps": 2})
    gen = torch.Generator().manual_seed(0)
    train_steps(agent, data, 0, 4, 32, gen)
    assert agent.phase() == "behaviour"
    obs, act = torch.zeros(8, 1), torch.randn(8, 2)
    torch.manual_seed(3)
    acted = agent.act(obs)
    torch.manual_seed(3)
    assert torch.equal(acted, fast_sample(agent.behaviour, obs, solver="euler", steps=2))
    torch.testing.assert_close(agent.log_likelihood(obs, act),
                               agent.behaviour.log_prob(act, obs, solver="euler", steps=2, trace="exact"))
    state = copy.deepcopy(agent.full_state())  # the phase is part of the checkpoint
    train_steps(agent, data, 4, 6, 32, gen)
    assert agent.phase() == "policy"
    torch.manual_seed(3)
    acted = agent.act(obs)
    torch.manual_seed(3)
    assert torch.equal(acted, fast_sample(agent.policy, obs, solver="euler", steps=2))
    torch.manual_seed(3)
    assert not torch.equal(acted, fast_sample(agent.behaviour, obs, solver="euler", steps=2))
    agent.load_full_state(state)
    assert agent.phase() == "behaviour"


def test_gmpg_evaluations_say_which_phase_and_follow_the_policy_phase_closely():
    history = train("gmpg", "toy/multimodal-v0", steps=10, eval_every=6, policy_eval_every=2, log=None,
                    overrides={**TINY, "behaviour_steps": 5, "critic_steps": 5, "train_steps": 2})
    assert [h["step"] for h in history] == [5, 7, 9, 10]
    assert [h["phase"] for h in history] == ["behaviour", "policy", "policy", "policy"]
    assert next_eval(0, 100, 50) == 50 and next_eval(50, 100, 50) == 100
    assert [next_eval(s, 100, 50, 30, 5) for s in (0, 30, 35, 97)] == [30, 35, 40, 100]


@pytest.mark.parametrize("static", [False, True])
def test_bits_and_nats_give_one_gradient_when_beta_is_rescaled(static):
    """beta_nats = beta_bits * d ln 2: the bits loss is the nats loss / (d ln 2), so their gradients are proportional
    by exactly that factor (Adam's update is the same)."""
    data, d = bandits.multimodal(64, seed=0), 2
    c = d * math.log(2.0)
    grads = {}
    for scale, beta in (("bits", 0.5), ("nats", 0.5 * c)):
        torch.manual_seed(0)
        agent = build_agent("gmpg", 1, d, {**TINY, "behaviour_steps": 0, "critic_steps": 0, "train_steps": 3,
                                           "trace": "exact", "beta": beta, "log_ratio_scale": scale,
                                           "static": static, "max_weight": 1e9})
        agent.behaviour.load_state_dict({k: v + 0.05 * torch.randn_like(v)
                                         for k, v in agent.policy.state_dict().items()})  # pi != mu
        agent.critic = bandits.ExactCritic("multimodal", float(data.reward.mean()))
        torch.manual_seed(1)
        parts = agent._static_loss(data.sample(64)) if static else agent._kl_loss(data.sample(64))
        agent.opt.zero_grad()
        parts["policy_loss"].backward()
        grads[scale] = torch.cat([p.grad.flatten() for p in agent.policy.parameters()])
    assert grads["bits"].abs().max() > 0
    torch.testing.assert_close(grads["bits"] * c, grads["nats"], rtol=1e-4, atol=1e-6)


def test_gmpg_draws_its_own_policy_batch():
    agent = build_agent("gmpg", 1, 2, {**TINY, "behaviour_steps": 3, "critic_steps": 2, "policy_batch_size": 96})
    assert [agent.batch_size(s, 32) for s in (0, 2, 3, 10)] == [32, 32, 96, 96]
    assert build_agent("gmpg", 1, 2, {**TINY, "behaviour_steps": 3}).batch_size(10, 32) == 32
    seen = []
    original = agent.update

    def spy(batch, step):
        seen.append(batch["obs"].shape[0])
        return original(batch, step)

    agent.update = spy
    train_steps(agent, bandits.multimodal(256, seed=0), 0, 5, 32, torch.Generator().manual_seed(0))
    assert seen == [32, 32, 32, 96, 96]


def test_phases_in_epochs_become_steps_for_the_dataset_size():
    # hopper-medium in the authors' config: critic 5000 epochs, behaviour 2000, policy 1000 at 40960 (GMPG)
    steps, out = steps_from_epochs("gmpg", 1_000_000, 4096, {"critic_epochs": 5000, "behaviour_epochs": 2000,
                                                             "policy_epochs": 1000}, {"policy_batch_size": 40960})
    assert out["critic_steps"] == 5000 * 245 and out["behaviour_steps"] == 2000 * 245
    assert steps == 5000 * 245 + 1000 * 25
    steps, out = steps_from_epochs("gmpo", 100_000, 4096, {"critic_epochs": 10, "policy_epochs": 20}, {})
    assert out == {"critic_steps": 250} and steps == 250 + 500


def test_a_resume_across_the_phase_boundary_reproduces_an_uninterrupted_run(tmp_path):
    kw = dict(seed=3, batch_size=32, eval_every=4, log=None,
              overrides={**TINY, "behaviour_steps": 6, "critic_steps": 6, "train_steps": 2, "policy_batch_size": 48})
    full = train("gmpg", "toy/multimodal-v0", steps=12, out=str(tmp_path / "a"), **kw)
    train("gmpg", "toy/multimodal-v0", steps=4, out=str(tmp_path / "b"), **kw)  # stops inside the behaviour phase
    resumed = train("gmpg", "toy/multimodal-v0", steps=12, out=str(tmp_path / "b"), resume=True, **kw)
    assert [r["phase"] for r in resumed] == ["behaviour", "policy", "policy"]
    for a, b in zip(full, resumed):
        for k in set(a) - {"grad_steps_per_s", "episodes_per_s", "env_steps_per_s"}:
            assert a[k] == (pytest.approx(b[k], rel=1e-6, abs=1e-7, nan_ok=True) if isinstance(a[k], float) else b[k]), k


@pytest.mark.parametrize("algo, extra", [("gmpo", {"critic_steps": 3}),
                                         ("gmpg", {"behaviour_steps": 3, "critic_steps": 3, "train_steps": 2,
                                                   "policy_batch_size": 48})])
def test_packed_seeds_cross_the_phase_boundary_as_unpacked_runs_do(algo, extra):
    from genrl_core.common import seed_everything
    from genrl_core.run.packing import build_pack

    data, overrides = bandits.multimodal(256, seed=0), {**TINY, **extra}
    pack = build_pack(algo, [0, 1], 1, 2, "cpu", overrides, "vmap")
    packed = [pack.train(data, start, 3, 32) for start in (0, 3)]
    assert [a.phase() for a in pack.agents] == ["policy", "policy"]
    for i, seed in enumerate(pack.seeds):
        gen = seed_everything(seed)
        agent = build_agent(algo, 1, 2, overrides)
        for start in (0, 3):
            want = train_steps(agent, data, start, start + 3, 32, gen).read()
            got = packed[start // 3][i]
            assert set(got) == set(want)
            for k in want:
                assert got[k] == pytest.approx(want[k], rel=1e-4, abs=1e-6), (seed, start, k)


def test_srpo_acts_with_mu_until_its_actor_trains():
    data = bandits.multimodal(256, seed=0)
    agent = build_agent("srpo", 1, 2, {**TINY, "path": "vpsde", "prediction": "eps", "behaviour_steps": 3,
                                       "actor_hidden": (16, 16)})
    gen = torch.Generator().manual_seed(0)
    train_steps(agent, data, 0, 3, 32, gen)
    obs = torch.zeros(64, 1)
    torch.manual_seed(0)
    acted = agent.act(obs)
    torch.manual_seed(0)
    assert agent.phase() == "behaviour" and torch.equal(acted, fast_sample(agent.behaviour, obs, solver="euler", steps=2))
    assert acted.std(0).min() > 0.05  # mu's samples, not a deterministic actor's
    train_steps(agent, data, 3, 4, 32, gen)
    assert agent.phase() == "policy" and torch.equal(agent.act(obs), agent.actor(obs, sample=False))


def test_the_smoke_preset_reaches_every_algorithms_policy_phase():
    """Each smoke trial's policy phase starts within its steps (Algorithms 1 and 3 put the critic first)."""
    from tune_jobs import config as C

    late = {}
    for algo in C.SMOKE_ALGOS:
        config = C.flatten({**C.RUN_DEFAULTS, **C.run_budget("smoke"), "variant": C.variant("smoke", algo)})
        run, overrides = C.split(config)
        start = build_agent(algo, 3, 1, overrides).policy_start
        if start >= run["steps"]:
            late[algo] = (start, run["steps"])
    assert late == {}
