"""The lecture's flowchart: model bias, optimization issue, overfitting, or fine.

Train a simple, easy-to-optimize reference (the linear model) and networks of
increasing depth/width on the same data, then let :func:`flowchart` decide
from the loss table alone:

1. a bigger network ends with a *higher training loss* than a smaller one
   (the 56- vs 20-layer figure) -> **optimization issue**: the bigger model
   could do at least as well, the optimizer failed to find it;
2. otherwise, every training loss is high -> **model bias**: the models are
   too simple (a bigger one lowers the loss) or the features lack the signal;
3. otherwise, training loss low but validation loss high -> **overfitting**;
4. otherwise -> **fine**.

Losses are judged against the *null loss*, the training loss of the best
constant prediction, so the same tolerances work for any data set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .common import plot_loss_curves, quiet

MODEL_BIAS, OPTIMIZATION, OVERFITTING, FINE = "model bias", "optimization", "overfitting", "fine"


@dataclass(frozen=True)
class Tolerances:
    """The flowchart's thresholds, as fractions of the null loss.

    Parameters
    ----------
    high_train : float
        A training loss above ``high_train * null`` is "high" (model bias).
    worse_train : float
        A bigger model whose training loss exceeds a smaller one's by more than
        ``worse_train * null`` shows an optimization issue.
    gap : float
        Validation minus training loss above ``gap * null`` is overfitting.
    """

    high_train: float = 0.2
    worse_train: float = 0.05
    gap: float = 0.1


@dataclass
class Diagnosis:
    """The flowchart's verdict and the sentences that justify it."""

    kind: str
    lines: list[str] = field(default_factory=list)


def _loss(value) -> float:
    """A diverged (NaN) loss counts as infinitely high."""
    value = float(value)
    return math.inf if math.isnan(value) else value


def flowchart(table: pd.DataFrame, null_loss: float, tol: Tolerances = Tolerances()) -> Diagnosis:
    """Decide model bias / optimization / overfitting / fine from a loss table.

    Pure: looks only at the numbers given.

    Parameters
    ----------
    table : DataFrame
        One row per model with columns ``model``, ``params`` (capacity; bigger
        means more flexible), ``train_loss`` and ``val_loss`` (final values).
    null_loss : float
        The training loss of the best constant prediction (the scale).
    tol : Tolerances

    Returns
    -------
    Diagnosis
    """
    if table.empty:
        raise ValueError("flowchart needs at least one model's losses")
    if not null_loss > 0:
        raise ValueError(f"null_loss must be positive, got {null_loss}")
    rows = table.sort_values("params", kind="stable").to_dict("records")
    train = [_loss(r["train_loss"]) for r in rows]
    names = [str(r["model"]) for r in rows]

    # 1. a more flexible model that trains worse than a less flexible one
    worst = None
    for i, small in enumerate(rows):
        for j in range(i + 1, len(rows)):
            if rows[j]["params"] > small["params"]:
                excess = train[j] - train[i]
                if excess > tol.worse_train * null_loss and (worst is None or excess > worst[0]):
                    worst = (excess, i, j)
    if worst is not None:
        _, i, j = worst
        return Diagnosis(OPTIMIZATION, [
            f"Optimization issue: {names[j]} ({rows[j]['params']:,} params) ends with training "
            f"loss {_show(train[j])}, higher than {names[i]} ({rows[i]['params']:,} params) at "
            f"{_show(train[i])}.",
            "A bigger model can always do at least what the smaller one does, so this is not "
            "model bias and not overfitting: the optimizer failed to find a good solution.",
            "Try: residual connections, normalization, a better initialization, an adaptive "
            "optimizer (Adam) or momentum, a tuned learning rate; start from the smaller "
            "model that trains.",
        ])

    best = min(range(len(rows)), key=lambda k: train[k])
    # 2. every training loss high
    if train[best] > tol.high_train * null_loss:
        lowers = len(rows) > 1 and train[-1] < train[0] - tol.worse_train * null_loss
        lines = [f"Model bias: every training loss is high; the best, {names[best]}, reaches "
                 f"{_show(train[best])} (the constant prediction scores {null_loss:.4g}; "
                 f"'high' means above {tol.high_train:g} of it)."]
        if lowers:
            lines.append(f"A bigger model lowers it ({names[0]} {_show(train[0])} -> "
                         f"{names[-1]} {_show(train[-1])}): make the model more flexible "
                         "(more features, wider or deeper networks).")
        else:
            lines.append("Bigger models do not lower it: the features may not carry the "
                         "signal, or the budget is too small; add features before capacity.")
        return Diagnosis(MODEL_BIAS, lines)

    # 3. training low, validation high
    val_best = _loss(rows[best]["val_loss"])
    gap = val_best - train[best]
    if gap > tol.gap * null_loss:
        lines = [f"Overfitting: {names[best]} reaches training loss {_show(train[best])} "
                 f"but validation loss {_show(val_best)} (gap {_show(gap)} > "
                 f"{tol.gap:g} x the constant prediction's {null_loss:.4g})."]
        vals = [_loss(r["val_loss"]) for r in rows]
        k = min(range(len(rows)), key=lambda m: vals[m])
        if k != best:
            lines.append(f"A simpler model validates better: {names[k]} at {_show(vals[k])}.")
        lines.append("Try: more training data, data augmentation, regularization (weight "
                     "decay, dropout, early stopping), or a simpler model.")
        return Diagnosis(OVERFITTING, lines)

    return Diagnosis(FINE, [
        f"Fine: {names[best]} reaches training loss {_show(train[best])} and validation loss "
        f"{_show(val_best)}; neither is high (tolerances: training {tol.high_train:g}, gap "
        f"{tol.gap:g} x {null_loss:.4g}).",
    ])


