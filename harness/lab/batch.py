"""Batch size: time per update and per epoch, and whether large batches generalize worse.

The lecture: a batch of 1 updates after every row (noisy), the full batch once
per epoch (steady); parallel hardware makes a bigger batch cost little more
per update, so an epoch of big batches is fast. And a claim (Keskar et al.,
2017): trained to convergence, small and large batches reach similar training
accuracy, yet the large batches do worse on validation.

:func:`run_batch` trains the same network from the same initializations with
every batch size under one :class:`BatchBudget`:

- ``updates`` (the default): the same number of parameter updates for every
  batch size, so the full batch is trained as long as a batch of 1, not a
  thousand times less (at equal epochs a full batch makes one update per
  epoch and stays an untrained model);
- ``epochs``: the same passes over the training rows for every batch size.

:func:`judge_claim` tests the claim among the batch sizes that converged,
against the noise of the validation set and of the seeds, and
:func:`batch_verdict` says what came out, including when the claim does not
show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..baselines.diagnosis import THRESHOLDS
from .common import label_axes, pyplot, quiet, save_figure

DEFAULT_BATCH_SIZES = (1, 8, 32, 128, None)   # None: the full training set
BUDGETS = ("updates", "epochs")
HELD, OPPOSITE, NO_DIFFERENCE, UNTESTED = "held", "opposite", "no difference", "not testable"


@dataclass(frozen=True)
class BatchBudget:
    """How long every batch size trains: ``amount`` updates, or ``amount`` epochs."""

    kind: str = "updates"
    amount: int = 2000

    def __post_init__(self):
        if self.kind not in BUDGETS:
            raise ValueError(f"budget {self.kind!r}; choose from {', '.join(BUDGETS)}")
        if self.amount < 1:
            raise ValueError(f"the budget must be at least 1 {self.kind[:-1]}, got {self.amount}")

    def epochs(self, per_epoch: int) -> int:
        """Epochs to run at ``per_epoch`` updates per epoch (the last may stop early)."""
        return math.ceil(self.amount / per_epoch) if self.kind == "updates" else self.amount

    def max_updates(self, per_epoch: int) -> int:
        return self.amount if self.kind == "updates" else self.amount * per_epoch

    def __str__(self) -> str:
        return f"{self.amount:,} {self.kind if self.amount != 1 else self.kind[:-1]}"


def run_batch(data, batch_sizes=DEFAULT_BATCH_SIZES, budget: BatchBudget = BatchBudget(), *,
              depth: int = 1, width: int = 32, optimizer: str = "sgd", lr: float = 0.1,
              seeds=(0,), curve_points: int = 100, progress=quiet):
    """Train one model per batch size and seed, from the seed's initialization, same lr.

    Parameters
    ----------
    data : LabData
    batch_sizes : sequence of int or None
        None (or at least the training size) is the full batch.
    budget : BatchBudget
    depth, width, optimizer, lr
        The network and its optimizer, the same for every batch size.
    seeds : sequence of int
        Each seed gives every batch size the same initialization.
    curve_points : int
        About this many points per learning curve (evaluating costs time).
    progress : callable
        Wraps the loop over the (batch size, seed) runs (see :mod:`harness.lab.common`).

    Returns
    -------
    table : DataFrame
        Per batch size, mean over seeds: updates, epochs (passes over the
        training rows), milliseconds per update and seconds per epoch (training
        only), final training/validation loss and accuracy, and the spread of
        the validation accuracy over seeds.
    per_seed : DataFrame
        The same per (batch size, seed).
    curves : dict
        Batch size -> dict of ``updates`` (x) and mean ``validation_accuracy`` /
        ``validation_loss`` curves.
    """
    from .nets import fit, mean_curves, seeded_mlp

    n = len(data.y_train)
    sizes = list(dict.fromkeys(n if bs is None else min(int(bs), n) for bs in batch_sizes))
    rows, histories = [], {}
    for size, seed in progress([(s, k) for s in sizes for k in seeds], "batch sizes"):
        per_epoch = math.ceil(n / size)
        epochs = budget.epochs(per_epoch)
        model = seeded_mlp(data, depth, width, seed)
        hist = fit(model, data, epochs=epochs, batch_size=size, optimizer=optimizer, lr=lr,
                   seed=seed, max_updates=budget.max_updates(per_epoch),
                   eval_every=max(1, epochs // curve_points))
        histories.setdefault(size, []).append(hist)
        seconds = float(np.sum(hist.epoch_seconds))
        final = hist.final()
        rows.append({"batch_size": size, "seed": seed, "updates": hist.updates,
                     "epochs": hist.updates / per_epoch, "updates_per_epoch": per_epoch,
                     "ms_per_update": 1000 * seconds / max(1, hist.updates),
                     "sec_per_epoch": seconds * per_epoch / max(1, hist.updates),
                     "training_loss": final["train_loss"],
                     "validation_loss": final["val_loss"],
                     "training_accuracy": final["train_acc"],
                     "validation_accuracy": final["val_acc"]})
    per_seed = pd.DataFrame(rows)
    table = per_seed.drop(columns="seed").groupby("batch_size", sort=False).mean()
    table["validation_accuracy_sd"] = per_seed.groupby("batch_size", sort=False)[
        "validation_accuracy"].std()
    table = table.reset_index()
    table[["updates", "updates_per_epoch"]] = table[["updates", "updates_per_epoch"]].astype(int)
    curves = {}
    for size, hists in histories.items():
        x = max((h.at_update for h in hists), key=len)
        curves[size] = {"updates": np.asarray(x),
                        "validation_accuracy": mean_curves([h.val_acc for h in hists], len(x)),
                        "validation_loss": mean_curves([h.val_loss for h in hists], len(x))}
    return table, per_seed, curves


def _by_accuracy(table: pd.DataFrame) -> bool:
    """Classification is judged by accuracy; regression (no accuracy) by loss."""
    return not table["validation_accuracy"].isna().all()


def judge_claim(table: pd.DataFrame, per_seed: pd.DataFrame, *, n_validation: int,
                null_loss: float, margin: float = 0.01) -> dict:
    """Test the claim: similar training accuracy, large batches worse on validation. Pure.

    A batch size has *converged* when its training loss is not high by the
    diagnosis's shared threshold (:data:`harness.baselines.diagnosis.THRESHOLDS`,
    against the constant prediction's loss ``null_loss``) and its training
    accuracy is within ``margin`` of the best one (regression: its training
    loss within ``margin * null_loss`` of the lowest). Among the
    converged sizes, the smallest and the largest are compared on validation.
    A difference counts only beyond the noise: twice the standard error of
    the difference, combining one accuracy's binomial error on
    ``n_validation`` rows with the spread of the per-seed differences, and at
    least ``margin``.

    Returns
    -------
    dict
        ``outcome`` (:data:`HELD`, :data:`OPPOSITE`, :data:`NO_DIFFERENCE` or
        :data:`UNTESTED`), ``converged`` and ``not_converged`` (batch sizes),
        ``best_training``, and when tested ``small``, ``large`` (batch sizes),
        ``difference`` (small minus large: how much better the small batch
        validates; loss differences are signed so that positive means the same)
        and ``noise``.
    """
    by_acc = _by_accuracy(table)
    t = table.sort_values("batch_size").reset_index(drop=True)
    fitted = ~t["training_loss"].map(lambda loss: THRESHOLDS.train_is_high(loss, null_loss))
    if by_acc:
        best = float(t["training_accuracy"].max())
        ok = fitted & (t["training_accuracy"] >= best - margin)
    else:
        best = float(t["training_loss"].min())
        ok = fitted & (t["training_loss"] <= best + margin * null_loss)
    claim = {"outcome": UNTESTED, "measure": "accuracy" if by_acc else "loss",
             "best_training": best,
             "converged": [int(b) for b in t.loc[ok, "batch_size"]],
             "not_converged": [int(b) for b in t.loc[~ok, "batch_size"]]}
    if len(claim["converged"]) < 2:
        return claim
    small, large = claim["converged"][0], claim["converged"][-1]
    key, sign = ("validation_accuracy", 1) if by_acc else ("validation_loss", -1)
    value = t.set_index("batch_size")[key]
    diff = sign * float(value[small] - value[large])
    paired = per_seed.pivot(index="seed", columns="batch_size", values=key)
    seed_se = (float((paired[small] - paired[large]).std() / math.sqrt(len(paired)))
               if len(paired) > 1 else 0.0)
    if by_acc:
        p = float((value[small] + value[large]) / 2)
        row_se = math.sqrt(max(p * (1 - p), 0.0) / max(1, n_validation))
        floor = margin
    else:
        row_se, floor = 0.0, margin * null_loss
    noise = max(floor, 2 * math.hypot(row_se, seed_se))
    outcome = HELD if diff > noise else OPPOSITE if diff < -noise else NO_DIFFERENCE
    claim.update(outcome=outcome, small=small, large=large, difference=diff, noise=noise,
                 small_value=float(value[small]), large_value=float(value[large]))
    return claim


def _sizes_text(sizes, n: int) -> str:
    """'8' or '1, 8 and 1,078 (the full training set)'."""
    names = [f"{b:,}" + (" (the full training set)" if b == n else "") for b in sizes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def batch_verdict(table: pd.DataFrame, claim: dict, budget: BatchBudget, *, n_train: int,
                  n_validation: int, optimizer: str, lr: float, seeds: int,
                  network: str) -> list[str]:
    """Plain sentences on time, convergence and the claim, by batch size. Pure."""
    t = table.sort_values("batch_size").reset_index(drop=True)
    rows = t.to_dict("records")   # keeps ints as ints (iloc on mixed columns gives floats)
    small, full = rows[0], rows[-1]
    ratio = full["ms_per_update"] / small["ms_per_update"]
    measure = claim["measure"]
    train_key, val_key = f"training_{measure}", f"validation_{measure}"
    lines = [
        f"Time per update: {small['ms_per_update']:.3g} ms at batch {small['batch_size']:,}, "
        f"{full['ms_per_update']:.3g} ms at batch {full['batch_size']:,} "
        f"({full['batch_size'] / small['batch_size']:.0f}x the rows for {ratio:.1f}x the "
        "time: rows in a batch are computed in parallel).",
        f"Time per epoch: {small['sec_per_epoch']:.3g} s at batch {small['batch_size']:,} "
        f"({small['updates_per_epoch']:,} updates) vs {full['sec_per_epoch']:.3g} s at batch "
        f"{full['batch_size']:,} ({full['updates_per_epoch']:,} update"
        f"{'s' if full['updates_per_epoch'] != 1 else ''}).",
    ]
    if budget.kind == "updates":
        lines.append(f"Budget: {budget} for every batch size, so batch {small['batch_size']:,} "
                     f"sees {small['epochs']:.3g} epochs of the {n_train:,} training rows and "
                     f"batch {full['batch_size']:,} {full['epochs']:,.0f}.")
    else:
        lines.append(f"Budget: {budget} for every batch size, so batch {small['batch_size']:,} "
                     f"makes {small['updates']:,} updates and batch {full['batch_size']:,} "
                     f"{full['updates']:,}.")
    finals = ", ".join(f"{r[train_key]:.3f} at batch {r['batch_size']:,}" for r in rows)
    line = f"Training {measure} at the end: {finals}."
    if claim["not_converged"]:
        line += (f" Not converged (training loss high, or {measure} more than the margin "
                 f"from the best, {claim['best_training']:.3f}): "
                 f"batch{'es' if len(claim['not_converged']) > 1 else ''} "
                 f"{_sizes_text(claim['not_converged'], n_train)}; left out of the comparison.")
    lines.append(line)

    if claim["outcome"] == UNTESTED:
        more = "--updates" if budget.kind == "updates" else "--epochs"
        lines.append("The lecture's claim (similar training accuracy, large batches worse on "
                     f"validation) could not be tested: fewer than two batch sizes converged "
                     f"in {budget}; give a larger budget ({more}).")
    else:
        a, b = claim["small"], claim["large"]
        pair = (f"validation {measure} {claim['small_value']:.3f} at batch {a:,} vs "
                f"{claim['large_value']:.3f} at batch {b:,}")
        noise = (f"noise +/-{claim['noise']:.3f}: twice the standard error on {n_validation:,} "
                 f"validation rows and {seeds} seed{'s' if seeds != 1 else ''}")
        said = {
            HELD: f"The lecture's claim held here: with similar training {measure}, the "
                  f"largest converged batch validates worse: {pair} ({noise}).",
            OPPOSITE: f"The lecture's claim did not hold here: the largest converged batch "
                      f"validates better: {pair} ({noise}).",
            NO_DIFFERENCE: f"The lecture's claim did not show here: with similar training "
                           f"{measure}, large batches were not worse on validation: {pair}, a "
                           f"difference within the {noise}.",
        }
        lines.append(said[claim["outcome"]])
    lines.append(
        f"Caveat: batch sizes {_sizes_text(list(t['batch_size']), n_train)} only; one "
        f"network ({network}) and one learning rate for all ({optimizer}, lr {lr:g}), not one "
        f"tuned per batch size; {seeds} seed{'s' if seeds != 1 else ''}. The claim comes from "
        "larger networks and data sets; a small network on small data may not show it.")
    return lines


def plot_batch(table: pd.DataFrame, curves: dict, claim: dict, path: Path,
               budget: BatchBudget) -> Path:
    """Time against batch size, final training/validation numbers, and validation curves."""
    plt = pyplot()
    t = table.sort_values("batch_size")
    measure = claim["measure"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].loglog(t["batch_size"], t["ms_per_update"], "o-", label="ms per update")
    axes[0].loglog(t["batch_size"], 1000 * t["sec_per_epoch"], "s-", label="ms per epoch")
    axes[0].set_title("time (training only)")
    axes[1].semilogx(t["batch_size"], t[f"training_{measure}"], "o-", label="training")
    spread = t["validation_accuracy_sd"]
    yerr = spread.fillna(0) if measure == "accuracy" and spread.notna().any() else None
    axes[1].errorbar(t["batch_size"], t[f"validation_{measure}"], yerr=yerr, fmt="s-",
                     capsize=3, label="validation (± sd over seeds)")
    bad = t[t["batch_size"].isin(claim["not_converged"])]
    if len(bad):
        axes[1].plot(bad["batch_size"], bad[f"training_{measure}"], "x", color="red", ms=10,
                     label="not converged")
    axes[1].set_title(f"final {measure}, {budget}")
    for ax in axes[:2]:
        label_axes(ax, "batch size")
    per_epoch = t.set_index("batch_size")["updates_per_epoch"]
    for size, c in curves.items():
        if budget.kind == "updates":      # thousands of updates: a log axis (update 0 at 1)
            x = np.maximum(c["updates"], 1)
        else:
            x = c["updates"] / per_epoch[size]
        # dots: where it was measured (a batch of 1 is measured once per epoch)
        axes[2].plot(x, c[f"validation_{measure}"], ".-", ms=3, label=f"batch {size:,}")
    if budget.kind == "updates":
        axes[2].set_xscale("log")
    label_axes(axes[2], "update" if budget.kind == "updates" else "epoch",
               f"validation {measure}", f"same {budget.kind}, different batch sizes")
    return save_figure(fig, path)
