"""Training without Ray: build an agent from the registry, run its updates, evaluate, checkpoint and resume.

`train` runs one seed in a plain loop, evaluates every eval_every steps (and every policy_eval_every steps of the
policy phase), appends each evaluation to <out>/metrics.jsonl and saves <out>/checkpoint.pt; resume=True continues
from that checkpoint with the same random streams, so a resumed run reproduces an uninterrupted one. Optionally it
shows progress (genrl_core.progress) and writes each evaluation's scalars for TensorBoard (tensorboardX).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from genrl_core import algorithms
from genrl_core.data import bandits
from genrl_core.algorithms.base import Agent
from genrl_core.run.compiled import compile_agent
from genrl_core.common import DivergenceError, seed_everything
from genrl_core.data.loading import OfflineData, load
from genrl_core.evaluation import evaluate_dataset
from genrl_core.generative.networks import check_precision, precision_context
from genrl_core.progress import progress_bar

LOGLIK_BATCH = 256  # dataset pairs on which the Figure 1 log-likelihood is measured


def build_agent(algo: str, obs_dim: int, act_dim: int, overrides: dict[str, Any] | None = None) -> Agent:
    """The agent of `algo` with its config dataclass filled from registry defaults and overrides."""
    cls, fixed = algorithms.get(algo)
    fields = {f.name for f in dataclasses.fields(cls.config_class)}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} for {algo}; valid: {sorted(fields)}")
    clash = sorted(k for k in set(overrides) & set(fixed) if overrides[k] != fixed[k])
    if clash:
        raise ValueError(f"{algo} fixes {', '.join(f'{k}={fixed[k]}' for k in clash)}; drop that override")
    return cls(cls.config_class(**{**overrides, **fixed}), obs_dim, act_dim)


def evaluate_agent(agent: Agent, data: OfflineData, episodes: int, seed: int, device: str) -> dict[str, float]:
    """Return / normalised score on the dataset's env (true value on a toy bandit) and the Figure 1 log-likelihood."""
    agent.eval()
    if data.env_id is None:  # one-step bandit: the true value of the policy's actions
        name = data.dataset_id.split("/")[1].rsplit("-", 1)[0]
        actions = agent.act(torch.zeros(1000, data.obs_dim, device=device))
        metrics = {"return_mean": float(bandits.value(name, actions).mean()), "score_mean": float("nan")}
    else:
        metrics = evaluate_dataset(agent.act, data, episodes, seed, device=device)
    if hasattr(agent, "log_likelihood"):
        g = torch.Generator(device=data.device).manual_seed(seed)
        pairs = data.sample(LOGLIK_BATCH, g)
        metrics["loglik"] = float(agent.log_likelihood(pairs["obs"], pairs["action"]).mean())
    metrics["phase"] = agent.phase()  # which model acted and gave the log-likelihood: mu before the policy phase
    agent.train()
    return metrics


