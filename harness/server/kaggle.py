"""The part of Kaggle's API that the real ``kaggle`` command (2.x) uses for competitions.

Students practise with the tool they will use on Kaggle: ``kaggle competitions list``,
``files``, ``download``, ``submit``, ``submissions`` and ``leaderboard`` work against the
class server (``harness kaggle setup`` prints the settings). The 2.x client speaks JSON
RPC: every call is ``POST .../v1/<package>.<Service>/<Method>`` with a camelCase body, to
``https://api.kaggle.com/v1/...`` or, with ``KAGGLE_API_ENVIRONMENT=LOCALHOST``,
``http://localhost/api/v1/...``; it has no setting for another host. So the routes answer
under both ``/v1`` and ``/api/v1``, and :class:`AbsoluteForm` lets the server stand in as
the client's HTTP proxy (``HTTP_PROXY``), which sends ``POST http://localhost/api/v1/...``.

Every route is thin: the same :class:`harness.service.Harness` methods, behind the same
token check and bad-token throttle (:mod:`harness.server.deps`), as the /api routes, so the
rules, limits, refusals and secrecy are the native API's and only the shapes differ. A
refusal is ``{"code": N, "message": "..."}`` with the native API's words (the client prints
``message``). The token comes as ``Authorization: Bearer TOKEN`` (the client's token login)
or as HTTP Basic ``NAME:TOKEN`` (its key login).

Downloads answer 303 to a link on the same host that ends in the file's name (or in
``SLUG.zip`` for every file, zipped as it streams), since the client names the saved file
after the link. Uploads come in three steps: ``StartSubmissionUpload`` answers an absolute
``createUrl``, the client PUTs the bytes there with no token of its own, and
``CreateSubmission`` scores them with :meth:`Harness.submit`. Both kinds of link carry
their own authorisation: claims signed with HMAC-SHA256 and good for :data:`LINK_TTL`
seconds. The key is a file in the home, made once (mode 0600), so the workers of
``harness serve --workers N`` accept each other's links; PUT bytes wait in the home too,
for whichever worker gets the ``CreateSubmission``.

These routes are not in /openapi.json: the documented API is /api, and these shapes are
Kaggle's (kagglesdk's ``competitions.CompetitionApiService``).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import errno
import functools
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..csvsafe import csv_text
from ..errors import (AuthError, ForbiddenError, HarnessError, StorageError, TooLargeError,
                      http_status)
from ..home import private_dir, private_file
from ..schemas import Team
from .deps import HarnessDep, require_reader, require_team, valid_slug

LINK_TTL = 15 * 60             # seconds a download or upload link works after it is given
PAGE_DEFAULT, PAGE_MAX = 20, 500      # rows per page: the client's default, the API's maximum
BOARD_MAX = 1000
FILE_NAME_MAX = 255
CHUNK = 1 << 20
SERVICE = "competitions.CompetitionApiService"
PREFIXES = ("/v1", "/api/v1")         # Kaggle's own host, and LOCALHOST's
DOWNLOADS = "/api/v1/kaggle-downloads"
UPLOADS = "/api/v1/kaggle-uploads"
STATUS = {"scored": "COMPLETE", "error": "ERROR"}        # kagglesdk's SubmissionStatus names


def bad_link() -> ForbiddenError:
    """The refusal of a forged, misused or expired link: the same words for each."""
    return ForbiddenError(f"this link is not valid or has expired (links work for "
                          f"{LINK_TTL // 60} minutes); run the kaggle command again")


# --------------------------------------------------------------- errors in the client's shape


def failure(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """``{"code": status, "message": message}``: what the kaggle client prints on an error."""
    return JSONResponse({"code": status, "message": message}, status_code=status,
                        headers=headers)


class KaggleRoute(APIRoute):
    """A route whose refusals, its dependencies' included, come out in the client's shape.

    A :class:`harness.errors.HarnessError` keeps its status and words (the /api routes say
    the same as ``{"detail": ...}``), a throttle's 429 keeps its ``Retry-After``.
    """

    def get_route_handler(self):
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except HarnessError as exc:
                status = http_status(exc)
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
                if getattr(exc, "retry_after", None):
                    headers["Retry-After"] = str(int(exc.retry_after))
                return failure(status, str(exc), headers or None)
            except HTTPException as exc:
                return failure(exc.status_code, str(exc.detail), exc.headers)

        return handler


router = APIRouter(route_class=KaggleRoute, include_in_schema=False)


# --------------------------------------------------------------- who is asking


def _credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    """The token of ``Authorization: Bearer TOKEN`` or of HTTP Basic ``NAME:TOKEN`` (the
    client's key login sends the key as the password); None without a usable header."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    token = value.strip()
    if scheme.lower() == "basic":
        try:
            token = base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token) if token else None


