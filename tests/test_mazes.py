"""Goal-reaching mazes: the flattened observation's layout, D4RL's success-rate evaluation, the maze sets made here
(PointMaze waypoint data, AntMaze random data) loaded, trained one step and evaluated on the real environments."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from genrl_core.data import mazes
from genrl_core.data.loading import flatten_obs, load
from genrl_core.evaluation import EndAtGoal, evaluate, evaluate_dataset
from genrl_core.run.training import train

pytest.importorskip("gymnasium_robotics")
TINY_GMPO = {"backbone": "mlp", "widths": (32, 32), "critic_hidden": (32, 32), "critic_steps": 1,
             "sampling_steps": 2, "loglik_steps": 2}


@pytest.fixture(scope="module")
def point_specs() -> tuple:
    """(collection, evaluation) specs of PointMaze UMaze, 150-step episodes (the controller needs about 120)."""
    return mazes.maze_specs("PointMaze_UMaze-v3", episode_steps=150)


def _push(env: gym.Env, action: np.ndarray, steps: int) -> dict:
    for _ in range(steps):
        obs = env.step(action)[0]
    return obs


@pytest.mark.parametrize("env_id, dims, xy", [("PointMaze_UMaze-v3", 8, (4, 5)), ("AntMaze_UMaze-v4", 31, (27, 28))])
def test_flattened_observation_holds_the_position(env_id: str, dims: int, xy: tuple[int, int]) -> None:
    """The docstring's indices: x, y at [n, n + 2) (the body's own x, y in the simulator), the goal last."""
    env = gym.make(mazes.maze_specs(env_id)[1])
    obs, _ = env.reset(seed=0)
    env.action_space.seed(2)  # the ant's random actions, the same every run (this one moves it 0.21)
    flat = flatten_obs(obs)
    assert flat.shape == (dims,)
    body = env.unwrapped.data.qpos[:2]
    np.testing.assert_allclose(flat[list(xy)], body, atol=1e-5)
    np.testing.assert_allclose(flat[-2:], env.unwrapped.goal, atol=1e-5)
    after = flatten_obs(_push(env, env.action_space.high * 0.8 if dims == 8 else env.action_space.sample(), 40))
    moved = np.linalg.norm(after[list(xy)] - flat[list(xy)])
    assert moved > 0.05  # the agent moved and the position entries followed it
    np.testing.assert_allclose(after[list(xy)], env.unwrapped.data.qpos[:2], atol=1e-5)
    np.testing.assert_allclose(after[-2:], flat[-2:])  # the goal did not
    batch = flatten_obs({k: np.stack([v, v]) for k, v in obs.items()})
    assert batch.shape == (2, dims)


def test_an_episode_that_reaches_the_goal_ends_there(point_specs: tuple) -> None:
    """EndAtGoal ends the episode on the step gymnasium-robotics reports success (within 0.45 of the goal)."""
    env = EndAtGoal(gym.make(point_specs[1]))
    obs, _ = env.reset(seed=3)
    ctrl = mazes.controller_for(env)
    for step in range(150):
        obs, reward, terminated, truncated, info = env.step(ctrl.act(obs["achieved_goal"], obs["observation"][2:4],
                                                                     obs["desired_goal"]))
        distance = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
        assert terminated == info["success"] == (distance <= 0.45)
        if terminated:
            break
    assert terminated and not truncated and reward == 1.0 and 10 < step < 149
    assert env.outcomes == [True]


def test_success_rate_scores_100_or_0(point_specs: tuple) -> None:
    """The controller reaches the goal in every episode (score 100, return 1: ended at the first rewarded step);
    a still policy never does (score 0, the whole time limit)."""
    ctrl = mazes.WaypointController(point_specs[1].kwargs["maze_map"])
    reach = evaluate(mazes.controller_policy(ctrl, 0.0, 0), point_specs[1], n_episodes=4, seed=0)
    assert reach["success_rate"] == 1.0 and reach["score_mean"] == 100.0 and reach["score_std"] == 0.0
    assert reach["return_mean"] == 1.0  # ended on its first step within reach, not lingering for more reward
    still = evaluate(lambda o: torch.zeros(o.shape[0], 2), point_specs[1], n_episodes=3, seed=0)
    assert still["success_rate"] == 0.0 and still["score_mean"] == 0.0 and still["return_mean"] == 0.0
    half = evaluate(lambda o: torch.zeros(o.shape[0], 2), point_specs[1], n_episodes=2, seed=0,
                    ref_min_score=-5.0, ref_max_score=5.0)
    assert half["score_mean"] == 0.0  # refs do not apply to goal-reaching environments


def test_maze_maps_put_goal_and_start_at_the_ends_of_the_u() -> None:
    collect_spec, eval_spec = mazes.maze_specs("PointMaze_UMaze-v3")
    assert eval_spec.kwargs["maze_map"][3][1] == "g" and eval_spec.kwargs["maze_map"][1][1] == "r"
    assert sum(row.count("r") for row in collect_spec.kwargs["maze_map"]) == 6  # every free cell but the goal's
    assert eval_spec.max_episode_steps == 300 and eval_spec.kwargs["continuing_task"] is True
    ctrl = mazes.WaypointController(eval_spec.kwargs["maze_map"])
    assert ctrl.cell(ctrl.centre((1, 3))) == (1, 3)
    np.testing.assert_allclose(ctrl.target(ctrl.centre((1, 1)), ctrl.centre((3, 1))), ctrl.centre((1, 2)))


def test_pointmaze_waypoint_set(point_specs: tuple) -> None:
    """A small waypoint set: fixed-length episodes, the fixed goal in every observation, refs = success rates."""
    ids = mazes.make_maze_datasets("PointMaze_UMaze-v3", ["waypoint"], dataset_steps=600, episode_steps=150,
                                   ref_episodes=4, force=True)
    assert ids == {"waypoint": "local/pointmaze/umaze-v0"}
    data = load(ids["waypoint"])
    assert data.obs_dim == 8 and data.act_dim == 2 and len(data) == 600 and float(data.terminal.sum()) == 0.0
    assert (data.ref_source, data.ref_min_score, data.ref_max_score) == ("success", 0.0, 1.0)
    assert (data.dataset_ref_min_score, data.dataset_ref_max_score) == (0.0, 1.0)  # random actions, the controller
    assert set(data.reward.unique().tolist()) <= {-1.0, 0.0}  # sparse reward, IQL's r - 1
    goal_cell = mazes.WaypointController(point_specs[1].kwargs["maze_map"]).cell
    assert {goal_cell(g) for g in data.obs[:, 6:8].numpy()} == {(3, 1)}
    result = evaluate_dataset(lambda o: torch.zeros(o.shape[0], 2), data, n_episodes=2)
    assert result["score_mean"] == 0.0 and result["score_dataset_mean"] == 0.0 and result["ref_source"] == "success"


def test_antmaze_random_set_trains_and_evaluates() -> None:
    """A random AntMaze set loads with the 31-dim layout, and one training step plus one evaluation run on the real
    AntMaze environment."""
    ids = mazes.make_maze_datasets("AntMaze_UMaze-v4", ["random"], dataset_steps=100, episode_steps=50,
                                   ref_episodes=1, force=True)
    data = load(ids["random"])
    assert ids["random"] == "local/antmaze/umaze-random-v0" and data.obs_dim == 31 and data.act_dim == 8
    assert data.env_id == "AntMaze_UMaze-v4" and data.ref_source == "success"
    body_moves = (data.next_obs[:, 27:29] - data.obs[:, 27:29]).abs().sum(1)
    assert float(body_moves.max()) > 0 and torch.equal(data.obs[:, 29:31], data.next_obs[:, 29:31])
    history = train("gmpo", ids["random"], steps=2, eval_every=2, eval_episodes=1, overrides=TINY_GMPO, log=None)
    assert len(history) == 1 and history[0]["success_rate"] in (0.0, 1.0)
    assert history[0]["score_mean"] == 100.0 * history[0]["success_rate"] and history[0]["episodes"] == 1.0


def test_maze_command_line_errors(capsys) -> None:
    from genrl_core.datasets import main

    assert main(["make", "--env", "AntMaze_UMaze-v4", "--kinds", "waypoint"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "minari download D4RL/antmaze/umaze-v1" in err
    assert main(["make", "--env", "PointMaze_UMaze-v3", "--kinds", "expert"]) == 2
    assert "valid: waypoint, random" in capsys.readouterr().err


def test_table11_says_success_rate_and_flags_antmaze_rows_scored_otherwise(tmp_path) -> None:
    """Table 11's caption: success rate x 100 for rows scored so; older AntMaze rows (time near the goal) flagged."""
    from conftest import load_make_tables
    from tune_jobs import results

    make_tables = load_make_tables()
    root = results.results_root(str(tmp_path))
    for seed, score in ((0, 80.0), (1, 90.0)):
        config = {"task": "antmaze-umaze-v0", "dataset": "D4RL/antmaze/umaze-v1", "algorithm": "gmpo", "model": "gvp",
                  "seed": seed, "eval_episodes": 100.0, "ref_source": "success", "ref_min_score": 0.0,
                  "ref_max_score": 1.0, "dataset_id": "D4RL/antmaze/umaze-v1", "data_hash": "ab", "steps": 100}
        results.write_row(root, {"sweep": "benchmark", "trial_id": f"t{seed}", "step": 100, "final": True,
                                 "stop_reason": "completed", "score_mean": score, "success_rate": score / 100,
                                 **config})
    table = {t.key: t for t in make_tables.all_tables(results.read_rows(root), reps=20)}["table11"]
    assert "85.0 ± 5.0" in table.body[0][1] and "(success rate)" in table.title
    assert "Success rate x 100 (evaluation episodes end at the goal" in table.caption
    assert "scored by success rate x 100" in table.caption and "not scored by success rate" not in table.caption
    old = make_tables.trials(results.read_rows(root)).assign(ref_source="d4rl")
    assert "AntMaze rows not scored by success rate (ref_source d4rl" in make_tables._caption(old, "T")


