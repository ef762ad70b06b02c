"""Hostile requests that are not uploads of bad files, against a live `harness serve`.

Wrong methods, huge or broken headers, lying lengths, smuggling-shaped framing, foreign
encodings, odd JSON, odd selection ids, bad credentials, path tricks in the slug and the
released-file name, and the same against the web pages. Each case states the 4xx it must
get; every answer must be clean (a one-line JSON ``detail``, an error page, or the HTTP
server's short protocol error; never a 5xx, a stack trace or a server path), a raw
request gets exactly one answer, and at the end nothing was counted or stored. The
bad-file uploads are in tests/test_hostile_http.py.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import httpx
import pytest

import harness
from harness.service import Harness
from test_hostile_http import INTERNALS, SLUG, UPLOAD_URL, Site, snapshot

SELECTION_URL = f"/api/competitions/{SLUG}/selection"
BOARD_URL = f"/api/competitions/{SLUG}/leaderboard"
RAW_TIMEOUT = 20.0           # seconds; above the server's header timeout, so it answers first
PACKAGE_DIR = str(Path(harness.__file__).resolve().parent)
# commands only the teacher runs, on the server: no answer to a student names them
TEACHER_COMMANDS = tuple(f"harness {c}" for c in (
    "prepare", "serve", "close", "reopen", "reveal", "rescore", "backup", "restore",
    "doctor", "audit", "grades"))


@dataclass(frozen=True)
class Answer:
    """What came back: the first response, and how many came on the connection."""

    status: int
    content_type: str
    body: bytes
    responses: int = 1


@dataclass(frozen=True)
class Case:
    """One hostile request: ``send(site)`` makes it; ``status`` is the answer it must get."""

    name: str
    send: Callable[["RequestSite"], Answer]
    status: frozenset[int]


class RequestSite(Site):
    """The hostile-upload site, plus a bystander's submission."""

    bystander_submission: int
    before: dict
    remaining: int


@pytest.fixture(scope="module")
def site(live_backend, start_server, make_predictions):
    home, database_url = live_backend
    teacher = Harness(home, database_url)
    s = RequestSite(home, teacher, start_server(home, database_url))
    # something to keep unchanged: two teams' entries (one to select), and a baseline
    with s.client(s.bystander_token) as c:
        r = c.post(UPLOAD_URL, files={"file": ("b.csv", make_predictions(home, SLUG, 0.9, 0.8,
                                                                         seed=1))})
        assert r.status_code == 201, r.text
        s.bystander_submission = r.json()["id"]
    with s.client() as c:
        r = c.post(UPLOAD_URL, files={"file": ("m.csv", make_predictions(home, SLUG, 0.8, 0.8,
                                                                         seed=2))})
        assert r.status_code == 201, r.text
        s.remaining = r.json()["remaining_today"]
    teacher.add_baseline(SLUG, "baseline", make_predictions(home, SLUG, 0.7, 0.7, seed=3))
    s.before = snapshot(s)
    yield s
    s.server.stop()


# --- sending: httpx for well-formed HTTP, a loopback socket for the rest ---------------------

def api(method: str, path: str, *, token: bool = True, headers: dict | None = None,
        **request) -> Callable:
    """A request through httpx as the attacker (``token=False``: no Authorization)."""
    def send(site: RequestSite) -> Answer:
        sent = {"Authorization": f"Bearer {site.attacker_token}"} if token else {}
        with httpx.Client(base_url=site.server.url, timeout=120) as c:
            r = c.request(method, path, headers={**sent, **(headers or {})}, **request)
        return Answer(r.status_code, r.headers.get("content-type", ""), r.content)
    return send


def page(method: str, path: str, *, csrf: bool = False, data: dict | None = None,
         **request) -> Callable:
    """A request to the web pages, logged in as the attacker (its token cookie); with
    ``csrf`` the form carries the page's CSRF value, as a browser's would."""
    def send(site: RequestSite) -> Answer:
        form = dict(data or {})
        with httpx.Client(base_url=site.server.url, timeout=120,
                          cookies={"harness_token": site.attacker_token}) as c:
            if csrf:
                text = c.get(f"/competitions/{SLUG}/submit").text
                form["csrf"] = re.search(r'name="csrf" value="([^"]+)"', text).group(1)
            r = c.request(method, path, data=form or None, **request)
        return Answer(r.status_code, r.headers.get("content-type", ""), r.content)
    return send


