"""The application layer: every use case of the harness, one method each.

Everything above the store (the HTTP API, the pages, the command line,
``baseline --submit``, grades, the demo) calls :class:`Harness` and nothing
below it; no other module opens a database session. A method takes plain
values (slugs, team dicts, bytes), checks the rules, talks to the store in
its own short transaction and answers plain dicts in the shapes of DESIGN.md
"HTTP API", or raises a :class:`harness.errors.HarnessError` subclass whose
message is meant for the user (the server maps it to an HTTP status).

Layers, bottom to top::

    spec, scoring, ladder, rules    pure: no database, no server
    store (SQLAlchemy models)       tables, engine, transactions
    service.Harness                 this module: rules + store + the home's files
    server, cli, pages, baselines   callers

A ``Harness`` is safe to share between threads (one engine and its pool per
instance, one session per call) and between processes on one database: limits
are enforced inside the database transaction, never in Python memory. The
private split stays sacred here: a student-facing answer carries no private
score or rank before the reveal.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable

import numpy as np
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import rules
from .csvsafe import write_csv
from .errors import (ForbiddenError, HarnessError, LimitError, NotFoundError, PreparedError,
                     StorageError, SubmissionError, TooLargeError)
from .home import (RELEASED_FILES, Prepared, list_prepared, load_prepared, private_dir,
                   private_file, resolve_home, temp_path)
from .ladder import ladder_update
from .scoring import AnswerKey, Score, round_public, score
from .store import (AuditRow, CompetitionRow, Database, MemberRow, QuotaRow, ScoreHistoryRow,
                    SelectionRow, StandingRow, SubmissionRow, TeamRow, TokenRow, default_url,
                    to_store_time, utcnow)

TOKEN_BYTES = 32                  # 256 random bits per token
ROW_LOSS_CACHE = 256              # per-row public losses kept for the parameter-free Ladder
# Refused files cost a parse and a row each; a script sending bad files must not fill the
# store or slow the class. A team gets [rules] refusal_limit refusals per REFUSAL_WINDOW
# (then 429 until the oldest of them leaves the window) and keeps its newest STORED_REFUSALS.
REFUSAL_WINDOW = 600.0            # seconds
STORED_REFUSALS = 50
S = SubmissionRow.__table__
ST = StandingRow.__table__


@dataclass
class _Competition:
    """A prepared competition as the service uses it: spec, files and its database id."""

    prepared: Prepared
    id: int
    stamp: tuple

    @property
    def spec(self):
        return self.prepared.spec

    @property
    def slug(self) -> str:
        return self.prepared.spec.slug


class Harness:
    """The harness's use cases over one home and one database.

    Parameters
    ----------
    home : str or Path, optional
        The home folder (``--home`` / ``$HARNESS_HOME`` / ``./.harness``).
    database_url : str, optional
        ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST/DB``; default
        ``$HARNESS_DATABASE_URL``, else SQLite at ``HOME/harness.db``.

    Examples
    --------
    >>> h = Harness("/srv/course")                         # doctest: +SKIP
    >>> team, token = h.add_team("owls", ["Ada", "Alan"])   # doctest: +SKIP
    >>> h.submit("digits", team, open("s.csv", "rb").read(), "first try")  # doctest: +SKIP
    """

    def __init__(self, home: str | Path | None = None, database_url: str | None = None):
        self.home: Path = resolve_home(home)
        self.database_url: str = database_url or default_url(self.home)
        self._db = Database(self.database_url)
        self._lock = threading.Lock()
        self._competitions: dict[str, _Competition] = {}
        self._keys: dict[str, tuple[tuple, AnswerKey]] = {}
        self._row_losses: OrderedDict = OrderedDict()
        self._private_cache: dict[str, tuple] = {}    # slug -> (key, private rows)

    def close_connections(self) -> None:
        """Release the database connections (the Harness stays usable)."""
        self._db.dispose()

    # ------------------------------------------------------------------ competitions

    def prepared(self, slug: str) -> Prepared:
        """The prepared competition ``slug`` (NotFoundError if it is not prepared here)."""
        return self._competition(slug).prepared

    def answer_key(self, slug: str) -> AnswerKey:
        """The answer key of ``slug``, loaded once per process (reloaded if the files change)."""
        comp = self._competition(slug)
        try:
            st = comp.prepared.solution_path.stat()
        except OSError:
            raise NotFoundError(f"the answer key of {slug!r} is missing; the teacher should "
                                f"run `harness prepare {slug} --force`") from None
        stamp = (comp.stamp, st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._keys.get(slug)
            if cached and cached[0] == stamp:
                return cached[1]
        key = AnswerKey.from_prepared(comp.prepared)
        with self._lock:
            self._keys[slug] = (stamp, key)
        return key

    def list_competitions(self) -> list[dict]:
        """Every prepared competition in the home, with its state and number of teams."""
        comps = [self._competition(slug) for slug in list_prepared(self.home)]
        with self._db.read() as s:
            states = dict(s.execute(select(CompetitionRow.id, CompetitionRow.state)).all())
            teams = dict(s.execute(select(ST.c.competition_id, func.count()).where(
                ST.c.team_id.is_not(None)).group_by(ST.c.competition_id)).all())
        return [self._competition_dict(c, states[c.id], teams.get(c.id, 0)) for c in comps]

    def get_competition(self, slug: str) -> dict:
        """One competition: the listing's fields plus ``rules`` and ``public_decimals``."""
        comp = self._competition(slug)
        with self._db.read() as s:
            state = s.scalar(select(CompetitionRow.state).where(CompetitionRow.id == comp.id))
            teams = s.scalar(select(func.count()).where(ST.c.competition_id == comp.id,
                                                        ST.c.team_id.is_not(None)))
        d = self._competition_dict(comp, state, teams or 0)
        r = comp.spec.rules
        d["rules"] = {"deadline": rules.iso_utc(r.deadline), "daily_limit": r.daily_limit,
                      "reset_timezone": r.reset_timezone, "total_limit": r.total_limit,
                      "final_selections": r.final_selections, "leaderboard": r.leaderboard,
                      "ladder_step": r.ladder_step, "max_upload_mb": r.max_upload_mb,
                      "refusal_limit": r.refusal_limit}
        d["public_decimals"] = comp.spec.scoring.public_decimals
        d["task"] = comp.spec.data.task
        d["id_column"] = comp.spec.data.id_column
        d["target"] = comp.spec.data.target
        return d

    def released_file(self, slug: str, name: str) -> Path:
        """The path of a released file; only the four released names are ever answered."""
        if name not in RELEASED_FILES:
            raise NotFoundError(f"no file {name!r} in {slug!r}; the files are "
                                f"{', '.join(RELEASED_FILES)}")
        path = self.prepared(slug).released_dir / name
        if not path.is_file():
            raise NotFoundError(f"{name} of {slug!r} is missing; the teacher should run "
                                f"`harness prepare {slug} --force`")
        return path

    def state(self, slug: str, *, now: datetime | None = None) -> str:
        """``"open"``, ``"closed"`` (by the teacher or past the deadline) or ``"revealed"``."""
        comp = self._competition(slug)
        with self._db.read() as s:
            state = s.scalar(select(CompetitionRow.state).where(CompetitionRow.id == comp.id))
        return rules.effective_state(state, comp.spec.rules.deadline, _now(now))

    def close(self, slug: str) -> dict:
        """Refuse uploads until the reveal (or :meth:`reopen`)."""
        return self._set_state(slug, rules.CLOSED)

    def reopen(self, slug: str) -> dict:
        """Accept uploads again after :meth:`close` (not after the reveal)."""
        return self._set_state(slug, rules.OPEN)

    def reveal(self, slug: str) -> dict:
        """Show the private board to everyone; later uploads are late (scored, never ranked)."""
        return self._set_state(slug, rules.REVEALED)

    def _set_state(self, slug: str, state: str) -> dict:
        comp = self._competition(slug)
        with self._db.write() as s:
            row = s.get(CompetitionRow, comp.id, with_for_update=not self._db.is_sqlite)
            if row.state == rules.REVEALED and state != rules.REVEALED:
                raise ForbiddenError(f"{slug!r} is already revealed; its private board is "
                                     "public, so it cannot be closed or reopened")
            self._audit(s, state_action(state), slug, f"was {row.state}")
            row.state = state
            if state == rules.CLOSED:
                row.closed_at = utcnow()
            elif state == rules.REVEALED:
                row.revealed_at = utcnow()
        return self.get_competition(slug)

    # ------------------------------------------------------------------ teams

    def add_team(self, name: str, members: Iterable[str] = ()) -> tuple[dict, str]:
        """Create a team; returns its dict and its token (shown once, stored only hashed)."""
        name = _clean_name(name, "team name")
        members = [_clean_name(m, "member name") for m in members]
        with self._db.write() as s:
            if s.scalar(select(TeamRow.id).where(TeamRow.name == name)) is not None:
                raise HarnessError(f"team {name!r} already exists; pick another name")
            team, token = self._create_team(s, name, members)
            self._audit(s, "team add", None, f"{name} ({len(members)} members)")
        return team, token

    def _create_team(self, s, name: str, members: list[str]) -> tuple[dict, str]:
        row = TeamRow(name=name, created_at=utcnow())
        s.add(row)
        s.flush()
        for m in dict.fromkeys(members):
            s.add(MemberRow(team_id=row.id, name=m))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        s.add(TokenRow(team_id=row.id, token_hash=_hash(token), created_at=utcnow()))
        return {"id": row.id, "name": name, "members": list(dict.fromkeys(members))}, token

    def new_token(self, team) -> str:
        """Revoke a team's tokens and issue a new one (for a lost token)."""
        with self._db.write() as s:
            tid, _ = self._team(s, team)
            T = TokenRow.__table__
            s.execute(update(T).where(T.c.team_id == tid).values(revoked=True))
            token = secrets.token_urlsafe(TOKEN_BYTES)
            s.add(TokenRow(team_id=tid, token_hash=_hash(token), created_at=utcnow()))
            self._audit(s, "team token", None, f"team id {tid}: old tokens revoked")
        return token

    def import_roster(self, csv_path: str | Path, out_path: str | Path | None = None) -> Path:
        """Create the teams of a ``team,member`` roster and write their tokens.

        New teams get a token, written to ``out_path`` (default: ``<roster>-tokens.csv``
        beside the roster, mode 0600) as ``team,token`` rows. Teams that already exist
        get any new members but keep their token, so they are not in the file.
        """
        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise NotFoundError(f"roster {csv_path} does not exist; expected a CSV with "
                                "rows team,member")
        out = Path(out_path) if out_path else csv_path.with_name(f"{csv_path.stem}-tokens.csv")
        if out.exists():
            raise HarnessError(f"{out} already exists; it may hold tokens that are shown only "
                               "once. Move it away or pass another output path")
        roster: dict[str, list[str]] = {}
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            for i, row in enumerate(csv.reader(f), start=1):
                cells = [c.strip() for c in row]
                if not any(cells):
                    continue
                if i == 1 and [c.lower() for c in cells[:2]] in (["team", "member"], ["team"]):
                    continue
                if not cells[0]:
                    raise HarnessError(f"{csv_path} line {i}: the team is empty; expected "
                                       "rows team,member")
                team = _clean_name(cells[0], f"{csv_path} line {i}: team")
                members = roster.setdefault(team, [])
                if len(cells) > 1 and cells[1]:
                    members.append(_clean_name(cells[1], f"{csv_path} line {i}: member"))
        if not roster:
            raise HarnessError(f"{csv_path} has no rows; expected rows team,member")
        tokens = []
        with self._db.write() as s:
            existing = dict(s.execute(select(TeamRow.name, TeamRow.id).where(
                TeamRow.name.in_(list(roster)))).all())
            for team, members in roster.items():
                if team in existing:
                    have = set(s.scalars(select(MemberRow.name).where(
                        MemberRow.team_id == existing[team])))
                    for m in dict.fromkeys(members):
                        if m not in have:
                            s.add(MemberRow(team_id=existing[team], name=m))
                else:
                    tokens.append((team, self._create_team(s, team, members)[1]))
            self._audit(s, "team import", None, f"{csv_path.name}: {len(tokens)} new teams, "
                        f"{len(roster) - len(tokens)} existing")
            out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                # opened in a spreadsheet: a team name cannot run as a formula; tokens exact
                write_csv(f, ["team", "token"], ({"team": t, "token": k} for t, k in tokens),
                          verbatim=["token"])
        return out

    def authenticate(self, token: str | None) -> dict | None:
        """The team a token belongs to, or None (no detail about what was wrong)."""
        if not token or not isinstance(token, str) or len(token) > 512:
            return None
        digest = _hash(token)
        with self._db.read() as s:
            row = s.execute(select(TokenRow.token_hash, TokenRow.team_id).where(
                TokenRow.token_hash == digest, TokenRow.revoked.is_(False))).first()
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                return None
            return self._team_dicts(s, [row.team_id])[0]

    def list_teams(self) -> list[dict]:
        """Every team with its members, by name."""
        with self._db.read() as s:
            ids = list(s.scalars(select(TeamRow.id).order_by(TeamRow.name)))
            return self._team_dicts(s, ids)

    def _team_dicts(self, s, ids: list[int]) -> list[dict]:
        names = dict(s.execute(select(TeamRow.id, TeamRow.name).where(TeamRow.id.in_(ids))).all())
        members: dict[int, list[str]] = {i: [] for i in ids}
        for tid, m in s.execute(select(MemberRow.team_id, MemberRow.name)
                                .where(MemberRow.team_id.in_(ids)).order_by(MemberRow.id)):
            members[tid].append(m)
        return [{"id": i, "name": names[i], "members": members[i]} for i in ids]

    def _team(self, s, team) -> tuple[int, str]:
        """(id, name) of a team given as its dict, id or name."""
        if isinstance(team, dict):
            team = team.get("id", team.get("name"))
        col = TeamRow.id if isinstance(team, int) else TeamRow.name
        row = s.execute(select(TeamRow.id, TeamRow.name).where(col == team)).first()
        if row is None:
            raise NotFoundError(f"no team {team!r}; the teacher adds teams with "
                                "`harness team add NAME`")
        return row.id, row.name

    # ------------------------------------------------------------------ submissions

    def submit(self, slug: str, team, data: bytes, message: str = "",
               filename: str = "submission.csv", now: datetime | None = None) -> dict:
        """Score an upload and record it; returns the submission and ``remaining_today``.

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
            The daily or total limit is reached.
        """
        comp = self._competition(slug)
        r = comp.spec.rules
        now_utc = _now(now)
        if len(data) > r.max_upload_bytes:
            raise TooLargeError(f"the file is {len(data) / 2**20:.1f} MB; {slug!r} accepts at "
                                f"most {r.max_upload_mb:g} MB")
        day = rules.day_key(now_utc, r.reset_timezone)
        with self._db.read() as s:
            team_id, team_name = self._team(s, team)
            state = s.scalar(select(CompetitionRow.state).where(CompetitionRow.id == comp.id))
            late = rules.submission_window(state, r.deadline, now_utc, slug)
            # refuse early when the limit is already used up (the binding check is below)
            used = dict(s.execute(select(QuotaRow.period, QuotaRow.used).where(
                QuotaRow.team_id == team_id, QuotaRow.competition_id == comp.id,
                QuotaRow.period.in_([day, "total"]))).all())
            self._check_refusals(s, comp, team_id, now_utc)
        self._check_limits(comp, team_name, used.get(day, 0), used.get("total", 0), now_utc)
        key = self.answer_key(slug)
        try:
            result = score(data, key)
        except SubmissionError as exc:
            self._record_error(comp, team_id, filename, message, now_utc, day, str(exc))
            raise
        with self._archiving() as (s, archived):
            state = s.scalar(select(CompetitionRow.state).where(CompetitionRow.id == comp.id))
            if rules.submission_window(state, r.deadline, now_utc, slug) != late:
                raise ForbiddenError(f"competition {slug!r} changed state during the upload; "
                                     "try again")
            used_today = self._take_quota(s, comp, team_id, team_name, day, now_utc)
            row = self._insert_scored(s, archived, comp, key, result, data, team_id=team_id,
                                      baseline_name=None, filename=filename, message=message,
                                      now=now_utc, day=day, late=late)
            out = self._sub_dict(row, team_name, comp, private=state == rules.REVEALED)
        out["remaining_today"] = (max(r.daily_limit - used_today, 0) if r.daily_limit
                                  else None)
        return out

    def add_baseline(self, slug: str, name: str, data: bytes, message: str = "") -> dict:
        """Score a teacher's prediction file as a marked baseline row (no limits, not a team)."""
        comp = self._competition(slug)
        name = _clean_name(name, "baseline name")
        key = self.answer_key(slug)
        result = score(data, key)
        now_utc = _now(None)
        with self._archiving() as (s, archived):
            row = self._insert_scored(s, archived, comp, key, result, data, team_id=None,
                                      baseline_name=name, filename=f"{name}.csv",
                                      message=message, now=now_utc, day=None, late=False)
            self._audit(s, "baseline add", slug, f"{name} (submission {row.id})")
            return self._sub_dict(row, name, comp, private=True)

    def submissions(self, slug: str, team) -> list[dict]:
        """The team's own submissions, newest first (private scores only after the reveal)."""
        return self.submissions_page(slug, team)[0]

    def submissions_page(self, slug: str, team, *, limit: int | None = None,
                         offset: int = 0) -> tuple[list[dict], int]:
        """One page of the team's own submissions, newest first, and how many there are.

        The whole list is read (the ``final`` flags need every scored one); it is bounded
        by the limits, and the refusals by STORED_REFUSALS.
        """
        comp = self._competition(slug)
        with self._db.read() as s:
            team_id, team_name = self._team(s, team)
            revealed = s.scalar(select(CompetitionRow.state).where(
                CompetitionRow.id == comp.id)) == rules.REVEALED
            rows = list(s.scalars(select(SubmissionRow).where(
                SubmissionRow.competition_id == comp.id, SubmissionRow.team_id == team_id)
                .order_by(SubmissionRow.submitted_at.desc(), SubmissionRow.id.desc())))
            selected = set(s.scalars(select(SelectionRow.submission_id).where(
                SelectionRow.competition_id == comp.id, SelectionRow.team_id == team_id)))
        final = {e.id for e in rules.final_selection(
            [self._entry(r, team_name, r.id in selected) for r in rows],
            final_selections=comp.spec.rules.final_selections,
            greater_is_better=comp.spec.metric.greater_is_better,
            decimals=comp.spec.scoring.public_decimals)}
        page = rows[offset:None if limit is None else offset + limit]
        return [self._sub_dict(r, team_name, comp, private=revealed, selected=r.id in selected,
                               final=r.id in final) for r in page], len(rows)

    def all_submissions(self, slug: str) -> list[dict]:
        """Every submission of every team and baseline, oldest first (teacher view).

        Adds ``public_score_full`` and ``private_score_full`` (full precision) and the
        ``team_id``; private scores are included whatever the state.
        """
        comp = self._competition(slug)
        with self._db.read() as s:
            rows = s.execute(select(SubmissionRow, TeamRow.name).outerjoin(
                TeamRow, TeamRow.id == SubmissionRow.team_id).where(
                SubmissionRow.competition_id == comp.id).order_by(SubmissionRow.id)).all()
            selected = set(s.scalars(select(SelectionRow.submission_id).where(
                SelectionRow.competition_id == comp.id)))
        by_team: dict = {}
        for row, name in rows:
            by_team.setdefault((row.team_id, row.baseline_name), []).append(
                self._entry(row, name or row.baseline_name, row.id in selected))
        r = comp.spec.rules
        final = {e.id for es in by_team.values() for e in rules.final_selection(
            es, final_selections=r.final_selections,
            greater_is_better=comp.spec.metric.greater_is_better,
            decimals=comp.spec.scoring.public_decimals)}
        out = []
        for row, name in rows:
            d = self._sub_dict(row, name or row.baseline_name, comp, private=True,
                               selected=row.id in selected, final=row.id in final)
            d.update(team_id=row.team_id, public_score_full=row.public_score,
                     private_score_full=row.private_score, error=row.error)
            out.append(d)
        return out

    def select(self, slug: str, team, submission_ids: list[int]) -> list[dict]:
        """Replace the team's final selection; returns the selected submissions.

        At most ``final_selections`` of the team's own scored, on-time submissions;
        an empty list clears it (the private board then fills from the best public).
        """
        comp = self._competition(slug)
        limit = comp.spec.rules.final_selections
        ids = list(dict.fromkeys(int(i) for i in submission_ids))
        if len(ids) > limit:
            raise HarnessError(f"{len(ids)} submissions selected; {slug!r} allows at most "
                               f"{limit} final selections")
        with self._db.write() as s:
            team_id, team_name = self._team(s, team)
            state = s.scalar(select(CompetitionRow.state).where(CompetitionRow.id == comp.id))
            if state == rules.REVEALED:
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
                                        f"submissions to {slug!r}")
                if row.status != "scored" or row.late:
                    raise HarnessError(f"submission {i} cannot be selected: only scored, "
                                       "on-time submissions count on the private board")
            s.execute(delete(SelectionRow).where(SelectionRow.competition_id == comp.id,
                                                 SelectionRow.team_id == team_id))
            for i in ids:
                s.add(SelectionRow(competition_id=comp.id, team_id=team_id, submission_id=i))
        return [d for d in self.submissions(slug, team_id) if d["selected"]]

    # ------------------------------------------------------------------ boards

    def leaderboard(self, slug: str, board: str = "public", *, teacher: bool = False) -> dict:
        """A board: ``{"competition", "board", "revealed", "rows": [...]}``.

        The private board raises ForbiddenError before the reveal unless ``teacher``.
        """
        if board not in ("public", "private"):
            raise HarnessError(f"board {board!r} is unknown; use public or private")
        comp = self._competition(slug)
        spec = comp.spec
        gib = spec.metric.greater_is_better
        with self._db.read() as s:
            state = s.scalar(select(CompetitionRow.state).where(CompetitionRow.id == comp.id))
            revealed = state == rules.REVEALED
            if board == "private" and not (revealed or teacher):
                raise ForbiddenError(f"the private leaderboard of {slug!r} is hidden until "
                                     "the teacher reveals it")
            standings = self._standings(s, comp)
        if any(st.top_size != spec.rules.final_selections for st in standings):
            # final_selections changed since the standings were built: rebuild them once
            with self._db.write() as s:
                self._rebuild_standings(s, comp)
            with self._db.read() as s:
                standings = self._standings(s, comp)
        rows = rules.rank_bests(
            [rules.TeamBest(st.name, st.baseline_name is not None, st.score, st.best_at,
                            st.submission_id, st.entries, st.last_submission)
             for st in standings], greater_is_better=gib)
        if board == "private":
            rows = rules.add_public_ranks(self._private_rows_cached(comp, standings, revealed),
                                          rows)
        return {"competition": slug, "board": board, "revealed": revealed,
                "leaderboard": spec.rules.leaderboard, "metric": spec.metric.name,
                "greater_is_better": gib, "rows": rows}

    def _standings(self, s, comp: _Competition) -> list:
        """The competition's standings rows with each entrant's display name (one query)."""
        q = select(ST.c.team_id, ST.c.baseline_name, ST.c.submission_id, ST.c.score,
                   ST.c.best_at, ST.c.entries, ST.c.last_submission, ST.c.top_entries,
                   ST.c.top_size, func.coalesce(ST.c.baseline_name, TeamRow.name).label("name")
                   ).outerjoin(TeamRow, TeamRow.id == ST.c.team_id).where(
            ST.c.competition_id == comp.id)
        # a Core execution: no ORM row processing on the board's hot path
        return s.connection().execute(q).all()

    def _private_rows_cached(self, comp: _Competition, standings, revealed: bool) -> list[dict]:
        """The private rows, computed once per state of the standings after the reveal.

        After the reveal selections are frozen and late uploads never rank, so the
        private board changes only when the standings do (a rescore rebuilds them) or
        the spec does: both are in the cache key. Before the reveal (the teacher's view)
        it is computed every time.
        """
        key = (comp.stamp, hash(tuple(tuple(st) for st in standings))) if revealed else None
        with self._lock:
            cached = self._private_cache.get(comp.slug)
        if key is not None and cached is not None and cached[0] == key:
            return [dict(r) for r in cached[1]]
        with self._db.read() as s:
            private = self._private_rows(s, comp, standings)
        if key is not None:
            with self._lock:
                self._private_cache[comp.slug] = (key, [dict(r) for r in private])
        return private

    def _private_rows(self, s, comp: _Competition, standings) -> list[dict]:
        """Private board rows from each entrant's selections and best public entries only."""
        spec = comp.spec
        selected: dict[int, list[rules.Entry]] = {}
        q = select(SelectionRow.team_id, S.c.id, S.c.submitted_at, S.c.public_score,
                   S.c.private_score, S.c.shown).join(
            S, S.c.id == SelectionRow.submission_id).where(
            SelectionRow.competition_id == comp.id, S.c.status == "scored",
            S.c.late.is_(False))
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
                                            self._rounded(comp, b.private), b.submitted_at,
                                            b.id, st.entries, st.last_submission))
        return rules.rank_bests(bests, greater_is_better=spec.metric.greater_is_better)

    def _update_standing(self, s, comp: _Competition, row: SubmissionRow) -> None:
        """Fold one new rankable submission into its entrant's standing (same transaction)."""
        spec = comp.spec
        gib = spec.metric.greater_is_better
        entrant = _entrant(row.team_id, row.baseline_name)
        ins = sqlite_insert if self._db.is_sqlite else pg_insert
        s.execute(ins(ST).values(
            competition_id=comp.id, entrant=entrant, team_id=row.team_id,
            baseline_name=row.baseline_name, submission_id=row.id, score=row.shown,
            best_at=row.submitted_at, entries=0, last_submission=row.submitted_at,
            top_entries="[]", top_size=spec.rules.final_selections).on_conflict_do_nothing())
        st = s.execute(select(ST).where(ST.c.competition_id == comp.id,
                                        ST.c.entrant == entrant).with_for_update()).one()
        new = self._entry(row, "", False)
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
        s.execute(update(ST).where(ST.c.id == st.id).values(**values))

    def _top_entries(self, s, texts: list[str]) -> list[list[rules.Entry]]:
        """The stored top entries of standings; any stored before they carried the shown
        score get it from their submission rows (one query, only when there are such)."""
        tops = [_top_load(text) for text in texts]
        legacy = [e.id for top in tops for e in top if e.shown is None]
        if not legacy:
            return tops
        shown = dict(s.execute(select(S.c.id, S.c.shown).where(S.c.id.in_(legacy))).all())
        return [[replace(e, shown=shown.get(e.id)) if e.shown is None else e for e in top]
                for top in tops]

    def _rebuild_standings(self, s, comp: _Competition) -> None:
        """Recompute every standing of a competition from its submissions (rescore, spec change)."""
        spec = comp.spec
        gib = spec.metric.greater_is_better
        k = spec.rules.final_selections
        q = select(S.c.id, S.c.team_id, S.c.baseline_name, S.c.submitted_at, S.c.public_score,
                   S.c.private_score, S.c.shown, S.c.ladder_updated).where(
            S.c.competition_id == comp.id, S.c.status == "scored", S.c.late.is_(False))
        groups: dict = {}
        for r in s.execute(q):
            groups.setdefault((r.team_id, r.baseline_name), []).append(rules.Entry(
                r.id, "", r.submitted_at, r.public_score, r.private_score, r.shown,
                baseline=r.baseline_name is not None, ladder_updated=bool(r.ladder_updated)))
        s.execute(delete(ST).where(ST.c.competition_id == comp.id))
        for (team_id, baseline_name), es in groups.items():
            b = rules.best_public(es, greater_is_better=gib,
                                  decimals=spec.scoring.public_decimals)
            s.execute(ST.insert().values(
                competition_id=comp.id, entrant=_entrant(team_id, baseline_name),
                team_id=team_id, baseline_name=baseline_name, submission_id=b.id,
                score=rules.shown_score(b, spec.scoring.public_decimals), best_at=b.submitted_at,
                entries=len(es), last_submission=max(e.submitted_at for e in es),
                top_entries=_top_dump(rules.top_public(
                    es, k, greater_is_better=gib, decimals=spec.scoring.public_decimals)),
                top_size=k))

    # ------------------------------------------------------------------ rescore

    def rescore(self, slug: str) -> dict:
        """Score every archived submission again (after an answer-key fix), keeping history.

        Old scores go to the score history; the public board's shown scores (and the
        Ladder) are recomputed in submission order. Returns ``{"rescored", "changed"}``,
        plus ``"missing"`` (ids) when archived files have disappeared (their scores stay).
        """
        comp = self._competition(slug)
        with self._lock:
            self._keys.pop(slug, None)
            self._row_losses.clear()
        key = self.answer_key(slug)
        spec = comp.spec
        with self._db.read() as s:
            rows = list(s.scalars(select(SubmissionRow).where(
                SubmissionRow.competition_id == comp.id, SubmissionRow.path.is_not(None))
                .order_by(SubmissionRow.submitted_at, SubmissionRow.id)))
        new: dict[int, dict] = {}
        missing: list[int] = []
        groups: dict = {}
        for row in rows:
            groups.setdefault((row.team_id, row.baseline_name), []).append(row)
        ladder = spec.rules.leaderboard == "ladder"
        for group in groups.values():
            def scored(group=group):
                for row in group:
                    path = self.home / row.path
                    if not path.is_file():
                        missing.append(row.id)       # keep its scores; say so in the answer
                        continue
                    try:
                        sc = score(path, key)
                    except SubmissionError as exc:
                        new[row.id] = dict(status="error", error=str(exc), public_score=None,
                                           private_score=None, shown=None,
                                           ladder_updated=False)
                        continue
                    new[row.id] = dict(status="scored", error=None, public_score=sc.public,
                                       private_score=sc.private,
                                       shown=self._rounded(comp, sc.public),
                                       ladder_updated=False)
                    if ladder and not row.late:
                        rows_ = sc.public_row_loss(key) if not spec.rules.ladder_step else None
                        yield row.id, sc.public, rows_
            if ladder:
                on_time = list(scored())
                decisions = rules.ladder_replay(
                    on_time, greater_is_better=spec.metric.greater_is_better,
                    step=spec.rules.ladder_step)
                for (sid, _, _), d in zip(on_time, decisions):
                    new[sid].update(shown=d.shown, ladder_updated=d.updated)
            else:
                for _ in scored():
                    pass
        changed = 0
        with self._db.write() as s:
            for row in rows:
                if row.id not in new:
                    continue
                n = new[row.id]
                old = (row.status, row.public_score, row.private_score, row.shown)
                if old != (n["status"], n["public_score"], n["private_score"], n["shown"]):
                    changed += 1
                s.add(ScoreHistoryRow(submission_id=row.id, status=row.status,
                                      public_score=row.public_score,
                                      private_score=row.private_score, shown=row.shown,
                                      replaced_at=utcnow(), reason="rescore"))
                s.execute(update(S).where(S.c.id == row.id).values(**n))
            self._rebuild_standings(s, comp)
            self._audit(s, "rescore", slug, f"{len(new)} rescored, {changed} changed"
                        + (f", {len(missing)} archived files missing" if missing else ""))
        out = {"rescored": len(new), "changed": changed}
        if missing:
            out["missing"] = missing
        return out

    def audit_log(self, slug: str | None = None) -> list[dict]:
        """The teacher actions (close, reopen, reveal, rescore, teams, baselines), oldest
        first; only those of ``slug`` (and the server-wide team changes) when given."""
        with self._db.read() as s:
            q = select(AuditRow).order_by(AuditRow.id)
            if slug is not None:
                q = q.where((AuditRow.competition == slug) | AuditRow.competition.is_(None))
            return [{"at": rules.iso_utc(r.at), "action": r.action,
                     "competition": r.competition, "detail": r.detail}
                    for r in s.scalars(q)]

    @staticmethod
    def _audit(s, action: str, slug: str | None, detail: str) -> None:
        """Record a teacher action in the same transaction as the action itself."""
        s.add(AuditRow(at=utcnow(), action=action, competition=slug, detail=detail))

    def score_history(self, slug: str, submission_id: int) -> list[dict]:
        """The scores a submission had before each rescore, oldest first (teacher view)."""
        comp = self._competition(slug)
        with self._db.read() as s:
            hist = s.scalars(select(ScoreHistoryRow).join(
                SubmissionRow, SubmissionRow.id == ScoreHistoryRow.submission_id).where(
                SubmissionRow.competition_id == comp.id,
                ScoreHistoryRow.submission_id == submission_id).order_by(ScoreHistoryRow.id))
            return [{"submission_id": h.submission_id, "status": h.status,
                     "public_score": h.public_score, "private_score": h.private_score,
                     "shown": h.shown, "replaced_at": rules.iso_utc(h.replaced_at),
                     "reason": h.reason} for h in hist]

    # ------------------------------------------------------------------ internals

    def _competition(self, slug: str) -> _Competition:
        """The prepared competition, registered in the database on first use (cached)."""
        if not isinstance(slug, str) or not slug or "/" in slug or "\\" in slug \
                or slug.startswith("."):
            raise NotFoundError(f"no competition {slug!r}")
        manifest = self.home / "competitions" / slug / "manifest.json"
        try:
            st = manifest.stat()
        except OSError:
            st = None
        stamp = (st.st_mtime_ns, st.st_size) if st else None
        with self._lock:
            cached = self._competitions.get(slug)
        if cached and cached.stamp == stamp:
            return cached
        try:
            prepared = load_prepared(self.home, slug)
        except PreparedError:
            # students read this: no server path, no teacher command (`harness doctor` and
            # `harness prepare` tell the teacher what is wrong with a competition folder)
            known = ", ".join(list_prepared(self.home)) or "none yet"
            raise NotFoundError(f"no competition {slug!r}; the competitions here: "
                                f"{known}") from None
        comp = _Competition(prepared, self._register(slug), stamp)
        with self._lock:
            self._competitions[slug] = comp
        return comp

    def _register(self, slug: str) -> int:
        with self._db.read() as s:
            cid = s.scalar(select(CompetitionRow.id).where(CompetitionRow.slug == slug))
        if cid is not None:
            return cid
        with self._db.write() as s:
            ins = (sqlite_insert if self._db.is_sqlite else pg_insert)(CompetitionRow)
            s.execute(ins.values(slug=slug, state=rules.OPEN, created_at=utcnow())
                      .on_conflict_do_nothing(index_elements=["slug"]))
            return s.scalar(select(CompetitionRow.id).where(CompetitionRow.slug == slug))

    def _competition_dict(self, comp: _Competition, state: str, teams: int) -> dict:
        spec = comp.spec
        return {"slug": spec.slug, "title": spec.title, "description": spec.description,
                "metric": spec.metric.name, "greater_is_better": spec.metric.greater_is_better,
                "deadline": rules.iso_utc(spec.rules.deadline),
                "state": rules.effective_state(state, spec.rules.deadline, _now(None)),
                "teams": teams,
                "files": [n for n in RELEASED_FILES
                          if (comp.prepared.released_dir / n).is_file()]}

    def _check_refusals(self, s, comp: _Competition, team_id: int, now: datetime) -> None:
        """Refuse (429) a team that sent ``[rules] refusal_limit`` refused files in the last
        REFUSAL_WINDOW seconds, before its next file is even parsed."""
        allowed = comp.spec.rules.refusal_limit
        if not allowed:
            return
        since = to_store_time(now) - timedelta(seconds=REFUSAL_WINDOW)
        recent = list(s.scalars(select(S.c.submitted_at).where(
            S.c.competition_id == comp.id, S.c.team_id == team_id, S.c.status == "error",
            S.c.path.is_(None), S.c.submitted_at >= since).order_by(S.c.submitted_at.desc())
            .limit(allowed)))
        # only the newest STORED_REFUSALS are kept, so a larger limit counts at most those
        if len(recent) < min(allowed, STORED_REFUSALS):
            return
        wait = (rules.as_utc(recent[-1]) - rules.as_utc(since)).total_seconds()
        wait = max(int(wait) + 1, 1)
        raise LimitError(f"{len(recent)} files were refused in the last "
                         f"{REFUSAL_WINDOW / 60:g} minutes; check your file against "
                         f"sample_submission.csv (same columns, one row per test id) and try "
                         f"again in {wait} s", retry_after=wait)

    def _check_limits(self, comp: _Competition, team_name: str, used_today: int,
                      used_total: int, now: datetime) -> None:
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

    def _take_quota(self, s, comp: _Competition, team_id: int, team_name: str, day: str,
                    now: datetime) -> int:
        """Count one scored submission against the limits, in the caller's transaction.

        The conditional UPDATE locks the team's quota row until commit, so concurrent
        uploads of one team (threads or processes) queue here and can never pass the
        limit. The daily row is updated even without a limit: it also serialises the
        team's Ladder. Returns the number used today, this one included.
        """
        r = comp.spec.rules
        ins = sqlite_insert if self._db.is_sqlite else pg_insert
        Q = QuotaRow.__table__
        for period, limit in (("total", r.total_limit), (day, r.daily_limit)):
            if period == "total" and not limit:
                continue
            s.execute(ins(Q).values(team_id=team_id, competition_id=comp.id, period=period,
                                    used=0).on_conflict_do_nothing())
            cond = and_(Q.c.team_id == team_id, Q.c.competition_id == comp.id,
                        Q.c.period == period)
            if limit:
                cond = and_(cond, Q.c.used < limit)
            if s.execute(update(Q).where(cond).values(used=Q.c.used + 1)).rowcount != 1:
                # the whole transaction rolls back: nothing of this upload is counted
                self._check_limits(comp, team_name, limit if period == day else 0,
                                   limit if period == "total" else 0, now)
        return s.scalar(select(Q.c.used).where(Q.c.team_id == team_id,
                                               Q.c.competition_id == comp.id,
                                               Q.c.period == day))

    @contextmanager
    def _archiving(self):
        """A write transaction plus the files archived in it, removed if it fails."""
        archived: list[Path] = []
        try:
            with self._db.write() as s:
                yield s, archived
        except BaseException:
            for path in archived:
                path.unlink(missing_ok=True)
            raise

    def _insert_scored(self, s, archived: list[Path], comp: _Competition, key: AnswerKey,
                       result: Score, data: bytes, *, team_id, baseline_name, filename,
                       message, now, day, late) -> SubmissionRow:
        """Insert a scored submission, archive its file, and set its shown score."""
        shown, moved = self._rounded(comp, result.public), False
        if comp.spec.rules.leaderboard == "ladder" and not late:
            shown, moved = self._ladder_step(s, comp, key, result, team_id, baseline_name)
        row = SubmissionRow(
            competition_id=comp.id, team_id=team_id, baseline_name=baseline_name,
            filename=_storable(filename, 300), message=_storable(message, 2000),
            submitted_at=to_store_time(now), day=day, status="scored",
            public_score=result.public, private_score=result.private, shown=shown,
            ladder_updated=moved, late=late, baseline=baseline_name is not None)
        s.add(row)
        s.flush()
        rel = Path("uploads") / comp.slug / f"{row.id}.csv"
        # written before the commit, so every committed row has its file; the caller's
        # _archiving() removes it again if the transaction does not commit
        try:
            _write_atomic(self.home / rel, data)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # the transaction rolls back: no row, no quota used
            raise StorageError(f"the server's upload folder is full ({exc.strerror}), so "
                               "the file was not stored and not counted; try again later "
                               "(teacher: free disk space for the home's uploads/ folder)"
                               ) from None
        archived.append(self.home / rel)
        row.path = rel.as_posix()
        if not late:
            self._update_standing(s, comp, row)
        if moved and not comp.spec.rules.ladder_step:
            self._remember_rows(comp, key, row.id, result.public_row_loss(key))
        return row

    def _ladder_step(self, s, comp: _Competition, key: AnswerKey, result: Score, team_id,
                     baseline_name) -> tuple[float, bool]:
        """The team's Ladder after this submission: (shown score, whether it moved)."""
        spec = comp.spec
        who = (S.c.team_id == team_id) if team_id is not None else \
            (S.c.baseline_name == baseline_name)
        prev = s.execute(select(S.c.id, S.c.shown, S.c.path).where(
            S.c.competition_id == comp.id, who, S.c.status == "scored", S.c.late.is_(False),
            S.c.ladder_updated.is_(True)).order_by(S.c.submitted_at.desc(), S.c.id.desc())
            .limit(1)).first()
        step = spec.rules.ladder_step
        new_rows = best_rows = None
        if not step:
            new_rows = result.public_row_loss(key)
            if prev is not None:
                best_rows = self._rows_of(comp, key, prev.id, prev.path)
        d = ladder_update(prev.shown if prev else None, result.public,
                          greater_is_better=spec.metric.greater_is_better, step=step,
                          new_rows=new_rows, best_rows=best_rows)
        return d.shown, d.updated

    def _rows_of(self, comp: _Competition, key: AnswerKey, sid: int,
                 path: str | None) -> np.ndarray | None:
        """Per-row public losses of an archived submission (cached; else scored again).

        An entry holds the answer key it was computed with: when another process (a
        CLI rescore after an answer-key fix) changes the key, this process reloads it
        and the old entry no longer counts.
        """
        k = (comp.slug, sid)
        with self._lock:
            entry = self._row_losses.get(k)
            if entry is not None and entry[0] is key:
                self._row_losses.move_to_end(k)
                return entry[1]
        if path is None:
            return None
        try:
            rows = score(self.home / path, key).public_row_loss(key)
        except (OSError, SubmissionError):
            return None          # archive lost: the Ladder then takes the new score as shown
        self._remember_rows(comp, key, sid, rows)
        return rows

    def _remember_rows(self, comp: _Competition, key: AnswerKey, sid: int, rows) -> None:
        with self._lock:
            self._row_losses[(comp.slug, sid)] = (key, rows)
            while len(self._row_losses) > ROW_LOSS_CACHE:
                self._row_losses.popitem(last=False)

    def _record_error(self, comp, team_id, filename, message, now, day, error) -> None:
        """Keep a refused upload in the team's list (status error); it counts against nothing.

        Only the team's newest STORED_REFUSALS refusals are kept: the older ones go in the
        same transaction, so a script cannot grow the store (scored rows are never removed).
        """
        with self._db.write() as s:
            s.add(SubmissionRow(competition_id=comp.id, team_id=team_id, baseline_name=None,
                                filename=_storable(filename, 300),
                                message=_storable(message, 2000),
                                submitted_at=to_store_time(now), day=day, status="error",
                                error=_storable(error, 2000), late=False,
                                baseline=False))
            s.flush()
            # refused at upload: no archived file (a rescore may also turn a stored file
            # into an error; that one keeps its row, its file and its history)
            mine = and_(S.c.competition_id == comp.id, S.c.team_id == team_id,
                        S.c.status == "error", S.c.path.is_(None))
            keep = select(S.c.id).where(mine).order_by(S.c.id.desc()).limit(STORED_REFUSALS)
            # a derived table: MySQL-style engines refuse LIMIT inside IN, and it reads alike
            s.execute(delete(S).where(mine, S.c.id.not_in(select(keep.subquery().c.id))))

    def _rounded(self, comp: _Competition, value: float) -> float:
        return round_public(value, comp.spec.scoring.public_decimals)

    def _entry(self, row: SubmissionRow, name: str, selected: bool) -> rules.Entry:
        return rules.Entry(row.id, name, row.submitted_at, row.public_score, row.private_score,
                           row.shown, status=row.status, late=row.late, baseline=row.baseline,
                           selected=selected, ladder_updated=row.ladder_updated)

    def _sub_dict(self, row: SubmissionRow, team_name: str, comp: _Competition, *,
                  private: bool, selected: bool = False, final: bool = False) -> dict:
        """A submission as callers see it: the public score as shown, private only if allowed."""
        scored = row.status == "scored"
        public = None
        if scored:
            public = row.shown if (row.shown is not None and not row.late) else \
                self._rounded(comp, row.public_score)
        return {"id": row.id, "team": team_name, "message": row.message,
                "filename": row.filename,
                "submitted_at": rules.iso_utc(row.submitted_at), "status": row.status,
                "error": row.error if not scored else None,
                "public_score": public,
                "private_score": (self._rounded(comp, row.private_score)
                                  if private and scored else None),
                "selected": selected, "final": final, "late": bool(row.late),
                "baseline": bool(row.baseline)}


