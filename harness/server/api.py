"""The JSON API under /api (DESIGN.md "HTTP API"): thin routes over :class:`Harness`.

Every route calls the application layer and nothing else; a
:class:`harness.errors.HarnessError` becomes ``{"detail": message}`` with the status of
:func:`harness.errors.http_status`. Each route declares its answer's model
(:mod:`harness.schemas`) and every status it can answer with that status's error model,
so /openapi.json documents the whole API. The team, the harness and the slug come from
the dependencies in :mod:`harness.server.deps`; uploads are read by
:mod:`harness.server.uploads` under their competition's size cap.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ..errors import AuthError, HarnessError, NotFoundError, http_status
from ..home import IMAGE_ZIPS, RELEASED_FILES, RELEASED_NAMES, released_media_type
from ..schemas import (Board, Competition, CompetitionSummary, ErrorDetail, Selection,
                       Submission, UploadAnswer, UploadForm, ValidationErrorDetail)
from .deps import (TOKEN_REQUIRED, HarnessDep, OptionalTeamDep, ReaderDep, SlugDep, TeamDep,
                   UploaderDep)
from .uploads import read_upload

router = APIRouter(prefix="/api", tags=["api"])

PAGE_DEFAULT, PAGE_MAX = 100, 500        # a team's submissions per page
BOARD_MAX = 1000                         # board rows per page

# --------------------------------------------------------------- what each status means

_RETRY_AFTER = {"Retry-After": {"description": "Seconds until a new try can succeed (sent "
                                               "when that is known).",
                                "schema": {"type": "integer", "minimum": 1}}}
_PAGE_HEADERS = {
    "X-Total-Count": {"description": "How many rows the whole listing has.",
                      "schema": {"type": "integer", "minimum": 0}},
    "Link": {"description": "Where the next page is: `<URL>; rel=\"next\"` (absent on the "
                            "last page).", "schema": {"type": "string"}}}

_ETAG = {"description": "The version of this page of the board (for this caller): send it "
                        "back as `If-None-Match` to get 304 while the board is unchanged.",
         "schema": {"type": "string"}}

# every /api route can answer these: the body-size middleware (400, 413) runs before any
# route, and the token check (401, 429) before the route's own work
_COMMON = {
    400: "The request has both Transfer-Encoding and Content-Length.",
    401: "No valid token: send `Authorization: Bearer TOKEN` (a team's; the routes that "
         "only read the competitions and their files also take the teacher's).",
    413: "The request body is over this route's limit.",
    429: "Too many bad tokens from this address; wait `Retry-After` seconds.",
}
_HEADERS = {401: {"WWW-Authenticate": {"description": "`Bearer`.",
                                       "schema": {"type": "string"}}},
            429: _RETRY_AFTER}


def _errors(described: dict[int, str] | None = None) -> dict:
    """The ``responses=`` of a route: its own statuses (status -> why) and the common
    ones, each with its error model, description and headers."""
    statuses = {**_COMMON, **(described or {})}
    return {status: {"model": ValidationErrorDetail if status == 422 else ErrorDetail,
                     "description": why,
                     **({"headers": _HEADERS[status]} if status in _HEADERS else {})}
            for status, why in sorted(statuses.items())}


_UNKNOWN = "No such competition (or not prepared)."
_BAD_QUERY = "A query parameter is not valid (the problems are listed, never the input)."


def _body(schema: dict, media_type: str) -> dict:
    """The request body's documentation, for routes that read their body themselves."""
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}


# --------------------------------------------------------------- routes


@router.get("/competitions", summary="List the competitions",
            response_model=list[CompetitionSummary], responses=_errors(),
            response_description="Every competition on this server.")
def list_competitions(reader: ReaderDep, h: HarnessDep) -> list[dict]:
    return h.list_competitions()


@router.get("/competitions/{slug}", summary="One competition, with its rules",
            response_model=Competition, responses=_errors({404: _UNKNOWN}),
            response_description="The competition.")
def get_competition(reader: ReaderDep, slug: SlugDep, h: HarnessDep) -> dict:
    return h.get_competition(slug)


@router.get("/competitions/{slug}/files/{name}", summary="Download a released file",
            response_class=FileResponse,
            description="Only " + ", ".join(RELEASED_FILES) + ", and for an image "
                        "competition (its `files` list them) " + ", ".join(IMAGE_ZIPS)
                        + " (each a zip of one part's PNG images, entries `PART/NAME`, sent "
                        "as application/zip); anything else is 404.",
            responses={200: {"description": "The file: a CSV, or a zip of images.",
                             "content": {kind: {"schema": {"type": "string", "format": "binary"}}
                                         for kind in ("text/csv", "application/zip")}},
                **_errors({404: _UNKNOWN + " Or no such released file."})})
