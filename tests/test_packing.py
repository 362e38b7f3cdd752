"""Seed packing: packed seeds reproduce their unpacked runs (losses, evaluations), and a packed trial writes a row
per seed and resumes from its checkpoint (the real trainable, with Tune's session calls stood in for)."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from genrl_core.common import seed_everything
from genrl_core.data.loading import load
from genrl_core.run.packing import PackingError, build_pack
from genrl_core.run.training import build_agent, evaluate_agent, train
from tune_jobs import config as C
from tune_jobs import results

TINY = {"backbone": "mlp", "widths": (32, 32), "sampling_steps": 4, "loglik_steps": 4}
OVERRIDES = {"bc": TINY, "gmpo": {**TINY, "critic_hidden": (32, 32), "beta": 2.0, "critic_steps": 0,
                                  "critic_alongside": True},  # critic and policy from step 0 (phases: test_phases)
             "gtp": {"hidden": (32, 32), "critic_hidden": (32, 32), "schedule_steps": 12, "sampling_steps": 2}}
SEEDS, STEPS, CHUNK, BATCH = [0, 1, 2], 12, 4, 64


@pytest.fixture(scope="module")
def swissroll():
    return load("toy/swissroll-v0", "cpu")


def _unpacked_chunks(algo: str, seed: int, data) -> list[dict[str, float]]:
    """The plain single-seed loop (as genrl_core.run.training runs it): mean losses per chunk of CHUNK steps."""
    gen = seed_everything(seed)
    agent = build_agent(algo, data.obs_dim, data.act_dim, OVERRIDES[algo])
    chunks, acc = [], {}
    for step in range(STEPS):
        for k, v in agent.update(data.sample(BATCH, gen), step).items():
            acc[k] = acc.get(k, 0.0) + float(v)
        if (step + 1) % CHUNK == 0:
            chunks.append({k: v / CHUNK for k, v in acc.items()})
            acc = {}
    return chunks


@pytest.mark.parametrize("algo, engine", [("bc", "vmap"), ("gmpo", "vmap"), ("gtp", "vmap"), ("gmpo", "loop")])
def test_packed_losses_equal_unpacked(algo, engine, swissroll):
    pack = build_pack(algo, SEEDS, swissroll.obs_dim, swissroll.act_dim, "cpu", OVERRIDES[algo], engine)
    packed = [pack.train(swissroll, start, CHUNK, BATCH) for start in range(0, STEPS, CHUNK)]
    for i, seed in enumerate(SEEDS):
        for chunk, want in enumerate(_unpacked_chunks(algo, seed, swissroll)):
            got = packed[chunk][i]
            assert set(got) == set(want)
            for k in want:
                assert got[k] == pytest.approx(want[k], rel=1e-4, abs=1e-6), (seed, chunk, k)
    assert packed[-1][0] != packed[-1][1]  # the seeds really differ


def test_packed_evaluation_reproduces_unpacked_train(swissroll):
    kw = dict(steps=8, eval_every=4, batch_size=BATCH, log=None, overrides=OVERRIDES["gmpo"])
    pack = build_pack("gmpo", [3, 4], swissroll.obs_dim, swissroll.act_dim, "cpu", OVERRIDES["gmpo"])
    history: list[list[dict]] = [[], []]
    for start in (0, 4):
        losses = pack.train(swissroll, start, 4, BATCH)
        for i, seed in enumerate(pack.seeds):
            with pack.seed_rng(i):
                history[i].append({**losses[i], **evaluate_agent(pack.agents[i], swissroll, 2, seed, "cpu")})
    for i, seed in enumerate(pack.seeds):
        for want, got in zip(train("gmpo", "toy/swissroll-v0", seed=seed, **kw), history[i]):
            for k in ("policy_loss", "q_loss", "return_mean", "loglik"):
                assert got[k] == pytest.approx(want[k], rel=1e-4, abs=1e-6), (seed, k)


def test_unpackable_update_is_one_clear_error(swissroll):
    pack = build_pack("bc", [0, 1], swissroll.obs_dim, swissroll.act_dim, "cpu", TINY)
    agent = pack.agents[0]
    agent.update = lambda batch, step: {"x": torch.nn.functional.dropout(batch["obs"], 0.5).sum()}
    with pytest.raises(PackingError, match="BC cannot be packed by the vmap engine .*use pack_engine=loop"):
        pack.train(swissroll, 0, 1, BATCH)


def test_pack_config_validation():
    base = {"preset": "smoke", "task": "hopper-medium-v2", "variant": C.variant("smoke", "bc")}
    with pytest.raises(C.SweepConfigError, match="seed 1 is trained by two trials"):
        C.validate_configs([{**base, "seed": s, "seeds_per_trial": 2} for s in (0, 1)])
    C.validate_configs([{**base, "seed": s, "seeds_per_trial": 2} for s in (0, 2)])
    with pytest.raises(C.SweepConfigError, match="seeds_per_trial must be an integer >= 1, got 0"):
        C.validate_configs([{**base, "seeds_per_trial": 0}])
    with pytest.raises(C.SweepConfigError, match="unknown pack_engine 'x'; valid: vmap, loop"):
        C.validate_configs([{**base, "pack_engine": "x"}])


# --- the real trainable, with Tune's session calls stood in for ---------------------------------------------

class FakeTune:
    """tune.get_context / report / get_checkpoint / Checkpoint as the trainable uses them, in one process."""

    def __init__(self, keep: Path, resume_from: Path | None = None):
        self.keep, self.resume_from, self.reports = keep, resume_from, []
        self.Checkpoint = SimpleNamespace(from_directory=self._from_directory)

    def get_context(self):
        return SimpleNamespace(get_experiment_name=lambda: "exp", get_trial_id=lambda: "trialA")

    def _from_directory(self, d: str) -> Path:
        dest = self.keep / f"ckpt{len(self.reports)}"
        shutil.copytree(d, dest)
        return dest

    def report(self, metrics: dict, checkpoint: Path | None = None) -> None:
        self.reports.append((dict(metrics), checkpoint))

    def get_checkpoint(self):
        if self.resume_from is None:
            return None

        @contextmanager
        def as_directory():
            yield str(self.resume_from)
        return SimpleNamespace(as_directory=as_directory)


def test_packed_trainable_writes_a_row_per_seed_and_resumes(monkeypatch, tmp_path):
    import ray

    from tune_jobs import trainable as T

    monkeypatch.setattr(ray, "get_runtime_context", lambda: SimpleNamespace(get_node_id=lambda: "node"))
    config = {"algorithm": "gmpo", "dataset": "toy/swissroll-v0", "seed": 5, "seeds_per_trial": 2, "steps": 20,
              "eval_every": 10, "eval_episodes": 1, "batch_size": 32, "device": "cpu", **OVERRIDES["gmpo"]}
    root = results.results_root(str(tmp_path / "store"))
    meta = {"sweep": "pack", "results": root}
    first = FakeTune(tmp_path)
    monkeypatch.setattr(T, "tune", first)
    T.trainable(config, meta)
    rows = results.read_rows(root, "pack")
    assert sorted(zip(rows["trial_id"], rows["seed"], rows["step"])) == [
        ("trialA_s5", 5, 10), ("trialA_s5", 5, 20), ("trialA_s6", 6, 10), ("trialA_s6", 6, 20)]
    assert set(rows["pack_trial_id"]) == {"trialA"} and list(rows.sort_values("step")["final"]) == [0, 0, 1, 1]
    full = rows.set_index(["trial_id", "step"])
    # a crash after the first evaluation: resume from its checkpoint, the second evaluation is rewritten
    resumed = FakeTune(tmp_path / "r", resume_from=first.reports[0][1])
    (tmp_path / "r").mkdir()
    monkeypatch.setattr(T, "tune", resumed)
    T.trainable(config, meta)
    again = results.read_rows(root, "pack").set_index(["trial_id", "step"])
    assert len(again) == 4 and again.loc[("trialA_s6", 20), "restarts"] == 1
    for key in (("trialA_s5", 20), ("trialA_s6", 20)):
        for col in ("policy_loss", "q_loss", "return_mean", "loglik"):
            assert again.loc[key, col] == pytest.approx(full.loc[key, col], rel=1e-5), (key, col)
    assert full.loc[("trialA_s5", 20), "policy_loss"] != full.loc[("trialA_s6", 20), "policy_loss"]
