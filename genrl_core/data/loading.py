"""Offline datasets: Minari ids (or toy bandit ids) -> device-resident transition tensors, reward scaling.

Reward scaling as IQL does it: "locomotion" r * 1000 / (max episode return - min episode return),
"antmaze" r - 1, "none"; "auto" picks antmaze for maze ids (antmaze, pointmaze: sparse goal rewards), none for toy
ids, locomotion otherwise.
Time-outs (truncations) are not terminals. Ids starting with d4rl/ are D4RL's own hdf5 files (genrl_core.data.d4rl).

Reference returns: environments in D4RL's table (reference/d4rl_ref_scores.csv: hopper, halfcheetah, walker2d,
ant, antmaze) are normalised with D4RL's (ref_source "d4rl"), the scale of every published number; the
dataset's own references (Minari metadata, e.g. the random and expert policies of a locally made set) are kept
beside them (dataset_ref_min_score / dataset_ref_max_score). Other environments use the dataset's own
(ref_source "dataset"), or none ("none"). content_hash identifies the transitions as read (before reward
scaling and observation normalisation, which the run's config records).

Goal-reaching sets (gymnasium-robotics goal-dict observations: the mazes) are scored by success rate (ref_source
"success", refs 0 and 1: the score is 100 x the fraction of evaluation episodes that reach the goal, as D4RL's
AntMaze; see genrl_core.evaluation); their own references (dataset_ref_*) are success rates too for sets made here.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec
from torch import Tensor

from genrl_core.data.offline import (DatasetCorruptError, DatasetNotFoundError, ObservationFormatError,
                                      OfflineData)

REF_SCORES_CSV = Path(__file__).parent / "reference" / "d4rl_ref_scores.csv"
SCALINGS = ("auto", "locomotion", "antmaze", "none")
OBS_STD_EPS = 1e-3  # added to the observation std before dividing


def _one_line(err: BaseException) -> str:
    """An exception as a single line."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _make_hint(dataset_id: str) -> str:
    """How to make a dataset locally, guessing env and kind from ids like local/hopper/medium-v0."""
    if "maze" in dataset_id.lower():  # the maze makers (data.mazes) sit above this layer: their command, not a call
        return ("`python -m genrl_core.datasets make --env PointMaze_UMaze-v3 --kinds waypoint` (the maze env and kind "
                "of the id; `python -m genrl_core.datasets make --help` lists them)")
    kinds = "random,medium,expert,medium-replay,medium-expert"
    m = re.fullmatch(r"[^/]+/([^/]+)/(.+)-v\d+", dataset_id)
    if not m:
        return f"`python -m genrl_core.datasets make --env <GymnasiumEnvId> --kinds {kinds}`"
    import gymnasium as gym

    ids = [k for k in gym.registry if k.split("/")[-1].split("-v")[0].lower() == m.group(1)]
    ids.sort(key=lambda k: ("/" not in k, gym.spec(k).version or 0))  # plain ids first, newest version
    env = ids[-1] if ids else "<GymnasiumEnvId>"
    kind = m.group(2) if m.group(2) in kinds.split(",") else kinds
    local = f" (then load 'local/{m.group(1)}/{kind}-v0')" if "," not in kind else ""
    return f"`python -m genrl_core.datasets make --env {env} --kinds {kind}`{local}"


def _open_minari(dataset_id: str, download: bool):
    """Open a Minari dataset, mapping missing or unreadable data to one-line errors."""
    import minari
    from minari.storage.datasets_root_dir import get_dataset_path

    path = get_dataset_path(dataset_id)
    if not (path / "data").exists():
        if not download:
            get = "" if dataset_id.startswith("local/") else (
                f"download it with `minari download {dataset_id}` (or load(..., download=True)), or ")
            raise DatasetNotFoundError(f"dataset {dataset_id!r} not found under {path.parent}: {get}make one "
                                       f"locally with {_make_hint(dataset_id)}")
        try:
            minari.download_dataset(dataset_id)
        except Exception as err:  # network, server and id errors all end the same way
            raise DatasetNotFoundError(
                f"dataset {dataset_id!r} could not be downloaded ({_one_line(err)}); make one locally with "
                f"{_make_hint(dataset_id)}") from None
    try:
        return minari.MinariDataset(path / "data")
    except Exception as err:  # json, h5py and assertion errors from a damaged dataset
        raise DatasetCorruptError(_corrupt_message(dataset_id, path, err)) from None