def download(reader: ReaderDep, slug: SlugDep,
             name: Annotated[str, Path(description="The released file's name.")],
             h: HarnessDep):
    if name not in RELEASED_NAMES:     # checked here too, before the service sees the name
        raise NotFoundError(f"no released file {name!r}; released: {', '.join(RELEASED_FILES)}"
                            f" (and {', '.join(IMAGE_ZIPS)} for an image competition)")
    return FileResponse(h.released_file(slug, name), media_type=released_media_type(name),
                        filename=name)


@router.post("/competitions/{slug}/submissions", status_code=201, response_model=UploadAnswer,
             response_description="The scored submission.",
             openapi_extra=_body(UploadForm.model_json_schema(), "multipart/form-data"),
             summary="Upload a prediction CSV; scored at once",
             description="Answers 201 with the submission (public score only) and "
                         "`remaining_today` (null when there is no daily limit).",
             responses=_errors({
                 400: "The file cannot be scored (it is kept in your list as an error and "
                      "counts against no limit), the form holds no file, or the request has "
                      "both Transfer-Encoding and Content-Length.",
                 403: "The competition is closed or past its deadline.",
                 404: _UNKNOWN,
                 413: "The upload is over the competition's max_upload_mb (or over the "
                      "server's limit for any competition).",
                 429: "A submission limit is reached (daily: `Retry-After` says when it "
                      "resets; total: never), too many refused files in 10 minutes, or too "
                      "many bad tokens from this address.",
                 507: "The server's disk is full: nothing was stored or counted; try later."}))
async def submit(checked: UploaderDep, request: Request, h: HarnessDep) -> dict:
    # the token and the upload's limits are checked before the form is read (a declared
    # form parameter would be read first); the file is then read under the competition's cap
    upload = await read_upload(request, checked.max_bytes)
    async with _scoring_slot():
        result = await run_in_threadpool(h.submit_checked, checked, upload.data,
                                         upload.message, upload.filename)
    if result["private_score"] is None:
        return result         # nothing to hide: the backstop needs no look at the state
    return await run_in_threadpool(_hide_private, h, checked.slug, result)


# Uploads scored at once in one server process; the others wait their turn in order of
# arrival. Dozens of threads scoring at once share one interpreter lock unfairly: the
# throughput drops and a few uploads of a burst starve for seconds. Two kept a 2-core
# server busiest (32 clients back to back: 1, 2, 4, 8 and 32 slots tried, on SQLite and
# on PostgreSQL with 2 workers).
SCORING_SLOTS = 2
_scoring_slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # loop -> semaphore


def _scoring_slot() -> asyncio.Semaphore:
    """This event loop's semaphore of :data:`SCORING_SLOTS` (a semaphore belongs to one
    loop, and a test's client may run the app in a loop of its own)."""
    loop = asyncio.get_running_loop()
    slots = _scoring_slots.get(loop)
    if slots is None:
        slots = _scoring_slots[loop] = asyncio.Semaphore(SCORING_SLOTS)
    return slots


def _paginate(request: Request, response: Response, total: int, limit: int,
              offset: int) -> None:
    """Say the listing's size and where the next page is (``X-Total-Count``, ``Link``)."""
    response.headers["X-Total-Count"] = str(total)
    if offset + limit < total:
        nxt = request.url.include_query_params(limit=limit, offset=offset + limit)
        response.headers["Link"] = f'<{nxt.path}?{nxt.query}>; rel="next"'


@router.get("/competitions/{slug}/submissions", summary="Your team's submissions, newest first",
            description="Paginated: `limit` (1-500, default 100) rows from `offset`; the "
                        "`X-Total-Count` header says how many there are and `Link` "
                        "(rel=next) where the next page is.",
            response_model=list[Submission], response_description="One page, newest first.",
            responses={200: {"headers": _PAGE_HEADERS},
                       **_errors({404: _UNKNOWN, 422: _BAD_QUERY})})
def list_submissions(team: TeamDep, slug: SlugDep, request: Request, response: Response,
                     h: HarnessDep,
                     limit: int = Query(PAGE_DEFAULT, ge=1, le=PAGE_MAX,
                                        description="Rows per page."),
                     offset: int = Query(0, ge=0, le=2**31,
                                         description="Rows to skip.")) -> list[dict]:
    rows, total = h.submissions_page(slug, team.model_dump(), limit=limit, offset=offset)
    _paginate(request, response, total, limit, offset)
    return _hide_private(h, slug, rows)


@router.put("/competitions/{slug}/selection", summary="Replace your final selection",
            response_model=list[Submission], response_description="The selected submissions.",
            openapi_extra=_body(Selection.model_json_schema(), "application/json"),
            responses=_errors({
                400: "More ids than final_selections, one that is not scored and on "
                     "time, or both Transfer-Encoding and Content-Length were sent.",
                403: "The competition is revealed: the selection is fixed.",
                404: _UNKNOWN + " Or an id that is not one of your submissions.",
                422: "The body is not `{\"submission_ids\": [integers]}`."}))