async def kaggle_team(request: Request) -> Team:
    """The caller's team (401 when the token is missing or wrong), as for /api."""
    return await require_team(request, _credentials(request))


async def kaggle_reader(request: Request) -> Team | None:
    """A team's token or the teacher's (None) for what every team may read, as for /api."""
    return await require_reader(request, _credentials(request))


async def kaggle_optional_team(request: Request) -> Team | None:
    """The caller's team when a token is sent (401 if it is wrong), else None: the boards."""
    if "authorization" not in request.headers:
        return None
    return await require_team(request, _credentials(request))


TeamDep = Annotated[Team, Depends(kaggle_team)]
ReaderDep = Annotated[Team | None, Depends(kaggle_reader)]
OptionalTeamDep = Annotated[Team | None, Depends(kaggle_optional_team)]


# --------------------------------------------------------------- request bodies


class _Body(BaseModel):
    """A request body: camelCase fields, default values left out, unknown ones ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ListCompetitionsBody(_Body):
    search: str = ""


class CompetitionBody(_Body):
    competition_name: str = ""

    @property
    def slug(self) -> str:
        """The competition named, 404 when no competition can have that name."""
        return valid_slug(self.competition_name)


class FileBody(CompetitionBody):
    file_name: str = ""


class PageBody(CompetitionBody):
    page: int | None = None
    page_size: int | None = None
    page_token: str | None = None
    override_public: bool = False

    def window(self, maximum: int) -> tuple[int, int]:
        """(offset, rows) of the page asked for: the page token is the offset this server
        gave as ``nextPageToken``; the client's first request says ``page: 1``."""
        size = min(max(self.page_size or PAGE_DEFAULT, 1), maximum)
        if self.page_token:
            if not self.page_token.isdigit():
                raise HarnessError(f"page token {self.page_token[:20]!r} is not one this "
                                   "server gave; leave it out for the first page")
            return int(self.page_token), size
        return max((self.page or 1) - 1, 0) * size, size


class StartUploadBody(FileBody):
    content_length: int = 0


class CreateSubmissionBody(CompetitionBody):
    blob_file_tokens: str = ""
    submission_description: str = ""


class IntrospectBody(_Body):
    token: str = ""


async def _body(request: Request, model: type[_Body]):
    """The JSON body as ``model``, read after the token check (the route's dependencies);
    the body-size middleware caps what can be read."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                             for e in exc.errors(include_url=False, include_input=False)[:3])
        raise HarnessError(f"the request body does not fit {request.url.path.rsplit('/', 1)[-1]}"
                           f" ({problems}); send the JSON the kaggle command sends") from None


# --------------------------------------------------------------- signed links


def _draft(path: Path) -> Path:
    """A name of its own beside ``path`` to write or claim it under (unique per call: two
    requests served by one thread must not share it)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


