"""Tuning by the public board vs by validation: the lesson the product exists for.

A sweep of small baselines (augmentation, weight decay, dropout, epochs,
width) is trained once; each predicts the test set once. Then, over many
random re-draws of which test rows are public (the same public share as the
competition), the winner is picked two ways, by its public score and by its
validation score, and both picks are scored on the private rows. The public
pick's public score is biased upwards (it was chosen for it); the validation
pick's is not. The gap, public minus private, is the optimism.

Every submission is validated and parsed by :func:`harness.scoring.score`
from its CSV bytes, then scored against the answer key under re-drawn public
masks (``dataclasses.replace(key, public=mask)``), so the lab never shows
anything about the competition's own private split.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import HarnessError
from ..home import Prepared
from ..scoring import AnswerKey, round_public, score
from .attack import resplit
from .common import pyplot, quiet, save_figure

FRACTIONS = (0.1, 0.2, 0.4, 0.6, 0.8)
WAYS = ("public", "validation")

# The sweep's axes; small models and few epochs keep a 30-config sweep to seconds.
# Large batches and a brisk learning rate: every configuration learns in a few dozen steps,
# so the top of the sweep is crowded, as in a real tuning session.
HIDDEN = ((16,), (32,), (64,), (128,))
DROPOUT = (0.0, 0.2, 0.4)
WEIGHT_DECAY = (0.0, 1e-4, 1e-3)
AUGMENT = (0.0, 0.3, 0.6)     # image augmentation, or feature noise for a table
EPOCHS = (8, 16, 32)
BATCH_SIZE = 256
LR = 1e-2


def sweep_configs(k: int = 30, *, image: bool, seed: int = 0) -> list:
    """``k`` distinct MLP configurations drawn from the sweep's grid.

    Parameters
    ----------
    k : int
        How many (at most the grid's size).
    image : bool
        Vary image augmentation (``augment``) for image data, else feature
        noise (``noise``).
    seed : int
        Draws the configurations; configuration ``i`` trains with seed ``seed + i``.
    """
    from ..baselines import BaselineConfig

    grid = list(itertools.product(HIDDEN, DROPOUT, WEIGHT_DECAY, AUGMENT, EPOCHS))
    if not 2 <= k <= len(grid):
        raise HarnessError(f"--configs must be between 2 and {len(grid)}; got {k}")
    chosen = np.random.default_rng(seed).choice(len(grid), k, replace=False)
    configs = []
    for i, g in enumerate(sorted(chosen)):
        hidden, dropout, decay, aug, epochs = grid[g]
        configs.append(BaselineConfig(
            model="mlp", hidden=hidden, dropout=dropout, weight_decay=decay,
            augment=aug if image else 0.0, noise=0.0 if image else aug,
            lr=LR, batch_size=BATCH_SIZE, epochs=epochs, seed=seed + i))
    return configs


def describe(cfg) -> str:
    """A configuration in a few words, for tables."""
    aug = f"aug {cfg.augment:g}" if cfg.augment else f"noise {cfg.noise:g}"
    return (f"mlp {'x'.join(map(str, cfg.hidden))}, {cfg.epochs} ep, drop {cfg.dropout:g}, "
            f"wd {cfg.weight_decay:g}, {aug}")


@dataclass(frozen=True)
class Trained:
    """One configuration of the sweep: its validation score and its submission's bytes."""

    name: str
    validation: float
    submission: bytes
    seconds: float


def train_sweep(prepared: Prepared, configs, progress=quiet) -> list[Trained]:
    """Train each configuration with :func:`harness.baselines.train_baseline`; predict test once.

    ``progress(iterable, desc)`` wraps the loop over the configurations (see
    :mod:`harness.lab.common`).
    """
    from ..baselines import train_baseline

    out = []
    for cfg in progress(configs, "training"):
        result = train_baseline(prepared, cfg, progress=False)
        data = result.submission().to_csv(index=False).encode()
        out.append(Trained(describe(cfg), result.validation_score, data, result.seconds))
    return out


def pick(public: np.ndarray, validation: np.ndarray, greater_is_better: bool) -> tuple[int, int]:
    """Index of the best configuration by public score and by validation score.

    A tie goes to the earlier configuration (as on Kaggle, the first entered).
    """
    best = np.argmax if greater_is_better else np.argmin
    return int(best(np.asarray(public))), int(best(np.asarray(validation)))


def optimism(public: float, private: float, greater_is_better: bool) -> float:
    """How much better the public score looks than the private one (metric units)."""
    return public - private if greater_is_better else private - public


def board_scores(submissions: list[bytes], key: AnswerKey) -> tuple[np.ndarray, np.ndarray]:
    """Public and private score of every submission under ``key`` (the real scorer)."""
    results = [score(data, key) for data in submissions]
    return np.array([r.public for r in results]), np.array([r.private for r in results])


def split_scores(predictions: list[np.ndarray], key: AnswerKey) -> tuple[np.ndarray, np.ndarray]:
    """Public and private scores of already validated predictions (in the key's order).

    What :func:`harness.scoring.score` computes once the file is parsed: the
    study parses each submission once and re-scores it under every re-drawn key.
    """
    metric = key.metric
    return (np.array([metric(key.y_public, p[key.public_index]) for p in predictions]),
            np.array([metric(key.y_private, p[key.private_index]) for p in predictions]))


def public_sizes(key: AnswerKey, fractions) -> list[int]:
    """Public row counts for ``fractions`` of the test set, plus the competition's own."""
    own = int(key.public.sum())
    sizes = {own}
    for f in fractions:
        if not 0 < f < 1:
            raise HarnessError(f"public fractions must be between 0 and 1; got {f}")
        size = min(max(round(f * key.n), 1), key.n - 1)
        if abs(size - own) > 0.01 * key.n:     # a near twin of the own size adds nothing
            sizes.add(size)
    return sorted(sizes)


def selection_study(submissions: list[bytes], validation, key: AnswerKey, *,
                    sizes: list[int], repeats: int = 200, decimals: int = 5, seed: int = 0,
                    progress=quiet) -> pd.DataFrame:
    """Pick by public and by validation over ``repeats`` re-draws of each public size.

    Parameters
    ----------
    submissions : list of bytes
        Each configuration's submission CSV.
    validation : array
        Each configuration's validation score.
    key : AnswerKey
        The truth; only its public mask is re-drawn.
    sizes : list of int
        Public row counts to study.
    repeats : int
    decimals : int
        The board's rounding: the public pick sees what students see.
    progress : callable
        Wraps the loop over the re-draws: ``progress(iterable, desc)`` (see
        :mod:`harness.lab.common`).

    Returns
    -------
    DataFrame
        One row per (public_rows, repeat, way) with the pick's index, public
        and private score and optimism, and ``best_private``, the best private
        score any configuration had (what a perfect pick would get).
    """
    if repeats < 2:
        raise HarnessError(f"--repeats must be 2 or more for a confidence interval; got "
                           f"{repeats}")
    validation = np.asarray(validation, dtype=np.float64)
    if len(validation) != len(submissions):
        raise HarnessError(f"{len(submissions)} submissions but {len(validation)} "
                           "validation scores")
    g = key.metric.greater_is_better
    rng = np.random.default_rng(seed)
    # each file is validated and parsed once by the real scorer
    predictions = [score(data, key).predictions for data in submissions]
    draws = [(m, r) for m in sizes for r in range(repeats)]
    rows = []
    for m, r in progress(draws, "re-drawn splits"):
        public, private = split_scores(predictions, resplit(key, m, rng))
        shown = np.array([round_public(p, decimals) for p in public])
        by = dict(zip(WAYS, pick(shown, validation, g)))
        best_private = float(private.max() if g else private.min())
        for way, i in by.items():
            rows.append({"public_rows": m, "public_share": m / key.n, "repeat": r, "way": way,
                         "pick": i, "public": public[i], "private": private[i],
                         "optimism": optimism(public[i], private[i], g),
                         "best_private": best_private})
    return pd.DataFrame(rows)


def ci(values) -> tuple[float, float]:
    """Mean and the half-width of its 95% normal interval, ``1.96 sd / sqrt(R)``."""
    v = np.asarray(values, dtype=np.float64)
    half = 1.96 * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    return float(v.mean()), float(half)


def board_standard_error(prediction: np.ndarray, key: AnswerKey, size: int, *,
                         draws: int = 200, seed: int = 0) -> float:
    """The standard error of one board score computed on ``size`` rows.

    How much a score on ``size`` fresh rows would vary: the sd of the metric
    over ``draws`` samples of ``size`` rows drawn with replacement from the
    whole test set (a bootstrap; the test set stands in for the population).
    Any metric, not only accuracy. ``prediction`` is in the key's row order.
    """
    rng = np.random.default_rng(seed)
    values = []
    for rows in rng.integers(0, key.n, (draws, size)):
        try:
            values.append(key.metric(key.y[rows], prediction[rows]))
        except ValueError:      # a draw the metric cannot score (e.g. one class for AUC)
            continue
    if len(values) < 2:
        raise HarnessError(f"{key.metric.name} could not be scored on samples of {size} "
                           "test rows; use larger --fractions")
    return float(np.std(values, ddof=1))


def summarize(study: pd.DataFrame) -> pd.DataFrame:
    """Mean ± 95% CI half-width of public, private and optimism per public size and way."""
    rows = []
    for (m, way), part in study.groupby(["public_rows", "way"], sort=True):
        row = {"public_rows": int(m), "public_share": float(part.public_share.iloc[0]),
               "pick_by": way}
        for col in ("public", "private", "optimism"):
            row[col], row[f"{col}_ci"] = ci(part[col])
        rows.append(row)
    return pd.DataFrame(rows)


def paired_gap(study: pd.DataFrame, size: int, greater_is_better: bool) -> tuple[float, float]:
    """How much better the validation pick's private score is than the public pick's.

    Mean ± 95% CI half-width over the re-draws of ``size`` public rows (paired:
    both picks on the same split); positive when the validation pick is ahead.
    """
    part = study[study.public_rows == size]
    wide = part.pivot(index="repeat", columns="way", values="private")
    gain = wide["validation"] - wide["public"]
    return ci(gain if greater_is_better else -gain)


def plot_scatter(public: np.ndarray, private: np.ndarray, picks: dict, path, *,
                 metric: str, public_rows: int) -> None:
    """Public vs private score of every configuration on one re-drawn split, picks marked."""
    fig, ax = pyplot().subplots(figsize=(5.5, 5))
    ax.scatter(public, private, s=18, color="grey", label="configurations")
    # a hollow square under a star, so both show when the two ways pick the same one
    i = picks["validation"]
    ax.scatter([public[i]], [private[i]], marker="s", s=260, facecolors="none",
               edgecolors="tab:green", linewidths=2.5, label="picked by validation", zorder=3)
    i = picks["public"]
    ax.scatter([public[i]], [private[i]], marker="*", s=160, color="tab:red",
               edgecolor="black", label="picked by public", zorder=4)
    lo = min(public.min(), private.min())
    hi = max(public.max(), private.max())
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"public {metric} ({public_rows} rows, one re-drawn split)")
    ax.set_ylabel(f"private {metric}")
    ax.set_title("Every configuration: public vs private")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_optimism(summary: pd.DataFrame, path, *, metric: str) -> None:
    """Optimism (public - private) of each way's pick by public share, with 95% CIs."""
    fig, ax = pyplot().subplots(figsize=(6.5, 4.2))
    colours = {"public": "tab:red", "validation": "tab:green"}
    for way, part in summary.groupby("pick_by", sort=False):
        ax.errorbar(part.public_share * 100, part.optimism, yerr=part.optimism_ci,
                    marker="o", capsize=3, color=colours[way], label=f"picked by {way}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("public share of the test set (%)")
    ax.set_ylabel(f"optimism: public - private {metric}")
    ax.set_title("How much better the pick looked than it was")
    ax.legend()
    save_figure(fig, path)


def _pm(mean: float, half: float) -> str:
    return f"{mean:.4f} ± {half:.4f}"


def overfit_lab(prepared: Prepared, directory, *, configs: int = 30, repeats: int = 200,
                fractions=FRACTIONS, seed: int = 0, progress=quiet,
                trained: list[Trained] | None = None):
    """Run the whole lab: sweep, selection study, plots, verdicts.

    Parameters
    ----------
    prepared : Prepared
    directory : Path
        Where the plots go (the report is written beside them by the caller).
    configs, repeats, fractions, seed :
        Sweep size, re-draws per public size, public shares studied, seed.
    progress : callable
        Wraps the long loops: ``progress(iterable, desc)`` (see :mod:`harness.lab.common`).
    trained : list of Trained, optional
        An already trained sweep (the demo's class trains it once for both).

    Returns
    -------
    harness.lab.report.Report
    """
    from pathlib import Path

    from ..baselines.data import image_side
    from .report import Report

    directory = Path(directory)
    key = AnswerKey.from_prepared(prepared)
    metric = key.metric
    decimals = prepared.spec.scoring.public_decimals
    if trained is None:
        image = prepared.is_image or image_side(prepared.feature_columns) is not None
        cfgs = sweep_configs(configs, image=image, seed=seed)
        trained = train_sweep(prepared, cfgs, progress=progress)
    validation = np.array([t.validation for t in trained])
    subs = [t.submission for t in trained]
    own = int(key.public.sum())
    sizes = public_sizes(key, fractions)
    study = selection_study(subs, validation, key, sizes=sizes, repeats=repeats,
                            decimals=decimals, seed=seed, progress=progress)
    summary = summarize(study)
    # beside the re-draw intervals: how much ONE board score at each public size varies
    # (the validation pick: fixed over the re-draws, a typical good submission)
    best = np.argmax if metric.greater_is_better else np.argmin
    fixed = score(subs[int(best(validation))], key).predictions
    board_se = {m: board_standard_error(fixed, key, m, seed=seed) for m in sizes}
    summary["board_se"] = summary.public_rows.map(board_se)

    # the scatter: one re-drawn split of the competition's own public size
    scatter_key = resplit(key, own, np.random.default_rng(seed))
    public, private = board_scores(subs, scatter_key)
    shown = np.array([round_public(p, decimals) for p in public])
    picks = dict(zip(WAYS, pick(shown, validation, metric.greater_is_better)))
    scatter_png = directory / "overfit_scatter.png"
    optimism_png = directory / "overfit_optimism.png"
    plot_scatter(public, private, picks, scatter_png, metric=metric.name, public_rows=own)
    plot_optimism(summary, optimism_png, metric=metric.name)

    at_own = summary[summary.public_rows == own].set_index("pick_by")
    gap, gap_ci = paired_gap(study, own, metric.greater_is_better)
    by_pub, by_val = at_own.loc["public"], at_own.loc["validation"]
    curve = summary[summary.pick_by == "public"].sort_values("public_rows")
    first, last = curve.iloc[0], curve.iloc[-1]
    se_own = board_se[own]
    verdicts = [
        f"{len(trained)} configurations trained ({sum(t.seconds for t in trained):.1f} s); "
        f"validation {metric.name} from {validation.min():.4f} to {validation.max():.4f}. "
        f"{repeats} random re-draws of which {own} of the {key.n} test rows are public.",
        f"Every ± below is the 95% interval of a mean over the {repeats} re-draws of which "
        "rows of this one test set are public: how precisely the lab pins the average down, "
        f"not how much one board score varies. One board score on {own} public rows has a "
        f"standard error of {se_own:.4f} {metric.name} (bootstrap over the test rows): as "
        f"a measure of the model it is uncertain by about ± {1.96 * se_own:.4f} (95%).",
        f"Picked by the public board: public {_pm(by_pub.public, by_pub.public_ci)}, private "
        f"{_pm(by_pub.private, by_pub.private_ci)}, optimism (public - private) "
        f"{_pm(by_pub.optimism, by_pub.optimism_ci)} {metric.name} (re-draw means; one board "
        f"score's standard error: {se_own:.4f}).",
        f"Picked by validation: public {_pm(by_val.public, by_val.public_ci)}, private "
        f"{_pm(by_val.private, by_val.private_ci)}, optimism "
        f"{_pm(by_val.optimism, by_val.optimism_ci)} (re-draw means; one board score's "
        f"standard error: {se_own:.4f}).",
        _optimism_verdict(by_pub, by_val),
        _private_verdict(gap, gap_ci, metric.name),
        f"Optimism of the public pick by public share: {first.optimism:.4f} ± "
        f"{first.optimism_ci:.4f} at {first.public_share:.0%} ({int(first.public_rows)} rows; "
        f"one board score's standard error {first.board_se:.4f}) to {last.optimism:.4f} ± "
        f"{last.optimism_ci:.4f} at {last.public_share:.0%} ({int(last.public_rows)} rows; "
        f"{last.board_se:.4f}): "
        + ("it shrinks as the public part grows." if last.optimism + last.optimism_ci
           < first.optimism - first.optimism_ci else
           "no clear shrinking at these settings (the intervals overlap)."),
        "Public and private here are re-drawn splits of the test set, never the "
        "competition's own: the lab reveals nothing about the real private board.",
    ]
    configs_table = pd.DataFrame({"configuration": [t.name for t in trained],
                                  "validation": validation, "public (one split)": public,
                                  "private (one split)": private})
    numbers = {
        "metric": metric.name, "configurations": len(trained), "repeats": repeats,
        "public_rows": own, "test_rows": key.n,
        "by_public": {c: float(by_pub[c]) for c in ("public", "public_ci", "private",
                                                    "private_ci", "optimism", "optimism_ci")},
        "by_validation": {c: float(by_val[c]) for c in ("public", "public_ci", "private",
                                                        "private_ci", "optimism",
                                                        "optimism_ci")},
        "interval": f"95% interval of the mean over {repeats} re-draws of the public rows of "
                    "this one test set",
        "board_se": se_own,
        "private_gain_of_validation_pick": gap, "private_gain_ci": gap_ci,
        "optimism_curve": summary.to_dict(orient="records"),
    }
    return Report(
        name="overfit", title=f"Tuning by the public board vs by validation: {prepared.spec.slug}",
        verdicts=verdicts,
        tables={"The picks (mean and *_ci: 95% interval half-width over re-draws of which "
                "rows of this one test set are public; board_se: standard error of one board "
                "score at that public size)": summary,
                "Configurations": configs_table},
        plots=[scatter_png, optimism_png], numbers=numbers,
        settings={"configs": configs, "repeats": repeats,
                  "fractions": ",".join(f"{f:g}" for f in fractions), "seed": seed})


def _optimism_verdict(by_pub, by_val) -> str:
    pub_pos = by_pub.optimism - by_pub.optimism_ci > 0
    val_zero = abs(by_val.optimism) <= by_val.optimism_ci
    if pub_pos and val_zero:
        return ("The public pick's public score is biased upwards (its optimism is above zero "
                "beyond the interval); the validation pick's is not (zero is inside its "
                "interval): only the public board was used to choose, so only it flatters.")
    return (f"Optimism of the public pick {by_pub.optimism:+.4f}, of the validation pick "
            f"{by_val.optimism:+.4f}: "
            + ("the public pick is flattered by its board. " if pub_pos else
               "the public pick is not measurably flattered at these settings. ")
            + ("The validation pick is unbiased." if val_zero else
               "The validation pick's optimism is not zero within its interval."))


def _private_verdict(gap: float, gap_ci: float, metric: str) -> str:
    if gap - gap_ci > 0:
        what = "better"
    elif gap + gap_ci < 0:
        what = "worse"
    else:
        what = "no different, within the interval,"
    return (f"On the private board the validation pick is ahead of the public pick by "
            f"{gap:+.4f} ± {gap_ci:.4f} {metric}: {what} (paired over the same re-draws).")
