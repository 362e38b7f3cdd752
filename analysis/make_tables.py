"""Parquet results -> the papers' tables (Markdown and LaTeX) with the published numbers beside, and PNG plots.

    python analysis/make_tables.py --results results --out results/tables

Each table its sweeps cover is written as <out>/<table>.md and <out>/<table>.tex (and all Markdown is printed):
every cell is "final (mean ± std over seeds) / best (mean ± std) [paper mean ± std]" of the normalised score,
where final is a trial's last evaluation and best its best evaluation. Captions say so, name the references the
scores are normalised with (the rows' ref_source: D4RL's, the papers' scale, the dataset's own, or for the mazes
the success rate x 100, episodes ending at the goal as in D4RL's AntMaze evaluation) and the
dataset actually used for each task. Plots: <out>/curves_<sweep>.png (score against gradient steps per
configuration, mean ± std over seeds) and <out>/figure1_loglik_vs_return.png (the paper's Figure 1:
log-likelihood of dataset actions under the policy against its return, one point per evaluation, star at each
configuration's best).

Aggregate statistics, per sweep (Agarwal et al., NeurIPS 2021; the estimators below): <out>/aggregate_<sweep>.md
and .tex (per configuration, i.e. algorithm and each swept value such as beta: IQM and mean of the runs' final scores
over tasks and seeds, each with a stratified bootstrap confidence interval), <out>/improvement_<sweep>.md and .tex
(probability of improvement of each configuration over each other, or over --baseline) and
<out>/profile_<sweep>.png (performance profiles). A sweep with fewer than 2 configurations of 2 or more runs per task
is skipped with a one-line note on stderr.

Every caption states the evaluation protocol from the rows' protocol columns (tune_jobs.results.PROTOCOL_KEYS):
final and/or best, episodes per evaluation, seeds, each dataset's id and content hash, and its reference returns
with their source. A table never pools rows made under different protocols: when the trials of one cell (per task)
differ in a protocol column, or in the gradient step of their final evaluation, that table is skipped with one line
on stderr naming the table, the cell, the field and its values; the other tables are still written. Filter rows with
--only KEY=VALUE (e.g. --only eval_episodes=10) to make such a table.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from genrl_core import algorithms
from tune_jobs import config as C
from tune_jobs.results import PROTOCOL_KEYS, read_rows, results_root

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference"
# Tables 3 and 11's columns: GMPO, GMPG and the baselines the paper compares them with (Appendix C.1-C.5)
TABLE3_ALGORITHMS = ["gmpo", "gmpg", "sfbc", "qgpo", "idql", "srpo", "dql"]
MODELS = {"vpsde": "VPSDE", "gvp": "GVP", "icfm": "I-CFM", "linear": "Linear"}
SOLVERS = {"euler": "euler", "midpoint": "midpoint", "rk4": "rk4", "dpm2": "dpm_solver_2"}
TASK_ORDER = {t: i for i, t in enumerate(C.PAPER_DATASETS)}
# models' and solvers' places in the tables (algorithms': their order in the registry, genrl_core.algorithms)
ORDER = {**{k: i for i, k in enumerate(MODELS)}, **{k: i for i, k in enumerate(SOLVERS)}}
# how a key column's values read in a table (algorithms under their registered display names)
NAMES: dict[str, Callable[[str], str]] = {"algorithm": algorithms.display_name, "model": lambda v: MODELS.get(v, v),
                                          "solver": lambda v: SOLVERS.get(v, v)}


@dataclass
class Spec:
    """One paper table: which sweep, which trials, row (and column) keys, where the paper's numbers are, and how it
    is filled from the trials it keeps: by `fill` when given (Tables 5 and 8), else as the grid (`grid`)."""

    key: str  # output file name
    title: str
    sweep: str
    rows: list[str]  # trial-summary columns that make a row
    cols: list[str]  # trial-summary columns that make a column (the grid's)
    ref_file: str  # CSV in analysis/reference
    ref_keys: Callable[[dict], dict]  # row+column values -> {reference column: value}
    keep: Callable[[pd.DataFrame], pd.Series] = field(default=lambda t: pd.Series(True, index=t.index))
    fill: Callable[[Spec, pd.DataFrame], Table] | None = None  # (spec, kept trials) -> table; None: the grid
    # whether a cell's trials must have made their final evaluations at the same gradient step (not Table 8, which
    # picks among trials ASHA stopped at different steps itself)
    same_final_step: bool = True


def _alg(v: dict) -> str:
    return algorithms.display_name(v["algorithm"])


def _model(v: dict) -> str:
    return MODELS.get(v["model"], v["model"])


def _locomotion(t: pd.DataFrame) -> pd.Series:
    return ~t["task"].str.startswith("antmaze") & t["algorithm"].isin(TABLE3_ALGORITHMS)


def _antmaze(t: pd.DataFrame) -> pd.Series:
    return t["task"].str.startswith("antmaze") & t["algorithm"].isin(TABLE3_ALGORITHMS)


def _table3_keys(v: dict) -> dict:
    """The paper's number for a Table 3/11 cell: GMPO/GMPG by model; a baseline by name alone (the paper reports
    each baseline once, with its own model: DDPM for Diffusion-QL, VPSDE or DDPM for IDQL)."""
    keys = {"task": v["task"], "algorithm": _alg(v)}
    return {**keys, "model": _model(v)} if v["algorithm"] in ("gmpo", "gmpg") else keys


def _table10_keys(v: dict) -> dict:
    """The paper's number for a Table 10 cell (and, per task, for Table 5's averages)."""
    return {"task": v["task"], "algorithm": _alg(v), "model": _model(v), "function": v["prediction"]}


# --- numbers ----------------------------------------------------------------------------------------------------

def _norm(value) -> str:
    """One text form for CSV and Parquet values (4 == 4.0 == '4')."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def trials(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: its config, final and best normalised score. final_score is NaN for a trial that
    diverged (its final row's score is NaN) or has no final row (it errored for good, or is still running)."""
    if rows.empty:
        return pd.DataFrame()
    rows = rows.copy()
    rows["final"] = rows["final"].fillna(False).astype(bool)
    best = rows.groupby("trial_id")["score_mean"].max().rename("best_score")
    last = rows.sort_values(["final", "step"]).groupby("trial_id").tail(1).set_index("trial_id")  # final row last
    out = last.rename(columns={"score_mean": "final_score"}).join(best).join(_seen_protocols(rows))
    out.loc[~out["final"], "final_score"] = math.nan
    return out.reset_index()


def _protocol_text(value) -> str:
    """A protocol cell in _norm's text form; 'not recorded' for a missing one."""
    return "not recorded" if value is None or (np.ndim(value) == 0 and pd.isna(value)) else _norm(value)


def _seen_protocols(rows: pd.DataFrame) -> pd.DataFrame:
    """Per trial, column seen_<key> for each PROTOCOL_KEYS column the rows have: the sorted texts of its values over
    the trial's rows (more than one when a trial's own rows differ)."""
    keys = [k for k in PROTOCOL_KEYS if k in rows]
    if not keys:
        return pd.DataFrame(index=pd.Index(rows["trial_id"].unique(), name="trial_id"))
    text = rows[keys].map(_protocol_text)
    return text.groupby(rows["trial_id"]).agg(lambda v: tuple(sorted(set(v)))).add_prefix("seen_")


def finished(t: pd.DataFrame) -> pd.DataFrame:
    """The trials of t with a finite final score: the ones a cell's final and best are both computed over."""
    return t[np.isfinite(t["final_score"].astype(float))]


# after a cell "(k/n seeds)"; in the caption of a table with such a cell
PARTIAL_NOTE = (" (k/n seeds): only k of the cell's n seeds ended with a finite score; the others diverged or "
                "stopped without a final evaluation, and both final and best are over the k.")


def _partial(group: pd.DataFrame) -> str:
    """' (k/n seeds)' when only k of the group's n trials have a finite final score, else ''."""
    k = len(finished(group))
    return f" ({k}/{len(group)} seeds)" if k < len(group) else ""


def _stat(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna().to_numpy(dtype=float)
    return (float(v.mean()), float(v.std()), len(v)) if len(v) else (math.nan, math.nan, 0)


def _fmt(mean: float, std: float, latex: bool = False) -> str:
    if math.isnan(mean):
        return "–"
    pm = "$\\pm$" if latex else " ± "
    return f"{mean:.1f}" if math.isnan(std) else f"{mean:.1f}{pm}{std:.1f}"


def reference(file: str) -> pd.DataFrame:
    """A reference CSV with every cell in _norm's text form."""
    return pd.read_csv(REFERENCE / file, dtype=str).fillna("")


def reference_row(ref: pd.DataFrame, keys: dict) -> pd.Series | None:
    """The first reference row matching keys (compared in _norm's text form), or None."""
    hit = ref
    for column, value in keys.items():
        hit = hit[hit[column].map(_norm) == _norm(value)]
    return None if hit.empty else hit.iloc[0]


def paper_number(ref: pd.DataFrame, keys: dict) -> tuple[float, float]:
    """(mean, std) of the reference row matching keys; NaNs where the paper has none."""
    row = reference_row(ref, keys)
    if row is None:
        return math.nan, math.nan
    return float(row["mean"]), float(row["std"]) if row.get("std", "") != "" else math.nan


def _rank(value: str) -> int:
    """A string key's place: a task's in the paper, an algorithm's in the registry, a model's or solver's; else 99."""
    order = algorithms.in_order()
    return TASK_ORDER[value] if value in TASK_ORDER else order.index(value) if value in order else ORDER.get(value, 99)


def _sort_key(value) -> tuple:
    if isinstance(value, str):
        return (_rank(value), value)
    return (999, "") if pd.isna(value) else (0, float(value))


def _sorted_groups(t: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """t's groups by keys, in the tables' order."""
    return sorted(t.groupby(keys), key=lambda kv: tuple(map(_sort_key, kv[0])))


# --- protocols ---------------------------------------------------------------------------------------------------

class MixedProtocol(ValueError):
    """The trials of one table cell were evaluated under different protocols; the message is the one line to print."""


def _value_order(text: str) -> tuple:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _cell_name(keys: list[str], values: tuple) -> str:
    """A pool's key values as the --only filter reads them: strings as they are, numbers as key=value."""
    return ", ".join(v if isinstance(v, str) else f"{k}={_norm(v)}" for k, v in zip(keys, values))


def _difference(g: pd.DataFrame, same_final_step: bool) -> tuple[str, list[str]] | None:
    """The first protocol field the trials of g differ in, with its values; None when they agree."""
    for key in PROTOCOL_KEYS:
        if f"seen_{key}" in g:
            values = sorted(set().union(*g[f"seen_{key}"]), key=_value_order)
            if len(values) > 1:
                return key, values
    steps = sorted({_norm(s) for s in finished(g)["step"]}, key=_value_order) if same_final_step else []
    return ("the gradient step of the final evaluation", steps) if len(steps) > 1 else None


def check_pools(table: str, t: pd.DataFrame, keys: list[str], same_final_step: bool = True) -> None:
    """Raise MixedProtocol when the trials pooled in one cell (the same values of keys, and of task) differ in a
    protocol column (PROTOCOL_KEYS: episodes, reference returns and source, dataset id, content hash) or, when
    same_final_step, in the step of their final evaluation (what 'final' means); the message is one line naming the
    table, the cell, the field and its values."""
    keys = list(dict.fromkeys([*keys, "task"]))
    groups = sorted(t.groupby(keys, dropna=False), key=lambda kv: tuple(map(_sort_key, kv[0])))
    for values, g in groups:
        found = _difference(g, same_final_step)
        if found:
            field_name, seen = found
            raise MixedProtocol(f"{table} cell ({_cell_name(keys, values)}): rows differ in {field_name} "
                                f"({' vs '.join(seen)}); rerun or filter with --only")


def only(rows: pd.DataFrame, filters: list[str]) -> pd.DataFrame:
    """The rows whose column KEY reads VALUE (in _norm's text form) for every 'KEY=VALUE' of filters."""
    for item in filters:
        key, eq, value = item.partition("=")
        if not eq or key not in rows:
            raise ValueError(f"--only {item!r}: expected KEY=VALUE with KEY a column of the rows")
        rows = rows[rows[key].map(_protocol_text) == _norm(value)]
    return rows


def _recorded(t: pd.DataFrame, key: str) -> bool:
    return key in t and t[key].notna().any()


def _evaluation(t: pd.DataFrame) -> str:
    """Episodes per evaluation (per task where they differ) and the seeds."""
    seeds = sorted({_norm(s) for s in t["seed"].dropna()}, key=_value_order) if "seed" in t else []
    seed_text = f"{len(seeds)} seed(s): {', '.join(seeds)}" if seeds else "seeds not recorded"
    if not _recorded(t, "eval_episodes"):
        return f"Evaluation: episodes per evaluation not recorded in the rows; {seed_text}."
    by_task: dict[str, list[str]] = {}
    for task, g in sorted(t.groupby("task"), key=lambda kv: _sort_key(kv[0])):
        episodes = " and ".join(sorted({_protocol_text(v) for v in g["eval_episodes"]}, key=_value_order))
        by_task.setdefault(episodes, []).append(task)
    if len(by_task) == 1:
        return f"Evaluation: {next(iter(by_task))} episode(s) per evaluation; {seed_text}."
    parts = "; ".join(f"{episodes} for {', '.join(tasks)}" for episodes, tasks in by_task.items())
    return f"Evaluation: episodes per evaluation {parts}; {seed_text}."


def _references(row: pd.Series) -> str:
    """A trial's reference returns and their source, as a caption says them."""
    source = _protocol_text(row.get("ref_source"))
    if source == "none":
        return "no reference returns"
    if source == "success":
        return "scored by success rate x 100"
    low, high = row.get("ref_min_score"), row.get("ref_max_score")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"reference returns not recorded (source: {source})"
    return f"reference returns {float(low):.6g} to {float(high):.6g} (source: {source})"


def _dataset(row: pd.Series) -> str:
    """'task -> dataset id (content hash, reference returns and their source)' for one trial's protocol; the config's
    dataset where the rows record no id."""
    if all(pd.isna(row.get(k)) for k in PROTOCOL_KEYS):  # rows written before the protocol columns
        return f"{row['task']} -> {row['dataset']}"
    recorded = _protocol_text(row.get("dataset_id"))
    used = row["dataset"] if recorded == "not recorded" else recorded
    parts = ["dataset id not recorded"] if recorded == "not recorded" else []
    parts += [f"asked for {row['dataset']}"] if _norm(row["dataset"]) != used else []
    parts += [f"content hash {_protocol_text(row.get('data_hash'))[:12]}", _references(row)]
    return f"{row['task']} -> {used} ({', '.join(parts)})"


def _datasets(t: pd.DataFrame) -> str:
    """Each distinct dataset and protocol of t's trials, in the tasks' order."""
    columns = ["task", "dataset"] + [k for k in PROTOCOL_KEYS if k in t]
    used = t[columns].astype(object).drop_duplicates()
    used = used.iloc[sorted(range(len(used)), key=lambda i: _sort_key(used.iloc[i]["task"]))]
    return "; ".join(dict.fromkeys(_dataset(row) for _, row in used.iterrows()))


# --- tables ------------------------------------------------------------------------------------------------------

@dataclass
class Table:
    """A filled table: header, rows of cells, caption."""

    key: str
    title: str
    header: list[str]
    body: list[list[str]]
    body_tex: list[list[str]]
    caption: str


def _name(column: str, value) -> str:
    """A key column's value as a table shows it: a name from NAMES, the value itself, or a number's _norm form."""
    if not isinstance(value, str):
        return _norm(value)
    return NAMES[column](value) if column in NAMES else value


def _label(columns: list[str], values: tuple) -> str:
    parts = [_name(c, v) for c, v in zip(columns, values)]
    if columns == ["beta"]:
        return f"beta={parts[0]}"
    if columns == ["train_steps"]:
        return f"T={parts[0]}"
    return " ".join(parts)


def _cells(group: pd.DataFrame, paper: tuple[float, float], latex: bool) -> str:
    ok = finished(group)
    final, best = _stat(ok["final_score"]), _stat(ok["best_score"])
    sep = " / "
    text = f"{_fmt(final[0], final[1], latex)}{sep}{_fmt(best[0], best[1], latex)}{_partial(group)}"
    return f"{text} [{_fmt(*paper, latex)}]" if not math.isnan(paper[0]) else text


# what score_mean is normalised with, by the rows' ref_source (genrl_core.data.loading.score_references)
SCALES = {"d4rl": "D4RL-normalised score (D4RL's reference returns: the papers' scale)",
          "dataset": "score normalised by the dataset's own reference returns (not D4RL's: not the papers' scale)",
          "none": "no reference returns (no normalised score)",
          "success": "success rate x 100 (evaluation episodes end at the goal, as D4RL's AntMaze: the papers' scale)"}
SHORT_SCALES = {"d4rl": "D4RL-normalised", "dataset": "normalised by the dataset's own references",
                "none": "no references", "success": "success rate x 100"}
# AntMaze rows scored before the success-rate evaluation: their score is time near the goal, not Table 11's number
OLD_ANTMAZE_NOTE = (" AntMaze rows not scored by success rate (ref_source {sources}: made before episodes ended at the "
                    "goal) measure time spent near the goal, not the success rate the papers report.")


def score_scale(t: pd.DataFrame) -> str:
    """The references the scores of t are normalised with, from its ref_source column (per task when they differ)."""
    if "ref_source" not in t or t["ref_source"].isna().all():
        return "normalised score (reference source not recorded in the rows)"
    by_task = t.dropna(subset=["ref_source"]).groupby("task")["ref_source"].agg(lambda v: ", ".join(sorted(set(v))))
    sources = set(by_task)
    if len(sources) == 1 and next(iter(sources)) in SCALES:
        return SCALES[next(iter(sources))]
    parts = {}
    for task, source in sorted(by_task.items(), key=lambda kv: _sort_key(kv[0])):
        parts.setdefault(" + ".join(SHORT_SCALES.get(s, s) for s in source.split(", ")), []).append(task)
    return "normalised score: " + "; ".join(f"{scale} for {', '.join(tasks)}" for scale, tasks in parts.items())


def _provenance(t: pd.DataFrame) -> str:
    """Gradient steps, preset, evaluation episodes and seeds, and per task the dataset used with its id, content hash
    and reference returns (with their source)."""
    datasets = _datasets(t)
    steps = ", ".join(str(int(s)) for s in sorted(t["steps"].unique()))
    preset = ", ".join(sorted(t["preset"].dropna().unique())) if "preset" in t else ""
    smoke = (" Smoke preset: each paper task is stood in for by a small locally made Pendulum-v1 dataset of the "
             "same kind, so the numbers only show that the pipeline runs." if "smoke" in preset else "")
    local = (" Local preset: each paper task is stood in for by a D4RL-style set made on this machine (python -m "
             "genrl_core.datasets make: SAC 200k steps, 100k-step sets), trained at CPU budgets (batch 256, 256x3 MLP "
             "backbones, the gradient steps above), far from the paper's scale." if "local" in preset else "")
    return f"Gradient steps: {steps}. Preset: {preset}. {_evaluation(t)} Datasets used: {datasets}.{smoke}{local}"


# Settings of the paper preset that are the authors' code's, not the paper's text (tune_jobs.config.authors_settings)
AUTHORS_CHOICES = {
    ("gmpo", "halfcheetah-medium-v2"): "GMPO halfcheetah-medium beta 8 (authors' config, Tables 3 and 12; Table 8: 1)",
    ("gmpg", "walker2d-medium-replay-v2"): "GMPG walker2d-medium-replay beta 8 (authors' config; Table 8: 4)",
}


LOCAL_CHOICES = ("GMPO/GMPG: the authors' per-task beta, clamps and learning rates with the local preset's phases (a 50k-step "
                 "critic, GMPG's mu 50k steps, then GMPO 20k and GMPG 100 policy steps), GMPG's T = 16 (authors: 1000) "
                 "and batch 256 (authors: 4096; GMPG's policy 40960); GMPG's beta 1 where the beta ablation does not "
                 "set it (authors: 20 on hopper-medium, 8 on medium-replay; behind the short critic a larger beta "
                 "scored lower, tune_jobs.config.LOCAL_OVER_AUTHORS)")


def _departures(t: pd.DataFrame) -> str:
    """The paper and local presets' choices that are not the paper's text, for the trials of a table."""
    presets = set(t["preset"].dropna()) if "preset" in t else set()
    if "local" in presets and set(t["algorithm"]) & {"gmpo", "gmpg"}:
        return f" Not the paper's: {LOCAL_CHOICES}."
    if "paper" not in presets:
        return ""
    pairs = set(zip(t["algorithm"], t["task"]))
    notes = [text for key, text in AUTHORS_CHOICES.items() if key in pairs]
    if any(a == "gmpg" and task.startswith("antmaze") for a, task in pairs):
        notes.append("GMPG on AntMaze: Table 8's beta (the authors' AntMaze configs never read theirs)")
    if pairs & {("gmpo", task) for task in t["task"]} or pairs & {("gmpg", task) for task in t["task"]}:
        notes.append("GMPO/GMPG: the authors' per-task learning rates, clamps, batches and phases (epochs as steps "
                     "for the dataset used), GMPG's log-ratio in bits per dimension, minibatches drawn with "
                     "replacement (theirs: passes without)")
    return f" Settings from the authors' code, not the paper's text: {'; '.join(notes)}." if notes else ""


def _old_antmaze(t: pd.DataFrame) -> str:
    """OLD_ANTMAZE_NOTE when t has AntMaze rows whose scores are not success rates, else ''."""
    if "ref_source" not in t:
        return ""
    old = t[t["task"].str.startswith("antmaze") & (t["ref_source"].fillna("not recorded") != "success")]
    return OLD_ANTMAZE_NOTE.format(sources=", ".join(sorted(set(old["ref_source"].fillna("not recorded"))))) \
        if len(old) else ""


def _caption(t: pd.DataFrame, title: str) -> str:
    seeds = t["seed"].nunique()
    scale = score_scale(t)
    return (f"{title}. {scale[:1].upper() + scale[1:]}. Each cell: final evaluation (the trial's last) / best "
            f"evaluation (its highest during training), mean ± std over {seeds} seed(s) [paper's number]. "
            f"{_provenance(t)}{_departures(t)}{_old_antmaze(t)}")


def grid(spec: Spec, t: pd.DataFrame) -> Table:
    """A spec's trials as a grid: a row per spec.rows key, a column per spec.cols key, each cell beside the paper."""
    ref = reference(spec.ref_file)
    row_keys = sorted({tuple(r) for r in t[spec.rows].itertuples(index=False)}, key=lambda k: tuple(map(_sort_key, k)))
    col_keys = sorted({tuple(r) for r in t[spec.cols].itertuples(index=False)}, key=lambda k: tuple(map(_sort_key, k)))
    header = [c.capitalize() for c in spec.rows] + [_label(spec.cols, c) for c in col_keys]
    body, body_tex, partial = [], [], False
    for rk in row_keys:
        names = [_name(c, v) for c, v in zip(spec.rows, rk)]
        line, line_tex = list(names), list(names)
        for ck in col_keys:
            values = dict(zip(spec.rows + spec.cols, rk + ck))
            group = t[np.logical_and.reduce([t[k].map(_norm) == _norm(v) for k, v in values.items()])]
            paper = paper_number(ref, spec.ref_keys(values))
            line.append(_cells(group, paper, False) if len(group) else "–")
            line_tex.append(_cells(group, paper, True) if len(group) else "–")
            partial = partial or bool(_partial(group))
        body.append(line)
        body_tex.append(line_tex)
    caption = _caption(t, spec.title) + (PARTIAL_NOTE if partial else "")
    return Table(spec.key, spec.title, header, body, body_tex, caption)


def average_over_tasks(spec: Spec, t: pd.DataFrame) -> Table:
    """Table 5's form: a row per spec.rows key, its one cell averaged over the tasks t covers (the paper's number:
    its average over the same tasks)."""
    ref = reference(spec.ref_file)
    body, tasks, partial = [], sorted(t["task"].unique(), key=_sort_key), False
    for key, g in _sorted_groups(t, spec.rows):
        values = dict(zip(spec.rows, key))
        per_task = finished(g).groupby("task")[["final_score", "best_score"]].mean()
        papers = [paper_number(ref, spec.ref_keys({**values, "task": task}))[0] for task in tasks]
        paper = float(np.mean(papers)) if not any(math.isnan(p) for p in papers) else math.nan
        cell = (f"{_fmt(per_task['final_score'].mean(), math.nan)} / {_fmt(per_task['best_score'].mean(), math.nan)}"
                f"{_partial(g)}")
        partial = partial or bool(_partial(g))
        names = [_name(c, v) for c, v in values.items()]
        body.append(names + [cell + (f" [{paper:.1f}]" if not math.isnan(paper) else "")])
    scale = score_scale(t)
    caption = (f"{spec.title} ({len(tasks)} task(s): {', '.join(tasks)}). {scale[:1].upper() + scale[1:]}. Each cell: "
               f"final evaluation "
               f"(the trial's last) / best evaluation (its highest during training), the mean over tasks of the seed "
               f"means [paper's average over the same tasks]. {_provenance(t)}" + (PARTIAL_NOTE if partial else ""))
    header = [c.capitalize() for c in spec.rows] + ["Average"]
    return Table(spec.key, spec.title, header, body, body, caption)


def best_beta(spec: Spec, t: pd.DataFrame) -> Table:
    """Table 8's form: per spec.rows key (with an algorithm), the beta of its best trial against the paper's (the
    reference row of spec.ref_keys, column beta_<algorithm>)."""
    ref = reference(spec.ref_file)
    body = []
    for key, g in _sorted_groups(t, spec.rows):
        values = dict(zip(spec.rows, key))
        ok = finished(g)  # diverged or failed trials have no final score to rank by
        done = ok[ok["stop_reason"] == "completed"]  # trials ASHA let run to the end
        pool = done if len(done) else ok
        best = pool.loc[pool["final_score"].idxmax()] if len(pool) else None
        found = ["–", "–"] if best is None else [f"{best['beta']:.3g}", f"{best['final_score']:.1f}"]
        row = reference_row(ref, spec.ref_keys(values))
        paper = row.get(f"beta_{values['algorithm']}", "") if row is not None else ""
        body.append([_name(c, v) for c, v in values.items()] + [*found, str(len(g)), paper or "–"])
    header = [c.capitalize() for c in spec.rows] + ["beta found", "final score", "trials", "paper beta"]
    caption = (f"{spec.title}: the beta of the trial with the best final evaluation (the trial's last) among those "
               f"ASHA ran to the end, whose final score is given as {score_scale(t)}. {_provenance(t)}")
    return Table(spec.key, spec.title, header, body, body, caption)


SPECS = [  # in the papers' order
    Spec("table3", "Table 3: D4RL locomotion, GMPO (GVP), GMPG (VPSDE) and the baselines", "benchmark", ["task"],
         ["algorithm", "model"], "table3_d4rl_locomotion.csv", _table3_keys, _locomotion),
    Spec("table5", "Table 5: model types, average over tasks", "model_ablation", ["algorithm", "model", "prediction"],
         [], "table10_model_types.csv", _table10_keys, fill=average_over_tasks),
    Spec("table6", "Table 6: GMPG training solver steps T", "steps_ablation", ["task", "algorithm", "model"],
         ["train_steps"], "table6_gmpg_sampling_steps.csv",
         lambda v: {"task": v["task"], "algorithm": _alg(v), "model": _model(v), "train_steps_T": v["train_steps"]}),
    Spec("table8", "Table 8: beta per task found by OptunaSearch + ASHA", "tune_beta", ["task", "algorithm"], [],
         "table8_beta_per_task.csv", lambda v: {"task": v["task"]}, fill=best_beta, same_final_step=False),
    Spec("table10", "Table 10: generative model types", "model_ablation", ["task"],
         ["algorithm", "model", "prediction"], "table10_model_types.csv", _table10_keys),
    Spec("table11", "Table 11: D4RL AntMaze (success rate), GMPO (GVP), GMPG (VPSDE) and the baselines", "benchmark",
         ["task"], ["algorithm", "model"], "table11_antmaze.csv", _table3_keys, _antmaze),
    Spec("table12", "Table 12: temperature beta", "beta_ablation", ["task", "algorithm", "model"], ["beta"],
         "table12_beta.csv",
         lambda v: {"task": v["task"], "algorithm": _alg(v), "model": _model(v), "beta": v["beta"]}),
    Spec("table13", "Table 13: sampling solvers", "solver_ablation", ["task", "algorithm", "model"],
         ["solver", "sampling_steps"], "table13_solvers.csv",
         lambda v: {"task": v["task"], "algorithm": _alg(v), "model": _model(v),
                    "solver": SOLVERS.get(v["solver"], v["solver"]), "steps": v["sampling_steps"]}),
    Spec("gtp_table1", "GTP Table 1: behaviour cloning with Generative Trajectory Policies (GTP-BC)", "benchmark",
         ["task"], ["algorithm"], "gtp_table1_bc.csv", lambda v: {"task": v["task"], "algorithm": _alg(v)},
         lambda t: t["algorithm"] == "gtp_bc"),
    Spec("gtp_table2", "GTP Table 2: offline RL with Generative Trajectory Policies", "benchmark", ["task"],
         ["algorithm"], "gtp_table2_offline_rl.csv", lambda v: {"task": v["task"], "algorithm": _alg(v)},
         lambda t: t["algorithm"] == "gtp"),
]


def build(spec: Spec, t: pd.DataFrame) -> Table | None:
    """The filled table of a spec from its sweep's trials t, or None when t has no trials the spec keeps. Raises
    MixedProtocol when the trials of one of its cells were evaluated under different protocols (check_pools)."""
    if t.empty:
        return None
    t = t[spec.keep(t)]
    if t.empty:
        return None
    check_pools(spec.key, t, spec.rows + spec.cols, spec.same_final_step)
    return (spec.fill or grid)(spec, t)


def markdown(table: Table) -> str:
    """The table as GitHub Markdown with its caption."""
    lines = [f"### {table.title}", "", "| " + " | ".join(table.header) + " |",
             "|" + "|".join("---" for _ in table.header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table.body]
    return "\n".join(lines + ["", f"*{table.caption}*", ""])


def _tex(text: str) -> str:
    return text.replace("_", "\\_").replace("%", "\\%").replace("&", "\\&").replace("±", "$\\pm$")


def latex(table: Table) -> str:
    """The table as a LaTeX table (booktabs)."""
    cols = "l" * len(table.header)
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{_tex(table.caption)}}}",
             f"\\label{{tab:{table.key}}}", "\\small", f"\\begin{{tabular}}{{{cols}}}", "\\toprule",
             " & ".join(_tex(h) for h in table.header) + " \\\\", "\\midrule"]
    lines += [" & ".join(c if "$" in c else _tex(c) for c in row) + " \\\\" for row in table.body_tex]
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""])