def test_goal_reaching_sets_have_no_behaviour_score() -> None:
    from genrl_core.evaluation import dataset_score

    ids = mazes.make_maze_datasets("PointMaze_UMaze-v3", ["random"], dataset_steps=50, episode_steps=50,
                                   ref_episodes=1, force=True)
    with pytest.raises(ValueError) as err:
        dataset_score(ids["random"])
    assert "\n" not in str(err.value) and "success rate" in str(err.value)


def test_the_data_s_wandering_behaviour_reaches_the_goal_less_often_than_the_commanded_controller() -> None:
    """On PointMaze Medium the behaviour wandering between random commanded goals rarely reaches the evaluation goal
    in time (what BC of its data can expect), while the same controller commanded to that goal always does."""
    spec = mazes.maze_specs("PointMaze_Medium-v3")[1]
    ctrl = mazes.WaypointController(spec.kwargs["maze_map"])
    commanded = evaluate(mazes.controller_policy(ctrl, 0.3, 0), spec, n_episodes=10, seed=0)["success_rate"]
    wandering = mazes.behaviour_success(spec, 10, seed=0, noise=0.3)
    assert commanded == 1.0 and wandering <= 0.3
    assert wandering == mazes.behaviour_success(spec, 10, seed=0, noise=0.3)  # seeded: the same figure again


