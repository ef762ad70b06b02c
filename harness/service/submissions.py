"""Submissions: uploads and baselines scored, limited, archived and listed.

An upload is checked before its file is read (one read, which over HTTP also checks the
token: :meth:`Submissions.check`), then scored while another thread writes it to a
temporary file and fsyncs it, outside any transaction; its quota, its row, its archived
file (the temporary one renamed to the row's id) and its standing then go in one write
transaction, so a failure anywhere counts nothing and leaves no file, and every committed
row has its file on disk. Limits are
enforced inside that transaction, never in Python memory, so they hold across threads
and processes. The upload's path runs Core statements built once (no ORM objects loaded,
no statement built per upload): it is what a deadline rush waits on.
The Ladder's per-row public losses are cached here (:class:`Ladder`), beside the
only code that uses them. Each on-time upload is also scored on its boards' bootstrap
resamples (:meth:`Boards.replicates_row`, outside the transaction) and those replicates
are stored with it, for the boards' tie test (:mod:`harness.uncertainty`).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import itertools
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, TypeVar

import numpy as np
from sqlalchemy import and_, bindparam, delete, insert, null, select, update

from .. import rules
from ..errors import (ForbiddenError, HarnessError, LimitError, NotFoundError, StorageError,
                      SubmissionError, TooLargeError)
from ..home import private_dir, private_file, temp_path
from ..ladder import ladder_update
from ..scoring import AnswerKey, Score, score
from ..store import (CompetitionRow, QuotaRow, SelectionRow, SubmissionRow, TeamRow, TokenRow,
                     to_store_time)
from ..store.queries import PerDialect, competition_state, core, dialect_insert
from .boards import Boards, entry_of, replicates_table
from .competitions import Competition, Competitions
from .context import ServiceContext, clean_name, now_utc, record_audit, storable
from .teams import Team, Teams, team_id_of, token_clauses, usable_token

ROW_LOSS_CACHE = 256              # per-row public losses kept for the parameter-free Ladder
# Refused files cost a parse and a row each; a script sending bad files must not fill the
# store or slow the class. A team gets [rules] refusal_limit refusals per REFUSAL_WINDOW
# (then 429 until the oldest of them leaves the window) and keeps its newest STORED_REFUSALS.
REFUSAL_WINDOW = 600.0            # seconds
STORED_REFUSALS = 50
# the threads that write and fsync uploads beside their scoring (threads start when used)
_ARCHIVE_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="harness-archive")
_STAGED = itertools.count()       # names the staged files apart
T = TypeVar("T")
submissions_table = SubmissionRow.__table__
quotas_table = QuotaRow.__table__
_submission, _quota = submissions_table.c, quotas_table.c


def _quota_used(team_id, period):
    return select(_quota.used).where(
        _quota.team_id == team_id, _quota.competition_id == bindparam("cid"),
        _quota.period == period).scalar_subquery()


def _upload_checks(*where, by_token: bool = False):
    """Everything an upload is checked against before its file is read, in one round trip:
    the team (found by ``where``: its id, or a valid token's digest, whose row is then
    returned too), the competition's state, the quota used today and in total, and when
    the team's ``nth`` newest refusal since ``since`` was made (None: fewer than that)."""
    team_id = TeamRow.id
    return select(
        team_id.label("id"), TeamRow.name,
        (TokenRow.token_hash if by_token else null()).label("token_hash"),
        select(CompetitionRow.state).where(CompetitionRow.id == bindparam("cid"))
        .scalar_subquery().label("state"),
        _quota_used(team_id, bindparam("day")).label("used_today"),
        _quota_used(team_id, "total").label("used_total"),
        select(_submission.submitted_at).where(
            _submission.competition_id == bindparam("cid"),
            _submission.team_id == team_id, _submission.status == "error",
            _submission.path.is_(None), _submission.submitted_at >= bindparam("since"))
        .order_by(_submission.submitted_at.desc()).limit(1).offset(bindparam("nth"))
        .scalar_subquery().label("refused_at"),
    ).where(*where)


