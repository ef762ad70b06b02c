"""The metric registry: directions, task fit, numpy twins equal to sklearn, row losses."""

import numpy as np
import pytest
from sklearn import metrics as skm

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
