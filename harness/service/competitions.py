"""The competition registry: prepared competitions, their answer keys, files and state.

Its two caches live here and only here: the prepared competitions (reloaded when a
manifest changes) and the answer keys (reloaded when the solution file changes, or
on request of a rescore through :meth:`Competitions.answer_key`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, update

from .. import rules
from ..errors import ForbiddenError, NotFoundError, PreparedError
from ..home import RELEASED_FILES, RELEASED_NAMES, Prepared, list_prepared, load_prepared
from ..scoring import AnswerKey, round_public
from ..store import CompetitionRow, StandingRow, TeamRow, utcnow
from ..store.queries import competition_state, insert_ignore
from .context import ServiceContext, acting_as, now_utc, record_audit

standings_table = StandingRow.__table__


@dataclass
class Competition:
    """A prepared competition as the service uses it: spec, files and its database id.

    ``stamp`` identifies the version of the prepared files it was loaded from.
    """

    prepared: Prepared
    id: int
    stamp: tuple | None
    auto_revealed: bool = False      # revealed by its deadline ([rules] reveal = "at_deadline")

    @property
    def spec(self):
        return self.prepared.spec

    @property
    def slug(self) -> str:
        return self.prepared.spec.slug

    def rounded(self, value: float) -> float:
        """``value`` rounded as the public board shows it (``public_decimals``)."""
        return round_public(value, self.spec.scoring.public_decimals)


def state_action(state: str) -> str:
    """The audit log's name for moving a competition into ``state``."""
    return {rules.CLOSED: "close", rules.OPEN: "reopen", rules.REVEALED: "reveal"}[state]


