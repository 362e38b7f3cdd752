"""Make D4RL-style datasets for any Gymnasium continuous-control env, saved as real Minari datasets.

A compact SAC (genrl_core.data.sac) is trained online for `total_steps`, with a checkpoint evaluated
`n_checkpoints` times along the way. Then, as in D4RL:
  random         uniform random actions
  medium         the checkpoint whose return is closest to random + medium_fraction * (expert - random)
                 (the few closest are re-measured with ref_episodes episodes before choosing)
  expert         the policy at the end of training
  medium-replay  the training episodes (its replay buffer) up to the medium checkpoint
  medium-expert  the medium and expert episodes concatenated
Behaviour policies act stochastically (as during training). Each kind but medium-replay holds whole
episodes with at least `dataset_steps` steps. Every dataset stores ref_min_score (the random policy's
mean return) and ref_max_score (the expert's mean return), measured at creation on the random and expert
rollouts (at least `ref_episodes` episodes each), in its metadata.
Ids: local/<env name, lower case>/<kind>-v0, e.g. local/pendulum/medium-v0.

Budgets: the defaults are small (minutes on a CPU). For D4RL-scale MuJoCo data use about
total_steps=1_000_000 and dataset_steps=1_000_000 with SACConfig(hidden=(256, 256)); Pendulum-v1
needs only about 10_000 training steps.
"""
from __future__ import annotations

import copy
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from genrl_core.evaluation import check_env, evaluate
from genrl_core.data.sac import SAC, ReplayBuffer, SACConfig, TanhGaussianActor
from genrl_core.progress import Lines, progress_bar

KINDS = ("random", "medium", "expert", "medium-replay", "medium-expert")
ActFn = Callable[[np.ndarray], np.ndarray]


class DatasetExistsError(FileExistsError):
    """A dataset that would be overwritten without force=True."""


def dataset_id_for(env_id: str, kind: str, root_name: str | None = None) -> str:
    """The Minari id of a locally made dataset, e.g. ('Pendulum-v1', 'medium') -> local/pendulum/medium-v0."""
    name = root_name or env_id.split("/")[-1].split("-v")[0].lower()
    return f"local/{name}/{kind}-v0"


@dataclass
class Episode:
    """One recorded episode: observations has one more row than the other arrays."""

    observations: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    terminations: list = field(default_factory=list)
    truncations: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def ret(self) -> float:
        return float(np.sum(self.rewards))

    def step(self, action: np.ndarray, reward: float, next_obs: np.ndarray, term: bool, trunc: bool) -> None:
        self.actions.append(np.asarray(action, dtype=np.float32))
        self.rewards.append(float(reward))
        self.observations.append(np.asarray(next_obs, dtype=np.float32))
        self.terminations.append(bool(term))
        self.truncations.append(bool(trunc))

    def to_buffer(self):
        """As a Minari EpisodeBuffer (id assigned on saving)."""
        from minari.data_collector import EpisodeBuffer

        return EpisodeBuffer(observations=np.stack(self.observations), actions=np.stack(self.actions),
                             rewards=np.asarray(self.rewards), terminations=np.asarray(self.terminations),
                             truncations=np.asarray(self.truncations))


def collect(env: gym.Env, act: ActFn, min_steps: int, seed: int, bar: tqdm | Lines | None = None,
            min_episodes: int = 1) -> list[Episode]:
    """Whole episodes of `act` on env until at least min_steps steps and min_episodes episodes.

    Time limits stay truncations (never terminations).
    """
    episodes: list[Episode] = []
    total = 0
    obs, _ = env.reset(seed=seed)
    while total < min_steps or len(episodes) < min_episodes:
        ep = Episode(observations=[np.asarray(obs, dtype=np.float32)])
        done = False
        while not done:
            action = act(obs)
            obs, reward, term, trunc, _ = env.step(action)
            ep.step(action, reward, obs, term, trunc)
            done = term or trunc
        episodes.append(ep)
        total += len(ep)
        if bar is not None:
            bar.update(len(ep))
        obs, _ = env.reset()
    return episodes


def actor_act(actor: TanhGaussianActor) -> ActFn:
    """A numpy action function sampling from a SAC actor."""
    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0][0].numpy()
    return act


def mean_return(actor: TanhGaussianActor | None, env_id: str, n_episodes: int, seed: int) -> float:
    """Mean return of a sampling SAC actor, or of uniform random actions when actor is None."""
    space = gym.make(env_id).action_space
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)

    @torch.no_grad()
    def policy(obs: torch.Tensor) -> torch.Tensor:
        if actor is None:
            return low + (high - low) * torch.rand(obs.shape[0], low.shape[0])
        return actor(obs)[0]

    return evaluate(policy, env_id, n_episodes, seed)["return_mean"]


