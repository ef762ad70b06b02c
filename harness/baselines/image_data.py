"""An image competition as the torch baselines read it: streamed from the part folders.

:func:`load_image_data` returns an :class:`ImageData`, the image counterpart of
:class:`harness.baselines.data.Arrays`: the same ``task``, ``classes``,
``y_train``/``y_val`` and ``encode(frame)``, but ``x_train``, ``x_val`` and what
``encode`` returns are :class:`ImageSet` datasets, which hold file names only and
decode one PNG per item with Pillow. Memory stays bounded by a batch, whatever the
number of images.

Pixels are float32 on the [0, 1] scale, channels first (``C x H x W``); every
released image of a competition has the same size and mode (``harness prepare``
checks it), so batches stack without resizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError
from ..home import Prepared
from ..spec import IMAGE_FILE_COLUMN

EVAL_BATCH = 256        # images per forward pass when evaluating or predicting


class ImageSet(Dataset):
    """Images of one released part, decoded one at a time.

    Parameters
    ----------
    folder : Path
        The part's folder (``Prepared.image_dir(part)``).
    files : sequence of str
        The ``file`` column of the part's CSV (relative to ``folder``).
    labels : array of int or float, optional
        Class indices or (standardized) regression targets; items are then
        ``(image, label)``, else the image alone.
    mode : {"L", "RGB"}
        The competition's image mode (1 or 3 channels).
    """

    def __init__(self, folder: Path, files, labels=None, mode: str = "RGB"):
        self.folder, self.files, self.mode = Path(folder), [str(f) for f in files], mode
        self.labels = None if labels is None else torch.from_numpy(np.array(labels))   # a writable copy

    def __len__(self) -> int:
        return len(self.files)

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as a ``C x H x W`` float tensor on the [0, 1] scale."""
        path = self.folder / self.files[i]
        try:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert(self.mode), dtype=np.float32) / 255.0
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read image {path}: {exc}; prepare the competition again "
                            "(harness prepare SLUG --force)") from exc
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy())

    def __getitem__(self, i: int):
        x = self.image(i)
        return x if self.labels is None else (x, self.labels[i])

    def subset(self, indices) -> "ImageSet":
        """The same folder, only the items at ``indices``."""
        indices = np.asarray(indices)
        labels = None if self.labels is None else self.labels.numpy()[indices]
        return ImageSet(self.folder, [self.files[i] for i in indices], labels, self.mode)

    def batches(self, batch_size: int = EVAL_BATCH):
        """The images in order, ``batch_size`` at a time (images only, labels dropped)."""
        images = ImageSet(self.folder, self.files, None, self.mode)
        return DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=0)

    def pixels(self) -> np.ndarray:
        """Every image flattened into one row of a float32 matrix (in memory: for small
        sets and the labs that train on pixel features)."""
        out = np.empty((len(self), int(np.prod(self.image(0).shape))) if len(self) else (0, 0),
                       dtype=np.float32)
        for i in range(len(self)):
            out[i] = self.image(i).reshape(-1).numpy()
        return out


@dataclass
class ImageData:
    """Training and validation images of one competition, and the test folder to predict."""

    task: str
    features: list[str]
    classes: list | None
    x_train: ImageSet
    y_train: np.ndarray           # int64 class indices, or float64 targets
    x_val: ImageSet
    y_val: np.ndarray
    shape: tuple[int, int, int]   # channels, height, width
    flip_safe: bool               # the spec's word: does a mirror image keep its label?
    test_dir: Path
    y_mean: float = 0.0
    y_scale: float = 1.0
    image_side = None             # not a pixel table: the digits-only code paths stay off

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.classes is not None else 1

    def encode(self, frame: pd.DataFrame) -> ImageSet:
        """The test images ``frame`` (test.csv's rows) names, as a dataset."""
        if IMAGE_FILE_COLUMN not in frame.columns:
            raise DataError(f"the table lacks the {IMAGE_FILE_COLUMN!r} column; expected the "
                            "columns of test.csv (id, file)")
        return ImageSet(self.test_dir, frame[IMAGE_FILE_COLUMN], None, _mode(self.shape[0]))

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """Class indices -> class values."""
        return np.asarray(self.classes)[np.asarray(indices)]


def _mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def load_image_data(prepared: Prepared) -> ImageData:
    """The image parts of ``prepared`` (file names and labels; no image is decoded here).

    Raises
    ------
    DataError
        When the manifest lacks the image format (prepared by an older harness).
    """
    spec = prepared.spec
    image = prepared.manifest.get("image")
    if not image:
        raise DataError(f"{spec.slug!r} was prepared without its image format in the "
                        f"manifest; run `{prepared.prepare_command}`")
    shape = (int(image["channels"]), int(image["height"]), int(image["width"]))
    mode = _mode(shape[0])
    train, val = prepared.train, prepared.validation
    target = spec.data.target
    classes = prepared.classes if spec.is_classification else None
    if classes is not None:
        lookup = {c: i for i, c in enumerate(classes)}
        y_train = train[target].map(lookup).to_numpy(dtype=np.int64)
        y_val = val[target].map(lookup).to_numpy(dtype=np.int64)
        labels_train, labels_val, mean, scale = y_train, y_val, 0.0, 1.0
    else:
        y_train = train[target].to_numpy(dtype=np.float64)
        y_val = val[target].to_numpy(dtype=np.float64)
        mean, scale = float(y_train.mean()), float(y_train.std()) or 1.0
        labels_train = ((y_train - mean) / scale).astype(np.float32)[:, None]
        labels_val = ((y_val - mean) / scale).astype(np.float32)[:, None]
    files = IMAGE_FILE_COLUMN
    return ImageData(
        task=spec.data.task, features=list(prepared.feature_columns), classes=classes,
        x_train=ImageSet(prepared.image_dir("train"), train[files], labels_train, mode),
        y_train=y_train,
        x_val=ImageSet(prepared.image_dir("validation"), val[files], labels_val, mode),
        y_val=y_val, shape=shape, flip_safe=bool(spec.data.flip_safe),
        test_dir=prepared.image_dir("test"), y_mean=mean, y_scale=scale)
