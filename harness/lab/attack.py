"""Blum & Hardt's boosting attack on a public leaderboard (ICML 2015).

With labels that are pure noise nothing can beat chance on fresh data, yet an
attacker who submits ``k`` random label vectors, keeps those the public board
scores above chance and submits their coordinate-wise majority vote climbs
the public board: each kept vector is slightly correlated with the public
labels, and the vote adds those small correlations up. The private board
stays at chance.

Boards compared, each fed the same submissions:

- ``kaggle``: every submission's public score shown to the competition's
  ``public_decimals``, the team's entry chosen by the server's rule
  (:func:`harness.rules.better_public`: the best shown score, ties to the earlier
  submission); the attacker keeps a vector when its shown score beats chance;
- ``ladder``: the parameter-free Ladder (:func:`harness.ladder.ladder_update`,
  the server's code), and ``ladder-step``: the Ladder with a fixed step. The
  board shows only the team's best, so the attacker keeps a vector when the
  board moved after it (as in the paper's code).

Every submission is scored by :func:`harness.scoring.score` on CSV bytes, as
the server scores uploads; ``fast=True`` computes the same numbers in numpy
(tests hold the two equal).
"""

from __future__ import annotations

import copy
import csv
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import HarnessError
from ..ladder import ladder_update
from ..rules import Entry, better_public, shown_score
from ..scoring import AnswerKey, score
from .common import pyplot, quiet, save_figure

BOARDS = ("kaggle", "ladder", "ladder-step")


