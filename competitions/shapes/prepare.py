"""Generated 32x32 colour images of shapes: the `shapes` competition's source.

Each image is one shape (circle, square, triangle, star, arrow_left, arrow_right) in a
random colour, size, position and rotation over a cluttered, noisy background. Circles,
squares, triangles and stars turn freely; an arrow turns by at most ``ARROW_TURN``
degrees, so that left and right stay what they say, and a horizontal flip turns one arrow
class into the other: a flip is a label-breaking augmentation here.

Drawn with Pillow at four times the size and shrunk (smooth edges), then noise is added
with numpy. A fixed ``seed`` gives the same images, byte for byte.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from tqdm import tqdm

from harness.errors import SpecError

CLASSES = ("circle", "square", "triangle", "star", "arrow_left", "arrow_right")
SIZE = 32                  # pixels of a side, as released
SCALE = 4                  # drawn this many times larger, then shrunk: smooth edges
ARROW_TURN = 20            # degrees an arrow may turn either way
NOISE = 10.0               # standard deviation of the pixel noise (0-255 scale)


def load(image_dir: Path, n: int = 10000, seed: int = 5) -> pd.DataFrame:
    """Write ``n`` images ``<id>.png`` into ``image_dir``; return the table (id, label).

    The classes come in equal numbers (up to one image), in a random order.
    """
    n = int(n)
    if n < len(CLASSES) * 4:
        raise SpecError("data.options", f"n = {n} is too few images for {len(CLASSES)} "
                        f"classes split four ways; use n = {len(CLASSES) * 4} or more")
    rng = np.random.default_rng(int(seed))
    labels = rng.permutation(np.arange(n) % len(CLASSES))
    # a bar on a terminal only (`harness prepare shapes` by hand), as prepare's own
    drawn = tqdm(labels, desc="drawing shapes", leave=False, file=sys.stderr, disable=None,
                 unit="img")
    for i, label in enumerate(drawn):
        # a quick, light compression: these files are read once, by `harness prepare`
        Image.fromarray(_image(CLASSES[label], rng)).save(Path(image_dir) / f"{i}.png",
                                                          compress_level=1)
    return pd.DataFrame({"id": np.arange(n, dtype=np.int64),
                         "label": [CLASSES[k] for k in labels]})


def _image(shape: str, rng: np.random.Generator) -> np.ndarray:
    """One image of ``shape`` as a (SIZE, SIZE, 3) uint8 array."""
    big = SIZE * SCALE
    background = rng.integers(0, 256, 3)
    canvas = Image.new("RGB", (big, big), tuple(int(v) for v in background))
    draw = ImageDraw.Draw(canvas)
    _clutter(draw, background, rng, big)
    colour = _contrasting(background, rng)
    radius = rng.uniform(0.16, 0.40) * big
    margin = radius * 0.8           # the shape may touch the border, never leave it
    centre = rng.uniform(margin, big - margin, 2)
    if shape.startswith("arrow"):
        angle = rng.uniform(-ARROW_TURN, ARROW_TURN)
    else:
        angle = rng.uniform(0, 360)
    if shape == "circle":
        r = radius * 0.85
        draw.ellipse([centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r], fill=colour)
    else:
        draw.polygon(_outline(shape, centre, radius, angle), fill=colour)
    small = canvas.resize((SIZE, SIZE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32)
    pixels += rng.normal(0, NOISE, pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _outline(shape: str, centre: np.ndarray, radius: float, angle: float) -> list[tuple]:
    """The polygon of ``shape``, turned by ``angle`` degrees around ``centre``."""
    if shape == "square":
        points = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) * 0.7
    elif shape == "triangle":
        turns = np.deg2rad([90, 210, 330])
        points = np.stack([np.cos(turns), -np.sin(turns)], axis=1)
    elif shape == "star":
        turns = np.deg2rad(90 + 36 * np.arange(10))
        reach = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        points = np.stack([reach * np.cos(turns), -reach * np.sin(turns)], axis=1)
    else:   # an arrow pointing right: a shaft and a head; arrow_left is its mirror image
        points = np.array([(-1, -0.18), (0.15, -0.18), (0.15, -0.55), (1, 0),
                           (0.15, 0.55), (0.15, 0.18), (-1, 0.18)])
        if shape == "arrow_left":
            points = points * [-1, 1]
    t = np.deg2rad(angle)
    turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return [tuple(p) for p in (points @ turn.T) * radius + centre]


def _contrasting(background: np.ndarray, rng: np.random.Generator) -> tuple:
    """A random colour whose brightness differs from the background's enough to see."""
    grey = np.array([0.299, 0.587, 0.114])
    while True:
        colour = rng.integers(0, 256, 3)
        if abs(float((colour - background) @ grey)) > 60:
            return tuple(int(v) for v in colour)


def _clutter(draw: ImageDraw.ImageDraw, background: np.ndarray, rng: np.random.Generator,
             big: int) -> None:
    """Faint lines and specks: something to ignore, none of them a shape of a class."""
    for _ in range(int(rng.integers(2, 6))):
        tint = tuple(int(v) for v in np.clip(background + rng.integers(-80, 81, 3), 0, 255))
        if rng.random() < 0.6:
            ends = rng.uniform(0, big, 4)
            draw.line(list(ends), fill=tint, width=int(rng.integers(2, 6)))
        else:
            x, y = rng.uniform(0, big, 2)
            r = rng.uniform(2, 7)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tint)
