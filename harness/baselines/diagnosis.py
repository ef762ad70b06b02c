"""The lecture's one-line diagnosis from a training run's losses (pure, no torch).

"High" and "low" are measured against a reference: the loss of the trivial
predictor that ignores the features (the training class frequencies, or the
training mean for regression). A model whose training loss is still more than
``high`` of that reference has not fitted the training data: either the model
is too simple (model bias) or the optimizer failed (optimization). A model that
fits the training data but whose validation loss exceeds its training loss by
more than ``gap`` of the reference does not generalize (overfitting).
"""

from __future__ import annotations

import math

import numpy as np

BIAS = "model bias or optimization: try a bigger model, or compare with a smaller one"
OVERFIT = "overfitting: more data, augmentation, regularization, a simpler model"
FINE = "fine: training and validation losses are both low"

HIGH_TRAIN = 0.5   # training loss above half the trivial predictor's: not fitted
HIGH_GAP = 0.15    # validation above training by 15% of the trivial loss: overfitted


def diagnose(train_loss: float, val_loss: float, reference_loss: float, *,
             high: float = HIGH_TRAIN, gap: float = HIGH_GAP) -> str:
    """The lecture's diagnosis of a run, in one line.

    Parameters
    ----------
    train_loss, val_loss : float
        The final (or kept) model's loss on the training and the validation data.
    reference_loss : float
        The trivial predictor's training loss, the yardstick for high and low.
    high : float
        Training loss above ``high * reference_loss`` is high.
    gap : float
        Validation loss above ``train_loss + gap * reference_loss`` is high.

    Returns
    -------
    str
        Starts with :data:`BIAS`, :data:`OVERFIT` or :data:`FINE`, followed by the
        numbers it was decided on.

    Examples
    --------
    >>> diagnose(2.0, 2.1, 2.3).startswith("model bias")
    True
    >>> diagnose(0.01, 0.9, 2.3).startswith("overfitting")
    True
    """
    values = (train_loss, val_loss, reference_loss)
    if not all(math.isfinite(v) for v in values):
        return f"{BIAS} (a loss is not finite: train {train_loss}, validation {val_loss})"
    ref = reference_loss if reference_loss > 0 else 1e-12
    numbers = (f"(train loss {train_loss:.4g} = {train_loss / ref:.0%} of the trivial "
               f"predictor's {reference_loss:.4g}; validation {val_loss:.4g})")
    if train_loss > high * ref:
        return f"{BIAS} {numbers}"
    if val_loss - train_loss > gap * ref:
        return f"{OVERFIT} {numbers}"
    return f"{FINE} {numbers}"


def trivial_loss(y_train, task: str, n_classes: int | None = None) -> float:
    """The training loss of the predictor that ignores the features.

    Classification: cross-entropy of predicting the training class frequencies
    (their entropy, in nats). Regression: mean squared error of the training
    mean (the variance).
    """
    y = np.asarray(y_train)
    if task == "regression":
        return float(np.var(y.astype(np.float64)))
    counts = np.bincount(y.astype(np.int64), minlength=n_classes or 0)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
