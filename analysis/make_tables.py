"""Parquet results -> the papers' tables (Markdown and LaTeX) with the published numbers beside, and PNG plots.

    python analysis/make_tables.py --results results --out results/tables

Each table its sweeps cover is written as <out>/<table>.md and <out>/<table>.tex (and all Markdown is printed):
every cell is "final (mean ± std over seeds) / best (mean ± std) [paper mean ± std]" of the normalised score,
where final is a trial's last evaluation and best its best evaluation. Captions say so, name the references the
scores are normalised with (the rows' ref_source: D4RL's, the papers' scale, or the dataset's own) and the
dataset actually used for each task. Plots: <out>/curves_<sweep>.png (score against gradient steps per
configuration, mean ± std over seeds) and <out>/figure1_loglik_vs_return.png (the paper's Figure 1:
log-likelihood of dataset actions under the policy against its return, one point per evaluation, star at each
configuration's best).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from genrl_core import algorithms
from tune_jobs import config as C
from tune_jobs.results import read_rows, results_root

REFERENCE = Path(__file__).resolve().parent / "reference"
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
    out = last.rename(columns={"score_mean": "final_score"}).join(best)
    out.loc[~out["final"], "final_score"] = math.nan
    return out.reset_index()


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
    return (0, float(value))


def _sorted_groups(t: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """t's groups by keys, in the tables' order."""
    return sorted(t.groupby(keys), key=lambda kv: tuple(map(_sort_key, kv[0])))


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
          "none": "no reference returns (no normalised score)"}
SHORT_SCALES = {"d4rl": "D4RL-normalised", "dataset": "normalised by the dataset's own references",
                "none": "no references"}


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
    """Gradient steps, preset and the dataset used per task."""
    used = sorted({(r.task, r.dataset) for r in t.itertuples()}, key=lambda p: _sort_key(p[0]))
    datasets = "; ".join(f"{task} -> {dataset}" for task, dataset in used)
    steps = ", ".join(str(int(s)) for s in sorted(t["steps"].unique()))
    preset = ", ".join(sorted(t["preset"].dropna().unique())) if "preset" in t else ""
    smoke = (" Smoke preset: each paper task is stood in for by a small locally made Pendulum-v1 dataset of the "
             "same kind, so the numbers only show that the pipeline runs." if "smoke" in preset else "")
    return f"Gradient steps: {steps}. Preset: {preset}. Datasets used: {datasets}.{smoke}"


# Settings of the paper preset that are the authors' code's, not the paper's text (tune_jobs.config.authors_settings)
AUTHORS_CHOICES = {
    ("gmpo", "halfcheetah-medium-v2"): "GMPO halfcheetah-medium beta 8 (authors' config, Tables 3 and 12; Table 8: 1)",
    ("gmpg", "walker2d-medium-replay-v2"): "GMPG walker2d-medium-replay beta 8 (authors' config; Table 8: 4)",
}


def _departures(t: pd.DataFrame) -> str:
    """The paper preset's choices that are not the paper's text, for the trials of a table."""
    if "preset" not in t or "paper" not in set(t["preset"].dropna()):
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


def _caption(t: pd.DataFrame, title: str) -> str:
    seeds = t["seed"].nunique()
    scale = score_scale(t)
    return (f"{title}. {scale[:1].upper() + scale[1:]}. Each cell: final evaluation (the trial's last) / best "
            f"evaluation (its highest during training), mean ± std over {seeds} seed(s) [paper's number]. "
            f"{_provenance(t)}{_departures(t)}")


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
         "table8_beta_per_task.csv", lambda v: {"task": v["task"]}, fill=best_beta),
    Spec("table10", "Table 10: generative model types", "model_ablation", ["task"],
         ["algorithm", "model", "prediction"], "table10_model_types.csv", _table10_keys),
    Spec("table11", "Table 11: D4RL AntMaze, GMPO (GVP), GMPG (VPSDE) and the baselines", "benchmark", ["task"],
         ["algorithm", "model"], "table11_antmaze.csv", _table3_keys, _antmaze),
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
    """The filled table of a spec from its sweep's trials t, or None when t has no trials the spec keeps."""
    if t.empty:
        return None
    t = t[spec.keep(t)]
    return None if t.empty else (spec.fill or grid)(spec, t)


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


def all_tables(rows: pd.DataFrame) -> list[Table]:
    """Every table the results cover, in the papers' order."""
    by_sweep = {s: trials(g) for s, g in rows.groupby("sweep")} if len(rows) else {}
    tables = [build(spec, by_sweep.get(spec.sweep, pd.DataFrame())) for spec in SPECS]
    return [table for table in tables if table is not None]


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

def write(rows: pd.DataFrame, out: Path) -> list[Table]:
    """Write every table (Markdown, LaTeX) and plot the results cover; returns the tables."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    tables = all_tables(rows)
    for table in tables:
        (out / f"{table.key}.md").write_text(markdown(table))
        (out / f"{table.key}.tex").write_text(latex(table))
    (out / "tables.md").write_text("\n".join(markdown(t) for t in tables))
    for sweep, g in rows.groupby("sweep"):
        plot_curves(g, sweep, out / f"curves_{sweep}.png")
    plot_figure1(rows, out / "figure1_loglik_vs_return.png")
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="the sweeps' --storage (holding parquet/), or the parquet dir")
    p.add_argument("--out", default=None, help="output folder (default: <results>/tables)")
    p.add_argument("--sweep", default=None, help="only this sweep")
    args = p.parse_args(argv)
    root = args.results if Path(args.results).name == "parquet" else results_root(args.results)
    rows = read_rows(root, args.sweep)
    if rows.empty:
        print(f"no results under {root}; run a sweep first, e.g. python sweeps/beta_ablation.py", file=sys.stderr)
        return 1
    out = Path(args.out or Path(args.results) / "tables")
    tables = write(rows, out)
    for table in tables:
        print(markdown(table))
    pngs = ", ".join(sorted(p.name for p in out.glob("*.png")))
    print(f"{len(tables)} table(s) as Markdown and LaTeX in {out}; plots: {pngs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
