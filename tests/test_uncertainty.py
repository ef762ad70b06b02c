"""Uncertainty on the board (harness.uncertainty, pure): replicates, intervals, the tie test.

Statistical claims are checked by simulation on fixed seeds: the binomial and the reference
intervals cover the true score about 95% of the time, the paired test's false-positive rate
for equal teams is near 5% and it finds a clearly better leader. Secrecy: an interval is a
function of the shown score alone. Grading: how many rows separate the thresholds.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

from harness import uncertainty as u
from harness.grading import threshold_gaps
from harness.metrics import METRICS, Metric
from harness.spec import Threshold

N = 300


def _data(name: str, rng, n: int = N):
    """Labels and a fair prediction for metric ``name``."""
    if name in ("mse", "rmse", "mae", "r2"):
        y = rng.normal(size=n)
        return y, y + 0.5 * rng.normal(size=n)
    if name in ("roc_auc", "log_loss"):
        y = rng.integers(0, 2, n).astype(float)
        return y, np.clip(rng.random(n) * 0.5 + 0.4 * y, 0.01, 0.99)
    if name == "f1":
        y = rng.integers(0, 2, n).astype(float)
        return y, np.where(rng.random(n) < 0.8, y, 1 - y)
    y = rng.integers(0, 5, n).astype(float)
    return y, np.where(rng.random(n) < 0.6, y, rng.integers(0, 6, n)).astype(float)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_replicates_are_the_metric_on_the_rows_and_on_each_resample(name):
    rng = np.random.default_rng(1)
    y, p = _data(name, rng)
    if name == "roc_auc":
        p = np.round(p, 2)                    # ties: the Mann-Whitney half counts
    counts = u.resample_counts(N)
    r = u.replicates(METRICS[name], y, p, counts)
    assert r.shape == (1 + u.BOOTSTRAP,)
    assert r[0] == pytest.approx(METRICS[name].func(y, p), rel=1e-6, abs=1e-9)
    rows = np.arange(N)
    for b in (0, 17, u.BOOTSTRAP - 1):
        idx = np.repeat(rows, counts[:, b].astype(int))
        assert r[1 + b] == pytest.approx(METRICS[name].func(y[idx], p[idx]), rel=1e-5,
                                         abs=1e-7), b


def test_a_teachers_metric_is_resampled_one_call_at_a_time():
    calls = []

    def median_error(y, p):
        calls.append(len(y))
        return float(np.median(np.abs(y - p)))

    own = Metric("metric.py:median_error", median_error, False, ("regression",))
    rng = np.random.default_rng(2)
    y, p = _data("mae", rng)
    r = u.replicates(own, y, p)
    assert len(calls) == 1 + u.BOOTSTRAP and set(calls) == {N}
    idx = np.repeat(np.arange(N), u.resample_counts(N)[:, 3].astype(int))
    assert r[0] == median_error(y, p) and r[4] == median_error(y[idx], p[idx])


def test_a_resample_a_teachers_metric_fails_on_is_left_out():
    def picky(y, p):
        if len(np.unique(y[:5])) < 2:
            raise ValueError("needs two classes among the first rows")
        return float(np.mean(y == p))

    own = Metric("m.py:picky", picky, True, ("binary",))
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, N)
    r = u.replicates(own, y, np.where(rng.random(N) < 0.8, y, 1 - y))
    failed = np.isnan(r[1:])
    assert 0 < failed.sum() < u.BOOTSTRAP and np.isfinite(r[0])
    assert u.tied_mask(r[None, :], r).tolist() == [True]      # the rest still test


def test_resamples_are_fixed_per_size_and_shared_by_every_file():
    a, b = u.resample_counts(250), u.resample_counts(250)
    assert a is b and not a.flags.writeable
    assert a.shape == (250, u.BOOTSTRAP) and (a.sum(axis=0) == 250).all()
    u._resample_counts.cache_clear()
    assert np.array_equal(u.resample_counts(250), a)          # the same in any process
    assert u.resample_counts(251).shape == (251, u.BOOTSTRAP)
    with pytest.raises(ValueError, match="at least one row"):
        u.resample_counts(0)


def test_pack_keeps_the_score_exact_and_the_replicates_close():
    r = np.concatenate([[0.123456789012345], np.linspace(0.1, 0.2, u.BOOTSTRAP)])
    back = u.unpack(u.pack(r))
    assert back[0] == r[0] and np.allclose(back[1:], r[1:], rtol=1e-7)
    assert isinstance(u.pack(r), str)            # JSON-safe: backups carry it


def test_the_fingerprint_changes_with_the_answer_key_and_the_metric():
    solution = b"id,label,Usage\n1,3,Public\n2,4,Private\n"
    fp = u.fingerprint("accuracy", solution)
    assert len(fp) == 16 and fp == u.fingerprint("accuracy", bytes(solution))
    assert fp != u.fingerprint("accuracy", solution.replace(b"1,3", b"1,5"))
    assert fp != u.fingerprint("accuracy", solution.replace(b"Public", b"Private", 1))
    assert fp != u.fingerprint("f1_macro", solution)


# ------------------------------------------------------------------ intervals


@pytest.mark.parametrize("p", [0.6, 0.85, 0.97])
def test_binomial_intervals_cover_the_true_accuracy_95_percent_of_the_time(p):
    rng = np.random.default_rng(3)
    k = rng.binomial(N, p, 3000)
    found = u.intervals(METRICS["accuracy"], np.round(k / N, 5), N, 5)
    coverage = np.mean([lo <= p <= hi for lo, hi in found])
    assert 0.94 <= coverage <= 0.985, coverage       # exact: never below 95% but for noise


def test_binomial_intervals_are_exact_clopper_pearson_rounded_outward():
    from scipy.stats import binomtest

    exact = binomtest(90, 100).proportion_ci(0.95, method="exact")   # [0.82378, 0.95100]
    assert u.clopper_pearson(90, 100) == pytest.approx((exact.low, exact.high), abs=1e-12)
    [(lo, hi)] = u.intervals(METRICS["accuracy"], [0.9], 100, 3)
    assert (lo, hi) == (0.823, 0.951)
    assert u.intervals(METRICS["accuracy"], [1.0], 50, 4)[0][1] == 1.0
    assert u.intervals(METRICS["accuracy"], [0.0], 50, 4)[0][0] == 0.0


def _coverage(metric, task, draw, truth, sims=600, seed=4):
    rng = np.random.default_rng(seed)
    y0, _ = draw(rng)
    ref = u.reference_curve(metric, task, y0)
    hits = 0
    for _ in range(sims):
        y, p = draw(rng)
        lo, hi = u.intervals(metric, [round(metric(y, p), 5)], N, 5, ref)[0]
        hits += lo <= truth <= hi
    return hits / sims


def test_reference_intervals_cover_about_95_percent():
    def regression(rng):
        y = rng.normal(size=N)
        return y, y + rng.normal(size=N)              # mse 1 in the population

    def binormal(rng):
        y = rng.integers(0, 2, N).astype(float)
        return y, 1 / (1 + np.exp(-(1.5 * y + rng.normal(size=N))))

    assert 0.9 <= _coverage(METRICS["mse"], "regression", regression, 1.0) <= 0.99
    auc = norm.cdf(1.5 / np.sqrt(2))
    assert 0.9 <= _coverage(METRICS["roc_auc"], "binary", binormal, auc) <= 0.99


def test_an_interval_depends_on_the_shown_score_and_the_rows_only():
    """Secrecy: equal shown scores, equal intervals, whatever the files behind them."""
    rng = np.random.default_rng(5)
    y = rng.normal(size=N)
    ref = u.reference_curve(METRICS["mse"], "regression", y)
    a, b, c = u.intervals(METRICS["mse"], [0.25, 0.25, 0.5], N, 4, ref)
    assert a == b and a != c and a[0] < 0.25 < a[1]
    # the curve comes from the labels alone, computed the same way every time
    again = u.reference_curve(METRICS["mse"], "regression", y)
    assert np.array_equal(ref.errors, again.errors)
    # more rows, narrower
    wide = u.intervals(METRICS["accuracy"], [0.8], 100, 5)[0]
    narrow = u.intervals(METRICS["accuracy"], [0.8], 1000, 5)[0]
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


@pytest.mark.parametrize("name,task", [("f1_macro", "multiclass"), ("balanced_accuracy",
                                                                     "multiclass"),
                                       ("log_loss", "binary"), ("r2", "regression")])
def test_every_metric_gets_a_reference_and_intervals_inside_its_range(name, task):
    rng = np.random.default_rng(6)
    y, p = _data(name, rng)
    ref = u.reference_curve(METRICS[name], task, y)
    assert ref is not None and (ref.errors >= 0).all() and ref.errors.max() > 0
    shown = round(METRICS[name](y, p), 5)
    lo, hi = u.intervals(METRICS[name], [shown], N, 5, ref)[0]
    low, high = u.BOUNDS[name]
    assert low <= lo < shown < hi <= high


def test_a_large_board_uses_a_subset_for_its_reference_and_scales_it():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 4 * u.REFERENCE_ROWS).astype(float)
    big = u.reference_curve(METRICS["roc_auc"], "binary", y)
    small = u.reference_curve(METRICS["roc_auc"], "binary", y[:u.REFERENCE_ROWS])
    ratio = np.median(big.se(0.8) / small.se(0.8))
    assert ratio == pytest.approx(0.5, rel=0.2)           # four times the rows: half


def test_a_metric_that_fails_gives_no_intervals():
    def broken(y, p):
        raise ValueError("no")

    own = Metric("m.py:broken", broken, True, ("binary",))
    assert u.reference_curve(own, "binary", np.array([0, 1] * 20)) is None
    assert u.intervals(own, [0.5, 0.6], 40, 3, None) == [None, None]


# ------------------------------------------------------------------ the paired test


def _rejections(make, metric, sims, seed=8):
    rng = np.random.default_rng(seed)
    counts = u.resample_counts(N)
    found = 0
    for _ in range(sims):
        y, a, b = make(rng)
        found += u.differs(u.replicates(metric, y, a, counts), u.replicates(metric, y, b, counts))
    return found / sims


def _classifiers(right_a, right_b, k=10):
    def make(rng):
        y = rng.integers(0, k, N)
        return (y, np.where(rng.random(N) < right_a, y, (y + 1) % k),
                np.where(rng.random(N) < right_b, y, (y + 2) % k))
    return make


def _correlated(rng):
    """Two equally good classifiers that share 80% of their decisions."""
    y = rng.integers(0, 2, N)
    base, own, mix = rng.random(N) < 0.8, rng.random(N) < 0.8, rng.random(N) < 0.2
    return y, np.where(base, y, 1 - y), np.where(np.where(mix, own, base), y, 1 - y)


def _regressors(noise_a, noise_b):
    def make(rng):
        y = rng.normal(size=N)
        return y, y + noise_a * rng.normal(size=N), y + noise_b * rng.normal(size=N)
    return make


def _scorers(rng):
    y = rng.integers(0, 2, N).astype(float)
    return y, *(1 / (1 + np.exp(-(y + rng.normal(size=N)))) for _ in range(2))


@pytest.mark.parametrize("make,name", [(_classifiers(0.8, 0.8), "accuracy"),
                                       (_correlated, "accuracy"),
                                       (_regressors(1.0, 1.0), "mse"),
                                       (_scorers, "roc_auc")])
def test_equal_teams_differ_about_5_percent_of_the_time(make, name):
    rate = _rejections(make, METRICS[name], 400)
    assert 0.02 <= rate <= 0.09, rate


@pytest.mark.parametrize("make,name", [(_classifiers(0.85, 0.72), "accuracy"),
                                       (_regressors(1.0, 1.35), "mse")])
def test_a_clearly_better_leader_is_found(make, name):
    assert _rejections(make, METRICS[name], 100) >= 0.9


def test_identical_files_are_always_tied_and_the_leader_with_itself():
    rng = np.random.default_rng(9)
    y, p = _data("accuracy", rng)
    r = u.replicates(METRICS["accuracy"], y, p)
    assert not u.differs(r, r.copy())
    others = np.stack([r, u.replicates(METRICS["accuracy"], y, y)])
    assert u.tied_mask(others, r).tolist() == [True, False]


def test_the_paired_test_uses_the_pairing():
    """Two files that differ on a handful of rows, all in one direction: unpaired
    intervals overlap, the paired test still tells them apart (or not) by the rows."""
    rng = np.random.default_rng(10)
    y = rng.integers(0, 10, N)
    a = np.where(rng.random(N) < 0.8, y, (y + 1) % 10)
    right = np.flatnonzero(a == y)
    for wrong, different in ((2, False), (12, True)):
        b = a.copy()
        b[right[:wrong]] = (y[right[:wrong]] + 1) % 10
        ra, rb = (u.replicates(METRICS["accuracy"], y, f) for f in (a, b))
        assert u.differs(ra, rb) is different, wrong


def test_the_module_imports_no_server_or_database():
    code = ("import sys, harness.uncertainty; print([m for m in ('fastapi', 'sqlalchemy', "
            "'torch', 'httpx', 'starlette') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ grading thresholds


def test_threshold_gaps_count_rows_and_interval_widths():
    thresholds = (Threshold("strong", 0.95, 0.94), Threshold("simple", 0.80, None),
                  Threshold("medium", 0.90, 0.90))

    def interval(board, value):
        return u.intervals(METRICS["accuracy"], [value], 200 if board == "public" else 100,
                           5)[0]

    gaps = threshold_gaps(thresholds, greater_is_better=True, metric="accuracy",
                          scored_rows={"public": 200, "private": 100}, interval=interval)
    assert [(g.board, g.lower, g.upper) for g in gaps] == [
        ("public", "simple", "medium"), ("public", "medium", "strong"),
        ("private", "medium", "strong")]
    assert [g.rows for g in gaps] == pytest.approx([20.0, 10.0, 4.0])
    first = gaps[0]
    assert first.half_width == pytest.approx((interval("public", 0.8)[1]
                                               - interval("public", 0.8)[0]) / 2)
    assert first.widths == pytest.approx(0.1 / first.half_width)
    assert first.describe().startswith("public, 200 rows: simple -> medium: 20.0 rows apart, ")
    # lower is better: the easier threshold is the larger error; no rows for other metrics
    mse = threshold_gaps((Threshold("a", 0.5, None), Threshold("b", 0.3, None)),
                         greater_is_better=False, metric="mse", scored_rows={"public": 50})
    assert [(g.lower, g.upper, g.rows, g.widths) for g in mse] == [("a", "b", None, None)]
    assert mse[0].describe() == "public, 50 rows: a -> b: 0.2 apart"


def test_harness_grades_says_how_many_rows_separate_the_thresholds(prepared_home, monkeypatch):
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.setenv("COLUMNS", "160")
    result = CliRunner().invoke(main, ["grades", "digits", "--home", str(prepared_home)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    from harness.home import load_prepared
    from harness.scoring import AnswerKey

    prepared = load_prepared(prepared_home, "digits")
    key = AnswerKey.from_prepared(prepared)
    easiest, second = sorted(prepared.spec.grading, key=lambda t: t.public)[:2]
    n = len(key.public_index)
    rows = (second.public - easiest.public) * n
    half = np.diff(u.intervals(METRICS["accuracy"], [easiest.public], n, 5)[0])[0] / 2
    assert "thresholds:" in text
    assert (f"public, {n} rows: {easiest.name} -> {second.name}: {rows:.1f} rows apart, "
            f"{(second.public - easiest.public) / half:.1f} x the 95% ±") in text
    assert f"private, {len(key.private_index)} rows: " in text
