"""The HTTP client behind the student commands (``harness login``, ``submit``, ...).

Credentials come from, first to last: the command's options, ``$HARNESS_SERVER`` /
``$HARNESS_TOKEN``, and the file ``harness login`` wrote (``$HARNESS_CONFIG`` or
``~/.config/harness/credentials.json``, mode 0600). Every failure becomes one
:class:`harness.errors.HarnessError` line: the server's own ``detail`` when it answered,
or which URL could not be reached when it did not.

Every answer is validated with the models of :mod:`harness.schemas` (the ones the server
declares) and returned as their JSON dump, plain dicts and lists: ``--format json``
prints exactly that. An answer that does not fit them (a server of another version)
is a one-line error saying so.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
from pydantic import TypeAdapter, ValidationError

from . import __version__
from .errors import HarnessError, error_for_status
from .schemas import Board, Competition, CompetitionSummary, Submission, UploadAnswer

CONFIG_ENV = "HARNESS_CONFIG"
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)   # uploads are scored synchronously
PAGE_SIZE = 500                       # submissions per request (the server's maximum)

class LazyAdapter:
    """A pydantic ``TypeAdapter`` built on first use: a command builds the validators of
    the answers it reads, not of every answer (most of a student command's start-up)."""

    def __init__(self, kind):
        self.kind = kind
        self._adapter: TypeAdapter | None = None

    def __getattr__(self, name):
        if self._adapter is None:
            self._adapter = TypeAdapter(self.kind)
        return getattr(self._adapter, name)


COMPETITIONS = LazyAdapter(list[CompetitionSummary])
COMPETITION = LazyAdapter(Competition)
SUBMISSIONS = LazyAdapter(list[Submission])
UPLOAD_ANSWER = LazyAdapter(UploadAnswer)
BOARD = LazyAdapter(Board)


def config_path() -> Path:
    """Where ``harness login`` keeps the server and token."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else Path.home() / ".config" / "harness" / "credentials.json"


def load_credentials() -> dict:
    """The stored ``{"server", "token"}`` (empty when nobody has logged in)."""
    path = config_path()
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"cannot read the stored login {path}: {exc}; run "
                           "`harness login --server URL --token TOKEN` again") from exc


def save_credentials(server: str, token: str, role: str = "team") -> Path:
    """Store the login readable by its owner only (mode 0600); returns the file.

    ``role`` is ``team`` or ``teacher`` (a teacher token), so commands that both may run
    (submissions, leaderboard) know which routes to ask without a request to find out."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"server": server, "token": token, "role": role}, f)
    os.chmod(path, 0o600)   # an older file keeps its mode through O_CREAT; fix it
    return path


def resolve_login(server: str | None = None, token: str | None = None
                  ) -> tuple[str | None, str | None]:
    """The server and token to use: those given, else ``$HARNESS_SERVER`` /
    ``$HARNESS_TOKEN``, else the stored login (None where none of them says)."""
    stored = load_credentials()
    return (server or os.environ.get("HARNESS_SERVER") or stored.get("server"),
            token or os.environ.get("HARNESS_TOKEN") or stored.get("token"))


SERVER_EXAMPLE = "http://10.0.0.5:8000"
_HOST = re.compile(r"[\w.-]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")   # a name, an IPv4 or IPv6 address
_HALF_SCHEME = re.compile(r"[A-Za-z][\w+.-]*:(?!//|\d)")          # http:/host, not host:8000


def server_origin(url: str) -> tuple[str, str]:
    """The server's base URL in ``url``, and the part of a page's address left out.

    ``host:8000`` -> ``("http://host:8000", "")``. The address of one of the server's pages
    pasted in its place keeps only its origin:
    ``http://host:8000/competitions/digits`` -> ``("http://host:8000", "/competitions/digits")``.

    Raises
    ------
    HarnessError
        When ``url`` is not an http(s) address, saying what an address looks like.
    """
    given = url.strip()
    parsed, problem = _parse_address(given)
    if problem:
        raise HarnessError(f"{given!r} is not a server address ({problem}); give the address "
                           f"your teacher gave, e.g. {SERVER_EXAMPLE}")
    origin = str(parsed.copy_with(raw_path=b"/", fragment=None, userinfo=b"")).rstrip("/")
    page = parsed.raw_path.decode("ascii") + (f"#{parsed.fragment}" if parsed.fragment else "")
    return origin, "" if page == "/" else page


def _parse_address(given: str) -> tuple[httpx.URL | None, str | None]:
    """``given`` as a URL (``http://`` added when it names no scheme), or what keeps it
    from being a server's address."""
    if any(c.isspace() for c in given):
        return None, "it holds a space"
    if _HALF_SCHEME.match(given):
        return None, "the scheme needs two slashes, as in http://"
    try:
        parsed = httpx.URL(given if "://" in given else "http://" + given)
    except httpx.InvalidURL as exc:
        return None, str(exc)
    if parsed.scheme not in ("http", "https"):
        return None, f"{parsed.scheme}:// is neither http:// nor https://"
    if not _HOST.fullmatch(parsed.host):
        return None, "it names no host"
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return None, f"port {parsed.port} is not between 1 and 65535"
    return parsed, None


def normalize_server(url: str) -> str:
    """The server's base URL in ``url`` (:func:`server_origin`): ``host:8000`` ->
    ``http://host:8000``, no trailing slash, no page."""
    return server_origin(url)[0]


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):     # FastAPI's request validation (422)
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', ())[1:])}: {d.get('msg')}"
                           for d in detail if isinstance(d, dict))
    if not detail:
        detail = f"the server answered {response.status_code} {response.reason_phrase}"
    if response.status_code >= 500:   # a server fault: say where, so the teacher can look
        return f"{detail} ({response.request.method} {response.request.url.path})"
    return str(detail)


