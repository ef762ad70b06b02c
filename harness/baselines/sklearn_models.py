"""The scikit-learn baselines: a linear model and gradient-boosted trees.

``linear`` is logistic regression (classification) or ridge regression, its
L2 penalty set so that ``weight_decay`` means what it means for the torch
models (``loss + weight_decay / 2 * |w|^2`` on the mean loss). ``gbt`` is
HistGradientBoosting; its history holds the loss after each boosting
iteration, and ``early_stopping`` keeps the iteration count with the lowest
validation loss. Fits run on one thread (:data:`SKLEARN_THREADS`): the models
are small, and OpenMP's busy-waiting threads slow to a crawl on a machine
that is busy with other work.
"""

from __future__ import annotations

import warnings
from itertools import islice

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

from .config import BaselineConfig
from .data import Arrays

SKLEARN_THREADS = 1


def _loss(arrays: Arrays, y: np.ndarray, pred: np.ndarray) -> float:
    """Cross-entropy on class probabilities, or mean squared error."""
    if arrays.classes is not None:
        return float(log_loss(y, np.clip(pred, 1e-15, 1), labels=range(arrays.n_outputs)))
    return float(np.mean((pred - y) ** 2))


def fit_linear(cfg: BaselineConfig, arrays: Arrays):
    """Fit the linear model; returns ``(model, history)`` with one history entry."""
    n = len(arrays.y_train)
    if arrays.classes is not None:
        c = 1.0 / (cfg.weight_decay * n) if cfg.weight_decay > 0 else np.inf
        model = LogisticRegression(C=c, max_iter=1000, random_state=cfg.seed)
    elif cfg.weight_decay > 0:
        model = Ridge(alpha=cfg.weight_decay * n / 2)
    else:
        model = LinearRegression()
    with warnings.catch_warnings(), threadpool_limits(SKLEARN_THREADS):
        # unpenalized logistic regression on separable data never "converges": its
        # weights grow without bound; max_iter caps it, which is the point of the demo
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(arrays.x_train, arrays.y_train)
    out = _outputs(model, arrays)
    history = [{"epoch": 1, "train_loss": _loss(arrays, arrays.y_train, out(arrays.x_train)),
                "val_loss": _loss(arrays, arrays.y_val, out(arrays.x_val))}]
    return model, history


def fit_gbt(cfg: BaselineConfig, arrays: Arrays):
    """Fit gradient-boosted trees; returns ``(model, history, kept_iterations)``."""
    common = dict(learning_rate=cfg.lr, max_iter=cfg.epochs, max_leaf_nodes=cfg.hidden[0],
                  l2_regularization=cfg.weight_decay, early_stopping=False,
                  random_state=cfg.seed)
    if arrays.classes is not None:
        model = HistGradientBoostingClassifier(**common)
        staged = model.staged_predict_proba
    else:
        model = HistGradientBoostingRegressor(**common)
        staged = model.staged_predict
    with threadpool_limits(SKLEARN_THREADS):
        model.fit(arrays.x_train, arrays.y_train)
    history, best, kept, wait = [], np.inf, 0, 0
    for i, (p_tr, p_val) in enumerate(zip(staged(arrays.x_train), staged(arrays.x_val))):
        val = _loss(arrays, arrays.y_val, p_val)
        history.append({"epoch": i + 1, "train_loss": _loss(arrays, arrays.y_train, p_tr),
                        "val_loss": val})
        if not cfg.early_stopping:
            kept = i + 1
        elif val < best:
            best, kept, wait = val, i + 1, 0
        else:
            wait += 1
            if wait >= cfg.early_stopping:
                break
    return model, history, kept


def _outputs(model, arrays: Arrays, iterations: int | None = None):
    """``x -> class probabilities or numbers`` of a fitted model (after ``iterations``)."""

    def out(x):
        if iterations is not None and iterations < model.n_iter_:
            stages = (model.staged_predict_proba if arrays.classes is not None
                      else model.staged_predict)
            return next(islice(stages(x), iterations - 1, None))
        if arrays.classes is not None:
            return model.predict_proba(x)
        return model.predict(x)

    return out


def sklearn_predictor(model, arrays: Arrays, needs_proba: bool, iterations: int | None = None):
    """``x (encoded) -> predictions``: labels, P(last class), or numbers."""
    out = _outputs(model, arrays, iterations)

    def predict(x: np.ndarray) -> np.ndarray:
        p = out(x)
        if arrays.classes is None:
            return np.asarray(p, dtype=np.float64)
        if needs_proba:
            return np.asarray(p[:, -1], dtype=np.float64)
        return arrays.decode(np.argmax(p, axis=1))

    return predict
