"""Batch size: time per epoch and per update, and whether noisy small batches train better.

The lecture: a batch of 1 updates after every row (noisy), the full batch once
per epoch (steady); parallel hardware makes a bigger batch cost little more
per update, so an epoch of big batches is fast; yet small batches often end
*better*, the noise helping the optimizer out of saddle points and sharp
minima. :func:`run_batch` measures it on the same model, data and number of
epochs; :func:`batch_verdict` states what the numbers show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .common import label_axes, pyplot, quiet, save_figure
from .nets import LabData, fit, seeded_mlp

DEFAULT_BATCH_SIZES = (1, 8, 32, 128, None)   # None: the full training set


def run_batch(data: LabData, batch_sizes=DEFAULT_BATCH_SIZES, *, epochs: int = 5,
              depth: int = 1, width: int = 32, optimizer: str = "sgd", lr: float = 0.05,
              seed: int = 0, progress=quiet) -> tuple[pd.DataFrame, dict]:
    """Train one model per batch size from the same initialization, same epochs and lr.

    ``progress(iterable, desc)`` wraps the loop over batch sizes (see
    :mod:`harness.lab.common`).

    Returns
    -------
    table : DataFrame
        Per batch size: updates per epoch, seconds per epoch, milliseconds per
        update, final training/validation loss and accuracy.
    curves : dict
        Batch size -> History.
    """
    n = len(data.y_train)
    rows, curves = [], {}
    for bs in progress(batch_sizes, "batch sizes"):
        size = n if bs is None else min(int(bs), n)
        model = seeded_mlp(data, depth, width, seed)
        hist = fit(model, data, epochs=epochs, batch_size=size, optimizer=optimizer, lr=lr,
                   seed=seed)
        seconds = float(np.sum(hist.epoch_seconds))
        epochs_run = len(hist.epoch_seconds) - 1
        rows.append({"batch_size": size, "updates_per_epoch": -(-n // size),
                     "sec_per_epoch": seconds / max(1, epochs_run),
                     "ms_per_update": 1000 * seconds / max(1, hist.updates), **hist.final()})
        curves[size] = hist
    return pd.DataFrame(rows), curves


def batch_verdict(table: pd.DataFrame, epochs: int, margin: float = 0.01) -> list[str]:
    """Plain sentences on time and accuracy by batch size. Pure.

    ``margin``: accuracy differences up to this are called no difference.
    """
    t = table.sort_values("batch_size").reset_index(drop=True)
    rows = t.to_dict("records")   # keeps ints as ints (iloc on mixed columns gives floats)
    small, full = rows[0], rows[-1]
    ratio = full["ms_per_update"] / small["ms_per_update"]
    lines = [
        f"Time per update: {small['ms_per_update']:.3g} ms at batch {small['batch_size']}, "
        f"{full['ms_per_update']:.3g} ms at batch {full['batch_size']} "
        f"({full['batch_size'] / small['batch_size']:.0f}x the rows for {ratio:.1f}x the "
        "time: rows in a batch are computed in parallel).",
        f"Time per epoch: {small['sec_per_epoch']:.3g} s at batch {small['batch_size']} "
        f"({small['updates_per_epoch']} updates) vs {full['sec_per_epoch']:.3g} s at batch "
        f"{full['batch_size']} ({full['updates_per_epoch']} update"
        f"{'s' if full['updates_per_epoch'] != 1 else ''}).",
    ]
    # accuracy for classification; for regression (no accuracy) the loss, lower is better
    by_acc = not t["val_acc"].isna().all()
    key, sign, what = (("val_acc", 1, "accuracy") if by_acc else ("val_loss", -1, "loss"))
    train_key = "train_acc" if by_acc else "train_loss"
    best = rows[int((sign * t[key]).idxmax())]
    diff = sign * (small[key] - full[key])
    if by_acc and diff > margin or not by_acc and diff > margin * abs(full[key]):
        said = "smaller batches did better"
    elif by_acc and diff < -margin or not by_acc and diff < -margin * abs(full[key]):
        said = "smaller batches did worse"
    else:
        said = "batch size made no clear difference"
    lines.append(
        f"On this data, after {epochs} epochs at the same learning rate, {said}: validation "
        f"{what} {small[key]:.3f} at batch {small['batch_size']} vs "
        f"{full[key]:.3f} at the full batch ({full['batch_size']}); training {what} "
        f"{small[train_key]:.3f} vs {full[train_key]:.3f}. Best validation: batch "
        f"{best['batch_size']} ({best[key]:.3f}).")
    lines.append(
        "Caveat: the same epochs give a batch of 1 many more updates than the full batch, "
        "so this compares the methods at equal passes over the data, as the lecture does, "
        "not at equal updates or with a learning rate tuned per batch size.")
    return lines


def plot_batch(table: pd.DataFrame, curves: dict, path: Path) -> Path:
    """Time per update/epoch and accuracy against batch size, and validation curves."""
    plt = pyplot()
    t = table.sort_values("batch_size")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].loglog(t["batch_size"], t["ms_per_update"], "o-", label="ms per update")
    axes[0].loglog(t["batch_size"], 1000 * t["sec_per_epoch"], "s-", label="ms per epoch")
    axes[0].set_title("time")
    axes[1].semilogx(t["batch_size"], t["train_acc"], "o-", label="training")
    axes[1].semilogx(t["batch_size"], t["val_acc"], "s-", label="validation")
    axes[1].set_title("final accuracy")
    for ax in axes[:2]:
        label_axes(ax, "batch size")
    for size, hist in curves.items():
        axes[2].plot(hist.val_acc, label=f"batch {size}")
    label_axes(axes[2], "epoch", "validation accuracy", "same epochs, different batch sizes")
    return save_figure(fig, path)
