"""analysis/make_tables.py on synthetic Parquet rows: cells, paper numbers, captions, LaTeX and PNGs (no Ray)."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_make_tables

from genrl_core import algorithms
from tune_jobs import results

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def make_tables():
    return load_make_tables()


def _trial(root: str, sweep: str, trial_id: str, config: dict, scores: list[float], loglik: float = -1.0,
           stop_reason: str | None = "completed") -> None:
    """Rows of one trial evaluated every 100 steps with the given scores; the last one final with stop_reason
    (no final row when stop_reason is None: a trial that errored for good)."""
    for i, score in enumerate(scores):
        step = 100 * (i + 1)
        last = i == len(scores) - 1 and stop_reason is not None
        results.write_row(root, {"sweep": sweep, "trial_id": trial_id, "step": step, "iteration": i + 1,
                                 "final": last, "stop_reason": stop_reason if last else "", "score_mean": score,
                                 "return_mean": 10.0 * score, "loglik": loglik + i, "preset": "smoke",
                                 "steps": 100 * len(scores), **config})


def _beta_rows(root: str) -> None:
    for task, dataset in (("halfcheetah-medium-v2", "local/pendulum/medium-v0"),
                          ("halfcheetah-medium-replay-v2", "local/pendulum/medium-replay-v0")):
        for algo, model in (("gmpo", "gvp"), ("gmpg", "vpsde")):
            for beta in (1.0, 4.0, 8.0):
                for seed in (0, 1):
                    config = {"task": task, "dataset": dataset, "algorithm": algo, "model": model, "beta": beta,
                              "seed": seed, "prediction": "velocity"}
                    final = 10 * beta + seed
                    _trial(root, "beta_ablation", f"{task}-{algo}-{beta}-{seed}", config, [final + 5, final])


def test_table12_cells_paper_numbers_caption_latex_and_plots(make_tables, tmp_path, capsys):
    _beta_rows(results.results_root(str(tmp_path)))
    out = tmp_path / "tables"
    assert make_tables.main(["--results", str(tmp_path), "--out", str(out)]) == 0
    md = (out / "table12.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| halfcheetah-medium-v2 | GMPO | GVP |"))
    # beta = 1: final 10, 11 -> 10.5 +- 0.5; best 15, 16 -> 15.5 +- 0.5; paper 43.2 +- 1.2
    assert "10.5 ± 0.5 / 15.5 ± 0.5 [43.2 ± 1.2]" in row
    assert "| beta=1 | beta=4 | beta=8 |" in md
    assert "halfcheetah-medium-replay-v2 -> local/pendulum/medium-replay-v0" in md  # the dataset actually used
    tex = (out / "table12.tex").read_text()
    assert "\\begin{tabular}" in tex and "10.5$\\pm$0.5" in tex and "local/pendulum/medium-v0" in tex
    assert (out / "curves_beta_ablation.png").stat().st_size > 1000
    assert (out / "figure1_loglik_vs_return.png").stat().st_size > 1000
    assert "### Table 12" in capsys.readouterr().out


def test_model_tables_and_table5_average_over_covered_tasks(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    for task in ("halfcheetah-medium-v2", "hopper-medium-v2"):
        for algo, model, pred in (("gmpo", "vpsde", "eps"), ("gmpg", "icfm", "velocity")):
            config = {"task": task, "dataset": "local/pendulum/medium-v0", "algorithm": algo, "model": model,
                      "prediction": pred, "beta": 1.0, "seed": 0}
            _trial(root, "model_ablation", f"{task}-{algo}", config, [20.0, 30.0])
    make_tables.write(results.read_rows(root), tmp_path / "t")
    t10 = (tmp_path / "t" / "table10.md").read_text()
    assert "GMPO VPSDE eps" in t10 and "[49.8 ± 2.6]" in t10  # halfcheetah-medium-v2, GMPO VPSDE eps
    t5 = (tmp_path / "t" / "table5.md").read_text()
    assert "30.0 / 30.0 [60.9]" in t5  # paper: mean of 49.8 (halfcheetah-medium) and 71.9 (hopper-medium)


def test_table8_reports_the_best_beta_of_completed_trials(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    base = {"task": "halfcheetah-medium-v2", "dataset": "local/pendulum/medium-v0", "algorithm": "gmpo",
            "model": "gvp", "seed": 0}
    _trial(root, "tune_beta", "a", {**base, "beta": 0.5}, [10.0, 20.0])
    _trial(root, "tune_beta", "b", {**base, "beta": 2.0}, [15.0, 35.0])
    tables = make_tables.write(results.read_rows(root), tmp_path / "t")
    assert [t.key for t in tables] == ["table8"]
    assert "| halfcheetah-medium-v2 | GMPO | 2 | 35.0 | 2 | 1.0 |" in (tmp_path / "t" / "table8.md").read_text()


def test_no_results_is_a_clear_error(make_tables, tmp_path, capsys):
    assert make_tables.main(["--results", str(tmp_path)]) == 1
    assert "no results" in capsys.readouterr().err


def test_table3_has_a_column_per_baseline_with_the_papers_number(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    for algo, model, score in (("gmpo", "gvp", 40.0), ("sfbc", "vpsde", 30.0), ("dql", "vpsde", 20.0),
                               ("bc", "vpsde", 10.0)):
        config = {"task": "halfcheetah-medium-v2", "dataset": "local/pendulum/medium-v0", "algorithm": algo,
                  "model": model, "seed": 0}
        _trial(root, "benchmark", algo, config, [score])
    make_tables.write(results.read_rows(root), tmp_path / "t")
    md = (tmp_path / "t" / "table3.md").read_text()
    assert "| Task | GMPO GVP | SfBC VPSDE | Diffusion-QL VPSDE |" in md  # BC is no Table 3 column
    # the paper's numbers: GMPO (GVP) by model; SfBC 45.9 and Diffusion-QL 51.1 (run with DDPM there) by name
    assert "| halfcheetah-medium-v2 | 40.0 ± 0.0 / 40.0 ± 0.0 [49.9 ± 2.7] |" in md
    assert "| 30.0 ± 0.0 / 30.0 ± 0.0 [45.9] | 20.0 ± 0.0 / 20.0 ± 0.0 [51.1] |" in md


def test_diverged_and_failed_seeds_leave_final_and_best_over_the_same_seeds_and_are_marked(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    base = {"task": "halfcheetah-medium-v2", "dataset": "local/pendulum/medium-v0", "algorithm": "gmpo",
            "model": "gvp", "prediction": "velocity"}
    nan = float("nan")
    # beta = 1: seed 0 diverged after a best of 80, seed 1 completed at 12, seed 2 errored for good (no final row)
    _trial(root, "beta_ablation", "b1-s0", {**base, "beta": 1.0, "seed": 0}, [80.0, nan], stop_reason="diverged")
    _trial(root, "beta_ablation", "b1-s1", {**base, "beta": 1.0, "seed": 1}, [10.0, 12.0])
    _trial(root, "beta_ablation", "b1-s2", {**base, "beta": 1.0, "seed": 2}, [30.0, 40.0], stop_reason=None)
    for seed in (0, 1, 2):  # beta = 4: every seed completed
        _trial(root, "beta_ablation", f"b4-s{seed}", {**base, "beta": 4.0, "seed": seed}, [20.0 + seed, 10.0 + seed])
    make_tables.write(results.read_rows(root), tmp_path / "t")
    md = (tmp_path / "t" / "table12.md").read_text()
    # final and best both over seed 1 alone (not best over seeds 0 and 1: "12.0 / 46.0"), and marked 1 of 3
    assert ("| halfcheetah-medium-v2 | GMPO | GVP | 12.0 ± 0.0 / 12.0 ± 0.0 (1/3 seeds) [43.2 ± 1.2] "
            "| 11.0 ± 0.8 / 21.0 ± 0.8 [48.9 ± 1.9] |") in md
    assert "over 3 seed(s)" in md
    assert "(k/n seeds): only k of the cell's n seeds ended with a finite score" in md
    assert "12.0$\\pm$0.0 / 12.0$\\pm$0.0 (1/3 seeds) [43.2$\\pm$1.2]" in (tmp_path / "t" / "table12.tex").read_text()


def test_a_cell_whose_seeds_all_diverged_reads_as_missing(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    base = {"task": "halfcheetah-medium-v2", "dataset": "local/pendulum/medium-v0", "algorithm": "gmpo",
            "model": "gvp", "prediction": "velocity", "beta": 1.0}
    _trial(root, "beta_ablation", "s0", {**base, "seed": 0}, [80.0, float("nan")], stop_reason="diverged")
    _trial(root, "beta_ablation", "s1", {**base, "seed": 1}, [30.0], stop_reason=None)
    make_tables.write(results.read_rows(root), tmp_path / "t")
    assert "| halfcheetah-medium-v2 | GMPO | GVP | – / – (0/2 seeds) [43.2 ± 1.2] |" in \
        (tmp_path / "t" / "table12.md").read_text()


def test_table5_averages_only_seeds_with_a_finite_final_score(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    base = {"task": "halfcheetah-medium-v2", "dataset": "local/pendulum/medium-v0", "algorithm": "gmpo",
            "model": "vpsde", "prediction": "eps", "beta": 1.0}
    _trial(root, "model_ablation", "s0", {**base, "seed": 0}, [90.0, float("nan")], stop_reason="diverged")
    _trial(root, "model_ablation", "s1", {**base, "seed": 1}, [20.0, 30.0])
    make_tables.write(results.read_rows(root), tmp_path / "t")
    assert "| GMPO | VPSDE | eps | 30.0 / 30.0 (1/2 seeds) [49.8] |" in (tmp_path / "t" / "table5.md").read_text()


def test_table8_skips_diverged_trials_and_marks_a_pair_with_none_left(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    base = {"task": "halfcheetah-medium-v2", "dataset": "local/pendulum/medium-v0", "seed": 0}
    gmpo, gmpg = {**base, "algorithm": "gmpo", "model": "gvp"}, {**base, "algorithm": "gmpg", "model": "vpsde"}
    nan = float("nan")
    _trial(root, "tune_beta", "o1", {**gmpo, "beta": 0.5}, [10.0, 20.0])
    _trial(root, "tune_beta", "o2", {**gmpo, "beta": 2.0}, [50.0, nan], stop_reason="diverged")
    _trial(root, "tune_beta", "g1", {**gmpg, "beta": 1.0}, [40.0, nan], stop_reason="diverged")
    _trial(root, "tune_beta", "g2", {**gmpg, "beta": 4.0}, [30.0, nan], stop_reason="diverged")
    tables = make_tables.write(results.read_rows(root), tmp_path / "t")  # no ValueError from idxmax
    assert [t.key for t in tables] == ["table8"]
    md = (tmp_path / "t" / "table8.md").read_text()
    assert "| halfcheetah-medium-v2 | GMPO | 0.5 | 20.0 | 2 | 1.0 |" in md
    assert "| halfcheetah-medium-v2 | GMPG | – | – | 2 | 1.0 |" in md


def test_captions_say_final_and_best_and_which_references_normalise_the_scores(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    base = {"algorithm": "gmpo", "model": "gvp", "prediction": "velocity", "beta": 1.0, "seed": 0}
    for sweep, task, dataset, source in (
            ("beta_ablation", "hopper-medium-v2", "d4rl/hopper-medium-v2", "d4rl"),
            ("beta_ablation", "halfcheetah-medium-v2", "d4rl/halfcheetah-medium-v2", "d4rl"),
            ("solver_ablation", "hopper-medium-v2", "local/pendulum/medium-v0", "dataset"),
            ("model_ablation", "hopper-medium-v2", "d4rl/hopper-medium-v2", "d4rl"),
            ("model_ablation", "halfcheetah-medium-v2", "local/pendulum/medium-v0", "dataset")):
        config = {**base, "task": task, "dataset": dataset, "ref_source": source, "solver": "euler",
                  "sampling_steps": 8}
        _trial(root, sweep, f"{sweep}-{task}", config, [20.0, 30.0])
    _trial(root, "benchmark", "old", {**base, "task": "hopper-medium-v2", "dataset": "x"}, [1.0])  # no ref_source
    tables = {t.key: t.caption for t in make_tables.write(results.read_rows(root), tmp_path / "t")}
    cells = "Each cell: final evaluation (the trial's last) / best evaluation (its highest during training)"
    assert all(cells in tables[k] for k in ("table3", "table5", "table10", "table12", "table13"))
    assert "D4RL-normalised score (D4RL's reference returns: the papers' scale)." in tables["table12"]
    assert "dataset's own reference returns (not D4RL's: not the papers' scale)." in tables["table13"]
    mixed = ("Normalised score: normalised by the dataset's own references for halfcheetah-medium-v2; "
             "D4RL-normalised for hopper-medium-v2.")
    assert mixed in tables["table10"] and mixed in tables["table5"]
    assert "reference source not recorded" in tables["table3"]
    assert "D4RL-normalised" in (tmp_path / "t" / "table12.tex").read_text()


def test_paper_preset_captions_name_the_authors_choices_and_gtp_table1_is_filled(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    for algo, model, task, score in (("gmpo", "gvp", "halfcheetah-medium-v2", 40.0),
                                     ("gmpg", "vpsde", "walker2d-medium-replay-v2", 50.0),
                                     ("gtp_bc", "", "hopper-medium-v2", 60.0)):
        config = {"task": task, "dataset": "d4rl/" + task, "algorithm": algo, "model": model, "seed": 0,
                  "preset": "paper"}
        _trial(root, "benchmark", f"{algo}-{task}", config, [score])
    make_tables.write(results.read_rows(root), tmp_path / "t")
    md = (tmp_path / "t" / "table3.md").read_text()
    assert "GMPO halfcheetah-medium beta 8 (authors' config, Tables 3 and 12; Table 8: 1)" in md
    assert "GMPG walker2d-medium-replay beta 8 (authors' config; Table 8: 4)" in md
    assert "GMPG's log-ratio in bits per dimension" in md
    bc = (tmp_path / "t" / "gtp_table1.md").read_text()
    assert "| hopper-medium-v2 | 60.0 ± 0.0 / 60.0 ± 0.0 [83.7] |" in bc


def test_a_registered_algorithm_appears_in_the_tables_under_its_display_name(make_tables, tmp_path, monkeypatch):
    monkeypatch.setattr(algorithms, "_REGISTRY", dict(algorithms._REGISTRY))  # the registration ends with the test
    algorithms.register("toyalgo", "genrl_core.algorithms.bc:BC", "ToyAlgo")
    root = results.results_root(str(tmp_path))
    for algo in ("toyalgo", "gmpo"):
        config = {"task": "halfcheetah-medium-v2", "dataset": "local/pendulum/medium-v0", "algorithm": algo,
                  "model": "gvp", "prediction": "velocity", "beta": 1.0, "seed": 0}
        _trial(root, "beta_ablation", algo, config, [20.0, 30.0])
    make_tables.write(results.read_rows(root), tmp_path / "t")
    rows = [line for line in (tmp_path / "t" / "table12.md").read_text().splitlines() if line.startswith("| half")]
    assert rows[0].startswith("| halfcheetah-medium-v2 | GMPO | GVP |")  # registration order: after GMPO
    assert rows[1].startswith("| halfcheetah-medium-v2 | ToyAlgo | GVP | 30.0 ± 0.0 / 30.0 ± 0.0 |")


# --- aggregate statistics and the evaluation protocol ----------------------------------------------------------

PROTOCOL = {"eval_episodes": 10.0, "ref_source": "d4rl", "ref_min_score": -20.272305, "ref_max_score": 3234.3,
            "data_hash": "0123456789abcdef0123"}


def test_aggregate_statistics_numbers_baseline_and_performance_profile(make_tables, tmp_path, capsys):
    root = results.results_root(str(tmp_path))
    _beta_rows(root)  # 2 tasks x (GMPO GVP, GMPG VPSDE) x beta 1, 4, 8 x seeds 0, 1: final 10 beta + seed
    _trial(root, "tune_beta", "only-one", {"task": "halfcheetah-medium-v2", "dataset": "x", "algorithm": "gmpo",
                                           "model": "gvp", "beta": 2.0, "seed": 0}, [1.0])
    out = tmp_path / "t"
    assert make_tables.main(["--results", str(tmp_path), "--out", str(out), "--bootstrap-reps", "200",
                             "--baseline", "gmpg"]) == 0
    agg = (out / "aggregate_beta_ablation.md").read_text()
    assert "| Algorithm | Model | Beta | IQM [95% CI] | Mean [95% CI] | Runs |" in agg
    # GMPO beta=1: runs 10, 11 on each task -> pooled 10 10 11 11, IQM (middle half) 10.5, mean 10.5, 4 runs
    row = next(line for line in agg.splitlines() if line.startswith("| GMPO | GVP | 1 |"))
    iqm, mean, runs = [c.strip() for c in row.strip("|").split("|")[3:]]
    assert iqm.startswith("10.5 [") and mean.startswith("10.5 [") and runs == "4"
    low, high = map(float, iqm[6:-1].split(","))
    assert 10.0 <= low <= 10.5 <= high <= 11.0
    caption = agg.split("*")[1]
    assert "200 stratified bootstrap resamples" in caption and "95% confidence intervals" in caption
    assert "Over 2 task(s) (halfcheetah-medium-v2, halfcheetah-medium-replay-v2) and 2 seed(s)" in caption
    assert "final evaluation (the trial's last)" in caption and "2 seed(s): 0, 1" in caption
    poi = (out / "improvement_beta_ablation.md").read_text()
    assert "| X over Y | GMPG VPSDE beta=1 | GMPG VPSDE beta=4 | GMPG VPSDE beta=8 |" in poi  # --baseline gmpg
    # GMPO beta=8 (80, 81) dominates every GMPG column; GMPO beta=1 and GMPG beta=1 have the same runs: 1/2
    assert "| GMPO GVP beta=8 | 1.00 [1.00, 1.00] | 1.00 [1.00, 1.00] | 0.50 [" in poi
    assert "| GMPO GVP beta=1 | 0.50 [" in poi and "| GMPG VPSDE beta=1 | – |" in poi
    assert "\\begin{tabular}" in (out / "aggregate_beta_ablation.tex").read_text()
    assert (out / "profile_beta_ablation.png").read_bytes()[:4] == b"\x89PNG"
    err = capsys.readouterr().err
    assert "aggregate_tune_beta: skipped: 0 configuration(s) with 2 or more runs on a task" in err
    assert not (out / "aggregate_tune_beta.md").exists() and not (out / "profile_tune_beta.png").exists()


def _cell_seeds(root: str, protocols: list[dict], scores: list[list[float]] | None = None) -> None:
    """One Table 12 cell (halfcheetah-medium-v2, GMPO GVP, beta 3) with a seed per protocol, and a model_ablation
    trial beside it."""
    base = {"task": "halfcheetah-medium-v2", "dataset": "d4rl/halfcheetah-medium-v2", "algorithm": "gmpo",
            "model": "gvp", "prediction": "velocity", "beta": 3.0, "dataset_id": "d4rl/halfcheetah-medium-v2"}
    for seed, protocol in enumerate(protocols):
        _trial(root, "beta_ablation", f"s{seed}", {**base, **PROTOCOL, "seed": seed, **protocol},
               (scores or [[20.0, 30.0]] * len(protocols))[seed])
    _trial(root, "model_ablation", "m", {**base, **PROTOCOL, "model": "vpsde", "prediction": "eps", "seed": 0},
           [40.0])


@pytest.mark.parametrize("protocols, scores, line", [
    ([{"eval_episodes": 10.0}, {"eval_episodes": 100.0}], None, "rows differ in eval_episodes (10 vs 100)"),
    ([{}, {"ref_source": "dataset"}], None, "rows differ in ref_source (d4rl vs dataset)"),
    ([{}, {"data_hash": "ffff"}], None, "rows differ in data_hash (0123456789abcdef0123 vs ffff)"),
    ([{}, {}], [[20.0, 30.0], [20.0, 30.0, 35.0]], "rows differ in the gradient step of the final evaluation "
                                                   "(200 vs 300)"),
])
def test_a_cell_pooling_different_protocols_is_refused_in_one_line(make_tables, tmp_path, capsys, protocols,
                                                                   scores, line):
    root = results.results_root(str(tmp_path))
    _cell_seeds(root, protocols, scores)
    keys = [t.key for t in make_tables.all_tables(results.read_rows(root), reps=50)]
    assert "table12" not in keys and {"table5", "table10"} <= set(keys)  # the other tables are still made
    err = [e for e in capsys.readouterr().err.splitlines() if "table12" in e]
    assert err == [f"table12 cell (halfcheetah-medium-v2, gmpo, gvp, beta=3): {line}; rerun or filter with --only"]


def test_only_filters_a_mixed_cell_and_the_refusal_reaches_the_command_line(make_tables, tmp_path, capsys):
    _cell_seeds(results.results_root(str(tmp_path)), [{"eval_episodes": 10.0}, {"eval_episodes": 100.0}])
    assert make_tables.main(["--results", str(tmp_path), "--out", str(tmp_path / "a")]) == 0
    assert "table12 cell (halfcheetah-medium-v2, gmpo, gvp, beta=3): rows differ in eval_episodes (10 vs 100)" \
        in capsys.readouterr().err
    assert not (tmp_path / "a" / "table12.md").exists() and (tmp_path / "a" / "table10.md").exists()
    assert make_tables.main(["--results", str(tmp_path), "--out", str(tmp_path / "b"), "--only",
                             "eval_episodes=100"]) == 0
    md = (tmp_path / "b" / "table12.md").read_text()
    assert "30.0 ± 0.0 / 30.0 ± 0.0" in md and "Evaluation: 100 episode(s) per evaluation; 1 seed(s): 1." in md
    with pytest.raises(SystemExit):
        make_tables.main(["--results", str(tmp_path), "--only", "nosuchcolumn=1"])


def test_every_caption_states_the_protocol(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    tasks = {"hopper-medium-v2": 10.0, "antmaze-umaze-v0": 100.0}
    for task, episodes in tasks.items():
        for seed in (0, 1):
            config = {"task": task, "dataset": f"d4rl/{task}", "dataset_id": f"d4rl/{task}", "algorithm": "gmpo",
                      "model": "gvp", "prediction": "velocity", "beta": 1.0, "seed": seed, "solver": "euler",
                      "sampling_steps": 8, **PROTOCOL, "eval_episodes": episodes}
            for sweep in ("beta_ablation", "model_ablation", "tune_beta", "benchmark"):
                _trial(root, sweep, f"{task}-{seed}", config, [20.0, 30.0])
    tables = {t.key: t.caption for t in make_tables.all_tables(results.read_rows(root), reps=50)}
    assert {"table3", "table5", "table8", "table10", "table11", "table12"} <= set(tables)
    for key, caption in tables.items():
        assert "final evaluation" in caption, key
        assert "2 seed(s): 0, 1" in caption, key
        if key in ("table3", "table11"):  # one task each
            episodes = "100" if key == "table11" else "10"
            assert f"Evaluation: {episodes} episode(s) per evaluation" in caption, key
        else:  # the episodes of each task (per task, not pooled: AntMaze's 100 beside locomotion's 10)
            assert ("Evaluation: episodes per evaluation 10 for hopper-medium-v2; 100 for antmaze-umaze-v0"
                    in caption), key
        if key != "table11":
            assert ("hopper-medium-v2 -> d4rl/hopper-medium-v2 (content hash 0123456789ab, reference returns "
                    "-20.2723 to 3234.3 (source: d4rl))") in caption, key
    assert "antmaze-umaze-v0 -> d4rl/antmaze-umaze-v0" in tables["table11"]
    assert "D4RL-normalised score" in tables["table12"]


def test_local_preset_captions_say_the_data_was_made_here_and_name_its_departures(make_tables, tmp_path):
    root = results.results_root(str(tmp_path))
    for algo, model, score in (("bc", "gvp", 12.0), ("gmpo", "gvp", 16.0)):
        config = {"task": "hopper-medium-v2", "dataset": "local/hopper/medium-v0", "algorithm": algo, "model": model,
                  "seed": 0, "preset": "local"}
        _trial(root, "benchmark", f"{algo}-local", config, [score])
    make_tables.write(results.read_rows(root), tmp_path / "t")
    md = (tmp_path / "t" / "table3.md").read_text()
    assert "Preset: local." in md and "D4RL-style set made on this machine" in md
    assert "hopper-medium-v2 -> local/hopper/medium-v0" in md
    assert "Not the paper's: GMPO/GMPG: the authors' per-task beta" in md and "GMPG's beta 1" in md
    assert "Settings from the authors'" not in md
