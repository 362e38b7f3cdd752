"""The console lines of a running sweep: a Tune callback on the driver.

Progress prints a line when a trial starts (its label: task, algorithm, model, beta, seed, ...), at each of its
evaluations (step, score, return, speed), when it completes and when it errs, numbered against the sweep's
trial count. A trial that Tune stopped early (a scheduler such as ASHA) has its last Parquet row marked final.
"""
from __future__ import annotations

import time
from typing import Any

from ray import tune

from tune_jobs import config as C
from tune_jobs import results

LABEL_KEYS = ("task", "algorithm", "model", "prediction", "solver", "sampling_steps", "train_steps", "beta", "eta",
              "seed")


def label(config: dict[str, Any]) -> str:
    """The keys that tell a trial from its neighbours, as key=value words."""
    flat = C.flatten(config)
    return " ".join(f"{k}={flat[k]}" for k in LABEL_KEYS if k in flat and flat[k] not in ("", None))


class Progress(tune.Callback):
    """Console lines per trial start, evaluation, completion and error; marks early-stopped trials' last row final."""

    def __init__(self, root: str, sweep: str, total: int) -> None:
        self.root, self.sweep, self.total = root, sweep, total
        self.done, self.start = 0, time.time()

    def _say(self, trial: Any, text: str) -> None:
        print(f"[{time.time() - self.start:7.1f}s] {trial.trial_id} {text}", flush=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._say(trial, f"start  {label(trial.config)}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        steps = C.flatten(trial.config)["steps"]
        self._say(trial, f"step {result.get('step')}/{steps} score {result.get('score_mean', float('nan')):.2f} "
                         f"return {result.get('return_mean', float('nan')):.1f} "
                         f"{result.get('grad_steps_per_s', 0):.0f} steps/s")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        last = trial.last_result or {}
        if last.get("step") and not last.get("final"):
            results.mark_final(self.root, self.sweep, trial.trial_id, last["step"], "stopped_early")
        self._say(trial, f"done   ({self.done}/{self.total} trials finished)")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        self._say(trial, f"ERROR  ({self.done}/{self.total}); logs in {trial.local_path}")
