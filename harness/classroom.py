"""A simulated class: students who are real HTTP clients of a running server.

Every team holds its own candidate models (:class:`harness.class_models.Candidates`:
the same small configuration trained with its own seeds and bootstrap samples, so no
two teams share a file) and follows a strategy:

- ``public-tuner``: submits every candidate it has and selects the one the public
  board liked best -- the habit the lecture warns against;
- ``validation``: scores its candidates on validation.csv (students have its labels),
  submits the best few and selects the best by validation;
- ``ensemble``: submits the majority vote of its best candidates by validation and its
  best single model, and selects whichever validation prefers;
- ``prober``: probes the board like the attack lab: starting from its best model by
  validation, it flips random uncertain rows (where its candidates disagree) to the
  second opinion and keeps a probe when the public score rises; it climbs the public
  board by fitting the public rows' noise, which the private rows do not share;
- ``forgetful``: like ``validation`` but never selects (the board auto-fills).

A strategy is a pure function of the team's models and a ``submit(predictions,
message)`` callable that returns the board's shown public score (None when the daily
limit refused it), and it returns which submission to select. The HTTP students pass
a ``submit`` that uploads through :class:`harness.client.Client`; the re-drawn classes
of :mod:`harness.redraw` pass one that scores in numpy, so both run the same decisions.
"""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .class_models import Candidates
from .client import Client
from .errors import LimitError

STRATEGY_MIX = (("public-tuner", 0.4), ("validation", 0.3), ("ensemble", 0.12),
                ("forgetful", 0.12), ("prober", 0.06))

ADJECTIVES = ("Brave", "Curious", "Dizzy", "Eager", "Fuzzy", "Gentle", "Happy", "Jolly",
              "Lucky", "Mighty", "Nimble", "Quiet", "Rapid", "Sunny", "Witty", "Zesty")
ANIMALS = ("Otters", "Pandas", "Falcons", "Lynxes", "Koalas", "Herons", "Badgers", "Ibises",
           "Yaks", "Moles", "Geckos", "Wombats", "Tapirs", "Newts", "Orcas", "Quokkas")

VALIDATION_SUBMITS = 3      # the validation users' (and forgetful's) best few
ENSEMBLE_SIZE = 5
PROBE_QUERIES = 30
PROBE_FLIP = 0.1            # share of the uncertain rows each probe flips
PROBE_SPLIT = 0.6           # a row is uncertain when at most this share of candidates agree

Submit = Callable[[np.ndarray, str], "float | None"]


@dataclass(frozen=True)
class TeamModels:
    """One team's candidates: test and validation predictions, validation scores.

    ``metric`` and ``y_validation`` let a strategy score a blend on validation (students
    have validation.csv's labels).
    """

    test: np.ndarray            # (k, n_test)
    validation: np.ndarray      # (k, n_validation)
    val_score: np.ndarray       # (k,)
    names: list[str]
    metric: object              # harness.metrics.Metric
    y_validation: np.ndarray

    @classmethod
    def of(cls, candidates: Candidates, team: int, metric, y_validation) -> "TeamModels":
        return cls(candidates.test[team], candidates.validation[team],
                   candidates.val_score[team], candidates.names[team], metric, y_validation)

    @property
    def greater_is_better(self) -> bool:
        return self.metric.greater_is_better

    @cached_property
    def labels(self) -> np.ndarray:
        """The labels the candidates predict (computed once: re-drawn classes ask often)."""
        return np.unique(np.concatenate([self.test.ravel(), self.validation.ravel()]))

    def by_validation(self) -> np.ndarray:
        """Candidate indices, best validation score first (ties: the earlier)."""
        s = self.val_score
        return np.argsort(-s if self.greater_is_better else s, kind="stable")

    def best_shown(self, scores: list[float | None]) -> int | None:
        """Index of the best shown score (ties to the earlier, as the board breaks them)."""
        best = None
        for i, v in enumerate(scores):
            if v is not None and (best is None or self.metric.better(v, scores[best])):
                best = i
        return best


@dataclass(frozen=True)
class Choice:
    """What a strategy selects: the index of one of its submissions (None: the board's
    auto-fill), and a line saying what it did."""

    index: int | None
    note: str


@dataclass
class Student:
    team: str
    token: str
    strategy: str
    seed: int
    index: int = 0                       # the team's row in the class's Candidates
    submitted: list[dict] = field(default_factory=list)
    refused: int = 0
    note: str = ""
    selected: int | None = None          # submission id, None when left to the auto-fill


