"""The JSON API on SQLite and PostgreSQL: every endpoint and status code, the upload cap,
bad-token throttling, --workers 2.

Routes, codes and bodies are checked on the app in process (TestClient); what needs a
socket (a 413 answered while the body is still streaming in, several worker processes)
runs against a real `harness serve` on the same home and database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import select
import shutil
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from harness.home import RELEASED_FILES, load_prepared
from harness.scoring import AnswerKey, round_public, score
from harness.service import Harness

SMALL_CAP_MB = 0.1      # fertility's upload cap in these tests (a real submission is ~38 KB)


class Api:
    """The app in process on one home and database, the teacher's handle on them, and a
    real server on the same ones for the tests that need a socket (started on first use)."""

    def __init__(self, server, start_server, database_url):
        self.server, self.h, self.home = server, server.h, server.home
        self._start_server, self._database_url, self._live = start_server, database_url, None
        self._teams = 0

    def team(self, name=None) -> str:
        """A new team's token (each test uses its own teams: limits are per team)."""
        self._teams += 1
        return self.h.add_team(name or f"team-{self._teams}-{time.monotonic_ns() % 10**6}")[1]

    def client(self, token=None, **kwargs) -> TestClient:
        return self.server.client(token, **kwargs)

    def upload(self, token, slug, data: bytes, message="", filename="predictions.csv"):
        with self.client(token) as c:
            return c.post(f"/api/competitions/{slug}/submissions",
                          files={"file": (filename, data, "text/csv")},
                          data={"message": message})

    @property
    def live_url(self) -> str:
        """The base URL of a real `harness serve` on this home and database."""
        if self._live is None:
            self._live = self._start_server(self.home, self._database_url)
        return self._live.url


def _home_with_small_cap(source, target: Path) -> Path:
    shutil.copytree(source, target)
    toml = target / "competitions" / "fertility" / "competition.toml"
    text = re.sub(r"(?m)^max_upload_mb\s*=.*\n", "", toml.read_text())
    toml.write_text(text.replace("[rules]\n", f"[rules]\nmax_upload_mb = {SMALL_CAP_MB}\n"))
    assert load_prepared(target, "fertility").spec.rules.max_upload_mb == SMALL_CAP_MB
    return target


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, _prepared_home, tmp_path_factory, serve_app, start_server):
    database_url = request.getfixturevalue("fresh_postgres_url")() \
        if request.param == "postgres" else None
    home = _home_with_small_cap(_prepared_home, tmp_path_factory.mktemp(request.param) / "home")
    return Api(serve_app(home, database_url), start_server, database_url)


def sample(home, slug) -> bytes:
    return (load_prepared(home, slug).released_dir / "sample_submission.csv").read_bytes()


# --- reading ----------------------------------------------------------------------------------

def test_openapi_lists_every_route(api):
    with api.client() as c:
        assert c.get("/docs").status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
    assert {"/api/competitions", "/api/competitions/{slug}",
            "/api/competitions/{slug}/files/{name}", "/api/competitions/{slug}/submissions",
            "/api/competitions/{slug}/selection",
            "/api/competitions/{slug}/leaderboard"} <= set(paths)
    assert "multipart/form-data" in paths["/api/competitions/{slug}/submissions"]["post"][
        "requestBody"]["content"]


def test_the_schema_and_a_json_body_are_read_without_warnings(api):
    # a deferred model as a route's body made pydantic warn (an alias with no effect) on
    # the first /openapi.json and the first request: a fresh app, warnings as errors
    from harness.server.app import create_app
    app = create_app(api.h)
    _, teacher = api.h.issue_teacher_token("warnings")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = app.openapi()["paths"]
        with TestClient(app, headers={"Authorization": f"Bearer {teacher}"}) as c:
            added = c.post("/api/admin/teams", json={"name": f"w{time.monotonic_ns()}"})
    assert "/api/competitions/{slug}/submissions" in paths
    assert added.status_code == 201, added.text


