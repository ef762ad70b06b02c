"""Uncertainty on the board: each row's 95% interval, and the teams tied with the leader.

A board score is measured on a few hundred test rows, so it is an estimate. This module
says how good an estimate, without telling anyone more than the board already shows.
Pure: numpy and scipy only (no server, no database).

Intervals (``interval: [low, high]`` on every board row)
    A function of the metric, the *shown* score and the number ``n`` of rows the board
    scores, and of nothing about the file behind it. Two submissions showing the same
    score get the same interval, so an interval cannot order a team's files more finely
    than the shown score (under the Ladder the shown score is the Ladder's):

    - ``accuracy``: the exact binomial (Clopper-Pearson) interval of ``k = round(shown * n)``
      correct rows out of ``n`` (:func:`clopper_pearson`);
    - every other metric: ``shown +- 1.96 se(shown)``, clipped to the metric's range, where
      ``se`` is the bootstrap standard error a *reference* prediction with that score has
      on the board's rows (:class:`Reference`). The reference predictions are a family of
      graded quality made from the board's own labels with a fixed seed: the labels with a
      random share of them redrawn (class labels), calibrated binormal probabilities and
      their mirror images (probabilities), the truth plus Gaussian noise of growing size
      (regression). Each is scored on the board's resamples like a submission; the curve
      score -> spread is interpolated (and held flat beyond its ends). It is computed once
      per answer key and is the same for every team.

    Bounds are rounded outward to ``public_decimals`` (:func:`intervals`).

Tied with the leader (``tied_with_leader`` on the board, ``tied`` on each row)
    A paired bootstrap over the board's rows. Each board has one fixed, seeded set of
    :data:`BOOTSTRAP` resamples of its rows (:func:`resample_counts`). At upload every
    submission is scored on all of them (:func:`replicates`: its score on the rows, then
    one score per resample; vectorised for the built-in metrics, one call per resample for
    a teacher's own metric). Two board entries differ significantly when their score
    difference exceeds 1.96 standard deviations of their paired replicate differences (the
    normal paired bootstrap, two-sided at 5%: :func:`differs`). The resamples are shared,
    so the test is paired: two files that agree on most rows have replicates that move
    together. The leader is tied with itself and identical files are always tied. Only the
    outcome is shown (a count, and a band over the tied rows), never a p-value or a
    statistic.

Secrecy
    Before the reveal only the public rows are used: the public replicates, the number of
    public rows and the reference curve of the public labels. The private board gets the
    same from the private rows, after the reveal. The reference curve depends on the public
    labels only as an aggregate (how spread a score is at a given level), as every score on
    the board already does; no row's membership enters anything.
"""

from __future__ import annotations

import base64
import hashlib
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from scipy.special import betaincinv

from .metrics import METRICS, Metric

BOOTSTRAP = 200             # resamples per board: the tie test's replicates per submission
SEED = 13                   # of the resamples and of the reference predictions
LEVEL = 0.95
Z95 = 1.959963984540054     # the normal quantile of a two-sided 95%
VERSION = 1                 # of the replicate computation; part of every stored fingerprint
REFERENCE_LEVELS = 31       # levels of quality of the reference predictions
REFERENCE_DRAWS = 4         # independent reference predictions per level
REFERENCE_BOOTSTRAP = 100   # resamples each reference prediction is scored on
REFERENCE_ROWS = 1000       # labels a reference curve uses at most (a seeded subset)

# what a score can be (clipping of the normal intervals); a teacher's metric: unbounded
BOUNDS = {"accuracy": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0), "f1": (0.0, 1.0),
          "f1_macro": (0.0, 1.0), "roc_auc": (0.0, 1.0), "log_loss": (0.0, math.inf),
          "mse": (0.0, math.inf), "rmse": (0.0, math.inf), "mae": (0.0, math.inf),
          "r2": (-math.inf, 1.0)}


