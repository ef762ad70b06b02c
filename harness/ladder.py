"""Blum & Hardt's Ladder (ICML 2015): a public board that blunts probing.

A team's shown score moves only when a new submission beats the shown one by
a significant margin, so the tiny improvements an attacker fishes for with
random submissions never reach the board.

Two variants, both per team:

- fixed step ``eta`` (``ladder_step = eta``): update when the new score beats
  the shown one by more than ``eta``; show it rounded to a multiple of ``eta``;
- parameter-free (``ladder_step = 0``): update when the new submission's mean
  per-row loss is below the shown submission's by more than one standard
  error of the paired per-row differences (``s / sqrt(n)``, a one-sided paired
  t-test at one sigma); show the new score rounded to ``ceil(log10 n)``
  decimals. The paper's ``s`` is the sample standard deviation of the
  differences; ``n`` the number of public rows.

The server and the overfitting lab both run submissions through
:func:`ladder_update`, so the lab measures the board the students see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LadderDecision:
    """What the board shows after one submission."""

    updated: bool          # the submission became the team's shown best
    shown: float           # the score the board shows (metric units)
    margin: float          # the improvement it had to beat (metric units or loss units)


def round_to_step(value: float, step: float) -> float:
    """``value`` rounded to the nearest multiple of ``step`` (kept to 12 digits)."""
    return round(round(value / step) * step, 12)


def ladder_update(shown: float | None, new_score: float, *, greater_is_better: bool,
                  step: float = 0.0, new_rows: np.ndarray | None = None,
                  best_rows: np.ndarray | None = None) -> LadderDecision:
    """One step of the Ladder for one team.

    Parameters
    ----------
    shown : float or None
        The team's shown score, None before its first scored submission.
    new_score : float
        The new submission's public score at full precision.
    greater_is_better : bool
        The metric's direction.
    step : float
        ``eta`` for the fixed-step Ladder; 0 for the parameter-free one.
    new_rows, best_rows : ndarray, optional
        Per-row public losses of the new submission and of the submission
        behind the shown score (parameter-free variant only).
    """
    if step > 0:
        if shown is None:
            return LadderDecision(True, round_to_step(new_score, step), step)
        gain = new_score - shown if greater_is_better else shown - new_score
        if gain > step:
            return LadderDecision(True, round_to_step(new_score, step), step)
        return LadderDecision(False, shown, step)

    if new_rows is None:
        raise ValueError("the parameter-free Ladder needs the per-row losses of the new "
                         "submission")
    n = len(new_rows)
    decimals = max(1, math.ceil(math.log10(max(n, 2))))
    if shown is None or best_rows is None:
        return LadderDecision(True, round(new_score, decimals), 0.0)
    diff = np.asarray(new_rows, dtype=np.float64) - np.asarray(best_rows, dtype=np.float64)
    s = float(diff.std(ddof=1)) if n > 1 else 0.0
    margin = s / math.sqrt(n)
    # per-row losses: lower is better whatever the metric's direction
    if float(diff.mean()) < -margin:
        return LadderDecision(True, round(new_score, decimals), margin)
    return LadderDecision(False, shown, margin)