def test_competitions_need_a_token(api):
    token = api.team()
    with api.client(token) as c:
        listing = c.get("/api/competitions")
        one = c.get("/api/competitions/digits")
        unknown = c.get("/api/competitions/no-such-thing")
    assert listing.status_code == 200
    slugs = {c["slug"] for c in listing.json()}
    assert {"digits", "breast-cancer", "fertility", "noise-binary"} <= slugs
    digits = next(c for c in listing.json() if c["slug"] == "digits")
    assert digits["metric"] == "accuracy" and digits["state"] == "open"
    assert set(digits["files"]) == set(RELEASED_FILES)
    assert one.status_code == 200 and one.json()["rules"]["daily_limit"] == 5
    assert unknown.status_code == 404 and "no-such-thing" in unknown.json()["detail"]
    with api.client() as c:
        assert c.get("/api/competitions").status_code == 401
        assert c.get("/api/competitions/digits").status_code == 401


def test_download_released_files(api):
    token = api.team()
    released = load_prepared(api.home, "digits").released_dir
    with api.client(token) as c:
        for name in RELEASED_FILES:
            r = c.get(f"/api/competitions/digits/files/{name}")
            assert r.status_code == 200, name
            assert r.content == (released / name).read_bytes()
            assert name in r.headers["content-disposition"]
        assert c.get("/api/competitions/digits/files/solution.csv").status_code == 404
        assert c.get("/api/competitions/nope/files/train.csv").status_code == 404
    with api.client() as c:
        assert c.get("/api/competitions/digits/files/train.csv").status_code == 401


# --- uploads ----------------------------------------------------------------------------------

def test_scored_upload_is_201_with_public_score_and_remaining(api, make_predictions):
    token = api.team()
    data = make_predictions(api.home, "digits", public_right=0.9, private_right=0.6)
    r = api.upload(token, "digits", data, message="first try")
    assert r.status_code == 201, r.text
    body = r.json()
    key = AnswerKey.from_prepared(load_prepared(api.home, "digits"))
    expected = score(data, key)
    assert body["status"] == "scored" and body["message"] == "first try"
    assert body["public_score"] == round_public(expected.public, 5)
    assert body["private_score"] is None
    assert body["remaining_today"] == 4
    assert body["selected"] is False and body["late"] is False
    assert body["submitted_at"].endswith(("Z", "+00:00"))


def test_invalid_file_is_400_and_not_counted(api):
    token = api.team()
    r = api.upload(token, "digits", b"id,label\n1,3\n")
    assert r.status_code == 400
    assert r.json()["detail"]                  # says what is wrong
    r = api.upload(token, "digits", b"")
    assert r.status_code == 400
    with api.client(token) as c:               # no file field at all
        r = c.post("/api/competitions/digits/submissions", data={"message": "x"})
    assert r.status_code == 400 and "file" in r.json()["detail"]
    ok = api.upload(token, "digits", sample(api.home, "digits"))
    assert ok.status_code == 201 and ok.json()["remaining_today"] == 4


def test_daily_limit_is_429(api):
    token = api.team()
    data = sample(api.home, "digits")
    answers = [api.upload(token, "digits", data) for _ in range(5)]
    assert [a.status_code for a in answers] == [201] * 5
    assert [a.json()["remaining_today"] for a in answers] == [4, 3, 2, 1, 0]
    over = api.upload(token, "digits", data)
    assert over.status_code == 429 and over.json()["detail"]


