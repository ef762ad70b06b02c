"""A prepared competition as the arrays a model trains on (no torch here).

Features are standardized with the training part's mean and standard
deviation; image data (columns ``pixel0 .. pixel{k*k-1}``, like ``digits``)
is instead scaled as a whole to [0, 1], which keeps the picture intact for
shifts and rotations. Class labels become indices into the sorted classes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError
from ..home import Prepared

_PIXEL = re.compile(r"^pixel(\d+)$")


@dataclass
class Arrays:
    """Training and validation arrays of one competition, and how to encode more."""

    task: str                      # binary | multiclass | regression
    features: list[str]
    classes: list | None           # sorted class values (classification)
    x_train: np.ndarray            # float32, encoded
    y_train: np.ndarray            # int64 class indices, or float64 targets
    x_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray               # feature encoding: (x - mean) / scale
    scale: np.ndarray
    image_side: int | None = None  # 8 for digits: rows are side x side images
    y_mean: float = 0.0            # regression target standardization
    y_scale: float = 1.0

    @property
    def n_outputs(self) -> int:
        """One logit per class (binary too), one output for regression."""
        return len(self.classes) if self.classes is not None else 1

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode the feature columns of ``frame`` like the training data."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise DataError(f"the table lacks feature columns {', '.join(missing[:5])}; "
                            "expected the columns of test.csv")
        x = frame[self.features].to_numpy(dtype=np.float64)
        return ((x - self.mean) / self.scale).astype(np.float32)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """Class indices -> class values."""
        return np.asarray(self.classes)[np.asarray(indices)]


def image_side(features: list[str]) -> int | None:
    """The side of the square image when the columns are pixel0..pixel{k*k-1}, else None."""
    numbers = [_PIXEL.match(c) for c in features]
    if not features or not all(numbers):
        return None
    if [int(m.group(1)) for m in numbers] != list(range(len(features))):
        return None
    side = math.isqrt(len(features))
    return side if side * side == len(features) else None


def load_arrays(prepared: Prepared) -> Arrays:
    """The training and validation parts of ``prepared``, encoded.

    Raises
    ------
    DataError
        When a feature column is not numeric (the baselines take numbers only).
    """
    spec = prepared.spec
    features = prepared.feature_columns
    train, val = prepared.train, prepared.validation
    text = [c for c in features if not pd.api.types.is_numeric_dtype(train[c])]
    if text:
        raise DataError(f"feature columns {', '.join(text[:5])} are not numeric; the "
                        "baselines need numbers (one-hot encode categories first)")
    side = image_side(features)
    x_raw = train[features].to_numpy(dtype=np.float64)
    if side:
        # one scale for the whole image: per-pixel standardization would distort shifts
        mean = np.zeros(len(features))
        scale = np.full(len(features), max(float(np.abs(x_raw).max()), 1e-12))
    else:
        mean = np.nanmean(x_raw, axis=0)
        scale = np.nanstd(x_raw, axis=0)
        scale[~(scale > 1e-12)] = 1.0   # constant columns (e.g. a rare one-hot) stay as 0
    task = spec.data.task
    classes = prepared.classes if spec.is_classification else None
    arrays = Arrays(task, features, classes, np.empty(0), np.empty(0), np.empty(0),
                    np.empty(0), mean, scale, side)
    arrays.x_train = arrays.encode(train)
    arrays.x_val = arrays.encode(val)
    target = spec.data.target
    if classes is not None:
        lookup = {c: i for i, c in enumerate(classes)}
        arrays.y_train = train[target].map(lookup).to_numpy(dtype=np.int64)
        arrays.y_val = val[target].map(lookup).to_numpy(dtype=np.int64)
    else:
        arrays.y_train = train[target].to_numpy(dtype=np.float64)
        arrays.y_val = val[target].to_numpy(dtype=np.float64)
        arrays.y_mean = float(arrays.y_train.mean())
        arrays.y_scale = float(arrays.y_train.std()) or 1.0
    if np.isnan(arrays.x_train).any() or np.isnan(arrays.x_val).any():
        raise DataError("the training or validation features have missing values; the "
                        "baselines need complete rows")
    return arrays