def roster(n: int, seed: int = 0) -> pd.DataFrame:
    """A generated roster of ``n`` teams (team,member rows, two members each)."""
    rng = np.random.default_rng(seed)
    names, seen = [], set()
    while len(names) < n:
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(ANIMALS)}"
        if name in seen:
            name = f"{name} {len(names)}"
        seen.add(name)
        names.append(name)
    rows = [(t, f"student{2 * i + j + 1}@class.example") for i, t in enumerate(names)
            for j in range(2)]
    return pd.DataFrame(rows, columns=["team", "member"])


def assign_strategies(teams: list[str], seed: int = 0) -> list[str]:
    """Strategies by STRATEGY_MIX in a seeded order: every strategy at least once (from 5
    teams on), the rest shared out by the mix (largest remainders)."""
    n = len(teams)
    shares = np.array([share for _, share in STRATEGY_MIX])
    base = 1 if n >= len(STRATEGY_MIX) else 0
    quota = shares * (n - base * len(shares)) / shares.sum()
    counts = base + np.floor(quota).astype(int)
    # the remainders, largest first; ties to the earlier strategy in the mix
    for i in np.argsort(-(quota - np.floor(quota)), kind="stable")[:n - counts.sum()]:
        counts[i] += 1
    labels = [name for (name, _), c in zip(STRATEGY_MIX, counts) for _ in range(c)]
    return [str(label) for label in np.random.default_rng(seed).permutation(labels)]


def read_tokens(path: Path) -> dict[str, str]:
    with open(path, newline="") as f:
        return {row["team"]: row["token"] for row in csv.DictReader(f)}