class Competitions:
    """The prepared competitions of one home, registered in the database on first use.

    Parameters
    ----------
    context : ServiceContext
        The home, whose ``competitions/`` folder holds them, and the database.
    """

    def __init__(self, context: ServiceContext):
        self.context = context
        self._lock = threading.Lock()
        self._loaded: dict[str, Competition] = {}                       # slug -> competition
        self._answer_keys: dict[str, tuple[tuple, AnswerKey]] = {}     # slug -> (stamp, key)

    def get(self, slug: str) -> Competition:
        """The prepared competition ``slug`` (cached until its manifest changes).

        Raises
        ------
        NotFoundError
            ``slug`` is not a competition prepared in this home.
        """
        if not isinstance(slug, str) or not slug or "/" in slug or "\\" in slug \
                or slug.startswith("."):
            raise NotFoundError(f"no competition {slug!r}")
        manifest = self.context.home / "competitions" / slug / "manifest.json"
        try:
            st = manifest.stat()
        except OSError:
            st = None
        stamp = (st.st_mtime_ns, st.st_size) if st else None
        with self._lock:
            cached = self._loaded.get(slug)
        if cached and cached.stamp == stamp:
            self._reveal_when_due(cached)
            return cached
        try:
            prepared = load_prepared(self.context.home, slug)
        except PreparedError:
            # students read this: no server path, no teacher command (`harness doctor` and
            # `harness prepare` tell the teacher what is wrong with a competition folder)
            known = ", ".join(list_prepared(self.context.home)) or "none yet"
            raise NotFoundError(f"no competition {slug!r}; the competitions here: "
                                f"{known}") from None
        comp = Competition(prepared, self._register(slug), stamp)
        with self._lock:
            self._loaded[slug] = comp
        self._reveal_when_due(comp)
        return comp

    def _reveal_when_due(self, comp: Competition) -> None:
        """Reveal ``comp`` by itself once its deadline has passed, if its rules say
        ``reveal = "at_deadline"``: a conditional update, so of many processes one reveals
        (and audits it) and the rest find it done."""
        r = comp.spec.rules
        if comp.auto_revealed or r.reveal != "at_deadline" or r.deadline is None \
                or now_utc() <= rules.as_utc(r.deadline):
            return
        with self.context.database.write() as s:
            done = s.execute(update(CompetitionRow).where(
                CompetitionRow.id == comp.id, CompetitionRow.state != rules.REVEALED)
                .values(state=rules.REVEALED, revealed_at=utcnow())).rowcount
            if done:
                with acting_as("the deadline ([rules] reveal = \"at_deadline\")"):
                    record_audit(s, "reveal", comp.slug, "at the deadline")
        comp.auto_revealed = True

    def _register(self, slug: str) -> int:
        """The database id of ``slug``, creating its row on first use (any process may)."""
        db = self.context.database
        with db.read() as s:
            cid = s.scalar(select(CompetitionRow.id).where(CompetitionRow.slug == slug))
        if cid is not None:
            return cid
        with db.write() as s:
            insert_ignore(s, CompetitionRow, {"slug": slug, "state": rules.OPEN,
                                              "created_at": utcnow()}, ["slug"])
            return s.scalar(select(CompetitionRow.id).where(CompetitionRow.slug == slug))

    def answer_key(self, slug: str, *, reload: bool = False) -> AnswerKey:
        """The answer key of ``slug``, loaded once per process.

        It is loaded again when the solution file changes, or when ``reload`` is true
        (a rescore must score against the file as it is now).
        """
        comp = self.get(slug)
        try:
            st = comp.prepared.solution_path.stat()
        except OSError:
            raise NotFoundError(f"{slug!r} cannot be scored on this server right now; tell "
                                "your teacher",
                                hint=f"its answer key {comp.prepared.solution_path} is "
                                     f"missing: run `{comp.prepared.prepare_command}`") from None
        stamp = (comp.stamp, st.st_mtime_ns, st.st_size)
        if not reload:
            with self._lock:
                cached = self._answer_keys.get(slug)
            if cached and cached[0] == stamp:
                return cached[1]
        key = AnswerKey.from_prepared(comp.prepared)
        with self._lock:
            self._answer_keys[slug] = (stamp, key)
        return key

    def list_competitions(self) -> list[dict]:
        """Every prepared competition in the home, with its state and number of teams."""
        comps = [self.get(slug) for slug in list_prepared(self.context.home)]
        with self.context.database.read() as s:
            states = dict(s.execute(select(CompetitionRow.id, CompetitionRow.state)).all())
            teams = dict(s.execute(
                select(standings_table.c.competition_id, func.count())
                .join(TeamRow, TeamRow.id == standings_table.c.team_id)
                .where(TeamRow.removed_at.is_(None))
                .group_by(standings_table.c.competition_id)).all())
        return [self._listing(c, states[c.id], teams.get(c.id, 0)) for c in comps]

    def get_competition(self, slug: str) -> dict:
        """One competition: the listing's fields plus ``rules`` and ``public_decimals``."""
        comp = self.get(slug)
        with self.context.database.read() as s:
            state = competition_state(s, comp.id)
            teams = s.scalar(select(func.count()).select_from(standings_table).join(
                TeamRow, TeamRow.id == standings_table.c.team_id).where(
                standings_table.c.competition_id == comp.id, TeamRow.removed_at.is_(None)))
        d = self._listing(comp, state, teams or 0)
        r = comp.spec.rules
        d["rules"] = {"deadline": rules.iso_utc(r.deadline), "daily_limit": r.daily_limit,
                      "reset_timezone": r.reset_timezone, "total_limit": r.total_limit,
                      "final_selections": r.final_selections, "leaderboard": r.leaderboard,
                      "ladder_step": r.ladder_step, "max_upload_mb": r.max_upload_mb,
                      "refusal_limit": r.refusal_limit, "reveal": r.reveal}
        d["public_decimals"] = comp.spec.scoring.public_decimals
        d["task"] = comp.spec.data.task
        d["id_column"] = comp.spec.data.id_column
        d["target"] = comp.spec.data.target
        return d

    def _listing(self, comp: Competition, state: str, teams: int) -> dict:
        spec = comp.spec
        return {"slug": spec.slug, "title": spec.title, "description": spec.description,
                "metric": spec.metric.name, "greater_is_better": spec.metric.greater_is_better,
                "deadline": rules.iso_utc(spec.rules.deadline),
                "state": rules.effective_state(state, spec.rules.deadline, now_utc()),
                "teams": teams,
                "files": [n for n in comp.prepared.released_names
                          if (comp.prepared.released_dir / n).is_file()]}

    def released_file(self, slug: str, name: str) -> Path:
        """The path of a released file; only the released names are ever answered (the
        four CSVs, and an image competition's three zips)."""
        if name not in RELEASED_NAMES:
            raise NotFoundError(f"no file {name!r} in {slug!r}; the files are "
                                f"{', '.join(RELEASED_FILES)}")
        names = self.get(slug).prepared.released_names
        if name not in names:
            raise NotFoundError(f"no file {name!r} in {slug!r}; the files are "
                                f"{', '.join(names)}")
        path = self.get(slug).prepared.released_dir / name
        if not path.is_file():
            raise NotFoundError(f"{name} of {slug!r} is not on this server right now; tell "
                                "your teacher", hint=f"{path} is missing: run "
                                                     f"`{self.get(slug).prepared.prepare_command}`")
        return path

    def state(self, slug: str, *, now: datetime | None = None) -> str:
        """``"open"``, ``"closed"`` (by the teacher or past the deadline) or ``"revealed"``."""
        comp = self.get(slug)
        with self.context.database.read() as s:
            state = competition_state(s, comp.id)
        return rules.effective_state(state, comp.spec.rules.deadline, now_utc(now))

    def set_state(self, slug: str, state: str) -> dict:
        """Move ``slug`` to ``state`` (close, reopen or reveal), audited; returns it.

        Raises
        ------
        ForbiddenError
            ``slug`` is revealed and ``state`` is not: the private board is public. Or
            ``state`` is revealed while ``slug`` is still open (not closed, deadline not
            passed): a reveal cannot be undone, so the competition must end first.
        """
        comp = self.get(slug)
        db = self.context.database
        deadline = comp.spec.rules.deadline
        with db.write() as s:
            row = s.get(CompetitionRow, comp.id, with_for_update=not db.is_sqlite)
            if row.state == rules.REVEALED and state != rules.REVEALED:
                raise ForbiddenError(f"{slug!r} is already revealed; its private board is "
                                     "public, so it cannot be closed or reopened")
            if state == rules.REVEALED and rules.effective_state(
                    row.state, deadline, now_utc()) == rules.OPEN:
                until = f"until {rules.iso_utc(deadline)}" if deadline else "with no deadline"
                raise ForbiddenError(
                    f"{slug!r} is still open ({until}); a reveal cannot be undone and "
                    f"makes the private board public, so close it first: `harness close "
                    f"{slug}`, then `harness reveal {slug}`")
            record_audit(s, state_action(state), slug, f"was {row.state}")
            row.state = state
            if state == rules.CLOSED:
                row.closed_at = utcnow()
            elif state == rules.REVEALED:
                row.revealed_at = utcnow()
        return self.get_competition(slug)
