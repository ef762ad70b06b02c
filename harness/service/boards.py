"""The standings read model and the boards drawn from it.

Every rankable upload folds into its entrant's one standings row (its public best and
its best few entries by shown score), so the public board is one read of at most one
row per entrant whatever the number of submissions. The private board is drawn from
the standings and the teams' final selections; after the reveal it is cached here,
keyed by the standings themselves, so whatever rebuilds them (a rescore, in any
process) is seen without anyone clearing the cache.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, func, select, update

from .. import rules
from ..errors import ForbiddenError, HarnessError
from ..store import SelectionRow, StandingRow, SubmissionRow, TeamRow
from ..store.queries import competition_state, insert_ignore
from .competitions import Competition, Competitions
from .context import ServiceContext

submissions_table = SubmissionRow.__table__
standings_table = StandingRow.__table__


class Boards:
    """The public and private boards of the competitions, over their standings.

    Parameters
    ----------
    context : ServiceContext
        The database holding the standings.
    competitions : Competitions
        The registry the boards' competitions come from.
    """

    def __init__(self, context: ServiceContext, competitions: Competitions):
        self.context = context
        self.competitions = competitions
        self._lock = threading.Lock()
        self._private_boards: dict[str, tuple] = {}    # slug -> (key, private rows)

    def leaderboard(self, slug: str, board: str = "public", *, teacher: bool = False) -> dict:
        """A board: ``{"competition", "board", "revealed", "rows": [...]}``.

        Raises
        ------
        ForbiddenError
            The private board before the reveal, unless ``teacher``.
        """
        if board not in ("public", "private"):
            raise HarnessError(f"board {board!r} is unknown; use public or private")
        comp = self.competitions.get(slug)
        spec = comp.spec
        gib = spec.metric.greater_is_better
        db = self.context.database
        with db.read() as s:
            revealed = competition_state(s, comp.id) == rules.REVEALED
            if board == "private" and not (revealed or teacher):
                raise ForbiddenError(f"the private leaderboard of {slug!r} is hidden until "
                                     "the teacher reveals it")
            standings = self._standings(s, comp)
        if any(st.top_size != spec.rules.final_selections for st in standings):
            # final_selections changed since the standings were built: rebuild them once
            with db.write() as s:
                self.rebuild_standings(s, comp)
            with db.read() as s:
                standings = self._standings(s, comp)
        rows = rules.rank_bests(
            [rules.TeamBest(st.name, st.baseline_name is not None, st.score, st.best_at,
                            st.submission_id, st.entries, st.last_submission)
             for st in standings], greater_is_better=gib)
        if board == "private":
            rows = rules.add_public_ranks(self._private_board(comp, standings, revealed), rows)
        return {"competition": slug, "board": board, "revealed": revealed,
                "leaderboard": spec.rules.leaderboard, "metric": spec.metric.name,
                "greater_is_better": gib, "rows": rows}

    def _standings(self, s, comp: Competition) -> list:
        """The competition's standings rows with each entrant's display name (one query)."""
        standing = standings_table.c
        q = select(standing.team_id, standing.baseline_name, standing.submission_id,
                   standing.score, standing.best_at, standing.entries,
                   standing.last_submission, standing.top_entries, standing.top_size,
                   func.coalesce(standing.baseline_name, TeamRow.name).label("name")
                   ).outerjoin(TeamRow, TeamRow.id == standing.team_id).where(
            standing.competition_id == comp.id)
        # a Core execution: no ORM row processing on the board's hot path
        return s.connection().execute(q).all()

    def _private_board(self, comp: Competition, standings, revealed: bool) -> list[dict]:
        """The private rows, computed once per state of the standings after the reveal.

        After the reveal selections are frozen and late uploads never rank, so the
        private board changes only when the standings do (a rescore rebuilds them) or
        the spec does: both are in the cache key. Before the reveal (the teacher's view)
        it is computed every time.
        """
        key = (comp.stamp, hash(tuple(_hashable(st) for st in standings))) if revealed \
            else None
        with self._lock:
            cached = self._private_boards.get(comp.slug)
        if key is not None and cached is not None and cached[0] == key:
            return [dict(r) for r in cached[1]]
        with self.context.database.read() as s:
            private = self._private_rows(s, comp, standings)
        if key is not None:
            with self._lock:
                self._private_boards[comp.slug] = (key, [dict(r) for r in private])
        return private

    def _private_rows(self, s, comp: Competition, standings) -> list[dict]:
        """Private board rows from each entrant's selections and best public entries only."""
        spec = comp.spec
        submission = submissions_table.c
        selected: dict[int, list[rules.Entry]] = {}
        q = select(SelectionRow.team_id, submission.id, submission.submitted_at,
                   submission.public_score, submission.private_score, submission.shown).join(
            submissions_table, submission.id == SelectionRow.submission_id).where(
            SelectionRow.competition_id == comp.id, submission.status == "scored",
            submission.late.is_(False))
        for r in s.connection().execute(q):
            selected.setdefault(r.team_id, []).append(rules.Entry(
                r.id, "", r.submitted_at, r.public_score, r.private_score, r.shown,
                selected=True))
        tops = self._top_entries(s, [st.top_entries for st in standings])
        bests = []
        for st, top in zip(standings, tops):
            mine = selected.get(st.team_id, []) if st.team_id is not None else []
            ids = {e.id for e in mine}
            es = mine + [e for e in top if e.id not in ids]
            b = rules.private_best(es, final_selections=spec.rules.final_selections,
                                   greater_is_better=spec.metric.greater_is_better,
                                   decimals=spec.scoring.public_decimals)
            if b is not None:
                bests.append(rules.TeamBest(st.name, st.baseline_name is not None,
                                            comp.rounded(b.private), b.submitted_at,
                                            b.id, st.entries, st.last_submission))
        return rules.rank_bests(bests, greater_is_better=spec.metric.greater_is_better)

    def update_standing(self, s, comp: Competition, row: SubmissionRow) -> None:
        """Fold one new rankable submission into its entrant's standing (same transaction)."""
        spec = comp.spec
        gib = spec.metric.greater_is_better
        entrant = _entrant(row.team_id, row.baseline_name)
        insert_ignore(s, standings_table, {
            "competition_id": comp.id, "entrant": entrant, "team_id": row.team_id,
            "baseline_name": row.baseline_name, "submission_id": row.id, "score": row.shown,
            "best_at": row.submitted_at, "entries": 0, "last_submission": row.submitted_at,
            "top_entries": [], "top_size": spec.rules.final_selections},
            ["competition_id", "entrant"])
        st = s.execute(select(standings_table).where(
            standings_table.c.competition_id == comp.id,
            standings_table.c.entrant == entrant).with_for_update()).one()
        new = entry_of(row, "", False)
        incumbent = rules.Entry(st.submission_id, "", st.best_at, None, shown=st.score)
        decimals = spec.scoring.public_decimals
        values = {"entries": st.entries + 1,
                  "last_submission": max(st.last_submission, row.submitted_at)}
        if st.entries == 0 or rules.better_public(new, incumbent, greater_is_better=gib,
                                                  decimals=decimals):
            values.update(submission_id=row.id, score=row.shown, best_at=row.submitted_at)
        values["top_entries"] = _top_dump(rules.top_public(
            self._top_entries(s, [st.top_entries])[0] + [new], st.top_size,
            greater_is_better=gib, decimals=decimals))
        s.execute(update(standings_table).where(standings_table.c.id == st.id).values(**values))

    def _top_entries(self, s, stored: list) -> list[list[rules.Entry]]:
        """The stored top entries of standings; any stored before they carried the shown
        score get it from their submission rows (one query, only when there are such)."""
        tops = [_top_load(top) for top in stored]
        legacy = [e.id for top in tops for e in top if e.shown is None]
        if not legacy:
            return tops
        submission = submissions_table.c
        shown = dict(s.execute(select(submission.id, submission.shown)
                               .where(submission.id.in_(legacy))).all())
        return [[replace(e, shown=shown.get(e.id)) if e.shown is None else e for e in top]
                for top in tops]

    def rebuild_standings(self, s, comp: Competition) -> None:
        """Recompute every standing of a competition from its submissions (rescore, spec
        change), in the caller's transaction."""
        spec = comp.spec
        gib = spec.metric.greater_is_better
        k = spec.rules.final_selections
        submission = submissions_table.c
        q = select(submission.id, submission.team_id, submission.baseline_name,
                   submission.submitted_at, submission.public_score, submission.private_score,
                   submission.shown, submission.ladder_updated).where(
            submission.competition_id == comp.id, submission.status == "scored",
            submission.late.is_(False))
        groups: dict = {}
        for r in s.execute(q):
            groups.setdefault((r.team_id, r.baseline_name), []).append(rules.Entry(
                r.id, "", r.submitted_at, r.public_score, r.private_score, r.shown,
                baseline=r.baseline_name is not None, ladder_updated=bool(r.ladder_updated)))
        s.execute(delete(standings_table).where(standings_table.c.competition_id == comp.id))
        for (team_id, baseline_name), es in groups.items():
            b = rules.best_public(es, greater_is_better=gib,
                                  decimals=spec.scoring.public_decimals)
            s.execute(standings_table.insert().values(
                competition_id=comp.id, entrant=_entrant(team_id, baseline_name),
                team_id=team_id, baseline_name=baseline_name, submission_id=b.id,
                score=rules.shown_score(b, spec.scoring.public_decimals), best_at=b.submitted_at,
                entries=len(es), last_submission=max(e.submitted_at for e in es),
                top_entries=_top_dump(rules.top_public(
                    es, k, greater_is_better=gib, decimals=spec.scoring.public_decimals)),
                top_size=k))


def entry_of(row: SubmissionRow, name: str, selected: bool) -> rules.Entry:
    """A stored submission as the pure rules see it."""
    return rules.Entry(row.id, name, row.submitted_at, row.public_score, row.private_score,
                       row.shown, status=row.status, late=row.late, baseline=row.baseline,
                       selected=selected, ladder_updated=row.ladder_updated)


def _top_dump(entries: list[rules.Entry]) -> list[list]:
    """An entrant's best shown entries as stored in its standing's JSON column:
    ``[id, public, private, submitted_at, shown]`` rows (the fill orders by ``shown``)."""
    return [[e.id, e.public, e.private, e.submitted_at.isoformat(), e.shown] for e in entries]


def _top_load(stored: list | str) -> list[rules.Entry]:
    """The entries :func:`_top_dump` stored (a list; JSON text in rows written as text).

    Those stored before they carried the shown score (4 fields) have ``shown`` None,
    which rules.shown_score reads as the rounded public score
    (:meth:`Boards._top_entries` gives them the Ladder's from their rows).
    """
    if isinstance(stored, str):
        stored = json.loads(stored)
    return [rules.Entry(i, "", datetime.fromisoformat(t), pub, priv, *shown)
            for i, pub, priv, t, *shown in stored]


def _hashable(standing) -> tuple:
    """A standings row as a hashable tuple (its top entries may be a JSON list)."""
    return tuple(json.dumps(v) if isinstance(v, list) else v for v in standing)


def _entrant(team_id: int | None, baseline_name: str | None) -> str:
    return f"team:{team_id}" if team_id is not None else f"baseline:{baseline_name}"