@dataclass
class Training:
    """What SAC training leaves behind: checkpoints (step, actor, eval return) and training episodes."""

    checkpoints: list[tuple[int, TanhGaussianActor, float]]
    episodes: list[tuple[int, Episode]]  # (step at which the episode ended, episode)


def _checkpoint_steps(total_steps: int, start_steps: int, n_checkpoints: int) -> set[int]:
    """Evenly spaced checkpoint steps after the random warm-up, the last at total_steps."""
    first = min(start_steps, total_steps - 1)
    return {int(s) for s in np.linspace(first, total_steps, n_checkpoints + 1)[1:].round()}


def train_sac(env_id: str, total_steps: int, *, seed: int = 0, config: SACConfig | None = None,
              start_steps: int = 1000, n_checkpoints: int = 20, eval_episodes: int = 10,
              progress: bool = True) -> Training:
    """Train SAC online, keeping evaluated actor checkpoints and every training episode."""
    config = config or SACConfig()
    torch.manual_seed(seed)
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = SAC(obs_dim, act_dim, env.action_space.low, env.action_space.high, config)
    buffer = ReplayBuffer(obs_dim, act_dim, total_steps)
    marks = _checkpoint_steps(total_steps, start_steps, n_checkpoints)
    out = Training([], [])
    obs, _ = env.reset(seed=seed)
    ep = Episode(observations=[np.asarray(obs, dtype=np.float32)])
    for step in progress_bar(range(1, total_steps + 1), desc=f"SAC {env_id}", enabled=progress):
        action = env.action_space.sample() if step <= start_steps else agent.act(obs)
        next_obs, reward, term, trunc, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, term)
        ep.step(action, reward, next_obs, term, trunc)
        obs = next_obs
        if term or trunc:
            out.episodes.append((step, ep))
            obs, _ = env.reset()
            ep = Episode(observations=[np.asarray(obs, dtype=np.float32)])
        if step >= min(start_steps, total_steps // 2) and buffer.size >= config.batch_size:
            agent.update(buffer.sample(config.batch_size))
        if step in marks:
            actor = copy.deepcopy(agent.actor).requires_grad_(False)
            out.checkpoints.append((step, actor, mean_return(actor, env_id, eval_episodes, seed + step)))
    return out


def select_medium(checkpoints: list[tuple[int, TanhGaussianActor, float]], random_return: float,
                  expert_return: float, fraction: float = 1 / 3,
                  refine: Callable[[TanhGaussianActor], float] | None = None, n_refine: int = 3) -> int:
    """Index of the checkpoint (the last excluded when possible) whose return is closest to the medium target.

    With `refine`, the n_refine closest are measured again by refine(actor) and the closest of those wins.
    """
    target = random_return + fraction * (expert_return - random_return)
    candidates = checkpoints[:-1] or checkpoints
    order = np.argsort([abs(ret - target) for _, _, ret in candidates])
    if refine is None:
        return int(order[0])
    remeasured = {int(i): refine(candidates[i][1]) for i in order[:n_refine]}
    return min(remeasured, key=lambda i: abs(remeasured[i] - target))


def _save(dataset_id: str, env_id: str, episodes: list[Episode], refs: tuple[float, float], n_ref: int,
          description: str) -> None:
    """Write episodes as a Minari dataset through create_dataset_from_buffers."""
    import minari
    from minari.storage.datasets_root_dir import get_dataset_path

    if get_dataset_path(dataset_id).exists():  # only reached with force=True
        shutil.rmtree(get_dataset_path(dataset_id))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*author_email.*")
        minari.create_dataset_from_buffers(
            dataset_id, [ep.to_buffer() for ep in episodes], env=env_id, eval_env=env_id,
            algorithm_name="genrl_core SAC (datasets_local)", author="genrl_core",
            code_permalink="genrl_core/data/making.py", ref_min_score=refs[0], ref_max_score=refs[1],
            num_episodes_average_score=n_ref, description=description)


def _check_targets(env_id: str, kinds: Sequence[str], root_name: str | None, force: bool) -> dict[str, str]:
    """Validate env and kinds; refuse existing datasets unless force (they are replaced when saving)."""
    from minari.storage.datasets_root_dir import get_dataset_path

    spec = check_env(env_id)
    env = gym.make(spec)
    if not isinstance(env.action_space, gym.spaces.Box) or not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"{env_id}: datasets are made only for Box observation and action spaces")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown dataset kinds {unknown}; valid: {', '.join(KINDS)}")
    ids = {k: dataset_id_for(env_id, k, root_name) for k in kinds}
    existing = [i for i in ids.values() if get_dataset_path(i).exists()]
    if existing and not force:
        raise DatasetExistsError(f"datasets already exist: {', '.join(existing)}; pass force=True (--force) "
                                 f"to overwrite them")
    return ids


