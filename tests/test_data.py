"""data.load and OfflineData: sampling, normalisation, reward scaling, reference scores and clear errors."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch
from minari.data_collector import EpisodeBuffer

from genrl_core.data import bandits
from genrl_core.data import loading as gdata
from genrl_core.data.loading import DatasetCorruptError, DatasetNotFoundError, concat, load

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _create(dataset_id: str, buffers: list[EpisodeBuffer], **kwargs) -> None:
    """minari.create_dataset_from_buffers without its metadata reminders."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(dataset_id, buffers, algorithm_name="test", author="test",
                                           author_email="test", code_permalink="test", description="test", **kwargs)


def _random_episodes(env: gym.Env, n: int, seed: int) -> list[EpisodeBuffer]:
    """n short random episodes of a Box env as Minari buffers."""
    out = []
    env.action_space.seed(seed)
    for i in range(n):
        obs, _ = env.reset(seed=seed + i)
        o, a, r, te, tr = [obs], [], [], [], []
        for _ in range(5 + i):
            act = env.action_space.sample()
            obs, rew, term, trunc, _ = env.step(act)
            o.append(obs), a.append(act), r.append(rew), te.append(term), tr.append(trunc)
            if term:
                break
        tr[-1] = tr[-1] or not te[-1]
        out.append(EpisodeBuffer(observations=np.stack(o), actions=np.stack(a), rewards=np.array(r),
                                 terminations=np.array(te), truncations=np.array(tr)))
    return out


def _dict_dataset(dataset_id: str, keys: tuple[str, ...], n_eps: int = 3, steps: int = 4) -> None:
    """A small dataset with dict observations of the given keys (3-dim 'observation', 2-dim goals)."""
    dims = {"observation": 3, "achieved_goal": 2, "desired_goal": 2}
    space = gym.spaces.Dict({k: gym.spaces.Box(-10, 10, (dims[k],)) for k in keys})
    rng = np.random.default_rng(0)
    buffers = []
    for _ in range(n_eps):
        obs = {k: rng.normal(size=(steps + 1, dims[k])).astype(np.float32) for k in keys}
        buffers.append(EpisodeBuffer(observations=obs, actions=rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
                                     rewards=rng.integers(0, 2, steps).astype(np.float64),
                                     terminations=np.zeros(steps, bool), truncations=np.eye(steps, dtype=bool)[-1]))
    _create(dataset_id, buffers, observation_space=space, action_space=gym.spaces.Box(-1, 1, (2,)))


@pytest.fixture(scope="module")
def small_pendulum() -> str:
    """A few short random Pendulum episodes saved without reference scores."""
    env = gym.make("Pendulum-v1")
    dataset_id = "test/pendulum/small-v0"
    _create(dataset_id, _random_episodes(env, 6, 0), env="Pendulum-v1")
    return dataset_id


def test_missing_dataset_says_how_to_get_it() -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load("local/walker2d/medium-v0")
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, ValueError)
    assert "local/walker2d/medium-v0" in msg
    assert "`python -m genrl_core.datasets make --env Walker2d-v5 --kinds medium` (then load" in msg
    assert "minari download" not in msg  # local ids are made, not downloaded
    with pytest.raises(DatasetNotFoundError) as err:
        load("mujoco/walker2d/medium-v0")
    assert "`minari download mujoco/walker2d/medium-v0`" in str(err.value)
    assert "--env Walker2d-v5 --kinds medium` (then load 'local/walker2d/medium-v0')" in str(err.value)