# ------------------------------------------------------------------ resamples and replicates


_COUNTS_LOCK = threading.Lock()


def resample_counts(n: int, b: int = BOOTSTRAP, seed: int = SEED) -> np.ndarray:
    """The fixed bootstrap resamples of a board with ``n`` rows, as counts.

    Parameters
    ----------
    n : int
        Rows the board scores.
    b : int
        Number of resamples.
    seed : int
        Seed; with ``n`` it fixes the resamples, so every process draws the same ones.

    Returns
    -------
    ndarray of shape (n, b), float32, read-only
        ``counts[i, r]``: how often row ``i`` is drawn in resample ``r`` (each column
        sums to ``n``). Rows first: gathering rows is a contiguous copy.
    """
    if n < 1:
        raise ValueError(f"a board needs at least one row to resample; got n={n}")
    # one thread draws them (30 ms at 5,000 rows) while a burst of first uploads waits,
    # instead of every thread drawing its own copy at once
    with _COUNTS_LOCK:
        return _resample_counts(n, b, seed)


@lru_cache(maxsize=8)
def _resample_counts(n: int, b: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, n])
    drawn = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    counts = np.bincount(drawn.ravel(), minlength=b * n).reshape(b, n).T
    counts = np.ascontiguousarray(counts, dtype=np.float32)
    counts.setflags(write=False)
    return counts


def _means(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each resample's mean of per-row ``values``: one float32 vector-matrix product (the
    counts are float32; 0/1 losses sum exactly), returned as float64. By einsum, not BLAS:
    a server's CPUs are busy, and BLAS threads waiting on each other made this 0.1 ms
    product take 10 to 25 ms."""
    values = np.asarray(values, dtype=np.float32)
    return np.einsum("i,ib->b", values, counts).astype(np.float64) / counts.shape[0]


def _group_sums(counts: np.ndarray, groups: np.ndarray,
                mask: np.ndarray | None = None) -> np.ndarray:
    """Each resample's total count over the rows of each group (groups 0..G-1, every one
    present; only the rows of ``mask`` when given): shape (G, b), float32 (exact: the
    totals are whole numbers below 2**24)."""
    order = np.argsort(groups, kind="stable")
    w = counts[order]
    if mask is not None:
        w *= np.asarray(mask, dtype=np.float32)[order, None]
    if groups.max() + 1 == len(groups):          # one row per group: nothing to add up
        return w
    starts = np.flatnonzero(np.r_[True, np.diff(groups[order]) != 0])
    return np.add.reduceat(w, starts, axis=0)


def _loss_mean(metric: Metric, transform: Callable | None = None) -> Callable:
    def replicate(y, p, counts):
        m = _means(counts, metric.row_loss(y, p))
        return transform(m) if transform else m
    return replicate


def _r2(y, p, counts):
    y = np.asarray(y, dtype=np.float64)
    yc = y - y.mean()                     # centred: the sums below do not cancel
    n = counts.shape[0]
    sse = _means(counts, (y - np.asarray(p, dtype=np.float64)) ** 2) * n
    s1, s2 = _means(counts, yc) * n, _means(counts, yc * yc) * n
    sst = s2 - s1 * s1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1 - sse / sst
    # sklearn's force_finite: a constant target scores 1 when fitted exactly, else 0
    return np.where(sst > 0, r2, np.where(sse == 0, 1.0, 0.0))


def _confusions(y, p, counts) -> tuple[np.ndarray, np.ndarray]:
    """Each resample's confusion matrix (b, K, K) over the labels of ``y`` and ``p``."""
    labels, codes = np.unique(np.concatenate([np.asarray(y), np.asarray(p)]),
                              return_inverse=True)
    k, n = len(labels), len(y)
    cells, groups = np.unique(codes[:n] * k + codes[n:], return_inverse=True)
    conf = np.zeros((counts.shape[1], k * k))
    conf[:, cells] = _group_sums(counts, groups).T
    return labels, conf.reshape(-1, k, k)