@pytest.mark.long
def test_gmpo_and_gtp_reach_the_medium_maze_goal_where_bc_of_the_wandering_data_does_not(tmp_path) -> None:
    """The README's PointMaze Medium recipe, seed 0 (measured: GMPO 100, GTP 97, BC 0 of 100 episodes; about 8 min
    on one core): GMPO with a 50k-step IQL critic, GTP behind that critic frozen, both far above BC of the data, whose
    wandering behaviour reaches the goal from the evaluation start about a fifth of the time."""
    ids = mazes.make_maze_datasets("PointMaze_Medium-v3", ["waypoint"], dataset_steps=1_000_000, ref_episodes=10,
                                   force=True)
    run = {"dataset": ids["waypoint"], "eval_episodes": 100, "batch_size": 256, "log": None}
    mlp = {"backbone": "mlp", "widths": (256, 256)}  # GMPO's and BC's networks
    gmpo = train("gmpo", steps=60_000, eval_every=60_000, out=str(tmp_path / "gmpo"), **run,
                 overrides={**mlp, "critic_steps": 50_000, "expectile": 0.9})
    gtp = train("gtp", steps=10_000, eval_every=10_000, **run,
                overrides={"hidden": (256, 256), "schedule_steps": 10_000, "expectile": 0.9, "eta": 3.0,
                           "critic_init": str(tmp_path / "gmpo" / "checkpoint.pt"), "critic_lr": 0.0})
    bc = train("bc", steps=10_000, eval_every=10_000, overrides=mlp, **run)
    rates = {name: h[-1]["success_rate"] for name, h in (("gmpo", gmpo), ("gtp", gtp), ("bc", bc))}
    assert rates["gmpo"] >= 0.8 and rates["gtp"] >= 0.8 and rates["bc"] <= 0.2, rates
