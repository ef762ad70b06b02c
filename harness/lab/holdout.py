"""Dwork et al. (Science 2015), "The reusable holdout", at class size.

An analyst with pure-noise data (``d`` features, labels +-1 at random, so no
classifier can beat 50% on fresh data) uses a holdout set twice: once to
check which features' correlations with the label agree with the training
set, once to measure the classifier built from them. The holdout accuracy
climbs well above 0.5 while fresh data stays at 0.5: the holdout was
overfitted by reusing it.

:class:`Thresholdout` answers the same questions from the training set
whenever training and holdout agree (up to a noisy threshold) and only
otherwise from the holdout, with noise and within a budget; the holdout then
stays near the truth.

Pure numpy: no torch, no competition needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import HarnessError
from .common import pyplot, quiet, save_figure

CURVES = ("train", "holdout", "fresh")


class Thresholdout:
    """The Thresholdout mechanism (Dwork et al. 2015), one query at a time.

    For a query with training value ``a`` and holdout value ``b``: if
    ``|a - b| > T + Lap(sigma)``, answer ``b + Lap(sigma)`` and spend one unit
    of budget; otherwise answer ``a``. Once the budget is spent it stops
    answering (:meth:`answer` returns None). This is the form of the paper's
    experiment code (which drew Gaussian noise; the algorithm's Laplace is used
    here); the paper's own defaults are ``T = 4 / sqrt(n)``, ``sigma = 1 / sqrt(n)``.

    Parameters
    ----------
    threshold : float
        ``T``: how far training and holdout may differ before the holdout is used.
    noise : float
        ``sigma``: the Laplace noise scale (0 makes the mechanism deterministic).
    budget : int
        How many over-threshold answers it gives before it stops.
    rng : numpy.random.Generator
    """

    def __init__(self, threshold: float, noise: float, budget: int,
                 rng: np.random.Generator):
        if threshold < 0 or noise < 0 or budget < 0:
            raise HarnessError(f"Thresholdout needs threshold, noise and budget >= 0; got "
                               f"threshold={threshold}, noise={noise}, budget={budget}")
        self.threshold = float(threshold)
        self.noise = float(noise)
        self.budget = int(budget)
        self.rng = rng
        self.answered = 0          # queries answered
        self.over_threshold = 0    # of which from the holdout (budget spent)

    def _laplace(self) -> float:
        return float(self.rng.laplace(0.0, self.noise)) if self.noise > 0 else 0.0

    @property
    def exhausted(self) -> bool:
        return self.over_threshold >= self.budget

    def answer(self, train_value: float, holdout_value: float) -> float | None:
        """The mechanism's answer to one query, or None once the budget is spent."""
        if self.exhausted:
            return None
        self.answered += 1
        if abs(train_value - holdout_value) > self.threshold + self._laplace():
            self.over_threshold += 1
            return float(holdout_value) + self._laplace()
        return float(train_value)

    def answer_many(self, train_values: np.ndarray, holdout_values: np.ndarray) -> np.ndarray:
        """Answers to a sequence of queries (NaN where the budget was already spent)."""
        out = np.full(len(train_values), np.nan)
        for i, (a, b) in enumerate(zip(train_values, holdout_values)):
            got = self.answer(float(a), float(b))
            if got is None:
                break
            out[i] = got
        return out


@dataclass(frozen=True)
class ReuseResult:
    """Accuracy curves over k, averaged over repeats.

    ``curves`` has one row per (mechanism, k) with the mean and standard
    deviation over repeats of the train, holdout (as reported) and fresh accuracy.
    """

    ks: np.ndarray
    curves: pd.DataFrame
    budget_spent: float     # mean over-threshold answers Thresholdout gave per repeat
    exhausted: int          # repeats in which its budget ran out


