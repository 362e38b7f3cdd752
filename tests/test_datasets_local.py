"""Locally made D4RL-style datasets: they load back through data.load with the right content."""
from __future__ import annotations

import minari
import numpy as np
import pytest
import torch

from genrl_core.data import loading as gdata
from genrl_core.datasets import main as datasets_cli
from genrl_core.data.making import KINDS, DatasetExistsError, dataset_id_for, make_datasets, select_medium
from genrl_core.evaluation import evaluate

from conftest import HOPPER_BUDGET, MADE_IN


def _episodes(dataset_id: str) -> list:
    return list(minari.load_dataset(dataset_id).iterate_episodes())


def _mean_return(dataset_id: str) -> float:
    return float(np.mean([ep.rewards.sum() for ep in _episodes(dataset_id)]))


def _check_loaded(dataset_id: str, env_id: str, obs_dim: int, act_dim: int) -> None:
    """Shapes, dtypes, transitions inside episodes, terminals vs truncations, locomotion reward scaling."""
    eps = _episodes(dataset_id)
    raw = gdata.load(dataset_id, reward_scaling="none")
    n = sum(len(ep.rewards) for ep in eps)
    assert raw.obs.shape == raw.next_obs.shape == (n, obs_dim) and raw.action.shape == (n, act_dim)
    assert raw.reward.shape == raw.terminal.shape == (n,)
    for t in (raw.obs, raw.action, raw.reward, raw.next_obs, raw.terminal):
        assert t.dtype == torch.float32 and t.device.type == "cpu"
    assert raw.env_id == env_id and raw.obs_mean is None
    start = 0
    for ep in eps:
        end = start + len(ep.rewards)
        assert torch.equal(raw.next_obs[start:end - 1], raw.obs[start + 1:end])  # next_obs[i] == obs[i + 1]
        assert torch.equal(raw.obs[start:end], torch.as_tensor(ep.observations[:-1], dtype=torch.float32))
        assert torch.equal(raw.next_obs[end - 1], torch.as_tensor(ep.observations[-1], dtype=torch.float32))
        assert torch.equal(raw.terminal[start:end], torch.as_tensor(ep.terminations, dtype=torch.float32))
        assert ep.terminations.any() != ep.truncations[-1]  # every episode ends in exactly one of the two
        assert not (ep.terminations[:-1].any() or ep.truncations[:-1].any())
        start = end
    returns = np.array([ep.rewards.astype(np.float64).sum() for ep in eps])
    scaled = gdata.load(dataset_id)  # auto -> locomotion for these ids
    expected = np.concatenate([ep.rewards for ep in eps]) * 1000.0 / (returns.max() - returns.min())
    np.testing.assert_allclose(scaled.reward.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_pendulum_kinds_load(pendulum_datasets: dict[str, str], kind: str) -> None:
    dataset_id = pendulum_datasets[kind]
    assert dataset_id == f"local/pendulum/{kind}-v0" == dataset_id_for("Pendulum-v1", kind)
    _check_loaded(dataset_id, "Pendulum-v1", 3, 1)
    raw = gdata.load(dataset_id, reward_scaling="none")
    assert raw.terminal.sum() == 0  # Pendulum only ever ends by its 200-step time limit
    assert all(len(ep.rewards) == 200 and ep.truncations[-1] for ep in _episodes(dataset_id))


@pytest.mark.parametrize("kind", KINDS)
def test_hopper_kinds_load(hopper_datasets: dict[str, str], kind: str) -> None:
    _check_loaded(hopper_datasets[kind], "Hopper-v5", 11, 3)
    raw = gdata.load(hopper_datasets[kind], reward_scaling="none")
    assert raw.terminal.sum() > 0  # falling over is a real termination


def test_pendulum_medium_between_random_and_expert(pendulum_datasets: dict[str, str]) -> None:
    r = {k: _mean_return(pendulum_datasets[k]) for k in ("random", "medium", "expert", "medium-replay")}
    data = gdata.load(pendulum_datasets["medium"])
    lo, hi = data.ref_min_score, data.ref_max_score
    print(f"\nPendulum-v1 mean returns: random {r['random']:.1f}, medium {r['medium']:.1f}, "
          f"expert {r['expert']:.1f}, medium-replay {r['medium-replay']:.1f}; refs {lo:.1f} / {hi:.1f}; "
          f"made in {MADE_IN.get('pendulum', float('nan')):.1f} s")
    gap = r["expert"] - r["random"]
    assert gap > 500  # the expert really learned to swing up
    assert r["random"] + 0.1 * gap < r["medium"] < r["expert"] - 0.1 * gap
    # references measured at creation on the random and expert rollouts: they score 0 and 100
    score = {k: 100 * (r[k] - lo) / (hi - lo) for k in ("random", "medium", "expert")}
    assert score["random"] == pytest.approx(0, abs=1e-3) and score["expert"] == pytest.approx(100, abs=1e-3)
    assert 10 < score["medium"] < 60  # about a third of the way
    n = {k: len(gdata.load(pendulum_datasets[k])) for k in ("medium", "expert", "medium-expert")}
    assert n["medium-expert"] == n["medium"] + n["expert"]


def test_refs_stored_in_metadata_and_win(pendulum_datasets: dict[str, str]) -> None:
    ds = minari.load_dataset(pendulum_datasets["random"])
    meta = ds.storage.metadata
    data = gdata.load(pendulum_datasets["random"])
    assert (data.ref_min_score, data.ref_max_score) == (meta["ref_min_score"], meta["ref_max_score"])
    low, high = torch.tensor([-2.0]), torch.tensor([2.0])
    res = evaluate(lambda o: low + (high - low) * torch.rand(o.shape[0], 1), "Pendulum-v1", n_episodes=20, seed=7,
                   ref_min_score=data.ref_min_score, ref_max_score=data.ref_max_score)
    assert abs(res["score_mean"]) < 15  # a fresh random policy scores about 0


def test_existing_dataset_needs_force(pendulum_datasets: dict[str, str]) -> None:
    with pytest.raises(DatasetExistsError, match="local/pendulum/random-v0.*force=True"):
        make_datasets("Pendulum-v1", ["random"], progress=False)


def test_force_overwrites() -> None:
    torch.manual_seed(11)
    before = torch.get_rng_state()
    ids = make_datasets("Hopper-v5", ["random"], root_name="hopper-force", seed=1, progress=False, **HOPPER_BUDGET)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's torch RNG is left alone
    first = len(gdata.load(ids["random"]))
    budget = {**HOPPER_BUDGET, "dataset_steps": 600}
    ids = make_datasets("Hopper-v5", ["random"], root_name="hopper-force", seed=1, progress=False, force=True, **budget)
    assert ids == {"random": "local/hopper-force/random-v0"}
    assert first >= 300 and len(gdata.load(ids["random"])) >= 600


def test_bad_kind_and_env() -> None:
    with pytest.raises(ValueError, match="unknown dataset kinds \\['mediocre'\\]"):
        make_datasets("Pendulum-v1", ["mediocre"], progress=False)
    with pytest.raises(ValueError, match="unknown environment id 'NoSuchEnv-v3'"):
        make_datasets("NoSuchEnv-v3", ["random"], progress=False)
    with pytest.raises(ValueError, match="Box"):
        make_datasets("CartPole-v1", ["random"], progress=False)


def test_select_medium_picks_closest_to_a_third() -> None:
    ckpts = [(i, None, ret) for i, ret in enumerate([-1000.0, -800.0, -650.0, -300.0, -100.0])]
    assert select_medium(ckpts, random_return=-1000.0, expert_return=-100.0) == 2  # target -700


def test_cli_help_and_make(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        datasets_cli(["make", "--help"])
    assert exit_info.value.code == 0
    assert "--total-steps" in capsys.readouterr().out
    args = ["make", "--env", "Hopper-v5", "--kinds", "random", "--root-name", "hopper-cli", "--total-steps", "400",
            "--start-steps", "200", "--dataset-steps", "100", "--checkpoints", "1", "--eval-episodes", "1",
            "--ref-episodes", "2", "--hidden", "16,16", "--batch-size", "32", "--quiet"]
    assert datasets_cli(args) == 0
    out = capsys.readouterr().out
    assert "local/hopper-cli/random-v0:" in out and "ref_min_score" in out
    assert datasets_cli(args) == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err
