"""Stage reuse (tune_jobs.stages): the key ignores exactly the policy-only settings, one trial claims a stage, the others
load it or take it over from a dead trainer, and files are never read half-written."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch

from tune_jobs import config as C
from tune_jobs.stages import StageStore, open_stage, policy_only, stage_key


def _split(**config):
    return C.split(C.flatten({**C.RUN_DEFAULTS, "dataset": "toy/swissroll-v0", **config}))


def test_the_key_ignores_policy_only_settings_and_nothing_else():
    assert policy_only("gmpo") >= {"beta", "max_weight"} and policy_only("bc") == frozenset()
    base = stage_key(*_split(beta=1.0), "hash", "commit")
    assert stage_key(*_split(beta=8.0, max_weight=10.0, steps=5000), "hash", "commit") == base
    for change in ({"critic_lr": 3e-4}, {"seed": 1}, {"batch_size": 64}, {"lr": 1e-3}, {"path": "gvp"},
                   {"critic_steps": 50}, {"eval_every": 7}):
        assert stage_key(*_split(beta=1.0, **change), "hash", "commit") != base, change
    assert stage_key(*_split(beta=1.0), "other data", "commit") != base
    assert stage_key(*_split(beta=1.0), "hash", "other commit") != base


def test_one_trial_claims_the_others_load(tmp_path):
    store = StageStore(tmp_path)
    assert open_stage(store, "k") == (None, True)  # the first trains it
    assert not store.claim("k")  # a second cannot claim while the first holds it
    store.save("k", {"pack": [torch.ones(2)], "rows": [[{"score_mean": 1.5}]]})
    loaded, train = open_stage(store, "k")
    assert not train and torch.equal(loaded["pack"][0], torch.ones(2)) and loaded["rows"][0][0]["score_mean"] == 1.5
    assert not (tmp_path / "k.lock").exists() and [p.name for p in tmp_path.iterdir()] == ["k.pt"]


def test_a_dead_trainers_claim_is_taken_over(tmp_path):
    store = StageStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "k.lock").write_text(f"{socket.gethostname()} {dead.pid}")
    assert open_stage(store, "k") == (None, True)  # waited, saw its owner gone, claimed it
    assert (tmp_path / "k.lock").read_text() == f"{socket.gethostname()} {os.getpid()}"


def test_remote_storage_shares_no_stage():
    assert StageStore.for_results("s3://bucket/results/parquet") is None
    assert StageStore.for_results(None) is None
