"""Data augmentation for the torch baselines.

Images (``digits``): each training image gets its own random small rotation
and shift (bilinear resampling) plus pixel noise. The affine maps are
rotations and translations only, determinant +1: never a mirror image, since
a horizontally flipped digit is another symbol (or none), the lecture's
example of an augmentation that changes the label.

Tables: Gaussian feature noise, and mixup (convex combinations of two rows
and of their labels). Labels are never altered otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

MAX_ROTATION_DEG = 15.0   # at strength 1
MAX_SHIFT_PX = 1.5
PIXEL_NOISE = 0.05        # standard deviation on the [0, 1] pixel scale


def affine_matrices(n: int, strength: float, side: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random rotation + shift matrices (``n x 2 x 3``, affine_grid's coordinates).

    Rotation up to ``15 * strength`` degrees, shift up to ``1.5 * strength``
    pixels each way. The 2x2 part is a rotation (determinant 1): no flips.
    """
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(MAX_ROTATION_DEG) * strength
    # affine_grid's coordinates run over [-1, 1]: one pixel is 2 / side
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * MAX_SHIFT_PX * strength * 2 / side
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                        torch.stack([sin, cos, shift[:, 1]], 1)], 1)


def augment_images(x: torch.Tensor, strength: float, side: int,
                   gen: torch.Generator) -> torch.Tensor:
    """Randomly rotated, shifted and noised copies of flattened ``side x side`` images.

    Parameters
    ----------
    x : Tensor
        ``(n, side * side)`` images on the [0, 1] scale.
    strength : float
        0 returns ``x`` unchanged; 1 is the strongest setting.
    gen : torch.Generator
        The only source of randomness (reproducible for a seed).
    """
    if strength <= 0:
        return x
    n = x.shape[0]
    img = x.reshape(n, 1, side, side)
    theta = affine_matrices(n, strength, side, gen)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out + torch.randn(out.shape, generator=gen) * PIXEL_NOISE * strength
    return out.clamp(0.0, 1.0).reshape(n, -1)


def feature_noise(x: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """``x`` plus Gaussian noise of standard deviation ``sigma`` (standardized units)."""
    if sigma <= 0:
        return x
    return x + torch.randn(x.shape, generator=gen) * sigma


def mixup(x: torch.Tensor, target: torch.Tensor, alpha: float, rng: np.random.Generator,
          gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix the batch with a shuffled copy of itself: ``lam * a + (1 - lam) * b``.

    ``target`` is one-hot class probabilities or regression targets; both the
    inputs and the targets are mixed with the same ``lam ~ Beta(alpha, alpha)``.
    """
    if alpha <= 0:
        return x, target
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=gen)
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]
