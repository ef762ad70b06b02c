"""A simulated class: students who are real HTTP clients of a running server.

Each student holds a few candidate models (columns of a shared prediction pool:
validation and test predictions of baselines trained with different settings)
and follows a strategy:

- ``public-tuner``: submits every candidate it has and selects the best two by
  the public board -- the habit the lecture warns against;
- ``validation``: scores its candidates on validation.csv (students have its
  labels), submits the best few and selects the best two by validation;
- ``ensemble``: submits the majority vote of its best candidates by validation;
- ``prober``: Blum & Hardt's boosting attack from its best model: submits
  random perturbations, keeps those the public board liked, submits their vote;
- ``forgetful``: like ``validation`` but never selects (the board auto-fills).

Everything goes through :class:`harness.client.Client`: tokens, the daily
limit (429s are counted, not hidden), final selections.
"""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .client import Client
from .errors import LimitError

STRATEGY_MIX = (("public-tuner", 0.4), ("validation", 0.3), ("ensemble", 0.12),
                ("forgetful", 0.12), ("prober", 0.06))

ADJECTIVES = ("Brave", "Curious", "Dizzy", "Eager", "Fuzzy", "Gentle", "Happy", "Jolly",
              "Lucky", "Mighty", "Nimble", "Quiet", "Rapid", "Sunny", "Witty", "Zesty")
ANIMALS = ("Otters", "Pandas", "Falcons", "Lynxes", "Koalas", "Herons", "Badgers", "Ibises",
           "Yaks", "Moles", "Geckos", "Wombats", "Tapirs", "Newts", "Orcas", "Quokkas")


@dataclass
class Pool:
    """Candidate models' predictions, shared by the class.

    ``test`` is an (n_rows, n_candidates) array of submission-ready predictions
    for test.csv, ``val_score`` each candidate's validation metric (students
    have validation labels), ``names`` short descriptions.
    """

    names: list[str]
    test: np.ndarray
    val_score: np.ndarray
    greater_is_better: bool
    test_ids: np.ndarray
    id_column: str
    target: str

    def order_by_validation(self, which: np.ndarray) -> np.ndarray:
        s = self.val_score[which]
        return which[np.argsort(-s if self.greater_is_better else s, kind="stable")]


@dataclass
class Student:
    team: str
    token: str
    strategy: str
    seed: int
    candidates: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))
    submitted: list[dict] = field(default_factory=list)
    refused: int = 0
    note: str = ""


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
    """Strategies by STRATEGY_MIX, at least one prober, in a seeded order."""
    n = len(teams)
    counts = [max(1, round(share * n)) if name == "prober" else round(share * n)
              for name, share in STRATEGY_MIX]
    counts[0] += n - sum(counts)          # rounding slack goes to the tuners
    labels = [name for (name, _), c in zip(STRATEGY_MIX, counts) for _ in range(c)]
    return list(np.random.default_rng(seed).permutation(labels))[:n]


def read_tokens(path: Path) -> dict[str, str]:
    with open(path, newline="") as f:
        return {row["team"]: row["token"] for row in csv.DictReader(f)}


def _vote(preds: np.ndarray) -> np.ndarray:
    """Per-row majority vote over columns (ties to the smallest label)."""
    labels = np.unique(preds)
    counts = np.stack([(preds == lab).sum(axis=1) for lab in labels], axis=1)
    return labels[counts.argmax(axis=1)]


def _mean_or_vote(preds: np.ndarray, classification: bool) -> np.ndarray:
    return _vote(preds) if classification else preds.mean(axis=1)


