"""Maze datasets made here (gymnasium-robotics PointMaze and AntMaze), saved as real Minari datasets.

As D4RL's maze2d and AntMaze data: the behaviour wanders between random commanded goals (a new one, anywhere in the
maze, each time the current one is reached; the commanded goals are not in the data), while the recorded reward and
desired_goal are the environment's, for its fixed evaluation goal, in episodes of a fixed length (the environment's
time limit; a continuing task: no terminations, a truncation at the end).

Maps: the evaluation goal ('g') and start ('r') are the two free cells farthest apart on the maze (by breadth-first
search over its cells; UMaze: the two ends of the U). Data episodes start in any free cell but the goal's.

Kinds:
  waypoint  (PointMaze only) a waypoint controller: a breadth-first path over the maze's cells to the commanded
            goal's cell, a PD step toward the next cell's centre (toward the goal itself in its own cell), plus
            Gaussian action noise
  random    uniform random actions (for AntMaze: enough to load it, check its observation layout and evaluate)
Ids: local/<robot>/<maze>-v0 for waypoint data, local/<robot>/<maze>-random-v0 for random data, e.g.
local/pointmaze/umaze-v0 and local/antmaze/umaze-random-v0.

References (metadata ref_min_score / ref_max_score): success rates under the evaluation protocol of
genrl_core.evaluation (episodes end at the goal) of uniform random actions and of the behaviour's controller
commanded straight to the evaluation goal (with its action noise); random data has random actions for both. The
description also gives the fraction of data episodes that pass through the goal.
The real D4RL sets are fetched where there is a network: `minari download D4RL/antmaze/umaze-v1`.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
import warnings
from collections import deque
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec

from genrl_core.evaluation import check_env, evaluate

MAZE_KINDS = ("waypoint", "random")
D4RL_VERSIONS = {"PointMaze": 3, "AntMaze": 4}  # the versions of Minari's D4RL sets (AntMaze v4: 27-dim observation)
GOAL_RADIUS = 0.45  # gymnasium-robotics: success (and the sparse reward) within this distance of the goal
Cell = tuple[int, int]


def is_maze_env(env_id: str) -> bool:
    """Whether env_id names a gymnasium-robotics maze (PointMaze_*, AntMaze_*)."""
    return env_id.split("/")[-1].split("_")[0] in ("PointMaze", "AntMaze")


def maze_dataset_id(env_id: str, kind: str) -> str:
    """The Minari id of a maze set made here: ('PointMaze_UMaze-v3', 'waypoint') -> local/pointmaze/umaze-v0."""
    robot, _, maze = env_id.split("/")[-1].split("-v")[0].partition("_")
    name = maze.lower().replace("_", "-")
    return f"local/{robot.lower()}/{name}-v0" if kind == "waypoint" else f"local/{robot.lower()}/{name}-{kind}-v0"


def make_hint(dataset_id: str) -> str:
    """The command that makes a local maze set like dataset_id (on the env version of Minari's D4RL sets)."""
    check_env("PointMaze_UMaze-v3")  # registers gymnasium-robotics' environments
    for env_id in [e for e in gym.registry if is_maze_env(e) and gym.spec(e).version == D4RL_VERSIONS[e.split("_")[0]]]:
        kind = next((k for k in MAZE_KINDS if maze_dataset_id(env_id, k) == dataset_id), None)
        if kind is not None:
            return f"`python -m genrl_core.datasets make --env {env_id} --kinds {kind}`"
    return "`python -m genrl_core.datasets make --env PointMaze_UMaze-v3 --kinds waypoint` (or another maze)"


# --- the maze as cells ---------------------------------------------------------------------------------------------

def free_cells(maze_map: Sequence[Sequence]) -> list[Cell]:
    """(row, col) of every cell that is not a wall (1)."""
    return [(i, j) for i, row in enumerate(maze_map) for j, v in enumerate(row) if v != 1]


def distances(maze_map: Sequence[Sequence], start: Cell) -> dict[Cell, int]:
    """Breadth-first distance in cells (4-neighbours) from start to every free cell reachable from it."""
    free = set(free_cells(maze_map))
    dist = {start: 0}
    queue = deque([start])
    while queue:
        i, j = queue.popleft()
        for nxt in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if nxt in free and nxt not in dist:
                dist[nxt] = dist[(i, j)] + 1
                queue.append(nxt)
    return dist


def farthest_pair(maze_map: Sequence[Sequence]) -> tuple[Cell, Cell]:
    """(start, goal): the two free cells farthest apart by path (ties: the first in row-major order)."""
    best = (-1, (0, 0), (0, 0))
    for a in free_cells(maze_map):
        for b, d in distances(maze_map, a).items():
            best = max(best, (d, b, a), key=lambda x: x[0])
    return best[2], best[1]


def with_markers(maze_map: Sequence[Sequence], goal: Cell, starts: Sequence[Cell]) -> list[list]:
    """The walls of maze_map with 'g' at goal, 'r' at each start and 0 elsewhere (gymnasium-robotics' markers)."""
    out = [[1 if v == 1 else 0 for v in row] for row in maze_map]
    for i, j in starts:
        out[i][j] = "r"
    out[goal[0]][goal[1]] = "g"
    return out


def maze_specs(env_id: str, episode_steps: int | None = None) -> tuple[EnvSpec, EnvSpec]:
    """(collection spec, evaluation spec) of a maze: its fixed goal, a continuing task with a fixed target; the
    evaluation starts at the cell farthest from the goal, the collection anywhere else."""
    base = check_env(env_id)
    maze_map = base.kwargs.get("maze_map")
    if maze_map is None:
        raise ValueError(f"{env_id}: no maze_map in its spec; not a gymnasium-robotics maze")
    start, goal = farthest_pair(maze_map)
    steps = episode_steps or base.max_episode_steps
    kwargs = {**base.kwargs, "continuing_task": True, "reset_target": False}

    def spec(starts: Sequence[Cell]) -> EnvSpec:
        return dataclasses.replace(base, kwargs={**kwargs, "maze_map": with_markers(maze_map, goal, starts)},
                                   max_episode_steps=steps)

    return spec([c for c in free_cells(maze_map) if c != goal]), spec([start])


# --- the controller -------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class WaypointController:
    """PD control toward the next cell's centre on a shortest cell path to the goal (toward the goal itself once in
    its cell): action = clip(p_gain * (target - pos) - d_gain * vel, -1, 1)."""

    maze_map: list
    scaling: float = 1.0
    p_gain: float = 10.0
    d_gain: float = 1.0
    _next: dict = dataclasses.field(default_factory=dict, repr=False)  # goal cell -> {cell: next cell}

    def cell(self, xy: np.ndarray) -> Cell:
        """The (row, col) holding the point xy (gymnasium-robotics' layout: the maze centred on 0)."""
        rows, cols = len(self.maze_map), len(self.maze_map[0])
        i = int(np.floor((rows / 2 * self.scaling - xy[1]) / self.scaling))
        j = int(np.floor((xy[0] + cols / 2 * self.scaling) / self.scaling))
        return min(max(i, 0), rows - 1), min(max(j, 0), cols - 1)

    def centre(self, cell: Cell) -> np.ndarray:
        """The x, y of a cell's centre."""
        rows, cols = len(self.maze_map), len(self.maze_map[0])
        return np.array([(cell[1] + 0.5 - cols / 2) * self.scaling, (rows / 2 - cell[0] - 0.5) * self.scaling])

    def _step_toward(self, here: Cell, goal: Cell) -> Cell | None:
        """The neighbour of `here` one cell closer to `goal` (None when unreachable)."""
        if goal not in self._next:
            dist = distances(self.maze_map, goal)
            table = {}
            for (i, j), d in dist.items():
                table[(i, j)] = next((n for n in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1))
                                      if dist.get(n) == d - 1), None)
            self._next[goal] = table
        return self._next[goal].get(here)

    def target(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Where to head from pos: the next cell's centre, or the goal in its own cell."""
        here, there = self.cell(pos), self.cell(goal)
        step = None if here == there else self._step_toward(here, there)
        return goal if step is None else self.centre(step)

    def act(self, pos: np.ndarray, vel: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The PD action toward target(pos, goal)."""
        return np.clip(self.p_gain * (self.target(pos, goal) - pos) - self.d_gain * vel, -1.0, 1.0)


def controller_for(env: gym.Env) -> WaypointController:
    """A waypoint controller on a maze environment's map and scale."""
    maze = env.unwrapped.maze
    return WaypointController(maze.maze_map, float(maze.maze_size_scaling))


# --- collection -----------------------------------------------------------------------------------------------------

class _Recorder:
    """One episode of goal-dict observations, as a Minari EpisodeBuffer."""

    def __init__(self, obs: dict):
        self.obs = {k: [np.asarray(v, dtype=np.float64)] for k, v in obs.items()}
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.terminations: list[bool] = []
        self.truncations: list[bool] = []

    def step(self, action: np.ndarray, obs: dict, reward: float, term: bool, trunc: bool) -> None:
        for k, v in obs.items():
            self.obs[k].append(np.asarray(v, dtype=np.float64))
        self.actions.append(np.asarray(action, dtype=np.float32))
        self.rewards.append(float(reward))
        self.terminations.append(bool(term))
        self.truncations.append(bool(trunc))

    def buffer(self):
        from minari.data_collector import EpisodeBuffer

        return EpisodeBuffer(observations={k: np.stack(v) for k, v in self.obs.items()},
                             actions=np.stack(self.actions), rewards=np.asarray(self.rewards),
                             terminations=np.asarray(self.terminations), truncations=np.asarray(self.truncations))


def _random_point(ctrl: WaypointController, cells: list[Cell], rng: np.random.Generator) -> np.ndarray:
    """A random commanded goal: a random free cell's centre plus gymnasium-robotics' uniform +-0.25 cell noise."""
    cell = cells[int(rng.integers(len(cells)))]
    return ctrl.centre(cell) + rng.uniform(-0.25, 0.25, 2) * ctrl.scaling


class _Wanderer:
    """The waypoint behaviour of the module docstring: commanded to a random point, a new one each time it is
    reached, with Gaussian action noise."""

    def __init__(self, ctrl: WaypointController, rng: np.random.Generator, noise: float):
        self.ctrl, self.rng, self.noise, self.cells = ctrl, rng, noise, free_cells(ctrl.maze_map)
        self.restart()

    def restart(self) -> None:
        """A new commanded goal (at an episode's start)."""
        self.commanded = _random_point(self.ctrl, self.cells, self.rng)

    def follow(self, obs: dict) -> None:
        """Command a new goal once the current one is reached."""
        if np.linalg.norm(obs["achieved_goal"] - self.commanded) <= GOAL_RADIUS:
            self.restart()

    def act(self, obs: dict) -> np.ndarray:
        """The noisy PD action toward the commanded goal."""
        pd = self.ctrl.act(obs["achieved_goal"], obs["observation"][2:4], self.commanded)
        return np.clip(pd + self.rng.normal(0.0, self.noise, 2), -1.0, 1.0)


def collect(spec: EnvSpec, kind: str, min_steps: int, seed: int, noise: float) -> list[_Recorder]:
    """Whole episodes of `kind` on spec until at least min_steps steps (see the module docstring)."""
    env = gym.make(spec)
    env.action_space.seed(seed)
    wander = _Wanderer(controller_for(env), np.random.default_rng(seed), noise)
    episodes: list[_Recorder] = []
    total = 0
    obs, _ = env.reset(seed=seed)
    while total < min_steps:
        ep = _Recorder(obs)
        done = False
        while not done:
            wander.follow(obs)
            action = wander.act(obs) if kind == "waypoint" else env.action_space.sample()
            obs, reward, term, trunc, _ = env.step(action)
            ep.step(action, obs, reward, term, trunc)
            done = term or trunc
        episodes.append(ep)
        total += len(ep.rewards)
        obs, _ = env.reset()
        wander.restart()
    env.close()
    return episodes


def behaviour_success(spec: EnvSpec, episodes: int, seed: int, noise: float) -> float:
    """The waypoint data's own behaviour (wandering between random commanded goals) under the evaluation protocol:
    the fraction of `episodes` episodes from the evaluation start that reach the goal within the time limit. What
    behaviour cloning of the data can be expected to score."""
    env = gym.make(spec)
    wander = _Wanderer(controller_for(env), np.random.default_rng(seed), noise)
    hits = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        wander.restart()
        done = success = False
        while not (done or success):
            wander.follow(obs)
            obs, _, term, trunc, info = env.step(wander.act(obs))
            done, success = term or trunc, bool(info.get("success", False))
        hits += success
    env.close()
    return hits / episodes


# --- references -----------------------------------------------------------------------------------------------------

def controller_policy(ctrl: WaypointController, noise: float, seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The controller as a policy over flattened PointMaze observations (x, y, vx, vy, x, y, goal x, goal y),
    commanded to the observation's goal, with Gaussian action noise."""
    rng = np.random.default_rng(seed)

    def policy(obs: torch.Tensor) -> torch.Tensor:
        o = obs.detach().cpu().numpy().astype(np.float64)
        acts = [ctrl.act(row[4:6], row[2:4], row[6:8]) for row in o]
        noisy = np.asarray(acts) + rng.normal(0.0, noise, (len(acts), 2))
        return torch.as_tensor(np.clip(noisy, -1.0, 1.0), dtype=torch.float32)

    return policy


def random_policy(space: gym.spaces.Box, seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Uniform random actions in the box, one row per observation."""
    rng = np.random.default_rng(seed)

    def policy(obs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(rng.uniform(space.low, space.high, (obs.shape[0], *space.shape)), dtype=torch.float32)

    return policy


def success_rate(policy: Callable[[torch.Tensor], torch.Tensor], spec: EnvSpec, episodes: int, seed: int) -> float:
    """The fraction of `episodes` evaluation episodes (ending at the goal) in which policy reaches it."""
    return float(evaluate(policy, spec, episodes, seed)["success_rate"])


# --- saving ---------------------------------------------------------------------------------------------------------

def _save(dataset_id: str, specs: tuple[EnvSpec, EnvSpec], episodes: list[_Recorder], refs: tuple[float, float],
          n_ref: int, description: str) -> None:
    """Write episodes as a Minari dataset (replacing an existing one)."""
    import minari
    from minari.storage.datasets_root_dir import get_dataset_path

    if get_dataset_path(dataset_id).exists():
        shutil.rmtree(get_dataset_path(dataset_id))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*author_email.*")
        minari.create_dataset_from_buffers(
            dataset_id, [ep.buffer() for ep in episodes], env=specs[0], eval_env=specs[1],
            algorithm_name="genrl_core maze waypoint controller (data/mazes.py)", author="genrl_core",
            code_permalink="genrl_core/data/mazes.py", ref_min_score=refs[0], ref_max_score=refs[1],
            num_episodes_average_score=n_ref, description=description)


def _check(env_id: str, kinds: Sequence[str], force: bool) -> dict[str, str]:
    """Validate env and kinds; refuse existing datasets unless force."""
    from minari.storage.datasets_root_dir import get_dataset_path

    if not is_maze_env(env_id):
        raise ValueError(f"{env_id} is not a gymnasium-robotics maze (PointMaze_*, AntMaze_*)")
    check_env(env_id)
    unknown = [k for k in kinds if k not in MAZE_KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown maze dataset kinds {unknown}; valid: {', '.join(MAZE_KINDS)}")
    if "waypoint" in kinds and not env_id.startswith("PointMaze"):
        raise ValueError(f"the waypoint controller drives PointMaze only; for {env_id} use --kinds random (the real "
                         f"D4RL AntMaze sets: `minari download D4RL/antmaze/umaze-v1`)")
    ids = {k: maze_dataset_id(env_id, k) for k in kinds}
    existing = [i for i in ids.values() if get_dataset_path(i).exists()]
    if existing and not force:
        raise ValueError(f"datasets already exist: {', '.join(existing)}; pass --force to overwrite them")
    return ids


def make_maze_datasets(env_id: str, kinds: Sequence[str], *, dataset_steps: int = 100_000,
                       episode_steps: int | None = None, noise: float = 0.3, ref_episodes: int = 100, seed: int = 0,
                       force: bool = False) -> dict[str, str]:
    """Make the requested kinds of maze data for env_id; return kind -> Minari id (see the module docstring).

    dataset_steps: minimum steps (whole episodes); episode_steps: episode length and evaluation time limit (None:
    the environment's); noise: std of the controller's Gaussian action noise; ref_episodes: evaluation episodes of
    each reference policy.
    """
    ids = _check(env_id, kinds, force)
    specs = maze_specs(env_id, episode_steps)
    space = gym.make(specs[1]).action_space
    for kind, dataset_id in ids.items():
        start = time.perf_counter()
        episodes = collect(specs[0], kind, dataset_steps, seed, noise)
        low = success_rate(random_policy(space, seed + 1), specs[1], ref_episodes, seed + 1)
        high = low if kind == "random" else success_rate(
            controller_policy(WaypointController(specs[1].kwargs["maze_map"]), noise, seed + 2), specs[1],
            ref_episodes, seed + 2)
        wanders = behaviour_success(specs[1], ref_episodes, seed + 3, noise) if kind == "waypoint" else low
        visits = float(np.mean([max(ep.rewards) > 0 for ep in episodes]))
        steps = sum(len(ep.rewards) for ep in episodes)
        description = (f"{kind} data on {env_id} made by genrl_core.data.mazes (seed {seed}, action noise {noise}): "
                       f"{len(episodes)} episodes, {steps} steps, {visits:.1%} of them pass through the goal; success "
                       f"rates ({ref_episodes} evaluation episodes, ending at the goal): random actions {low:.3f}, "
                       f"controller commanded to the goal {high:.3f}, the data's own wandering behaviour from the evaluation "
                       f"start {wanders:.3f}; {time.perf_counter() - start:.0f} s")
        _save(dataset_id, specs, episodes, (low, high), ref_episodes, description)
    return ids
