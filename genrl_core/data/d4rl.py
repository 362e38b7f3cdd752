"""D4RL's own hdf5 files (the exact data behind every published locomotion number), read from a local folder.

Ids look like `d4rl/hopper-medium-v2`: env hopper, halfcheetah, walker2d or ant; kind random, medium, expert,
medium-replay, medium-expert or full-replay; version v0, v1 or v2. The file is looked for in the folder named by
the environment variable D4RL_DATASETS_PATH under D4RL's own name (`hopper_medium_replay-v2.hdf5`, as its
download URLs call it; `hopper_medium.hdf5` for v0), or `hopper_medium-replay-v2.hdf5`, or the task name
`hopper-medium-replay-v2.hdf5`. Nothing is downloaded.

Transitions: when the file has next_observations (the v2 files) every row is one; otherwise the next observation
is the following row of the same episode, and an episode's last row without one (it ended by a time-out, or the
file ends) is dropped. Episodes are split at terminals | timeouts (what IQL's reward scaling needs); time-outs are
not terminals.

Evaluation environments. D4RL's v2 data were collected on gym's mujoco-py envs (Hopper-v3, ...), which need
mujoco-py; Gymnasium's v5 envs run on the current mujoco bindings with the same observation layout:
- Hopper-v5 (11 dims), HalfCheetah-v5 (17): the same models, as they are.
- Walker2d-v5 (17): v5 changed the model's foot friction (both 1.9; v2-v4 had right 0.9, left 1.9), so
  `xml_file="walker2d.xml"` (Gymnasium's copy of the v2-v4 model) restores D4RL's dynamics.
- Ant: D4RL's ant has 111 dims, qpos[2:] (13), qvel (14) and the clipped cfrc_ext of 14 bodies (84), and the
  84 contact dims are all zero in D4RL's files (mujoco 2.x left cfrc_ext at zero; D4RL issue #143), so its
  contact cost was zero too. No Ant-v5 option gives 111 dims (include_cfrc_ext_in_observation gives 105, the
  worldbody dropped; use_contact_forces was v4's), so Ant-v5 runs with include_cfrc_ext_in_observation=False and
  contact_cost_weight=0 and a wrapper appends 84 zeros: what D4RL's agents saw. A file whose contact dims are
  not all zero was not made like D4RL's and is refused.
The one difference left: v5 no longer pays the healthy reward on the step that ends an episode by falling
(at most 1 of the return of such an episode).
"""
from __future__ import annotations

import dataclasses
import os
import re
from functools import lru_cache
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec, WrapperSpec

from genrl_core.data.offline import DatasetCorruptError, DatasetNotFoundError

PATH_ENV = "D4RL_DATASETS_PATH"
PREFIX = "d4rl/"
KINDS = ("random", "medium", "expert", "medium-replay", "medium-expert", "full-replay")
VERSIONS = ("v0", "v1", "v2")
# D4RL env name -> (Gymnasium id, make kwargs) with D4RL's observation layout (see the module docstring)
ENVS: dict[str, tuple[str, dict]] = {
    "hopper": ("Hopper-v5", {}),
    "halfcheetah": ("HalfCheetah-v5", {}),
    "walker2d": ("Walker2d-v5", {"xml_file": "walker2d.xml"}),
    "ant": ("Ant-v5", {"include_cfrc_ext_in_observation": False, "contact_cost_weight": 0.0}),
}
ANT_STATE_DIMS, ANT_CONTACT_DIMS = 27, 84
FIELDS = ("observations", "actions", "rewards", "terminals", "timeouts")
TASK_RE = re.compile(rf"({'|'.join(ENVS)})-({'|'.join(KINDS)})-(v\d+)")
D4RL_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl/gym_mujoco_v2/{}"


