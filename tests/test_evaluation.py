"""Seeded vectorised evaluation: reproducible returns, normalised scores, clear errors."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from genrl_core.data.loading import load
from genrl_core.evaluation import evaluate, evaluate_dataset

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _linear(obs: torch.Tensor) -> torch.Tensor:
    """A fixed deterministic Pendulum controller."""
    return -(2.0 * obs[:, 2:3] + 1.0 * obs[:, 1:2])


def _noisy(obs: torch.Tensor) -> torch.Tensor:
    """A stochastic policy drawing from torch's global RNG."""
    return _linear(obs) + torch.randn(obs.shape[0], 1, device=obs.device)


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_returns_other_seed_different(device: str) -> None:
    kw = dict(n_episodes=4, device=device, max_episode_steps=50)
    a, b = evaluate(_linear, "Pendulum-v1", seed=0, **kw), evaluate(_linear, "Pendulum-v1", seed=0, **kw)
    c = evaluate(_linear, "Pendulum-v1", seed=1, **kw)
    assert (a["return_mean"], a["return_std"]) == (b["return_mean"], b["return_std"])
    assert a["return_mean"] != c["return_mean"]
    assert a["episodes"] == 4 and a["episodes_per_s"] > 0 and a["env_steps_per_s"] > 0
    assert math.isnan(a["score_mean"]) and math.isnan(a["score_std"])  # no refs given


def test_stochastic_policy_reproducible_and_global_rng_untouched() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = evaluate(_noisy, "Pendulum-v1", n_episodes=3, seed=5, max_episode_steps=30)
    assert torch.equal(torch.get_rng_state(), before)
    b = evaluate(_noisy, "Pendulum-v1", n_episodes=3, seed=5, max_episode_steps=30)
    c = evaluate(_noisy, "Pendulum-v1", n_episodes=3, seed=6, max_episode_steps=30)
    assert a["return_mean"] == b["return_mean"] != c["return_mean"]


def test_episode_count_beyond_env_cap_and_out_of_range_actions() -> None:
    res = evaluate(lambda o: torch.full((o.shape[0], 1), 100.0), "Pendulum-v1", n_episodes=21, seed=0,
                   max_episode_steps=10)
    assert res["episodes"] == 21  # more episodes than vector copies; the huge actions are clipped to [-2, 2]


def test_normalised_score_formula() -> None:
    lo, hi = -1500.0, -100.0
    res = evaluate(_linear, "Pendulum-v1", n_episodes=5, seed=0, max_episode_steps=40, ref_min_score=lo,
                   ref_max_score=hi)
    assert res["score_mean"] == pytest.approx(100 * (res["return_mean"] - lo) / (hi - lo))
    assert res["score_std"] == pytest.approx(res["return_std"] * 100 / (hi - lo))  # scaled, not shifted


def test_unknown_env_is_one_clear_line() -> None:
    with pytest.raises(ValueError) as err:
        evaluate(_linear, "NoSuchEnv-v0")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("unknown environment id 'NoSuchEnv-v0'")


def test_evaluate_dataset_uses_env_refs_and_normalisation(pendulum_datasets: dict[str, str]) -> None:
    data = load(pendulum_datasets["medium"], normalize_obs=True)
    seen_norm: list[torch.Tensor] = []
    seen_raw: list[torch.Tensor] = []

    def recording(store: list[torch.Tensor]):
        def policy(obs: torch.Tensor) -> torch.Tensor:
            store.append(obs.clone())
            return torch.zeros(obs.shape[0], 1)
        return policy

    res = evaluate_dataset(recording(seen_norm), data, n_episodes=2, seed=3)
    evaluate(recording(seen_raw), "Pendulum-v1", n_episodes=2, seed=3)
    torch.testing.assert_close(torch.cat(seen_norm), data.normalize(torch.cat(seen_raw)))
    assert res["episodes"] == 2 and len(seen_raw) == 200  # Pendulum's own 200-step limit
    want = 100 * (res["return_mean"] - data.ref_min_score) / (data.ref_max_score - data.ref_min_score)
    assert res["score_mean"] == pytest.approx(want)


class _GoalObs(gym.ObservationWrapper):
    """Pendulum with AntMaze-style dict observations (observation, achieved_goal, desired_goal)."""

    def __init__(self, env: gym.Env, with_goal: bool = True):
        super().__init__(env)
        keys = ("observation", "achieved_goal", "desired_goal") if with_goal else ("observation", "achieved_goal")
        self.observation_space = gym.spaces.Dict(
            {k: env.observation_space if k == "observation" else gym.spaces.Box(-1, 1, (2,)) for k in keys})

    def observation(self, obs: np.ndarray) -> dict:
        return {k: obs if k == "observation" else np.full(2, 0.5, np.float32) for k in self.observation_space}


gym.register("test/GoalPendulum-v0", entry_point=lambda: _GoalObs(gym.make("Pendulum-v1")), max_episode_steps=20)
gym.register("test/NoGoalPendulum-v0", entry_point=lambda: _GoalObs(gym.make("Pendulum-v1"), False),
             max_episode_steps=20)


def test_goal_dict_obs_are_flattened_like_the_loader() -> None:
    seen: list[torch.Tensor] = []

    def policy(obs: torch.Tensor) -> torch.Tensor:
        seen.append(obs)
        return torch.zeros(obs.shape[0], 1)

    assert evaluate(policy, "test/GoalPendulum-v0", n_episodes=2)["episodes"] == 2
    assert seen[0].shape == (2, 7) and seen[0].dtype == torch.float32  # observation (3) + achieved, desired goal (2+2)
    assert (seen[0][:, 3:] == 0.5).all()
    with pytest.raises(ValueError) as err:
        evaluate(policy, "test/NoGoalPendulum-v0", n_episodes=1)
    assert "\n" not in str(err.value) and "desired_goal" in str(err.value)
    assert "environment 'test/NoGoalPendulum-v0'" in str(err.value)


def test_evaluate_dataset_needs_an_env() -> None:
    with pytest.raises(ValueError, match="no environment"):
        evaluate_dataset(_linear, load("toy/multimodal-v0"))
