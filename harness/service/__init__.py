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
    store (SQLAlchemy models)       tables, engine, transactions, store.queries
    service (this package)          rules + store + the home's files:
        context                       the home, the database, shared helpers
        competitions                  registry, answer keys, files, state
        teams                         teams, tokens, rosters and their repair
        teachers                      teacher tokens (the /api/admin routes)
        boards                        standings read model, public/private boards
        submissions                   uploads, baselines, limits, archive, Ladder
        history                       rescore, score history, audit log
        grades                        the teacher's grade table, per team or member
        monitor                       uploads per day, teams that look like probing
        Harness                       the facade callers use (below)
    server, cli, pages, baselines   callers

A ``Harness`` is safe to share between threads (one engine and its pool per
instance, one session per call) and between processes on one database: limits
are enforced inside the database transaction, never in Python memory. Each cache
lives in the one part that fills it and is never cleared by another. The private
split stays sacred here: a student-facing answer carries no private score or rank
before the reveal.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Iterable

from .. import rules
from ..home import Prepared
from ..roster import RosterRow, parse_roster, read_roster, tokens_path, write_tokens
from ..scoring import AnswerKey
from .boards import Boards
from .competitions import Competitions
from .context import ServiceContext, acting_as
from .grades import grade_table
from .history import History
from .monitor import Monitor
from .submissions import REFUSAL_WINDOW, STORED_REFUSALS, Submissions, UploadCheck
from .teachers import Teacher, Teachers, actor_name
from .teams import Team, Teams