def all_tables(rows: pd.DataFrame, reps: int = 2000, level: float = 0.95, baseline: str | None = None,
               seed: int = 0) -> list[Table]:
    """Every table the results cover, in the papers' order, then each sweep's aggregate statistics (reps bootstrap
    resamples, level the confidence level; probability of improvement over `baseline` when given). A table whose
    cells would pool different protocols, and a sweep too small for statistics, is left out with one line on stderr."""
    by_sweep = {s: trials(g) for s, g in rows.groupby("sweep")} if len(rows) else {}
    tables = []
    for spec in SPECS:
        try:
            tables.append(build(spec, by_sweep.get(spec.sweep, pd.DataFrame())))
        except MixedProtocol as refusal:
            print(refusal, file=sys.stderr)
    for sweep, t in by_sweep.items():
        tables += aggregate_tables(sweep, t, reps, level, baseline, seed)
    return [table for table in tables if table is not None]


# --- estimators: Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice" ------------
# (NeurIPS 2021) and their library rliable, in numpy (rliable 1.2.0 installs beside this environment's numpy, scipy,
# pandas and torch but does not import: its dependency arch 7.2 fails on pandas 3). Scores: a runs x tasks matrix (a
# run: one seed of a configuration on one task, scored by its final evaluation) or per task its runs' scores (tasks
# with different numbers of runs); NaNs (runs without a score) are dropped.
#   IQM: the mean of the middle 50% of all runs' scores pooled over tasks (scipy.stats.trim_mean(x, 0.25) of the
#     flattened matrix: int(N/4) scores cut from each end); mean: the mean over tasks of each task's mean;
#   probability of improvement P(X > Y): the mean over tasks of the Mann-Whitney U of X's runs against Y's / (n m)
#     (ties count 1/2);
#   stratified bootstrap: runs resampled with replacement within each task (X's and Y's independently for P(X > Y)),
#     the interval the percentiles of the resampled statistic (rliable's default, 'percentile');
#   performance profile: the fraction of all runs scoring above tau (rliable's score distribution).

