"""The aggregate-statistics estimators of analysis/make_tables.py against hand values and rliable's published
definitions (Agarwal et al., NeurIPS 2021): IQM, mean, stratified bootstrap intervals, probability of improvement,
performance profiles."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import load_make_tables
import scipy.stats

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def st():
    return load_make_tables()


def test_iqm_and_mean_of_known_matrices(st):
    scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 100.0]])  # 4 runs x 2 tasks
    # pooled and sorted: 1 2 3 4 5 6 7 100; a quarter (2) cut from each end -> mean of 3 4 5 6
    assert st.aggregate_iqm(scores) == pytest.approx(4.5)
    assert st.aggregate_mean(scores) == pytest.approx(((1 + 3 + 5 + 7) / 4 + (2 + 4 + 6 + 100) / 4) / 2)  # 16.0
    ten = np.arange(10.0).reshape(5, 2)  # 10 scores: int(2.5) = 2 cut from each end -> mean of 2..7
    assert st.aggregate_iqm(ten) == pytest.approx(4.5)
    rng = np.random.default_rng(1)
    for shape in ((3, 4), (5, 7), (10, 1)):  # rliable.metrics.aggregate_iqm: trim_mean(x, 0.25, axis=None)
        x = rng.normal(size=shape)
        assert st.aggregate_iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None))
        assert st.aggregate_mean(x) == pytest.approx(np.mean(np.mean(x, axis=0)))
    # per-task lists (tasks with different numbers of runs) and NaNs (runs without a score) dropped
    assert st.aggregate_iqm([[1.0, 2.0, float("nan")], [3.0, 4.0, 5.0, 6.0]]) == pytest.approx(3.5)
    assert st.aggregate_mean([[1.0, 3.0], [10.0]]) == pytest.approx(6.0)


def test_bootstrap_interval_contains_the_estimate_narrows_with_runs_and_stays_within_tasks(st):
    rng = np.random.default_rng(0)
    few, many = rng.normal(50, 10, size=(4, 3)), rng.normal(50, 10, size=(64, 3))
    widths = []
    for scores in (few, many):
        for statistic in (st.iqm_batch, st.mean_batch):
            e = st.interval(scores, statistic, reps=500, level=0.95, seed=0)
            assert e.low <= e.point <= e.high
            widths.append(e.high - e.low)
    assert widths[2] < widths[0] / 2 and widths[3] < widths[1] / 2  # 16 times the runs: about a quarter as wide
    assert st.interval(few, st.iqm_batch, reps=200, seed=3) == st.interval(few, st.iqm_batch, reps=200, seed=3)
    wider = st.interval(many, st.mean_batch, reps=500, level=0.99)
    assert wider.high - wider.low > widths[3]
    # stratified: a resample keeps each task's runs in that task, so the mean over tasks stays in [50, 51]
    e = st.interval(np.array([[0.0, 100.0], [1.0, 101.0]]), st.mean_batch, reps=300)
    assert e.point == pytest.approx(50.5) and 50.0 <= e.low <= e.high <= 51.0


def _rliable_poi(x: np.ndarray, y: np.ndarray) -> float:
    """rliable.metrics.probability_of_improvement as published (rliable 1.2.0)."""
    out = []
    for task in range(x.shape[1]):
        if np.array_equal(x[:, task], y[:, task]):
            out.append(0.5)
        else:
            u, _ = scipy.stats.mannwhitneyu(x[:, task], y[:, task], alternative="greater")
            out.append(u / (x.shape[0] * y.shape[0]))
    return float(np.mean(out))


def test_probability_of_improvement(st):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 3))
    assert st.probability_of_improvement(x + 10, x) == 1.0  # dominating on every task
    assert st.probability_of_improvement(x, x + 10) == 0.0
    assert st.probability_of_improvement(x, x.copy()) == 0.5  # identical
    # one task, x = (1, 2), y = (2, 3): of the 4 pairs only (2, 2) counts, as a tie: 1/2 / 4
    assert st.probability_of_improvement(np.array([[1.0], [2.0]]), np.array([[2.0], [3.0]])) == 0.125
    a, b = rng.integers(0, 4, size=(6, 4)).astype(float), rng.integers(0, 4, size=(3, 4)).astype(float)  # ties
    assert st.probability_of_improvement(a, b) == pytest.approx(_rliable_poi(a, b))
    assert st.probability_of_improvement(a, b) + st.probability_of_improvement(b, a) == pytest.approx(1.0)
    dominating = st.improvement_interval(x + 10, x, reps=200)
    assert (dominating.point, dominating.low, dominating.high) == (1.0, 1.0, 1.0)
    same = st.improvement_interval(x, x.copy(), reps=300)
    assert same.point == 0.5 and same.low < 0.5 < same.high
    with pytest.raises(ValueError, match="same tasks"):
        st.probability_of_improvement(x, x[:, :2])


def test_performance_profile_and_its_png(st, tmp_path):
    scores = np.array([[0.0, 10.0], [20.0, 30.0]])
    point, low, high = st.performance_profile(scores, [-1.0, 5.0, 25.0, 30.0], reps=200)
    assert point.tolist() == [1.0, 0.75, 0.25, 0.0]  # fraction of the 4 runs strictly above each tau
    assert np.all(low <= point) and np.all(point <= high)
    import matplotlib

    matplotlib.use("Agg")
    path = tmp_path / "profile.png"
    st.plot_performance_profiles({"A": scores, "B": scores + 5}, path, "profiles", reps=100)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_the_mean_interval_covers_the_true_mean_at_its_stated_rate(st):
    """Seeded: 300 synthetic result sets (3 tasks x 20 runs, normal scores of known means); the 90% stratified
    bootstrap interval of the mean covers the true mean in 0.90 of them up to sampling error (the percentile bootstrap
    runs slightly under its level at 20 runs a task: rliable's intervals share this)."""
    rng = np.random.default_rng(0)
    means = np.array([10.0, 20.0, 40.0])  # the true aggregate mean is 70/3
    covered = []
    for i in range(300):
        scores = means + rng.normal(0.0, 5.0, size=(20, 3))
        est = st.interval(scores, st.mean_batch, reps=400, level=0.9, seed=i)
        covered.append(est.low <= means.mean() <= est.high)
    rate = float(np.mean(covered))
    assert 0.83 <= rate <= 0.96, rate  # 0.90 +- 2.5 standard errors of 300 draws, less the bootstrap's small bias
