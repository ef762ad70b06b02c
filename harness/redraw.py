"""Many simulated classes from one class's predictions, in numpy (no server, no HTTP).

One class is one draw: which test rows happen to be public, which team happened to
follow which strategy. To say whether the public-board tuners end behind the
validation users *in general* and not by luck, the class is played again many times
from the predictions its teams already made: each time the public part of the test
set is re-drawn (same size) and the strategies are dealt to the teams anew; every
team runs its strategy (the same functions the HTTP students run, see
:mod:`harness.classroom`) against a board that scores in numpy. Nothing here reads the
competition's own split; the real class is replayed only when a mask is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classroom import STRATEGIES, TeamModels
from .errors import HarnessError
from .scoring import round_public


@dataclass(frozen=True)
class Played:
    """One class played: per team its strategy, its public board score (the best shown
    public score of all its submissions), the full-precision public and the private
    score of its final entry (selected, or auto-filled with its best shown score)."""

    strategies: tuple[str, ...]
    public: np.ndarray           # board score (shown)
    entry_public: np.ndarray     # the entry's public score, full precision
    private: np.ndarray
    entries: tuple[np.ndarray, ...]    # each team's entry (its predictions)


def play_class(teams: list[TeamModels], strategies: list[str], y: np.ndarray,
               public: np.ndarray, seeds: list[int], decimals: int) -> Played:
    """Play one class: every team runs its strategy against a numpy board.

    Parameters
    ----------
    teams : list of TeamModels
    strategies : list of str
        One per team (keys of :data:`harness.classroom.STRATEGIES`).
    y : ndarray
        The test labels, in test.csv's order.
    public : ndarray of bool
        Which test rows are public.
    seeds : list of int
        Each team's random seed (the prober's probes).
    decimals : int
        The board's shown precision.
    """
    metric = teams[0].metric
    pub, prv = np.flatnonzero(public), np.flatnonzero(~public)
    y_pub, y_prv = y[pub], y[prv]
    board, entry_public, private, entries = [], [], [], []
    for team, strategy, seed in zip(teams, strategies, seeds):
        sent: list[tuple[np.ndarray, float]] = []

        def submit(preds, message, sent=sent):
            full = metric(y_pub, preds[pub])
            sent.append((preds, full))
            return round_public(full, decimals)

        choice = STRATEGIES[strategy](team, submit, np.random.default_rng(seed))
        shown = [round_public(full, decimals) for _, full in sent]
        index = choice.index if choice.index is not None else team.best_shown(shown)
        preds, full = sent[index]
        board.append(shown[team.best_shown(shown)])
        entry_public.append(full)
        private.append(metric(y_prv, preds[prv]))
        entries.append(preds)
    return Played(tuple(strategies), np.array(board), np.array(entry_public),
                  np.array(private), tuple(entries))


def ranks(scores: np.ndarray, greater_is_better: bool) -> np.ndarray:
    """Competition ranks (1 = best; equal scores share the best of their places)."""
    s = np.asarray(scores) * (-1 if greater_is_better else 1)
    return np.searchsorted(np.sort(s), s, side="left") + 1


@dataclass(frozen=True)
class Redrawn:
    """The distribution over re-drawn classes (see :func:`redraw_classes`)."""

    classes: int
    tuners_behind_share: float
    gap: np.ndarray                        # per class: validation - tuners, mean private
    by_strategy: dict[str, dict[str, float]]
    prober_fell_share: float | None        # classes where a prober ranked worse in private
    prober_public_rank: float | None
    prober_private_rank: float | None

    def summary(self) -> dict:
        """The numbers as plain JSON data."""
        q05, q50, q95 = (float(v) for v in np.quantile(self.gap, [0.05, 0.5, 0.95]))
        return {"classes": self.classes, "tuners_behind_share": self.tuners_behind_share,
                "private_gap": {"mean": float(self.gap.mean()), "median": q50, "q05": q05,
                                "q95": q95},
                "by_strategy": self.by_strategy,
                "prober": None if self.prober_fell_share is None else {
                    "fell_share": self.prober_fell_share,
                    "mean_public_rank": self.prober_public_rank,
                    "mean_private_rank": self.prober_private_rank}}


def redraw_classes(teams: list[TeamModels], strategies: list[str], y: np.ndarray,
                   public_rows: int, *, classes: int = 500, seed: int = 0,
                   decimals: int = 5, a: str = "public-tuner", b: str = "validation",
                   progress=None) -> Redrawn:
    """Play ``classes`` classes from the teams' predictions and summarise them.

    Each class re-draws which ``public_rows`` test rows are public and deals the same
    mix of strategies to the teams in a new order; the private score of a strategy is
    the mean over its teams. ``tuners_behind_share`` is the fraction of classes in
    which group ``a``'s mean private score is worse than group ``b``'s.

    Parameters
    ----------
    teams : list of TeamModels
    strategies : list of str
        The class's mix (one label per team; re-dealt in every class).
    y : ndarray
        Test labels in test.csv's order.
    public_rows : int
        The size of the public part (the competition's own).
    classes : int
        How many classes.
    seed : int
    decimals : int
        The board's shown precision.
    a, b : str
        The two strategies compared.
    progress : callable, optional
        ``progress()`` after each class.

    Raises
    ------
    HarnessError
        For fewer than one class, a public part that leaves no private row, or a mix
        without both compared strategies.
    """
    n = len(y)
    if classes < 1:
        raise HarnessError(f"--classes must be >= 1; got {classes}")
    if not 1 <= public_rows < n:
        raise HarnessError(f"the public part must have between 1 and {n - 1} rows; got "
                           f"{public_rows}")
    if a not in strategies or b not in strategies:
        raise HarnessError(f"the class needs at least one {a!r} and one {b!r} team to "
                           f"compare them; the mix is {sorted(set(strategies))} (use more "
                           "students)")
    gib = teams[0].metric.greater_is_better
    sign = 1 if gib else -1
    rng = np.random.default_rng([seed, 29])
    names = sorted(set(strategies))
    gaps, behind = [], []
    sums = {k: {"public": [], "private": [], "optimism": []} for k in names}
    fell, pub_rank, prv_rank = [], [], []
    for _ in range(classes):
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, public_rows, replace=False)] = True
        dealt = list(rng.permutation(strategies))
        seeds = [int(s) for s in rng.integers(1 << 31, size=len(teams))]
        played = play_class(teams, dealt, y, mask, seeds, decimals)
        labels = np.array(dealt)
        means = {}
        for k in names:
            mine = labels == k
            means[k] = float(played.private[mine].mean())
            sums[k]["public"].append(float(played.public[mine].mean()))
            sums[k]["private"].append(means[k])
            sums[k]["optimism"].append(float(sign * (played.public[mine]
                                                      - played.private[mine]).mean()))
        gaps.append(sign * (means[b] - means[a]))
        behind.append(gaps[-1] > 0)
        if "prober" in names:
            r_pub, r_prv = ranks(played.public, gib), ranks(played.private, gib)
            probers = labels == "prober"
            fell.append(bool((r_prv[probers] > r_pub[probers]).all()))
            pub_rank.append(float(r_pub[probers].mean()))
            prv_rank.append(float(r_prv[probers].mean()))
        if progress:
            progress()
    by_strategy = {k: {"teams": int(strategies.count(k)),
                       **{m: float(np.mean(v)) for m, v in sums[k].items()}} for k in names}
    return Redrawn(classes, float(np.mean(behind)), np.array(gaps), by_strategy,
                   float(np.mean(fell)) if fell else None,
                   float(np.mean(pub_rank)) if pub_rank else None,
                   float(np.mean(prv_rank)) if prv_rank else None)
