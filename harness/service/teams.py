"""Teams and their tokens: add, import a roster, authenticate, look up.

A token is 256 random bits shown once; only its SHA-256 digest is stored. Every
other part takes a team as the :class:`Team` dict :meth:`Teams.authenticate`,
:meth:`Teams.add_team` or :meth:`Teams.team_named` return.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Iterable, TypedDict

from sqlalchemy import select, update

from ..csvsafe import write_csv
from ..errors import HarnessError, NotFoundError
from ..store import MemberRow, TeamRow, TokenRow, utcnow
from .context import ServiceContext, clean_name, record_audit

TOKEN_BYTES = 32                  # 256 random bits per token
tokens_table = TokenRow.__table__


class Team(TypedDict):
    """A team as the service hands it out (a plain dict, so JSON-ready)."""

    id: int
    name: str
    members: list[str]


def team_id_of(team: Team) -> int:
    """The id of a team dict; TypeError naming the fix for anything else (a name, an id)."""
    team_id = team.get("id") if isinstance(team, dict) else None
    if not isinstance(team_id, int) or isinstance(team_id, bool):
        raise TypeError(f"a team must be the dict authenticate(), add_team() or team_named() "
                        f"returns, not {team!r:.80}; look a team up by name with "
                        "Harness.team_named(name)")
    return team_id


def token_digest(token: str) -> str:
    """What is stored of a token: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Teams:
    """The teams of one database, their members and their tokens.

    Parameters
    ----------
    context : ServiceContext
        The database the teams live in.
    """

    def __init__(self, context: ServiceContext):
        self.context = context

    def add_team(self, name: str, members: Iterable[str] = ()) -> tuple[Team, str]:
        """Create a team; returns it and its token (shown once, stored only hashed)."""
        name = clean_name(name, "team name")
        members = [clean_name(m, "member name") for m in members]
        with self.context.database.write() as s:
            if s.scalar(select(TeamRow.id).where(TeamRow.name == name)) is not None:
                raise HarnessError(f"team {name!r} already exists; pick another name")
            team, token = self._create_team(s, name, members)
            record_audit(s, "team add", None, f"{name} ({len(members)} members)")
        return team, token

    def _create_team(self, s, name: str, members: list[str]) -> tuple[Team, str]:
        row = TeamRow(name=name, created_at=utcnow())
        s.add(row)
        s.flush()
        members = list(dict.fromkeys(members))
        for m in members:
            s.add(MemberRow(team_id=row.id, name=m))
        return Team(id=row.id, name=name, members=members), self._issue_token(s, row.id)

    @staticmethod
    def _issue_token(s, team_id: int) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        s.add(TokenRow(team_id=team_id, token_hash=token_digest(token), created_at=utcnow()))
        return token

    def new_token(self, team: Team) -> str:
        """Revoke a team's tokens and issue a new one (for a lost token)."""
        with self.context.database.write() as s:
            team_id, _ = self.identify(s, team)
            s.execute(update(tokens_table).where(tokens_table.c.team_id == team_id)
                      .values(revoked=True))
            token = self._issue_token(s, team_id)
            record_audit(s, "team token", None, f"team id {team_id}: old tokens revoked")
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
        roster = _read_roster(csv_path)
        tokens = []
        with self.context.database.write() as s:
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
            record_audit(s, "team import", None, f"{csv_path.name}: {len(tokens)} new teams, "
                         f"{len(roster) - len(tokens)} existing")
            out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                # opened in a spreadsheet: a team name cannot run as a formula; tokens exact
                write_csv(f, ["team", "token"], ({"team": t, "token": k} for t, k in tokens),
                          verbatim=["token"])
        return out

    def authenticate(self, token: str | None) -> Team | None:
        """The team a token belongs to, or None (no detail about what was wrong)."""
        if not token or not isinstance(token, str) or len(token) > 512:
            return None
        digest = token_digest(token)
        with self.context.database.read() as s:
            row = s.execute(select(TokenRow.token_hash, TokenRow.team_id).where(
                TokenRow.token_hash == digest, TokenRow.revoked.is_(False))).first()
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                return None
            return self._teams(s, [row.team_id])[0]

    def list_teams(self) -> list[Team]:
        """Every team with its members, by name."""
        with self.context.database.read() as s:
            ids = list(s.scalars(select(TeamRow.id).order_by(TeamRow.name)))
            return self._teams(s, ids)

    def team_named(self, name: str) -> Team:
        """The team called ``name`` (teacher tools and tests name teams; the rest pass the
        team dict on).

        Raises
        ------
        NotFoundError
            No team has this name.
        """
        with self.context.database.read() as s:
            team_id = s.scalar(select(TeamRow.id).where(TeamRow.name == name))
            if team_id is None:
                raise NotFoundError(f"no team {name!r}; the teacher adds teams with "
                                    "`harness team add NAME`")
            return self._teams(s, [team_id])[0]

    def identify(self, s, team: Team) -> tuple[int, str]:
        """(id, name) of ``team`` as stored now, in the caller's session.

        Raises
        ------
        TypeError
            ``team`` is not a team dict (a name: resolve it with :meth:`team_named`).
        NotFoundError
            No team has this id.
        """
        team_id = team_id_of(team)
        row = s.execute(select(TeamRow.id, TeamRow.name).where(TeamRow.id == team_id)).first()
        if row is None:
            raise NotFoundError(f"no team {team_id!r}; the teacher adds teams with "
                                "`harness team add NAME`")
        return row.id, row.name

    @staticmethod
    def _teams(s, ids: list[int]) -> list[Team]:
        names = dict(s.execute(select(TeamRow.id, TeamRow.name).where(TeamRow.id.in_(ids))).all())
        members: dict[int, list[str]] = {i: [] for i in ids}
        for team_id, member in s.execute(select(MemberRow.team_id, MemberRow.name)
                                         .where(MemberRow.team_id.in_(ids))
                                         .order_by(MemberRow.id)):
            members[team_id].append(member)
        return [Team(id=i, name=names[i], members=members[i]) for i in ids]


def _read_roster(csv_path: Path) -> dict[str, list[str]]:
    """The teams of a roster CSV and their members (rows ``team,member``; the header
    row and blank rows are skipped)."""
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
            members = roster.setdefault(clean_name(cells[0], f"{csv_path} line {i}: team"), [])
            if len(cells) > 1 and cells[1]:
                members.append(clean_name(cells[1], f"{csv_path} line {i}: member"))
    if not roster:
        raise HarnessError(f"{csv_path} has no rows; expected rows team,member")
    return roster
