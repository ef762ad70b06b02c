"""Metric registry: a name -> how to score, which way is better, what it needs.

Every metric is computed by scikit-learn, except that the four cheapest ones
(accuracy, mse, rmse, mae) also carry a numpy twin used on validated input:
sklearn's input checks cost ~90 ms per million rows for accuracy (it
re-derives the label set), which is more than the whole rest of the scorer.
``tests/test_metrics.py`` holds the twins equal to sklearn.

A metric with a ``row_loss`` is decomposable into per-row losses; the
parameter-free Ladder needs that to measure the standard error of a paired
difference between two submissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import SpecError
from .plugins import load_function

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
    return (np.asarray(y) != np.asarray(p)).astype(np.float64)


def _squared(y, p):
    d = np.asarray(y, dtype=np.float64) - np.asarray(p, dtype=np.float64)
    return d * d


def _absolute(y, p):
    return np.abs(np.asarray(y, dtype=np.float64) - np.asarray(p, dtype=np.float64))


def _log_loss_rows(y, p):
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


def _rmse(y, p):
    return np.sqrt(_mse(y, p))


_CLS = ("binary", "multiclass")

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", _sk("accuracy_score"), True, _CLS,
               fast=lambda y, p: np.mean(np.asarray(y) == np.asarray(p)), row_loss=_zero_one),
        Metric("balanced_accuracy", _sk("balanced_accuracy_score"), True, _CLS),
        Metric("f1_macro", _sk("f1_score", average="macro"), True, _CLS),
        Metric("f1", _sk("f1_score"), True, ("binary",)),
        Metric("roc_auc", _sk("roc_auc_score"), True, ("binary",), needs_proba=True),
        Metric("log_loss", _sk("log_loss", labels=[0, 1]), False, ("binary",),
               needs_proba=True, row_loss=_log_loss_rows),
        Metric("mse", _mse, False, ("regression",),
               fast=lambda y, p: np.mean(_squared(y, p)), row_loss=_squared),
        Metric("rmse", _rmse, False, ("regression",),
               fast=lambda y, p: np.sqrt(np.mean(_squared(y, p))), row_loss=_squared),
        Metric("mae", _sk("mean_absolute_error"), False, ("regression",),
               fast=lambda y, p: np.mean(_absolute(y, p)), row_loss=_absolute),
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
