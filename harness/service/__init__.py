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
        teams                         teams, tokens, rosters
        boards                        standings read model, public/private boards
        submissions                   uploads, baselines, limits, archive, Ladder
        history                       rescore, score history, audit log
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
from ..scoring import AnswerKey
from .boards import Boards
from .competitions import Competitions
from .context import ServiceContext
from .history import History
from .submissions import REFUSAL_WINDOW, STORED_REFUSALS, Submissions
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
        self.boards = Boards(self.context, self.competitions)
        self.uploads = Submissions(self.context, self.competitions, self.teams, self.boards)
        self.history = History(self.context, self.competitions, self.boards)

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
        """Show the private board to everyone; later uploads are late (scored, never ranked)."""
        return self.competitions.set_state(slug, rules.REVEALED)

    # ------------------------------------------------------------------ teams

    def add_team(self, name: str, members: Iterable[str] = ()) -> tuple[Team, str]:
        """Create a team; returns it and its token (shown once, stored only hashed)."""
        return self.teams.add_team(name, members)

    def new_token(self, team: Team) -> str:
        """Revoke a team's tokens and issue a new one (for a lost token)."""
        return self.teams.new_token(team)

    def import_roster(self, csv_path: str | Path, out_path: str | Path | None = None) -> Path:
        """Create the teams of a ``team,member`` roster; see :meth:`Teams.import_roster`."""
        return self.teams.import_roster(csv_path, out_path)

    def authenticate(self, token: str | None) -> Team | None:
        """The team a token belongs to, or None (no detail about what was wrong)."""
        return self.teams.authenticate(token)

    def list_teams(self) -> list[Team]:
        """Every team with its members, by name."""
        return self.teams.list_teams()

    def team_named(self, name: str) -> Team:
        """The team called ``name`` (NotFoundError if there is none)."""
        return self.teams.team_named(name)

    # ------------------------------------------------------------------ submissions

    def submit(self, slug: str, team: Team, data: bytes, message: str = "",
               filename: str = "submission.csv", now: datetime | None = None) -> dict:
        """Score an upload and record it; see :meth:`Submissions.submit`."""
        return self.uploads.submit(slug, team, data, message, filename, now)

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

    def rescore(self, slug: str) -> dict:
        """Score every archived submission again, keeping history; see :meth:`History.rescore`."""
        return self.history.rescore(slug)

    def audit_log(self, slug: str | None = None) -> list[dict]:
        """The teacher actions, oldest first (only those of ``slug`` and server-wide ones)."""
        return self.history.audit_log(slug)

    def score_history(self, slug: str, submission_id: int) -> list[dict]:
        """The scores a submission had before each rescore, oldest first (teacher view)."""
        return self.history.score_history(slug, submission_id)


__all__ = ["Harness", "Team", "REFUSAL_WINDOW", "STORED_REFUSALS"]