def _show(x: float) -> str:
    return "diverged (NaN)" if math.isinf(x) else f"{x:.4g}"


# ---------------------------------------------------------------------------------------
# running the models (torch from here on)

@dataclass(frozen=True)
class ModelSpec:
    """One model of the sweep: ``depth`` hidden layers of ``width`` (0 = linear)."""

    depth: int
    width: int
    activation: str = "relu"
    residual: bool = False
    norm: bool = False

    @property
    def name(self) -> str:
        if self.depth == 0:
            return "linear (reference)"
        extras = "".join(["+res" if self.residual else "", "+norm" if self.norm else ""])
        return f"{self.depth}x{self.width} {self.activation}{extras}"


@dataclass(frozen=True)
class Budget:
    """How every model of a sweep is trained (the same for all: a fair comparison)."""

    epochs: int = 30
    batch_size: int | None = 64
    optimizer: str = "adam"
    lr: float | None = None


DEFAULT_MODELS = (ModelSpec(0, 0), ModelSpec(1, 32), ModelSpec(2, 64), ModelSpec(4, 128))
PRESETS = {
    # the 56- vs 20-layer figure on CPU: a deep plain tanh MLP (no residuals, no
    # normalization, default init) under plain SGD shrinks its signal layer by layer and
    # cannot train; the shallow one, same width, data and budget, learns
    "optimization": ((ModelSpec(0, 0), ModelSpec(3, 32, "tanh"), ModelSpec(24, 32, "tanh")),
                     Budget(epochs=20, batch_size=64, optimizer="sgd", lr=0.3)),
    "default": (DEFAULT_MODELS, Budget()),
}


@dataclass
class DiagnoseResult:
    """The sweep's numbers: a row per model and seed, curves, and the verdict."""

    table: pd.DataFrame        # mean over seeds per model
    per_seed: pd.DataFrame     # one row per (model, seed)
    curves: dict               # model name -> (mean train curve, mean val curve)
    diagnosis: Diagnosis
    per_seed_kinds: list[str]
    null_loss: float


def run_diagnose(data, models=DEFAULT_MODELS, budget: Budget = Budget(), seeds=(0,),
                 tol: Tolerances = Tolerances(), progress=quiet) -> DiagnoseResult:
    """Train every model on ``data`` for every seed and apply :func:`flowchart`.

    The verdict is taken on the mean losses over seeds; the verdict of each
    seed alone is kept too, to show whether it reproduces. ``progress(iterable,
    desc)`` wraps the loop over the (model, seed) runs (see :mod:`harness.lab.common`).
    """
    import numpy as np

    from .nets import fit, n_params, seeded_mlp

    models = list(models)
    rows = []
    runs = [[] for _ in models]       # histories per model, in seed order
    for i, seed in progress([(i, s) for i in range(len(models)) for s in seeds], "training"):
        spec = models[i]
        model = seeded_mlp(data, spec.depth, spec.width, seed, activation=spec.activation,
                           residual=spec.residual, norm=spec.norm)
        hist = fit(model, data, epochs=budget.epochs, batch_size=budget.batch_size,
                   optimizer=budget.optimizer, lr=budget.lr, seed=seed)
        runs[i].append(hist)
        rows.append({"model": spec.name, "seed": seed, "depth": spec.depth,
                     "width": spec.width, "params": n_params(model), **hist.final()})
    # diverged runs stop early: pad with NaN to average curves of equal length
    length = budget.epochs + 1
    pad = lambda c: np.asarray(c + [np.nan] * (length - len(c)))  # noqa: E731
    curves = {spec.name: (np.nanmean([pad(h.train_loss) for h in hists], axis=0),
                          np.nanmean([pad(h.val_loss) for h in hists], axis=0))
              for spec, hists in zip(models, runs)}
    per_seed = pd.DataFrame(rows)
    cols = ["train_loss", "val_loss", "train_acc", "val_acc"]
    table = (per_seed.groupby(["model", "depth", "width", "params"], sort=False)[cols]
             .mean().reset_index())
    null = data.null_loss()
    kinds = [flowchart(g, null, tol).kind for _, g in per_seed.groupby("seed")]
    return DiagnoseResult(table, per_seed, curves, flowchart(table, null, tol), kinds, null)


def plot_curves(result: DiagnoseResult, path: Path, title: str) -> Path:
    """Training and validation loss per epoch, one line per model (mean over seeds)."""
    return plot_loss_curves(result.curves, path, title, result.null_loss)
