"""D4RL's own hdf5 files (genrl_core.data.d4rl) through data.load: layout, transitions, scaling, refs, errors, rows."""
from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch

from genrl_core.data import d4rl
from genrl_core.data.loading import DatasetCorruptError, DatasetNotFoundError, load, ref_scores_table

# (length, how it ends): 270 rows; the last episode is cut by the end of the file
EPISODES = [(40, "terminal"), (60, "timeout"), (90, "terminal"), (50, "timeout"), (30, None)]


def _fields(obs_dim: int = 11, act_dim: int = 3, seed: int = 0, contact_zero: int = 0) -> dict[str, np.ndarray]:
    """D4RL-layout fields of EPISODES: next_observations[i] == observations[i + 1] inside an episode; episode e's
    rewards are about e + 1 each (so returns differ)."""
    rng = np.random.default_rng(seed)
    out = {k: [] for k in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts")}
    for e, (length, end) in enumerate(EPISODES):
        states = rng.normal(size=(length + 1, obs_dim)).astype(np.float32)
        if contact_zero:
            states[:, contact_zero:] = 0.0
        out["observations"].append(states[:-1])
        out["next_observations"].append(states[1:])
        out["actions"].append(rng.uniform(-1, 1, (length, act_dim)).astype(np.float32))
        out["rewards"].append((e + 1 + 0.1 * rng.normal(size=length)).astype(np.float32))
        out["terminals"].append(np.eye(length, dtype=bool)[-1] if end == "terminal" else np.zeros(length, bool))
        out["timeouts"].append(np.eye(length, dtype=bool)[-1] if end == "timeout" else np.zeros(length, bool))
    return {k: np.concatenate(v) for k, v in out.items()}


def _write(path: Path, fields: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in fields.items():
            f.create_dataset(k, data=v)
        f.create_dataset("infos/qpos", data=np.zeros((len(fields["observations"]), 2)))  # extra groups are ignored
    return path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary D4RL_DATASETS_PATH."""
    folder = tmp_path / "d4rl"
    folder.mkdir()
    monkeypatch.setenv("D4RL_DATASETS_PATH", str(folder))
    return folder


def test_v2_file_loads_with_its_next_observations_terminals_scaling_and_d4rl_refs(root: Path) -> None:
    fields = _fields()
    _write(root / "hopper_medium-v2.hdf5", fields)  # D4RL's own file name
    raw = load("d4rl/hopper-medium-v2", reward_scaling="none")
    assert raw.obs.shape == raw.next_obs.shape == (270, 11) and raw.action.shape == (270, 3)
    assert raw.reward.shape == raw.terminal.shape == (270,)
    assert all(t.dtype == torch.float32 for t in (raw.obs, raw.action, raw.reward, raw.next_obs, raw.terminal))
    np.testing.assert_array_equal(raw.next_obs.numpy(), fields["next_observations"])
    np.testing.assert_array_equal(raw.terminal.numpy(), fields["terminals"].astype(np.float32))  # time-outs are not
    assert raw.terminal.sum() == 2 and fields["timeouts"].sum() == 2
    # IQL's locomotion scaling over episodes split at terminals | timeouts (the unflagged tail is one too)
    bounds = np.cumsum([0] + [n for n, _ in EPISODES])
    returns = np.array([fields["rewards"][a:b].astype(np.float64).sum() for a, b in zip(bounds[:-1], bounds[1:])])
    scaled = load("d4rl/hopper-medium-v2")
    np.testing.assert_allclose(scaled.reward.numpy(), fields["rewards"] * 1000 / (returns.max() - returns.min()),
                               rtol=1e-5)
    assert raw.env_id == "Hopper-v5" and raw.env_spec.max_episode_steps == 1000
    assert (raw.ref_min_score, raw.ref_max_score) == ref_scores_table()["hopper"] == (-20.272305, 3234.3)
    assert raw.ref_source == "d4rl" and raw.dataset_ref_min_score is None and raw.dataset_ref_max_score is None
    assert re.fullmatch(r"[0-9a-f]{16}", raw.content_hash) and scaled.content_hash == raw.content_hash


def test_without_next_observations_the_next_row_is_used_and_unfollowed_ends_dropped(root: Path) -> None:
    fields = _fields()
    del fields["next_observations"]
    _write(root / "hopper_medium_replay-v1.hdf5", fields)  # D4RL's name for medium-replay
    d = load("d4rl/hopper-medium-replay-v1", reward_scaling="none")
    # dropped: the last row of both time-out episodes and of the unflagged tail; terminal rows stay
    ends = np.cumsum([n for n, _ in EPISODES]) - 1
    keep = np.setdiff1d(np.arange(270), ends[[1, 3, 4]])
    assert len(d) == 267
    np.testing.assert_array_equal(d.obs.numpy(), fields["observations"][keep])
    nxt = np.concatenate([fields["observations"][1:], fields["observations"][-1:]])[keep]
    terminal_rows = np.flatnonzero(fields["terminals"][keep])
    assert list(keep[terminal_rows]) == [ends[0], ends[2]]
    nxt[terminal_rows] = fields["observations"][keep][terminal_rows]  # masked by terminal; its own observation
    np.testing.assert_array_equal(d.next_obs.numpy(), nxt)
    np.testing.assert_array_equal(d.terminal.numpy(), fields["terminals"][keep].astype(np.float32))
    bounds = np.cumsum([0] + [n for n, _ in EPISODES])
    kept = np.isin(np.arange(270), keep)
    returns = [fields["rewards"][a:b][kept[a:b]].astype(np.float64).sum() for a, b in zip(bounds[:-1], bounds[1:])]
    scale = 1000 / (max(returns) - min(returns))
    np.testing.assert_allclose(load("d4rl/hopper-medium-replay-v1").reward.numpy(), d.reward.numpy() * scale,
                               rtol=1e-5)


@pytest.mark.parametrize("name", ["hopper_medium_expert-v2.hdf5", "hopper_medium-expert-v2.hdf5",
                                  "hopper-medium-expert-v2.hdf5"])
def test_file_names_local_file_and_dataset_id(root: Path, name: str) -> None:
    assert d4rl.local_file("hopper-medium-expert-v2") is None
    _write(root / name, _fields())
    assert d4rl.local_file("hopper-medium-expert-v2") == root / name
    assert d4rl.dataset_id("hopper-medium-expert-v2") == "d4rl/hopper-medium-expert-v2"
    assert d4rl.local_file("antmaze-umaze-v0") is None and d4rl.local_file("hopper-medium-v2") is None
    assert len(load("d4rl/hopper-medium-expert-v2")) == 270


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, ValueError)
    assert err.value.__context__ is None or err.value.__suppress_context__  # no chained h5py traceback
    return msg


def test_missing_file_says_where_it_looked_and_how_to_name_it(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load("d4rl/walker2d-medium-replay-v2")
    msg = _one_line(err)
    assert f"in D4RL_DATASETS_PATH={root}" in msg
    assert "walker2d_medium_replay-v2.hdf5, walker2d_medium-replay-v2.hdf5, walker2d-medium-replay-v2.hdf5" in msg
    assert "gym_mujoco_v2/walker2d_medium_replay-v2.hdf5" in msg
    monkeypatch.delenv("D4RL_DATASETS_PATH")
    with pytest.raises(DatasetNotFoundError, match="D4RL_DATASETS_PATH is not set; set it to the folder") as err:
        load("d4rl/hopper-medium-v2")
    _one_line(err)
    with pytest.raises(DatasetNotFoundError, match="'d4rl/hopper-mediocre-v2' is not a D4RL locomotion id") as err:
        load("d4rl/hopper-mediocre-v2")
    assert "medium-replay" in _one_line(err)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage, error, text", [
    ("truncated", DatasetCorruptError, "is corrupt or unreadable (OSError: "),
    ("truncated", DatasetCorruptError, "replace it (download: http://rail.eecs.berkeley.edu/datasets/offline_rl/"
                                       "gym_mujoco_v2/hopper_medium-v2.hdf5)"),
    ("no timeouts", DatasetCorruptError, "lacks field(s) ['timeouts']; a D4RL locomotion file holds observations, "
                                         "actions, rewards, terminals, timeouts"),
    ("obs dim 12", DatasetCorruptError, "observations have shape (270, 12), but Hopper-v5 (where d4rl/hopper-* sets "
                                        "are evaluated) has 11 observation dims, so observations must have shape "
                                        "(270, 11)"),
    ("action dim 2", DatasetCorruptError, "actions have shape (270, 2), but Hopper-v5 (where d4rl/hopper-* sets are "
                                          "evaluated) has 3 action dims"),
    ("short rewards", DatasetCorruptError, "has fields of unequal lengths"),
])
def test_bad_files_are_one_clear_line(root: Path, damage: str, error: type, text: str) -> None:
    fields = _fields(obs_dim=12 if damage == "obs dim 12" else 11, act_dim=2 if damage == "action dim 2" else 3)
    if damage == "no timeouts":
        del fields["timeouts"]
    if damage == "short rewards":
        fields["rewards"] = fields["rewards"][:-1]
    path = _write(root / "hopper_medium-v2.hdf5", fields)
    if damage == "truncated":
        _truncate(path)
    with pytest.raises(error) as err:
        load("d4rl/hopper-medium-v2")
    msg = _one_line(err)
    assert text in msg and str(path) in msg and "'d4rl/hopper-medium-v2'" in msg


def test_ant_and_walker_evaluate_on_v5_envs_with_d4rls_layout_and_model(root: Path) -> None:
    _write(root / "ant_medium-v2.hdf5", _fields(obs_dim=111, act_dim=8, contact_zero=27))
    d = load("d4rl/ant-medium-v2")
    assert d.obs_dim == 111 and d.act_dim == 8 and d.env_id == "Ant-v5" and d.ref_source == "d4rl"
    assert (d.ref_min_score, d.ref_max_score) == ref_scores_table()["ant"]
    env = gym.make(d.env_spec)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, _, _, _, info = env.step(env.action_space.sample())
    assert obs.shape == (111,) and not obs[27:].any() and obs[:27].any()  # D4RL's zero contact forces
    assert info["reward_contact"] == 0  # as in D4RL, whose zero contact forces cost nothing
    env.close()
    _write(root / "ant_expert-v2.hdf5", _fields(obs_dim=111, act_dim=8))  # contact dims not zero
    with pytest.raises(DatasetCorruptError) as err:
        load("d4rl/ant-expert-v2")
    assert "(contact forces) are not all zero, as they are in D4RL's ant files" in _one_line(err)
    walker = gym.make(d4rl.env_spec("walker2d"))
    friction = {n: walker.unwrapped.model.geom(n).friction[0] for n in ("foot_geom", "foot_left_geom")}
    assert walker.observation_space.shape == (17,) and friction == {"foot_geom": 0.9, "foot_left_geom": 1.9}
    walker.close()


def test_train_and_evaluate_round_trip_records_the_protocol(root: Path) -> None:
    from genrl_core.run.training import train

    _write(root / "hopper_medium-v2.hdf5", _fields())
    history = train("bc", "d4rl/hopper-medium-v2", steps=20, eval_every=20, eval_episodes=1, log=None,
                    overrides={"backbone": "mlp", "widths": (32, 32), "sampling_steps": 2, "loglik_steps": 2})
    m = history[-1]
    assert m["step"] == 20 and math.isfinite(m["score_mean"]) and math.isfinite(m["return_mean"])
    assert m["score_mean"] == pytest.approx(100 * (m["return_mean"] + 20.272305) / (3234.3 + 20.272305))
    assert math.isnan(m["score_dataset_mean"])  # D4RL files carry no references of their own
    assert m["ref_source"] == "d4rl" and m["dataset_id"] == "d4rl/hopper-medium-v2" and m["eval_episodes"] == 1.0
    assert (m["ref_min_score"], m["ref_max_score"]) == (-20.272305, 3234.3)
    assert m["data_hash"] == load("d4rl/hopper-medium-v2").content_hash


def test_protocol_fields_in_the_parquet_rows_of_a_trial(root: Path, tmp_path: Path) -> None:
    from tune_jobs import results, trainable

    _write(root / "hopper_medium-v2.hdf5", _fields())
    data = load("d4rl/hopper-medium-v2")
    base = {"sweep": "s", "experiment": "e", "trial_id": "t0", "dataset": "d4rl/hopper-medium-v2", "eval_episodes": 3,
            "seed": 0}
    storage = str(tmp_path / "parquet")
    trial = trainable._Trial(run={"eval_episodes": 3, "steps": 100}, device="cpu", data=data,
                             pack=SimpleNamespace(seeds=[0]), bases=[base], results_root=storage,
                             progress={"step": 100, "iteration": 1, "wall_time_s": 1.0, "restarts": 0,
                                       "diverged": []})
    trainable._seed_round(trial, 0, "training diverged at step 7", 100, 1.0)  # a row without an evaluation
    evaluated = trainable._metrics_row(base, {"step": 200, "score_mean": 50.0, **results.protocol_columns(data, 3)})
    results.write_row(storage, evaluated)
    rows = results.read_rows(storage)
    assert len(rows) == 2 and set(results.PROTOCOL_KEYS) <= set(rows.columns)
    assert "metric_eval_episodes" not in rows.columns  # the protocol keeps its own names
    for _, row in rows.iterrows():
        assert row["eval_episodes"] == 3 and row["ref_source"] == "d4rl" and row["data_hash"] == data.content_hash
        assert (row["ref_min_score"], row["ref_max_score"]) == (-20.272305, 3234.3)
        assert row["dataset_id"] == "d4rl/hopper-medium-v2"
