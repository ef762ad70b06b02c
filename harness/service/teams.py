"""Teams and their tokens: add, import a roster, repair it, authenticate, look up.

A token is 256 random bits shown once; only its SHA-256 digest is stored. Every
other part takes a team as the :class:`Team` dict :meth:`Teams.authenticate`,
:meth:`Teams.add_team` or :meth:`Teams.team_named` return.

Team names are unique ignoring case and surrounding spaces (``owls`` is ``Owls``).
A removed team is off the boards and grades and its token stops working; its
submissions stay, and :meth:`Teams.restore_team` brings it back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Callable, Iterable, TypedDict

from sqlalchemy import bindparam, delete, select, update

from ..errors import HarnessError, NotFoundError
from ..roster import RosterRow
from ..store import MemberRow, TeamRow, TokenRow, utcnow
from .context import ServiceContext, clean_name, name_key, record_audit

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


def usable_token(token) -> str | None:
    """The digest to look ``token`` up by, or None for what cannot be a token (empty, not a
    string, too long): it is then refused without a look at the store."""
    if not token or not isinstance(token, str) or len(token) > 512:
        return None
    return token_digest(token)


def token_clauses(digest) -> tuple:
    """The conditions under which a token row lets its team act, for a statement over
    tokens and teams: its digest is ``digest`` (a value or a bind parameter), it names the
    team, it is not revoked and the team is not removed."""
    return (TokenRow.token_hash == digest, TokenRow.team_id == TeamRow.id,
            TokenRow.revoked.is_(False), TeamRow.removed_at.is_(None))


# every request with a token runs this: one round trip (the team and its members), a
# Core statement built once
_TEAM_BY_TOKEN = (
    select(TokenRow.token_hash, TokenRow.team_id, TeamRow.name, MemberRow.name.label("member"))
    .join(TeamRow, TeamRow.id == TokenRow.team_id)
    .outerjoin(MemberRow, MemberRow.team_id == TeamRow.id)
    .where(*token_clauses(bindparam("digest")))
    .order_by(MemberRow.id))


class Teams:
    """The teams of one database, their members and their tokens.

    Parameters
    ----------
    context : ServiceContext
        The database the teams live in.
    """

    def __init__(self, context: ServiceContext):
        self.context = context

    # ------------------------------------------------------------------ adding

    def add_team(self, name: str, members: Iterable[str] = (),
                 section: str | None = None) -> tuple[Team, str]:
        """Create a team; returns it and its token (shown once, stored only hashed).

        Raises
        ------
        HarnessError
            A team of that name exists already (case and surrounding spaces ignored).
        """
        name = clean_name(name, "team name")
        members = [clean_name(m, "member name") for m in members]
        section = clean_name(section, "section") if section else None
        with self.context.database.write() as s:
            self._check_free(s, name)
            team, token = self._create_team(s, name, [(m, section) for m in members])
            record_audit(s, "team add", None, f"{name} ({len(members)} members)")
        return team, token

    def _check_free(self, s, name: str, keep: int | None = None) -> None:
        """HarnessError unless ``name`` is free (team ``keep`` may hold it: a rename that
        changes only the case)."""
        row = s.execute(select(TeamRow.id, TeamRow.name, TeamRow.removed_at).where(
            TeamRow.name_key == name_key(name))).first()
        if row is None or row.id == keep:
            return
        if row.removed_at is not None:
            raise HarnessError(f"a removed team is called {row.name!r} (names ignore case); "
                               f"restore it with `harness team restore {row.name!r}` or pick "
                               "another name")
        raise HarnessError(f"team {row.name!r} already exists (names ignore case and "
                           "surrounding spaces); pick another name")

    def _create_team(self, s, name: str, members: list[tuple[str, str | None]]
                     ) -> tuple[Team, str]:
        row = TeamRow(name=name, name_key=name_key(name), created_at=utcnow())
        s.add(row)
        s.flush()
        members = list(dict(members).items())          # one row per name, its last section
        for m, section in members:
            s.add(MemberRow(team_id=row.id, name=m, section=section))
        return (Team(id=row.id, name=name, members=[m for m, _ in members]),
                self._issue_token(s, row.id))

    @staticmethod
    def _issue_token(s, team_id: int) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        s.add(TokenRow(team_id=team_id, token_hash=token_digest(token), created_at=utcnow()))
        return token

    def new_token(self, team: Team) -> str:
        """Revoke a team's tokens and issue a new one (for a lost token); the old one fails
        at once."""
        with self.context.database.write() as s:
            team_id, name = self.identify(s, team)
            s.execute(update(tokens_table).where(tokens_table.c.team_id == team_id)
                      .values(revoked=True))
            token = self._issue_token(s, team_id)
            record_audit(s, "team token", None, f"{name}: new token, old ones revoked")
        return token

    def import_roster(self, rows: list[RosterRow], source: str = "roster",
                      deliver: Callable[[list[dict]], None] | None = None) -> dict:
        """Create the teams of a roster and add new members to teams that exist.

        Parameters
        ----------
        rows : list of RosterRow
            :func:`harness.roster.parse_roster`'s answer.
        source : str
            The roster's name, for the audit log.
        deliver : callable, optional
            Called with the new teams' tokens inside the transaction (so a tokens file that
            cannot be written undoes the import: no team is left without a known token).

        Returns
        -------
        dict
            ``teams_added``, ``members_added`` (to teams that existed), ``teams_existing``,
            ``sections_changed`` and ``tokens`` (``[{"team", "members", "token"}]`` for the
            new teams only; existing teams keep their token).
        """
        roster: dict[str, dict[str, str | None]] = {}
        names: dict[str, str] = {}          # key -> the name as first written
        for r in rows:
            team = clean_name(r.team, f"{source}: team")
            key = name_key(team)
            names.setdefault(key, team)
            members = roster.setdefault(key, {})
            if r.member:
                members[clean_name(r.member, f"{source}: member")] = r.section
        tokens, added, changed = [], 0, 0
        with self.context.database.write() as s:
            existing = {row.name_key: row for row in s.execute(
                select(TeamRow.id, TeamRow.name, TeamRow.name_key, TeamRow.removed_at)
                .where(TeamRow.name_key.in_(list(roster))))}
            for key, members in roster.items():
                row = existing.get(key)
                if row is None:
                    team, token = self._create_team(s, names[key], list(members.items()))
                    tokens.append({"team": team["name"], "members": team["members"],
                                   "token": token})
                    continue
                have = {m.name: m for m in s.scalars(select(MemberRow).where(
                    MemberRow.team_id == row.id))}
                for m, section in members.items():
                    if m not in have:
                        s.add(MemberRow(team_id=row.id, name=m, section=section))
                        added += 1
                    elif section and have[m].section != section:
                        have[m].section = section
                        changed += 1
            result = {"teams_added": len(tokens), "teams_existing": len(existing),
                      "members_added": added, "sections_changed": changed, "tokens": tokens}
            record_audit(s, "team import", None,
                         f"{source}: {len(tokens)} new teams, {len(existing)} existing, "
                         f"{added} members added")
            if deliver is not None:
                deliver(tokens)
        return result

    # ------------------------------------------------------------------ repairing

    def rename_team(self, old: str, new: str) -> Team:
        """Rename a team (its submissions, scores and token stay)."""
        new = clean_name(new, "new team name")
        with self.context.database.write() as s:
            row = self._row(s, old)
            self._check_free(s, new, keep=row.id)
            record_audit(s, "team rename", None, f"{row.name} -> {new}")
            row.name, row.name_key = new, name_key(new)
            s.flush()
            return self._teams(s, [row.id])[0]

    def remove_team(self, name: str) -> Team:
        """Take a team off the boards and grades; its token stops working. Its history
        stays, and :meth:`restore_team` brings it back."""
        with self.context.database.write() as s:
            row = self._row(s, name)
            row.removed_at = utcnow()
            record_audit(s, "team remove", None, row.name)
            return self._teams(s, [row.id])[0]

    def restore_team(self, name: str) -> Team:
        """Bring a removed team back: on the boards again, its token working again."""
        with self.context.database.write() as s:
            row = self._row(s, name, removed=True)
            if row.removed_at is None:
                raise HarnessError(f"team {row.name!r} is not removed; nothing to restore")
            row.removed_at = None
            record_audit(s, "team restore", None, row.name)
            return self._teams(s, [row.id])[0]

    def reissue_token(self, name: str) -> tuple[Team, str]:
        """A new token for the team called ``name``; the old one fails at once (401)."""
        team = self.team_named(name)
        return team, self.new_token(team)

    def add_member(self, team: str, member: str, section: str | None = None) -> Team:
        """Add ``member`` to ``team`` (HarnessError if already in it)."""
        member = clean_name(member, "member name")
        section = clean_name(section, "section") if section else None
        with self.context.database.write() as s:
            row = self._row(s, team)
            if s.scalar(select(MemberRow.id).where(MemberRow.team_id == row.id,
                                                   MemberRow.name == member)) is not None:
                raise HarnessError(f"{member!r} is already in team {row.name!r}")
            s.add(MemberRow(team_id=row.id, name=member, section=section))
            record_audit(s, "member add", None, f"{member} -> {row.name}")
            s.flush()
            return self._teams(s, [row.id])[0]

    def remove_member(self, team: str, member: str) -> Team:
        """Take ``member`` out of ``team``."""
        with self.context.database.write() as s:
            row = self._row(s, team)
            found = s.execute(delete(MemberRow).where(MemberRow.team_id == row.id,
                                                      MemberRow.name == member.strip()))
            if not found.rowcount:
                raise NotFoundError(f"{member.strip()!r} is not in team {row.name!r}; its "
                                    f"members: {self._member_list(s, row.id)}")
            record_audit(s, "member remove", None, f"{member.strip()} from {row.name}")
            return self._teams(s, [row.id])[0]

    def move_member(self, member: str, to: str, source: str | None = None) -> Team:
        """Move ``member`` into team ``to`` (from team ``source``, needed only when the
        name is in several teams), keeping their section; returns the team ``to``."""
        member = member.strip()
        with self.context.database.write() as s:
            target = self._row(s, to)
            q = select(MemberRow, TeamRow.name).join(TeamRow, TeamRow.id == MemberRow.team_id
                                                     ).where(MemberRow.name == member)
            if source is not None:
                q = q.where(TeamRow.id == self._row(s, source).id)
            found = s.execute(q).all()
            if not found:
                raise NotFoundError(f"no member {member!r}"
                                    + (f" in team {source!r}" if source else "")
                                    + "; `harness team list` shows every team's members")
            if len(found) > 1:
                teams = ", ".join(sorted(repr(t) for _, t in found))
                raise HarnessError(f"{member!r} is in teams {teams}; say which with "
                                   "--from TEAM")
            moving, was = found[0]
            if moving.team_id == target.id:
                raise HarnessError(f"{member!r} is already in team {target.name!r}")
            if s.scalar(select(MemberRow.id).where(MemberRow.team_id == target.id,
                                                   MemberRow.name == member)) is not None:
                raise HarnessError(f"team {target.name!r} already has a member {member!r}")
            moving.team_id = target.id
            record_audit(s, "member move", None, f"{member}: {was} -> {target.name}")
            s.flush()
            return self._teams(s, [target.id])[0]

    # ------------------------------------------------------------------ reading

    def authenticate(self, token: str | None) -> Team | None:
        """The team a token belongs to, or None (no detail about what was wrong); a removed
        team's token does not work."""
        digest = usable_token(token)
        if digest is None:
            return None
        with self.context.database.read() as s:
            rows = s.connection().execute(_TEAM_BY_TOKEN, {"digest": digest}).all()
        if not rows or not hmac.compare_digest(rows[0].token_hash, digest):
            return None
        return Team(id=rows[0].team_id, name=rows[0].name,
                    members=[r.member for r in rows if r.member is not None])

    def list_teams(self, *, removed: bool = False) -> list[Team]:
        """Every team with its members, by name (the removed ones only when ``removed``)."""
        with self.context.database.read() as s:
            q = select(TeamRow.id).order_by(TeamRow.name_key)
            if not removed:
                q = q.where(TeamRow.removed_at.is_(None))
            return self._teams(s, list(s.scalars(q)))

    def roster(self, *, removed: bool = False) -> list[dict]:
        """One row per member: ``team``, ``member``, ``section``, ``removed`` (a team
        without members has one row with ``member`` None), by team then member."""
        with self.context.database.read() as s:
            q = select(TeamRow.name, TeamRow.removed_at, MemberRow.name.label("member"),
                       MemberRow.section).outerjoin(
                MemberRow, MemberRow.team_id == TeamRow.id).order_by(TeamRow.name_key,
                                                                     MemberRow.id)
            if not removed:
                q = q.where(TeamRow.removed_at.is_(None))
            return [{"team": r.name, "member": r.member, "section": r.section,
                     "removed": r.removed_at is not None} for r in s.execute(q)]

    def team_named(self, name: str) -> Team:
        """The team called ``name``, case and surrounding spaces ignored (teacher tools and
        tests name teams; the rest pass the team dict on).

        Raises
        ------
        NotFoundError
            No team has this name.
        """
        with self.context.database.read() as s:
            return self._teams(s, [self._row(s, name, removed=True).id])[0]

    def _row(self, s, name: str, *, removed: bool = False) -> TeamRow:
        """The team row called ``name`` (a removed one only when ``removed``)."""
        row = s.scalar(select(TeamRow).where(TeamRow.name_key == name_key(str(name))))
        if row is None:
            known = ", ".join(repr(t) for t in s.scalars(
                select(TeamRow.name).where(TeamRow.removed_at.is_(None))
                .order_by(TeamRow.name_key).limit(20))) or "none yet"
            raise NotFoundError(f"no team {name!r}; the teams: {known}")
        if row.removed_at is not None and not removed:
            raise HarnessError(f"team {row.name!r} is removed; restore it first with "
                               f"`harness team restore {row.name!r}`")
        return row

    @staticmethod
    def _member_list(s, team_id: int) -> str:
        return ", ".join(repr(m) for m in s.scalars(select(MemberRow.name).where(
            MemberRow.team_id == team_id).order_by(MemberRow.id))) or "none"

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
            raise NotFoundError(f"no team {team_id!r} on this server")
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