def vote(preds: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Per-column majority vote over the rows of ``preds`` (ties to the smallest label);
    ``labels``: the sorted labels that may occur, if known."""
    labels = np.unique(preds) if labels is None else labels
    counts = np.stack([(preds == lab).sum(axis=0) for lab in labels])
    return labels[counts.argmax(axis=0)]


# -- the strategies: (team, submit, rng) -> Choice ------------------------------------

def public_tuner(team: TeamModels, submit: Submit, rng=None) -> Choice:
    """Submit every candidate; select the one with the best public score."""
    scores = [submit(team.test[c], team.names[c]) for c in range(len(team.names))]
    return Choice(team.best_shown(scores), f"submitted {sum(v is not None for v in scores)}, "
                                           "selected the best by public score")


def validation_user(team: TeamModels, submit: Submit, rng=None, *, select: bool = True
                    ) -> Choice:
    """Submit the best few by validation; select the best by validation."""
    best = team.by_validation()[:VALIDATION_SUBMITS]
    scores = [submit(team.test[c], f"{team.names[c]} (val {team.val_score[c]:.4f})")
              for c in best]
    first = next((i for i, v in enumerate(scores) if v is not None), None)
    if not select:
        return Choice(None, f"submitted the best {len(best)} by validation, never selected")
    return Choice(first, f"submitted the best {len(best)} by validation, selected the best")


def forgetful(team: TeamModels, submit: Submit, rng=None) -> Choice:
    """Like the validation users, but never select (the board's auto-fill decides)."""
    return validation_user(team, submit, select=False)


def ensembler(team: TeamModels, submit: Submit, rng=None) -> Choice:
    """Submit the vote of the best few by validation and the best single; select
    whichever scores better on validation."""
    best = team.by_validation()[:ENSEMBLE_SIZE]
    blend_val = team.metric(team.y_validation, vote(team.validation[best], team.labels))
    prefer = 0 if not team.metric.better(team.val_score[best[0]], blend_val) else 1
    scores = [submit(vote(team.test[best], team.labels),
                     f"vote of the best {len(best)} by validation"),
              submit(team.test[best[0]], "best single by validation")]
    index = prefer if scores[prefer] is not None else team.best_shown(scores)
    return Choice(index, f"vote of its best {len(best)} by validation + best single; "
                         f"selected the {'vote' if prefer == 0 else 'single'} by validation")


def prober(team: TeamModels, submit: Submit, rng: np.random.Generator, *,
           queries: int = PROBE_QUERIES, flip: float = PROBE_FLIP,
           split: float = PROBE_SPLIT) -> Choice:
    """Probe the public board as the attack lab does; select the highest public score.

    From the best model by validation, each probe flips a random ``flip`` share of the
    rows its candidates split on (at most ``split`` of them agree with the model) to
    the candidates' second opinion, or back, and is kept when its public score rises
    above the best so far. On such rows either answer is close to a coin flip, so only
    the public rows' own noise makes a probe rise: the kept flips fit the public rows,
    and on the private rows they are coin flips.
    """
    order = team.by_validation()
    base = team.test[order[0]]
    second, support = _second_opinion(team.test, base, team.labels)
    uncertain = np.flatnonzero((second != base) & (support <= split))
    current, best = base, submit(base, "base model (best by validation)")
    if best is None:
        return Choice(None, "refused by the daily limit")
    best_index, sent, kept = 0, 0, 0
    for q in range(queries):
        rows = uncertain[rng.random(len(uncertain)) < flip]
        probe = current.copy()
        probe[rows] = np.where(current[rows] == base[rows], second[rows], base[rows])
        shown = submit(probe, f"probe {q + 1}")
        if shown is None:
            break
        sent += 1
        if team.metric.better(shown, best):
            current, best, best_index, kept = probe, shown, q + 1, kept + 1
    return Choice(best_index, f"{kept} of {sent} probes raised its public score; "
                              "selected the highest")


def _second_opinion(test: np.ndarray, base: np.ndarray, labels: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the candidates' most common answer other than ``base`` (``base`` where
    every candidate agrees with it), and the share of candidates that agree with
    ``base``; ``labels`` are the sorted labels the candidates predict."""
    counts = np.stack([(test == lab).sum(axis=0) for lab in labels]).astype(float)
    cols = np.arange(test.shape[1])
    at_base = np.searchsorted(labels, base)
    support = counts[at_base, cols] / test.shape[0]
    counts[at_base, cols] = -1
    top = counts.argmax(axis=0)
    return np.where(counts[top, cols] > 0, labels[top], base), support


STRATEGIES: dict[str, Callable[..., Choice]] = {
    "public-tuner": public_tuner, "validation": validation_user, "forgetful": forgetful,
    "ensemble": ensembler, "prober": prober}


def expected_uploads(strategy: str, per_team: int, queries: int = PROBE_QUERIES) -> int:
    """How many files a strategy uploads (for a progress bar)."""
    return {"public-tuner": per_team, "validation": min(VALIDATION_SUBMITS, per_team),
            "forgetful": min(VALIDATION_SUBMITS, per_team), "ensemble": 2,
            "prober": queries + 1}[strategy]


class Classroom:
    """Runs the students of one competition against a server.

    Parameters
    ----------
    server : str
        The server's URL.
    slug : str
        The competition.
    candidates : Candidates
        Every team's candidate predictions.
    team_models : callable
        ``team_models(index) -> TeamModels`` for a team's row of ``candidates``.
    test_ids : ndarray
        test.csv's ids, in its order.
    id_column, target : str
        The submission's columns.
    workdir : Path
        Where students write their CSVs.
    """

    def __init__(self, server: str, slug: str, team_models: Callable[[int], TeamModels],
                 test_ids: np.ndarray, id_column: str, target: str, workdir: Path):
        self.server, self.slug = server, slug
        self.team_models = team_models
        self.test_ids, self.id_column, self.target = test_ids, id_column, target
        self.workdir = Path(workdir)

    def enrol(self, tokens: dict[str, str], strategies: list[str], seed: int) -> list[Student]:
        """One student per team, in roster order: team ``i`` holds row ``i`` of the models."""
        rng = np.random.default_rng(seed)
        return [Student(team, token, strategy, seed=int(rng.integers(1 << 31)), index=i)
                for i, ((team, token), strategy) in enumerate(zip(tokens.items(), strategies))]

    def run(self, students: list[Student], *, workers: int = 6, on_submit=None) -> None:
        """Every student works through its strategy; ``on_submit()`` ticks a progress bar."""
        with ThreadPoolExecutor(max_workers=workers) as ex:
            list(ex.map(lambda s: self._work(s, on_submit), students))

    def _work(self, s: Student, tick) -> None:
        calls: list[dict | None] = []      # a strategy's index counts refused calls too
        with Client(self.server, s.token) as client:
            def submit(preds: np.ndarray, message: str) -> float | None:
                calls.append(self._submit(s, client, preds, message, tick))
                return None if calls[-1] is None else calls[-1]["public_score"]

            choice = STRATEGIES[s.strategy](self.team_models(s.index), submit,
                                            np.random.default_rng(s.seed))
            if choice.index is not None:
                s.selected = calls[choice.index]["id"]
                client.select(self.slug, [s.selected])
            s.note = choice.note

    def _submit(self, s: Student, client: Client, preds: np.ndarray, message: str, tick):
        d = self.workdir / s.team.replace(" ", "_")
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{len(s.submitted) + s.refused + 1:03d}.csv"
        pd.DataFrame({self.id_column: self.test_ids, self.target: preds}).to_csv(path,
                                                                               index=False)
        try:
            result = client.submit(self.slug, path, message)
        except LimitError:
            s.refused += 1
            return None
        finally:
            if tick:
                tick()
        result["path"] = str(path)
        s.submitted.append(result)
        return result