class Client:
    """One student's connection to a harness server.

    Parameters
    ----------
    server : str
        The server's base URL, e.g. ``http://10.0.0.5:8000``.
    token : str, optional
        The team token (not needed for the public leaderboard).
    transport : httpx.BaseTransport, optional
        For tests, e.g. ``httpx.MockTransport``.
    """

    def __init__(self, server: str, token: str | None = None, *, transport=None):
        self.server = normalize_server(server)
        self.token = token = token.strip() if token else token   # pasted with a line break
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # a plain-http server needs no certificates: loading the CA bundle is a tenth of a
        # second of every command's start; https keeps full verification
        https = self.server.startswith("https://")
        self._http = httpx.Client(base_url=self.server, headers=headers,
                                  timeout=DEFAULT_TIMEOUT, transport=transport,
                                  verify=True if https else False)

    @classmethod
    def from_config(cls, server: str | None = None, token: str | None = None,
                    need_token: bool = True) -> "Client":
        """A client from the options, else the environment, else the stored login."""
        server, token = resolve_login(server, token)
        if not server:
            raise HarnessError("no server given: run `harness login --server URL --token TOKEN` "
                               "first, or pass --server / set HARNESS_SERVER")
        if need_token and not token:
            raise HarnessError("no token: run `harness login --server URL --token TOKEN` "
                               "with the token from your teacher, or set HARNESS_TOKEN")
        return cls(server, token)

    def close(self) -> None:
        """Close the connection (the client is not used afterwards)."""
        self.disconnect()

    def disconnect(self) -> None:
        """Close the connection; what ``with Client(...)`` does at its end."""
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.disconnect()

    def _unreachable(self, exc: httpx.TransportError) -> HarnessError:
        reason = str(exc) or type(exc).__name__
        return HarnessError(f"cannot reach the harness server at {self.server} ({reason}); "
                            "check the address (--server, HARNESS_SERVER or `harness login`) "
                            "and ask your teacher whether the server is running")

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            response.read()
            raise error_for_status(response.status_code, _detail(response))
        return response

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Send one request; raises a one-line HarnessError for any failure."""
        try:
            return self._check(self._http.request(method, path, **kwargs))
        except httpx.LocalProtocolError as exc:     # never sent: e.g. a control char in the token
            raise HarnessError(f"cannot send the request to {self.server}: {exc}; check the "
                               "token for stray characters") from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _answer(self, response: httpx.Response, model: TypeAdapter):
        """The answer validated with ``model``, as its JSON dump (plain dicts and lists).

        Fields the server did not send stay absent (``your_team`` without a token), as in
        the server's own dump; fields this version does not know are dropped.
        """
        try:
            return model.dump_python(model.validate_json(response.content), mode="json",
                                     exclude_unset=True)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "the answer"
            raise HarnessError(
                f"the server at {self.server} answered {response.request.method} "
                f"{response.request.url.path} with something unexpected ({where}: "
                f"{first['msg']}); it may run another harness version than this one "
                f"({__version__}): ask the teacher which one, and install it") from None

    def competitions(self) -> list[dict]:
        return self._answer(self.request("GET", "/api/competitions"), COMPETITIONS)

    def competition(self, slug: str) -> dict:
        return self._answer(self.request("GET", f"/api/competitions/{slug}"), COMPETITION)

    def download(self, slug: str, directory: str | Path, progress=None) -> list[Path]:
        """Save the released files of ``slug`` into ``directory``; returns their paths.

        An image competition's parts come as ``train.zip``, ``validation.zip`` and
        ``test.zip``; each is unpacked into ``directory/train/`` (and so on, replacing an
        older folder of that name) and then deleted, so the folder's path is returned.
        ``progress(name, done_bytes, total_bytes_or_None)`` is called as bytes arrive.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = self.competition(slug).get("files")
        if not names:
            from .home import RELEASED_FILES      # pandas: only when the server lists none

            names = list(RELEASED_FILES)
        saved = []
        for name in names:
            target = directory / name
            partial = target.with_name(name + ".part")
            try:
                with self._http.stream("GET", f"/api/competitions/{slug}/files/{name}") as r:
                    self._check(r)
                    total = int(r.headers["content-length"]) if "content-length" in r.headers \
                        else None
                    done = 0
                    with open(partial, "wb") as f:
                        for chunk in r.iter_bytes():
                            f.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(name, done, total)
            except httpx.TransportError as exc:
                partial.unlink(missing_ok=True)
                raise self._unreachable(exc) from exc
            partial.replace(target)      # never leave a half-written file under the real name
            if name.endswith(".zip"):        # an image part (the only zips served)
                from .images import unpack_part   # Pillow and pandas: only for images

                target = unpack_part(target, directory)
            saved.append(target)
        return saved

    def submit(self, slug: str, path: str | Path, message: str = "") -> dict:
        path = Path(path)
        with open(path, "rb") as f:
            return self.upload(slug, f, path.name, message)

    def upload(self, slug: str, content, filename: str, message: str = "") -> dict:
        """Upload ``content`` (bytes, or a file opened in binary mode) as the prediction
        file named ``filename``; returns the scored submission (``remaining_today`` too)."""
        response = self.request("POST", f"/api/competitions/{slug}/submissions",
                                files={"file": (filename, content, "text/csv")},
                                data={"message": message})
        return self._answer(response, UPLOAD_ANSWER)

    def submissions(self, slug: str) -> list[dict]:
        """Every submission of the caller's team, newest first (all pages)."""
        rows: list[dict] = []
        while True:
            response = self.request("GET", f"/api/competitions/{slug}/submissions",
                                    params={"limit": PAGE_SIZE, "offset": len(rows)})
            page = self._answer(response, SUBMISSIONS)
            rows += page
            total = int(response.headers.get("X-Total-Count", len(rows)))
            if not page or len(rows) >= total:
                return rows

    def select(self, slug: str, submission_ids: list[int]) -> list[dict]:
        return self._answer(self.request("PUT", f"/api/competitions/{slug}/selection",
                                         json={"submission_ids": list(submission_ids)}),
                            SUBMISSIONS)

    def leaderboard(self, slug: str, board: str = "public") -> dict:
        """The whole board (all pages): ``rows`` holds every row."""
        return self._pages(f"/api/competitions/{slug}/leaderboard", board)

    def leaderboard_if_changed(self, slug: str, board: str = "public",
                               etag: str | None = None) -> tuple[dict | None, str | None]:
        """The whole board unless it is still the one tagged ``etag``.

        Returns ``(board, tag)``: the board (as :meth:`leaderboard`) and its ``ETag``, or
        ``(None, etag)`` when the server answered 304 (it drew no board: what a watcher
        asks every few seconds). The tag of the first page covers the whole board.
        """
        return self._board_pages(f"/api/competitions/{slug}/leaderboard", board, etag)

    def _pages(self, path: str, board: str) -> dict:
        """Every page of the board at ``path`` as one answer."""
        return self._board_pages(path, board)[0]

    def _board_pages(self, path: str, board: str,
                     etag: str | None = None) -> tuple[dict | None, str | None]:
        """Every page of the board at ``path`` as one answer, and the first page's
        ``ETag``; ``(None, etag)`` when the server says the board is still ``etag``."""
        result, tag = None, None
        while True:
            response = self.request(
                "GET", path, params={"board": board, "offset": 0 if result is None
                                     else len(result["rows"])},
                headers={"If-None-Match": etag} if etag and result is None else None)
            if response.status_code == 304:
                return None, etag
            page = self._answer(response, BOARD)
            if result is None:
                result, tag = page, response.headers.get("ETag")
            else:
                result["rows"] += page["rows"]
            if not page["rows"] or len(result["rows"]) >= page.get("total_rows", 0):
                return result, tag     # as one page from offset 0 holding every row
