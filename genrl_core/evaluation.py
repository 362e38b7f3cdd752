"""Seeded, vectorised policy rollouts with raw returns and D4RL-style normalised scores.

Goal-reaching environments (gymnasium-robotics goal-dict observations: PointMaze, AntMaze) are evaluated as D4RL
evaluated AntMaze: an episode ends at the first step whose info["success"] is true (gymnasium-robotics: the agent
within 0.45 of the goal), or at the time limit; the score is 100 x the success rate over the evaluation episodes
(score_std: 100 x the std of the 0/1 outcomes), and the mean return is still reported.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from genrl_core.data.loading import flatten_obs, is_goal_dict

if TYPE_CHECKING:
    from genrl_core.data.offline import OfflineData

Policy = Callable[[torch.Tensor], torch.Tensor]
MAX_ENVS = 16  # at most this many environments step side by side


def _one_line(err: BaseException) -> str:
    """The first line of an exception's message."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _register_robotics() -> None:
    """Register gymnasium-robotics' environments (PointMaze, AntMaze, ...) with gymnasium, once."""
    try:
        import gymnasium_robotics  # noqa: F401, PLC0415  (importing registers them)
    except ImportError as err:
        raise ValueError(f"gymnasium-robotics is needed for the maze environments: {_one_line(err)}; install it "
                         f"with `pip install gymnasium-robotics`") from None


def check_env(env: str | EnvSpec) -> EnvSpec:
    """Resolve a gymnasium id (or spec) to its spec; an unknown id raises a one-line ValueError."""
    if isinstance(env, EnvSpec):
        return env
    if env not in gym.registry and "maze" in env.lower():
        _register_robotics()
    try:
        return gym.spec(env)
    except gym.error.Error as err:
        raise ValueError(f"unknown environment id {env!r}: {_one_line(err)}") from None


class EndAtGoal(gym.Wrapper):
    """Ends an episode (terminated) at the first step whose info["success"] is true, and keeps the outcome of every
    episode that ends (True: the goal was reached) in `outcomes`."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.outcomes: list[bool] = []

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        reached = bool(info.get("success", False))
        if terminated or truncated or reached:
            self.outcomes.append(reached)
        return obs, reward, terminated or reached, truncated, info


def _make_vector_env(spec: EnvSpec, n_envs: int, max_episode_steps: int | None) -> SyncVectorEnv:
    """A SyncVectorEnv of n_envs copies that resets finished copies in the same step (goal-reaching copies wrapped
    in EndAtGoal)."""
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}

    def make() -> gym.Env:
        env = gym.make(spec, **kwargs)
        return EndAtGoal(env) if is_goal_dict(env.observation_space) else env

    try:
        return SyncVectorEnv([make] * n_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    except (gym.error.Error, ImportError) as err:
        raise ValueError(f"cannot create environment {spec.id!r}: {_one_line(err)}") from None


def normalized_score(returns: np.ndarray, ref_min_score: float | None,
                     ref_max_score: float | None) -> tuple[float, float]:
    """(mean, std) of 100 * (R - min) / (max - min); the std is scaled, not shifted; NaN when refs unknown."""
    return _scaled(float(returns.mean()), float(returns.std()), ref_min_score, ref_max_score)


def _scaled(mean: float, std: float, ref_min_score: float | None,
            ref_max_score: float | None) -> tuple[float, float]:
    """normalized_score from the returns' mean and std."""
    if ref_min_score is None or ref_max_score is None or ref_max_score == ref_min_score:
        return math.nan, math.nan
    scale = 100.0 / (ref_max_score - ref_min_score)
    return float((mean - ref_min_score) * scale), float(std * scale)


def dataset_score(dataset_id: str) -> float:
    """Normalised score of a dataset's own episodes (the behaviour policy's score); Minari ids and d4rl/ files.
    Goal-reaching sets have none (their episodes do not end at the goal): a one-line ValueError."""
    from genrl_core.data.loading import load  # noqa: PLC0415

    data = load(dataset_id)
    if data.ref_source == "success":
        raise ValueError(f"{dataset_id} is a goal-reaching set, scored by success rate: its episodes do not end at the "
                         f"goal, so they have no behaviour score (a maze set made here has its controller's success "
                         f"rate as ref_max_score)")
    if dataset_id.startswith("d4rl/"):
        from genrl_core.data import d4rl  # noqa: PLC0415

        returns = d4rl.read(dataset_id)[1]
    else:
        import minari  # noqa: PLC0415  (kept out of the module's import time)

        returns = np.array([float(np.sum(ep.rewards)) for ep in minari.load_dataset(dataset_id).iterate_episodes()])
    return normalized_score(returns, data.ref_min_score, data.ref_max_score)[0]


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def protocol(data: OfflineData, n_episodes: int) -> dict[str, float | str]:
    """How an evaluation of `data`'s policy is scored: episodes, the reference returns of score_mean and where they
    come from ("d4rl", "dataset", "none", or "success": 100 x the success rate), the dataset id and the hash of its
    transitions (numbers as floats, NaN for missing references)."""
    return {"eval_episodes": float(n_episodes), "ref_min_score": _number(data.ref_min_score),
            "ref_max_score": _number(data.ref_max_score), "ref_source": str(data.ref_source),
            "dataset_id": str(data.dataset_id), "data_hash": str(data.content_hash)}