def _corrupt_message(dataset_id: str, path: Path, err: BaseException) -> str:
    again = _make_hint(dataset_id) if dataset_id.startswith("local/") else (
        f"`minari download {dataset_id}` or {_make_hint(dataset_id)}")
    return (f"dataset {dataset_id!r} at {path} is corrupt or unreadable ({_one_line(err)}); delete that folder "
            f"and download or make it again ({again})")


GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")  # the order goal dicts are concatenated in


def is_goal_dict(obs) -> bool:
    """Whether obs (an observation, a batch or a space) is a gymnasium-robotics goal dict."""
    keys = obs.spaces if hasattr(obs, "spaces") else obs
    return isinstance(keys, dict) and all(k in keys for k in GOAL_KEYS)


def flatten_obs(obs, source: str = "the data") -> np.ndarray:
    """Box observations as float32; goal dicts as observation ++ achieved_goal ++ desired_goal on the last axis.

    With n = len(observation): the agent's position (achieved_goal: x, y in the mazes) is at [n, n + 2) and the goal
    at [n + 2, n + 4), the last two. AntMaze (gymnasium-robotics v4): observation is qpos[2:] (13) and qvel (14),
    without x, y, so the vector has 31 dims, x, y at 27, 28 and the goal at 29, 30 (D4RL's AntMaze had 29: qpos
    with x, y first (15) and qvel (14), no goal). PointMaze: observation is x, y, vx, vy, so 8 dims: x, y at 0, 1 and
    again at 4, 5, the goal at 6, 7.
    """
    if not isinstance(obs, dict):
        return np.asarray(obs, dtype=np.float32)
    if not is_goal_dict(obs):
        raise ObservationFormatError(f"{source} has dict observations with keys {sorted(obs)}; only goal dicts with "
                                     f"{', '.join(GOAL_KEYS)} (concatenated in that order) are supported")
    return np.concatenate([np.asarray(obs[k], dtype=np.float32) for k in GOAL_KEYS], axis=-1)