def test_an_upload_over_the_limit_is_refused_before_its_form_is_read(api, monkeypatch):
    """The token and the limits are checked in one read before the body is parsed: a
    team at its daily limit gets 429 even for a body that is not a form, and the form
    reader never runs."""
    from harness.server import api as api_routes

    token = api.team()
    data = sample(api.home, "digits")
    assert [api.upload(token, "digits", data).status_code for _ in range(5)] == [201] * 5
    read = []

    async def reading(*args, **kwargs):
        read.append(1)
        raise AssertionError("the form was read")

    monkeypatch.setattr(api_routes, "read_upload", reading)
    with api.client(token) as c:
        over = c.post("/api/competitions/digits/submissions", content=b"not a form",
                      headers={"Content-Type": "text/plain"})
    assert over.status_code == 429 and "today's limit" in over.json()["detail"]
    assert read == []


def test_unknown_competition_upload_is_404(api):
    assert api.upload(api.team(), "nope", b"id,label\n").status_code == 404
    # a wrong token hears nothing about the competition, whatever its slug
    for slug in ("nope", "digits", "bad..slug"):
        assert api.upload("wrong-token", slug, b"id,label\n").status_code == 401


def test_team_sees_only_its_own_submissions(api):
    a, b = api.team(), api.team()
    data = sample(api.home, "digits")
    mine = {api.upload(a, "digits", data, "a1").json()["id"],
            api.upload(a, "digits", data, "a2").json()["id"]}
    theirs = api.upload(b, "digits", data, "b1").json()["id"]
    with api.client(a) as c:
        listed = c.get("/api/competitions/digits/submissions").json()
    assert {s["id"] for s in listed} == mine
    assert theirs not in {s["id"] for s in listed}
    assert [s["message"] for s in listed] == ["a2", "a1"]       # newest first
    assert len({s["team"] for s in listed}) == 1
    with api.client() as c:
        assert c.get("/api/competitions/digits/submissions").status_code == 401


def test_selection_replaces_and_refuses_others(api):
    a, b = api.team(), api.team()
    data = sample(api.home, "digits")
    ids = [api.upload(a, "digits", data).json()["id"] for _ in range(3)]
    other = api.upload(b, "digits", data).json()["id"]
    with api.client(a) as c:
        put = c.put("/api/competitions/digits/selection", json={"submission_ids": ids[:2]})
        assert put.status_code == 200, put.text
        assert {s["id"] for s in put.json()} == set(ids[:2])
        put = c.put("/api/competitions/digits/selection", json={"submission_ids": [ids[2]]})
        assert {s["id"] for s in put.json()} == {ids[2]}
        listed = c.get("/api/competitions/digits/submissions").json()
        assert {s["id"] for s in listed if s["selected"]} == {ids[2]}
        too_many = c.put("/api/competitions/digits/selection", json={"submission_ids": ids})
        assert too_many.status_code == 400 and too_many.json()["detail"]
        foreign = c.put("/api/competitions/digits/selection", json={"submission_ids": [other]})
        assert foreign.status_code in (400, 403, 404)
        assert c.put("/api/competitions/digits/selection", json={"ids": [1]}).status_code == 422
    with api.client() as c:
        assert c.put("/api/competitions/digits/selection",
                     json={"submission_ids": ids[:1]}).status_code == 401


# --- leaderboards, close and reveal -----------------------------------------------------------

def test_public_board_needs_no_token_and_names_the_caller(api, make_predictions):
    token = api.team("board-team")
    api.upload(token, "digits", make_predictions(api.home, "digits", 0.95, 0.7))
    with api.client() as c:
        board = c.get("/api/competitions/digits/leaderboard")
        assert c.get("/api/competitions/digits/leaderboard",
                     params={"board": "nonsense"}).status_code == 422
        assert c.get("/api/competitions/nope/leaderboard").status_code == 404
    assert board.status_code == 200
    body = board.json()
    assert body["competition"] == "digits" and body["board"] == "public"
    assert "your_team" not in body
    row = next(r for r in body["rows"] if r["team"] == "board-team")
    assert set(row) >= {"rank", "team", "score", "entries", "last_submission", "baseline"}
    assert [r["rank"] for r in body["rows"]] == sorted(r["rank"] for r in body["rows"])
    with api.client(token) as c:
        assert c.get("/api/competitions/digits/leaderboard").json()["your_team"] == "board-team"
    with api.client("not-a-token") as c:
        assert c.get("/api/competitions/digits/leaderboard").status_code == 401


