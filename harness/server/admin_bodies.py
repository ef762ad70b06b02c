"""The JSON bodies the teacher's API reads (``POST /api/admin/...``, DESIGN.md "HTTP API").

Apart from :mod:`harness.admin_schemas` (the answers), because these are built when
defined, not on first use: FastAPI wraps a body's model in an annotation that carries the
parameter's name as an alias, and a deferred model then makes pydantic warn, on the first
request and in /openapi.json, that the alias has no effect. Only the server defines them;
the teacher's client sends plain JSON, and a student command never imports them.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ..schemas import Schema


class RequestBody(Schema):
    """The base of a route's JSON body (see the module's docstring)."""

    model_config = ConfigDict(defer_build=False)


class RosterUpload(RequestBody):
    """The body of ``POST /api/admin/teams/import``: the roster CSV's text."""

    roster: str = Field(max_length=60_000,
                        description="The CSV text: header team,member[,section], one row "
                                    "per student.")
    filename: str = Field(default="roster.csv", max_length=200,
                          description="The file's name, for the messages.")


class NewTeam(RequestBody):
    """The body of ``POST /api/admin/teams``."""

    name: str = Field(description="The team's name (unique, case ignored).")
    members: list[str] = Field(default=[], description="Its members.")
    section: str | None = Field(default=None, description="The members' section.")


class TeamRef(RequestBody):
    """A body naming one team."""

    team: str = Field(description="The team's name (case ignored).")


class TeamRename(TeamRef):
    """The body of ``POST /api/admin/teams/rename``."""

    new_name: str = Field(description="Its new name.")


class MemberChange(TeamRef):
    """The body of ``POST /api/admin/teams/members/add`` and ``.../remove``."""

    member: str = Field(description="The member's name.")
    section: str | None = Field(default=None, description="Their section (add only).")


class MemberMove(RequestBody):
    """The body of ``POST /api/admin/teams/members/move``."""

    member: str = Field(description="The member's name.")
    to: str = Field(description="The team they join.")
    source: str | None = Field(default=None, alias="from",
                               description="The team they leave (only needed when the "
                                           "name is in several teams).")
