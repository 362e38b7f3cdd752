"""Progress of training and dataset making (a bar on a terminal, plain lines otherwise; results unchanged by it), and
the machine check of --precision bf16 (one clear line on a CPU without native bfloat16)."""
from __future__ import annotations

import io
import math
import re

import pytest
import torch
from tqdm import tqdm

from genrl_core import progress
from genrl_core.common import seed_everything
from genrl_core.data.loading import load
from genrl_core.generative import networks
from genrl_core.generative.networks import SLOW_BF16_ENV, check_precision
from genrl_core.run import training
from genrl_core.run.training import build_agent, train, train_steps

TINY = {"backbone": "mlp", "widths": (32, 32), "sampling_steps": 4, "loglik_steps": 4}
LINE = re.compile(r"^step (\d+)/600 \((\d+)%\)( [\d.e+-]+ steps/s)?( return \S+)?( eta \d+s| took \d+s)?$")


def test_plain_lines_read_like_a_log(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    with progress.Lines(total=50_000, desc="step", file=out) as lines:
        lines.set_postfix_str("score 12.3")
        clock[0] = 10.0
        lines.update(1000)  # within 30 s of the first line: nothing
        clock[0] = 200 / 3
        lines.update(11_000)
    assert out.getvalue().splitlines() == ["step 0/50000 (0%)",
                                           "step 12000/50000 (24%) 180 steps/s score 12.3 eta 3m31s",
                                           "step 12000/50000 (24%) 180 steps/s score 12.3 took 1m07s"]
    assert [progress.duration(s) for s in (45, 211, 7500)] == ["45s", "3m31s", "2h05m"]


def test_training_prints_plain_lines_when_not_a_terminal(capsys, monkeypatch) -> None:
    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 0.0)  # a line at every update
    train("bc", "toy/swissroll-v0", steps=600, eval_every=300, batch_size=64, log=None, overrides=TINY, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(LINE.match(s) for s in lines), lines
    assert lines[0] == "step 0/600 (0%)"
    assert [int(LINE.match(s)[1]) for s in lines[1:-1]] == [250, 300, 550, 600]  # chunks, cut at the evaluations
    assert " return " not in lines[2] and " return " in lines[3] and " eta " in lines[3]  # score after an evaluation
    assert lines[-1].startswith("step 600/600 (100%)") and " took " in lines[-1]


def test_without_progress_nothing_is_printed(capsys) -> None:
    train("bc", "toy/swissroll-v0", steps=50, batch_size=64, log=None, overrides=TINY)
    assert capsys.readouterr().err == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_tqdm_bar_with_rate_and_score() -> None:
    out = _Terminal()
    bar = progress.progress_bar(total=100, desc="step", file=out)
    assert isinstance(bar, tqdm)
    bar.update(40)
    bar.set_postfix_str("score 12.3")
    bar.close()
    assert "40/100" in out.getvalue() and "steps/s" in out.getvalue() and "score 12.3" in out.getvalue()


def _comparable(history: list[dict]) -> list[dict]:
    """Metrics without the wall-clock rate, NaN made comparable."""
    return [{k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()
             if k != "grad_steps_per_s"} for row in history]


def test_progress_leaves_results_bitwise_identical(capsys) -> None:
    kw = dict(steps=600, eval_every=300, batch_size=64, seed=1, log=None,
              overrides={**TINY, "critic_hidden": (32, 32), "critic_steps": 0, "critic_alongside": True})
    quiet = train("gmpo", "toy/swissroll-v0", **kw)
    shown = train("gmpo", "toy/swissroll-v0", progress=True, **kw)
    assert _comparable(shown) == _comparable(quiet)


def test_chunked_updates_equal_one_call(monkeypatch) -> None:
    """Updating the bar between chunks of steps changes nothing: same losses, same weights, bit for bit."""
    data = load("toy/swissroll-v0", "cpu")
    runs = []
    for chunk in (None, 7):
        gen = seed_everything(0)
        agent = build_agent("bc", data.obs_dim, data.act_dim, TINY)
        if chunk is None:
            losses = train_steps(agent, data, 0, 30, 64, gen).read()
        else:
            monkeypatch.setattr(training, "PROGRESS_CHUNK", chunk)
            done = []
            losses = training._train_to(agent, data, 0, 30, 64, gen, "fp32", done.append)
            assert done == [7, 7, 7, 7, 2]
        runs.append((losses, torch.cat([p.detach().flatten() for p in agent.parameters()])))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])