def noise_data(n: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of ``d`` standard normal features and labels +-1 independent of them."""
    return rng.standard_normal((n, d)), rng.choice(np.array([-1.0, 1.0]), n)


def accuracy_of(x: np.ndarray, y: np.ndarray, features: np.ndarray,
                signs: np.ndarray) -> float:
    """Accuracy of ``sign(sum_j signs_j * x_j)`` over ``features`` (a tie counts as +1)."""
    if len(features) == 0:
        return 0.5          # no feature: a coin flip, by definition
    vote = x[:, features] @ signs
    return float(np.mean(np.where(vote >= 0, 1.0, -1.0) == y))


def one_run(n: int, d: int, ks: np.ndarray, rng: np.random.Generator, *,
            select_threshold: float, mechanism: Thresholdout | None = None) -> np.ndarray:
    """One analyst's run: accuracy (train, reported holdout, fresh) for each k.

    With ``mechanism`` None the holdout is used directly; otherwise every
    holdout value (the ``d`` correlations, then the accuracy for each k) is
    asked of the mechanism. Returns an array of shape ``(len(ks), 3)``.
    """
    x_tr, y_tr = noise_data(n, d, rng)
    x_ho, y_ho = noise_data(n, d, rng)
    x_fr, y_fr = noise_data(n, d, rng)
    c_tr = x_tr.T @ y_tr / n
    c_ho = x_ho.T @ y_ho / n
    if mechanism is not None:
        c_ho = mechanism.answer_many(c_tr, c_ho)    # NaN (unanswered) never agrees
    agree = (((c_tr > select_threshold) & (c_ho > select_threshold))
             | ((c_tr < -select_threshold) & (c_ho < -select_threshold)))
    candidates = np.flatnonzero(agree)
    # strongest training correlation first
    candidates = candidates[np.argsort(-np.abs(c_tr[candidates]), kind="stable")]
    out = np.empty((len(ks), 3))
    for i, k in enumerate(ks):
        top = candidates[:int(k)]
        signs = np.sign(c_tr[top])
        acc_tr = accuracy_of(x_tr, y_tr, top, signs)
        acc_ho = accuracy_of(x_ho, y_ho, top, signs)
        if mechanism is not None and len(top):
            got = mechanism.answer(acc_tr, acc_ho)
            acc_ho = np.nan if got is None else got
        out[i] = acc_tr, acc_ho, accuracy_of(x_fr, y_fr, top, signs)
    return out


def holdout_reuse(n: int = 1000, d: int = 1000, ks=None, *, repeats: int = 10,
                  select_threshold: float | None = None, threshold: float | None = None,
                  noise: float | None = None, budget: int = 1000, seed: int = 0,
                  progress=quiet) -> ReuseResult:
    """The reusable-holdout experiment, plain and through Thresholdout.

    Parameters
    ----------
    n, d : int
        Rows in each of the training, holdout and fresh sets; noise features.
    ks : sequence of int, optional
        Numbers of features in the classifier; default 0 to ``d // 20`` in 10 steps
        (the paper's 0..500 at ``d = 10,000``).
    repeats : int
        Independent runs averaged (fresh data each time).
    select_threshold : float, optional
        A feature is kept when its training and holdout correlations both pass
        this with the same sign; default ``1 / sqrt(n)``.
    threshold, noise, budget :
        Thresholdout's ``T`` (default ``4 / sqrt(n)``), ``sigma`` (default
        ``1 / sqrt(n)``) and budget (the settings of the paper's code).
    seed : int
    progress : callable
        Wraps the repeat loop: ``progress(iterable, desc)`` (see :mod:`harness.lab.common`).
    """
    if n < 10 or d < 1 or repeats < 1:
        raise HarnessError(f"holdout-reuse needs n >= 10, d >= 1 and repeats >= 1; got "
                           f"n={n}, d={d}, repeats={repeats}")
    if ks is None:
        top = max(d // 20, 10)
        ks = np.unique(np.linspace(0, top, 11).round().astype(int))
    ks = np.asarray(sorted(set(int(k) for k in ks)))
    if ks.min() < 0 or ks.max() > d:
        raise HarnessError(f"every k must be between 0 and d={d}; got {ks.tolist()}")
    select_threshold = 1 / math.sqrt(n) if select_threshold is None else select_threshold
    threshold = 4 / math.sqrt(n) if threshold is None else threshold
    noise = 1 / math.sqrt(n) if noise is None else noise
    rng = np.random.default_rng(seed)
    plain, guarded, spent, exhausted = [], [], [], 0
    for _ in progress(range(repeats), "analysts"):
        mech = Thresholdout(threshold, noise, budget, np.random.default_rng(rng.integers(2**63)))
        # the same data for both analysts: the mechanism is the only difference
        state = rng.bit_generator.state
        plain.append(one_run(n, d, ks, rng, select_threshold=select_threshold))
        rng.bit_generator.state = state
        guarded.append(one_run(n, d, ks, rng, select_threshold=select_threshold,
                               mechanism=mech))
        spent.append(mech.over_threshold)
        exhausted += mech.exhausted
    rows = []
    for name, runs in (("standard", np.stack(plain)), ("thresholdout", np.stack(guarded))):
        mean, sd = np.nanmean(runs, axis=0), np.nanstd(runs, axis=0)
        for i, k in enumerate(ks):
            rows.append({"mechanism": name, "k": int(k),
                         **{f"{c}": float(mean[i, j]) for j, c in enumerate(CURVES)},
                         **{f"{c}_sd": float(sd[i, j]) for j, c in enumerate(CURVES)}})
    return ReuseResult(ks, pd.DataFrame(rows), float(np.mean(spent)), exhausted)


def plot_reuse(result: ReuseResult, path) -> None:
    """Two panels (standard holdout, Thresholdout): train, holdout and fresh accuracy over k."""
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = {"train": "tab:blue", "holdout": "tab:red", "fresh": "tab:green"}
    for ax, name, title in zip(axes, ("standard", "thresholdout"),
                               ("Standard holdout", "Thresholdout")):
        part = result.curves[result.curves.mechanism == name]
        for c in CURVES:
            ax.plot(part.k, part[c], marker="o", ms=3, color=colours[c], label=c)
            ax.fill_between(part.k, part[c] - part[f"{c}_sd"], part[c] + part[f"{c}_sd"],
                            color=colours[c], alpha=0.15)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(title)
        ax.set_xlabel("features in the classifier (k)")
    axes[0].set_ylabel("accuracy (mean ± sd over repeats)")
    axes[0].legend()
    save_figure(fig, path)


def holdout_lab(directory, *, n: int = 1000, d: int = 1000, ks=None, repeats: int = 20,
                select_threshold: float | None = None, threshold: float | None = None,
                noise: float | None = None, budget: int = 1000, seed: int = 0,
                progress=quiet):
    """Run the whole lab: both analysts, the plot, the verdicts (see :func:`holdout_reuse`).

    Returns
    -------
    harness.lab.report.Report
    """
    from pathlib import Path

    from .report import Report

    result = holdout_reuse(n, d, ks, repeats=repeats, select_threshold=select_threshold,
                           threshold=threshold, noise=noise, budget=budget, seed=seed,
                           progress=progress)
    plot = Path(directory) / "holdout_reuse.png"
    plot_reuse(result, plot)
    c = result.curves
    top = int(result.ks.max())
    std = c[(c.mechanism == "standard") & (c.k == top)].iloc[0]
    thr = c[(c.mechanism == "thresholdout") & (c.k == top)].iloc[0]
    std_peak = c[c.mechanism == "standard"].holdout.max()
    thr_curve = c[(c.mechanism == "thresholdout") & (c.k > 0)].holdout
    t = 4 / math.sqrt(n) if threshold is None else threshold
    s = 1 / math.sqrt(n) if noise is None else noise
    verdicts = [
        f"{repeats} analysts, each with n = {n:,} training, holdout and fresh rows of d = "
        f"{d:,} pure-noise features (labels +-1 at random: the true accuracy of any "
        "classifier is 0.5).",
        f"Standard holdout: at k = {top} the holdout reports {std.holdout:.3f} "
        f"(peak {std_peak:.3f}) while fresh data gives {std.fresh:.3f}: the holdout was "
        "overfitted by reusing it to select features.",
        f"Thresholdout (T = {t:.3g}, noise {s:.3g}, budget {budget}): at k = {top} it reports "
        f"{thr.holdout:.3f} (fresh {thr.fresh:.3f}); over k > 0 its answers range "
        f"{thr_curve.min():.3f}-{thr_curve.max():.3f}. It answers the training value when "
        "training and holdout agree within T, so small-k answers can sit up to T above the "
        f"truth. Holdout answers used per analyst: {result.budget_spent:.1f} of {budget}"
        + (f"; the budget ran out in {result.exhausted} runs." if result.exhausted else "."),
        "Dwork et al. (2015) report ~0.63 for the standard holdout at n = d = 10,000, k = 500, "
        "fresh 0.50, and Thresholdout near the truth.",
    ]
    numbers = {"n": n, "d": d, "repeats": repeats, "k_max": top,
               "standard": {"holdout": float(std.holdout), "holdout_peak": float(std_peak),
                            "fresh": float(std.fresh), "train": float(std.train)},
               "thresholdout": {"holdout": float(thr.holdout), "fresh": float(thr.fresh),
                                "train": float(thr.train),
                                "budget_spent": result.budget_spent,
                                "exhausted": result.exhausted},
               "threshold": t, "noise": s, "budget": budget}
    return Report(name="holdout_reuse", title="The reusable holdout: standard vs Thresholdout",
                  verdicts=verdicts, tables={"Accuracy over k (mean and sd over analysts)":
                                             result.curves},
                  plots=[plot], numbers=numbers,
                  settings={"n": n, "d": d, "repeats": repeats, "threshold": round(t, 6),
                            "noise": round(s, 6), "budget": budget, "seed": seed})
