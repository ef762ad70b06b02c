"""The learning-curve PNG: training and validation loss per epoch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curve(result, path: str | Path) -> Path:
    """Plot ``result.history`` (train and validation loss) with the diagnosis; save a PNG.

    Parameters
    ----------
    result : BaselineResult
    path : str or Path
        Where the PNG goes (usually beside the submission CSV).
    """
    path = Path(path)
    epochs = [h["epoch"] for h in result.history]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    ax.plot(epochs, [h["train_loss"] for h in result.history], marker=".", label="training")
    ax.plot(epochs, [h["val_loss"] for h in result.history], marker=".", label="validation")
    ax.axhline(result.reference_loss, color="grey", linestyle=":",
               label="trivial predictor (training)")
    kept = result.history[result.best_epoch]["epoch"]
    if result.stopped_early or result.config.early_stopping:
        ax.axvline(kept, color="black", linestyle="--", linewidth=0.8, label="kept weights")
    unit = "boosting iteration" if result.config.model == "gbt" else "epoch"
    ax.set_xlabel(unit)
    ax.set_ylabel("cross-entropy" if result.arrays.classes is not None else "squared error")
    slug = result.prepared.spec.slug
    metric = result.prepared.spec.metric.name
    ax.set_title(f"{slug}: {result.config.describe()}\nvalidation {metric} "
                 f"{result.validation_score:.4f}", fontsize=9)
    fig.text(0.01, 0.01, result.diagnosis.split(" (")[0], fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path