class Links:
    """Signed, short-lived links and the uploads waiting for their ``CreateSubmission``,
    in one home (``HOME/kaggle/``): what every worker process of a server shares.

    A link is ``PAYLOAD.SIGNATURE``: the claims as base64url JSON with their expiry, and an
    HMAC-SHA256 of the purpose and the payload under the home's key.

    Parameters
    ----------
    home : Path
        The server's home folder.
    """

    def __init__(self, home: Path):
        self.folder = private_dir(Path(home) / "kaggle")
        self.waiting = private_dir(self.folder / "uploads")
        self.key = self._key(self.folder / "signing.key")

    @staticmethod
    def _key(path: Path) -> bytes:
        """The home's signing key, made by the first process that needs it: written whole
        beside it and linked into place, so a worker never reads a half-written key."""
        if not path.is_file():
            draft = _draft(path)
            with os.fdopen(private_file(draft), "wb") as f:
                f.write(secrets.token_bytes(32))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass                        # another worker made it first: use theirs
            finally:
                draft.unlink()
        return path.read_bytes()

    def _signature(self, purpose: str, payload: str) -> str:
        digest = hmac.new(self.key, f"{purpose}.{payload}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, purpose: str, claims: dict, ttl: float = LINK_TTL) -> str:
        """A link token for ``purpose`` holding ``claims``, good for ``ttl`` seconds."""
        payload = base64.urlsafe_b64encode(json.dumps(
            {**claims, "exp": int(time.time() + ttl)}, separators=(",", ":")).encode()
        ).rstrip(b"=").decode()
        return f"{payload}.{self._signature(purpose, payload)}"

    def verify(self, purpose: str, token: str) -> dict:
        """The claims of a token signed here for ``purpose`` and not expired.

        Raises
        ------
        ForbiddenError
            Forged, for another purpose, or expired: the same words for each.
        """
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature.encode(),
                                   self._signature(purpose, payload).encode()):
            raise bad_link()
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if claims.get("exp", 0) < time.time():
            raise bad_link()
        return claims

    def waiting_file(self, nonce: str) -> Path:
        """Where the bytes PUT for the upload ``nonce`` wait."""
        if not re.fullmatch(r"[\w-]{16,64}", nonce):
            raise bad_link()
        return self.waiting / nonce

    def forget_stale(self) -> None:
        """Remove uploads never submitted: their links have expired (twice over)."""
        stale = time.time() - 2 * LINK_TTL
        for path in self.waiting.iterdir():
            try:
                if path.stat().st_mtime < stale:
                    path.unlink()
            except FileNotFoundError:
                pass                        # another worker removed it first

    def take(self, nonce: str) -> bytes | None:
        """The bytes waiting for ``nonce``, removed so that only one submission gets them
        (a rename succeeds for one caller alone); None when there are none."""
        path = self.waiting_file(nonce)
        mine = _draft(path)
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            return None
        try:
            return mine.read_bytes()
        finally:
            mine.unlink()


@functools.lru_cache(maxsize=16)
def _links_in(home: Path) -> Links:
    return Links(home)


def links(h) -> Links:
    """The :class:`Links` of the harness ``h``'s home (made on first use, once per process)."""
    return _links_in(Path(h.home).resolve())


def _absolute(request: Request, path: str) -> str:
    """``path`` on the host the request was sent to: the client must reach it the same way
    (through the same proxy, when it uses one), and requests keeps the token on a redirect
    only to the same host."""
    return str(request.base_url).rstrip("/") + path


# --------------------------------------------------------------- answers