def _balanced_accuracy(y, p, counts):
    _, c = _confusions(y, p, counts)
    support = c.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.diagonal(c, axis1=1, axis2=2) / support
    return np.nanmean(np.where(support > 0, recall, np.nan), axis=1)


def _f1_parts(c):
    tp = np.diagonal(c, axis1=1, axis2=2)
    return tp, c.sum(axis=1) - tp, c.sum(axis=2) - tp     # tp, fp, fn per class


def _f1_macro(y, p, counts):
    _, c = _confusions(y, p, counts)
    tp, fp, fn = _f1_parts(c)
    denom = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)    # absent in both: not a label
    return np.nanmean(f1, axis=1)


def _f1(y, p, counts):
    labels, c = _confusions(y, p, counts)
    where = np.flatnonzero(labels == 1)
    if not len(where):
        return np.zeros(counts.shape[1])
    tp, fp, fn = (part[:, where[0]] for part in _f1_parts(c))
    denom = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2 * tp / denom, 0.0)     # sklearn's zero_division


def _roc_auc(y, p, counts):
    """Mann-Whitney AUC per resample (ties count one half), as sklearn's trapezoids."""
    pos = np.asarray(y) == 1
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    w = counts[order]                                     # (n, b), by increasing score
    pos, p = pos[order], p[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        total = w[pos].sum(axis=0, dtype=np.float64) * w[~pos].sum(axis=0, dtype=np.float64)
        if (np.diff(p) > 0).all():
            # no ties: each positive beats the negatives below it (whole numbers: exact)
            below = np.cumsum(w * ~pos[:, None], axis=0)
            return np.einsum("nb,nb->b", w * pos[:, None], below, dtype=np.float64) / total
        _, groups = np.unique(p, return_inverse=True)
        positive = _group_sums(w, groups, pos)            # (g, b) per score
        negative = _group_sums(w, groups, ~pos)
        below = np.cumsum(negative, axis=0) - negative
        pairs = np.einsum("gb,gb->b", positive, below + negative / 2, dtype=np.float64)
        return pairs / total


def _fast(metric: Metric) -> Callable | None:
    """The vectorised replicates of a built-in metric (None for a teacher's own)."""
    if METRICS.get(metric.name) is not metric:
        return None
    name = metric.name
    if name == "accuracy":
        return _loss_mean(metric, lambda m: 1 - m)
    if name == "rmse":
        return _loss_mean(metric, np.sqrt)
    if metric.row_loss is not None:            # mse, mae, log_loss: the mean row loss
        return _loss_mean(metric)
    return {"r2": _r2, "balanced_accuracy": _balanced_accuracy, "f1": _f1,
            "f1_macro": _f1_macro, "roc_auc": _roc_auc}.get(name)


def _each(metric: Metric, y, p, counts) -> np.ndarray:
    """Replicates by calling the metric once per resample (a teacher's own metric); a
    resample it fails on gives NaN (the tie test leaves those out)."""
    rows = np.arange(counts.shape[0])
    y, p = np.asarray(y), np.asarray(p)
    out = np.full(counts.shape[1], np.nan)
    for r in range(counts.shape[1]):
        idx = np.repeat(rows, counts[:, r].astype(np.int64))
        try:
            out[r] = metric(y[idx], p[idx])
        except Exception:  # noqa: BLE001 - e.g. a resample holding one class only
            continue
    return out


def replicates(metric: Metric, y, pred, counts: np.ndarray | None = None) -> np.ndarray:
    """A file's score on the board's rows, then on each of the board's resamples.

    Parameters
    ----------
    metric : Metric
    y, pred : array-like of shape (n,)
        The board's labels and the file's predictions on the same rows.
    counts : ndarray of shape (n, b), optional
        The resamples (default :func:`resample_counts` of ``n``).

    Returns
    -------
    ndarray of shape (1 + b,), float64
        ``[score, score on resample 1, ...]``; a resample on which the metric is not
        defined (e.g. one class only, for roc_auc) gives NaN.
    """
    y, pred = np.asarray(y), np.asarray(pred)
    if counts is None:
        counts = resample_counts(len(y))
    fast = _fast(metric)
    with np.errstate(all="ignore"):
        if fast is None:
            return np.concatenate([[metric(y, pred)], _each(metric, y, pred, counts)])
        # the rows themselves are one more "resample", with every count 1
        ones = np.ones((len(y), 1), dtype=np.float32)
        return np.concatenate([fast(y, pred, ones), fast(y, pred, counts)]).astype(np.float64)


def differs(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two files' scores differ significantly (paired bootstrap, 5%, two-sided).

    Parameters
    ----------
    a, b : ndarray of shape (1 + B,)
        :func:`replicates` of the two files on the same board.
    """
    return not bool(tied_mask(np.asarray(a)[None, :], np.asarray(b))[0])


def tied_mask(others: np.ndarray, leader: np.ndarray) -> np.ndarray:
    """For each row of ``others`` (replicates), whether it is tied with ``leader``.

    Tied: ``|score - leader's| <= 1.96 sd(paired replicate differences)``; the
    comparison allows for float rounding so that identical files are always tied.
    """
    others, leader = np.atleast_2d(others), np.asarray(leader)
    diff = others - leader
    scale = np.maximum(np.abs(others[:, 0]), np.abs(leader[0]))
    tol = 1e-9 * np.maximum(scale, 1.0)
    return np.abs(diff[:, 0]) <= _half_widths(diff) + tol


def paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(score a - score b, half-width of its 95% interval)`` from :func:`replicates` of
    two files on the same rows: the paired bootstrap :func:`tied_mask` judges ties by."""
    diff = np.atleast_2d(np.asarray(a) - np.asarray(b))
    return float(diff[0, 0]), float(_half_widths(diff)[0])


def _half_widths(diff: np.ndarray) -> np.ndarray:
    """Per row of paired replicate differences ``[score, resample 1, ...]``: 1.96 times the
    standard deviation of the resamples' differences (those the metric defines)."""
    with np.errstate(all="ignore"):
        boot = diff[:, 1:]
        ok = np.isfinite(boot)
        count = ok.sum(axis=1)
        mean = np.where(ok, boot, 0).sum(axis=1) / np.maximum(count, 1)
        var = np.where(ok, (boot - mean[:, None]) ** 2, 0).sum(axis=1) / np.maximum(count - 1, 1)
    return Z95 * np.sqrt(var)


# ------------------------------------------------------------------ storage


def pack(values: np.ndarray) -> str:
    """Replicates as stored: the score as float64, the resamples as float32, base64 text
    (JSON-safe, so backups carry it like any column)."""
    values = np.asarray(values, dtype=np.float64)
    raw = values[:1].astype("<f8").tobytes() + values[1:].astype("<f4").tobytes()
    return base64.b64encode(raw).decode("ascii")


def unpack(text: str) -> np.ndarray:
    """The replicates :func:`pack` stored."""
    raw = base64.b64decode(text)
    return np.concatenate([np.frombuffer(raw[:8], "<f8"),
                           np.frombuffer(raw[8:], "<f4").astype(np.float64)])


def fingerprint(metric_name: str, solution: bytes) -> str:
    """What stored replicates were computed against: the metric, the answer key's file (its
    labels and which rows are public), the resamples and this module's version (16 hex
    characters). From the file's bytes, so a board can tell without parsing it."""
    h = hashlib.sha256(f"{VERSION}|{BOOTSTRAP}|{SEED}|{metric_name}|".encode())
    h.update(solution)
    return h.hexdigest()[:16]


# ------------------------------------------------------------------ intervals


def clopper_pearson(k: np.ndarray, n: int, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The exact binomial interval of ``k`` successes out of ``n`` (vectorised)."""
    k = np.asarray(k, dtype=np.float64)
    alpha = 1 - level
    with np.errstate(all="ignore"):
        low = np.where(k > 0, betaincinv(k, n - k + 1, alpha / 2), 0.0)
        high = np.where(k < n, betaincinv(k + 1, n - k, 1 - alpha / 2), 1.0)
    return low, high


@dataclass(frozen=True)
class Reference:
    """The standard error of a score at each level, from reference predictions.

    Parameters
    ----------
    scores, errors : ndarray
        Reference scores (sorted) and the bootstrap standard error of each.
    """

    scores: np.ndarray
    errors: np.ndarray

    def se(self, score) -> np.ndarray:
        """The standard error at ``score`` (interpolated; flat beyond the ends)."""
        return np.interp(np.asarray(score, dtype=np.float64), self.scores, self.errors)


def _reference_levels(metric: Metric, task: str, y: np.ndarray,
                      rng: np.random.Generator) -> list[Callable[[], np.ndarray]]:
    """One maker of reference predictions per level of quality, from the labels ``y``
    (see the module text); each call of a maker draws a fresh prediction."""
    n = len(y)
    if task == "regression":
        yf = y.astype(np.float64)
        spread = float(yf.std()) or 1.0
        sizes = np.concatenate([[0.0], np.geomspace(1e-3, 1e2, REFERENCE_LEVELS - 1)])
        return [lambda c=c: yf + c * spread * rng.standard_normal(n) for c in sizes]
    if metric.needs_proba:
        pos = y.astype(np.float64) == 1
        prior = min(max(float(pos.mean()), 1e-3), 1 - 1e-3)

        def binormal(d, mirror):
            # z ~ N(d, 1) for positives, N(0, 1) otherwise; p is the exact posterior
            z = rng.standard_normal(n) + d * pos
            logit = math.log(prior / (1 - prior)) + d * z - d * d / 2
            p = 1 / (1 + np.exp(-np.clip(logit, -700, 700)))
            return 1 - p if mirror else p          # the mirror: worse than chance

        return [lambda d=d, m=m: binormal(d, m)
                # from a faint signal, not none: constant scores would all tie
                for d in np.linspace(0.05, 6.0, (REFERENCE_LEVELS + 1) // 2) for m in (0, 1)]

    def relabel(q):
        other = y[rng.integers(0, n, n)]          # a label drawn from the labels' own mix
        return np.where(rng.random(n) < q, other, y)

    return [lambda q=q: relabel(q) for q in np.linspace(0.0, 1.0, REFERENCE_LEVELS)]


def reference_curve(metric: Metric, task: str, y, seed: int = SEED) -> Reference | None:
    """The score -> standard error curve of reference predictions on a board's labels.

    Each level of quality gets :data:`REFERENCE_DRAWS` independent reference predictions,
    each scored on :data:`REFERENCE_BOOTSTRAP` resamples; a level's standard error pools
    their variances, and neighbouring levels are averaged (a window of three) so that one
    unlucky draw does not dent the curve. Boards over :data:`REFERENCE_ROWS` rows use a
    seeded subset of that many labels and scale the errors by ``sqrt(subset / n)`` (a
    score's spread shrinks as one over the square root of the rows), which bounds the work:
    well under a second, once per answer key and board.

    Parameters
    ----------
    metric : Metric
    task : {"binary", "multiclass", "regression"}
    y : array-like
        The board's labels (before the reveal: the public rows').
    seed : int

    Returns
    -------
    Reference or None
        None when no reference prediction gets a finite score and spread (a teacher's
        metric that fails on them): the board then shows no intervals.
    """
    y = np.asarray(y)
    n = len(y)
    rng = np.random.default_rng([seed, n, 1])
    if n > REFERENCE_ROWS:
        y = y[np.sort(rng.choice(n, REFERENCE_ROWS, replace=False))]
    counts = resample_counts(len(y), REFERENCE_BOOTSTRAP, seed + 1)
    levels = []
    for make in _reference_levels(metric, task, y, rng):
        scores, variances = [], []
        for _ in range(REFERENCE_DRAWS):
            try:
                r = replicates(metric, y, make(), counts)
            except Exception:  # noqa: BLE001 - a teacher's metric may refuse a reference
                continue
            boot = r[1:][np.isfinite(r[1:])]
            if np.isfinite(r[0]) and len(boot) > 1:
                scores.append(float(r[0]))
                variances.append(float(boot.var(ddof=1)))
        if scores:
            levels.append((float(np.mean(scores)), float(np.mean(variances))))
    if not levels:
        return None
    levels.sort()
    scores = np.array([s for s, _ in levels])
    variances = np.array([v for _, v in levels])
    # a geometric mean over neighbours: spreads change by factors between levels (an mse
    # level's is twice the last), which an arithmetic mean would inflate; a level with no
    # spread at all (a perfect prediction) keeps none
    spread = variances > 0
    if spread.sum() > 2:
        logs = np.log(variances[spread])
        window = np.ones(3)
        variances[spread] = np.exp(np.convolve(logs, window, "same")
                                   / np.convolve(np.ones(len(logs)), window, "same"))
    return Reference(scores, np.sqrt(variances * len(y) / n))


def _outward(low: np.ndarray, high: np.ndarray, decimals: int):
    """Bounds rounded outward to ``decimals`` (an interval never shrinks when shown)."""
    scale = 10.0 ** decimals
    with np.errstate(invalid="ignore"):
        lo = np.floor(low * scale + 1e-7) / scale
        hi = np.ceil(high * scale - 1e-7) / scale
    return np.round(lo, decimals), np.round(hi, decimals)


def intervals(metric: Metric, shown: Sequence[float], n: int, decimals: int,
              reference: Reference | None = None) -> list[list[float] | None]:
    """The 95% interval of each shown score on a board of ``n`` rows.

    Parameters
    ----------
    metric : Metric
    shown : sequence of float
        The scores as the board shows them.
    n : int
        Rows the board scores.
    decimals : int
        ``public_decimals``: the bounds are rounded outward to it.
    reference : Reference, optional
        Needed for every metric but accuracy (:func:`reference_curve`).

    Returns
    -------
    list of [low, high] or None
        None for every row when there is no way to tell (no reference).
    """
    s = np.asarray(shown, dtype=np.float64)
    if not len(s):
        return []
    if METRICS.get(metric.name) is metric and metric.name == "accuracy":
        low, high = clopper_pearson(np.clip(np.round(s * n), 0, n), n)
    elif reference is not None:
        half = Z95 * reference.se(s)
        lo_b, hi_b = BOUNDS.get(metric.name, (-math.inf, math.inf)) \
            if METRICS.get(metric.name) is metric else (-math.inf, math.inf)
        low, high = np.clip(s - half, lo_b, hi_b), np.clip(s + half, lo_b, hi_b)
    else:
        return [None] * len(s)
    low, high = _outward(low, high, decimals)
    return [[float(a), float(b)] if math.isfinite(a) and math.isfinite(b) else None
            for a, b in zip(low, high)]


def half_width(interval: Sequence[float] | None) -> float | None:
    """Half the width of an interval: the "±" a page shows beside the score."""
    if interval is None:
        return None
    return (interval[1] - interval[0]) / 2


__all__ = ["BOOTSTRAP", "SEED", "LEVEL", "Z95", "VERSION", "resample_counts", "replicates",
           "differs", "tied_mask", "pack", "unpack", "fingerprint", "clopper_pearson",
           "Reference", "reference_curve", "intervals", "half_width"]
