"""TensorBoard: one run's evaluations (train(tensorboard=DIR), --tensorboard) and a sweep's trials (Tune's logger)."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

from genrl_core.run.training import train
from tune_jobs.runner import StepTBXLogger, logger_callbacks

TINY = {"backbone": "mlp", "widths": (32, 32), "sampling_steps": 4, "loglik_steps": 4}


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of every scalar in the event files under `folder` (TFRecord: length, CRC, Event, CRC)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            n = struct.unpack("<Q", data[i:i + 8])[0]
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_a_run_writes_each_evaluations_scalars_at_its_step(tmp_path: Path) -> None:
    history = train("bc", "toy/swissroll-v0", steps=300, eval_every=100, batch_size=64, log=None, overrides=TINY,
                    tensorboard=str(tmp_path / "tb"))
    scalars = read_scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["return_mean"]] == [100, 200, 300]
    for (step, value), row in zip(scalars["return_mean"], history):
        assert step == row["step"] and value == pytest.approx(row["return_mean"], rel=1e-6)
    assert [s for s, _ in scalars["loglik"]] == [100, 200, 300]
    assert "grad_steps_per_s" in scalars and "policy_loss" in scalars
    assert not {"phase", "step", "score_mean"} & set(scalars)  # no text, no step, no NaN (a bandit has no score)


def test_a_resumed_run_continues_its_curves(tmp_path: Path) -> None:
    kw = dict(eval_every=100, batch_size=64, log=None, overrides=TINY, out=str(tmp_path / "run"),
              tensorboard=str(tmp_path / "tb"))
    train("bc", "toy/swissroll-v0", steps=100, **kw)
    train("bc", "toy/swissroll-v0", steps=200, resume=True, **kw)
    assert [s for s, _ in read_scalars(tmp_path / "tb")["return_mean"]] == [100, 200]


def test_sweeps_log_every_trial_to_tensorboard() -> None:
    kinds = [type(c) for c in logger_callbacks()]
    assert CSVLoggerCallback in kinds and JsonLoggerCallback in kinds
    assert any(issubclass(k, TBXLoggerCallback) for k in kinds)


class _Trial:
    """What Tune's TensorBoard logger reads of a trial."""

    def __init__(self, path: Path):
        self.local_path, self.evaluated_params, self.config = str(path), {"beta": 1.0}, {"beta": 1.0}

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def test_the_sweep_logger_puts_the_gradient_step_on_the_x_axis(tmp_path: Path) -> None:
    logger, trial = StepTBXLogger(), _Trial(tmp_path / "trial_0")
    for it, step in ((1, 500), (2, 1000)):
        logger.log_trial_result(it, trial, {"step": step, "score_mean": step / 100, "training_iteration": it,
                                            "error": "", "config": {"beta": 1.0}})
    logger.log_trial_end(trial)
    assert read_scalars(tmp_path)["ray/tune/score_mean"] == [(500, 5.0), (1000, 10.0)]