def _episode_arrays(ds, dataset_id: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All episodes as transition arrays, plus each episode's undiscounted return."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "action", "reward", "next_obs", "terminal")}
    returns = []
    for ep in ds.iterate_episodes():
        obs = flatten_obs(ep.observations, f"dataset {dataset_id!r}")
        reward = np.asarray(ep.rewards, dtype=np.float32).reshape(-1)
        parts["obs"].append(obs[:-1])
        parts["next_obs"].append(obs[1:])
        parts["action"].append(np.asarray(ep.actions, dtype=np.float32).reshape(len(reward), -1))
        parts["reward"].append(reward)
        parts["terminal"].append(np.asarray(ep.terminations, dtype=np.float32).reshape(-1))
        returns.append(float(reward.astype(np.float64).sum()))
    if not returns:
        raise DatasetCorruptError(f"dataset {dataset_id!r} holds no episodes")
    return {k: np.concatenate(v) for k, v in parts.items()}, np.asarray(returns)


def resolve_scaling(dataset_id: str, reward_scaling: str) -> str:
    """Turn 'auto' into the scaling a dataset id calls for."""
    if reward_scaling not in SCALINGS:
        raise ValueError(f"unknown reward_scaling {reward_scaling!r}; valid: {', '.join(SCALINGS)}")
    if reward_scaling != "auto":
        return reward_scaling
    if "maze" in dataset_id.lower():
        return "antmaze"
    return "none" if dataset_id.startswith("toy/") else "locomotion"


def scale_rewards(reward: np.ndarray, episode_returns: np.ndarray, mode: str) -> np.ndarray:
    """IQL's reward scaling: locomotion r * 1000 / (max return - min return), antmaze r - 1, none."""
    if mode == "locomotion":
        spread = float(episode_returns.max() - episode_returns.min())
        if spread <= 0:
            raise ValueError("locomotion reward scaling needs episodes with different returns; use 'none'")
        return reward * np.float32(1000.0 / spread)
    if mode == "antmaze":
        return reward - np.float32(1.0)
    return reward


@lru_cache(maxsize=1)
def ref_scores_table() -> dict[str, tuple[float, float]]:
    """env name -> (ref_min_score, ref_max_score) from the D4RL reference table."""
    with open(REF_SCORES_CSV, newline="") as f:
        return {row["env"]: (float(row["ref_min_score"]), float(row["ref_max_score"])) for row in csv.DictReader(f)}


def _env_key(name: str) -> str:
    """'Hopper-v5' -> 'hopper', 'mujoco/hopper/medium-v0' -> 'hopper'."""
    parts = name.lower().split("/")
    base = parts[1] if len(parts) >= 3 else parts[-1]
    return base.split("-v")[0].replace("_", "")


def _d4rl_key(dataset_id: str, env_id: str | None) -> str | None:
    """The row of D4RL's reference table that covers a dataset, if any."""
    table = ref_scores_table()
    if "antmaze" in dataset_id.lower():
        return "antmaze" if "antmaze" in table else None
    return next((k for k in (_env_key(dataset_id), _env_key(env_id or "")) if k in table), None)


SUCCESS_REFS = (0.0, 1.0)  # goal-reaching sets: the score is 100 x the success rate


def score_references(dataset_id: str, metadata: dict, env_id: str | None, goal_reaching: bool = False) -> dict:
    """The reference fields of OfflineData: success-rate refs for goal-reaching sets, D4RL's refs for environments
    in its table, else the dataset's own."""
    lo, hi = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    own = (float(lo), float(hi)) if lo is not None and hi is not None else (None, None)
    key = _d4rl_key(dataset_id, env_id)
    if goal_reaching:
        primary, source = SUCCESS_REFS, "success"
    elif key is not None:
        primary, source = ref_scores_table()[key], "d4rl"
    else:
        primary, source = own, "dataset" if own[0] is not None else "none"
    return {"ref_min_score": primary[0], "ref_max_score": primary[1], "ref_source": source,
            "dataset_ref_min_score": own[0], "dataset_ref_max_score": own[1]}


def reference_scores(dataset_id: str, metadata: dict, env_id: str | None) -> tuple[float | None, float | None]:
    """The (ref_min_score, ref_max_score) scores are normalised with (see score_references)."""
    refs = score_references(dataset_id, metadata, env_id)
    return refs["ref_min_score"], refs["ref_max_score"]


TRANSITION_KEYS = ("obs", "action", "reward", "next_obs", "terminal")


def content_hash(arrays: dict[str, np.ndarray | Tensor]) -> str:
    """First 16 hex digits of sha256 over the float32 bytes (and shapes) of obs, action, reward, next_obs and
    terminal: equal for equal transitions on any device."""
    h = hashlib.sha256()
    for key in TRANSITION_KEYS:
        value = arrays[key]
        if isinstance(value, Tensor):
            value = value.detach().to("cpu", torch.float32).numpy()
        a = np.ascontiguousarray(value, dtype=np.float32)
        h.update(f"{key}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def _spec_from_metadata(metadata: dict) -> EnvSpec | None:
    """The evaluation env spec (or else the collection spec) stored in Minari metadata."""
    text = metadata.get("eval_env_spec") or metadata.get("env_spec")
    if not isinstance(text, str):
        return None
    for old in ('"order_enforce": true,', '"apply_api_compatibility": false,', '"autoreset": false, '):
        text = text.replace(old, "")  # specs written by older gymnasium versions
    try:
        return EnvSpec.from_json(text)
    except (json.JSONDecodeError, TypeError, KeyError, ValueError):
        return None


def _read_minari(dataset_id: str, download: bool) -> tuple[dict[str, np.ndarray], np.ndarray, dict, bool]:
    """Arrays, episode returns and metadata of a Minari dataset, and whether its observations are goal dicts."""
    ds = _open_minari(dataset_id, download)
    try:
        arrays, returns = _episode_arrays(ds, dataset_id)
        metadata = ds.storage.metadata
        goal_reaching = is_goal_dict(ds.observation_space)
    except (ObservationFormatError, DatasetCorruptError):
        raise
    except Exception as err:  # h5py OSError, KeyError, ... from damaged files
        raise DatasetCorruptError(_corrupt_message(dataset_id, Path(str(ds.storage.data_path)).parent, err)) from None
    return arrays, returns, metadata, goal_reaching


def _normalized(data: OfflineData) -> OfflineData:
    """Observations and next observations normalised by the observation mean and std (+1e-3)."""
    mean = data.obs.mean(0)
    std = data.obs.std(0) + OBS_STD_EPS
    return replace(data, obs=(data.obs - mean) / std, next_obs=(data.next_obs - mean) / std,
                   obs_mean=mean, obs_std=std)


def _load_toy(dataset_id: str, scaling: str) -> OfflineData:
    from genrl_core.data import bandits

    data = bandits.DATASETS[dataset_id]()
    data = replace(data, content_hash=content_hash({k: getattr(data, k) for k in TRANSITION_KEYS}))
    if scaling != "none":
        reward = scale_rewards(data.reward.numpy(), data.reward.double().numpy(), scaling)
        data = replace(data, reward=torch.as_tensor(reward, dtype=torch.float32))
    return data


def _episode_returns(dataset_id: str) -> np.ndarray:
    """Undiscounted return of every episode of a Minari dataset."""
    import minari

    ds = minari.load_dataset(dataset_id)
    return np.asarray([float(np.sum(ep.rewards, dtype=np.float64)) for ep in ds.iterate_episodes()])


def _load_joined(ids: list[str], device: str | torch.device, reward_scaling: str, normalize_obs: bool,
                 download: bool) -> OfflineData:
    """Several datasets concatenated (medium-expert style), rewards scaled over all their episodes together."""
    dataset_id = "+".join(ids)
    data = concat([load(i, device, reward_scaling="none", download=download) for i in ids], dataset_id)
    mode = resolve_scaling(ids[0], reward_scaling)
    if mode != "none":
        returns = np.concatenate([_episode_returns(i) for i in ids])
        reward = scale_rewards(data.reward.cpu().numpy(), returns, mode)
        data = replace(data, reward=torch.as_tensor(reward, device=data.device))
    return concat([data], dataset_id, normalize_obs=True) if normalize_obs else data


def load(dataset_id: str, device: str | torch.device = "cpu", reward_scaling: str = "auto",
         normalize_obs: bool = False, download: bool = False) -> OfflineData:
    """Load a Minari dataset, a D4RL file (d4rl/<env>-<kind>-v<n>, from D4RL_DATASETS_PATH; `download` does not
    apply) or a toy/... bandit as transition tensors on `device`; several '+'-joined ids are concatenated and
    reward-scaled over all their episodes."""
    if "+" in dataset_id:
        return _load_joined(dataset_id.split("+"), device, reward_scaling, normalize_obs, download)
    from genrl_core.data import bandits

    scaling = resolve_scaling(dataset_id, reward_scaling)
    if dataset_id in bandits.DATASETS:
        data = _load_toy(dataset_id, scaling)
    else:
        if dataset_id.startswith("d4rl/"):
            from genrl_core.data import d4rl

            arrays, returns, spec = d4rl.read(dataset_id)
            metadata: dict = {}
            goal_reaching = False
        else:
            arrays, returns, metadata, goal_reaching = _read_minari(dataset_id, download)
            spec = _spec_from_metadata(metadata)
        digest = content_hash(arrays)
        arrays["reward"] = scale_rewards(arrays["reward"], returns, scaling)
        env_id = spec.id if spec is not None else None
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in arrays.items()}
        data = OfflineData(**tensors, dataset_id=dataset_id, env_id=env_id, obs_mean=None, obs_std=None,
                           env_spec=spec, content_hash=digest, **score_references(dataset_id, metadata, env_id, goal_reaching))
    if normalize_obs:
        data = _normalized(data)
    return data.to(device)


def concat(datasets: list[OfflineData], dataset_id: str, normalize_obs: bool = False) -> OfflineData:
    """Concatenate un-normalised datasets (medium-expert style); env and refs come from the first. The content hash
    is the parts' hashes hashed in order (a single part keeps its own)."""
    if not datasets:
        raise ValueError("concat needs at least one dataset")
    if any(d.obs_mean is not None for d in datasets):
        raise ValueError("concat datasets before normalising observations (pass normalize_obs=True to concat)")
    first = datasets[0]
    cat = {k: torch.cat([getattr(d, k).to(first.device) for d in datasets])
           for k in ("obs", "action", "reward", "next_obs", "terminal")}
    digest = first.content_hash if len(datasets) == 1 else hashlib.sha256(
        "+".join(d.content_hash for d in datasets).encode()).hexdigest()[:16]
    data = replace(first, **cat, dataset_id=dataset_id, content_hash=digest)
    return _normalized(data) if normalize_obs else data