class Classroom:
    """Runs the students of one competition against a server.

    Parameters
    ----------
    server : str
        The server's URL.
    slug : str
        The competition.
    pool : Pool
        The candidate predictions.
    workdir : Path
        Where students write their CSVs.
    classification : bool
        Vote (classification) or average (regression) when ensembling.
    per_student : int
        Candidates each student holds.
    """

    def __init__(self, server: str, slug: str, pool: Pool, workdir: Path, *,
                 classification: bool, per_student: int = 10, probe_queries: int = 30):
        self.server, self.slug, self.pool = server, slug, pool
        self.workdir = Path(workdir)
        self.classification = classification
        self.per_student = per_student
        self.probe_queries = probe_queries

    def enrol(self, tokens: dict[str, str], strategies: list[str], seed: int) -> list[Student]:
        rng = np.random.default_rng(seed)
        k = min(self.per_student, len(self.pool.names))
        students = []
        for i, ((team, token), strategy) in enumerate(zip(tokens.items(), strategies)):
            s = Student(team, token, strategy, seed=int(rng.integers(1 << 31)))
            s.candidates = rng.choice(len(self.pool.names), size=k, replace=False)
            students.append(s)
        return students

    def run(self, students: list[Student], *, workers: int = 6, on_submit=None) -> None:
        """Every student works through its strategy; ``on_submit()`` ticks a progress bar."""
        with ThreadPoolExecutor(max_workers=workers) as ex:
            list(ex.map(lambda s: self._work(s, on_submit), students))

    # -- one student ---------------------------------------------------------

    def _work(self, s: Student, tick) -> None:
        with Client(self.server, s.token) as client:
            plan = getattr(self, "_" + s.strategy.replace("-", "_"))
            plan(s, client, tick)

    def _submit(self, s: Student, client: Client, preds: np.ndarray, message: str, tick):
        d = self.workdir / s.team.replace(" ", "_")
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{len(s.submitted) + s.refused + 1:03d}.csv"
        pd.DataFrame({self.pool.id_column: self.pool.test_ids, self.pool.target: preds}).to_csv(
            path, index=False)
        try:
            result = client.submit(self.slug, path, message)
        except LimitError:
            s.refused += 1
            return None
        finally:
            if tick:
                tick()
        result["_preds"] = preds
        s.submitted.append(result)
        return result

    def _select(self, client: Client, s: Student, subs: list[dict]) -> None:
        ids = [r["id"] for r in subs if r is not None][:2]
        if ids:
            client.select(self.slug, ids)

    def _public_tuner(self, s, client, tick):
        subs = [self._submit(s, client, self.pool.test[:, c], f"{self.pool.names[c]}", tick)
                for c in s.candidates]
        subs = [r for r in subs if r is not None]
        sign = 1 if self.pool.greater_is_better else -1
        subs.sort(key=lambda r: -sign * r["public_score"])
        self._select(client, s, subs)
        s.note = f"submitted {len(subs)}, picked 2 by public score"

    def _best_by_validation(self, s, n):
        return self.pool.order_by_validation(s.candidates)[:n]

    def _validation(self, s, client, tick, select=True):
        best = self._best_by_validation(s, 3)
        subs = [self._submit(s, client, self.pool.test[:, c], f"{self.pool.names[c]} "
                             f"(val {self.pool.val_score[c]:.4f})", tick) for c in best]
        if select:
            self._select(client, s, subs)       # already in validation order
        s.note = f"submitted the best {len(best)} by validation" + ("" if select else
                                                                    ", never selected")

    def _forgetful(self, s, client, tick):
        self._validation(s, client, tick, select=False)

    def _ensemble(self, s, client, tick):
        best = self._best_by_validation(s, 5)
        blend = _mean_or_vote(self.pool.test[:, best], self.classification)
        first = self._submit(s, client, blend, f"ensemble of {len(best)} by validation", tick)
        single = self._submit(s, client, self.pool.test[:, best[0]], "best single by validation",
                              tick)
        self._select(client, s, [first, single])
        s.note = f"ensemble of its best {len(best)} by validation + best single"

    def _prober(self, s, client, tick):
        """A boosting attack from two models: keep the mixes the public board liked.

        Each probe is the best model by validation with a random half of the rows
        where another candidate disagrees switched to that candidate's answer. The
        probes that beat the base on the public board are kept and their per-row
        vote is submitted: it climbs the public board by fitting the public rows'
        noise, which the private board does not share.
        """
        rng = np.random.default_rng(s.seed)
        order = self._best_by_validation(s, len(s.candidates))
        base = self.pool.test[:, order[0]]
        first = self._submit(s, client, base, "base model", tick)
        if first is None:
            return
        kept = []
        sign = 1 if self.pool.greater_is_better else -1
        for q in range(self.probe_queries):
            other = self.pool.test[:, order[1 + q % (len(order) - 1)]] if len(order) > 1 \
                else base
            switch = (other != base) & (rng.random(len(base)) < 0.5)
            probe = np.where(switch, other, base)
            r = self._submit(s, client, probe, f"probe {q + 1}", tick)
            if r is None:
                break
            if sign * (r["public_score"] - first["public_score"]) > 0:
                kept.append(probe)
        if kept:
            final = _mean_or_vote(np.stack([base, *kept], axis=1), self.classification)
            last = self._submit(s, client, final, f"vote of {len(kept)} probes the board liked",
                                tick)
            self._select(client, s, [last, first])
        s.note = f"{len(kept)} of {self.probe_queries} probes beat the base on the public board"
