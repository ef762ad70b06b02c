"""The metric registry: directions, task fit, numpy twins equal to sklearn, row losses."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from harness.errors import SpecError
from harness.metrics import METRICS, get_metric

rng = np.random.default_rng(0)
LABELS_T, LABELS_P = rng.integers(0, 5, 2000), rng.integers(0, 5, 2000)
NUM_T, NUM_P = rng.normal(size=2000), rng.normal(size=2000)


@pytest.mark.parametrize("name, sk, y, p", [
    ("accuracy", skm.accuracy_score, LABELS_T, LABELS_P),
    ("mse", skm.mean_squared_error, NUM_T, NUM_P),
    ("rmse", lambda y, p: np.sqrt(skm.mean_squared_error(y, p)), NUM_T, NUM_P),
    ("mae", skm.mean_absolute_error, NUM_T, NUM_P),
])
def test_fast_twins_equal_sklearn(name, sk, y, p):
    m = METRICS[name]
    assert m.fast is not None
    assert m(y, p) == pytest.approx(sk(y, p), rel=1e-12)
    assert m.func(y, p) == pytest.approx(sk(y, p), rel=1e-12)


def test_directions():
    higher = {"accuracy", "balanced_accuracy", "f1_macro", "f1", "roc_auc", "r2"}
    for name, m in METRICS.items():
        assert m.greater_is_better == (name in higher), name
        assert m.better(1.0, 0.0) == m.greater_is_better


def test_row_losses_average_to_the_metric():
    assert METRICS["accuracy"].row_loss(LABELS_T, LABELS_P).mean() == \
        pytest.approx(1 - skm.accuracy_score(LABELS_T, LABELS_P))
    assert METRICS["mse"].row_loss(NUM_T, NUM_P).mean() == pytest.approx(
        skm.mean_squared_error(NUM_T, NUM_P))
    y = rng.integers(0, 2, 500)
    p = rng.random(500)
    assert METRICS["log_loss"].row_loss(y, p).mean() == pytest.approx(skm.log_loss(y, p))


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(SpecError, match="unknown metric 'auc'.*roc_auc"):
        get_metric("auc")


# --- roc_auc: the numpy twin (one sort, rank sums) against sklearn ---------------------------

AUC_TOLERANCE = 1e-12


def quiet(f, y, p) -> float:
    """f(y, p) without the warning sklearn gives with one class (nan)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return f(y, p)


def assert_auc_matches(y, p):
    ours, theirs = quiet(METRICS["roc_auc"], y, p), quiet(skm.roc_auc_score, y, p)
    if np.isnan(theirs):
        assert np.isnan(ours)
    else:
        assert abs(ours - theirs) <= AUC_TOLERANCE, (ours, theirs)


LABEL_PAIRS = [(0, 1), (0.0, 1.0), (-1, 1), (2, 5), (False, True)]
SCORES = {   # tie patterns: few distinct values, probabilities, any sign, whole numbers
    "few": st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0]),
    "probability": st.floats(0, 1),
    "any": st.floats(-1e6, 1e6, allow_nan=False),
    "int": st.integers(-5, 5),
}


@settings(max_examples=400, deadline=None)
@given(data=st.data(), n=st.integers(1, 120), labels=st.sampled_from(LABEL_PAIRS),
       kind=st.sampled_from(sorted(SCORES)))
def test_roc_auc_twin_equals_sklearn(data, n, labels, kind):
    y = np.array(data.draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)))
    p = np.array(data.draw(st.lists(SCORES[kind], min_size=n, max_size=n)))
    assert_auc_matches(y, p)            # one class drawn: both nan


@pytest.mark.parametrize("n, positive_share, decimals", [
    (200_000, 0.5, None), (200_000, 0.02, None), (200_000, 0.3, 2), (150_001, 0.97, 0),
    (50_000, 0.4, 4)])
def test_roc_auc_twin_equals_sklearn_on_large_parts(n, positive_share, decimals):
    rng = np.random.default_rng(n)
    y = (rng.random(n) < positive_share).astype(np.float64)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.25, n), 0, 1)    # runs of 0 and 1 tie
    if decimals is not None:
        p = np.round(p, decimals)
    assert_auc_matches(y, p)
    assert_auc_matches(y, p - 0.5)      # negative scores take the argsort way


def test_roc_auc_leaves_undefined_cases_to_sklearn():
    auc = METRICS["roc_auc"]
    with pytest.raises(ValueError):
        auc(np.array([0, 1, 1]), np.array([0.2, np.nan, 0.4]))
    with pytest.raises(ValueError):
        auc(np.array([0, 1, 2]), np.array([0.2, 0.3, 0.4]))     # three classes
    with pytest.warns(UndefinedMetricWarning):                # one class: sklearn's nan
        assert np.isnan(auc(np.ones(2), np.array([0.1, 0.2])))


def test_roc_auc_twin_does_not_import_sklearn():
    code = ("import sys, numpy as np; from harness.metrics import METRICS; "
            "rng = np.random.default_rng(0); y = rng.integers(0, 2, 1000); "
            "METRICS['roc_auc'](y, rng.random(1000)); METRICS['roc_auc'](y, rng.normal(size=1000)); "
            "assert 'sklearn' not in sys.modules, 'sklearn imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
