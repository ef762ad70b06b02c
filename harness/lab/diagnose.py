"""The lecture's flowchart: model bias, optimization issue, overfitting, mismatch, or fine.

Train networks of growing size on the same data, then let :func:`flowchart`
follow the lecture's order for the most flexible one (the model under
diagnosis), from the loss table alone:

1. **Training loss first.** High?

   - a smaller (shallower, narrower) model of the sweep reaches a lower
     training loss -> **optimization issue** (the 56- vs 20-layer figure: the
     bigger model could do at least what the smaller one does; the optimizer
     failed to find it);
   - otherwise -> **model bias**: the models are too simple, or the features
     lack the signal.

2. **Training loss low: then the validation loss.** Large next to the training
   loss -> **overfitting**.
3. **Validation fine, but rows from another distribution worse** -> **mismatch**:
   the test data differ from the training data. The lab's other distribution is
   a shifted copy of the validation rows (:func:`shifted_inputs`: images moved
   a few pixels, table features moved by some standard deviations), scored
   when ``shift`` is given.
4. Otherwise -> **fine**.

"High" and "large" are the baselines' thresholds
(:data:`harness.baselines.diagnosis.THRESHOLDS`, one set for both), as
fractions of the *null loss*, the training loss of the best constant
prediction, so they work for any data set. When the verdict is overfitting,
:func:`run_diagnose` also trains the diagnosed network with dropout and weight
decay (the lecture's remedy) to show how much of the gap they close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..baselines.diagnosis import THRESHOLDS, Thresholds
from .common import label_axes, pyplot, quiet, save_figure

MODEL_BIAS, OPTIMIZATION, OVERFITTING, MISMATCH, FINE = (
    "model bias", "optimization", "overfitting", "mismatch", "fine")


@dataclass
class Diagnosis:
    """The flowchart's verdict and the sentences that justify it."""

    kind: str
    lines: list[str] = field(default_factory=list)


def _loss(value) -> float:
    """A diverged (NaN) loss counts as infinitely high."""
    value = float(value)
    return math.inf if math.isnan(value) else value


def _show(x: float) -> str:
    return "diverged (NaN)" if math.isinf(x) else f"{x:.4g}"


def _limit(low: float, null: float, thr: Thresholds) -> str:
    """The gap limit above ``low`` in words: which of the three bounds applies."""
    limit = thr.gap_limit(low, null)
    if limit == thr.gap_floor * null:
        why = f"the floor, {thr.gap_floor:.0%} of the constant prediction's {null:.4g}"
    elif limit == thr.gap * null:
        why = f"the cap, {thr.gap:.0%} of the constant prediction's {null:.4g}"
    else:
        why = "the lower loss itself: the higher one is more than twice it"
    return f"{limit:.3g} ({why})"