def _rollout(policy: Policy, envs: SyncVectorEnv, quotas: np.ndarray, seed: int, device: str | torch.device,
             obs_normalizer: Callable[[torch.Tensor], torch.Tensor] | None) -> tuple[list[float], list[bool], int]:
    """Run until every copy i has finished quotas[i] episodes; return the episode returns, their outcomes (goal
    reached; empty for environments without goals) and env steps."""
    space = envs.single_action_space
    low, high = space.low, space.high
    source = f"environment {envs.envs[0].spec.id!r}" if envs.envs[0].spec else "the environment"
    obs, _ = envs.reset(seed=seed)
    running = np.zeros(envs.num_envs)
    done_count = np.zeros(envs.num_envs, dtype=int)
    returns: list[float] = []
    reached: list[bool] = []
    goals = isinstance(envs.envs[0], EndAtGoal)
    steps = 0
    while (done_count < quotas).any():
        o = torch.as_tensor(flatten_obs(obs, source), device=device)
        if obs_normalizer is not None:
            o = obs_normalizer(o)
        action = policy(o).detach().to("cpu", torch.float32).numpy().reshape(envs.num_envs, -1)
        obs, reward, terminated, truncated, _ = envs.step(np.clip(action, low, high))
        active = done_count < quotas
        steps += int(active.sum())
        running += reward
        for i in np.flatnonzero((terminated | truncated) & active):
            returns.append(float(running[i]))
            if goals:
                reached.append(envs.envs[i].outcomes[-1])
            done_count[i] += 1
        running[terminated | truncated] = 0.0
    return returns, reached, steps


def evaluate(policy: Policy, env_id: str | EnvSpec, n_episodes: int = 10, seed: int = 0, *,
             device: str | torch.device = "cpu",
             obs_normalizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
             ref_min_score: float | None = None, ref_max_score: float | None = None,
             max_episode_steps: int | None = None) -> dict[str, float]:
    """Roll a policy out for n_episodes on env_id in vectorised copies; return returns, scores and speed.

    The policy gets a float32 observation batch on `device` and returns an action batch (clipped to the
    action box). Copy i is reset with seed + i, and torch's RNG is seeded with `seed` inside a forked RNG
    state, so the same policy and seed give identical returns. The policy is called as it is (no
    torch.no_grad here, since guided samplers may need gradients). On goal-reaching environments episodes end
    at the goal, success_rate is added and the score is 100 x success_rate (the refs are not used).
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    spec = check_env(env_id)
    n_envs = min(n_episodes, MAX_ENVS)
    quotas = np.full(n_envs, n_episodes // n_envs) + (np.arange(n_envs) < n_episodes % n_envs)
    envs = _make_vector_env(spec, n_envs, max_episode_steps)
    dev = torch.device(device)
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else [], device_type=dev.type):
            torch.manual_seed(seed)
            returns, reached, steps = _rollout(policy, envs, quotas, seed, dev, obs_normalizer)
    finally:
        envs.close()
    elapsed = max(time.perf_counter() - start, 1e-9)
    r = np.asarray(returns, dtype=np.float64)
    metrics = {"return_mean": float(r.mean()), "return_std": float(r.std())}
    if reached:
        success = np.asarray(reached, dtype=np.float64)
        metrics.update(success_rate=float(success.mean()), score_mean=100.0 * float(success.mean()),
                       score_std=100.0 * float(success.std()))
    else:
        metrics["score_mean"], metrics["score_std"] = normalized_score(r, ref_min_score, ref_max_score)
    return {**metrics, "episodes": float(len(r)), "episodes_per_s": len(r) / elapsed,
            "env_steps_per_s": steps / elapsed}


def evaluate_dataset(policy: Policy, data: OfflineData, n_episodes: int = 10, seed: int = 0,
                     device: str | torch.device = "cpu") -> dict[str, float | str]:
    """Evaluate on the dataset's environment with its reference scores and observation normalisation.

    score_mean / score_std use data's primary references (D4RL's for the environments of its table; 100 x the
    success rate on goal-reaching environments); score_dataset_mean / score_dataset_std use the dataset's own
    references (NaN when it has none), applied to the success rate on goal-reaching environments (the refs of
    the maze sets made here are success rates); the protocol() keys say how the scores were made.
    """
    env = data.env_spec if data.env_spec is not None else data.env_id
    if env is None:
        raise ValueError(f"dataset {data.dataset_id!r} has no environment to evaluate on")
    normalizer = data.normalize if data.obs_mean is not None else None
    metrics: dict[str, float | str] = evaluate(
        policy, env, n_episodes, seed, device=device, obs_normalizer=normalizer,
        ref_min_score=data.ref_min_score, ref_max_score=data.ref_max_score)
    if "success_rate" in metrics:
        basis = (metrics["success_rate"], metrics["score_std"] / 100.0)
    else:
        basis = (metrics["return_mean"], metrics["return_std"])
    mean, std = _scaled(*basis, data.dataset_ref_min_score, data.dataset_ref_max_score)
    metrics.update(score_dataset_mean=mean, score_dataset_std=std, **protocol(data, n_episodes))
    return metrics