@dataclass
class _Rollouts:
    """Collects (once) and caches the episodes of each behaviour policy."""

    env_id: str
    training: Training
    dataset_steps: int
    min_episodes: int
    seed: int
    progress: bool
    medium: int = -1  # checkpoint index of the medium policy, set once chosen
    cache: dict[str, list[Episode]] = field(default_factory=dict)

    def policy(self, kind: str) -> list[Episode]:
        """Episodes of the 'random', 'medium' or 'expert' policy."""
        if kind not in self.cache:
            env = gym.make(self.env_id)
            env.action_space.seed(self.seed)
            act = {"random": lambda _: env.action_space.sample(),
                   "medium": actor_act(self.training.checkpoints[self.medium][1]),
                   "expert": actor_act(self.training.checkpoints[-1][1])}[kind]
            episodes = self.min_episodes if kind != "medium" else 1
            with progress_bar(total=self.dataset_steps, desc=f"collect {kind}", enabled=self.progress) as bar:
                self.cache[kind] = collect(env, act, self.dataset_steps, self.seed + 1000 * (1 + KINDS.index(kind)),
                                           bar, episodes)
        return self.cache[kind]

    def kind(self, kind: str) -> list[Episode]:
        """Episodes of a dataset kind (medium-expert reuses the medium and expert rollouts)."""
        if kind == "medium-replay":
            step = self.training.checkpoints[self.medium][0]
            return [ep for end, ep in self.training.episodes if end <= step]
        if kind == "medium-expert":
            return [*self.policy("medium"), *self.policy("expert")]
        return self.policy(kind)


def _phase(progress: bool, text: str) -> None:
    """One line naming a phase of dataset making on stderr (between bars on a terminal), when showing progress."""
    if progress:
        tqdm.write(text, file=sys.stderr)


def _mean(episodes: list[Episode]) -> float:
    return float(np.mean([ep.ret for ep in episodes]))


def make_datasets(env_id: str, kinds: Sequence[str], *, root_name: str | None = None, total_steps: int = 20_000,
                  dataset_steps: int = 10_000, seed: int = 0, force: bool = False, progress: bool = True,
                  sac: SACConfig | None = None, start_steps: int = 1000, n_checkpoints: int = 20,
                  eval_episodes: int = 10, ref_episodes: int = 20, medium_fraction: float = 1 / 3) -> dict[str, str]:
    """Train a SAC behaviour policy on env_id and save the requested kinds; return kind -> Minari id.

    total_steps: online SAC steps; dataset_steps: minimum steps per dataset (whole episodes);
    eval_episodes: episodes per checkpoint evaluation; ref_episodes: minimum episodes of the random and
    expert rollouts, whose mean returns are the reference scores (and episodes to re-check medium candidates).
    """
    ids = _check_targets(env_id, kinds, root_name, force)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # seeded inside; the caller's torch RNG is left as it was
        training = train_sac(env_id, total_steps, seed=seed, config=sac, start_steps=start_steps,
                             n_checkpoints=n_checkpoints, eval_episodes=eval_episodes, progress=progress)
        rollouts = _Rollouts(env_id, training, dataset_steps, ref_episodes, seed, progress)
        refs = (_mean(rollouts.policy("random")), _mean(rollouts.policy("expert")))
        _phase(progress, f"choosing the medium checkpoint (target {medium_fraction:.2g} of random..expert)")
        rollouts.medium = select_medium(training.checkpoints, *refs, medium_fraction,
                                        refine=lambda actor: mean_return(actor, env_id, ref_episodes, seed + 7))
        for kind, dataset_id in ids.items():
            episodes = rollouts.kind(kind)
            description = (f"{kind} data for {env_id} made by genrl_core.data.making: SAC {total_steps} steps "
                           f"(seed {seed}), medium checkpoint at step {training.checkpoints[rollouts.medium][0]}; "
                           f"{len(episodes)} episodes, mean return {_mean(episodes):.1f}; refs random "
                           f"{refs[0]:.1f}, expert {refs[1]:.1f}; {time.perf_counter() - start:.0f} s")
            _phase(progress, f"saving {dataset_id}: {len(episodes)} episodes, mean return {_mean(episodes):.1f}")
            _save(dataset_id, env_id, episodes, refs, len(rollouts.policy("expert")), description)
    return ids