def flowchart(table: pd.DataFrame, null_loss: float, thr: Thresholds = THRESHOLDS) -> Diagnosis:
    """The lecture's verdict on the most flexible model of a loss table. Pure.

    Parameters
    ----------
    table : DataFrame
        One row per model with columns ``model``, ``params`` (capacity; bigger
        means more flexible), ``train_loss`` and ``val_loss`` (final values),
        and optionally ``shifted_loss`` (the loss on rows from another
        distribution, for the mismatch branch). The model with the most
        parameters (the last of equals) is diagnosed; the others are the
        smaller models it is compared with.
    null_loss : float
        The training loss of the best constant prediction (the scale).
    thr : Thresholds
        Shared with the baselines' one-line diagnosis.

    Returns
    -------
    Diagnosis
        ``kind`` is one of :data:`MODEL_BIAS`, :data:`OPTIMIZATION`,
        :data:`OVERFITTING`, :data:`MISMATCH` or :data:`FINE`.
    """
    if table.empty:
        raise ValueError("flowchart needs at least one model's losses")
    if not null_loss > 0:
        raise ValueError(f"null_loss must be positive, got {null_loss}")
    rows = table.sort_values("params", kind="stable").to_dict("records")
    train = [_loss(r["train_loss"]) for r in rows]
    names = [str(r["model"]) for r in rows]
    me, name, t = rows[-1], names[-1], train[-1]
    shifted = me.get("shifted_loss")
    shifted = None if shifted is None or math.isnan(shifted) else float(shifted)

    # 1. training loss first: high is model bias or an optimization issue
    if thr.train_is_high(t, null_loss):
        high = (f"{name} ({me['params']:,} params) ends with training loss {_show(t)}, high "
                f"(above {thr.high_train:.0%} of the constant prediction's {null_loss:.4g})")
        better = [i for i in range(len(rows) - 1) if rows[i]["params"] < me["params"]
                  and t - train[i] > thr.worse_train * null_loss]
        if better:
            i = min(better, key=train.__getitem__)
            return Diagnosis(OPTIMIZATION, [
                f"Optimization issue: {high}, while the smaller {names[i]} "
                f"({rows[i]['params']:,} params) reaches {_show(train[i])}.",
                "A bigger model can always do at least what the smaller one does, so this is "
                "not model bias: the optimizer failed to find a good solution.",
                "Try: residual connections, normalization, a better initialization, an "
                "adaptive optimizer (Adam) or momentum, a tuned learning rate; start from the "
                "smaller model that trains.",
            ])
        lines = [f"Model bias: {high}, and no smaller model trains better."]
        if len(rows) > 1 and t < train[0] - thr.worse_train * null_loss:
            lines.append(f"A bigger model lowers it ({names[0]} {_show(train[0])} -> {name} "
                         f"{_show(t)}), not enough: make the model more flexible (more "
                         "features, wider or deeper networks).")
        else:
            lines.append("Bigger models do not lower it: the features may not carry the "
                         "signal, or the budget is too small; add features before capacity.")
        return Diagnosis(MODEL_BIAS, lines)

    # 2. training loss low: then the validation loss
    v = _loss(me["val_loss"])
    low = f"{name} reaches training loss {_show(t)} (low)"
    if thr.gap_is_large(t, v, null_loss):
        lines = [f"Overfitting: {low} but validation loss {_show(v)}: the gap {_show(v - t)} "
                 f"exceeds {_limit(t, null_loss, thr)}."]
        vals = [_loss(r["val_loss"]) for r in rows]
        k = min(range(len(rows)), key=vals.__getitem__)
        if k != len(rows) - 1:
            lines.append(f"A simpler model validates better: {names[k]} at {_show(vals[k])}.")
        if shifted is not None and thr.gap_is_large(v, shifted, null_loss):
            lines.append(f"The shifted rows score worse still ({_show(shifted)}): a mismatch "
                         "on top of the overfitting.")
        lines.append("Try: more training data, data augmentation, regularization (weight "
                     "decay, dropout, early stopping), or a simpler model.")
        return Diagnosis(OVERFITTING, lines)

    # 3. validation fine: another distribution may still be worse
    if shifted is not None and thr.gap_is_large(v, shifted, null_loss):
        return Diagnosis(MISMATCH, [
            f"Mismatch: {low} and validation loss {_show(v)} (close to it), but {_show(shifted)} "
            f"on the shifted rows: that gap {_show(shifted - v)} exceeds "
            f"{_limit(v, null_loss, thr)}.",
            "The model generalizes to new rows like its training rows, not to rows from "
            "another distribution; more data of the same kind or more regularization will not "
            "fix it. Train on data like the test data: collect it, or augment toward it "
            "(e.g. shifted images).",
        ])

    also = "" if shifted is None else f", {_show(shifted)} on the shifted rows"
    return Diagnosis(FINE, [
        f"Fine: {low} and validation loss {_show(v)}{also}; the gap is within "
        f"{_limit(t, null_loss, thr)}.",
    ])


def model_verdicts(table: pd.DataFrame, null_loss: float,
                   thr: Thresholds = THRESHOLDS) -> list[str]:
    """Each model's own verdict, compared with the smaller models only (table order). Pure."""
    params = table["params"].to_numpy()
    return [flowchart(table[(params < params[i]) | (table.index == label)], null_loss, thr).kind
            for i, label in enumerate(table.index)]


# ---------------------------------------------------------------------------------------
# running the models (torch from here on)

@dataclass(frozen=True)
class ModelSpec:
    """One model: ``depth`` hidden layers of ``width`` (0 = linear), and its regularization."""

    depth: int
    width: int
    activation: str = "relu"
    residual: bool = False
    norm: bool = False
    dropout: float = 0.0
    weight_decay: float = 0.0

    @property
    def name(self) -> str:
        if self.depth == 0:
            base = "linear (reference)"
        else:
            extras = "".join(["+res" if self.residual else "", "+norm" if self.norm else ""])
            base = f"{self.depth}x{self.width} {self.activation}{extras}"
        regular = "".join([f" +dropout {self.dropout:g}" if self.dropout else "",
                           f" +wd {self.weight_decay:g}" if self.weight_decay else ""])
        return base + regular


@dataclass(frozen=True)
class Budget:
    """How every model of a sweep is trained (the same for all: a fair comparison)."""

    epochs: int = 40
    batch_size: int | None = 64
    optimizer: str = "adam"
    lr: float | None = None


