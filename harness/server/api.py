"""The JSON API under /api (DESIGN.md "HTTP API"): thin routes over :class:`Harness`.

Every route calls the application layer and nothing else; a
:class:`harness.errors.HarnessError` becomes ``{"detail": message}`` with the status of
:func:`harness.errors.http_status`. Two things happen here because only the HTTP layer
can do them: the upload size cap is enforced while the body streams in (413 before the
whole body is read), and repeated bad tokens from one address are slowed down.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..errors import (AuthError, HarnessError, NotFoundError, SubmissionError, TooLargeError,
                      http_status)
from ..home import RELEASED_FILES
from ..spec import SLUG_RE
from .limits import MULTIPART_SLACK

router = APIRouter(prefix="/api", tags=["api"])
bearer = HTTPBearer(auto_error=False, description="The team token from your teacher.")

# the same words for a missing and a wrong token: the answer must not say which part failed
TOKEN_REQUIRED = ("a valid team token is required: send `Authorization: Bearer TOKEN` "
                  "(students: `harness login --server URL --token TOKEN`)")
PAGE_DEFAULT, PAGE_MAX = 100, 500        # a team's submissions per page
BOARD_MAX = 1000                         # board rows per page


class FailureThrottle:
    """Slows down one client address that keeps sending bad tokens.

    Within a sliding ``window`` (seconds) the first ``free`` failures cost nothing, each
    further one is answered after ``delay`` seconds, and from ``block`` failures on every
    request from that address that carries a token gets 429 until the window has passed
    (checked before the token, so a blocked client cannot go on guessing). Tokens have
    128 random bits; this is defence in depth against scripts, kept per process.
    """

    def __init__(self, free: int = 5, block: int = 30, window: float = 60.0,
                 delay: float = 0.25, max_clients: int = 10_000):
        self.free, self.block, self.window, self.delay = free, block, window, delay
        self.max_clients = max_clients
        self._failures: dict[str, deque] = {}

    def _recent(self, client: str, now: float) -> deque:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 when it is not blocked)."""
        now = time.monotonic()
        times = self._recent(client, now)
        if len(times) < self.block:
            return 0.0
        return max(times[len(times) - self.block] + self.window - now, 0.0)

    def failed(self, client: str) -> float:
        """Record one bad token from ``client``; returns the delay to answer it with."""
        now = time.monotonic()
        if len(self._failures) >= self.max_clients:   # forget the longest-quiet clients first
            for key in sorted(self._failures, key=lambda k: self._failures[k][-1]
                              if self._failures[k] else 0.0)[:1000]:
                del self._failures[key]
        times = self._recent(client, now)
        times.append(now)
        self._failures[client] = times
        return self.delay if len(times) > self.free else 0.0


def _harness(request: Request):
    return request.app.state.harness


async def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None):
    throttle: FailureThrottle = request.app.state.throttle
    client = request.client.host if request.client else "?"
    wait = throttle.retry_after(client)
    if wait:
        raise HTTPException(429, f"too many bad tokens from this address; try again in "
                                 f"{wait:.0f} s", headers={"Retry-After": str(int(wait) + 1)})
    if credentials is None or not credentials.credentials:
        raise AuthError(TOKEN_REQUIRED)
    team = await run_in_threadpool(_harness(request).authenticate, credentials.credentials)
    if team is None:
        await asyncio.sleep(throttle.failed(client))
        raise AuthError(TOKEN_REQUIRED)
    return team


async def require_team(request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
    """The caller's team from ``Authorization: Bearer TOKEN``; 401 when missing or wrong."""
    return await _authenticate(request, credentials)


async def optional_team(request: Request,
                        credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                        ) -> dict | None:
    """The caller's team when a token is sent (401 if it is wrong), else None."""
    if credentials is None and "authorization" not in request.headers:
        return None
    return await _authenticate(request, credentials)


def _slug(slug: str) -> str:
    if not SLUG_RE.fullmatch(slug):      # fullmatch: `$` would let "digits\n" through
        raise NotFoundError(f"no competition {slug!r}")
    return slug


def _hide_private(harness, slug: str, rows):
    """Blank private scores before the reveal (the service does too; this is the backstop)."""
    if harness.state(slug) == "revealed":
        return rows
    for row in ([rows] if isinstance(rows, dict) else rows):
        if "private_score" in row:
            row["private_score"] = None
    return rows


class Selection(BaseModel):
    """The body of ``PUT .../selection``."""

    submission_ids: list[int] = Field(
        description="Your own scored, on-time submission ids (at most final_selections); "
                    "replaces the current selection.")


@router.get("/competitions", summary="List the competitions")
def list_competitions(request: Request, team: dict = Depends(require_team)) -> list[dict]:
    return _harness(request).list_competitions()


@router.get("/competitions/{slug}", summary="One competition, with its rules")
def get_competition(slug: str, request: Request, team: dict = Depends(require_team)) -> dict:
    return _harness(request).get_competition(_slug(slug))


@router.get("/competitions/{slug}/files/{name}", summary="Download a released file",
            response_class=FileResponse,
            description="Only " + ", ".join(RELEASED_FILES) + "; anything else is 404.")
def download(slug: str, name: str, request: Request, team: dict = Depends(require_team)):
    if name not in RELEASED_FILES:     # checked here too, before the service sees the name
        raise NotFoundError(f"no released file {name!r}; released: {', '.join(RELEASED_FILES)}")
    path = _harness(request).released_file(_slug(slug), name)
    return FileResponse(path, media_type="text/csv", filename=name)


_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "The prediction CSV (id column + target)."},
                   "message": {"type": "string", "description": "What you tried."}}}}}}}