def test_close_refuses_uploads_until_reopened(api):
    token = api.team()
    data = sample(api.home, "noise-binary")
    api.h.close("noise-binary")
    try:
        closed = api.upload(token, "noise-binary", data)
        assert closed.status_code == 403 and closed.json()["detail"]
    finally:
        api.h.reopen("noise-binary")
    assert api.upload(token, "noise-binary", data).status_code == 201


def test_private_board_is_403_before_the_reveal_and_right_after(api, make_predictions):
    key = AnswerKey.from_prepared(load_prepared(api.home, "breast-cancer"))
    teams = {"rev-a": (1.0, 0.6), "rev-b": (0.7, 0.95)}
    expected = {}
    tokens = {}
    for name, (pub, priv) in teams.items():
        tokens[name] = api.team(name)
        data = make_predictions(api.home, "breast-cancer", pub, priv)
        assert api.upload(tokens[name], "breast-cancer", data).status_code == 201
        expected[name] = score(data, key)
    with api.client(tokens["rev-a"]) as c:
        hidden = c.get("/api/competitions/breast-cancer/leaderboard", params={"board": "private"})
        assert hidden.status_code == 403 and hidden.json()["detail"]
        public = c.get("/api/competitions/breast-cancer/leaderboard").json()
    assert [r["team"] for r in public["rows"] if not r["baseline"]][:2] == ["rev-a", "rev-b"]
    with api.client() as c:
        assert c.get("/api/competitions/breast-cancer/leaderboard",
                     params={"board": "private"}).status_code == 401

    api.h.close("breast-cancer")
    api.h.reveal("breast-cancer")
    with api.client(tokens["rev-a"]) as c:
        private = c.get("/api/competitions/breast-cancer/leaderboard", params={"board": "private"})
        mine = c.get("/api/competitions/breast-cancer/submissions").json()
    assert private.status_code == 200
    rows = [r for r in private.json()["rows"] if not r["baseline"]]
    assert [r["team"] for r in rows] == ["rev-b", "rev-a"]       # the shake-up
    for r in rows:
        assert r["score"] == pytest.approx(expected[r["team"]].private, abs=1e-4)
    assert mine[0]["private_score"] == pytest.approx(expected["rev-a"].private, abs=1e-4)

    # after the reveal a perfect late upload is scored on both boards but never ranked
    late = api.upload(tokens["rev-b"], "breast-cancer", make_predictions(api.home, "breast-cancer"))
    assert late.status_code == 201 and late.json()["late"] is True
    assert late.json()["private_score"] == pytest.approx(1.0)
    with api.client() as c:
        after = c.get("/api/competitions/breast-cancer/leaderboard").json()
    assert [(r["team"], r["score"]) for r in after["rows"]] == \
        [(r["team"], r["score"]) for r in public["rows"]]