@dataclass(frozen=True)
class Remedy:
    """The regularization tried on the diagnosed network when it overfits."""

    dropout: float = 0.5
    weight_decay: float = 1e-3

    @property
    def active(self) -> bool:
        return bool(self.dropout or self.weight_decay)


# the example: a 256x256 MLP on digits fits the training rows almost exactly
DEFAULT_MODELS = (ModelSpec(0, 0), ModelSpec(1, 32), ModelSpec(2, 256))
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
    """The sweep's numbers: a row per model and seed, curves, and the verdict.

    ``table`` has a ``verdict`` column, each model judged against the smaller
    ones; ``remedy`` is the diagnosed network retrained with the remedy's
    regularization (one row, mean over seeds), or None when it was not run.
    """

    table: pd.DataFrame        # mean over seeds per model
    per_seed: pd.DataFrame     # one row per (model, seed)
    curves: dict               # model name -> (mean train curve, mean val curve)
    diagnosis: Diagnosis
    per_seed_kinds: list[str]
    null_loss: float
    remedy: pd.DataFrame | None = None
    thresholds: Thresholds = THRESHOLDS

    def summary(self) -> pd.DataFrame:
        """The sweep's table with the remedy's row below it."""
        return self.table if self.remedy is None else pd.concat([self.table, self.remedy],
                                                               ignore_index=True)


def shifted_inputs(data, amount: float):
    """The validation rows moved off the training distribution: the mismatch branch's rows.

    Images: every picture moved ``round(amount)`` pixels right and down, the
    uncovered border left empty (digits written off-centre). Tables: every
    feature moved by ``amount`` training standard deviations (the features are
    standardized), as rows from a later period or another population would be.

    Raises
    ------
    ValueError
        When an image shift is not between 1 and the image side minus 1 pixels.
    """
    import torch

    x = data.x_val
    side = data.image_side
    if not side:
        return x + amount
    k = int(round(amount))
    if not 0 < k < side:
        raise ValueError(f"shift {amount:g}: {data.slug}'s images are {side}x{side} pixels, so "
                         f"the shift must move them by 1 to {side - 1} pixels, e.g. 2")
    img = x.reshape(-1, data.channels, side, side)
    out = torch.zeros_like(img)
    out[..., k:, k:] = img[..., :side - k, :side - k]
    return out.reshape(len(x), -1)


def _train(data, runs, budget: Budget, x_shifted, progress, desc: str):
    """Train each (spec, seed) of ``runs``: a row of final numbers per run, mean curves per spec."""
    from .nets import fit, mean_curves, n_params, score, seeded_mlp

    rows, histories = [], {}
    for spec, seed in progress(runs, desc):
        model = seeded_mlp(data, spec.depth, spec.width, seed, activation=spec.activation,
                           residual=spec.residual, norm=spec.norm, dropout=spec.dropout)
        hist = fit(model, data, epochs=budget.epochs, batch_size=budget.batch_size,
                   optimizer=budget.optimizer, lr=budget.lr, weight_decay=spec.weight_decay,
                   seed=seed)
        histories.setdefault(spec.name, []).append(hist)
        row = {"model": spec.name, "seed": seed, "depth": spec.depth, "width": spec.width,
               "params": n_params(model), **hist.final()}
        if x_shifted is not None:
            row["shifted_loss"], row["shifted_acc"] = score(model, x_shifted, data.y_val,
                                                            data.task)
        rows.append(row)
    # diverged runs stop early: pad with NaN to average curves of equal length
    length = budget.epochs + 1
    curves = {name: (mean_curves([h.train_loss for h in hists], length),
                     mean_curves([h.val_loss for h in hists], length))
              for name, hists in histories.items()}
    return pd.DataFrame(rows), curves