def test_dataset_making_prints_its_phases_as_plain_lines(capsys, monkeypatch) -> None:
    from genrl_core.data.making import train_sac

    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 1e9)  # start and end lines only
    train_sac("Pendulum-v1", 40, start_steps=10, n_checkpoints=1, eval_episodes=1)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "SAC Pendulum-v1 0/40 (0%)"
    assert re.fullmatch(r"SAC Pendulum-v1 40/40 \(100%\) [\d.e+-]+ steps/s took \d+s", lines[1]), lines
    assert len(lines) == 2


# --- precision that suits the machine ---------------------------------------------------------------------------

@pytest.fixture
def no_native_bf16(monkeypatch):
    """A CPU without AVX512-BF16 / AMX, and no override."""
    monkeypatch.setattr(networks, "cpu_bf16_support", lambda: ([], "Test CPU 9000"))
    monkeypatch.delenv(SLOW_BF16_ENV, raising=False)


def test_bf16_on_a_cpu_without_native_bfloat16_is_one_clear_line(no_native_bf16) -> None:
    with pytest.raises(ValueError) as err:
        check_precision("bf16", device="cpu")
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("bf16 on this CPU (Test CPU 9000, no avx512_bf16/amx_bf16) runs up to ~17x slower")
    assert "use --precision fp32" in text and f"{SLOW_BF16_ENV}=1" in text
    check_precision("fp32", device="cpu")
    check_precision("bf16")  # no device (precision_context): only the name is checked


def test_the_override_and_gpus_pass(no_native_bf16, monkeypatch) -> None:
    check_precision("bf16", device="cuda")
    check_precision("bf16", device=torch.device("cuda", 0))
    monkeypatch.setenv(SLOW_BF16_ENV, "1")
    check_precision("bf16", device="cpu")


def test_a_cpu_with_native_bfloat16_passes(monkeypatch) -> None:
    monkeypatch.setattr(networks, "cpu_bf16_support", lambda: (["amx_bf16"], "Xeon"))
    monkeypatch.delenv(SLOW_BF16_ENV, raising=False)
    check_precision("bf16", device="cpu")
    assert networks.bf16_note("cpu") == "bf16 native on this CPU (Xeon: amx_bf16)"


def test_the_command_line_stops_with_that_line(no_native_bf16) -> None:
    from genrl_core.train import main

    with pytest.raises(SystemExit) as done:
        main(["--algo", "bc", "--dataset", "toy/swissroll-v0", "--steps", "1", "--precision", "bf16",
              "--device", "cpu", "--no-progress"])
    assert str(done.value.code).startswith("error: bf16 on this CPU (Test CPU 9000, no avx512_bf16/amx_bf16)")


def test_a_sweep_trial_on_the_cpu_stops_at_validation_with_that_line(no_native_bf16) -> None:
    from tune_jobs import config as C

    trial = C.flatten({**C.RUN_DEFAULTS, "algorithm": "bc", "dataset": "toy/swissroll-v0", "device": "cpu",
                       "precision": "bf16"})
    problems = C.trial_problems(trial)
    assert len(problems) == 1 and problems[0].startswith("bf16 on this CPU (Test CPU 9000")
    assert C.trial_problems({**trial, "device": "cuda"}) == []  # a GPU trial is not checked
