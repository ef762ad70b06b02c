"""Torch baselines on an image competition: a small CNN (or an MLP on the pixels), trained
on images streamed from the part folders with :mod:`harness.baselines.image_augment`.

The training loop, optimizers, schedules, early stopping and determinism are the
table baselines' (:func:`harness.baselines.torch_models.fit_torch`); this module
supplies the network, the batches and the losses. Batches come from a
``DataLoader`` (no worker processes: the PNGs are small and the threads are
``TRAIN_THREADS``) over :class:`~harness.baselines.image_data.ImageSet`, so one
batch of decoded images is in memory at a time.

Each epoch's training loss is measured on clean (not augmented) images, like the
validation loss, on a fixed sample of at most :data:`TRAIN_LOSS_SAMPLE` training
images: enough to draw the curve, a fraction of an epoch's cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .augment import mixup
from .config import BaselineConfig
from .image_augment import augment_batch
from .image_data import ImageData, ImageSet
from .torch_models import fit_torch, make_mlp, torch_predictor

TRAIN_LOSS_SAMPLE = 2000
GRID_IMAGES = 32                        # images in the augmented-examples PNG


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Each image less its mean colour, over its own spread (``N x C x H x W``).

    Why per image: a competition like shapes paints every image in a random background
    colour, and a network fed the raw scale first spends epochs learning to ignore it
    (on shapes the CNN sat at chance for two epochs and more; standardized, it starts
    learning in the first). The spread is floored at ``1 / sqrt(pixels)``, as in
    TensorFlow's ``per_image_standardization``, so a blank image stays finite.
    """
    centred = x - x.mean(dim=(2, 3), keepdim=True)
    floor = 1.0 / float(np.sqrt(x[0].numel())) if len(x) else 1.0
    return centred / centred.std(dim=(1, 2, 3), keepdim=True).clamp_min(floor)


class ImageCNN(nn.Module):
    """Per width of ``channels``: a 3x3 convolution, batch normalization, ReLU and a 2x2
    max-pool (while the map is at least 4 pixels), then a 64-unit dense layer with dropout:
    the classic small CNN of the homework."""

    def __init__(self, shape: tuple[int, int, int], channels: tuple[int, ...], n_out: int,
                 dropout: float):
        super().__init__()
        c_in, h, w = shape
        layers = []
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            if min(h, w) >= 4:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in = c
        self.features = nn.Sequential(*layers)
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        self.head = nn.Sequential(nn.Flatten(), *drop, nn.Linear(c_in * h * w, 64), nn.ReLU(),
                                  *drop, nn.Linear(64, n_out))

    def forward(self, x):
        return self.head(self.features(standardize(x)))


class PixelMLP(nn.Module):
    """An MLP on the flattened pixels (the "no convolutions" reference)."""

    def __init__(self, shape: tuple[int, int, int], cfg: BaselineConfig, n_out: int):
        super().__init__()
        self.mlp = make_mlp(int(np.prod(shape)), cfg.hidden, n_out, cfg.dropout, cfg.wide)

    def forward(self, x):
        return self.mlp(standardize(x).flatten(1))


def build_image_model(cfg: BaselineConfig, data: ImageData) -> nn.Module:
    """The ``cnn`` or ``mlp`` of ``cfg``, sized for ``data``'s images."""
    if cfg.model == "cnn":
        return ImageCNN(data.shape, cfg.hidden, data.n_outputs, cfg.dropout)
    return PixelMLP(data.shape, cfg, data.n_outputs)


class ImageBatches:
    """One epoch of augmented training batches in a seeded random order."""

    def __init__(self, cfg: BaselineConfig, data: ImageData):
        self.cfg, self.data = cfg, data
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        order = torch.Generator().manual_seed(cfg.seed + 1)
        self.loader = DataLoader(data.x_train, batch_size=min(cfg.batch_size, len(data.x_train)),
                                 shuffle=True, generator=order, num_workers=0)

    def augment(self, x: torch.Tensor, y: torch.Tensor):
        """A batch as the network sees it: augmented images, labels mixed by mixup only."""
        cfg = self.cfg
        x = augment_batch(x, cfg, self.data.flip_safe, self.gen)
        if cfg.mixup > 0 and self.data.classes is not None:
            y = F.one_hot(y, self.data.n_outputs).float()
        return mixup(x, y, cfg.mixup, self.rng, self.gen)

    def __iter__(self):
        for x, y in self.loader:
            yield self.augment(x, y)


def logits(model: nn.Module, images: ImageSet) -> torch.Tensor:
    """The model's outputs for every image of ``images``, in order (eval mode, no grad)."""
    model.eval()
    with torch.no_grad():
        parts = [model(x) for x in images.batches()]
    return torch.cat(parts) if parts else torch.empty(0)


def mean_loss(model: nn.Module, images: ImageSet, data: ImageData) -> float:
    """Cross-entropy (or MSE in target units) of clean ``images`` against their labels."""
    out = logits(model, images)
    if data.classes is not None:
        return float(F.cross_entropy(out, images.labels))
    pred = out.double().squeeze(1) * data.y_scale + data.y_mean
    target = images.labels.double().squeeze(1) * data.y_scale + data.y_mean
    return float(torch.mean((pred - target) ** 2))


def fit_images(cfg: BaselineConfig, data: ImageData, progress: bool = True, label: str = ""):
    """Train ``cfg`` on ``data``; returns ``(model, history, best_epoch)`` like ``fit_torch``."""
    n = len(data.x_train)
    sample = data.x_train
    if n > TRAIN_LOSS_SAMPLE:
        keep = np.sort(np.random.default_rng(cfg.seed).choice(n, TRAIN_LOSS_SAMPLE, replace=False))
        sample = data.x_train.subset(keep)

    def losses(model):
        return mean_loss(model, sample, data), mean_loss(model, data.x_val, data)

    return fit_torch(cfg, data, progress, label, build=build_image_model,
                     make_batches=ImageBatches, losses=losses)


def image_predictor(model: nn.Module, data: ImageData, needs_proba: bool):
    """``ImageSet -> predictions``: labels, P(last class), or numbers."""
    return torch_predictor(model, data, needs_proba, forward=logits)


def augmented_grid(cfg: BaselineConfig, data: ImageData, path: str | Path,
                   n: int = GRID_IMAGES) -> Path:
    """Save a grid of ``n`` training images as the network sees them under ``cfg``.

    Each tile is titled with its label (the larger share under mixup, with that share),
    so a flip that turned a left arrow into a right one shows under the wrong name.
    """
    from .plot import plt

    batches = ImageBatches(cfg.replace(batch_size=max(1, min(n, len(data.x_train)))), data)
    x, y = next(iter(batches))
    cols = 8
    rows = -(-len(x) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.35), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, target in zip(axes.flat, x, y):
        pixels = img.permute(1, 2, 0).clamp(0, 1).numpy()
        ax.imshow(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels,
                  cmap="gray" if pixels.shape[2] == 1 else None, vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(_tile_label(target, data), fontsize=6)
    fig.suptitle(f"what the network sees: {cfg.describe()}", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _tile_label(target: torch.Tensor, data: ImageData) -> str:
    if data.classes is None:
        return f"{float(target.reshape(-1)[0]) * data.y_scale + data.y_mean:.3g}"
    if target.ndim == 0:
        return str(data.classes[int(target)])
    k = int(target.argmax())
    share = float(target[k])
    return str(data.classes[k]) + ("" if share > 0.999 else f" {share:.0%}")