async def _read_form(request: Request, cap: int):
    """The multipart form, refusing with 413 as soon as the body passes the cap.

    Content-Length is checked before anything is read; the bytes are counted while they
    stream in too, since a chunked upload has no length and a header can lie.
    """
    limit = cap + MULTIPART_SLACK
    too_large = TooLargeError(f"the upload is over this competition's limit of "
                              f"{cap / 2**20:g} MB (max_upload_mb); submit the plain CSV with "
                              "only the id and target columns")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    seen = 0

    async def counting_receive():
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large
        return message

    form = await Request(request.scope, counting_receive).form(max_files=1, max_fields=4)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        await form.close()
        raise SubmissionError("no file in the upload: send multipart/form-data with the CSV "
                              "in the field `file` (and an optional `message`), e.g. "
                              "`harness submit SLUG -f predictions.csv -m \"first try\"`")
    data = await upload.read()
    await form.close()
    if len(data) > cap:
        raise too_large
    message = form.get("message")
    return upload.filename or "submission.csv", data, message if isinstance(message, str) else ""


@router.post("/competitions/{slug}/submissions", status_code=201, openapi_extra=_UPLOAD_BODY,
             summary="Upload a prediction CSV; scored at once",
             description="Answers 201 with the submission (public score only) and "
                         "`remaining_today` (null when there is no daily limit).")
async def submit(slug: str, request: Request, team: dict = Depends(require_team)):
    h = _harness(request)
    prepared = await run_in_threadpool(h.prepared, _slug(slug))
    filename, data, message = await _read_form(request, prepared.spec.rules.max_upload_bytes)
    result = await run_in_threadpool(h.submit, slug, team, data, message, filename)
    result = await run_in_threadpool(_hide_private, h, slug, result)
    return JSONResponse(jsonable_encoder(result), status_code=201)


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
                        "(rel=next) where the next page is.")
def list_submissions(slug: str, request: Request, response: Response,
                     limit: int = Query(PAGE_DEFAULT, ge=1, le=PAGE_MAX),
                     offset: int = Query(0, ge=0, le=2**31),
                     team: dict = Depends(require_team)) -> list[dict]:
    h = _harness(request)
    rows, total = h.submissions_page(_slug(slug), team, limit=limit, offset=offset)
    _paginate(request, response, total, limit, offset)
    return _hide_private(h, slug, rows)


@router.put("/competitions/{slug}/selection", summary="Replace your final selection",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": Selection.model_json_schema()}}}})
async def select(slug: str, request: Request, team: dict = Depends(require_team)) -> list[dict]:
    # the body is read here, after the token (a declared body parameter would be read and
    # parsed before it); the body-size middleware caps what can be read
    try:
        body = Selection.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])}
                                      for error in exc.errors(include_url=False,
                                                              include_input=False)]) from None
    h = _harness(request)
    return await run_in_threadpool(
        lambda: _hide_private(h, slug, h.select(_slug(slug), team, body.submission_ids)))


@router.get("/competitions/{slug}/leaderboard", summary="The public or the private leaderboard",
            description="The public board needs no token. The private board needs one and is "
                        "403 until the teacher reveals it. With a token the answer names "
                        "`your_team`. Paginated: `limit` rows (at most 1000, the default) "
                        "from `offset`; `total_rows` says how many there are.")
def leaderboard(slug: str, request: Request, response: Response,
                board: Literal["public", "private"] = "public",
                limit: int = Query(BOARD_MAX, ge=1, le=BOARD_MAX),
                offset: int = Query(0, ge=0, le=2**31),
                team: dict | None = Depends(optional_team)) -> dict:
    if board == "private" and team is None:
        raise AuthError(TOKEN_REQUIRED)
    result = _harness(request).leaderboard(_slug(slug), board)
    total = len(result["rows"])
    result = {**result, "rows": result["rows"][offset:offset + limit], "total_rows": total,
              "offset": offset}
    _paginate(request, response, total, limit, offset)
    if team is not None:
        result["your_team"] = team["name"]
    return result


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


def install(app: FastAPI) -> None:
    """Add the /api routes and the error -> status mappings to ``app``."""
    app.include_router(router)
    app.add_exception_handler(HarnessError, _harness_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