def _request_head(method: str, target: str, headers: list[tuple[str, str]],
                  version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def raw(build: Callable[[RequestSite], bytes]) -> Callable:
    """Bytes on a socket to the server (loopback): what no well-behaved client sends."""
    def send(site: RequestSite) -> Answer:
        url = urlsplit(site.server.url)
        received = bytearray()
        with socket.create_connection((url.hostname, url.port), timeout=RAW_TIMEOUT) as sock:
            try:
                sock.sendall(build(site))
            except OSError:          # the server may answer and close before all is sent
                pass
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except OSError:          # a reset after the answer ends the exchange, too
                pass
        return _parse(bytes(received))
    return send


class _Unclosable(io.BytesIO):
    def close(self) -> None:       # http.client closes its file after a `close` answer
        pass


def _parse(data: bytes) -> Answer:
    """The first HTTP response in ``data`` (http.client parses) and how many there are."""
    stream, answers = _Unclosable(data), []

    class Socket:                  # what http.client.HTTPResponse reads from
        def makefile(self, *args, **kwargs):
            return stream

    while stream.tell() < len(data):
        response = http.client.HTTPResponse(Socket())
        try:
            response.begin()
            body = response.read()
        except (http.client.HTTPException, ValueError):
            break
        answers.append(Answer(response.status, response.getheader("content-type", ""), body))
    if not answers:
        return Answer(0, "", data[:300], 0)
    return Answer(answers[0].status, answers[0].content_type, answers[0].body, len(answers))


def auth(site: RequestSite) -> tuple[str, str]:
    return ("Authorization", f"Bearer {site.attacker_token}")


HOST = ("Host", "harness.test")
CLOSE = ("Connection", "close")


def _upload_request(site: RequestSite, target: str = UPLOAD_URL) -> tuple[list, bytes]:
    """The headers and body of a good upload (httpx encodes the multipart)."""
    good = (site.home / "competitions" / SLUG / "released" / "sample_submission.csv").read_bytes()
    request = httpx.Request("POST", site.server.url + target, files={"file": ("p.csv", good)})
    body = request.read()
    return [("Content-Type", request.headers["content-type"]),
            ("Content-Length", str(len(body)))], body


def _absolute_form(site: RequestSite) -> bytes:
    headers, body = _upload_request(site)
    return _request_head("POST", f"http://evil.example{UPLOAD_URL}",
                         [HOST, auth(site), *headers, CLOSE]) + body


def _smuggled(site: RequestSite) -> bytes:
    """A chunked upload that also says Content-Length, and a second request behind it."""
    chunked = [HOST, auth(site), ("Content-Type", "multipart/form-data; boundary=x"),
               ("Content-Length", "4"), ("Transfer-Encoding", "chunked")]
    return (_request_head("POST", UPLOAD_URL, chunked) + b"0\r\n\r\n"
            + _request_head("GET", "/api/competitions", [HOST, auth(site), CLOSE]))


def _simple(method: str, target: str, *extra: tuple[str, str], body: bytes = b"",
            version: str = "HTTP/1.1") -> Callable[[RequestSite], bytes]:
    """A raw request with the attacker's token; ``extra`` headers may be hostile."""
    def build(site: RequestSite) -> bytes:
        return _request_head(method, target, [HOST, auth(site), *extra, CLOSE], version) + body
    return build


def _selection(body: bytes, content_type: str = "application/json") -> Callable:
    return api("PUT", SELECTION_URL, content=body, headers={"Content-Type": content_type})


def _other_teams_submission(site: RequestSite) -> Answer:
    return api("PUT", SELECTION_URL,
               json={"submission_ids": [site.bystander_submission]})(site)


def _status(*codes: int) -> frozenset[int]:
    return frozenset(codes)


MULTIPART = ("Content-Type", "multipart/form-data; boundary=x")
CASES = [
    # methods
    Case("PUT on the upload route", api("PUT", UPLOAD_URL, content=b"x"), _status(405)),
    Case("DELETE on the upload route", api("DELETE", UPLOAD_URL), _status(405)),
    Case("PATCH on the upload route", api("PATCH", UPLOAD_URL, content=b"x"), _status(405)),
    Case("OPTIONS on the upload route", api("OPTIONS", UPLOAD_URL), _status(405)),
    Case("TRACE on the home page", api("TRACE", "/"), _status(405)),
    Case("an invented method", api("FOO", UPLOAD_URL), _status(405)),
    # headers
    Case("a 2 MB header", raw(_simple("GET", "/api/competitions", ("X-Big", "a" * 2**21))),
         _status(400, 431)),
    Case("200 headers on an upload without a file",
         api("POST", UPLOAD_URL, headers={f"X-Junk-{i}": "v" * 20 for i in range(200)}),
         _status(400)),
    Case("a header line without a colon",
         raw(_simple("GET", "/api/competitions", ("X-Ok", "1\r\nno colon here"))), _status(400)),
    Case("Authorization with non-ASCII bytes",
         raw(lambda site: _request_head("GET", "/api/competitions", [HOST, CLOSE])[:-2]
             + b"Authorization: Bearer \xff\xfe\xe9t\xc3\xa9\r\n\r\n"), _status(401)),
    Case("a 10 kB bearer token",
         api("GET", "/api/competitions", token=False,
             headers={"Authorization": "Bearer " + "t" * 10_000}), _status(401)),
    Case("Basic auth instead of a bearer token",
         api("GET", f"/api/competitions/{SLUG}", token=False,
             auth=("mallory", "password")), _status(401)),
    # lengths and framing
    Case("Content-Length -1", raw(_simple("POST", UPLOAD_URL, ("Content-Length", "-1"))),
         _status(400)),
    Case("Content-Length abc", raw(_simple("POST", UPLOAD_URL, ("Content-Length", "abc"))),
         _status(400)),
    Case("two different Content-Lengths",
         raw(_simple("POST", UPLOAD_URL, ("Content-Length", "5"), ("Content-Length", "6"),
                     body=b"abcdef")), _status(400)),
    Case("Transfer-Encoding chunked plus Content-Length, then a second request",
         raw(_smuggled), _status(400)),
    Case("Transfer-Encoding gzip, chunked",
         raw(_simple("POST", UPLOAD_URL, ("Transfer-Encoding", "gzip, chunked"), MULTIPART,
                     body=b"0\r\n\r\n")), _status(400)),
    Case("a chunk size that is not hex",
         raw(_simple("POST", UPLOAD_URL, ("Transfer-Encoding", "chunked"), MULTIPART,
                     body=b"zz\r\nabc\r\n0\r\n\r\n")), _status(400)),
    # request lines
    Case("HTTP/1.1 without Host",
         raw(lambda site: _request_head("GET", "/api/competitions", [auth(site), CLOSE])),
         _status(400)),
    Case("HTTP/1.0 without Host, upload without a body",
         raw(lambda site: _request_head("POST", UPLOAD_URL, [auth(site)], "HTTP/1.0")),
         _status(400)),
    Case("absolute-form target carrying a good upload", raw(_absolute_form), _status(404)),
    Case("a raw space in the path", raw(_simple("GET", "/api/competitions/dig its")),
         _status(400)),
    Case("10,000 query parameters",
         raw(_simple("GET", BOARD_URL + "?" + "&".join(f"p{i}=1" for i in range(10_000))
                     + "&board=hidden")), _status(422)),
    # encodings
    Case("a gzip Content-Encoding upload",
         api("POST", UPLOAD_URL, content=gzip.compress(
             b'--x\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n\r\n'
             b"id,label\n1,2\n\r\n--x--\r\n"),
             headers={"Content-Encoding": "gzip", "Content-Type": MULTIPART[1]}),
         _status(400)),
    Case("a UTF-16 multipart upload",
         api("POST", UPLOAD_URL, content=(
             '--x\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n\r\n'
             "id,label\n1,2\n\r\n--x--\r\n").encode("utf-16"),
             headers={"Content-Type": MULTIPART[1] + "; charset=utf-16"}), _status(400)),
    Case("a UTF-16 JSON selection",
         _selection(json.dumps({"submission_ids": [1]}).encode("utf-16"),
                    "application/json; charset=utf-16"), _status(422)),
    Case("a Latin-1 byte in a JSON selection",
         _selection(b'{"submission_ids": "\xe9"}'), _status(422)),
    # the selection's JSON
    Case("invalid JSON selection", _selection(b'{"submission_ids": [1,'), _status(422)),
    Case("JSON nested 30,000 deep (under the body cap)",
         _selection(b'{"submission_ids": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
         _status(422)),
    Case("JSON nested 10^6 deep (over the body cap)",
         _selection(b'{"submission_ids": ' + b"[" * 10**6 + b"]" * 10**6 + b"}"), _status(413)),
    Case("selection ids as words", _selection(b'{"submission_ids": ["one"]}'), _status(422)),
    Case("selection ids as fractions", _selection(b'{"submission_ids": [1.5]}'), _status(422)),
    Case("a selection id past int64", _selection(b'{"submission_ids": [%d]}' % 2**70),
         _status(404)),
    Case("a selection id past int32", _selection(b'{"submission_ids": [%d]}' % 2**31),
         _status(404)),
    Case("a negative selection id", _selection(b'{"submission_ids": [-1]}'), _status(404)),
    Case("a selection of 100,000 ids",
         _selection(json.dumps({"submission_ids": list(range(10**5))}).encode()), _status(413)),
    Case("selecting another team's submission", _other_teams_submission, _status(404)),
    # slugs, names and boards
    Case("path traversal in the slug",
         raw(_simple("GET", "/api/competitions/..%2f..%2fhidden%2fsolution.csv")), _status(404)),
    Case("a NUL in the slug", raw(_simple("GET", f"/api/competitions/{SLUG[:3]}%00{SLUG[3:]}")),
         _status(404)),
    Case("a newline after the slug", raw(_simple("GET", f"/api/competitions/{SLUG}%0A")),
         _status(404)),
    Case("the hidden solution as a released file",
         api("GET", f"/api/competitions/{SLUG}/files/solution.csv"), _status(404)),
    Case("path traversal in a released file's name",
         raw(_simple("GET", f"/api/competitions/{SLUG}/files/..%2f..%2fhidden%2fsolution.csv")),
         _status(404)),
    Case("the private board with a team token before the reveal",
         api("GET", BOARD_URL, params={"board": "private"}), _status(403)),
    # the pages
    Case("a 200 kB login form", page("POST", f"/competitions/{SLUG}/login",
                                     content=b"token=" + b"a" * 200_000,
                                     headers={"Content-Type":
                                              "application/x-www-form-urlencoded"}),
         _status(413)),
    Case("a login form from another site",
         page("POST", f"/competitions/{SLUG}/login", data={"token": "x", "csrf": "x"},
              headers={"Origin": "http://evil.example"}), _status(403)),
    Case("a page upload without the CSRF value",
         page("POST", f"/competitions/{SLUG}/submit",
              files={"file": ("p.csv", b"id,label\n1,2\n")}), _status(403)),
    Case("a selection form with 300 fields",
         page("POST", f"/competitions/{SLUG}/selection", csrf=True,
              data={"submission_id": ["1"] * 300}), _status(400)),
    Case("a selection form with a word for an id",
         page("POST", f"/competitions/{SLUG}/selection", csrf=True,
              data={"submission_id": "one"}), _status(400)),
    Case("a selection form with an id past int32",
         page("POST", f"/competitions/{SLUG}/selection", csrf=True,
              data={"submission_id": str(2**31)}), _status(404)),
    Case("the shake-up plot before the reveal",
         page("GET", f"/competitions/{SLUG}/shakeup.png"), _status(403)),
    Case("a page slug with a newline", raw(_simple("GET", f"/competitions/{SLUG}%0A/submit")),
         _status(404)),
    Case("an unknown competition's page", page("GET", "/competitions/no-such-class"),
         _status(404)),
    Case("an unknown competition on the API", api("GET", "/api/competitions/no-such-class"),
         _status(404)),
]


def _unclean(site: RequestSite, answer: Answer) -> str | None:
    """Why an answer is not a clean refusal (None when it is)."""
    text = answer.body.decode("utf-8", "replace")
    lowered = text.lower()
    for secret in INTERNALS + TEACHER_COMMANDS + (str(site.home.parent).lower(),
                                                  PACKAGE_DIR.lower()):
        if secret in lowered:
            at = lowered.index(secret)
            return f"the answer shows {secret!r}: {text[max(at - 150, 0):at + 150]!r}"
    if "json" in answer.content_type:
        try:
            detail = json.loads(text)["detail"]
        except (ValueError, KeyError, TypeError):
            return f"no JSON detail: {text[:300]!r}"
        if isinstance(detail, list):     # FastAPI's validation errors: a list of {"msg"}
            detail = "; ".join(str(d.get("msg", d)) for d in detail)
        if not 0 < len(str(detail)) < 600 or "\n" in str(detail):
            return f"not a one-line detail: {str(detail)[:300]!r}"
    elif "html" not in answer.content_type and len(text) > 200:
        return f"a long {answer.content_type or 'untyped'} answer: {text[:300]!r}"
    return None


def test_there_are_many_distinct_cases():
    assert len(CASES) >= 20
    assert len({c.name for c in CASES}) == len(CASES)
    assert all(c.status and all(400 <= s < 500 for s in c.status) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request_gets_a_clean_4xx(site, case):
    answer = case.send(site)
    problem = None
    if answer.status not in case.status:
        problem = (f"status {answer.status} (expected {sorted(case.status)}): "
                   f"{answer.body[:300]!r}")
    elif answer.responses != 1:
        problem = f"{answer.responses} answers on the connection of one request"
    else:
        problem = _unclean(site, answer)
    assert problem is None, f"{case.name}: {problem}"


def test_nothing_was_counted_or_stored(site, make_predictions):
    # runs after the cases of its backend (module order); a case run alone passes it too
    assert snapshot(site) == site.before
    with site.client() as c:
        again = c.post(UPLOAD_URL, files={"file": ("again.csv", make_predictions(
            site.home, SLUG, 0.85, 0.8, seed=4))})
    assert again.status_code == 201, again.text
    assert again.json()["remaining_today"] == site.remaining - 1
