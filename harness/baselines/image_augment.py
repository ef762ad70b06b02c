"""Augmentation of image batches (``N x C x H x W`` tensors on [0, 1]), plain torch.

One :class:`torch.Generator` is the only source of randomness, so a seed repeats a
run. :func:`augment_batch` applies what a :class:`~harness.baselines.BaselineConfig`
asks for, in this order:

- random crop of the image padded by repeating its edge pixels (``augment``: a shift of up
  to ``H/8`` pixels each way at 1; zero padding would add black borders the test images
  never have, and batch normalization would learn their statistics);
- horizontal flip of half the images, only where the labels allow it: ``flip="auto"``
  flips when the competition's ``[data] flip_safe`` is true and ``augment > 0``;
  ``flip="on"`` flips whatever the spec says (the augmentation lab's label-breaking
  run: a mirrored left arrow is a right arrow), ``flip="off"`` never flips;
- a small rotation (``augment``: up to 15 degrees at 1; the uncovered corners take the
  border's colour);
- colour jitter (``augment``: brightness, contrast and saturation each by up to +-40%
  at 1);
- cutout (``cutout``: one square of that share of the side set to grey);
- pixel noise (``noise``: its standard deviation on the [0, 1] scale).

Mixup mixes images and labels together, so the training loop applies it
(:func:`harness.baselines.augment.mixup`).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

MAX_ROTATION_DEG = 15.0   # at augment = 1
MAX_JITTER = 0.4          # brightness, contrast and saturation factors in 1 +- this
CROP_SHARE = 1 / 8        # padding of the random crop, as a share of the side, at augment = 1
GREY = 0.5                # the value cutout fills with (the middle of the pixel scale)


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Pad every image with ``pad`` pixels on each side (its edge pixels repeated), then
    crop it back to its size at a random offset (a shift of up to ``pad`` pixels each way)."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    top = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (top[:, None] + torch.arange(h))[:, None, :, None]
    cols = (left[:, None] + torch.arange(w))[:, None, None, :]
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows, cols]


def horizontal_flip(x: torch.Tensor, gen: torch.Generator, share: float = 0.5) -> torch.Tensor:
    """Mirror ``share`` of the images left to right (each image by a coin toss)."""
    flip = torch.rand(x.shape[0], generator=gen) < share
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def rotate(x: torch.Tensor, max_degrees: float, gen: torch.Generator) -> torch.Tensor:
    """Rotate every image by its own random angle in +-``max_degrees`` (bilinear)."""
    if max_degrees <= 0:
        return x
    n = x.shape[0]
    angle = _uniform(n, -1, 1, gen) * math.radians(max_degrees)
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros(n)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def colour_jitter(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Scale brightness, contrast and (colour images) saturation by factors in 1 +- ``amount``."""
    if amount <= 0:
        return x
    n = x.shape[0]

    def factor():
        return _uniform(n, 1 - amount, 1 + amount, gen)[:, None, None, None]

    x = x * factor()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean
    if x.shape[1] == 3:
        grey = (x * torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True)
        x = (x - grey) * factor() + grey
    return x.clamp(0.0, 1.0)


def cutout(x: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """Set one random square of ``share`` of the side to grey in every image (DeVries &
    Taylor, 2017); the square may hang over the edge, as in the paper."""
    if share <= 0:
        return x
    n, _, h, w = x.shape
    size = max(1, round(share * min(h, w)))
    cy = torch.randint(0, h, (n,), generator=gen)[:, None, None]
    cx = torch.randint(0, w, (n,), generator=gen)[:, None, None]
    ys, xs = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    inside = ((ys - cy).abs() <= size // 2) & ((xs - cx).abs() <= size // 2)
    return torch.where(inside[:, None], torch.full_like(x, GREY), x)


def pixel_noise(x: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise of standard deviation ``sigma`` on every pixel, clipped to [0, 1]."""
    if sigma <= 0:
        return x
    return (x + torch.randn(x.shape, generator=gen) * sigma).clamp(0.0, 1.0)


def flips(cfg, flip_safe: bool) -> bool:
    """Whether training under ``cfg`` mirrors images (see the module's docstring)."""
    if cfg.flip == "auto":
        return flip_safe and cfg.augment > 0
    return cfg.flip == "on"


def augment_batch(x: torch.Tensor, cfg, flip_safe: bool, gen: torch.Generator) -> torch.Tensor:
    """One training batch as the network sees it (before mixup).

    Parameters
    ----------
    x : Tensor
        ``N x C x H x W`` images on [0, 1].
    cfg : BaselineConfig
        Reads ``augment``, ``flip``, ``cutout`` and ``noise``.
    flip_safe : bool
        The competition's ``[data] flip_safe``.
    gen : torch.Generator
    """
    s = cfg.augment
    x = random_crop(x, round(s * CROP_SHARE * min(x.shape[2:])), gen)
    if flips(cfg, flip_safe):
        x = horizontal_flip(x, gen)
    x = rotate(x, MAX_ROTATION_DEG * s, gen)
    x = colour_jitter(x, MAX_JITTER * s, gen)
    x = cutout(x, cfg.cutout, gen)
    return pixel_noise(x, cfg.noise, gen)
