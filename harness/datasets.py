"""Load a competition's labeled table from its source.

Sources (``[data]`` in competition.toml):

- ``path = "table.csv"``: any labeled CSV beside competition.toml;
- ``source = "sklearn:digits"`` / ``"sklearn:breast_cancer"``: data that ships
  inside scikit-learn (nothing downloads);
- ``source = "FILE.py:FUNCTION"``: a function in the competition folder that
  returns a pandas DataFrame, called with ``[data.options]`` as keyword
  arguments (how ``fertility``, ``synthetic`` and ``noise-binary`` are built). With
  ``[data] images = true`` it also writes the images, into the folder it is given as
  ``image_dir`` (how ``shapes`` is built; see :mod:`harness.images`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, SpecError
from .plugins import is_file_ref, load_function
from .spec import Competition


def _sklearn_digits() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    d = load_digits()
    # pixel<row><col>, as 8x8 images read row by row (Kaggle's MNIST names them pixel0..)
    cols = [f"pixel{i}" for i in range(64)]
    frame = pd.DataFrame(d.data.astype(np.int64), columns=cols)
    frame["label"] = d.target.astype(np.int64)
    return frame


def _sklearn_breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    cols = [c.replace(" ", "_") for c in d.feature_names]
    frame = pd.DataFrame(d.data, columns=cols)
    # sklearn codes benign as 1; a "malignant" target reads the natural way round
    frame["malignant"] = (d.target == 0).astype(np.int64)
    return frame


BUILTIN_SOURCES = {
    "sklearn:digits": _sklearn_digits,
    "sklearn:breast_cancer": _sklearn_breast_cancer,
}


def load_table(spec: Competition, image_dir: Path | None = None) -> pd.DataFrame:
    """The labeled table of a competition, with its id column (created if absent).

    Parameters
    ----------
    spec : Competition
    image_dir : Path, optional
        Where a source function that generates its images (``[data] images = true``)
        writes them; required for such a competition, ignored otherwise.

    Raises
    ------
    DataError
        When the table lacks the target column, has missing targets, or has
        duplicate ids.
    """
    d = spec.data
    if d.path is not None:
        path = (spec.folder / d.path) if spec.folder else None
        if path is None or not path.is_file():
            raise SpecError("data.path", f"file {d.path!r} not found next to competition.toml "
                            f"({spec.folder})")
        frame = pd.read_csv(path)
    elif d.source in BUILTIN_SOURCES:
        if d.options:
            raise SpecError("data.options", f"source {d.source!r} takes no options")
        frame = BUILTIN_SOURCES[d.source]()
    else:
        frame = _from_module(spec, image_dir)
    return _check_table(frame, spec)


def _from_module(spec: Competition, image_dir: Path | None = None) -> pd.DataFrame:
    src = spec.data.source
    if not is_file_ref(src):
        raise SpecError("data.source", f"{src!r} is not a known source; expected one of "
                        f"{', '.join(BUILTIN_SOURCES)} or 'FILE.py:FUNCTION' in the "
                        "competition folder")
    generated = spec.data.images is True
    func = load_function(src, spec.folder, key="data.source",
                         expects="f(image_dir, **options) -> pandas.DataFrame, writing the "
                                 "images into image_dir" if generated else
                                 "f(**options) -> pandas.DataFrame")
    kwargs = dict(spec.data.options)
    if generated:
        if "image_dir" in kwargs:
            raise SpecError("data.options", "image_dir is where harness has the source write "
                            "its images; remove it from [data.options]")
        if image_dir is None:
            raise ValueError(f"{src} generates images: load_table needs image_dir")
        kwargs["image_dir"] = Path(image_dir)
    try:
        frame = func(**kwargs)
    except TypeError as exc:
        raise SpecError("data.options", f"{src} does not accept these options "
                        f"({exc})") from exc
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{src} returned {type(frame).__name__}; expected a pandas DataFrame")
    return frame


def _check_table(frame: pd.DataFrame, spec: Competition) -> pd.DataFrame:
    d = spec.data
    where = f"the table of {spec.slug!r}"
    if d.target not in frame.columns:
        raise DataError(f"{where} has no target column {d.target!r} ([data] target); found "
                        f"columns {_few(frame.columns)}")
    if frame[d.target].isna().any():
        n = int(frame[d.target].isna().sum())
        raise DataError(f"{where}: {n} rows have no {d.target!r}; drop them (or fill them) "
                        "before preparing")
    if d.id_column in frame.columns:
        ids = frame[d.id_column]
        if ids.isna().any():
            raise DataError(f"{where}: the id column {d.id_column!r} has empty cells")
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].head(3).tolist()
            raise DataError(f"{where}: the id column {d.id_column!r} has duplicates, e.g. {dup}")
        if ids.dtype.kind == "f":
            raise DataError(f"{where}: the id column {d.id_column!r} holds decimals; ids must "
                            "be whole numbers or text")
    else:
        frame = frame.copy()
        frame.insert(0, d.id_column, np.arange(len(frame), dtype=np.int64))
    if spec.split.group_column and spec.split.group_column not in frame.columns:
        raise SpecError("split.group_column", f"{spec.split.group_column!r} is not a column of "
                        f"{where}; found {_few(frame.columns)}")
    y = frame[d.target]
    if spec.is_classification:
        if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
            raise DataError(f"{where}: task {d.task!r} needs class labels in {d.target!r}, "
                            "found decimals; use task = \"regression\"")
        n_classes = y.nunique()
        if d.task == "binary" and n_classes != 2:
            raise DataError(f"{where}: task 'binary' needs 2 classes in {d.target!r}, found "
                            f"{n_classes}")
        if spec.metric.needs_proba and not set(pd.unique(y)) <= {0, 1}:
            raise DataError(f"{where}: metric {spec.scoring.metric!r} scores probabilities of "
                            f"class 1, so {d.target!r} must be coded 0/1")
    elif not pd.api.types.is_numeric_dtype(y):
        raise DataError(f"{where}: task 'regression' needs a numeric {d.target!r}, found "
                        f"{y.dtype}")
    if len(frame) < 20:
        raise DataError(f"{where} has {len(frame)} rows; a split needs at least 20")
    return frame


def _few(cols, k=8) -> str:
    cols = list(cols)
    more = f" ... ({len(cols)} in all)" if len(cols) > k else ""
    return ", ".join(map(repr, cols[:k])) + more