async def select(team: TeamDep, slug: SlugDep, request: Request, h: HarnessDep) -> list[dict]:
    # the body is read here, after the token (a declared body parameter would be read and
    # parsed before it); the body-size middleware caps what can be read
    try:
        body = Selection.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])}
                                      for error in exc.errors(include_url=False,
                                                              include_input=False)]) from None
    return await run_in_threadpool(
        lambda: _hide_private(h, slug, h.select(slug, team.model_dump(), body.submission_ids)))


@router.get("/competitions/{slug}/leaderboard", summary="The public or the private leaderboard",
            description="The public board needs no token. The private board needs one and is "
                        "403 until the teacher reveals it. With a token the answer names "
                        "`your_team`. Paginated: `limit` rows (at most 1000, the default) "
                        "from `offset`; `total_rows` (and the `X-Total-Count` header) says "
                        "how many there are. Each answer has an `ETag`; sent back as "
                        "`If-None-Match`, it gets 304 with no body while the board (this "
                        "page of it, for this caller) has not changed.",
            response_model=Board, response_model_exclude_unset=True,
            response_description="One page of the board, best first.",
            responses={200: {"headers": {**_PAGE_HEADERS, "ETag": _ETAG}},
                       **_errors({401: "The private board without a token, or a wrong token.",
                                  403: "The private board before the reveal.",
                                  404: _UNKNOWN, 422: _BAD_QUERY})})
def leaderboard(team: OptionalTeamDep, slug: SlugDep, request: Request, response: Response,
                h: HarnessDep,
                board: Literal["public", "private"] = Query(
                    "public", description="Which board."),
                limit: int = Query(BOARD_MAX, ge=1, le=BOARD_MAX, description="Rows per page."),
                offset: int = Query(0, ge=0, le=2**31, description="Rows to skip.")):
    if board == "private" and team is None:
        raise AuthError(TOKEN_REQUIRED)
    # tagged before the board is drawn: an upload in between gets the next request a new
    # board, never an old board under the new tag
    etag = _board_etag(h.boards.version(slug, board), limit, offset, team)
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"     # may be kept, but asked about first
    result = h.leaderboard(slug, board)
    total = len(result["rows"])
    result = {**result, "rows": result["rows"][offset:offset + limit], "total_rows": total,
              "offset": offset}
    _paginate(request, response, total, limit, offset)
    if team is not None:
        result["your_team"] = team.name
    return result


def _board_etag(version: str, limit: int, offset: int, team) -> str:
    """The ``ETag`` of one page of a board: the board's version, the page and who asks
    (``your_team`` is part of the answer)."""
    who = "" if team is None else f"team {team.id}"
    digest = hashlib.blake2b(f"{version}|{limit}|{offset}|{who}".encode(), digest_size=12)
    return f'"{digest.hexdigest()}"'


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or is ``*``); weak tags (``W/"..."``)
    compare by their value, as RFC 9110 says for this header."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _hide_private(harness, slug: str, rows):
    """Blank private scores before the reveal (the service does too; this is the backstop)."""
    if harness.state(slug) == "revealed":
        return rows
    for row in ([rows] if isinstance(rows, dict) else rows):
        if "private_score" in row:
            row["private_score"] = None
    return rows


# --------------------------------------------------------------- errors


async def _harness_error(request: Request, exc: HarnessError) -> JSONResponse:
    status = http_status(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if getattr(exc, "retry_after", None):
        headers["Retry-After"] = str(int(exc.retry_after))
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers or None)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with what was wrong where, never the input itself: echoing it back would repeat
    up to a body's worth of bytes, and bytes that are not UTF-8 cannot be encoded."""
    errors = [{k: v for k, v in error.items() if k in ("type", "loc", "msg")}
              for error in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def _openapi(app: FastAPI):
    """/openapi.json without the 422 FastAPI adds to every route with a parameter: a
    route here declares its own 422 (with :class:`ValidationErrorDetail`) where one can
    happen, and a plain string path parameter cannot fail."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            auto = {"$ref": "#/components/schemas/HTTPValidationError"}
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    answers = operation.get("responses", {})
                    if answers.get("422", {}).get("content", {}).get(
                            "application/json", {}).get("schema") == auto:
                        del answers["422"]
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema

    return openapi


def install(app: FastAPI) -> None:
    """Add the /api routes, the error -> status mappings and the OpenAPI cleanup."""
    app.include_router(router)
    app.add_exception_handler(HarnessError, _harness_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.openapi = _openapi(app)