_CHECKS_BY_ID = _upload_checks(TeamRow.id == bindparam("team_id"))
_CHECKS_BY_TOKEN = _upload_checks(*token_clauses(bindparam("digest")), by_token=True)
_INSERT_SUBMISSION = insert(submissions_table).returning(_submission.id)
_SET_PATH = update(submissions_table).where(_submission.id == bindparam("submission_id")) \
    .values(path=bindparam("path"))
_INSERT_REPLICATES = insert(replicates_table)


def _count_statement(limited: bool) -> PerDialect:
    """``INSERT ... ON CONFLICT DO UPDATE SET used = used + 1 [WHERE used < :limit]
    RETURNING used``: one period's quota counted in one statement, no row when the limit
    is reached. The row it updates stays locked until the commit, so concurrent uploads
    of one team (threads or processes) queue here and can never pass the limit."""
    def build(dialect: str):
        upsert = dialect_insert(dialect, quotas_table).values(
            team_id=bindparam("team_id"), competition_id=bindparam("cid"),
            period=bindparam("period"), used=1)
        return upsert.on_conflict_do_update(
            index_elements=["team_id", "competition_id", "period"],
            set_={"used": _quota.used + 1},
            where=(_quota.used < bindparam("limit")) if limited else None,
        ).returning(_quota.used)
    return PerDialect(build)


_COUNT_LIMITED, _COUNT = _count_statement(True), _count_statement(False)


class UploadCheck(NamedTuple):
    """An upload's checks, passed before its file is read (:meth:`Submissions.check`)."""

    slug: str
    team_id: int
    team_name: str
    day: str            # the limits' day it counts against
    late: bool          # sent after the reveal: scored, never ranked
    max_bytes: int      # the competition's largest file (max_upload_mb)


