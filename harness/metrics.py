"""Metric registry: a name -> how to score, which way is better, what it needs.

Every metric is computed by scikit-learn, except that the four cheapest ones
(accuracy, mse, rmse, mae) and roc_auc also carry a numpy twin used on
validated input: sklearn's input checks cost ~90 ms per million rows for
accuracy (it re-derives the label set), which is more than the whole rest of
the scorer, and its roc_auc sorts stably and builds the whole curve (over 5x the
twin's one sort and rank sums). ``tests/test_metrics.py`` holds the twins equal
to sklearn (roc_auc to 1e-12, property-tested).

A metric with a ``row_loss`` is decomposable into per-row losses; the
parameter-free Ladder needs that to measure the standard error of a paired
difference between two submissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .errors import SpecError
from .plugins import load_function

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the functions that compute: the student commands import this
# module (through harness.schemas) for TASKS alone and should start without numpy

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Metric:
    """How a competition is scored.

    Parameters
    ----------
    name : str
        The name used in competition.toml.
    func : callable
        ``func(y_true, y_pred) -> float``.
    greater_is_better : bool
        Direction of the leaderboard.
    tasks : tuple of str
        Tasks the metric fits.
    needs_proba : bool
        Predictions are probabilities of the positive class in [0, 1]
        (binary only) rather than labels.
    fast : callable or None
        A numpy twin of ``func`` for validated input (same value).
    row_loss : callable or None
        ``row_loss(y_true, y_pred) -> array`` of per-row losses (lower is
        better) whose mean is a monotone function of the metric.
    """

    name: str
    func: Callable
    greater_is_better: bool
    tasks: tuple
    needs_proba: bool = False
    fast: Callable | None = None
    row_loss: Callable | None = None

    def __call__(self, y_true, y_pred) -> float:
        f = self.fast or self.func
        return float(f(y_true, y_pred))

    @property
    def direction(self) -> str:
        return "higher is better" if self.greater_is_better else "lower is better"

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b``."""
        return a > b if self.greater_is_better else a < b


def _zero_one(y, p):
    import numpy as np

    return (np.asarray(y) != np.asarray(p)).astype(np.float64)


def _squared(y, p):
    import numpy as np

    d = np.asarray(y, dtype=np.float64) - np.asarray(p, dtype=np.float64)
    return d * d


def _absolute(y, p):
    import numpy as np

    return np.abs(np.asarray(y, dtype=np.float64) - np.asarray(p, dtype=np.float64))


def _log_loss_rows(y, p):
    import numpy as np

    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    y = np.asarray(y)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _sk(name: str, **fixed) -> Callable:
    """``sklearn.metrics.<name>``, imported on the first call: importing scikit-learn takes
    1.6 s, which every command (``--help`` included) paid at start when it was imported here."""
    def call(y, p):
        from sklearn import metrics as skm

        return getattr(skm, name)(y, p, **fixed)

    call.__name__ = call.__qualname__ = name
    return call


_mse = _sk("mean_squared_error")
_sk_roc_auc = _sk("roc_auc_score")


def _roc_auc(y_true, y_score) -> float:
    """ROC AUC as the Mann-Whitney statistic, from one sort and rank sums.

    AUC = (R - P (P + 1) / 2) / (P N) for P positives (the larger label) and N
    negatives, R the positives' rank sum with tied scores sharing their average
    rank. R is summed exactly in integers (twice every rank is whole) and divided
    once: the correctly rounded value, which sklearn's trapezoids reach to ~1e-16.
    Probabilities (finite float64 scores >= 0, the scorer's case) sort as 64-bit
    keys with the label in the lowest bit: a value sort, several times faster than
    an argsort. Anything but two classes of finite numeric scores goes to sklearn,
    which defines those cases (one class: nan and a warning; NaN scores: an error).
    """
    import numpy as np

    y, p = np.asarray(y_true), np.asarray(y_score)
    if (y.ndim != 1 or p.shape != y.shape or not len(y) or y.dtype.kind not in "biuf"
            or p.dtype.kind not in "biuf"):
        return _sk_roc_auc(y_true, y_score)
    lo, hi = y.min(), y.max()
    positive = y == hi
    n_pos = int(np.count_nonzero(positive))
    if not lo < hi or n_pos + int(np.count_nonzero(y == lo)) != len(y):
        return _sk_roc_auc(y_true, y_score)      # one class, NaN labels or more than two
    smallest, largest = p.min(), p.max()
    if p.dtype.kind == "f" and not (np.isfinite(smallest) and np.isfinite(largest)):
        return _sk_roc_auc(y_true, y_score)
    if p.dtype == np.float64 and smallest >= 0:
        # a float >= 0 orders as its bits do; shifted up one, the sign bit (set only on
        # -0.0) drops out and the lowest bit holds the label: among equal scores the
        # negatives sort first
        keys = p.view(np.uint64) << np.uint64(1)
        keys |= positive
        keys.sort()
        is_pos = (keys & np.uint64(1)).astype(bool)
        keys >>= np.uint64(1)
        return _mann_whitney_auc(keys, is_pos, n_pos)
    order = np.lexsort((positive, p))          # by score, negatives first among equals
    return _mann_whitney_auc(p[order], positive[order], n_pos)


