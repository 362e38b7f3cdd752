"""The single-run trainer: exact resume, divergence errors, config validation, the command line."""
import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from genrl_core.common import DivergenceError
from genrl_core import algorithms
from genrl_core.algorithms.in_support import InSupportAgent, select
from genrl_core.run.training import Accumulator, build_agent, train
from genrl_core.algorithms.config import field_docs as field_comments

TINY = {"backbone": "mlp", "widths": (32, 32), "sampling_steps": 4, "loglik_steps": 4}


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    kw = dict(seed=3, batch_size=64, eval_every=20, log=None,  # critic trained throughout (the option)
              overrides={**TINY, "critic_hidden": (32, 32), "beta": 2.0, "critic_steps": 0, "critic_alongside": True})
    full = train("gmpo", "toy/swissroll-v0", steps=60, out=str(tmp_path / "a"), **kw)
    train("gmpo", "toy/swissroll-v0", steps=20, out=str(tmp_path / "b"), **kw)  # "crashes" after step 20
    resumed = train("gmpo", "toy/swissroll-v0", steps=60, out=str(tmp_path / "b"), resume=True, **kw)
    assert [r["step"] for r in resumed] == [20, 40, 60]
    for a, b in zip(full, resumed):
        for k in ("policy_loss", "q_loss", "v_loss", "return_mean", "loglik"):
            assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7), k
    rows = [json.loads(line) for line in open(tmp_path / "b" / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [20, 40, 60]  # no duplicated evaluation rows
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 60


def test_a_gmpo_checkpoint_warm_starts_gtp_and_gmpo_critics_exactly(tmp_path):
    """critic_init takes a training checkpoint: GTP's Q, target Q and V and a second GMPO's critic start as the
    GMPO run's critic ended; a checkpoint without an IQL critic is one clear error."""
    iql = {"critic_hidden": (32, 32), "critic_steps": 20}
    train("gmpo", "toy/swissroll-v0", steps=30, seed=0, batch_size=32, eval_every=30, log=None,
          overrides={**TINY, **iql}, out=str(tmp_path / "gmpo"))
    model = torch.load(tmp_path / "gmpo" / "checkpoint.pt", weights_only=True)["agent"]["model"]
    ckpt = str(tmp_path / "gmpo" / "checkpoint.pt")
    gtp = build_agent("gtp", 1, 2, {"hidden": (32, 32), "critic_hidden": (32, 32), "critic_init": ckpt})
    gmpo = build_agent("gmpo", 1, 2, {**TINY, **iql, "critic_init": ckpt})  # swissroll: 1-dim obs
    for name, module in (("q", gtp.critic.q), ("q_target", gtp.critic.q_target), ("v", gtp.v), ("q", gmpo.critic.q),
                         ("v", gmpo.critic.v)):
        for key, tensor in module.state_dict().items():
            assert torch.equal(tensor, model[f"critic.{name}.{key}"]), (name, key)
    train("bc", "toy/swissroll-v0", steps=2, seed=0, batch_size=32, eval_every=2, log=None, overrides=TINY,
          out=str(tmp_path / "bc"))
    with pytest.raises(ValueError, match="nor a training checkpoint whose agent has one"):
        build_agent("gtp", 1, 2, {"hidden": (32, 32), "critic_hidden": (32, 32),
                                  "critic_init": str(tmp_path / "bc" / "checkpoint.pt")})


def test_sfbc_resume_with_its_candidate_cache_reproduces_an_uninterrupted_run(tmp_path, monkeypatch):
    """The candidate cache is derived state: not checkpointed, rebuilt identically after a resume."""
    builds = []
    build = InSupportAgent.build_cache
    monkeypatch.setattr(InSupportAgent, "build_cache", lambda self: builds.append(1) or build(self))
    kw = dict(seed=3, batch_size=64, eval_every=20, log=None,
              overrides={**TINY, "critic_hidden": (32, 32), "behaviour_steps": 10, "target_candidates": 2,
                         "train_sampling_steps": 2, "candidates": 3, "target": "softmax"})
    full = train("sfbc", "toy/swissroll-v0", steps=60, out=str(tmp_path / "a"), **kw)
    train("sfbc", "toy/swissroll-v0", steps=20, out=str(tmp_path / "b"), **kw)  # "crashes" after step 20
    resumed = train("sfbc", "toy/swissroll-v0", steps=60, out=str(tmp_path / "b"), resume=True, **kw)
    assert len(builds) == 3  # once per run, at step 10 (twice) and again at the resume
    assert [r["step"] for r in resumed] == [20, 40, 60]
    for a, b in zip(full, resumed):
        for k in ("q_loss", "return_mean"):
            assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7), k
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert not any("cache" in k for k in state["agent"]["model"])


def test_each_loss_is_averaged_over_the_steps_that_report_it():
    """A phase's losses (GMPG's behaviour_loss before behaviour_steps, policy_loss after) appear on its steps only."""
    acc = Accumulator()
    acc.add({"behaviour_loss": torch.tensor(1.0)}, 0)
    acc.add({"behaviour_loss": torch.tensor(3.0)}, 1)
    acc.add({"policy_loss": torch.tensor(10.0)}, 2)
    assert acc.read() == {"behaviour_loss": 2.0, "policy_loss": 10.0}
    acc.add({"policy_loss": torch.tensor(4.0)}, 3)
    assert acc.read() == {"policy_loss": 4.0}


def test_softmax_selection_draws_what_multinomial_draws():
    """select(how="softmax") avoids multinomial's host-side checks and keeps its draws and random stream."""
    actions, scores = torch.randn(32 * 6, 2), torch.randn(32 * 6)
    torch.manual_seed(0)
    picked, after = select(actions, scores, 6, "softmax", 3.0), torch.rand(2)
    torch.manual_seed(0)
    index = torch.multinomial(torch.softmax(3.0 * scores.view(-1, 6), dim=1), 1).squeeze(1)
    assert torch.equal(picked, actions.view(32, 6, 2)[torch.arange(32), index]) and torch.equal(after, torch.rand(2))


def test_diverging_run_names_step_and_loss():
    with pytest.raises(DivergenceError, match=r"training diverged at step \d+: loss 'policy_loss' became non-finite"):
        train("bc", "toy/swissroll-v0", steps=200, eval_every=200, log=None, overrides={**TINY, "lr": 1e30})


def test_bad_configs_are_one_clear_error():
    with pytest.raises(ValueError, match="GMPG needs a velocity model"):
        build_agent("gmpg", 1, 2, {**TINY, "path": "vpsde", "prediction": "eps"})
    with pytest.raises(ValueError, match="beta must be >= 0, got -1"):
        build_agent("gmpo", 1, 2, {**TINY, "beta": -1.0})
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['betta'\] for gmpo"):
        build_agent("gmpo", 1, 2, {"betta": 1.0})
    with pytest.raises(ValueError, match="gtp_bc fixes eta=0.0; drop that override"):
        build_agent("gtp_bc", 1, 2, {"eta": 5.0})
    with pytest.raises(ValueError, match="unknown algorithm 'ppo'; valid"):
        build_agent("ppo", 1, 2)


def test_cli_help_lists_config_fields_and_errors_in_one_line():
    help_text = subprocess.run([sys.executable, "-m", "genrl_core.train", "--algo", "gmpg", "--help"],
                               capture_output=True, text=True, check=True).stdout
    for flag in ("--beta", "--train-steps", "--trace", "--critic-steps", "--expectile", "--path", "--resume"):
        assert flag in help_text
    assert "(default: 4.0)" in help_text and "(default: 4.0) (default" not in help_text
    flat = " ".join(help_text.split())
    assert "--static STATIC Eq. 42: importance-weighted gradient on dataset actions" in flat  # the field's comment
    assert "Q's extrapolation past the action bound is not followed" in flat  # a comment's continuation line
    bad = subprocess.run([sys.executable, "-m", "genrl_core.train", "--algo", "gmpg", "--dataset", "toy/swissroll-v0",
                          "--prediction", "eps", "--steps", "1"], capture_output=True, text=True)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip().splitlines()[-1]]  # exactly one line
    assert "GMPG needs a velocity model" in bad.stderr


@pytest.mark.parametrize("algo", algorithms.names())
def test_every_config_field_has_its_comment_for_help(algo: str):
    cls = algorithms.get(algo)[0].config_class
    docs = field_comments(cls)
    assert [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)] == []