class Submissions:
    """Every team upload and teacher baseline of one database.

    Parameters
    ----------
    context : ServiceContext
        The home (uploads are archived under ``uploads/``) and the database.
    competitions, teams, boards : Competitions, Teams, Boards
        The other parts: a scored upload updates its entrant's standing.
    """

    def __init__(self, context: ServiceContext, competitions: Competitions, teams: Teams,
                 boards: Boards):
        self.context = context
        self.competitions = competitions
        self.teams = teams
        self.boards = boards
        self.ladder = Ladder(context)

    def submit(self, slug: str, team: Team, data: bytes, message: str = "",
               filename: str = "submission.csv", now: datetime | None = None) -> dict:
        """Score an upload and record it; returns the submission and ``remaining_today``.

        The same as :meth:`check` then :meth:`submit_checked`.

        Raises
        ------
        NotFoundError
            Unknown competition or team.
        ForbiddenError
            Closed or past the deadline, before the reveal.
        TooLargeError
            Over ``max_upload_mb``.
        SubmissionError
            The file cannot be scored (recorded as an error; counts against no limit).
        LimitError
            The daily or total limit is reached, or too many files were refused lately.
        """
        self._check_size(self.competitions.get(slug), data)    # before any read
        return self.submit_checked(self.check(slug, team=team, now=now), data, message,
                                   filename, now)

    def check(self, slug: str, *, team: Team | None = None, token: str | None = None,
              now: datetime | None = None) -> UploadCheck | None:
        """Whether ``team`` (or the team of ``token``) may upload to ``slug`` now, checked
        before its file is read, in one read: the team exists, the competition takes
        uploads, the limits are not used up and the team has not sent ``[rules]
        refusal_limit`` refused files in the last REFUSAL_WINDOW seconds. The binding
        checks are made again when the upload is stored.

        Returns
        -------
        UploadCheck, or None
            None when ``token`` is given and lets no team act (wrong, revoked, or its team
            removed), whatever ``slug`` is.

        Raises
        ------
        NotFoundError, ForbiddenError, LimitError
            As :meth:`submit` (for a token: only once it is known to be valid).
        """
        if token is None:
            team_id = team_id_of(team)        # a TypeError naming the fix for a non-team
        elif team is not None:
            raise TypeError("check() takes a team or a token, not both")
        digest = None if token is None else usable_token(token)
        if token is not None and digest is None:
            return None
        try:
            comp = self.competitions.get(slug)
        except NotFoundError:
            # a wrong token hears nothing about the competition
            if token is not None and self.teams.authenticate(token) is None:
                return None
            raise
        r = comp.spec.rules
        now = now_utc(now)
        day = rules.day_key(now, r.reset_timezone)
        since = to_store_time(now) - timedelta(seconds=REFUSAL_WINDOW)
        # only the newest STORED_REFUSALS are kept, so a larger limit counts at most those
        nth = max(min(r.refusal_limit, STORED_REFUSALS), 1) - 1
        params = {"cid": comp.id, "day": day, "since": since, "nth": nth}
        if token is None:
            statement, params["team_id"] = _CHECKS_BY_ID, team_id
        else:
            statement, params["digest"] = _CHECKS_BY_TOKEN, digest
        with self.context.database.read() as s:
            found = core(s).execute(statement, params).first()
        if token is not None and (found is None
                                  or not hmac.compare_digest(found.token_hash, digest)):
            return None
        if found is None:
            raise NotFoundError(f"no team {params['team_id']!r} on this server")
        late = rules.submission_window(found.state, r.deadline, now, comp.slug)
        if r.refusal_limit and found.refused_at is not None:
            wait = (rules.as_utc(found.refused_at) - rules.as_utc(since)).total_seconds()
            wait = max(int(wait) + 1, 1)
            raise LimitError(f"{nth + 1} files were refused in the last "
                             f"{REFUSAL_WINDOW / 60:g} minutes; check your file against "
                             f"sample_submission.csv (same columns, one row per test id) and "
                             f"try again in {wait} s", retry_after=wait)
        self._check_limits(comp, found.name, found.used_today or 0, found.used_total or 0, now)
        return UploadCheck(slug=comp.slug, team_id=found.id, team_name=found.name, day=day,
                           late=late, max_bytes=r.max_upload_bytes)

    def submit_checked(self, checked: UploadCheck, data: bytes, message: str = "",
                       filename: str = "submission.csv", now: datetime | None = None) -> dict:
        """Score and record an upload that passed :meth:`check` (made again if the day it
        counts against has changed since); returns what :meth:`submit` returns.

        Raises
        ------
        As :meth:`submit`.
        """
        comp = self.competitions.get(checked.slug)
        r = comp.spec.rules
        now = now_utc(now)
        self._check_size(comp, data)
        if rules.day_key(now, r.reset_timezone) != checked.day:
            checked = self.check(comp.slug, team={"id": checked.team_id}, now=now)
        team_id, team_name, late, day = (checked.team_id, checked.team_name, checked.late,
                                         checked.day)
        answers = self.boards.fingerprint(comp)        # before the key: see replicates_row
        key = self.competitions.answer_key(comp.slug)
        try:
            # late files never rank, so no board needs their replicates
            staged, (result, replicates) = self._staging(
                comp, data, lambda: self._scored(comp, key, data, answers, replicates=not late))
        except SubmissionError as exc:
            self._record_error(comp, team_id, filename, message, now, day, str(exc))
            raise
        with self._archiving(staged) as (s, archive):
            state = competition_state(s, comp.id)
            if rules.submission_window(state, r.deadline, now, comp.slug) != late:
                raise ForbiddenError(f"competition {comp.slug!r} changed state during the "
                                     "upload; try again")
            used_today = self._take_quota(s, comp, team_id, team_name, day, now)
            row = self._insert_scored(s, archive, comp, key, result, team_id=team_id,
                                      baseline_name=None, filename=filename, message=message,
                                      now=now, day=day, late=late, replicates=replicates)
            out = self._as_dict(row, team_name, comp, private=state == rules.REVEALED)
        out["remaining_today"] = (max(r.daily_limit - used_today, 0) if r.daily_limit
                                  else None)
        return out

    def add_baseline(self, slug: str, name: str, data: bytes, message: str = "") -> dict:
        """Score a teacher's prediction file as a marked baseline row (no limits, not a team)."""
        comp = self.competitions.get(slug)
        name = clean_name(name, "baseline name")
        answers = self.boards.fingerprint(comp)        # before the key: see replicates_row
        key = self.competitions.answer_key(slug)
        now = now_utc()
        staged, (result, replicates) = self._staging(
            comp, data, lambda: self._scored(comp, key, data, answers, replicates=True))
        with self._archiving(staged) as (s, archive):
            row = self._insert_scored(s, archive, comp, key, result, team_id=None,
                                      baseline_name=name, filename=f"{name}.csv",
                                      message=message, now=now, day=None, late=False,
                                      replicates=replicates)
            record_audit(s, "baseline add", slug, f"{name} (submission {row.id})")
            return self._as_dict(row, name, comp, private=True)

    def submissions_page(self, slug: str, team: Team, *, limit: int | None = None,
                         offset: int = 0) -> tuple[list[dict], int]:
        """One page of the team's own submissions, newest first, and how many there are.

        Private scores only after the reveal. The whole list is read (the ``final``
        flags need every scored one); it is bounded by the limits, and the refusals by
        STORED_REFUSALS.
        """
        comp = self.competitions.get(slug)
        with self.context.database.read() as s:
            team_id, team_name = self.teams.identify(s, team)
            revealed = competition_state(s, comp.id) == rules.REVEALED
            rows = list(s.scalars(select(SubmissionRow).where(
                SubmissionRow.competition_id == comp.id, SubmissionRow.team_id == team_id)
                .order_by(SubmissionRow.submitted_at.desc(), SubmissionRow.id.desc())))
            selected = set(s.scalars(select(SelectionRow.submission_id).where(
                SelectionRow.competition_id == comp.id, SelectionRow.team_id == team_id)))
        final = _final_ids(comp, [[entry_of(r, team_name, r.id in selected) for r in rows]])
        page = rows[offset:None if limit is None else offset + limit]
        return [self._as_dict(r, team_name, comp, private=revealed, selected=r.id in selected,
                              final=r.id in final) for r in page], len(rows)

    def all_submissions(self, slug: str) -> list[dict]:
        """Every submission of every team and baseline, oldest first (teacher view).

        Adds ``public_score_full`` and ``private_score_full`` (full precision) and the
        ``team_id``; private scores are included whatever the state.
        """
        comp = self.competitions.get(slug)
        with self.context.database.read() as s:
            rows = s.execute(select(SubmissionRow, TeamRow.name).outerjoin(
                TeamRow, TeamRow.id == SubmissionRow.team_id).where(
                SubmissionRow.competition_id == comp.id).order_by(SubmissionRow.id)).all()
            selected = set(s.scalars(select(SelectionRow.submission_id).where(
                SelectionRow.competition_id == comp.id)))
        by_entrant: dict = {}
        for row, name in rows:
            by_entrant.setdefault((row.team_id, row.baseline_name), []).append(
                entry_of(row, name or row.baseline_name, row.id in selected))
        final = _final_ids(comp, by_entrant.values())
        out = []
        for row, name in rows:
            d = self._as_dict(row, name or row.baseline_name, comp, private=True,
                              selected=row.id in selected, final=row.id in final)
            d.update(team_id=row.team_id, public_score_full=row.public_score,
                     private_score_full=row.private_score, error=row.error)
            out.append(d)
        return out

    def file_digests(self, slug: str, submission_ids: Iterable[int]) -> dict[int, str | None]:
        """SHA-256 of each submission's archived file (None when it has none or it is gone):
        the teacher's copy check compares files, not scores (teacher view)."""
        comp = self.competitions.get(slug)
        wanted = [int(i) for i in submission_ids if i is not None]
        with self.context.database.read() as s:
            paths = dict(s.execute(select(SubmissionRow.id, SubmissionRow.path).where(
                SubmissionRow.competition_id == comp.id, SubmissionRow.id.in_(wanted))).all())
        out: dict[int, str | None] = {}
        for sid in wanted:
            path = paths.get(sid)
            try:
                out[sid] = hashlib.sha256((self.context.home / path).read_bytes()).hexdigest() \
                    if path else None
            except OSError:
                out[sid] = None
        return out

    def select(self, slug: str, team: Team, submission_ids: list[int]) -> list[dict]:
        """Replace the team's final selection; returns the selected submissions.

        At most ``final_selections`` of the team's own scored, on-time submissions;
        an empty list clears it (the private board then fills from the best public).
        """
        comp = self.competitions.get(slug)
        limit = comp.spec.rules.final_selections
        ids = list(dict.fromkeys(int(i) for i in submission_ids))
        if len(ids) > limit:
            raise HarnessError(f"{len(ids)} submissions selected; {slug!r} allows at most "
                               f"{limit} final selections")
        with self.context.database.write() as s:
            team_id, team_name = self.teams.identify(s, team)
            if competition_state(s, comp.id) == rules.REVEALED:
                raise ForbiddenError(f"{slug!r} is revealed; the final selection is fixed")
            rows = {r.id: r for r in s.scalars(select(SubmissionRow).where(
                # ids past the id column's 32-bit range are nobody's (PostgreSQL's integer
                # cannot even compare them)
                SubmissionRow.id.in_([i for i in ids if 0 < i < 2**31]),
                SubmissionRow.competition_id == comp.id,
                SubmissionRow.team_id == team_id))}
            for i in ids:
                row = rows.get(i)
                if row is None:
                    raise NotFoundError(f"submission {i} is not one of team {team_name!r}'s "
                                        f"submissions to {slug!r}; "
                                        + self._own_ids(s, comp, team_id))
                if row.status != "scored" or row.late:
                    raise HarnessError(f"submission {i} cannot be selected: only scored, "
                                       "on-time submissions count on the private board")
            s.execute(delete(SelectionRow).where(SelectionRow.competition_id == comp.id,
                                                 SelectionRow.team_id == team_id))
            for i in ids:
                s.add(SelectionRow(competition_id=comp.id, team_id=team_id, submission_id=i))
        return [d for d in self.submissions_page(slug, team)[0] if d["selected"]]

    @staticmethod
    def _own_ids(s, comp: Competition, team_id: int, shown: int = 10) -> str:
        """The team's newest selectable ids, for a message about an id that is not theirs."""
        submission = submissions_table.c
        ids = list(s.scalars(select(submission.id).where(
            submission.competition_id == comp.id, submission.team_id == team_id,
            submission.status == "scored", submission.late.is_(False))
            .order_by(submission.id.desc()).limit(shown + 1)))
        if not ids:
            return "your team has no scored submission to select yet"
        more = ", ..." if len(ids) > shown else ""
        return ("yours that can be selected (newest first): "
                + ", ".join(map(str, ids[:shown])) + more)

    @staticmethod
    def _check_size(comp: Competition, data: bytes) -> None:
        r = comp.spec.rules
        if len(data) > r.max_upload_bytes:
            raise TooLargeError(f"the file is {len(data) / 2**20:.1f} MB; {comp.slug!r} accepts "
                                f"at most {r.max_upload_mb:g} MB")

    @staticmethod
    def _check_limits(comp: Competition, team_name: str, used_today: int, used_total: int,
                      now: datetime) -> None:
        r = comp.spec.rules
        if r.total_limit and used_total >= r.total_limit:
            raise LimitError(f"team {team_name!r} has used all {r.total_limit} submissions "
                             f"{comp.slug!r} allows in total")
        if r.daily_limit and used_today >= r.daily_limit:
            reset = rules.next_reset(now, r.reset_timezone)
            raise LimitError(f"team {team_name!r} reached today's limit of {r.daily_limit} "
                             f"scored submissions to {comp.slug!r}; it resets at "
                             f"{reset.isoformat()} (midnight {r.reset_timezone})",
                             retry_after=max(int((reset - now).total_seconds()) + 1, 1))

    def _take_quota(self, s, comp: Competition, team_id: int, team_name: str, day: str,
                    now: datetime) -> int:
        """Count one scored submission against the limits, in the caller's transaction
        (see :func:`_count_statement`). The daily row is counted even without a limit: it
        also serialises the team's Ladder. Returns the number used today, this one included.
        """
        r = comp.spec.rules
        connection = core(s)
        used_today = 0
        for period, limit in (("total", r.total_limit), (day, r.daily_limit)):
            if period == "total" and not limit:
                continue
            statement = (_COUNT_LIMITED if limit else _COUNT)(connection)
            used = connection.scalar(statement, {"team_id": team_id, "cid": comp.id,
                                                 "period": period, "limit": limit})
            if used is None:
                # the whole transaction rolls back: nothing of this upload is counted
                self._check_limits(comp, team_name, limit if period == day else 0,
                                   limit if period == "total" else 0, now)
            used_today = used
        return used_today

    def _scored(self, comp: Competition, key: AnswerKey, data: bytes, answers: str | None,
                *, replicates: bool) -> tuple[Score, dict | None]:
        """The upload's :class:`Score`, and its replicates row when ``replicates`` (see
        :meth:`Boards.replicates_row`; ``answers`` is the fingerprint taken before ``key``)."""
        result = score(data, key)
        return result, (self.boards.replicates_row(comp, key, result, answers)
                        if replicates else None)

    def _staging(self, comp: Competition, data: bytes, work: Callable[[], T]
                 ) -> tuple[Path, T]:
        """Stage ``data`` for the archive while ``work()`` (the scoring) runs: written to
        a temporary file in the competition's upload folder and fsynced in another thread,
        so the disk syncs while the CPU works, and before any write transaction (no lock
        is held while the disk syncs). Returns the staged file and what ``work`` returned;
        if ``work`` fails (a file that cannot be scored), nothing is left.

        Raises
        ------
        StorageError
            The upload folder is full: nothing was stored or counted.
        """
        staging = _ARCHIVE_WRITERS.submit(_stage, self.context.home / "uploads" / comp.slug,
                                          data)
        try:
            done = work()
        except BaseException:
            _discard_staged(staging)
            raise
        return staging.result(), done

    @contextmanager
    def _archiving(self, staged: Path):
        """A write transaction, and the file :meth:`_staging` staged, which
        :meth:`_insert_scored` renames to its row's id inside the transaction, before the
        commit. Yields the session and an :class:`_Archive`; if the transaction fails,
        neither file is left."""
        archive = _Archive(staged)
        try:
            with self.context.database.write() as s:
                yield s, archive
        except BaseException:
            if archive.path is not None:
                archive.path.unlink(missing_ok=True)
            raise
        finally:
            staged.unlink(missing_ok=True)       # gone once renamed

    def _insert_scored(self, s, archive: "_Archive", comp: Competition, key: AnswerKey,
                       result: Score, *, team_id, baseline_name, filename, message, now, day,
                       late, replicates: dict | None = None) -> SubmissionRow:
        """Insert a scored submission (with its ``replicates`` row, if any), move its staged
        file into the archive, set its shown score and fold it into its standing. Returns
        the row as inserted (not attached to the session)."""
        shown, moved = comp.rounded(result.public), False
        if comp.spec.rules.leaderboard == "ladder" and not late:
            shown, moved = self.ladder.step(s, comp, key, result, team_id, baseline_name)
        values = dict(
            competition_id=comp.id, team_id=team_id, baseline_name=baseline_name,
            filename=storable(filename, 300), message=storable(message, 2000),
            submitted_at=to_store_time(now), day=day, status="scored", error=None,
            public_score=result.public, private_score=result.private, shown=shown,
            ladder_updated=moved, late=late, baseline=baseline_name is not None)
        connection = core(s)
        submission_id = connection.scalar(_INSERT_SUBMISSION, values)
        rel = Path("uploads") / comp.slug / f"{submission_id}.csv"
        archive.move_to(self.context.home / rel)
        connection.execute(_SET_PATH, {"submission_id": submission_id, "path": rel.as_posix()})
        row = SubmissionRow(id=submission_id, path=rel.as_posix(), **values)
        if replicates is not None:
            connection.execute(_INSERT_REPLICATES, {"submission_id": submission_id,
                                                    **replicates})
        if not late:
            self.boards.update_standing(s, comp, row)
        if moved and not comp.spec.rules.ladder_step:
            self.ladder.remember(comp, key, row.id, result.public_row_loss(key))
        return row

    def _record_error(self, comp, team_id, filename, message, now, day, error) -> None:
        """Keep a refused upload in the team's list (status error); it counts against nothing.

        Only the team's newest STORED_REFUSALS refusals are kept: the older ones go in the
        same transaction, so a script cannot grow the store (scored rows are never removed).
        """
        with self.context.database.write() as s:
            s.add(SubmissionRow(competition_id=comp.id, team_id=team_id, baseline_name=None,
                                filename=storable(filename, 300),
                                message=storable(message, 2000),
                                submitted_at=to_store_time(now), day=day, status="error",
                                error=storable(error, 2000), late=False,
                                baseline=False))
            s.flush()
            # refused at upload: no archived file (a rescore may also turn a stored file
            # into an error; that one keeps its row, its file and its history)
            submission = submissions_table.c
            mine = and_(submission.competition_id == comp.id, submission.team_id == team_id,
                        submission.status == "error", submission.path.is_(None))
            keep = select(submission.id).where(mine).order_by(submission.id.desc()).limit(
                STORED_REFUSALS)
            # a derived table: MySQL-style engines refuse LIMIT inside IN, and it reads alike
            s.execute(delete(submissions_table).where(
                mine, submission.id.not_in(select(keep.subquery().c.id))))

    @staticmethod
    def _as_dict(row: SubmissionRow, team_name: str, comp: Competition, *, private: bool,
                 selected: bool = False, final: bool = False) -> dict:
        """A submission as callers see it: the public score as shown, private only if allowed."""
        scored = row.status == "scored"
        public = None
        if scored:
            public = row.shown if (row.shown is not None and not row.late) else \
                comp.rounded(row.public_score)
        return {"id": row.id, "team": team_name, "message": row.message,
                "filename": row.filename,
                "submitted_at": rules.iso_utc(row.submitted_at), "status": row.status,
                "error": row.error if not scored else None,
                "public_score": public,
                "private_score": (comp.rounded(row.private_score)
                                  if private and scored else None),
                "selected": selected, "final": final, "late": bool(row.late),
                "baseline": bool(row.baseline)}