class AppendZeroContactForces(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Appends n zeros to each observation: D4RL's ant contact forces, which its data hold as zeros."""

    def __init__(self, env: gym.Env, n: int = ANT_CONTACT_DIMS):
        gym.utils.RecordConstructorArgs.__init__(self, n=n)
        gym.ObservationWrapper.__init__(self, env)
        box = env.observation_space
        self._zeros = np.zeros(n, dtype=box.dtype)
        self.observation_space = gym.spaces.Box(np.concatenate([box.low, self._zeros]),
                                                np.concatenate([box.high, self._zeros]), dtype=box.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([observation, self._zeros])


def parse(task: str) -> tuple[str, str, str]:
    """'hopper-medium-replay-v2' (or 'd4rl/hopper-medium-replay-v2') -> ('hopper', 'medium-replay', 'v2')."""
    name = task[len(PREFIX):] if task.startswith(PREFIX) else task
    m = TASK_RE.fullmatch(name)
    if not m or m.group(3) not in VERSIONS:
        raise DatasetNotFoundError(
            f"{task!r} is not a D4RL locomotion id: use d4rl/<env>-<kind>-<version> with env in {', '.join(ENVS)}, "
            f"kind in {', '.join(KINDS)}, version in {', '.join(VERSIONS)} (e.g. d4rl/hopper-medium-v2)")
    return m.group(1), m.group(2), m.group(3)


def dataset_id(task: str) -> str:
    """'hopper-medium-v2' -> 'd4rl/hopper-medium-v2' (a ValueError for tasks that are not D4RL locomotion)."""
    env, kind, version = parse(task)
    return f"{PREFIX}{env}-{kind}-{version}"


def file_names(task: str) -> list[str]:
    """The names a task's file may have, D4RL's own first."""
    env, kind, version = parse(task)
    names = [f"{env}_{kind.replace('-', '_')}-{version}.hdf5", f"{env}_{kind}-{version}.hdf5",
             f"{env}-{kind}-{version}.hdf5"]
    if version == "v0":
        names.append(f"{env}_{kind.replace('-', '_')}.hdf5")  # D4RL's v0 URLs carry no version
    return list(dict.fromkeys(names))


def _root() -> Path | None:
    value = os.environ.get(PATH_ENV, "")
    return Path(value).expanduser() if value else None


def local_file(task: str) -> Path | None:
    """The hdf5 file of a paper task like 'hopper-medium-v2' when D4RL_DATASETS_PATH holds it, else None (also for
    tasks that are not D4RL locomotion sets, e.g. antmaze-*)."""
    root = _root()
    try:
        names = file_names(task)
    except ValueError:
        return None
    if root is None:
        return None
    return next((root / n for n in names if (root / n).is_file()), None)


def _download(dataset: str) -> str:
    """Where D4RL serves a file (v2 URLs follow one pattern; the older ones do not)."""
    return f"download: {D4RL_URL.format(file_names(dataset)[0])}" if dataset.endswith("-v2") else (
        "download it from D4RL")


def _find(dataset: str) -> Path:
    path = local_file(dataset)
    if path is not None:
        return path
    names = file_names(dataset)
    get = f"{_download(dataset)}; D4RL itself keeps its downloads in ~/.d4rl/datasets"
    if _root() is None:
        raise DatasetNotFoundError(f"no D4RL file for {dataset!r}: {PATH_ENV} is not set; set it to the folder that "
                                   f"holds D4RL's file, named {' or '.join(names)} ({get})")
    raise DatasetNotFoundError(f"no D4RL file for {dataset!r} in {PATH_ENV}={_root()} (looked for "
                               f"{', '.join(names)}); put D4RL's file there under one of those names ({get})")


@lru_cache(maxsize=None)
def env_spec(env: str) -> EnvSpec:
    """The Gymnasium spec that evaluates a D4RL env name ('hopper', ...) with D4RL's observation layout."""
    env_id, kwargs = ENVS[env]
    spec = gym.spec(env_id)
    wrappers = (WrapperSpec("AppendZeroContactForces", f"{__name__}:AppendZeroContactForces",
                            {"n": ANT_CONTACT_DIMS}),) if env == "ant" else ()
    return dataclasses.replace(spec, kwargs={**spec.kwargs, **kwargs}, additional_wrappers=wrappers)


@lru_cache(maxsize=None)
def _env_dims(env: str) -> tuple[int, int]:
    made = gym.make(env_spec(env))
    try:
        return made.observation_space.shape[0], made.action_space.shape[0]
    finally:
        made.close()


def _read_fields(path: Path, dataset: str) -> dict[str, np.ndarray]:
    """The D4RL fields of a file; unreadable files and missing fields are one-line DatasetCorruptErrors."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in FIELDS if not isinstance(f.get(k), h5py.Dataset)]
            if missing:
                raise DatasetCorruptError(
                    f"D4RL file {path} ({dataset!r}) lacks field(s) {missing}; a D4RL locomotion file holds "
                    f"{', '.join(FIELDS)} (and next_observations in -v2 files) at its top level")
            keys = FIELDS + (("next_observations",) if isinstance(f.get("next_observations"), h5py.Dataset) else ())
            return {k: f[k][()] for k in keys}
    except DatasetCorruptError:
        raise
    except Exception as err:  # OSError (truncated, not hdf5), KeyError, ... from h5py
        text = " ".join(str(err).split())
        raise DatasetCorruptError(
            f"D4RL file {path} ({dataset!r}) is corrupt or unreadable ({type(err).__name__}: {text}); replace it "
            f"({_download(dataset)})") from None


def _check(raw: dict[str, np.ndarray], path: Path, dataset: str, env: str) -> None:
    """Shapes: equal lengths, the env's observation and action dims; ant's contact dims zero."""
    where = f"D4RL file {path} ({dataset!r})"
    n = len(raw["observations"])
    lengths = {k: len(v) for k, v in raw.items()}
    if len(set(lengths.values())) > 1:
        raise DatasetCorruptError(f"{where} has fields of unequal lengths {lengths}; each must have one row per "
                                  f"transition ({n} as observations has)")
    if n == 0:
        raise DatasetCorruptError(f"{where} holds no transitions")
    obs_dim, act_dim = _env_dims(env)
    env_id = ENVS[env][0]
    for key, want, what in (("observations", obs_dim, "observation"), ("next_observations", obs_dim, "observation"),
                            ("actions", act_dim, "action")):
        if key in raw and (raw[key].ndim != 2 or raw[key].shape[1] != want):
            raise DatasetCorruptError(
                f"{where}: {key} have shape {raw[key].shape}, but {env_id} (where d4rl/{env}-* sets are evaluated) "
                f"has {want} {what} dims, so {key} must have shape ({n}, {want}); is it a {env} file?")
    for key in ("rewards", "terminals", "timeouts"):
        if raw[key].reshape(n, -1).shape[1] != 1:
            raise DatasetCorruptError(f"{where}: {key} have shape {raw[key].shape}; must be ({n},)")
    if env == "ant":
        contact = [raw[k][:, ANT_STATE_DIMS:] for k in ("observations", "next_observations") if k in raw]
        if any(np.any(c != 0) for c in contact):
            raise DatasetCorruptError(
                f"{where}: observation dims {ANT_STATE_DIMS}-{obs_dim - 1} (contact forces) are not all zero, as "
                f"they are in D4RL's ant files; no Gymnasium env reproduces such data, so it cannot be evaluated")


def transitions(raw: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """D4RL fields -> transition arrays (obs, action, reward, next_obs, terminal) and each episode's return.

    Episodes end at terminals | timeouts (the file's last rows form one more when unflagged). Without
    next_observations, the next observation is the following row, and an episode's last row is dropped unless it is
    terminal (whose next observation is masked anyway; it gets its own). Returns are over the kept rows.
    """
    n = len(raw["observations"])
    obs = np.asarray(raw["observations"], dtype=np.float32)
    reward = np.asarray(raw["rewards"], dtype=np.float32).reshape(n)
    terminal = np.asarray(raw["terminals"]).reshape(n).astype(bool)
    end = terminal | np.asarray(raw["timeouts"]).reshape(n).astype(bool)
    end[-1] = True
    if "next_observations" in raw:
        next_obs = np.asarray(raw["next_observations"], dtype=np.float32)
        keep = np.ones(n, dtype=bool)
    else:
        next_obs = np.concatenate([obs[1:], obs[-1:]])
        next_obs[terminal] = obs[terminal]
        keep = ~end | terminal  # an episode's last row has no next observation unless it is terminal
    episode = np.concatenate([[0], np.cumsum(end[:-1])])  # episode index of every row
    sums = np.bincount(episode[keep], weights=reward[keep].astype(np.float64), minlength=episode[-1] + 1)
    has_rows = np.bincount(episode[keep], minlength=episode[-1] + 1) > 0
    arrays = {"obs": obs[keep], "action": np.asarray(raw["actions"], dtype=np.float32)[keep], "reward": reward[keep],
              "next_obs": next_obs[keep], "terminal": terminal[keep].astype(np.float32)}
    return arrays, sums[has_rows]


def read(dataset: str) -> tuple[dict[str, np.ndarray], np.ndarray, EnvSpec]:
    """A d4rl/... id -> transition arrays, episode returns and the evaluation env spec."""
    env, _, _ = parse(dataset)
    path = _find(dataset)
    raw = _read_fields(path, dataset)
    _check(raw, path, dataset, env)
    arrays, returns = transitions(raw)
    if not len(arrays["obs"]):
        raise DatasetCorruptError(f"D4RL file {path} ({dataset!r}) has no transition with a next observation")
    return arrays, returns, env_spec(env)
