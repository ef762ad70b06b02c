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
from threadpoolctl import threadpool_limits

from .config import BaselineConfig
from .data import Arrays

SKLEARN_THREADS = 1
GBT_ROUND = 50   # the first round of boosting iterations under early stopping


def _loss(arrays: Arrays, y: np.ndarray, pred: np.ndarray) -> float:
    """Cross-entropy on class probabilities, or mean squared error.

    The cross-entropy is sklearn's ``log_loss`` (probabilities clipped to 1e-15)
    written out: gbt evaluates it after every boosting iteration, and log_loss's
    input checks cost more than a small table's predictions.
    """
    if arrays.classes is not None:
        picked = np.asarray(pred)[np.arange(len(y)), np.asarray(y)]
        return float(-np.mean(np.log(np.clip(picked, 1e-15, 1))))
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
    """Fit gradient-boosted trees; returns ``(model, history, kept_iterations)``.

    With early stopping the trees grow in rounds (``warm_start``), each as long
    as all before it and at least :data:`GBT_ROUND` iterations, until the
    validation loss has not improved for ``early_stopping`` iterations: a preset
    allowed 800 iterations that stops after 60 fits 100, not 800. The training
    loss per iteration is computed once at the end (the learning curve).
    """
    common = dict(learning_rate=cfg.lr, max_leaf_nodes=cfg.hidden[0],
                  l2_regularization=cfg.weight_decay, early_stopping=False,
                  warm_start=cfg.early_stopping > 0, random_state=cfg.seed)
    if arrays.classes is not None:
        model = HistGradientBoostingClassifier(**common)
        staged = model.staged_predict_proba
    else:
        model = HistGradientBoostingRegressor(**common)
        staged = model.staged_predict
    val_losses, best, kept, wait = [], np.inf, 0, 0
    with threadpool_limits(SKLEARN_THREADS):    # the staged predictions use OpenMP too
        while len(val_losses) < cfg.epochs and not (
                cfg.early_stopping and wait >= cfg.early_stopping):
            step = (max(GBT_ROUND, cfg.early_stopping, len(val_losses)) if cfg.early_stopping
                    else cfg.epochs)
            model.set_params(max_iter=min(cfg.epochs, len(val_losses) + step))
            model.fit(arrays.x_train, arrays.y_train)
            for p_val in islice(staged(arrays.x_val), len(val_losses), None):
                val = _loss(arrays, arrays.y_val, p_val)
                val_losses.append(val)
                if not cfg.early_stopping:
                    kept = len(val_losses)
                elif val < best:
                    best, kept, wait = val, len(val_losses), 0
                else:
                    wait += 1
                    if wait >= cfg.early_stopping:
                        break
        train_losses = [_loss(arrays, arrays.y_train, p)
                        for p in islice(staged(arrays.x_train), len(val_losses))]
    history = [{"epoch": i + 1, "train_loss": tr, "val_loss": va}
               for i, (tr, va) in enumerate(zip(train_losses, val_losses))]
    return model, history, kept


def _outputs(model, arrays: Arrays, iterations: int | None = None):
    """``x -> class probabilities or numbers`` of a fitted model (after ``iterations``)."""

    def out(x):
        with threadpool_limits(SKLEARN_THREADS):
            return raw(x)

    def raw(x):
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