class Ladder:
    """The Ladder's shown score for a new upload, and the per-row public losses the
    parameter-free Ladder compares (cached: the newest ROW_LOSS_CACHE submissions).

    An entry holds the answer key it was computed with: when the key is reloaded (a
    rescore, an answer-key fix seen from another process) the old entries no longer
    count, so nobody has to clear this cache.
    """

    def __init__(self, context: ServiceContext):
        self.context = context
        self._lock = threading.Lock()
        self._row_losses: OrderedDict = OrderedDict()   # (slug, id) -> (key, losses)

    def step(self, s, comp: Competition, key: AnswerKey, result: Score, team_id,
             baseline_name) -> tuple[float, bool]:
        """The entrant's Ladder after this submission: (shown score, whether it moved)."""
        spec = comp.spec
        submission = submissions_table.c
        who = (submission.team_id == team_id) if team_id is not None else \
            (submission.baseline_name == baseline_name)
        prev = s.execute(select(submission.id, submission.shown, submission.path).where(
            submission.competition_id == comp.id, who, submission.status == "scored",
            submission.late.is_(False), submission.ladder_updated.is_(True))
            .order_by(submission.submitted_at.desc(), submission.id.desc()).limit(1)).first()
        step = spec.rules.ladder_step
        new_rows = best_rows = None
        if not step:
            new_rows = result.public_row_loss(key)
            if prev is not None:
                best_rows = self._row_loss(comp, key, prev.id, prev.path)
        d = ladder_update(prev.shown if prev else None, result.public,
                          greater_is_better=spec.metric.greater_is_better, step=step,
                          new_rows=new_rows, best_rows=best_rows)
        return d.shown, d.updated

    def _row_loss(self, comp: Competition, key: AnswerKey, submission_id: int,
                  path: str | None) -> np.ndarray | None:
        """Per-row public losses of an archived submission (cached; else scored again)."""
        cache_key = (comp.slug, submission_id)
        with self._lock:
            entry = self._row_losses.get(cache_key)
            if entry is not None and entry[0] is key:
                self._row_losses.move_to_end(cache_key)
                return entry[1]
        if path is None:
            return None
        try:
            losses = score(self.context.home / path, key).public_row_loss(key)
        except (OSError, SubmissionError):
            return None          # archive lost: the Ladder then takes the new score as shown
        self.remember(comp, key, submission_id, losses)
        return losses

    def remember(self, comp: Competition, key: AnswerKey, submission_id: int, losses) -> None:
        """Keep a submission's per-row public losses under ``key`` (the oldest go first)."""
        with self._lock:
            self._row_losses[(comp.slug, submission_id)] = (key, losses)
            while len(self._row_losses) > ROW_LOSS_CACHE:
                self._row_losses.popitem(last=False)