class Accumulator:
    """Sums losses on the device and remembers the first step at which each became non-finite (no host sync). Each
    loss is averaged over the steps that reported it (a phase's losses appear on its steps only)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.first_bad: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, losses: dict[str, torch.Tensor], step: int) -> None:
        for k, v in losses.items():
            if k not in self.sums:
                self.sums[k], self.first_bad[k] = torch.zeros_like(v), torch.full_like(v, -1.0)
            self.sums[k] += v
            self.counts[k] = self.counts.get(k, 0) + 1
            bad = (~torch.isfinite(v)) & (self.first_bad[k] < 0)
            self.first_bad[k] = torch.where(bad, torch.full_like(v, float(step)), self.first_bad[k])

    def read(self) -> dict[str, float]:
        """Means since the last read; raises DivergenceError naming the step and the loss."""
        for k, bad in self.first_bad.items():
            if float(bad) >= 0:
                raise DivergenceError(f"training diverged at step {int(bad)}: loss {k!r} became non-finite")
        out = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        return out


def train_steps(agent: Agent, data: OfflineData, start: int, stop: int, batch_size: int,
                gen: torch.Generator, acc: "Accumulator | None" = None, precision: str = "fp32") -> "Accumulator":
    """Run agent.update on fresh minibatches for steps start..stop-1 at `precision` (networks.PRECISIONS); losses
    accumulate on the device."""
    acc = acc or Accumulator()
    with precision_context(precision):
        for step in range(start, stop):
            acc.add(agent.update(data.sample(agent.batch_size(step, batch_size), gen), step), step)
    return acc


def next_eval(step: int, steps: int, eval_every: int, policy_start: int = 0, policy_eval_every: int = 0) -> int:
    """The step of the evaluation after `step`: every eval_every steps; with policy_eval_every, also at policy_start
    and every policy_eval_every steps from there (GMPG's optimum can come after tens of policy steps)."""
    nxt = (step // eval_every + 1) * eval_every
    if policy_eval_every > 0:
        if step < policy_start:
            nxt = min(nxt, policy_start)
        else:
            nxt = policy_start + ((step - policy_start) // policy_eval_every + 1) * policy_eval_every
    return min(nxt, steps)


EPOCH_KEYS = ("critic_epochs", "behaviour_epochs", "policy_epochs")


def steps_from_epochs(algo: str, n: int, batch_size: int, epochs: dict[str, int],
                      overrides: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """Phase lengths given in epochs (the authors' unit: an epoch is ceil(n / batch) gradient steps) as steps for a
    dataset of n transitions: (total steps or None, overrides with critic_steps / behaviour_steps set).

    The critic and behaviour phases run in parallel from step 0 at `batch_size`; the policy phase follows them at
    the policy's own batch size (policy_batch_size where set)."""
    fields = {f.name for f in dataclasses.fields(algorithms.get(algo)[0].config_class)}
    out = dict(overrides)
    per_epoch = -(-n // batch_size)
    for key in ("critic", "behaviour"):
        if epochs.get(f"{key}_epochs", 0) > 0 and f"{key}_steps" in fields:
            out[f"{key}_steps"] = epochs[f"{key}_epochs"] * per_epoch
    if epochs.get("policy_epochs", 0) <= 0:
        return None, out
    start = max([out.get(f"{k}_steps", 0) for k in ("critic", "behaviour") if f"{k}_steps" in fields] or [0])
    policy_batch = out.get("policy_batch_size") or batch_size
    return start + epochs["policy_epochs"] * -(-n // policy_batch), out


def _save(path: Path, agent: Agent, step: int, gen: torch.Generator, history: list[dict]) -> None:
    state = {"agent": agent.full_state(), "step": step, "gen": gen.get_state(), "rng": torch.get_rng_state(),
             "history": history}
    if gen.device.type == "cuda":  # the model's own draws (flow times, noise, probes) come from the device's stream
        state["cuda_rng"] = torch.cuda.get_rng_state(gen.device)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written checkpoint


def _restore(path: Path, agent: Agent, gen: torch.Generator) -> tuple[int, list[dict]]:
    state = torch.load(path, weights_only=True, map_location="cpu")
    agent.load_full_state(state["agent"])
    gen.set_state(state["gen"])
    torch.set_rng_state(state["rng"])
    if gen.device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], gen.device)
    return state["step"], state["history"]


def with_run_schedules(algo: str, steps: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides with a schedule over training (GTP's schedule_steps) spanning the run's `steps` unless set."""
    out = dict(overrides)
    if "schedule_steps" in {f.name for f in dataclasses.fields(algorithms.get(algo)[0].config_class)}:
        out.setdefault("schedule_steps", steps)
    return out


PROGRESS_CHUNK = 250  # steps between progress-bar updates: no host sync, the losses stay on the device


class Reporter:
    """What a run shows besides metrics.jsonl: a progress bar (tqdm on a terminal, plain lines otherwise), each
    evaluation's line through `log`, and with `tensorboard` each evaluation's finite numeric metrics at its step
    (a toy bandit's NaN score_mean is left out)."""

    def __init__(self, steps: int, start: int, progress: bool, tensorboard: str | None,
                 log: Callable[[str], None] | None):
        self.log, self.writer = log, None
        self.bar = progress_bar(total=steps, initial=start, desc="step", unit="steps", enabled=progress)
        if tensorboard:
            from tensorboardX import SummaryWriter

            # purge_step: a resumed run replaces what a crashed one wrote after its checkpoint; the suffix keeps a
            # resume within the same second from overwriting the first file (named by the second it was opened)
            self.writer = SummaryWriter(tensorboard, purge_step=start + 1 if start else None,
                                        filename_suffix=f".from{start}")

    def advance(self, n: int) -> None:
        """n more gradient steps done."""
        self.bar.update(n)

    def evaluation(self, metrics: dict[str, Any]) -> None:
        """One evaluation: its scalars to TensorBoard, its score on the bar, its line to `log`."""
        if self.writer is not None:
            for k, v in metrics.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self.writer.add_scalar(k, v, global_step=metrics["step"])
            self.writer.flush()
        score = metrics.get("score_mean", float("nan"))
        self.bar.set_postfix_str(f"score {score:.4g}" if score == score else
                                 f"return {metrics.get('return_mean', float('nan')):.4g}")
        if self.log:
            with self.bar.external_write_mode():
                self.log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))

    def close(self) -> None:
        """Final progress line; TensorBoard file closed."""
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _train_to(agent: Agent, data: OfflineData, start: int, stop: int, batch_size: int, gen: torch.Generator,
              precision: str, advance: Callable[[int], None]) -> dict[str, float]:
    """train_steps from start to stop in chunks of PROGRESS_CHUNK steps (one accumulator: the same losses and random
    streams as one call), calling advance(n) after each chunk; the mean losses."""
    acc = Accumulator()
    for a in range(start, stop, PROGRESS_CHUNK):
        b = min(a + PROGRESS_CHUNK, stop)
        train_steps(agent, data, a, b, batch_size, gen, acc, precision)
        advance(b - a)
    return acc.read()


def _start(out: str | None, resume: bool, agent: Agent, gen: torch.Generator) -> tuple[int, list[dict], Path | None]:
    """(first step, evaluations so far, checkpoint path): from <out>/checkpoint.pt with resume, else from scratch."""
    start, history = 0, []
    ckpt = Path(out) / "checkpoint.pt" if out else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if resume and ckpt.exists():
            start, history = _restore(ckpt, agent, gen)
        _rewrite_jsonl(ckpt.parent / "metrics.jsonl", history)
    return start, history, ckpt


def train(algo: str, dataset: str, *, steps: int, seed: int = 0, batch_size: int = 256, eval_every: int = 0,
          eval_episodes: int = 10, out: str | None = None, resume: bool = False, device: str = "cpu",
          overrides: dict[str, Any] | None = None, reward_scaling: str = "auto", normalize_obs: bool = False,
          precision: str = "fp32", policy_eval_every: int = 0, log: Callable[[str], None] | None = print,
          progress: bool = False, tensorboard: str | None = None, compiled: bool = False) -> list[dict]:
    """Train `algo` on `dataset` for `steps` gradient steps; returns one metrics dict per evaluation (every
    eval_every steps, and every policy_eval_every steps of the policy phase when > 0). progress: a bar on stderr
    (plain lines when it is not a terminal); tensorboard: a folder for each evaluation's scalars. Neither changes
    the results. compiled: the agent's networks run through torch.compile (run.compiled; the same losses within
    float rounding)."""
    check_precision(precision, device)
    gen = seed_everything(seed)
    if torch.device(device).type == "cuda":
        gen = torch.Generator(device=device).manual_seed(seed)
    data = load(dataset, device, reward_scaling=reward_scaling, normalize_obs=normalize_obs)
    overrides = with_run_schedules(algo, steps, overrides or {})
    agent = build_agent(algo, data.obs_dim, data.act_dim, overrides).to(device)
    if compiled:
        compile_agent(agent)
    agent.bind_data(data, seed)  # SfBC / QGPO: behaviour candidates drawn once per dataset state
    eval_every = eval_every or steps
    step, history, ckpt = _start(out, resume, agent, gen)
    report = Reporter(steps, step, progress, tensorboard, log)
    try:
        while step < steps:
            stop = next_eval(step, steps, eval_every, agent.policy_start, policy_eval_every)
            t0 = time.perf_counter()
            losses = _train_to(agent, data, step, stop, batch_size, gen, precision, report.advance)
            metrics = {"step": stop, **losses,
                       "grad_steps_per_s": (stop - step) / max(time.perf_counter() - t0, 1e-9)}
            metrics.update(evaluate_agent(agent, data, eval_episodes, seed, device))
            history.append(metrics)
            step = stop
            if ckpt is not None:
                with open(ckpt.parent / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(metrics) + "\n")
                _save(ckpt, agent, step, gen, history)
            report.evaluation(metrics)
    finally:
        report.close()
    return history


def _rewrite_jsonl(path: Path, history: list[dict]) -> None:
    """metrics.jsonl holds exactly the checkpointed evaluations (a resumed run never duplicates rows)."""
    with open(path, "w") as f:
        for row in history:
            f.write(json.dumps(row) + "\n")
