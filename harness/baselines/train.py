"""Train a baseline on a prepared competition: :func:`train_baseline`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..home import Prepared
from ..splits import write_csv
from .config import TORCH_MODELS, BaselineConfig, BaselineError
from .data import Arrays, load_arrays
from .diagnosis import diagnose, trivial_loss


@dataclass
class BaselineResult:
    """A trained baseline: its scores, losses, diagnosis and predictions."""

    config: BaselineConfig
    prepared: Prepared
    arrays: Arrays = field(repr=False)
    history: list[dict] = field(repr=False)
    best_epoch: int              # index into history of the kept model
    validation_score: float
    reference_loss: float        # the trivial predictor's training loss
    diagnosis: str
    seconds: float
    model: object = field(repr=False)
    _predict: Callable = field(repr=False)
    augmented_png: Path | None = None   # set by write() for an image competition
    validation_predictions: np.ndarray | None = field(default=None, repr=False)

    @property
    def stopped_early(self) -> bool:
        """True when early stopping ended training before the last epoch."""
        return self.config.early_stopping > 0 and len(self.history) < self.config.epochs

    @property
    def train_loss(self) -> float:
        return self.history[self.best_epoch]["train_loss"]

    @property
    def val_loss(self) -> float:
        return self.history[self.best_epoch]["val_loss"]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Submission-ready predictions for the feature columns of ``frame``.

        Class labels, P(positive class) for a probability metric (roc_auc,
        log_loss), or numbers for regression. On an image competition ``frame``
        is test.csv's rows: its ``file`` column names images of the test folder.
        """
        return self._predict(self.arrays.encode(frame))

    def submission(self) -> pd.DataFrame:
        """The id column and the predicted target for every row of test.csv."""
        test = self.prepared.test
        d = self.prepared.spec.data
        return pd.DataFrame({d.id_column: test[d.id_column].to_numpy(),
                             d.target: self.predict(test)})

    def write(self, csv_path: str | Path, plot: bool = True) -> tuple[Path, Path | None]:
        """Write the submission CSV and, beside it, the learning-curve PNG.

        On an image competition ``plot`` also writes ``NAME-augmented.png``, a grid
        of training images as the network sees them (:attr:`augmented_png`).

        Returns
        -------
        (csv_path, png_path or None)
        """
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(self.submission(), csv_path)
        png = None
        if plot:
            from .plot import learning_curve

            png = learning_curve(self, csv_path.with_suffix(".png"))
            if self.prepared.is_image:
                from .image_models import augmented_grid

                self.augmented_png = augmented_grid(
                    self.config, self.arrays, csv_path.with_name(f"{csv_path.stem}-augmented.png"))
        return csv_path, png


def train_baseline(prepared: Prepared, cfg: BaselineConfig, progress: bool = True,
                   label: str = "") -> BaselineResult:
    """Train ``cfg`` on train.csv and report on validation.csv.

    Parameters
    ----------
    prepared : harness.home.Prepared
    cfg : BaselineConfig
    progress : bool
        Show a tqdm progress bar over the epochs (torch models).
    label : str
        The progress bar's label (e.g. the preset's name).

    Returns
    -------
    BaselineResult

    Raises
    ------
    BaselineError
        When an option does not fit the data (e.g. ``cnn`` on a table).
    """
    start = time.perf_counter()
    needs_proba = prepared.spec.metric.needs_proba
    if prepared.is_image:
        if cfg.model not in TORCH_MODELS:
            raise BaselineError(f"{prepared.spec.slug!r} is an image competition: train "
                                f"--model cnn (or mlp, on the pixels), not {cfg.model}")
        from .image_data import load_image_data
        from .image_models import fit_images, image_predictor

        arrays = load_image_data(prepared)
        model, history, best = fit_images(cfg, arrays, progress=progress, label=label)
        predict = image_predictor(model, arrays, needs_proba)
    else:
        arrays = load_arrays(prepared)
        model, history, best, predict = _fit_table(cfg, arrays, needs_proba, progress, label)
    val_pred = predict(arrays.x_val)
    y_val = prepared.validation[prepared.spec.data.target].to_numpy()
    score = prepared.spec.metric(y_val, val_pred)
    reference = trivial_loss(arrays.y_train, arrays.task, arrays.n_outputs)
    entry = history[best]
    return BaselineResult(
        config=cfg, prepared=prepared, arrays=arrays, history=history, best_epoch=best,
        validation_score=float(score), reference_loss=reference,
        diagnosis=diagnose(entry["train_loss"], entry["val_loss"], reference),
        seconds=time.perf_counter() - start, model=model, _predict=predict,
        validation_predictions=np.asarray(val_pred))


def _fit_table(cfg: BaselineConfig, arrays, needs_proba: bool, progress: bool, label: str):
    """Train ``cfg`` on a table's arrays: ``(model, history, best_epoch, predict)``."""
    if cfg.model in TORCH_MODELS:
        from .torch_models import fit_torch, torch_predictor   # torch only when asked for

        model, history, best = fit_torch(cfg, arrays, progress=progress, label=label)
        return model, history, best, torch_predictor(model, arrays, needs_proba)
    from .sklearn_models import fit_gbt, fit_linear, sklearn_predictor

    if cfg.model == "linear":
        model, history = fit_linear(cfg, arrays)
        kept = None
    else:
        model, history, kept = fit_gbt(cfg, arrays)
    return model, history, (kept or 1) - 1, sklearn_predictor(model, arrays, needs_proba, kept)
