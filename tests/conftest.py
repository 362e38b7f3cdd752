"""Shared fixtures: Minari datasets go to a fresh temporary folder (never ~/.minari); test-sized local datasets."""
from __future__ import annotations

import atexit
import importlib.util
import os
import sys
import shutil
import tempfile
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

_MINARI_ROOT = tempfile.mkdtemp(prefix="genrl-test-minari-")
os.environ["MINARI_DATASETS_PATH"] = _MINARI_ROOT
os.environ.setdefault("GENRL_ALLOW_SLOW_BF16", "1")  # the bf16 tests run on any CPU, fast or not
atexit.register(shutil.rmtree, _MINARI_ROOT, ignore_errors=True)

from genrl_core.algorithms.base import IQLPolicyConfig, make_iql  # noqa: E402
from genrl_core.common import seed_everything  # noqa: E402
from genrl_core.algorithms.critics import pretrain_iql  # noqa: E402
from genrl_core.data.loading import load  # noqa: E402
from genrl_core.data.making import KINDS, make_datasets  # noqa: E402  (after MINARI_DATASETS_PATH is set)
from genrl_core.data.sac import SACConfig  # noqa: E402

# Pendulum-v1: SAC learns within ~4k steps, so its checkpoints span random to expert (medium really is medium).
PENDULUM_BUDGET = dict(total_steps=6000, dataset_steps=4000, start_steps=1000, n_checkpoints=30, eval_episodes=10,
                       ref_episodes=20, sac=SACConfig(hidden=(64, 64), lr=1e-3, batch_size=128))
# Hopper-v5: a tiny budget; these sets only need to exist and load.
# (ref_episodes: minimum episodes of the random and expert rollouts, whose mean returns become the refs)
HOPPER_BUDGET = dict(total_steps=600, dataset_steps=300, start_steps=300, n_checkpoints=2, eval_episodes=2,
                     ref_episodes=2, sac=SACConfig(hidden=(32, 32), batch_size=64))
MADE_IN: dict[str, float] = {}  # seconds taken to make each fixture's datasets


def load_make_tables() -> ModuleType:
    """A fresh copy of analysis/make_tables.py (a script, not a package module), registered so its dataclasses
    resolve."""
    path = Path(__file__).resolve().parents[1] / "analysis" / "make_tables.py"
    spec = importlib.util.spec_from_file_location("make_tables", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_tables"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def minari_root() -> str:
    """The temporary MINARI_DATASETS_PATH of this test session."""
    return _MINARI_ROOT


def _make_timed(env_id: str, key: str, budget: dict) -> dict[str, str]:
    """Make all five kinds for env_id with the given budget, recording the seconds taken under MADE_IN[key]."""
    start = time.perf_counter()
    ids = make_datasets(env_id, KINDS, seed=0, progress=False, **budget)
    MADE_IN[key] = time.perf_counter() - start
    return ids


@pytest.fixture(scope="session")
def pendulum_datasets() -> dict[str, str]:
    """kind -> Minari id of test-sized Pendulum-v1 datasets of all five kinds."""
    return _make_timed("Pendulum-v1", "pendulum", PENDULUM_BUDGET)


@pytest.fixture(scope="session")
def hopper_datasets() -> dict[str, str]:
    """kind -> Minari id of tiny Hopper-v5 datasets of all five kinds (for loading checks only)."""
    return _make_timed("Hopper-v5", "hopper", HOPPER_BUDGET)


# The IQL critic every Pendulum policy test starts from (critic_init): Algorithm 1's first loop, run once. With
# gamma 0.99 a critic needs ~10k steps before its Q depends on the action at all, hence value_init, a faster
# target (tau 0.02) and a higher learning rate than the paper's 1e-4.
PENDULUM_CRITIC = dict(critic_lr=1e-3, critic_tau=0.02, critic_value_init=True)
PENDULUM_CRITIC_STEPS = 12_000


@pytest.fixture(scope="session")
def critic_file(pendulum_datasets: dict, tmp_path_factory) -> str:
    """Path of an IQL critic pretrained (seed 0) on the Pendulum medium set, for critic_init."""
    data = load(pendulum_datasets["medium"])
    gen = seed_everything(0)
    critic = make_iql(IQLPolicyConfig(**PENDULUM_CRITIC), data.obs_dim, data.act_dim)
    pretrain_iql(critic, lambda: data.sample(256, gen), PENDULUM_CRITIC_STEPS)
    path = str(tmp_path_factory.mktemp("critic") / "iql.pt")
    torch.save(critic.state_dict(), path)
    return path
