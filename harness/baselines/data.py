"""A prepared competition as the arrays a model trains on (no torch here).

The feature columns go through one scikit-learn ``ColumnTransformer``, fitted on
the training part alone (:func:`feature_encoder`), and every model (linear, gbt,
mlp, cnn, the labs' networks) gets the same matrix:

- numeric columns: a missing value becomes the training median, then the column
  is standardized with the training mean and standard deviation (the linear
  model and the networks need comparable scales; trees ignore them);
- categorical columns (text, pandas categories, booleans): a missing value
  becomes the most frequent training value, then one 0/1 column per category.
  Categories seen fewer than :data:`MIN_FREQUENCY` times in training, and
  categories that appear only in validation or test, share one "infrequent"
  column (all zeros when training has no rare category); a column yields at
  most :data:`MAX_CATEGORIES` columns, so an id-like text column cannot blow
  the matrix up;
- image data (columns ``pixel0 .. pixel{k*k-1}``, like ``digits``): scaled as a
  whole to [0, 1] by the largest training value, which keeps the picture intact
  for shifts and rotations.

The id column is never a feature (the manifest's ``feature_columns`` leave it
out), so ids may be text. Class labels become indices into the sorted classes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ..errors import DataError
from ..home import Prepared

MIN_FREQUENCY = 5     # training rows a category needs for a column of its own
MAX_CATEGORIES = 50   # output columns per categorical column, the infrequent one included
_PIXEL = re.compile(r"^pixel(\d+)$")


@dataclass
class Arrays:
    """Training and validation arrays of one competition, and how to encode more."""

    task: str                      # binary | multiclass | regression
    features: list[str]            # the input columns (test.csv's, less the id)
    classes: list | None           # sorted class values (classification)
    encoder: ColumnTransformer     # fitted on the training part: frame -> matrix
    x_train: np.ndarray            # float32, encoded
    y_train: np.ndarray            # int64 class indices, or float64 targets
    x_val: np.ndarray
    y_val: np.ndarray
    image_side: int | None = None  # 8 for digits: rows are side x side images
    y_mean: float = 0.0            # regression target standardization
    y_scale: float = 1.0

    @property
    def n_outputs(self) -> int:
        """One logit per class (binary too), one output for regression."""
        return len(self.classes) if self.classes is not None else 1

    @property
    def columns(self) -> list[str]:
        """The encoded matrix's column names (``size``, ``colour_red``,
        ``colour_infrequent_sklearn``, ...)."""
        return [str(c) for c in self.encoder.get_feature_names_out()]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode the feature columns of ``frame`` like the training data."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise DataError(f"the table lacks feature columns {', '.join(missing[:5])}; "
                            "expected the columns of test.csv")
        return np.ascontiguousarray(self.encoder.transform(frame[self.features]),
                                    dtype=np.float32)

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


def is_categorical(column: pd.Series) -> bool:
    """Text, a pandas category or booleans: one-hot encoded rather than scaled."""
    return pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column)


def as_text(table) -> np.ndarray:
    """Every present value as a string, every missing one as NaN (an object array).

    One type per column is what OneHotEncoder needs; booleans and numbers in a
    column that holds text elsewhere become their text.
    """
    frame = pd.DataFrame(table).astype(object)
    return frame.map(str, na_action="ignore").where(frame.notna(), np.nan).to_numpy()


def scale_by(x, peak: float) -> np.ndarray:
    """``x / peak``: the image scaling, one factor for every pixel."""
    return np.asarray(x, dtype=np.float64) / peak


def feature_encoder(train: pd.DataFrame, features: list[str], categorical: list[str] = (),
                    image: bool = False) -> ColumnTransformer:
    """The unfitted ``ColumnTransformer`` for ``features`` (see the module's docstring).

    Parameters
    ----------
    train : DataFrame
        The training part (image data is scaled by its largest value).
    features : list of str
        The feature columns, in order.
    categorical : list of str, optional
        Columns to one-hot encode; the others are numeric.
    image : bool, optional
        The features are the pixels of one image (all numeric).
    """
    categorical = list(categorical)
    numeric = [c for c in features if c not in categorical]
    if image:
        # one scale for the whole image: per-pixel standardization would distort shifts
        peak = max(float(np.nanmax(np.abs(train[features].to_numpy(dtype=np.float64)))),
                   1e-12)
        scaler = FunctionTransformer(scale_by, kw_args={"peak": peak},
                                     feature_names_out="one-to-one")
    else:
        scaler = StandardScaler()
    # keep_empty_features: an all-missing training column stays (as a constant), so the
    # matrix keeps its columns; as_text again after the imputer, which fills such a
    # categorical column with the number 0
    numeric_steps = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                  scaler)
    categorical_steps = make_pipeline(
        FunctionTransformer(as_text, feature_names_out="one-to-one"),
        SimpleImputer(strategy="most_frequent", keep_empty_features=True),
        FunctionTransformer(as_text, feature_names_out="one-to-one"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=MIN_FREQUENCY,
                      max_categories=MAX_CATEGORIES, sparse_output=False, dtype=np.float32))
    parts = [("numeric", numeric_steps, numeric)] if numeric else []
    if categorical:
        parts.append(("categorical", categorical_steps, categorical))
    return ColumnTransformer(parts, sparse_threshold=0.0, verbose_feature_names_out=False)


def load_arrays(prepared: Prepared) -> Arrays:
    """The training and validation parts of ``prepared``, encoded.

    A column is categorical when it holds text (or categories, or booleans) in
    any released file: pandas reads each file on its own, and a column of numbers
    with one "unknown" only in test.csv must be one-hot encoded everywhere.

    Raises
    ------
    DataError
        When the competition has no feature columns.
    """
    spec = prepared.spec
    features = prepared.feature_columns
    if not features:
        raise DataError(f"{spec.slug!r} has no feature columns (test.csv holds only the id "
                        f"column {spec.data.id_column!r}); a baseline needs inputs")
    train, val = prepared.train, prepared.validation
    categorical = [c for c in features
                   if any(is_categorical(f[c]) for f in (train, val, prepared.test))]
    side = None if categorical else image_side(features)
    encoder = feature_encoder(train, features, categorical, image=side is not None)
    encoder.fit(train[features])
    task = spec.data.task
    classes = prepared.classes if spec.is_classification else None
    arrays = Arrays(task, features, classes, encoder, np.empty(0), np.empty(0), np.empty(0),
                    np.empty(0), side)
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
    return arrays