class Harness:
    """The harness's use cases over one home and one database.

    A thin facade over the service's parts, which callers may also use directly:
    ``competitions``, ``teams``, ``boards``, ``uploads`` (the :class:`Submissions`
    part) and ``history``. A team is always the :class:`Team` dict that
    :meth:`authenticate`, :meth:`add_team` or :meth:`team_named` return.

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
        self.context = ServiceContext(home, database_url)
        self.home: Path = self.context.home
        self.database_url: str = self.context.database_url
        self.competitions = Competitions(self.context)
        self.teams = Teams(self.context)
        self.teachers = Teachers(self.context)
        self.boards = Boards(self.context, self.competitions)
        self.uploads = Submissions(self.context, self.competitions, self.teams, self.boards)
        self.history = History(self.context, self.competitions, self.boards)
        self.monitor = Monitor(self.context, self.competitions)

    def close_connections(self) -> None:
        """Release the database connections (the Harness stays usable)."""
        self.context.database.dispose()

    # ------------------------------------------------------------------ competitions

    def prepared(self, slug: str) -> Prepared:
        """The prepared competition ``slug`` (NotFoundError if it is not prepared here)."""
        return self.competitions.get(slug).prepared

    def answer_key(self, slug: str) -> AnswerKey:
        """The answer key of ``slug``, loaded once per process (reloaded if the files change)."""
        return self.competitions.answer_key(slug)

    def list_competitions(self) -> list[dict]:
        """Every prepared competition in the home, with its state and number of teams."""
        return self.competitions.list_competitions()

    def get_competition(self, slug: str) -> dict:
        """One competition: the listing's fields plus ``rules`` and ``public_decimals``."""
        return self.competitions.get_competition(slug)

    def released_file(self, slug: str, name: str) -> Path:
        """The path of a released file; only the four released names are ever answered."""
        return self.competitions.released_file(slug, name)

    def state(self, slug: str, *, now: datetime | None = None) -> str:
        """``"open"``, ``"closed"`` (by the teacher or past the deadline) or ``"revealed"``."""
        return self.competitions.state(slug, now=now)

    def close(self, slug: str) -> dict:
        """Refuse uploads until the reveal (or :meth:`reopen`)."""
        return self.competitions.set_state(slug, rules.CLOSED)

    def reopen(self, slug: str) -> dict:
        """Accept uploads again after :meth:`close` (not after the reveal)."""
        return self.competitions.set_state(slug, rules.OPEN)

    def reveal(self, slug: str) -> dict:
        """Show the private board to everyone; later uploads are late (scored, never ranked).

        Only once the competition is closed or past its deadline (ForbiddenError before):
        a reveal cannot be undone."""
        return self.competitions.set_state(slug, rules.REVEALED)

    # ------------------------------------------------------------------ teams

    def add_team(self, name: str, members: Iterable[str] = (),
                 section: str | None = None) -> tuple[Team, str]:
        """Create a team; returns it and its token (shown once, stored only hashed)."""
        return self.teams.add_team(name, members, section)

    def new_token(self, team: Team) -> str:
        """Revoke a team's tokens and issue a new one (for a lost token)."""
        return self.teams.new_token(team)

    def reissue_token(self, name: str) -> tuple[Team, str]:
        """A new token for the team called ``name``; the old one fails at once."""
        return self.teams.reissue_token(name)

    def import_roster(self, rows: list[RosterRow], source: str = "roster",
                      deliver=None) -> dict:
        """Create the teams of a parsed roster; see :meth:`Teams.import_roster`."""
        return self.teams.import_roster(rows, source, deliver)

    def import_roster_file(self, csv_path: str | Path, out_path: str | Path | None = None
                           ) -> tuple[Path | None, dict]:
        """Import the roster CSV at ``csv_path`` and write the new teams' tokens file
        (``out_path``, default ``ROSTER-tokens.csv`` beside it; mode 0600, never over an
        existing file; not written when no team is new). Returns its path and the
        summary of :meth:`Teams.import_roster`; a file that cannot be written undoes the
        import."""
        text, name = read_roster(csv_path)
        rows = parse_roster(text, name)
        out = tokens_path(csv_path, out_path)
        result = self.teams.import_roster(
            rows, name, deliver=lambda tokens: tokens and write_tokens(out, tokens))
        return (out if result["tokens"] else None), result

    def rename_team(self, old: str, new: str) -> Team:
        """Rename a team (submissions, scores and token stay)."""
        return self.teams.rename_team(old, new)

    def remove_team(self, name: str) -> Team:
        """Take a team off the boards and grades (history kept; :meth:`restore_team`)."""
        return self.teams.remove_team(name)

    def restore_team(self, name: str) -> Team:
        """Bring a removed team back onto the boards, its token working again."""
        return self.teams.restore_team(name)

    def add_member(self, team: str, member: str, section: str | None = None) -> Team:
        """Add a member to a team."""
        return self.teams.add_member(team, member, section)

    def remove_member(self, team: str, member: str) -> Team:
        """Take a member out of a team."""
        return self.teams.remove_member(team, member)

    def move_member(self, member: str, to: str, source: str | None = None) -> Team:
        """Move a member into team ``to`` (``source``: the team they leave, if ambiguous)."""
        return self.teams.move_member(member, to, source)

    def authenticate(self, token: str | None) -> Team | None:
        """The team a token belongs to, or None (no detail about what was wrong)."""
        return self.teams.authenticate(token)

    def list_teams(self, *, removed: bool = False) -> list[Team]:
        """Every team with its members, by name (removed ones only when ``removed``)."""
        return self.teams.list_teams(removed=removed)

    def roster(self, *, removed: bool = False) -> list[dict]:
        """One row per member: team, member, section, removed."""
        return self.teams.roster(removed=removed)

    # ------------------------------------------------------------------ teachers

    def issue_teacher_token(self, label: str = "") -> tuple[Teacher, str]:
        """A new teacher token for the /api/admin routes (shown once, stored hashed)."""
        return self.teachers.issue(label)

    def revoke_teacher_token(self, *, token: str | None = None, token_id: int | None = None,
                             everyone: bool = False) -> int:
        """End one teacher token (by token or id) or all; returns how many."""
        return self.teachers.revoke(token=token, token_id=token_id, everyone=everyone)

    def authenticate_teacher(self, token: str | None) -> Teacher | None:
        """The teacher token's identity, or None."""
        return self.teachers.authenticate(token)

    def team_named(self, name: str) -> Team:
        """The team called ``name`` (NotFoundError if there is none)."""
        return self.teams.team_named(name)

    # ------------------------------------------------------------------ submissions

    def submit(self, slug: str, team: Team, data: bytes, message: str = "",
               filename: str = "submission.csv", now: datetime | None = None) -> dict:
        """Score an upload and record it; see :meth:`Submissions.submit`."""
        return self.uploads.submit(slug, team, data, message, filename, now)

    def check_upload(self, slug: str, token: str | None) -> UploadCheck | None:
        """Whether the team of ``token`` may upload to ``slug`` now, before its file is read
        (None: the token lets no team act); see :meth:`Submissions.check`."""
        if not isinstance(token, str):
            return None
        return self.uploads.check(slug, token=token)

    def submit_checked(self, checked: UploadCheck, data: bytes, message: str = "",
                       filename: str = "submission.csv") -> dict:
        """Score and record an upload :meth:`check_upload` let through; as :meth:`submit`."""
        return self.uploads.submit_checked(checked, data, message, filename)

    def add_baseline(self, slug: str, name: str, data: bytes, message: str = "") -> dict:
        """Score a teacher's prediction file as a marked baseline row (no limits, not a team)."""
        return self.uploads.add_baseline(slug, name, data, message)

    def submissions(self, slug: str, team: Team) -> list[dict]:
        """The team's own submissions, newest first (private scores only after the reveal)."""
        return self.uploads.submissions_page(slug, team)[0]

    def submissions_page(self, slug: str, team: Team, *, limit: int | None = None,
                         offset: int = 0) -> tuple[list[dict], int]:
        """One page of the team's own submissions, newest first, and how many there are."""
        return self.uploads.submissions_page(slug, team, limit=limit, offset=offset)

    def all_submissions(self, slug: str) -> list[dict]:
        """Every submission of every team and baseline, oldest first (teacher view)."""
        return self.uploads.all_submissions(slug)

    def entry_files(self, slug: str, board: str = "private") -> dict[str, str | None]:
        """Each team's board entry file as a SHA-256 digest (teacher view: the copy check)."""
        rows = [r for r in self.leaderboard(slug, board, teacher=True)["rows"]
                if not r.get("baseline")]
        digests = self.uploads.file_digests(slug, [r.get("submission_id") for r in rows])
        return {r["team"]: digests.get(r.get("submission_id")) for r in rows}

    def select(self, slug: str, team: Team, submission_ids: list[int]) -> list[dict]:
        """Replace the team's final selection; returns the selected submissions."""
        return self.uploads.select(slug, team, submission_ids)

    # ------------------------------------------------------------------ boards and history

    def leaderboard(self, slug: str, board: str = "public", *, teacher: bool = False) -> dict:
        """A board: ``{"competition", "board", "revealed", "rows": [...]}``; the private
        board raises ForbiddenError before the reveal unless ``teacher``."""
        return self.boards.leaderboard(slug, board, teacher=teacher)

    def uploads_per_day(self, slug: str) -> list[dict]:
        """Files sent, scored and refused per UTC day (teacher view)."""
        return self.monitor.uploads_per_day(slug)

    def probing_teams(self, slug: str) -> list[dict]:
        """Teams whose uploads look like probing the public board (teacher view)."""
        return self.monitor.probing_teams(slug)

    def grades(self, slug: str, by: str = "team") -> dict:
        """The grade table, per team or per roster member; see :func:`grades.grade_table`."""
        return grade_table(self, slug, by)

    def rescore(self, slug: str) -> dict:
        """Score every archived submission again, keeping history; see :meth:`History.rescore`."""
        return self.history.rescore(slug)

    def audit_log(self, slug: str | None = None) -> list[dict]:
        """The teacher actions, oldest first (only those of ``slug`` and server-wide ones)."""
        return self.history.audit_log(slug)

    def score_history(self, slug: str, submission_id: int) -> list[dict]:
        """The scores a submission had before each rescore, oldest first (teacher view)."""
        return self.history.score_history(slug, submission_id)


__all__ = ["Harness", "Team", "Teacher", "UploadCheck", "REFUSAL_WINDOW", "STORED_REFUSALS",
           "acting_as", "actor_name"]