Scores = Union[np.ndarray, Sequence[Sequence[float]]]  # runs x tasks, or per task: its runs' scores
Batch = list[np.ndarray]  # per task: (resamples, runs) scores
Statistic = Callable[[Batch], np.ndarray]  # per-task batches -> one value per resample


@dataclass(frozen=True)
class Estimate:
    """A point estimate with the bounds of its confidence interval."""

    point: float
    low: float
    high: float


def per_task(scores: Scores) -> list[np.ndarray]:
    """Each task's runs (finite scores only) from a runs x tasks matrix or a list of per-task sequences."""
    if isinstance(scores, np.ndarray):
        if scores.ndim != 2:
            raise ValueError(f"a score matrix is runs x tasks, got shape {scores.shape}")
        columns = [scores[:, j] for j in range(scores.shape[1])]
    else:
        columns = [np.asarray(s, dtype=float) for s in scores]
    tasks = [c[np.isfinite(c)].astype(float) for c in columns]
    if not tasks or any(len(c) == 0 for c in tasks):
        raise ValueError("every task needs at least one run with a finite score")
    return tasks


def _batch(tasks: list[np.ndarray]) -> Batch:
    """The scores themselves as a batch of one resample."""
    return [t[None, :] for t in tasks]


def iqm_batch(batch: Batch) -> np.ndarray:
    """IQM of each resample: the 25%-trimmed mean of all its runs pooled over tasks (scipy.stats.trim_mean's cut)."""
    pooled = np.sort(np.concatenate(batch, axis=1), axis=1)
    cut = int(0.25 * pooled.shape[1])
    return pooled[:, cut:pooled.shape[1] - cut].mean(axis=1)