def _mean_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per model, and the generalization gap."""
    cols = [c for c in ("train_loss", "val_loss", "shifted_loss", "train_acc", "val_acc",
                        "shifted_acc") if c in per_seed]
    table = (per_seed.groupby(["model", "depth", "width", "params"], sort=False)[cols]
             .mean().reset_index())
    table.insert(table.columns.get_loc("val_loss") + 1, "gap",
                 table["val_loss"] - table["train_loss"])
    return table


def run_diagnose(data, models=DEFAULT_MODELS, budget: Budget = Budget(), seeds=(0,),
                 thr: Thresholds = THRESHOLDS, *, shift: float = 0.0,
                 remedy: Remedy | None = Remedy(), progress=quiet) -> DiagnoseResult:
    """Train every model on ``data`` for every seed and apply :func:`flowchart`.

    The verdict is taken on the mean losses over seeds; the verdict of each
    seed alone is kept too, to show whether it reproduces. ``shift`` (0: off)
    also scores every model on :func:`shifted_inputs`, for the mismatch branch.
    When the verdict is overfitting and ``remedy`` is active, the diagnosed
    network is trained again with its dropout and weight decay. ``progress(iterable,
    desc)`` wraps the loops over the (model, seed) runs (see :mod:`harness.lab.common`).
    """
    models = list(models)
    seeds = list(seeds)
    x_shifted = shifted_inputs(data, shift) if shift else None
    per_seed, curves = _train(data, [(m, s) for m in models for s in seeds], budget, x_shifted,
                              progress, "training")
    table = _mean_table(per_seed)
    null = data.null_loss()
    diagnosis = flowchart(table, null, thr)
    kinds = [flowchart(g, null, thr).kind for _, g in per_seed.groupby("seed")]
    table["verdict"] = model_verdicts(table, null, thr)
    result = DiagnoseResult(table, per_seed, curves, diagnosis, kinds, null, thresholds=thr)
    if diagnosis.kind == OVERFITTING and remedy is not None and remedy.active:
        _try_remedy(result, data, models, budget, seeds, remedy, x_shifted, progress)
    return result


def _try_remedy(result: DiagnoseResult, data, models, budget, seeds, remedy: Remedy,
                x_shifted, progress) -> None:
    """Train the diagnosed network with ``remedy``; add its row, curves and a verdict line."""
    table, null, thr = result.table, result.null_loss, result.thresholds
    before = table.loc[table.sort_values("params", kind="stable").index[-1]]
    spec = replace({m.name: m for m in models}[before["model"]], dropout=remedy.dropout,
                   weight_decay=remedy.weight_decay)
    per_seed, curves = _train(data, [(spec, s) for s in seeds], budget, x_shifted, progress,
                              "regularized")
    after = _mean_table(per_seed)
    smaller = table[table["params"] < before["params"]]
    after["verdict"] = flowchart(pd.concat([smaller, after], ignore_index=True), null, thr).kind
    result.remedy = after
    result.per_seed = pd.concat([result.per_seed, per_seed], ignore_index=True)
    result.curves.update(curves)
    a = after.iloc[0]
    g0, g1 = before["gap"], a["gap"]
    change = (f"the gap shrinks from {g0:.3g} to {g1:.3g} ({1 - g1 / g0:.0%} smaller)"
              if g1 < g0 else f"the gap does not shrink ({g0:.3g} -> {g1:.3g})")
    result.diagnosis.lines.append(
        f"Tried here: the same {before['model']} with dropout {remedy.dropout:g} and weight "
        f"decay {remedy.weight_decay:g}: training loss {before['train_loss']:.3g} -> "
        f"{a['train_loss']:.3g}, validation loss {before['val_loss']:.3g} -> "
        f"{a['val_loss']:.3g}; {change}; by the same thresholds it is {a['verdict']}.")


def plot_curves(result: DiagnoseResult, path: Path, title: str) -> Path:
    """Training and validation loss per epoch, one panel per model, on a log scale.

    Log, because the losses that matter are small: a training loss of 0.002
    under a validation loss of 0.12 would both sit on the axis of a linear plot;
    on a log scale the gap between them is plain. The shaded band is the gap;
    a triangle marks the final loss on the shifted rows when they were scored.
    """
    import numpy as np

    plt = pyplot()
    summary = result.summary()
    verdicts = dict(zip(summary["model"], summary["verdict"]))
    shifted = (dict(zip(summary["model"], summary["shifted_loss"]))
               if "shifted_loss" in summary else {})
    names = list(result.curves)
    cols = min(3, len(names))
    nrows = -(-len(names) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.3 * cols, 3.4 * nrows), sharey=True,
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        tr, va = (np.asarray(c, dtype=float) for c in result.curves[name])
        epochs = np.arange(len(tr))
        ax.plot(epochs, tr, label="training")
        ax.plot(epochs, va, label="validation")
        ax.fill_between(epochs, tr, va, where=va > tr, color="tab:orange", alpha=0.15,
                        label="gap")
        if name in shifted:
            ax.plot([epochs[-1]], [shifted[name]], "v", color="tab:red", label="shifted rows")
        ax.axhline(result.null_loss, color="grey", ls=":", lw=1, label="constant prediction")
        ax.set_yscale("log")
        label_axes(ax, "epoch", "loss (log scale)", f"{name}: {verdicts.get(name, '')}",
                   legend=ax is axes.flat[0])
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)
