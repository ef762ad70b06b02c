"""The lecture's one-line diagnosis from a training run's losses (pure, no torch).

"High" and "low" are measured against a reference: the loss of the trivial
predictor that ignores the features (the training class frequencies, or the
training mean for regression). A model whose training loss is still more than
:data:`HIGH_TRAIN` of that reference has not fitted the training data: either
the model is too simple (model bias) or the optimizer failed (optimization).
A model that fits the training data but whose validation loss is large next to
its training loss does not generalize (overfitting); see :meth:`Thresholds.gap_limit`.

:data:`THRESHOLDS` is the one set of thresholds: this module's one-line
diagnosis (``harness baseline``) and the lab's flowchart (``harness lab
diagnose``) both use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BIAS = "model bias or optimization: try a bigger model, or compare with a smaller one"
OVERFIT = "overfitting: more data, augmentation, regularization, a simpler model"
FINE = "fine: training and validation losses are both low"

HIGH_TRAIN = 0.2   # training loss above 20% of the trivial predictor's: not fitted
HIGH_GAP = 0.1     # a gap above 10% of the trivial loss is large, whatever the training loss
GAP_FLOOR = 0.02   # a gap below 2% of it is noise, however small the training loss
WORSE_TRAIN = 0.05  # a model training worse than another by 5% of it: really worse


@dataclass(frozen=True)
class Thresholds:
    """The diagnosis's thresholds, as fractions of the trivial predictor's loss.

    Parameters
    ----------
    high_train : float
        A training loss above ``high_train * reference`` is high (not fitted).
    gap : float
        A validation loss above the training loss by more than ``gap * reference``
        is large (overfitting), whatever the training loss.
    gap_floor : float
        Below ``gap_floor * reference`` a gap is never large.
    worse_train : float
        When models are compared (the lab): a training loss higher than another
        model's by more than ``worse_train * reference`` is worse.

    Notes
    -----
    Between the floor and ``gap``, the gap is large when it exceeds the training
    loss itself: the validation loss is more than twice the training loss. A
    fraction of the reference alone cannot call a 256x256 MLP on digits at
    training loss 0.002 and validation 0.12 overfitting (a gap of 5% of
    ln 10), yet its validation loss is sixty times its training loss.
    """

    high_train: float = HIGH_TRAIN
    gap: float = HIGH_GAP
    gap_floor: float = GAP_FLOOR
    worse_train: float = WORSE_TRAIN

    def train_is_high(self, train_loss: float, reference: float) -> bool:
        """Whether ``train_loss`` is high: the model has not fitted the training data."""
        return not train_loss <= self.high_train * reference    # NaN is high

    def gap_limit(self, low: float, reference: float) -> float:
        """How far a loss may exceed ``low`` (the training loss) before the excess is large.

        ``low`` itself, kept between ``gap_floor`` and ``gap`` times ``reference``.
        """
        return max(self.gap_floor * reference, min(low, self.gap * reference))

    def gap_is_large(self, low: float, high: float, reference: float) -> bool:
        """Whether ``high`` (e.g. the validation loss) is large next to ``low`` (training)."""
        return not high - low <= self.gap_limit(low, reference)   # NaN is large


THRESHOLDS = Thresholds()


def diagnose(train_loss: float, val_loss: float, reference_loss: float, *,
             thresholds: Thresholds = THRESHOLDS) -> str:
    """The lecture's diagnosis of a run, in one line.

    Parameters
    ----------
    train_loss, val_loss : float
        The final (or kept) model's loss on the training and the validation data.
    reference_loss : float
        The trivial predictor's training loss, the yardstick for high and low.
    thresholds : Thresholds
        What counts as high; the default is the one set the lab shares.

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
    >>> diagnose(0.002, 0.12, 2.3).startswith("overfitting")   # 60 times the training loss
    True
    """
    values = (train_loss, val_loss, reference_loss)
    if not all(math.isfinite(v) for v in values):
        return f"{BIAS} (a loss is not finite: train {train_loss}, validation {val_loss})"
    ref = reference_loss if reference_loss > 0 else 1e-12
    t = thresholds
    numbers = (f"(train loss {train_loss:.4g} = {train_loss / ref:.0%} of the trivial "
               f"predictor's {reference_loss:.4g}, high above {t.high_train:.0%}; validation "
               f"{val_loss:.4g}, gap {val_loss - train_loss:.4g}, large above "
               f"{t.gap_limit(train_loss, ref):.3g})")
    if t.train_is_high(train_loss, ref):
        return f"{BIAS} {numbers}"
    if t.gap_is_large(train_loss, val_loss, ref):
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