def mean_batch(batch: Batch) -> np.ndarray:
    """Mean of each resample: the mean over tasks of the task means."""
    return np.mean([b.mean(axis=1) for b in batch], axis=0)


def aggregate_iqm(scores: Scores) -> float:
    """Interquartile mean of all runs pooled over tasks."""
    return float(iqm_batch(_batch(per_task(scores)))[0])


def aggregate_mean(scores: Scores) -> float:
    """Mean over tasks of each task's mean score."""
    return float(mean_batch(_batch(per_task(scores)))[0])


def improvement_batch(x: Batch, y: Batch) -> np.ndarray:
    """P(X > Y) of each resample: per task the share of (x, y) run pairs with x > y (ties 1/2), averaged over tasks."""
    per = [((a[:, :, None] > b[:, None, :]) + 0.5 * (a[:, :, None] == b[:, None, :])).mean(axis=(1, 2))
           for a, b in zip(x, y)]
    return np.mean(per, axis=0)


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """P(X > Y): the mean over tasks of U / (n m), U the Mann-Whitney statistic of X's runs against Y's."""
    tx, ty = per_task(x), per_task(y)
    if len(tx) != len(ty):
        raise ValueError(f"X has {len(tx)} tasks and Y {len(ty)}: probability of improvement needs the same tasks")
    return float(improvement_batch(_batch(tx), _batch(ty))[0])