def _top_dump(entries: list[rules.Entry]) -> str:
    """An entrant's best shown entries as stored in its standing (JSON
    ``[id, public, private, submitted_at, shown]``: the fill orders by ``shown``)."""
    return json.dumps([[e.id, e.public, e.private, e.submitted_at.isoformat(), e.shown]
                       for e in entries])


def _top_load(text: str) -> list[rules.Entry]:
    """The entries :func:`_top_dump` stored; those stored before they carried the shown
    score (4 fields) have ``shown`` None, which rules.shown_score reads as the rounded
    public score (:meth:`Harness._top_entries` gives them the Ladder's from their rows)."""
    return [rules.Entry(i, "", datetime.fromisoformat(t), pub, priv, *shown)
            for i, pub, priv, t, *shown in json.loads(text)]


def _entrant(team_id: int | None, baseline_name: str | None) -> str:
    return f"team:{team_id}" if team_id is not None else f"baseline:{baseline_name}"


def state_action(state: str) -> str:
    """The audit log's name for moving a competition into ``state``."""
    return {rules.CLOSED: "close", rules.OPEN: "reopen", rules.REVEALED: "reveal"}[state]


def _now(now: datetime | None) -> datetime:
    return rules.as_utc(now) if now is not None else rules.as_utc(utcnow())


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _clean_name(name, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise HarnessError(f"{what} is empty; give a name")
    name = name.strip()
    if len(name) > 200 or any(ord(c) < 32 for c in name):
        raise HarnessError(f"{what} {name[:40]!r} is too long or has control characters; "
                           "use a short printable name")
    return name


def _storable(text, limit: int) -> str:
    """``text`` cut to ``limit`` characters, safe for every store: PostgreSQL text refuses
    NUL bytes and lone surrogates, and an upload's message or filename may carry both."""
    text = str(text).replace("\x00", "\ufffd")[:limit]
    return text.encode("utf-8", "replace").decode("utf-8")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (never half a file).

    Folders it creates are 0700 and the file 0600: a team's predictions are private.
    A crash leaves ``.NAME.PID.TID.tmp`` behind, which `harness doctor --fix` removes.
    """
    private_dir(path.parent)
    tmp = temp_path(path)
    try:
        with os.fdopen(private_file(tmp), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())          # on disk before the row that points to it commits
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)      # a full disk must not keep half a file
        raise


__all__ = ["Harness"]