def _mann_whitney_auc(values: np.ndarray, is_pos: np.ndarray, n_pos: int) -> float:
    """AUC from ascending scores with the negatives first among equal ones, and the labels.

    In that order the k-th positive (from 0) at position i has rank i + 1 and
    i - k negatives below it, so the plain rank sum is one sum of positions. Sharing
    a run's average rank lowers the positives' sum by half of (positives x negatives)
    of that run: only the runs of tied scores are visited for that.
    """
    import numpy as np

    n_neg = len(values) - n_pos
    # twice U = twice (R - P (P + 1) / 2), in Python integers: exact however large
    twice_u = 2 * int(np.flatnonzero(is_pos).sum()) - n_pos * (n_pos - 1)
    tied = values[1:] == values[:-1]
    if tied.any():
        in_run = np.zeros(len(values), dtype=bool)
        in_run[1:] = tied
        in_run[:-1] |= tied
        rows = np.flatnonzero(in_run)
        run_values = values[rows]
        starts = np.flatnonzero(np.r_[True, run_values[1:] != run_values[:-1]])
        pos = np.add.reduceat(is_pos[rows].view(np.uint8), starts, dtype=np.int64)
        size = np.diff(np.append(starts, len(rows)))
        twice_u -= int(np.dot(pos, size - pos))
    return twice_u / (2 * n_pos * n_neg)       # int / int rounds correctly


def _rmse(y, p):
    import numpy as np

    return np.sqrt(_mse(y, p))


def _accuracy_fast(y, p):
    import numpy as np

    return np.mean(np.asarray(y) == np.asarray(p))


def _mse_fast(y, p):
    import numpy as np

    return np.mean(_squared(y, p))


def _rmse_fast(y, p):
    import numpy as np

    return np.sqrt(np.mean(_squared(y, p)))


def _mae_fast(y, p):
    import numpy as np

    return np.mean(_absolute(y, p))


_CLS = ("binary", "multiclass")

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", _sk("accuracy_score"), True, _CLS,
               fast=_accuracy_fast, row_loss=_zero_one),
        Metric("balanced_accuracy", _sk("balanced_accuracy_score"), True, _CLS),
        Metric("f1_macro", _sk("f1_score", average="macro"), True, _CLS),
        Metric("f1", _sk("f1_score"), True, ("binary",)),
        Metric("roc_auc", _sk_roc_auc, True, ("binary",), needs_proba=True, fast=_roc_auc),
        Metric("log_loss", _sk("log_loss", labels=[0, 1]), False, ("binary",),
               needs_proba=True, row_loss=_log_loss_rows),
        Metric("mse", _mse, False, ("regression",),
               fast=_mse_fast, row_loss=_squared),
        Metric("rmse", _rmse, False, ("regression",),
               fast=_rmse_fast, row_loss=_squared),
        Metric("mae", _sk("mean_absolute_error"), False, ("regression",),
               fast=_mae_fast, row_loss=_absolute),
        Metric("r2", _sk("r2_score"), True, ("regression",)),
    ]
}


def get_metric(name: str, *, folder: Path | None = None, greater_is_better: bool | None = None,
               needs_proba: bool = False, task: str = "regression") -> Metric:
    """Look a metric up by name, or load a teacher's own from the competition folder.

    Parameters
    ----------
    name : str
        A registered name (``harness.metrics.METRICS``) or ``"FILE.py:FUNCTION"``,
        a function ``f(y_true, y_pred) -> float`` in the competition folder.
    folder : Path, optional
        The competition folder, for a custom metric.
    greater_is_better : bool, optional
        Required for a custom metric.
    """
    if name in METRICS:
        return METRICS[name]
    if ":" not in name:
        raise SpecError("scoring.metric", f"unknown metric {name!r}; expected one of "
                        f"{', '.join(sorted(METRICS))}, or 'FILE.py:FUNCTION' for your own")
    # loaded once per version of the file: Competition.metric calls this on every access
    func = load_function(name, folder, key="scoring.metric", expects="f(y_true, y_pred) -> float")
    if greater_is_better is None:
        raise SpecError("scoring.greater_is_better", "a custom metric needs "
                        "greater_is_better = true or false in [scoring]")
    return Metric(name, func, bool(greater_is_better), (task,), needs_proba=needs_proba)
