"""A generated binary table whose rule drifts over time, for the time-ordered split."""

import numpy as np
import pandas as pd


def load(rows: int = 30000, days: int = 720, turn: float = 1.4, seed: int = 11) -> pd.DataFrame:
    """``rows`` rows over ``days`` days: a ``day`` number, 8 features and a 0/1 ``label``.

    The label follows a logistic model whose weight vector turns by ``turn`` radians
    from the first day to the last (from ``x0..x2`` towards ``x3..x5``; ``x6`` and
    ``x7`` are noise), so a model fitted on early days is less right the later the
    day. ``turn = 0`` gives the same table without drift, for contrast.
    """
    rng = np.random.default_rng(int(seed))
    day = np.sort(rng.integers(0, int(days), int(rows)))
    x = rng.normal(size=(int(rows), 8))
    angle = float(turn) * day / int(days)
    early = np.array([1.5, 1.0, 0.5, 0, 0, 0, 0, 0])
    late = np.array([0, 0, 0, 1.5, 1.0, 0.5, 0, 0])
    logit = 2 * (np.cos(angle) * (x @ early) + np.sin(angle) * (x @ late))
    label = (rng.random(int(rows)) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    table = pd.DataFrame(x.astype(np.float32).round(4), columns=[f"x{i}" for i in range(8)])
    table.insert(0, "day", day.astype(np.int64))
    table["label"] = label
    return table