def test_401_never_says_which_part_was_wrong(api):
    token = api.team()
    answers = []
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"},
                    {"Authorization": f"Bearer {token[:-1]}x"}, {"Authorization": "Bearer"}):
        with api.client() as c:
            r = c.get("/api/competitions", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        answers.append(r.json())
    assert all(a == answers[0] for a in answers)


# --- the upload cap: 413 before the whole body is read ----------------------------------------

def _raw_upload(url, token, head: dict, body_chunks, chunked: bool):
    """Send an upload by hand and return (status, body) as soon as the server answers,
    stopping sending then (the server may answer before it has the whole body)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    lines = ["POST /api/competitions/fertility/submissions HTTP/1.1", f"Host: {parts.netloc}",
             f"Authorization: Bearer {token}",
             "Content-Type: multipart/form-data; boundary=XyZ"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent = 0
    for chunk in body_chunks:
        if select.select([sock], [], [], 0)[0]:     # answered already: stop sending
            break
        try:
            sock.sendall((f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    data = b""
    try:
        while select.select([sock], [], [], 30)[0]:
            more = sock.recv(65536)
            data += more
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if not more or (length is not None and len(body) >= length):
                break
    except ConnectionResetError:
        pass
    sock.close()
    return int(data.split(b" ", 2)[1]), data, sent


def test_oversize_declared_length_is_413_without_reading_the_body(api):
    token, url = api.team(), api.live_url
    start = time.monotonic()
    status, raw, sent = _raw_upload(url, token, {"Content-Length": str(500 * 2**20)},
                                    [b"--XyZ\r\n"], chunked=False)
    assert status == 413 and b"max_upload_mb" in raw
    assert sent < 100 and time.monotonic() - start < 5      # answered with 500 MB unsent


def test_oversize_streamed_body_is_413_while_streaming(api):
    token = api.team()
    chunk = b"1,2.0\n" * 10_000                            # 60 KB of CSV rows
    head = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\nid,fertility\n")
    status, raw, sent = _raw_upload(api.live_url, token, {}, [head] + [chunk] * 1000,
                                    chunked=True)
    assert status == 413 and b"max_upload_mb" in raw
    assert sent < 5 * 2**20                                 # stopped far before 60 MB


def test_oversize_regular_upload_is_413_and_a_small_one_passes(api):
    token = api.team()
    real = sample(api.home, "fertility")
    assert len(real) < SMALL_CAP_MB * 2**20
    assert api.upload(token, "fertility", real).status_code == 201
    big = real + b"\n" * int(SMALL_CAP_MB * 2**20)
    r = api.upload(token, "fertility", big)
    assert r.status_code == 413 and "max_upload_mb" in r.json()["detail"]


def test_a_large_upload_is_read_in_memory_not_spooled_to_disk(api, monkeypatch):
    """A 2 MB upload (a spooled form moves to a temporary file on disk past 1 MB) is read
    in memory under the competition's cap, and scored like the same rows without padding."""
    import tempfile

    def no_disk(*args, **kwargs):
        raise AssertionError("the upload went through a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_disk)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_disk)
    real = sample(api.home, "digits")
    r = api.upload(api.team(), "digits", real + b"\n" * 2 * 2**20)
    assert r.status_code == 201, r.text
    assert r.json()["public_score"] == api.upload(api.team(), "digits",
                                                  real).json()["public_score"]


@pytest.mark.parametrize("form, problem", [
    ({"files": [("file", ("a.csv", b"id,label\n")), ("file", ("b.csv", b"id,label\n"))]},
     "more than one file"),
    ({"files": {"file": ("a.csv", b"id,label\n")}, "data": {f"f{i}": "x" for i in range(5)}},
     "more than 4 fields"),
    ({"files": {"file": ("a.csv", b"id,label\n")}, "data": {"message": "m" * (2**20 + 1)}},
     "over 1 MB"),
    ({"data": {"file": "id,label\n1,2\n"}}, "no file in the upload"),
    ({"content": b"id,label\n", "headers": {"Content-Type": "multipart/form-data"}},
     "names no boundary"),
    ({"content": b"--x\r\nContent-Disposition: form-data\r\n\r\nhi\r\n--x--\r\n",
      "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, "a part has no name"),
])
def test_a_malformed_upload_form_is_400_saying_what_to_send(api, form, problem):
    token = api.team()
    with api.client(token) as c:
        r = c.post("/api/competitions/digits/submissions", **form)
    assert r.status_code == 400 and problem in r.json()["detail"]
    assert "`file`" in r.json()["detail"] or "message short" in r.json()["detail"]
    assert api.h.submissions("digits", api.h.authenticate(token)) == []


def test_a_burst_is_scored_a_few_uploads_at_a_time_and_all_answered(api, monkeypatch):
    """Uploads arriving at once at one server process: at most SCORING_SLOTS are scored at
    a time (dozens of threads sharing the interpreter lock starve some uploads for
    seconds), the others wait their turn, and every one is answered."""
    from harness.server import api as api_routes
    from harness.server.app import create_app

    running, most, lock = 0, 0, threading.Lock()
    real_submit = api.h.submit_checked

    def submit(*args, **kwargs):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.05)                     # long enough for the others to pile up
            return real_submit(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(api.h, "submit_checked", submit)
    tokens = [api.team() for _ in range(3 * api_routes.SCORING_SLOTS)]
    data = sample(api.home, "digits")

    async def burst():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(api.h)),
                                     base_url="http://harness.test") as client:
            return await asyncio.gather(*(client.post(
                "/api/competitions/digits/submissions",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": ("p.csv", data, "text/csv")}) for token in tokens))

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [201] * len(tokens)
    assert most == api_routes.SCORING_SLOTS


# --- throttling and workers -------------------------------------------------------------------

def test_repeated_bad_tokens_are_slowed_then_refused(api):
    # from an address of its own (the throttle counts per client address), so that the
    # other tests on this app are not blocked
    client = api.client(address=f"192.0.2.{1 + time.monotonic_ns() % 250}")

    def get(token):
        start = time.monotonic()
        r = client.get("/api/competitions", headers={"Authorization": f"Bearer {token}"})
        return r, time.monotonic() - start

    good = api.team()
    quick = [get("guess") for _ in range(5)]
    assert [r.status_code for r, _ in quick] == [401] * 5
    slowed, took = get("guess")
    assert slowed.status_code == 401 and took >= 0.2 > max(t for _, t in quick) - 0.05
    assert get(good)[0].status_code == 200
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = [r.status_code for r, _ in pool.map(get, ["guess"] * 30)]
    assert set(codes) <= {401, 429} and 429 in codes
    blocked, _ = get(good)                     # blocked before the token is even looked at
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    with api.client(good) as others:          # other addresses are not
        assert others.get("/api/competitions").status_code == 200


def _workers(pid: int) -> list[int]:
    """The worker processes uvicorn spawned (not multiprocessing's resource tracker)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                out.append(int(child))
    return out


def test_two_workers_serve_one_sqlite_home(prepared_home, start_server):
    harness = Harness(prepared_home)
    tokens = [harness.add_team(f"w{i}")[1] for i in range(8)]
    server = start_server(prepared_home, workers=2)
    deadline = time.monotonic() + 30
    while len(_workers(server.process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_workers(server.process.pid)) == 2
    data = sample(prepared_home, "digits")

    def upload(token):
        with httpx.Client(base_url=server.url, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as c:
            return c.post("/api/competitions/digits/submissions",
                          files={"file": ("p.csv", data, "text/csv")}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(upload, tokens * 2))
    assert codes == [201] * 16
    board = httpx.get(server.url + "/api/competitions/digits/leaderboard").json()
    assert {r["team"] for r in board["rows"] if not r["baseline"]} == {f"w{i}" for i in range(8)}
    assert all(r["entries"] == 2 for r in board["rows"] if not r["baseline"])
    # both workers serve: each ends up holding the one SQLite file open
    db = (prepared_home / "harness.db").resolve()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
            _has_open(pid, db) for pid in _workers(server.process.pid)):
        httpx.get(server.url + "/api/competitions/digits/leaderboard")   # a new connection each
    assert all(_has_open(pid, db) for pid in _workers(server.process.pid))


def _listening(port: int) -> int:
    """How many TCP sockets on this machine listen on ``port`` (from /proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads "
                    "connections on Linux only; elsewhere the workers share one socket")
def test_each_worker_listens_on_a_socket_of_its_own(prepared_home, start_server):
    """On one shared socket the first worker to wake accepts a whole burst of connections
    while the others idle; with a socket per worker (SO_REUSEPORT) the kernel spreads
    them. Every socket is served: 32 connections at once are all answered."""
    server = start_server(prepared_home, workers=3)
    claims = _claims_of_workers(server.process.pid, 3)
    assert sorted(claims.values()) == ["socket-0.lock", "socket-1.lock", "socket-2.lock"]
    assert _listening(urlsplit(server.url).port) == 3
    assert _burst(server.url) == [200] * 32
    # a worker that dies leaves its socket to its replacement (uvicorn restarts it):
    # connections the kernel sends to that socket are still answered
    killed = next(pid for pid, lock in claims.items() if lock == "socket-1.lock")
    os.kill(killed, signal.SIGKILL)
    claims = _claims_of_workers(server.process.pid, 3, gone=killed)
    assert sorted(claims.values()) == ["socket-0.lock", "socket-1.lock", "socket-2.lock"]
    assert _burst(server.url) == [200] * 32
    # uvicorn's "one worker less" signal would leave a socket unserved: it is ignored
    os.kill(server.process.pid, signal.SIGTTOU)
    time.sleep(1.5)                        # the supervisor looks at signals every 0.5 s
    assert _claims_of_workers(server.process.pid, 3) == claims
    assert _burst(server.url) == [200] * 32


def _claims_of_workers(server_pid: int, n: int, gone: int | None = None,
                       timeout: float = 60) -> dict[int, str]:
    """Each of the ``n`` workers' lock file (the socket it serves), once every worker has
    claimed one (and ``gone`` is no longer among them)."""
    deadline = time.monotonic() + timeout
    while True:
        workers = [pid for pid in _workers(server_pid) if pid != gone]
        claims = {}
        for pid in workers:
            try:
                names = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
            except OSError:
                continue                   # a worker that just ended
            locks = [Path(n).name for n in names if re.search(r"socket-\d+\.lock$", n)]
            if locks:
                claims[pid] = locks[0]
        if len(workers) == n and len(claims) == n or time.monotonic() > deadline:
            return claims
        time.sleep(0.2)


def _burst(url: str, connections: int = 32) -> list[int]:
    """The status of one board request on each of ``connections`` opened at once."""
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(connections)]
    try:
        with concurrent.futures.ThreadPoolExecutor(connections) as pool:
            return list(pool.map(lambda c: c.get("/api/competitions/digits/leaderboard")
                                 .status_code, clients))
    finally:
        for c in clients:
            c.close()


def _has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    return any(fd.resolve() == path for fd in fds.iterdir() if fd.is_symlink())


def test_a_stream_of_refused_files_gets_429_with_a_retry_time(api):
    allowed = load_prepared(api.home, "digits").spec.rules.refusal_limit
    token = api.team()
    answers = [api.upload(token, "digits", b"id,label\n1,3\n") for _ in range(allowed)]
    assert {a.status_code for a in answers} == {400}
    over = api.upload(token, "digits", sample(api.home, "digits"))
    assert over.status_code == 429 and "try again in" in over.json()["detail"]
    assert 1 <= int(over.headers["Retry-After"]) <= 601
    with api.client(token) as c:
        listed = c.get("/api/competitions/digits/submissions")
    assert int(listed.headers["X-Total-Count"]) == allowed     # the 429 left nothing
    other = api.team()
    assert api.upload(other, "digits", sample(api.home, "digits")).status_code == 201


def test_listings_are_paginated(api):
    token = api.team()
    for k in range(3):
        assert api.upload(token, "digits", b"bad", message=str(k)).status_code == 400
    with api.client(token) as c:
        first = c.get("/api/competitions/digits/submissions", params={"limit": 2})
        assert [r["message"] for r in first.json()] == ["2", "1"]
        assert first.headers["X-Total-Count"] == "3"
        nxt = re.match(r'<([^>]+)>; rel="next"', first.headers["Link"]).group(1)
        assert [r["message"] for r in c.get(nxt).json()] == ["0"]
        assert c.get("/api/competitions/digits/submissions",
                     params={"limit": 501}).status_code == 422
        board = c.get("/api/competitions/digits/leaderboard", params={"limit": 1}).json()
        assert len(board["rows"]) <= 1 and board["total_rows"] >= len(board["rows"])


# --------------------------------------------------------------- the board's ETag


def _board(c, slug="digits", tag=None, **params):
    return c.get(f"/api/competitions/{slug}/leaderboard", params=params,
                 headers={"If-None-Match": tag} if tag else {})


def test_an_unchanged_board_is_304_without_drawing_it(api, make_predictions, monkeypatch):
    token = api.team("etag-team")
    api.upload(token, "digits", make_predictions(api.home, "digits", 0.8, 0.8))
    with api.client() as c:
        first = _board(c)
        tag = first.headers["ETag"]
        assert first.status_code == 200 and first.headers["Cache-Control"] == "no-cache"
        assert re.fullmatch(r'"[0-9a-f]{24}"', tag)
        assert _board(c).headers["ETag"] == tag            # the same board, the same tag
        # an idle watcher's request: no board is drawn (no ranking, no uncertainty)
        served = api.server.app.state.harness
        monkeypatch.setattr(served.boards, "leaderboard", lambda *a, **k: pytest.fail(
            "a 304 drew the board"))
        for sent in (tag, f"W/{tag}", f'"other", {tag}', "*"):
            again = _board(c, tag=sent)
            assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", tag)
        monkeypatch.undo()
        assert _board(c, tag='"stale"').status_code == 200

        # a new upload is a new board: 200 with a new tag, and the old one no longer matches
        api.upload(token, "digits", make_predictions(api.home, "digits", 0.9, 0.8, seed=1))
        changed = _board(c, tag=tag)
        assert changed.status_code == 200 and changed.json()["rows"]
        assert changed.headers["ETag"] != tag
        assert _board(c, tag=changed.headers["ETag"]).status_code == 304


def test_the_tag_differs_per_board_page_caller_and_competition(api, make_predictions):
    token = api.team("etag-pages")
    api.upload(token, "digits", make_predictions(api.home, "digits", 0.7, 0.7))
    with api.client() as anyone, api.client(token) as team:
        tags = [_board(anyone).headers["ETag"],
                _board(anyone, limit=1).headers["ETag"],
                _board(anyone, offset=1).headers["ETag"],
                _board(team).headers["ETag"],                 # names your_team
                _board(anyone, slug="fertility").headers["ETag"]]
        assert len(set(tags)) == len(tags), tags
        # another team's tag does not match: its answer names another your_team
        assert _board(team, tag=tags[0]).status_code == 200


def test_the_tag_follows_names_state_and_the_private_board_stays_hidden(api, make_predictions):
    token = api.team("etag-old-name")
    api.upload(token, "noise-binary", sample(api.home, "noise-binary"))
    with api.client() as c:
        tag = _board(c, slug="noise-binary").headers["ETag"]
        api.h.rename_team("etag-old-name", "etag-new-name")
        renamed = _board(c, slug="noise-binary", tag=tag)
        assert renamed.status_code == 200
        assert "etag-new-name" in [r["team"] for r in renamed.json()["rows"]]
        tag = renamed.headers["ETag"]
        api.h.close("noise-binary")     # the page shows the state: closing is a change
        try:
            closed = _board(c, slug="noise-binary", tag=tag)
            assert closed.status_code == 200 and closed.headers["ETag"] != tag
        finally:
            api.h.reopen("noise-binary")
        assert _board(c, slug="noise-binary", tag=tag).status_code == 304
    with api.client(token) as c:
        # no tag opens the private board before the reveal
        hidden = _board(c, slug="noise-binary", tag="*", board="private")
        assert hidden.status_code == 403 and "ETag" not in hidden.headers