def test_failed_download_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(dataset_id: str, force_download: bool = False) -> None:
        raise ConnectionError("Failed to resolve 'huggingface.co'\n(details...)")

    monkeypatch.setattr(minari, "download_dataset", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        load("mujoco/hopper/medium-v0", download=True)
    msg = str(err.value)
    assert "\n" not in msg and "could not be downloaded" in msg and "ConnectionError" in msg
    assert "python -m genrl_core.datasets make" in msg


@pytest.mark.parametrize("damage", ["main_data.hdf5", "metadata.json"])
def test_corrupt_dataset_is_one_clear_line(minari_root: str, damage: str) -> None:
    dataset_id = f"test/pendulum/corrupt-{damage.split('.')[0].replace('_', '')}-v0"
    env = gym.make("Pendulum-v1")
    _create(dataset_id, _random_episodes(env, 2, 0), env="Pendulum-v1")
    assert len(load(dataset_id)) > 0
    (Path(minari_root) / dataset_id / "data" / damage).write_bytes(b"\x00garbage, not a dataset\x00" * 10)
    with pytest.raises(DatasetCorruptError) as err:
        load(dataset_id)
    msg = str(err.value)
    assert "\n" not in msg and "corrupt or unreadable" in msg and dataset_id in msg and "delete" in msg
    assert err.value.__suppress_context__  # no chained h5py / json traceback


def test_dict_obs_without_goal_is_one_clear_line() -> None:
    _dict_dataset("test/nogoal/dict-v0", ("observation", "achieved_goal"))
    with pytest.raises(ValueError) as err:
        load("test/nogoal/dict-v0")
    msg = str(err.value)
    assert "\n" not in msg and "desired_goal" in msg and "['achieved_goal', 'observation']" in msg


def test_goal_dict_obs_concatenated_and_antmaze_scaling() -> None:
    dataset_id = "test/antmaze-fake/umaze-v0"
    _dict_dataset(dataset_id, ("observation", "achieved_goal", "desired_goal"))
    d = load(dataset_id)
    raw = minari.load_dataset(dataset_id)
    ep = next(iter(raw.iterate_episodes()))
    want = np.concatenate([ep.observations[k] for k in ("observation", "achieved_goal", "desired_goal")], axis=1)
    assert d.obs_dim == 7 and d.act_dim == 2
    np.testing.assert_array_equal(d.obs[:4].numpy(), want[:-1])
    np.testing.assert_array_equal(d.next_obs[:4].numpy(), want[1:])
    np.testing.assert_array_equal(d.reward[:4].numpy(), ep.rewards.astype(np.float32) - 1)  # antmaze: r - 1
    assert (d.ref_min_score, d.ref_max_score, d.ref_source) == (0.0, 1.0, "success")  # scored by success rate
    assert d.env_id is None


def test_scaling_choices(small_pendulum: str) -> None:
    assert gdata.resolve_scaling("D4RL/antmaze/medium-play-v1", "auto") == "antmaze"
    assert gdata.resolve_scaling("toy/swissroll-v0", "auto") == "none"
    assert gdata.resolve_scaling("mujoco/hopper/medium-v0", "auto") == "locomotion"
    with pytest.raises(ValueError, match="unknown reward_scaling 'iql'"):
        load(small_pendulum, reward_scaling="iql")
    raw = load(small_pendulum, reward_scaling="none")
    assert torch.equal(load(small_pendulum, reward_scaling="antmaze").reward, raw.reward - 1)
    returns = np.array([ep.rewards.sum() for ep in minari.load_dataset(small_pendulum).iterate_episodes()])
    loco = load(small_pendulum, reward_scaling="locomotion").reward
    torch.testing.assert_close(loco, raw.reward * float(1000 / (returns.max() - returns.min())))


def test_reference_scores_fallback_and_unknown(small_pendulum: str) -> None:
    assert load(small_pendulum).ref_min_score is None  # Pendulum is not in the D4RL table
    env = gym.make("Hopper-v5")
    _create("test/hopper/norefs-v0", _random_episodes(env, 2, 0), env="Hopper-v5")
    d = load("test/hopper/norefs-v0")
    assert (d.ref_min_score, d.ref_max_score) == (-20.272305, 3234.3)  # D4RL hopper row
    assert d.env_id == "Hopper-v5" and d.env_spec is not None and d.env_spec.max_episode_steps == 1000


@pytest.mark.parametrize("device", DEVICES)
def test_sample_on_device_and_reproducible(small_pendulum: str, device: str) -> None:
    d = load(small_pendulum, device=device)
    assert all(t.device.type == device for t in (d.obs, d.action, d.reward, d.next_obs, d.terminal))
    b1 = d.sample(64, torch.Generator(device=device).manual_seed(3))
    b2 = d.sample(64, torch.Generator(device=device).manual_seed(3))
    assert set(b1) == {"obs", "action", "reward", "next_obs", "terminal", "index"}
    assert b1["index"].dtype == torch.long and torch.equal(d.next_obs[b1["index"]], b1["next_obs"])  # dataset rows
    assert b1["obs"].shape == (64, 3) and b1["action"].shape == (64, 1) and b1["reward"].shape == (64,)
    assert all(torch.equal(b1[k], b2[k]) and b1[k].device.type == device for k in b1)
    # every sampled row is a real transition of the data
    rows = torch.cat([d.obs, d.action], 1)
    picked = torch.cat([b1["obs"], b1["action"]], 1)
    assert (picked[:, None, :] == rows[None, :, :]).all(-1).any(1).all()
    assert d.to("cpu").obs.device.type == "cpu" and len(d.to("cpu")) == len(d)


def test_normalize_obs(small_pendulum: str) -> None:
    raw = load(small_pendulum)
    d = load(small_pendulum, normalize_obs=True)
    torch.testing.assert_close(d.obs.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(d.obs_std, raw.obs.std(0) + 1e-3)
    torch.testing.assert_close(d.normalize(raw.obs), d.obs)
    torch.testing.assert_close(d.normalize(raw.next_obs), d.next_obs)
    assert torch.equal(raw.normalize(raw.obs), raw.obs)  # identity without statistics
    assert d.obs_dim == 3 and d.act_dim == 1 and len(d) == len(raw)


def test_concat(small_pendulum: str) -> None:
    a, b = load(small_pendulum), load(small_pendulum, reward_scaling="none")
    c = concat([a, b], "test/both")
    assert len(c) == len(a) + len(b) and c.dataset_id == "test/both" and c.env_id == a.env_id
    assert torch.equal(c.reward[len(a):], b.reward)
    assert concat([a, b], "n", normalize_obs=True).obs_mean is not None
    with pytest.raises(ValueError, match="before normalising"):
        concat([load(small_pendulum, normalize_obs=True), a], "bad")


def test_toy_ids_load_through_the_same_loader() -> None:
    d = load("toy/swissroll-v0")
    ref = bandits.swissroll()
    assert torch.equal(d.action, ref.action) and torch.equal(d.reward, ref.reward)  # reward scaling "none"
    assert d.env_id is None and d.obs.shape == (10000, 1) and d.terminal.eq(1).all()
    m = load("toy/multimodal-v0", normalize_obs=False)
    torch.testing.assert_close(m.reward, bandits.value("multimodal", m.action))


def test_d4rl_envs_score_on_d4rl_refs_with_the_datasets_own_beside(small_pendulum: str) -> None:
    from genrl_core.evaluation import evaluate_dataset

    _create("test/hopper/ownrefs-v0", _random_episodes(gym.make("Hopper-v5"), 3, 0), env="Hopper-v5",
            ref_min_score=10.0, ref_max_score=510.0)
    d = load("test/hopper/ownrefs-v0")
    assert (d.ref_min_score, d.ref_max_score, d.ref_source) == (-20.272305, 3234.3, "d4rl")  # the papers' scale
    assert (d.dataset_ref_min_score, d.dataset_ref_max_score) == (10.0, 510.0)
    res = evaluate_dataset(lambda o: torch.zeros(o.shape[0], 3), d, n_episodes=1)
    assert res["score_mean"] == pytest.approx(100 * (res["return_mean"] + 20.272305) / (3234.3 + 20.272305))
    assert res["score_dataset_mean"] == pytest.approx(100 * (res["return_mean"] - 10.0) / 500.0)
    assert res["score_dataset_std"] == pytest.approx(100 * res["return_std"] / 500.0)
    assert {k: res[k] for k in ("ref_source", "ref_min_score", "ref_max_score", "eval_episodes", "dataset_id")} == {
        "ref_source": "d4rl", "ref_min_score": -20.272305, "ref_max_score": 3234.3, "eval_episodes": 1.0,
        "dataset_id": "test/hopper/ownrefs-v0"}
    assert res["data_hash"] == d.content_hash
    # an environment outside D4RL's table keeps the dataset's own references as its score
    _create("test/pendulum/ownrefs-v0", _random_episodes(gym.make("Pendulum-v1"), 3, 0), env="Pendulum-v1",
            ref_min_score=-1500.0, ref_max_score=-150.0)
    p = load("test/pendulum/ownrefs-v0")
    assert (p.ref_min_score, p.ref_max_score, p.ref_source) == (-1500.0, -150.0, "dataset")
    res = evaluate_dataset(lambda o: torch.zeros(o.shape[0], 1), p, n_episodes=1)
    assert res["score_mean"] == res["score_dataset_mean"] == pytest.approx(100 * (res["return_mean"] + 1500) / 1350)
    assert res["ref_source"] == "dataset" and res["ref_min_score"] == -1500.0
    none = load(small_pendulum)  # no references anywhere
    assert none.ref_source == "none" and none.dataset_ref_min_score is None
    res = evaluate_dataset(lambda o: torch.zeros(o.shape[0], 1), none, n_episodes=1)
    assert res["ref_source"] == "none" and math.isnan(res["ref_min_score"]) and math.isnan(res["score_mean"])


def test_content_hash_names_the_transitions_read(small_pendulum: str) -> None:
    a = load(small_pendulum)
    assert len(a.content_hash) == 16 and int(a.content_hash, 16) >= 0
    assert load(small_pendulum).content_hash == a.content_hash  # stable
    # the processing options (recorded in the run's config) do not change it
    assert load(small_pendulum, reward_scaling="none", normalize_obs=True).content_hash == a.content_hash
    assert a.to("cpu").content_hash == a.content_hash
    _create("test/pendulum/other-v0", _random_episodes(gym.make("Pendulum-v1"), 6, 1), env="Pendulum-v1")
    b = load("test/pendulum/other-v0")
    assert b.content_hash != a.content_hash
    assert gdata.content_hash({k: getattr(a, k) for k in gdata.TRANSITION_KEYS}) != a.content_hash  # scaled rewards
    assert gdata.content_hash({k: getattr(load(small_pendulum, reward_scaling="none"), k)
                               for k in gdata.TRANSITION_KEYS}) == a.content_hash  # the raw transitions
    ab, ba = concat([a, b], "a+b"), concat([b, a], "b+a")
    assert len({ab.content_hash, ba.content_hash, a.content_hash, b.content_hash}) == 4
    assert concat([a, b], "x").content_hash == ab.content_hash and concat([a], "x").content_hash == a.content_hash
    assert len(load("toy/swissroll-v0").content_hash) == 16
