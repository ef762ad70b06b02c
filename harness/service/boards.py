"""The standings read model and the boards drawn from it.

Every rankable upload folds into its entrant's one standings row (its public best and
its best few entries by shown score), so the public board is one read of at most one
row per entrant whatever the number of submissions. The private board is drawn from
the standings and the teams' final selections; after the reveal it is cached here,
keyed by the standings themselves, so whatever rebuilds them (a rescore, in any
process) is seen without anyone clearing the cache.

Every board also carries its uncertainty (:mod:`harness.uncertainty`): each row's 95%
``interval`` (from the shown score and the board's number of rows only) and the tie test
against the leader (``tied`` per row, ``tied_with_leader`` per board), from the
bootstrap replicates each submission got at upload. The tie flags are cached per state of
the board (its entries and the answer key), so a board read computes them once per change
of an entry; replicates are cached per submission. Replicates missing or computed against
another answer key (a rescore, a database from before them) are computed again from the
archived file when a board first needs them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime

import numpy as np
from sqlalchemy import (String, Text, bindparam, cast, delete, func, null, select, type_coerce,
                        update)

from .. import rules, uncertainty
from ..errors import ForbiddenError, HarnessError, NotFoundError, SubmissionError
from ..scoring import AnswerKey, Score, score
from ..store import SelectionRow, StandingRow, SubmissionRow, TeamRow
from ..store.models import ReplicateRow
from ..store.queries import PerDialect, competition_state, core, dialect_insert, insert_ignore
from .competitions import Competition, Competitions
from .context import ServiceContext, now_utc

submissions_table = SubmissionRow.__table__
standings_table = StandingRow.__table__
replicates_table = ReplicateRow.__table__
# an upload's standing: read (locked until the commit) and written back, or inserted for
# an entrant's first entry (statements built once: the upload path runs them)
_STANDING = select(standings_table).where(
    standings_table.c.competition_id == bindparam("cid"),
    standings_table.c.entrant == bindparam("entrant")).with_for_update()
_FIRST_STANDING = PerDialect(lambda dialect: dialect_insert(dialect, standings_table)
                             .on_conflict_do_nothing(index_elements=["competition_id", "entrant"])
                             .returning(standings_table.c.id))
_UPDATE_STANDING = update(standings_table).where(standings_table.c.id == bindparam("standing_id"))
REPLICATE_CACHE = 8192          # submissions whose replicates a process keeps in memory
INTERVAL_MEMO = 100_000         # shown scores whose interval a board remembers


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
        self._ties: dict[tuple, tuple] = {}            # (slug, board) -> (state, flags)
        self._interval_memo: dict[tuple, tuple] = {}   # (slug, board) -> (key, .., {score: iv})
        self._references: dict[tuple, tuple] = {}      # (slug, board) -> (answer key, curve)
        self._fingerprints: dict[str, tuple] = {}      # slug -> (answer key, fingerprint)
        self._replicates: OrderedDict = OrderedDict()  # submission id -> (fp, public, private)
        self._unrepairable: dict[int, str] = {}        # submission id -> fp (no archive)
        self._slow = threading.Lock()                  # slow work: one thread at a time

    def leaderboard(self, slug: str, board: str = "public", *, teacher: bool = False) -> dict:
        """A board: ``{"competition", "board", "revealed", "rows": [...]}``.

        Each row also has ``interval`` (95%, at ``public_decimals``; None when the metric
        gives no way to tell) and ``tied`` (not significantly different from the leader;
        None when untested); the board has ``tied_with_leader`` (teams tied, the leader
        included; None when the leader is untested) and ``scored_rows`` (the rows it
        scores). Before the reveal only public rows enter the public board's.

        Raises
        ------
        ForbiddenError
            The private board before the reveal, unless ``teacher``.
        """
        comp = self.competitions.get(_known_board(slug, board))
        spec = comp.spec
        gib = spec.metric.greater_is_better
        db = self.context.database
        with db.read() as s:
            revealed = competition_state(s, comp.id) == rules.REVEALED
            _check_hidden(slug, board, revealed or teacher)
            # the public board never reads the top entries: leave their JSON undecoded
            tops = board == "private"
            standings = self._standings(s, comp, tops=tops)
        if any(st.top_size != spec.rules.final_selections for st in standings):
            # final_selections changed since the standings were built: rebuild them once
            with db.write() as s:
                self.rebuild_standings(s, comp)
            with db.read() as s:
                standings = self._standings(s, comp, tops=tops)
        rows = rules.rank_bests(
            [rules.TeamBest(st.name, st.baseline_name is not None, st.score, st.best_at,
                            st.submission_id, st.entries, st.last_submission)
             for st in standings], greater_is_better=gib)
        if board == "private":
            rows = rules.add_public_ranks(self._private_board(comp, standings), rows)
        n, tied = self._uncertainty(comp, board, rows)
        return {"competition": slug, "board": board, "revealed": revealed,
                "leaderboard": spec.rules.leaderboard, "metric": spec.metric.name,
                "greater_is_better": gib, "scored_rows": n, "tied_with_leader": tied,
                "public_decimals": spec.scoring.public_decimals, "rows": rows}

    def version(self, slug: str, board: str = "public") -> str:
        """A tag that changes whenever :meth:`leaderboard` (students' view) would answer
        differently, for HTTP's ``ETag``: a digest of what the board is drawn from, without
        ranking it or reading any replicate.

        It covers the standings (each entrant's best and entries, the names of the teams,
        the removed ones left out), the competition's state (the deadline applied, so a
        board page learns that it closed), its prepared files and its answer key (the
        intervals and the tie test). Before the reveal only the public columns of the
        standings enter it: a rescore that moved private scores alone leaves it as it was,
        as it leaves the public board. The same in every server process: no Python
        ``hash()``, whose strings are salted per process.

        Raises
        ------
        ForbiddenError
            The private board before the reveal (as :meth:`leaderboard` does).
        """
        comp = self.competitions.get(_known_board(slug, board))
        standing = standings_table.c
        with self.context.database.read() as s:
            state = competition_state(s, comp.id)
            revealed = state == rules.REVEALED
            _check_hidden(slug, board, revealed)
            # the stored values as the driver gives them (no JSON or date decoding: a tag
            # is read far more often than a board is drawn); the top entries carry private
            # scores, so they enter only after the reveal
            q = select(standing.team_id, standing.baseline_name, standing.submission_id,
                       standing.score, type_coerce(standing.best_at, String),
                       standing.entries, type_coerce(standing.last_submission, String),
                       standing.top_size, TeamRow.name,
                       cast(standing.top_entries, Text) if revealed else null()
                       ).outerjoin(TeamRow, TeamRow.id == standing.team_id).where(
                standing.competition_id == comp.id, TeamRow.removed_at.is_(None)
            ).order_by(standing.id)
            rows = s.connection().execute(q).all()
        shown = rules.effective_state(state, comp.spec.rules.deadline, now_utc())
        digest = hashlib.blake2b(digest_size=12)
        digest.update(repr((board, state, shown, comp.stamp, self.fingerprint(comp))).encode())
        digest.update(repr([tuple(r) for r in rows]).encode())
        return digest.hexdigest()

    # ------------------------------------------------------------------ uncertainty

    def _uncertainty(self, comp: Competition, board: str, rows: list[dict]
                     ) -> tuple[int | None, int | None]:
        """Give each row its ``interval`` and ``tied``; returns the board's number of rows
        and ``tied_with_leader``. Only the board's own rows are used (public rows for the
        public board), and an interval depends on the shown score alone. An accuracy board
        reads no answer key (its row counts are in the manifest; the tie test reads stored
        replicates), so serving it costs no more memory than before."""
        n = comp.prepared.manifest.get("rows", {}).get(board)
        fp = self.fingerprint(comp)
        found = self._intervals(comp, board, n, [r["score"] for r in rows]) if n \
            else [None] * len(rows)
        flags = self._tie_flags(comp, board, fp, [r["submission_id"] for r in rows],
                                [r["baseline"] for r in rows]) if fp \
            else [None] * len(rows)
        for row, interval, flag in zip(rows, found, flags):
            row["interval"], row["tied"] = interval, flag
        leader = next((f for r, f in zip(rows, flags) if not r["baseline"]), None)
        tied = None if leader is None else \
            sum(1 for r, f in zip(rows, flags) if f and not r["baseline"])
        return n, tied

    def _intervals(self, comp: Competition, board: str, n: int, shown: list[float]) -> list:
        """:func:`uncertainty.intervals` of the shown scores, each score's computed once per
        state (a board of 1,000 teams has few new scores between two reads)."""
        spec = comp.spec
        reference = self._reference(comp, board)
        state = (n, spec.scoring.public_decimals, spec.metric.name)
        with self._lock:
            cached = self._interval_memo.get((comp.slug, board))
        # the reference curve is compared by identity: a new one (a new key) starts afresh
        memo = cached[2] if cached is not None and cached[0] is reference \
            and cached[1] == state else {}
        new = sorted({v for v in shown if v not in memo})
        if new:
            memo = dict(memo) if len(memo) < INTERVAL_MEMO else {}
            memo.update(zip(new, uncertainty.intervals(spec.metric, new, n,
                                                       spec.scoring.public_decimals,
                                                       reference)))
            with self._lock:
                self._interval_memo[(comp.slug, board)] = (reference, state, memo)
        return [memo[v] for v in shown]

    def _reference(self, comp: Competition, board: str):
        """The board's score -> spread curve for intervals (:func:`uncertainty.reference_curve`),
        once per answer key; None for accuracy, whose intervals are exact binomial, and
        when the answer key is missing (`harness doctor` tells the teacher)."""
        spec = comp.spec
        if spec.metric.name == "accuracy":
            return None
        try:
            key = self.competitions.answer_key(comp.slug)
        except NotFoundError:
            return None
        with self._lock:
            cached = self._references.get((comp.slug, board))
        if cached is not None and cached[0] is key:
            return cached[1]
        with self._slow:            # the first board's readers wait for one computation
            with self._lock:
                cached = self._references.get((comp.slug, board))
            if cached is not None and cached[0] is key:
                return cached[1]
            y = key.y_public if board == "public" else key.y_private
            curve = uncertainty.reference_curve(spec.metric, spec.data.task, y) \
                if len(y) else None
            with self._lock:
                self._references[(comp.slug, board)] = (key, curve)
            return curve

    def interval(self, slug: str, board: str, shown: float) -> list[float] | None:
        """The 95% interval ``board`` would show beside the score ``shown`` (for the
        teacher's grading thresholds; it reads the size of the private part)."""
        comp = self.competitions.get(slug)
        n = comp.prepared.manifest.get("rows", {}).get(board)
        if not n:
            return None
        return uncertainty.intervals(comp.spec.metric, [shown], n,
                                     comp.spec.scoring.public_decimals,
                                     self._reference(comp, board))[0]

    def fingerprint(self, comp: Competition) -> str | None:
        """The :func:`uncertainty.fingerprint` of the competition's answer key file as it
        is now (hashed once per version of the file); None when the file is missing."""
        path = comp.prepared.solution_path
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (comp.stamp, st.st_mtime_ns, st.st_size, comp.spec.metric.name)
        with self._lock:
            cached = self._fingerprints.get(comp.slug)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            fp = uncertainty.fingerprint(comp.spec.metric.name, path.read_bytes())
        except OSError:
            return None
        with self._lock:
            self._fingerprints[comp.slug] = (stamp, fp)
        return fp

    def replicates_row(self, comp: Competition, key: AnswerKey, result: Score,
                       fp: str | None) -> dict | None:
        """A scored file's replicates on both boards, as a ``replicates`` row (without its
        ``submission_id``), or None: when the metric cannot be resampled at all, or when
        the answer key file is not the one of ``fp`` any more.

        ``fp`` is :meth:`fingerprint` taken *before* ``key`` was loaded; it is taken again
        after, so replicates are never stored under the fingerprint of a file that changed
        while they were computed (a board computes those from the archive later). Runs
        outside any transaction (it is the CPU part of an upload).
        """
        if fp is None:
            return None
        metric = comp.spec.metric
        try:
            # each board's labels are the key's, taken once per key (not per upload)
            parts = [uncertainty.pack(uncertainty.replicates(
                metric, y, result.predictions[index]))
                for y, index in ((key.y_public, key.public_index),
                                 (key.y_private, key.private_index))]
        except Exception:  # noqa: BLE001 - a teacher's metric may fail on every resample
            return None
        if self.fingerprint(comp) != fp:
            return None
        return {"key": fp, "public": parts[0], "private": parts[1]}

    def _tie_flags(self, comp: Competition, board: str, fp: str, ids: list[int],
                   baselines: list[bool]) -> list[bool | None]:
        """Whether each team row's entry is tied with the leader's (the first team row),
        once per state of the board: its entries in order and the answer key (``fp``).
        Baselines and entries without replicates get None."""
        state = (fp, tuple(ids), tuple(baselines))
        with self._lock:
            cached = self._ties.get((comp.slug, board))
        if cached is not None and cached[0] == state:
            return list(cached[1])
        flags: list[bool | None] = [None] * len(ids)
        leader = next((i for i, b in enumerate(baselines) if not b), None)
        if leader is not None:
            found = self._replicates_of(comp, fp,
                                        [sid for sid, b in zip(ids, baselines) if not b])
            part = 1 if board == "public" else 2
            lead = found.get(ids[leader])
            # teams only: a baseline is not in the race (its flag stays None)
            have = [i for i, sid in enumerate(ids) if sid in found and not baselines[i]]
            if lead is not None and have:
                tied = uncertainty.tied_mask(np.stack([found[ids[i]][part] for i in have]),
                                             lead[part])
                for i, t in zip(have, tied):
                    flags[i] = bool(t)
                flags[leader] = True
        with self._lock:
            self._ties[(comp.slug, board)] = (state, tuple(flags))
        return flags

    def _replicates_of(self, comp: Competition, fp: str, ids: list[int]) -> dict[int, tuple]:
        """``{submission id: (fp, public, private)}`` for those of ``ids`` that have (or
        can get) replicates under fingerprint ``fp``: from memory, else the database (one
        query), else computed from the archived file and stored."""
        found: dict[int, tuple] = {}
        with self._lock:
            for sid in ids:
                entry = self._replicates.get(sid)
                if entry is not None and entry[0] == fp:
                    found[sid] = entry
                    self._replicates.move_to_end(sid)
        missing = [sid for sid in dict.fromkeys(ids) if sid not in found]
        if missing:
            r = replicates_table.c
            with self.context.database.read() as s:
                stored = s.connection().execute(select(r.submission_id, r.public, r.private)
                                                .where(r.submission_id.in_(missing),
                                                       r.key == fp)).all()
            fresh = {sid: (fp, uncertainty.unpack(pub), uncertainty.unpack(priv))
                     for sid, pub, priv in stored}
            stale = [sid for sid in missing if sid not in fresh
                     and self._unrepairable.get(sid) != fp]
            if stale:
                fresh.update(self._repair(comp, fp, stale))
            found.update(fresh)
            with self._lock:
                self._replicates.update(fresh)
                while len(self._replicates) > REPLICATE_CACHE:
                    self._replicates.popitem(last=False)
        return found

    def _repair(self, comp: Competition, fp: str, ids: list[int]) -> dict[int, tuple]:
        """Replicates of submissions that have none under ``fp`` (stored before them, or
        before a rescore), from their archived files; stored for every process. A file
        that is gone or no longer scores is remembered and left untested."""
        r = replicates_table.c
        with self._slow:               # one thread per process does the work; others wait
            with self.context.database.read() as s:
                # another thread (or process) may have stored them meanwhile
                out = {sid: (fp, uncertainty.unpack(pub), uncertainty.unpack(priv))
                       for sid, pub, priv in s.connection().execute(
                           select(r.submission_id, r.public, r.private).where(
                               r.submission_id.in_(ids), r.key == fp))}
                paths = dict(s.execute(select(SubmissionRow.id, SubmissionRow.path).where(
                    SubmissionRow.id.in_([i for i in ids if i not in out]),
                    SubmissionRow.status == "scored")).all())
            rows = {}
            try:
                key = self.competitions.answer_key(comp.slug)
            except NotFoundError:
                return out
            for sid in ids:
                if sid in out:
                    continue
                row = None
                if paths.get(sid) is not None:
                    try:
                        row = self.replicates_row(
                            comp, key, score(self.context.home / paths[sid], key), fp)
                    except (OSError, SubmissionError):
                        row = None
                if row is None:
                    self._unrepairable[sid] = fp
                else:
                    rows[sid] = row
            if rows:
                with self.context.database.write() as s:
                    for sid, row in rows.items():
                        store_replicates(s, sid, row)
            for sid, row in rows.items():
                out[sid] = (fp, uncertainty.unpack(row["public"]),
                            uncertainty.unpack(row["private"]))
            return out

    def _standings(self, s, comp: Competition, *, tops: bool = True) -> list:
        """The competition's standings rows with each entrant's display name (one query);
        without ``tops``, ``top_entries`` is None (its JSON is not decoded)."""
        standing = standings_table.c
        q = select(standing.team_id, standing.baseline_name, standing.submission_id,
                   standing.score, standing.best_at, standing.entries,
                   standing.last_submission,
                   # the JSON as stored, decoded only when the private board is computed
                   # (not when it is served from the cache)
                   (cast(standing.top_entries, Text) if tops else null()).label("top_entries"),
                   standing.top_size,
                   func.coalesce(standing.baseline_name, TeamRow.name).label("name")
                   ).outerjoin(TeamRow, TeamRow.id == standing.team_id).where(
            standing.competition_id == comp.id,
            # a removed team is off the boards (its standing stays, for a restore)
            TeamRow.removed_at.is_(None))
        # a Core execution: no ORM row processing on the board's hot path
        return s.connection().execute(q).all()

    def _private_board(self, comp: Competition, standings) -> list[dict]:
        """The private rows, computed once per state of what they are drawn from.

        They depend on the standings (each entrant's best public entries, with their
        private scores; a rescore rebuilds them), the final selections (scored, on time)
        and the spec: all three are in the cache key, so the teacher's view before the
        reveal, where selections still change, is cached as safely as the students' after.
        """
        with self.context.database.read() as s:
            selections = s.connection().execute(self._selections_query(comp)).all()
            # the rows as the driver gives them (top entries as JSON text): hashable as is
            key = (comp.stamp, hash(tuple(map(tuple, standings))),
                   hash(tuple(map(tuple, selections))))
            with self._lock:
                cached = self._private_boards.get(comp.slug)
            if cached is not None and cached[0] == key:
                return [dict(r) for r in cached[1]]
            private = self._private_rows(s, comp, standings, selections)
        with self._lock:
            self._private_boards[comp.slug] = (key, [dict(r) for r in private])
        return private

    @staticmethod
    def _selections_query(comp: Competition):
        """Every final selection of ``comp`` that can rank: scored and on time."""
        submission = submissions_table.c
        return select(SelectionRow.team_id, submission.id, submission.submitted_at,
                      submission.public_score, submission.private_score, submission.shown
                      ).join(submissions_table, submission.id == SelectionRow.submission_id
                             ).where(SelectionRow.competition_id == comp.id,
                                     submission.status == "scored", submission.late.is_(False)
                                     ).order_by(SelectionRow.team_id, submission.id)

    def _private_rows(self, s, comp: Competition, standings, selections) -> list[dict]:
        """Private board rows from each entrant's selections and best public entries only."""
        spec = comp.spec
        selected: dict[int, list[rules.Entry]] = {}
        for r in selections:
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
        """Fold one new rankable submission into its entrant's standing (same transaction):
        the standing is read, locked until the commit, and written back; an entrant's
        first entry inserts it instead."""
        spec = comp.spec
        gib = spec.metric.greater_is_better
        decimals = spec.scoring.public_decimals
        connection = core(s)
        where = {"cid": comp.id, "entrant": _entrant(row.team_id, row.baseline_name)}
        new = entry_of(row, "", False)
        st = connection.execute(_STANDING, where).first()
        if st is None:
            k = spec.rules.final_selections
            first = connection.execute(_FIRST_STANDING(connection), {
                "competition_id": comp.id, "entrant": where["entrant"],
                "team_id": row.team_id, "baseline_name": row.baseline_name,
                "submission_id": row.id, "score": row.shown, "best_at": row.submitted_at,
                "entries": 1, "last_submission": row.submitted_at, "top_size": k,
                "top_entries": _top_dump(rules.top_public([new], k, greater_is_better=gib,
                                                          decimals=decimals))}).first()
            if first is not None:
                return
            # another transaction inserted it meanwhile: fold this entry into that one
            st = connection.execute(_STANDING, where).one()
        incumbent = rules.Entry(st.submission_id, "", st.best_at, None, shown=st.score)
        values = {"entries": st.entries + 1,
                  "last_submission": max(st.last_submission, row.submitted_at),
                  "submission_id": st.submission_id, "score": st.score, "best_at": st.best_at}
        if st.entries == 0 or rules.better_public(new, incumbent, greater_is_better=gib,
                                                  decimals=decimals):
            values.update(submission_id=row.id, score=row.shown, best_at=row.submitted_at)
        values["top_entries"] = _top_dump(rules.top_public(
            self._top_entries(s, [st.top_entries])[0] + [new], st.top_size,
            greater_is_better=gib, decimals=decimals))
        connection.execute(_UPDATE_STANDING, {"standing_id": st.id, **values})

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


def store_replicates(s, submission_id: int, row: dict) -> None:
    """Store (or replace) a submission's replicates in the caller's transaction; safe when
    another process stores the same ones at once (they are equal)."""
    insert_ignore(s, replicates_table, {"submission_id": submission_id, **row},
                  ["submission_id"])
    s.execute(update(replicates_table).where(
        replicates_table.c.submission_id == submission_id,
        replicates_table.c.key != row["key"]).values(**row))


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
    # read as text: the column's JSON; a row written as text holds a JSON string of it
    while isinstance(stored, str):
        stored = json.loads(stored)
    return [rules.Entry(i, "", datetime.fromisoformat(t), pub, priv, *shown)
            for i, pub, priv, t, *shown in stored]


def _known_board(slug: str, board: str) -> str:
    """``slug``, once ``board`` is known to be one of the two boards."""
    if board not in ("public", "private"):
        raise HarnessError(f"board {board!r} is unknown; use public or private")
    return slug


def _check_hidden(slug: str, board: str, may_see_private: bool) -> None:
    """Refuse the private board to whoever may not see it yet."""
    if board == "private" and not may_see_private:
        raise ForbiddenError(f"the private leaderboard of {slug!r} is hidden until "
                             "the teacher reveals it")


def _entrant(team_id: int | None, baseline_name: str | None) -> str:
    return f"team:{team_id}" if team_id is not None else f"baseline:{baseline_name}"
