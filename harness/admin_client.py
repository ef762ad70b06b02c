"""The teacher's client: the /api/admin routes, with the method names of the service.

:class:`AdminClient` answers the teacher commands' calls with the same names, arguments and
shapes as :class:`harness.service.Harness`, so a command runs the same code whether it acts
on the home (on the server machine) or over HTTP (from the teacher's laptop).
"""

from __future__ import annotations

from pydantic import TypeAdapter

from .client import Client, LazyAdapter
from .errors import ForbiddenError
from .admin_schemas import (AdminSubmission, AuditEntry, Grades, ImportAnswer, NewToken,
                            ProbingTeam, Rescored, TeamInfo, UploadsPerDay)
from .schemas import Competition

COMPETITION = LazyAdapter(Competition)
SUBMISSIONS = LazyAdapter(list[AdminSubmission])
SUBMISSION = LazyAdapter(AdminSubmission)
GRADES = LazyAdapter(Grades)
AUDIT = LazyAdapter(list[AuditEntry])
TEAMS = LazyAdapter(list[TeamInfo])
TEAM = LazyAdapter(TeamInfo)
TOKEN = LazyAdapter(NewToken)
IMPORTED = LazyAdapter(ImportAnswer)
RESCORED = LazyAdapter(Rescored)
PER_DAY = LazyAdapter(list[UploadsPerDay])
PROBING = LazyAdapter(list[ProbingTeam])
PAGE = 10_000                     # the admin listing's largest page


def _team(info: dict) -> dict:
    """A :class:`TeamInfo` answer in the service's team shape (names of members)."""
    return {"name": info["name"], "members": [m["name"] for m in info["members"]],
            "removed": info["removed"]}


class AdminClient(Client):
    """A teacher's connection to a harness server (a teacher token, not a team's).

    Parameters
    ----------
    server, token, transport
        As for :class:`harness.client.Client`; ``token`` is a teacher token from
        ``harness teacher token``.
    """

    # ``close`` closes a competition here, as in the service; this closes the connection
    def close_connections(self) -> None:
        self.disconnect()

    def _post(self, path: str, model: TypeAdapter, **kwargs):
        return self._answer(self.request("POST", f"/api/admin{path}", **kwargs), model)

    def _get(self, path: str, model: TypeAdapter, **kwargs):
        return self._answer(self.request("GET", f"/api/admin{path}", **kwargs), model)

    def is_teacher(self) -> bool:
        """Whether the token is a teacher token (False for a team token)."""
        try:
            self.request("GET", "/api/admin/teams", params={"removed": False})
        except ForbiddenError:
            return False
        return True

    # ------------------------------------------------------------------ competitions

    def close(self, slug: str) -> dict:
        return self._post(f"/competitions/{slug}/close", COMPETITION)

    def reopen(self, slug: str) -> dict:
        return self._post(f"/competitions/{slug}/reopen", COMPETITION)

    def reveal(self, slug: str) -> dict:
        return self._post(f"/competitions/{slug}/reveal", COMPETITION)

    def state(self, slug: str) -> str:
        return self.competition(slug)["state"]

    def rescore(self, slug: str) -> dict:
        return self._post(f"/competitions/{slug}/rescore", RESCORED)

    def all_submissions(self, slug: str, *, team: str | None = None,
                        status: str | None = None, day: str | None = None) -> list[dict]:
        """Every team's submissions, oldest first (all pages)."""
        params = {k: v for k, v in (("team", team), ("status", status), ("day", day)) if v}
        rows, offset = [], 0
        while True:
            page = self._get(f"/competitions/{slug}/submissions", SUBMISSIONS,
                             params={**params, "limit": PAGE, "offset": offset})
            rows += page
            offset += len(page)
            if len(page) < PAGE:
                return rows

    def uploads_per_day(self, slug: str) -> list[dict]:
        return self._get(f"/competitions/{slug}/uploads-per-day", PER_DAY)

    def probing_teams(self, slug: str) -> list[dict]:
        return self._get(f"/competitions/{slug}/probing", PROBING)

    def leaderboard(self, slug: str, board: str = "public", *, teacher: bool = True) -> dict:
        """Either board, before the reveal too (all pages)."""
        return self._pages(f"/api/admin/competitions/{slug}/leaderboard", board)

    def grades(self, slug: str, by: str = "team") -> dict:
        return self._get(f"/competitions/{slug}/grades", GRADES, params={"by": by})

    def add_baseline(self, slug: str, name: str, data: bytes, message: str = "") -> dict:
        return self._post(f"/competitions/{slug}/baselines", SUBMISSION,
                          data={"name": name, "message": message},
                          files={"file": (f"{name}.csv", data, "text/csv")})

    def audit_log(self, slug: str | None = None) -> list[dict]:
        return self._get("/audit", AUDIT, params={"competition": slug} if slug else {})

    # ------------------------------------------------------------------ teams

    def roster(self, *, removed: bool = False) -> list[dict]:
        """One row per member (team, member, section, removed), as the service's."""
        rows = []
        for team in self._get("/teams", TEAMS, params={"removed": removed}):
            rows += [{"team": team["name"], "member": m["name"], "section": m["section"],
                      "removed": team["removed"]} for m in team["members"]] or \
                [{"team": team["name"], "member": None, "section": None,
                  "removed": team["removed"]}]
        return rows

    def add_team(self, name: str, members=(), section: str | None = None
                 ) -> tuple[dict, str]:
        answer = self._post("/teams", TOKEN, json={"name": name, "members": list(members),
                                                   "section": section})
        return {"name": answer["team"], "members": answer["members"]}, answer["token"]

    def import_roster_text(self, text: str, filename: str) -> dict:
        """Import a roster CSV's text; the new teams' tokens come back (shown once)."""
        return self._post("/teams/import", IMPORTED, json={"roster": text,
                                                           "filename": filename})

    def reissue_token(self, name: str) -> tuple[dict, str]:
        answer = self._post("/teams/token", TOKEN, json={"team": name})
        return {"name": answer["team"], "members": answer["members"]}, answer["token"]

    def rename_team(self, old: str, new: str) -> dict:
        return _team(self._post("/teams/rename", TEAM, json={"team": old, "new_name": new}))

    def remove_team(self, name: str) -> dict:
        return _team(self._post("/teams/remove", TEAM, json={"team": name}))

    def restore_team(self, name: str) -> dict:
        return _team(self._post("/teams/restore", TEAM, json={"team": name}))

    def add_member(self, team: str, member: str, section: str | None = None) -> dict:
        return _team(self._post("/teams/members/add", TEAM,
                                json={"team": team, "member": member, "section": section}))

    def remove_member(self, team: str, member: str) -> dict:
        return _team(self._post("/teams/members/remove", TEAM,
                                json={"team": team, "member": member}))

    def move_member(self, member: str, to: str, source: str | None = None) -> dict:
        return _team(self._post("/teams/members/move", TEAM,
                                json={"member": member, "to": to, "from": source}))
