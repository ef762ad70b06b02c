"""The teacher's JSON API under /api/admin: thin routes over :class:`Harness`.

Every route needs a teacher token (``harness teacher token`` on the server machine); a
team token gets 403 and changes nothing, and a teacher token is not a team's, so it cannot
upload. What the teacher commands do on the server machine they do here, through the same
service methods, so the rules, limits and messages are the same; each action is audited
with the token that did it.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ..roster import parse_roster
from ..admin_schemas import (AdminSubmission, AuditEntry, Grades, ImportAnswer, NewToken,
                             ProbingTeam, Rescored, TeamInfo, UploadsPerDay)
from ..schemas import Board, Competition
from .admin_bodies import MemberChange, MemberMove, NewTeam, RosterUpload, TeamRef, TeamRename
from .api import BOARD_MAX, PAGE_MAX, _errors, _paginate
from .deps import HarnessDep, SlugDep, TeacherDep
from .uploads import read_upload

router = APIRouter(prefix="/api/admin", tags=["admin"])

_UNKNOWN = "No such competition."
_ADMIN = {401: "No valid teacher token: send `Authorization: Bearer TOKEN` with a token "
               "from `harness teacher token`.",
          403: "A team token: this part is the teacher's."}


_BAD_BODY = "The body or a query parameter does not fit (the problems are listed)."


def _answers(described: dict[int, str] | None = None, *, body: bool = False) -> dict:
    return _errors({**_ADMIN, **({422: _BAD_BODY} if body else {}), **(described or {})})


# --------------------------------------------------------------- competitions


def _state_route(action: str, summary: str, described: dict[int, str]):
    @router.post(f"/competitions/{{slug}}/{action}", summary=summary,
                 response_model=Competition, responses=_answers({404: _UNKNOWN, **described}),
                 name=f"admin_{action}")
    def change(teacher: TeacherDep, slug: SlugDep, h: HarnessDep) -> dict:
        getattr(h, action)(slug)
        return h.get_competition(slug)

    return change


_state_route("close", "Close: uploads are refused from now on", {})
_state_route("reopen", "Reopen a closed competition (before the reveal)",
             {403: "Already revealed."})
_state_route("reveal", "Reveal the private board to everyone (cannot be undone)",
             {403: "Still open (close it first, or wait for the deadline), or a team token."})


@router.post("/competitions/{slug}/rescore", summary="Score every submission again",
             response_model=Rescored, responses=_answers({404: _UNKNOWN}))
def rescore(teacher: TeacherDep, slug: SlugDep, h: HarnessDep) -> dict:
    return h.rescore(slug)


@router.get("/competitions/{slug}/submissions",
            summary="Every team's submissions, oldest first, with private scores",
            description="Filters: `team` (name, case ignored), `status` (scored | error), "
                        "`day` (YYYY-MM-DD, UTC). Paginated like the team listing.",
            response_model=list[AdminSubmission],
            responses=_answers({404: _UNKNOWN, 422: "A query parameter is not valid."}))
def submissions(teacher: TeacherDep, slug: SlugDep, request: Request, response: Response,
                h: HarnessDep,
                team: str | None = Query(None, max_length=200, description="Only this team."),
                status: Literal["scored", "error"] | None = Query(None,
                                                                   description="Only these."),
                day: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$",
                                        description="Only this day (UTC)."),
                limit: int = Query(PAGE_MAX, ge=1, le=10_000, description="Rows per page."),
                offset: int = Query(0, ge=0, le=2**31, description="Rows to skip.")
                ) -> list[dict]:
    rows = h.all_submissions(slug)
    if team is not None:
        wanted = h.team_named(team)["name"]
        rows = [r for r in rows if r["team"] == wanted and not r["baseline"]]
    if status is not None:
        rows = [r for r in rows if r["status"] == status]
    if day is not None:
        rows = [r for r in rows if r["submitted_at"].startswith(day)]
    _paginate(request, response, len(rows), limit, offset)
    return rows[offset:offset + limit]


@router.get("/competitions/{slug}/uploads-per-day", summary="Uploads per day (UTC)",
            response_model=list[UploadsPerDay], responses=_answers({404: _UNKNOWN}))
def uploads_per_day(teacher: TeacherDep, slug: SlugDep, h: HarnessDep) -> list[dict]:
    return h.uploads_per_day(slug)


@router.get("/competitions/{slug}/probing",
            summary="Teams whose uploads look like leaderboard probing",
            description="Teams with many consecutive uploads that differ in few rows.",
            response_model=list[ProbingTeam], responses=_answers({404: _UNKNOWN}))
def probing(teacher: TeacherDep, slug: SlugDep, h: HarnessDep) -> list[dict]:
    return h.probing_teams(slug)


@router.get("/competitions/{slug}/leaderboard", summary="Either board, before the reveal too",
            response_model=Board, response_model_exclude_unset=True,
            responses=_answers({404: _UNKNOWN, 422: "A query parameter is not valid."}))
def leaderboard(teacher: TeacherDep, slug: SlugDep, request: Request, response: Response,
                h: HarnessDep,
                board: Literal["public", "private"] = Query("public", description="Which."),
                limit: int = Query(BOARD_MAX, ge=1, le=BOARD_MAX, description="Rows per page."),
                offset: int = Query(0, ge=0, le=2**31, description="Rows to skip.")) -> dict:
    result = h.leaderboard(slug, board, teacher=True)
    total = len(result["rows"])
    _paginate(request, response, total, limit, offset)
    return {**result, "rows": result["rows"][offset:offset + limit], "total_rows": total,
            "offset": offset}


@router.get("/competitions/{slug}/grades", summary="The grade table, per team or member",
            response_model=Grades,
            responses=_answers({404: _UNKNOWN, 422: "A query parameter is not valid."}))
def grades(teacher: TeacherDep, slug: SlugDep, h: HarnessDep,
           by: Literal["team", "member"] = Query("team", description="One row per what.")
           ) -> dict:
    return h.grades(slug, by)


@router.post("/competitions/{slug}/baselines", status_code=201, response_model=AdminSubmission,
             summary="Add a prediction CSV as a named baseline row",
             description="Multipart: `name`, `file`, `message`.",
             responses=_answers({400: "The file cannot be scored, or no name.",
                                 404: _UNKNOWN, 413: "Over the competition's upload cap."}))
async def baseline(teacher: TeacherDep, slug: SlugDep, request: Request,
                   h: HarnessDep) -> dict:
    prepared = await run_in_threadpool(h.prepared, slug)
    upload = await read_upload(request, prepared.spec.rules.max_upload_bytes,
                               fields=("name",))
    name = upload.fields.get("name") or ""
    return await run_in_threadpool(h.add_baseline, slug, name, upload.data, upload.message)


# --------------------------------------------------------------- audit and teams


@router.get("/audit", summary="The audit log of teacher actions, oldest first",
            response_model=list[AuditEntry], responses=_answers(body=True))
def audit(teacher: TeacherDep, h: HarnessDep,
          competition: str | None = Query(None, max_length=200,
                                          description="Only this competition's (and the "
                                                      "roster changes).")) -> list[dict]:
    return h.audit_log(competition)


def _team_info(h, removed: bool) -> list[dict]:
    teams: dict[str, dict] = {}
    for r in h.roster(removed=removed):
        team = teams.setdefault(r["team"], {"name": r["team"], "members": [],
                                            "removed": r["removed"]})
        if r["member"] is not None:
            team["members"].append({"name": r["member"], "section": r["section"]})
    return list(teams.values())


def _one_team(h, name: str) -> dict:
    return next(t for t in _team_info(h, removed=True) if t["name"] == name)


@router.get("/teams", summary="The roster: teams, members, sections (never tokens)",
            response_model=list[TeamInfo], responses=_answers(body=True))
def teams(teacher: TeacherDep, h: HarnessDep,
          removed: bool = Query(False, description="Also the removed teams.")) -> list[dict]:
    return _team_info(h, removed)


@router.post("/teams", status_code=201, summary="Add a team; its token is shown this once",
             response_model=NewToken, responses=_answers({400: "A bad or taken name."}, body=True))
def add_team(teacher: TeacherDep, body: NewTeam, h: HarnessDep) -> dict:
    team, token = h.add_team(body.name, body.members, body.section)
    return {"team": team["name"], "members": team["members"], "token": token}


@router.post("/teams/import", summary="Import a roster CSV (team,member[,section])",
             response_model=ImportAnswer,
             responses=_answers({400: "The roster's header or a row is not valid."}, body=True))
def import_roster(teacher: TeacherDep, body: RosterUpload, h: HarnessDep) -> dict:
    return h.import_roster(parse_roster(body.roster, body.filename), body.filename)


@router.post("/teams/rename", summary="Rename a team (submissions and token stay)",
             response_model=TeamInfo,
             responses=_answers({400: "The new name is taken.", 404: "No such team."}, body=True))
def rename_team(teacher: TeacherDep, body: TeamRename, h: HarnessDep) -> dict:
    return _one_team(h, h.rename_team(body.team, body.new_name)["name"])


@router.post("/teams/remove", summary="Take a team off the boards and grades (restorable)",
             response_model=TeamInfo, responses=_answers({404: "No such team."}, body=True))
def remove_team(teacher: TeacherDep, body: TeamRef, h: HarnessDep) -> dict:
    return _one_team(h, h.remove_team(body.team)["name"])


@router.post("/teams/restore", summary="Bring a removed team back",
             response_model=TeamInfo,
             responses=_answers({400: "Not removed.", 404: "No such team."}, body=True))
def restore_team(teacher: TeacherDep, body: TeamRef, h: HarnessDep) -> dict:
    return _one_team(h, h.restore_team(body.team)["name"])


@router.post("/teams/token", summary="A new token for a team; the old one fails at once",
             response_model=NewToken, responses=_answers({404: "No such team."}, body=True))
def reissue_token(teacher: TeacherDep, body: TeamRef, h: HarnessDep) -> dict:
    team, token = h.reissue_token(body.team)
    return {"team": team["name"], "members": team["members"], "token": token}


@router.post("/teams/members/add", summary="Add a member to a team", response_model=TeamInfo,
             responses=_answers({400: "Already in the team.", 404: "No such team."}, body=True))
def add_member(teacher: TeacherDep, body: MemberChange, h: HarnessDep) -> dict:
    return _one_team(h, h.add_member(body.team, body.member, body.section)["name"])


@router.post("/teams/members/remove", summary="Take a member out of a team",
             response_model=TeamInfo, responses=_answers({404: "No such team or member."}, body=True))
def remove_member(teacher: TeacherDep, body: MemberChange, h: HarnessDep) -> dict:
    return _one_team(h, h.remove_member(body.team, body.member)["name"])


@router.post("/teams/members/move", summary="Move a member to another team",
             response_model=TeamInfo,
             responses=_answers({400: "Ambiguous (say `from`) or already there.",
                                 404: "No such team or member."}, body=True))
def move_member(teacher: TeacherDep, body: MemberMove, h: HarnessDep) -> dict:
    return _one_team(h, h.move_member(body.member, body.to, body.source)["name"])


UPLOAD_ROUTES = (baseline,)     # the routes that read a file: the upload body cap applies