def _final_ids(comp: Competition, entrants) -> set[int]:
    """The ids that count on the private board (selected, or filled from the best public),
    over each entrant's list of entries."""
    spec = comp.spec
    return {e.id for entries in entrants for e in rules.final_selection(
        entries, final_selections=spec.rules.final_selections,
        greater_is_better=spec.metric.greater_is_better, decimals=spec.scoring.public_decimals)}


class _Archive:
    """An upload's file on its way into the archive: ``staged`` (written and fsynced), then
    ``path`` once :meth:`move_to` renamed it there."""

    def __init__(self, staged: Path):
        self.staged = staged
        self.path: Path | None = None

    def move_to(self, path: Path) -> None:
        """Rename the staged file to ``path`` (the same folder: nothing is copied)."""
        try:
            os.replace(self.staged, path)
        except OSError as exc:
            _raise_storage_error(exc)
        self.path = path


def _discard_staged(staging: Future) -> None:
    """Remove a file staged for nothing, once written (a failed staging left none): a
    refused upload leaves no file behind by the time it is answered."""
    if staging.exception() is None:
        staging.result().unlink(missing_ok=True)


def _stage(folder: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file in ``folder`` and fsync it; its path.

    The folder is 0700 and the file 0600 (a team's predictions are private), named
    ``.upload-N.csv.PID.TID.tmp`` (N counts this process's uploads: a writer thread stages
    the next upload before the last is renamed): a crash leaves it behind, and `harness
    doctor --fix` removes it. A failed write leaves nothing.

    Raises
    ------
    StorageError
        The disk is full.
    """
    tmp = temp_path(folder / f"upload-{next(_STAGED)}.csv")
    try:
        private_dir(folder)
        with os.fdopen(private_file(tmp), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())          # on disk before the row that points to it commits
    except BaseException as exc:
        tmp.unlink(missing_ok=True)      # a full disk must not keep half a file
        if isinstance(exc, OSError):
            _raise_storage_error(exc)
        raise
    return tmp


def _raise_storage_error(exc: OSError) -> None:
    """Raise a full disk as :class:`StorageError` (the upload is then neither stored nor
    counted), any other OSError as it is."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        raise exc
    raise StorageError(f"the server's upload folder is full ({exc.strerror}), so the file "
                       "was not stored and not counted; try again later (teacher: free disk "
                       "space for the home's uploads/ folder)") from None