def resample(tasks: list[np.ndarray], reps: int, rng: np.random.Generator) -> Batch:
    """reps stratified bootstrap resamples: each task's runs drawn with replacement from that task's runs."""
    return [t[rng.integers(0, len(t), size=(reps, len(t)))] for t in tasks]


def _bounds(values: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of a bootstrap distribution at confidence level `level`."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return float(low), float(high)


def interval(scores: Scores, statistic: Statistic, reps: int = 2000, level: float = 0.95, seed: int = 0) -> Estimate:
    """A statistic (iqm_batch, mean_batch) of the scores with its stratified bootstrap percentile interval."""
    tasks = per_task(scores)
    point = float(statistic(_batch(tasks))[0])
    low, high = _bounds(statistic(resample(tasks, reps, np.random.default_rng(seed))), level)
    return Estimate(point, low, high)


def improvement_interval(x: Scores, y: Scores, reps: int = 2000, level: float = 0.95, seed: int = 0) -> Estimate:
    """P(X > Y) with its bootstrap percentile interval (X's and Y's runs resampled independently within each task)."""
    point = probability_of_improvement(x, y)
    rng = np.random.default_rng(seed)
    boot = improvement_batch(resample(per_task(x), reps, rng), resample(per_task(y), reps, rng))
    return Estimate(point, *_bounds(boot, level))


def profile_batch(batch: Batch, taus: np.ndarray) -> np.ndarray:
    """(resamples, taus): the fraction of each resample's runs, pooled over tasks, with a score above each tau."""
    pooled = np.concatenate(batch, axis=1)
    return (pooled[:, :, None] > taus[None, None, :]).mean(axis=1)


def performance_profile(scores: Scores, taus: Sequence[float], reps: int = 2000, level: float = 0.95,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The score distribution at each tau (fraction of runs above it) and the bounds of its bootstrap interval."""
    tasks, taus = per_task(scores), np.asarray(taus, dtype=float)
    point = profile_batch(_batch(tasks), taus)[0]
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(profile_batch(resample(tasks, reps, np.random.default_rng(seed)), taus),
                              [tail, 100 - tail], axis=0)
    return point, low, high


def plot_performance_profiles(scores: Mapping[str, Scores], path: Path, title: str, reps: int = 2000,
                              level: float = 0.95, seed: int = 0, xlabel: str = "normalised score (tau)") -> None:
    """A performance-profile PNG: per configuration, the fraction of runs scoring above tau, with its interval."""
    import matplotlib.pyplot as plt

    values = np.concatenate([np.concatenate(per_task(s)) for s in scores.values()])
    taus = np.linspace(values.min(), values.max(), 101) if values.min() < values.max() else values[:1]
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, s in scores.items():
        point, low, high = performance_profile(s, taus, reps, level, seed)
        ax.plot(taus, point, label=label)
        ax.fill_between(taus, low, high, alpha=0.15)
    ax.set(xlabel=xlabel, ylabel="fraction of runs with score > tau", ylim=(-0.02, 1.02))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- aggregate statistics ----------------------------------------------------------------------------------------

@dataclass
class Runs:
    """A sweep's runs for aggregate statistics: per configuration (by label) its key values and, per task, the final
    scores of its seeds."""

    sweep: str
    keys: list[str]  # the configuration keys the sweep varies
    values: dict[str, tuple]  # label -> the keys' values
    scores: dict[str, list[np.ndarray]]  # label -> per task of `tasks`, its runs' final scores
    tasks: list[str]
    used: pd.DataFrame  # the trials behind the scores
    notes: list[str]  # what was left out, for the caption


def _config_keys(t: pd.DataFrame) -> list[str]:
    """The configuration keys a sweep's trials vary (the algorithm when none does)."""
    return [k for k in CONFIG_KEYS if k in t and t[k].astype(str).nunique() > 1] or ["algorithm"]


def _config_name(keys: list[str], values: tuple) -> str:
    """A configuration's label: names (display names for algorithms), numbers as key=value."""
    return " ".join(_name(k, v) if isinstance(v, str) else f"{k}={_norm(v)}"
                    for k, v in zip(keys, values) if not pd.isna(v))


def sweep_runs(sweep: str, t: pd.DataFrame) -> Runs | str:
    """A sweep's runs per configuration on the tasks where every configuration kept has 2 or more seeds with a final
    score, or a one-line reason why there are no statistics (fewer than 2 such configurations). Raises MixedProtocol
    when the trials of one configuration on one task were evaluated under different protocols."""
    name, keys = f"aggregate_{sweep}", _config_keys(t)
    check_pools(name, t, keys)
    ok, kept, notes = finished(t), {}, []
    for values, g in sorted(ok.groupby(keys, dropna=False), key=lambda kv: tuple(map(_sort_key, kv[0]))):
        counts = g.groupby("task").size()
        if (counts >= 2).any():
            kept[_config_name(keys, values)] = (values, g, set(counts[counts >= 2].index))
        else:
            notes.append(f"{_config_name(keys, values)} left out (fewer than 2 runs on every task)")
    if len(kept) < 2:
        return f"{name}: skipped: {len(kept)} configuration(s) with 2 or more runs on a task; statistics need 2"
    common = set.intersection(*(tasks for _, _, tasks in kept.values()))
    if not common:
        return f"{name}: skipped: no task on which every configuration has 2 or more runs"
    tasks = sorted(common, key=_sort_key)
    left = sorted(set(ok["task"]) - common, key=_sort_key)
    notes += [f"tasks left out (not every configuration has 2 or more runs there): {', '.join(left)}"] if left else []
    notes += [f"{len(t) - len(ok)} trial(s) without a finite final score (diverged, or stopped without a final "
              f"evaluation) left out"] if len(ok) < len(t) else []
    scores = {label: [g.loc[g["task"] == task, "final_score"].to_numpy(dtype=float) for task in tasks]
              for label, (_, g, _) in kept.items()}
    used = pd.concat([g[g["task"].isin(common)] for _, g, _ in kept.values()])
    return Runs(sweep, keys, {label: v for label, (v, _, _) in kept.items()}, scores, tasks, used, notes)


def _estimate(e: Estimate, digits: int) -> str:
    """The text 'point [low, high]' of an Estimate."""
    return f"{e.point:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _statistics_caption(runs: Runs, reps: int, level: float) -> str:
    """What every aggregate caption says: tasks, seeds, runs, the bootstrap, what was left out and the protocol."""
    counts = sorted({sum(map(len, s)) for s in runs.scores.values()})
    per_config = str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    seeds = runs.used["seed"].nunique()
    scale = score_scale(runs.used)
    left = f" Left out: {'; '.join(runs.notes)}." if runs.notes else ""
    return (f"Over {len(runs.tasks)} task(s) ({', '.join(runs.tasks)}) and {seeds} seed(s): a run is one seed of a "
            f"configuration on one task, scored by its final evaluation (the trial's last); {per_config} run(s) per "
            f"configuration. {100 * level:g}% confidence intervals: percentiles of {reps} stratified bootstrap "
            f"resamples (runs drawn with replacement within each task).{left} {scale[:1].upper() + scale[1:]}. "
            f"{_provenance(runs.used)}")


def aggregate_table(runs: Runs, reps: int = 2000, level: float = 0.95, seed: int = 0) -> Table:
    """Per configuration: IQM and mean of its runs' final scores over the tasks, each with its bootstrap interval."""
    ci = f"[{100 * level:g}% CI]"
    header = [k.capitalize() for k in runs.keys] + [f"IQM {ci}", f"Mean {ci}", "Runs"]
    body = []
    for label, scores in runs.scores.items():
        names = ["–" if pd.isna(v) else _name(k, v) for k, v in zip(runs.keys, runs.values[label])]
        iqm = interval(scores, iqm_batch, reps, level, seed)
        mean = interval(scores, mean_batch, reps, level, seed)
        body.append(names + [_estimate(iqm, 1), _estimate(mean, 1), str(sum(map(len, scores)))])
    title = f"Aggregate statistics: {runs.sweep}"
    caption = (f"{title}. IQM: interquartile mean, the mean of the middle 50% of all runs' scores pooled over tasks; "
               f"Mean: the mean over tasks of each task's mean (Agarwal et al., NeurIPS 2021). "
               f"{_statistics_caption(runs, reps, level)}")
    return Table(f"aggregate_{runs.sweep}", title, header, body, body, caption)


def _baseline_columns(runs: Runs, baseline: str | None) -> list[str]:
    """The configurations a probability of improvement is taken over: those of `baseline` (an algorithm's name or
    display name, or a configuration's label), else all (with a line on stderr when baseline matches none)."""
    if baseline is None:
        return list(runs.scores)
    wanted = baseline.lower()
    found = [label for label, values in runs.values.items()
             if wanted == label.lower() or any(isinstance(v, str) and wanted in (v.lower(), _name(k, v).lower())
                                               for k, v in zip(runs.keys, values))]
    if not found:
        print(f"improvement_{runs.sweep}: baseline {baseline!r} is no configuration of the sweep; comparing all pairs",
              file=sys.stderr)
    return found or list(runs.scores)


def improvement_table(runs: Runs, baseline: str | None = None, reps: int = 2000, level: float = 0.95,
                      seed: int = 0) -> Table:
    """P(X > Y) for each configuration X (a row) over each other Y (a column; only the baseline's when given)."""
    columns = _baseline_columns(runs, baseline)
    body = [[x] + ["–" if x == y else _estimate(improvement_interval(runs.scores[x], runs.scores[y], reps,
                                                                            level, seed), 2) for y in columns]
            for x in runs.scores]
    title = f"Probability of improvement: {runs.sweep}"
    caption = (f"{title}. Each cell: P(X > Y), the probability that a run of the row's configuration X scores higher "
               f"than a run of the column's Y on the same task: the mean over tasks of the Mann-Whitney U statistic "
               f"divided by n m, ties counting 1/2 (Agarwal et al., NeurIPS 2021); for its interval X's and Y's runs "
               f"are resampled independently. {_statistics_caption(runs, reps, level)}")
    return Table(f"improvement_{runs.sweep}", title, ["X over Y"] + columns, body, body, caption)


def aggregate_tables(sweep: str, t: pd.DataFrame, reps: int = 2000, level: float = 0.95, baseline: str | None = None,
                     seed: int = 0) -> list[Table]:
    """A sweep's aggregate and probability-of-improvement tables; [] with one line on stderr when it has too few
    runs or one of its configurations pools different protocols on a task."""
    try:
        runs = sweep_runs(sweep, t)
    except MixedProtocol as refusal:
        print(refusal, file=sys.stderr)
        return []
    if isinstance(runs, str):
        print(runs, file=sys.stderr)
        return []
    return [aggregate_table(runs, reps, level, seed), improvement_table(runs, baseline, reps, level, seed)]


def plot_profiles(rows: pd.DataFrame, out: Path, reps: int = 2000, level: float = 0.95, seed: int = 0) -> list[Path]:
    """profile_<sweep>.png for each sweep with statistics: per configuration, the fraction of runs whose final score
    exceeds tau, with its bootstrap interval; returns the paths written."""
    written = []
    for sweep, g in rows.groupby("sweep"):
        try:
            runs = sweep_runs(sweep, trials(g))
        except MixedProtocol:
            continue
        if isinstance(runs, Runs):
            path = out / f"profile_{sweep}.png"
            title = (f"{sweep}: performance profiles over {len(runs.tasks)} task(s), final scores\n"
                     f"({100 * level:g}% CI, {reps} stratified bootstrap resamples)")
            plot_performance_profiles(runs.scores, path, title, reps, level, seed)
            written.append(path)
    return written


# --- plots -------------------------------------------------------------------------------------------------------

CONFIG_KEYS = ["algorithm", "model", "prediction", "solver", "sampling_steps", "train_steps", "beta"]


def _config_label(row: pd.Series, keys: list[str]) -> str:
    return " ".join(f"{k}={_norm(row[k])}" if k in ("beta", "train_steps", "sampling_steps") else str(row[k])
                    for k in keys if k in row and pd.notna(row[k]))


def _varying(rows: pd.DataFrame) -> list[str]:
    return [k for k in CONFIG_KEYS if k in rows and rows[k].astype(str).nunique() > 1] or \
        [k for k in ("algorithm",) if k in rows]


def plot_curves(rows: pd.DataFrame, sweep: str, path: Path) -> None:
    """Score against gradient steps, one panel per task, one line per configuration (mean ± std over seeds)."""
    import matplotlib.pyplot as plt

    tasks = sorted(rows["task"].unique(), key=_sort_key)
    keys = _varying(rows)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = rows[rows["task"] == task]
        for label, g in sub.groupby(sub.apply(lambda r: _config_label(r, keys), axis=1)):
            curve = g.groupby("step")["score_mean"].agg(["mean", "std"]).fillna(0.0)
            ax.plot(curve.index, curve["mean"], label=label)
            ax.fill_between(curve.index, curve["mean"] - curve["std"], curve["mean"] + curve["std"], alpha=0.15)
        dataset = ", ".join(sorted(sub["dataset"].unique()))
        ax.set(title=f"{task}\n({dataset})", xlabel="gradient steps", ylabel="normalised score")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6)
    fig.suptitle(f"{sweep}: learning curves (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_figure1(rows: pd.DataFrame, path: Path) -> bool:
    """Figure 1: log-likelihood of dataset actions against return, per task; star at each configuration's best.
    Evaluations before a policy phase (rows whose `phase` is behaviour or critic: mu, or the untrained policy, acted)
    are drawn as crosses and get no star."""
    import matplotlib.pyplot as plt

    rows = rows.dropna(subset=["loglik", "return_mean"])
    if rows.empty:
        return False
    tasks = sorted(rows["task"].unique(), key=_sort_key)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    keys = [k for k in ("algorithm", "model") if k in rows]
    for ax, task in zip(axes[0], tasks):
        sub = rows[rows["task"] == task]
        for label, g in sub.groupby(sub.apply(lambda r: _config_label(r, keys), axis=1)):
            before = g["phase"].isin(["behaviour", "critic"]) if "phase" in g else pd.Series(False, index=g.index)
            points = ax.scatter(g.loc[~before, "loglik"], g.loc[~before, "return_mean"], s=10, alpha=0.5, label=label)
            if before.any():
                ax.scatter(g.loc[before, "loglik"], g.loc[before, "return_mean"], s=14, marker="x", alpha=0.5,
                           color=points.get_facecolor()[0] if len(points.get_offsets()) else None,
                           label=f"{label} (before its policy phase)")
            if before.all():
                continue
            g = g[~before]
            best = g.loc[g["return_mean"].idxmax()]
            ax.scatter([best["loglik"]], [best["return_mean"]], marker="*", s=160, color=points.get_facecolor()[0],
                       edgecolors="black")
        datasets = ", ".join(sorted(sub["dataset"].unique()))
        ax.set(title=f"{task}\n({datasets})", xlabel="log-likelihood of dataset actions", ylabel="return")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle("Figure 1: log-likelihood vs return (star: best)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --- command line ------------------------------------------------------------------------------------------------

def write(rows: pd.DataFrame, out: Path, reps: int = 2000, level: float = 0.95, baseline: str | None = None,
          seed: int = 0) -> list[Table]:
    """Write every table (Markdown, LaTeX) and plot the results cover, the aggregate statistics with reps bootstrap
    resamples at confidence level `level` (seeded by seed); returns the tables."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    tables = all_tables(rows, reps, level, baseline, seed)
    for table in tables:
        (out / f"{table.key}.md").write_text(markdown(table))
        (out / f"{table.key}.tex").write_text(latex(table))
    (out / "tables.md").write_text("\n".join(markdown(t) for t in tables))
    for sweep, g in rows.groupby("sweep"):
        plot_curves(g, sweep, out / f"curves_{sweep}.png")
    plot_figure1(rows, out / "figure1_loglik_vs_return.png")
    plot_profiles(rows, out, reps, level, seed)
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="the sweeps' --storage (holding parquet/), or the parquet dir")
    p.add_argument("--out", default=None, help="output folder (default: <results>/tables)")
    p.add_argument("--sweep", default=None, help="only this sweep")
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                   help="only rows whose column KEY reads VALUE, e.g. eval_episodes=10 (repeatable)")
    p.add_argument("--baseline", default=None, metavar="NAME",
                   help="probability of improvement over this algorithm (or configuration label) only")
    p.add_argument("--bootstrap-reps", type=int, default=2000, help="stratified bootstrap resamples per interval")
    p.add_argument("--ci-level", type=float, default=0.95, help="confidence level of the intervals")
    args = p.parse_args(argv)
    root = args.results if Path(args.results).name == "parquet" else results_root(args.results)
    rows = read_rows(root, args.sweep)
    try:
        rows = only(rows, args.only) if len(rows) else rows
    except ValueError as error:
        p.error(str(error))
    if rows.empty:
        print(f"no results under {root}{' matching --only' if args.only else ''}; run a sweep first, e.g. python "
              f"sweeps/beta_ablation.py", file=sys.stderr)
        return 1
    out = Path(args.out or Path(args.results) / "tables")
    tables = write(rows, out, args.bootstrap_reps, args.ci_level, args.baseline)
    for table in tables:
        print(markdown(table))
    pngs = ", ".join(sorted(p.name for p in out.glob("*.png")))
    print(f"{len(tables)} table(s) as Markdown and LaTeX in {out}; plots: {pngs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