def _time(value: str | None) -> str | None:
    """An ISO 8601 time from the service as kagglesdk writes them (``...T12:00:00.000Z``)."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def _score(value: float | None, decimals: int | None) -> str:
    """A score as the client's string field: the competition's decimals; '' for none."""
    if value is None:
        return ""
    return f"{value:.{decimals}f}" if decimals is not None else repr(value)


def _compact(record: dict) -> dict:
    """Without the fields that have no value (the client gives them its defaults)."""
    return {k: v for k, v in record.items() if v is not None}


def _next_token(offset: int, size: int, total: int) -> str:
    return str(offset + size) if offset + size < total else ""


def rpc(method: str, service: str = SERVICE):
    """Register the decorated endpoint as ``POST {prefix}/{service}/{method}`` under both
    prefixes (Kaggle's host uses ``/v1``, LOCALHOST ``/api/v1``)."""
    name = "kaggle_" + re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()

    def register(endpoint):
        for prefix in PREFIXES:
            router.add_api_route(f"{prefix}/{service}/{method}", endpoint, methods=["POST"],
                                 name=name)
        return endpoint

    return register


# --------------------------------------------------------------- sign-in


@rpc("IntrospectToken", service="security.OAuthService")
async def introspect_token(request: Request) -> dict:
    """Whether the body's token is one of this server's: the client asks before anything
    else, and falls back to its key login when the answer is no. A wrong token counts
    against the address like any other (the throttle), so this is no guessing oracle."""
    body = await _body(request, IntrospectBody)
    given = HTTPAuthorizationCredentials(scheme="Bearer", credentials=body.token) \
        if body.token else None
    try:
        reader = await require_reader(request, given)
    except AuthError:
        return {"active": False}
    except HTTPException as exc:
        if exc.status_code != 429:
            raise
        return {"active": False}   # blocked: the next call says so, in words the client shows
    return {"active": True, "username": reader.name if reader else "teacher"}


# --------------------------------------------------------------- competitions and files


def _competition_rows(h, team: Team | None, search: str) -> list[dict]:
    rows = []
    for c in h.list_competitions():
        if search and search.lower() not in f"{c['slug']} {c['title']}".lower():
            continue
        entered, rank = False, None
        if team is not None:
            entered = h.submissions_page(c["slug"], team.model_dump(), limit=0)[1] > 0
            board = h.leaderboard(c["slug"], "private" if c["state"] == "revealed"
                                  else "public")
            rank = next((r["rank"] for r in board["rows"]
                         if r["team"] == team.name and not r.get("baseline")), None)
        # category: what a class needs in that column is whether uploads are open
        rows.append(_compact({
            "ref": c["slug"], "title": c["title"], "description": c["description"],
            "category": c["state"], "reward": "Knowledge", "deadline": _time(c["deadline"]),
            "teamCount": c["teams"], "evaluationMetric": c["metric"],
            "userHasEntered": entered, "userRank": rank}))
    return rows


@rpc("ListCompetitions")
async def list_competitions(reader: ReaderDep, request: Request, h: HarnessDep) -> dict:
    body = await _body(request, ListCompetitionsBody)
    return {"competitions": await run_in_threadpool(_competition_rows, h, reader, body.search)}


def _files(h, slug: str) -> list[tuple[str, Path]]:
    """(name, path) of every file the competition releases, in the listing's order."""
    return [(name, h.released_file(slug, name)) for name in h.get_competition(slug)["files"]]


def _file_rows(h, slug: str) -> list[dict]:
    rows = []
    for name, path in _files(h, slug):
        stat = path.stat()
        rows.append({"ref": name, "name": name, "totalBytes": stat.st_size,
                     "creationDate": _time(datetime.fromtimestamp(
                         stat.st_mtime, timezone.utc).isoformat())})
    return rows


@rpc("ListDataFiles")
async def list_data_files(reader: ReaderDep, request: Request, h: HarnessDep) -> dict:
    body = await _body(request, CompetitionBody)
    return {"files": await run_in_threadpool(_file_rows, h, body.slug), "nextPageToken": ""}


def _download_link(request: Request, h, slug: str, name: str, claimed: str) -> RedirectResponse:
    """303 to the signed link of ``name`` (``claimed``: the file, or ``*`` for all)."""
    grant = links(h).sign("download", {"c": slug, "n": claimed})
    return RedirectResponse(_absolute(request, f"{DOWNLOADS}/{grant}/{quote(name)}"),
                            status_code=303)


@rpc("DownloadDataFiles")
async def download_data_files(reader: ReaderDep, request: Request, h: HarnessDep):
    slug = (await _body(request, CompetitionBody)).slug
    await run_in_threadpool(_files, h, slug)          # unknown or missing: refused here
    return _download_link(request, h, slug, f"{slug}.zip", "*")


@rpc("DownloadDataFile")
async def download_data_file(reader: ReaderDep, request: Request, h: HarnessDep):
    body = await _body(request, FileBody)
    slug = body.slug
    await run_in_threadpool(h.released_file, slug, body.file_name)   # the service's check
    return _download_link(request, h, slug, body.file_name, body.file_name)


class _Sink(io.RawIOBase):
    """A write-only stream that hands over what was written since the last :meth:`take`."""

    def __init__(self):
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def zip_stream(files: list[tuple[str, Path]]) -> Iterator[bytes]:
    """The files as one zip archive, produced as it is read (never whole in memory).

    An unseekable stream makes :mod:`zipfile` write each member's sizes after its data,
    which every unzip reads. Zip files inside are stored, the rest deflated.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w") as archive:
        for name, path in files:
            info = zipfile.ZipInfo.from_file(path, arcname=name)
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".zip") \
                else zipfile.ZIP_DEFLATED
            with open(path, "rb") as source, archive.open(info, "w") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    if data := sink.take():
                        yield data
    yield sink.take()


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@router.get(DOWNLOADS + "/{grant}/{name}", name="kaggle_download")
def download(grant: str, name: str, h: HarnessDep) -> Response:
    """The file (or every file, zipped) a signed download link names; no token needed."""
    claims = links(h).verify("download", grant)
    slug = claims["c"]
    if claims["n"] == "*" and name == f"{slug}.zip":
        files = _files(h, slug)
        newest = max((path.stat().st_mtime for _, path in files), default=time.time())
        return StreamingResponse(zip_stream(files), media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{slug}.zip"',
            "Last-Modified": _http_date(newest)})
    if claims["n"] != name:
        raise bad_link()
    return FileResponse(h.released_file(slug, name), filename=name,
                        media_type="application/zip" if name.endswith(".zip") else "text/csv")


# --------------------------------------------------------------- submitting


def _too_large(slug: str, max_upload_mb: float) -> TooLargeError:
    return TooLargeError(f"the file is over {slug!r}'s limit of {max_upload_mb:g} MB "
                         "(max_upload_mb); submit the plain CSV with only the id and target "
                         "columns")


@rpc("StartSubmissionUpload")
async def start_submission_upload(team: TeamDep, request: Request, h: HarnessDep) -> dict:
    body = await _body(request, StartUploadBody)
    slug = body.slug
    rules = (await run_in_threadpool(h.prepared, slug)).spec.rules
    if body.content_length > rules.max_upload_bytes:
        raise _too_large(slug, rules.max_upload_mb)
    filename = os.path.basename(body.file_name.replace("\\", "/")) or "submission.csv"
    if len(filename) > FILE_NAME_MAX:
        raise HarnessError(f"the file name is {len(filename)} characters long; rename the file "
                           f"to at most {FILE_NAME_MAX}")
    store = links(h)
    await run_in_threadpool(store.forget_stale)
    token = store.sign("upload", {"c": slug, "t": team.id, "f": filename,
                                  "n": secrets.token_urlsafe(24)})
    return {"token": token, "createUrl": _absolute(request, f"{UPLOADS}/{token}")}


@router.put(UPLOADS + "/{token}", name="kaggle_upload")
async def upload(token: str, request: Request, h: HarnessDep) -> dict:
    """The bytes of an upload, kept for its ``CreateSubmission``: the link is the
    authorisation (the client sends no token here). Capped at the competition's
    max_upload_mb: by Content-Length first, then while the bytes stream in."""
    store = links(h)
    claims = store.verify("upload", token)
    rules = (await run_in_threadpool(h.prepared, claims["c"])).spec.rules
    cap = rules.max_upload_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise _too_large(claims["c"], rules.max_upload_mb)
    path = store.waiting_file(claims["n"])
    draft = _draft(path)
    seen = 0
    try:
        with os.fdopen(private_file(draft), "wb") as f:
            async for chunk in request.stream():
                seen += len(chunk)
                if seen > cap:
                    raise _too_large(claims["c"], rules.max_upload_mb)
                await run_in_threadpool(f.write, chunk)
        os.replace(draft, path)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise StorageError(f"the server's upload folder is full ({exc.strerror}), so the file "
                           "was not stored and not counted; try again later") from None
    finally:
        draft.unlink(missing_ok=True)
    return {}


def _submit(h, team: Team, body: CreateSubmissionBody) -> dict:
    slug = body.slug
    store = links(h)
    claims = store.verify("upload", body.blob_file_tokens)
    if claims["c"] != slug or claims["t"] != team.id:
        raise bad_link()
    data = store.take(claims["n"])
    if data is None:
        raise HarnessError("nothing waits under this upload token (no file was sent, or it "
                           "was submitted already); run `kaggle competitions submit` again")
    result = h.submit(slug, team.model_dump(), data, body.submission_description,
                      claims["f"])
    shown = _score(result["public_score"], h.get_competition(slug)["public_decimals"])
    left = result.get("remaining_today")
    message = (f"Successfully submitted to {slug}: submission {result['id']} "
               f"{result['status']}, public score {shown}"
               + (" (late: after the reveal, not ranked)" if result.get("late") else "")
               + ("; no daily limit" if left is None else f"; {left} left today") + "\n")
    return {"message": message, "ref": result["id"]}


@rpc("CreateSubmission")
async def create_submission(team: TeamDep, request: Request, h: HarnessDep) -> dict:
    body = await _body(request, CreateSubmissionBody)
    return await run_in_threadpool(_submit, h, team, body)


def _submission_rows(h, team: Team, body: PageBody) -> dict:
    slug = body.slug
    offset, size = body.window(PAGE_MAX)
    rows, total = h.submissions_page(slug, team.model_dump(), limit=size, offset=offset)
    decimals = h.get_competition(slug)["public_decimals"]
    # the service shows no private score before the reveal; this is the backstop
    revealed = h.state(slug) == "revealed"
    return {"submissions": [_compact({
        "ref": r["id"], "fileName": r["filename"], "date": _time(r["submitted_at"]),
        "description": r["message"], "status": STATUS[r["status"]],
        "errorDescription": r.get("error"), "teamName": r["team"],
        "publicScore": _score(r["public_score"], decimals),
        "privateScore": _score(r["private_score"] if revealed else None, decimals)})
        for r in rows], "nextPageToken": _next_token(offset, size, total)}


@rpc("ListSubmissions")
async def list_submissions(team: TeamDep, request: Request, h: HarnessDep) -> dict:
    body = await _body(request, PageBody)
    return await run_in_threadpool(_submission_rows, h, team, body)


# --------------------------------------------------------------- leaderboards


def _board(h, body: PageBody) -> dict:
    """The board Kaggle would show: the private one once it is revealed (unless the client
    asks for the public one), else the public one; the service refuses the private one to
    students before the reveal either way."""
    slug = body.slug
    revealed = h.state(slug) == "revealed"
    board = h.leaderboard(slug, "private" if revealed and not body.override_public
                          else "public")
    if board.get("public_decimals") is None:
        board["public_decimals"] = h.get_competition(slug)["public_decimals"]
    return board


def _name(row: dict) -> str:
    return f"{row['team']} (baseline)" if row.get("baseline") else row["team"]


def _board_rows(h, body: PageBody) -> dict:
    board = _board(h, body)
    offset, size = body.window(BOARD_MAX)
    rows = board["rows"]
    # teamId: the column the client prints first; a team's rank is what a class reads
    # there (its database id means nothing to anyone); 0 for a baseline, as unranked
    return {"submissions": [_compact({
        "teamId": r.get("rank") or 0, "teamName": _name(r),
        "submissionDate": _time(r.get("last_submission")),
        "score": _score(r["score"], board["public_decimals"])})
        for r in rows[offset:offset + size]], "nextPageToken": _next_token(offset, size,
                                                                           len(rows))}


@rpc("GetLeaderboard")
async def get_leaderboard(team: OptionalTeamDep, request: Request, h: HarnessDep) -> dict:
    body = await _body(request, PageBody)
    return await run_in_threadpool(_board_rows, h, body)


def _board_zip(h, body: PageBody) -> tuple[str, bytes]:
    board = _board(h, body)
    records = [{"Rank": r.get("rank"), "TeamName": _name(r),
                "LastSubmissionDate": _time(r.get("last_submission")),
                "Score": _score(r["score"], board["public_decimals"]),
                "SubmissionCount": r.get("entries")} for r in board["rows"]]
    fields = ["Rank", "TeamName", "LastSubmissionDate", "Score", "SubmissionCount"]
    name = f"{board['competition']}-{board['board']}-leaderboard.csv"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        # team names are the teacher's words, but a spreadsheet must not run any as a formula
        z.writestr(name, csv_text(records, fields))
    return board["competition"], archive.getvalue()


@rpc("DownloadLeaderboard")
async def download_leaderboard(team: OptionalTeamDep, request: Request, h: HarnessDep):
    """The board as a zip holding one CSV: the client saves the answer as ``SLUG.zip``."""
    body = await _body(request, PageBody)
    slug, data = await run_in_threadpool(_board_zip, h, body)
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{slug}.zip"'})


# --------------------------------------------------------------- the rest of Kaggle's API

SUPPORTED = ("kaggle competitions list, files, download, submit, submissions and "
             "leaderboard")


def unsupported(service: str, method: str) -> JSONResponse:
    """404 in the client's shape for the calls this server does not answer (datasets,
    kernels, submission limits, ...); the client ignores it where that is harmless."""
    return failure(404, f"this class server is not Kaggle: it answers {SUPPORTED}, not "
                        f"{service[:60]}/{method[:60]}")


for _prefix in PREFIXES:
    router.add_api_route(_prefix + "/{service}/{method}", unsupported, methods=["POST"],
                         name="kaggle_unsupported")


# --------------------------------------------------------------- the server as a proxy

_ABSOLUTE = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


class AbsoluteForm:
    """ASGI middleware: serve a request whose target is in absolute form, as clients send
    it to a proxy (``POST http://localhost/api/v1/... HTTP/1.1``), as if it named the path
    alone (RFC 9112 3.2.2), so the kaggle command works with the server as its HTTP_PROXY.

    uvicorn passes such a target on as the path; the routes, and the body-size caps that
    find a request's route, need the path itself. Only a target whose host is the
    request's Host is taken so, as every client sends it to a proxy; one that names
    another host than its Host header is a request shaped to confuse whoever routes by
    host, and is left alone (no route has that path: 404).
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = _ABSOLUTE.match(scope.get("raw_path") or b"")
            if found:
                target_host = found.group(1).rpartition(b"@")[2]  # without any user:password@
                hosts = [v for k, v in scope["headers"] if k == b"host"]
                if [h.lower() for h in hosts] == [target_host.lower()]:
                    rest = scope["raw_path"][found.end():] or b"/"
                    scope = {**scope, "raw_path": rest, "path": scope.get("root_path", "")
                             + unquote(rest.decode("latin-1"))}
        await self.app(scope, receive, send)


UPLOAD_ROUTES = (upload,)       # the body-size middleware gives these the upload cap