def submission_csv(key: AnswerKey, predictions: np.ndarray) -> bytes:
    """A submission file's bytes: the test ids in released order and ``predictions``."""
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow([key.id_column, key.target])
    sink = io.BytesIO()
    sink.write(head.getvalue().encode())
    pacsv.write_csv(pa.table({key.id_column: key.ids, key.target: predictions}), sink,
                    pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


class LabelCsv:
    """Submission bytes for class-index vectors, fast: one template, labels filled in place.

    The attack writes hundreds of files that differ only in their 0/1 labels;
    when every class label is one character (``0``/``1``), the file is built
    once and each submission overwrites one byte per row (microseconds, not
    milliseconds). Other labels fall back to :func:`submission_csv`.
    """

    def __init__(self, key: AnswerKey):
        self.key = key
        texts = [_label_text(c) for c in key.classes]
        self.codes = None
        if all(len(t) == 1 for t in texts):
            template = submission_csv(key, np.zeros(key.n, dtype=np.int64))   # "0" placeholders
            self.buffer = np.frombuffer(template, dtype=np.uint8).copy()
            # the label is the byte before each row's newline (the header's excluded)
            self.slots = np.flatnonzero(self.buffer == ord("\n"))[1:] - 1
            self.codes = np.frombuffer("".join(texts).encode(), dtype=np.uint8)

    def __call__(self, bits: np.ndarray) -> bytes:
        if self.codes is None:
            return submission_csv(self.key, self.key.classes[bits])
        self.buffer[self.slots] = self.codes[bits]
        return self.buffer.tobytes()


def _label_text(value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def resplit(key: AnswerKey, public_rows: int, rng: np.random.Generator) -> AnswerKey:
    """The same answer key with ``public_rows`` test rows drawn at random as the public part."""
    if not 1 <= public_rows < key.n:
        raise HarnessError(f"--public-rows must be between 1 and {key.n - 1} (the test set has "
                           f"{key.n} rows and the private part needs at least one); got "
                           f"{public_rows}")
    mask = np.zeros(key.n, dtype=bool)
    mask[rng.choice(key.n, public_rows, replace=False)] = True
    return replace(key, public=mask)


def majority_vote(votes: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Coordinate-wise majority of the kept 0/1 vectors (a tie, or none kept, gives 1).

    Parameters
    ----------
    votes : ndarray of shape (k, n)
        0/1 label vectors.
    keep : ndarray of bool, shape (k,)
    """
    kept = np.asarray(votes)[np.asarray(keep, dtype=bool)]
    return vote_of(kept.sum(axis=0, dtype=np.int64), len(kept))


def vote_of(ones: np.ndarray, kept: int) -> np.ndarray:
    """The majority from running counts: ``ones`` per coordinate among ``kept`` vectors."""
    return (2 * ones >= kept).astype(np.int8)


@dataclass(frozen=True)
class Scored:
    """Scores of a batch of submissions: public, private, per-row public losses."""

    public: np.ndarray          # (k,)
    private: np.ndarray         # (k,)
    public_rows: np.ndarray     # (k, n_public) per-row losses, for the Ladder


def score_batch(key: AnswerKey, bits: np.ndarray, *, fast: bool = False) -> Scored:
    """Score 0/1 vectors (index into ``key.classes``, in the key's order) on both boards.

    ``fast=False`` writes each one as a CSV and scores it with
    :func:`harness.scoring.score`, exactly as an upload; ``fast=True`` computes
    the same numbers with numpy on the whole batch (accuracy only).
    """
    bits = np.atleast_2d(bits)
    if fast:
        truth = key.y == key.classes[1]
        rows = key.metric.row_loss(truth[key.public_index], bits[:, key.public_index] == 1)
        wrong_private = (bits[:, key.private_index] == 1) != truth[key.private_index]
        return Scored(1.0 - rows.mean(axis=1), 1.0 - wrong_private.mean(axis=1), rows)
    to_csv = LabelCsv(key)
    results = [score(to_csv(row), key) for row in bits]
    return Scored(np.array([r.public for r in results]), np.array([r.private for r in results]),
                  np.stack([r.public_row_loss(key) for r in results]))


class Board(ABC):
    """One team's view of a public board; subclasses say what it shows.

    ``submit`` takes a submission's full-precision public score (and its
    private score and per-row public losses) and returns what the board now
    shows for the team. ``shown_private`` is the private score of the
    submission behind the shown one.
    """

    name = "board"

    def __init__(self, greater_is_better: bool):
        self.greater_is_better = greater_is_better
        self.shown: float | None = None
        self.shown_private: float | None = None
        self.last_own: float | None = None    # what the board showed for the last submission

    def better(self, a: float, b: float) -> bool:
        return a > b if self.greater_is_better else a < b

    @abstractmethod
    def submit(self, public: float, private: float, rows: np.ndarray) -> float:
        """Take one submission; return what the board now shows for the team."""

    @abstractmethod
    def keeps(self, before: float | None, after: float, own: float, chance: float) -> bool:
        """Whether the attacker keeps a vector, from what the board showed (see module doc)."""


_CLOCK = datetime(2015, 7, 6, tzinfo=timezone.utc)


class KaggleBoard(Board):
    """Kaggle: each submission's public score, rounded; the team's best on the board.

    Which submission is the team's entry is the server's rule,
    :func:`harness.rules.better_public`: the best shown score, ties to the earlier one.
    """

    name = "kaggle"

    def __init__(self, greater_is_better: bool, decimals: int):
        super().__init__(greater_is_better)
        self.decimals = decimals
        self.entry: Entry | None = None     # the submission behind the shown score
        self.submitted = 0

    def submit(self, public, private, rows):
        self.submitted += 1
        # one clock time for all: the rules then order by id, i.e. by submission order
        entry = Entry(id=self.submitted, team="attacker", submitted_at=_CLOCK,
                      public=float(public), private=float(private))
        self.last_own = shown_score(entry, self.decimals)
        if self.entry is None or better_public(entry, self.entry,
                                               greater_is_better=self.greater_is_better,
                                               decimals=self.decimals):
            self.entry = entry
            self.shown, self.shown_private = self.last_own, private
        return self.shown

    def keeps(self, before, after, own, chance):
        return self.better(own, chance)


class LadderBoard(Board):
    """The Ladder (fixed ``step``, or parameter-free with ``step = 0``), via harness.ladder."""

    def __init__(self, greater_is_better: bool, step: float = 0.0):
        super().__init__(greater_is_better)
        self.step = step
        self.name = "ladder-step" if step > 0 else "ladder"
        self.best_rows: np.ndarray | None = None

    def submit(self, public, private, rows):
        decision = ladder_update(self.shown, public, greater_is_better=self.greater_is_better,
                                 step=self.step, new_rows=rows, best_rows=self.best_rows)
        if decision.updated:
            self.shown, self.shown_private, self.best_rows = decision.shown, private, rows
        self.last_own = self.shown     # the Ladder shows only the team's best
        return self.shown

    def keeps(self, before, after, own, chance):
        # the board tells about a submission only when it moves
        if before is None:
            return self.better(after, chance)
        return self.better(after, before)


def make_boards(key: AnswerKey, *, decimals: int, step: float) -> list[Board]:
    """The three boards of the lab, fresh."""
    g = key.metric.greater_is_better
    return [KaggleBoard(g, decimals), LadderBoard(g), LadderBoard(g, step)]


def check_attackable(key: AnswerKey) -> None:
    """The attack needs a binary task scored by accuracy on labels."""
    if key.task != "binary" or key.metric.name != "accuracy" or key.classes is None \
            or len(key.classes) != 2:
        raise HarnessError(f"the boosting attack needs a binary competition scored by accuracy "
                           f"(this one is {key.task}, scored by {key.metric.name}); use the "
                           "built-in noise-binary: `harness lab attack noise-binary`")


def boosting_attack(key: AnswerKey, queries: int, rng: np.random.Generator, *,
                    decimals: int = 5, step: float = 0.01, every: int = 10,
                    fast: bool = False) -> pd.DataFrame:
    """One run of the attack against each board, stopping to vote every ``every`` queries.

    The same ``queries`` random label vectors go to every board. After each
    ``every`` queries (and at the last) the attacker's majority vote of the
    vectors kept so far is submitted to a copy of the board as it stands, so
    each checkpoint is "the attack had stopped here".

    Returns
    -------
    DataFrame
        One row per (board, queries): ``shown`` (the board's public score
        after the vote), ``shown_private`` (private score of the submission
        behind it), ``attack_public`` and ``attack_private`` (the vote's own
        scores at full precision), ``kept`` (vectors in the vote).
    """
    check_attackable(key)
    if queries < 1 or every < 1:
        raise HarnessError(f"--queries and the checkpoint spacing must be >= 1; got "
                           f"{queries} and {every}")
    chance = 0.5
    bits = rng.integers(0, 2, size=(queries, key.n), dtype=np.int8)
    scored = score_batch(key, bits, fast=fast)
    checkpoints = set(range(every, queries + 1, every)) | {queries}
    boards = make_boards(key, decimals=decimals, step=step)
    keep = np.zeros((len(boards), queries), dtype=bool)
    ones = np.zeros((len(boards), key.n), dtype=np.int32)   # running vote counts per board
    votes = []              # (board index, queries, majority vector)
    snapshots = []
    for q in range(queries):
        for b, board in enumerate(boards):
            before = board.shown
            after = board.submit(scored.public[q], scored.private[q], scored.public_rows[q])
            keep[b, q] = board.keeps(before, after, board.last_own, chance)
            if keep[b, q]:
                ones[b] += bits[q]
            if q + 1 in checkpoints:
                snapshots.append(copy.copy(board))
                votes.append((b, q + 1, vote_of(ones[b], int(keep[b, :q + 1].sum()))))
    final = score_batch(key, np.stack([v for _, _, v in votes]), fast=fast)
    rows = []
    for i, ((b, q, _), board) in enumerate(zip(votes, snapshots)):
        shown = board.submit(final.public[i], final.private[i], final.public_rows[i])
        rows.append({"board": board.name, "queries": q, "shown": shown,
                     "shown_private": board.shown_private,
                     "attack_public": float(final.public[i]),
                     "attack_private": float(final.private[i]),
                     "kept": int(keep[b, :q].sum())})
    return pd.DataFrame(rows)


def run_attack(key: AnswerKey, *, queries: int = 400, repeats: int = 5, decimals: int = 5,
               step: float = 0.01, every: int = 10, seed: int = 0, fast: bool = False,
               progress=quiet) -> pd.DataFrame:
    """:func:`boosting_attack` over ``repeats`` independent runs (a ``repeat`` column added).

    ``progress(iterable, desc)`` wraps the loop over the runs (see :mod:`harness.lab.common`).
    """
    if repeats < 1:
        raise HarnessError(f"--repeats must be >= 1; got {repeats}")
    rng = np.random.default_rng(seed)
    runs = [boosting_attack(key, queries, rng, decimals=decimals, step=step, every=every,
                            fast=fast).assign(repeat=r)
            for r in progress(range(repeats), "attacks")]
    return pd.concat(runs, ignore_index=True)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over repeats per (board, queries)."""
    cols = ["shown", "shown_private", "attack_public", "attack_private", "kept"]
    g = runs.groupby(["board", "queries"], sort=False)[cols]
    out = g.mean()
    sd = g.std(ddof=1).fillna(0.0).add_suffix("_sd")
    return pd.concat([out, sd], axis=1).reset_index()


def plot_attack(summary: pd.DataFrame, path, *, public_rows: int) -> None:
    """Error (1 - accuracy) the boards show vs queries, with the private error of the vote."""
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    colours = {"kaggle": "tab:red", "ladder": "tab:blue", "ladder-step": "tab:purple"}
    for name, part in summary.groupby("board", sort=False):
        ax.plot(part.queries, 1 - part.shown, marker="o", ms=3, color=colours.get(name),
                label=f"{name}: public error shown")
    kaggle = summary[summary.board == "kaggle"]
    ax.plot(kaggle.queries, 1 - kaggle.attack_private, color="tab:green", ls="--",
            label="private error of the attack (kaggle)")
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.set_xlabel("queries (random submissions)")
    ax.set_ylabel("error = 1 - accuracy (mean over repeats)")
    ax.set_title(f"Boosting attack, {public_rows:,} public rows")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def attack_lab(prepared, directory, *, queries: int = 400, repeats: int = 5,
               public_rows: int | None = None, step: float = 0.01, every: int = 10,
               seed: int = 0, fast: bool = False, progress=quiet):
    """Run the whole lab: the attack on each board, the plot, the verdicts.

    Parameters
    ----------
    prepared : harness.home.Prepared
        A binary competition scored by accuracy (the built-in ``noise-binary``).
    directory : Path
        Where the plot goes.
    queries, repeats : int
        Random submissions per attack; independent attacks averaged.
    public_rows : int, optional
        Re-draw the public part with this many test rows (default: the competition's own).
    step : float
        The fixed-step Ladder's ``eta``.
    every : int
        Queries between the checkpoints of the curve.
    seed : int
    fast : bool
        Score in numpy instead of through CSV bytes and the scorer (same numbers).
    progress : callable
        Wraps the repeat loop: ``progress(iterable, desc)`` (see :mod:`harness.lab.common`).

    Returns
    -------
    harness.lab.report.Report
    """
    from pathlib import Path

    from .report import Report

    key = AnswerKey.from_prepared(prepared)
    check_attackable(key)
    if public_rows is not None:
        key = resplit(key, public_rows, np.random.default_rng([seed, 1]))
    n_public = int(key.public.sum())
    decimals = prepared.spec.scoring.public_decimals
    runs = run_attack(key, queries=queries, repeats=repeats, decimals=decimals, step=step,
                      every=every, seed=seed, fast=fast, progress=progress)
    summary = summarize(runs)
    plot = Path(directory) / "attack.png"
    plot_attack(summary, plot, public_rows=n_public)
    final = summary[summary.queries == summary.queries.max()].set_index("board")
    numbers = {"queries": queries, "repeats": repeats, "public_rows": n_public,
               "private_rows": key.n - n_public, "boards": {}}
    for board in BOARDS:
        row = final.loc[board]
        numbers["boards"][board] = {
            "shown_public": float(row.shown), "private": float(row.attack_private),
            "shown_public_error": 1 - float(row.shown),
            "private_error": 1 - float(row.attack_private),
            "attack_public": float(row.attack_public), "kept": float(row.kept)}
    b = numbers["boards"]
    verdicts = [
        f"{repeats} attacks of {queries} random submissions each on a public part of "
        f"{n_public:,} rows (labels independent of the features: the true error of anything "
        "is 0.5).",
        f"Kaggle board ({decimals} decimals): the public error shown fell to "
        f"{b['kaggle']['shown_public_error']:.4f} while the attack's private error is "
        f"{b['kaggle']['private_error']:.4f}: "
        + ("the board was fooled." if b["kaggle"]["shown_public_error"] < 0.49 else
           "the board was not fooled much at these settings."),
        f"Ladder (parameter-free): shown error {b['ladder']['shown_public_error']:.4f}, private "
        f"error {b['ladder']['private_error']:.4f}; Ladder with step {step:g}: shown error "
        f"{b['ladder-step']['shown_public_error']:.4f}, private error "
        f"{b['ladder-step']['private_error']:.4f}. The Ladder moves only on a significant "
        f"improvement, so the attacker keeps {b['ladder']['kept']:.1f} vectors on average "
        f"instead of {b['kaggle']['kept']:.1f}.",
        "Blum & Hardt (2015) report 0.50 -> ~0.43 shown on Kaggle and ~0.48-0.49 under the "
        "Ladder at 4,000 public rows and 400 queries, true error 0.50.",
    ]
    table = final.reset_index()[["board", "shown", "attack_public", "attack_private",
                                 "shown_private", "kept", "shown_sd", "attack_private_sd"]]
    return Report(
        name="attack", title=f"Boosting attack on the public board: {prepared.spec.slug}",
        verdicts=verdicts,
        tables={f"After {queries} queries (accuracy; mean over repeats)": table,
                "Curve (mean over repeats)": summary[["board", "queries", "shown",
                                                      "attack_public", "attack_private",
                                                      "kept"]]},
        plots=[plot], numbers=numbers,
        settings={"queries": queries, "repeats": repeats, "public_rows": n_public,
                  "step": step, "every": every, "seed": seed, "scorer":
                  "numpy" if fast else "harness.scoring.score"})
