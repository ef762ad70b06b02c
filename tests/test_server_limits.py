"""What keeps one client from starving the server (red-team issue 12, breaks 1 and 5).

Break 1: a huge request body, with or without a token, must be refused before it is read
(64 KiB for the JSON API and the page forms; the upload routes take their competition's
cap), and it must not stall anyone else. Break 5: connections that send half a request
("slowloris") must not hold every connection: headers have a deadline
(``--header-timeout``) and one address may hold only so many connections
(``--max-connections-per-ip``). Real `harness serve` processes on loopback; 127.0.0.2 is
"another client" (all of 127/8 is loopback on Linux).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import h11
import httpx
import pytest
from test_pages import SLUG, login, upload

from harness.server import limits
from harness.service import Harness

BIG = 40 * 2**20                 # the red team's 40 MiB body
SELECTION = f"/api/competitions/{SLUG}/selection"
BOARD = f"/api/competitions/{SLUG}/leaderboard"


@pytest.fixture
def h(classroom_harness):
    return classroom_harness


@pytest.fixture
def client(classroom_client):
    return classroom_client


def _chunks(total: int, head: bytes = b'{"submission_ids": [', size: int = 2**16):
    """A JSON-looking body of ``total`` bytes, sent chunked (no Content-Length)."""
    yield head
    for _ in range((total - len(head)) // size):
        yield b"1," * (size // 2)


# --- break 1: body caps (in process) ----------------------------------------------------------

def test_a_json_body_over_64_kib_is_refused_with_the_limit_and_the_fix(client, h):
    _, token = h.add_team("owls")
    auth = {"Authorization": f"Bearer {token}"}
    declared = client.put(SELECTION, content=b" " * (limits.JSON_BODY_LIMIT + 1), headers=auth)
    streamed = client.put(SELECTION, content=_chunks(4 * limits.JSON_BODY_LIMIT), headers=auth)
    for r in (declared, streamed):
        assert r.status_code == 413, r.text
        detail = r.json()["detail"]
        assert "64 KiB" in detail and "send only the fields" in detail
    # a page form gets the same small cap
    login_form = client.post(f"/competitions/{SLUG}/login", data={"token": "x" * 70_000})
    assert login_form.status_code == 413
    assert client.put(SELECTION, json={"submission_ids": []}, headers=auth).status_code == 200


def test_the_upload_routes_take_files_over_the_json_cap(client, h, make_predictions):
    """Both upload routes keep their own (competition) cap, far above 64 KiB."""
    _, token = h.add_team("owls")
    data = make_predictions(h.home, SLUG, 0.9, 0.9)
    long_message = "m" * (2 * limits.JSON_BODY_LIMIT)       # kept, cut to 2,000 characters
    api = client.post(f"/api/competitions/{SLUG}/submissions",
                      headers={"Authorization": f"Bearer {token}"},
                      files={"file": ("p.csv", data, "text/csv")}, data={"message": long_message})
    assert api.status_code == 201, api.text
    login(client, token)
    page = upload(client, data, message=long_message)
    assert page.status_code == 200 and "submitted=" in str(page.url)
    middleware = next(m for m in client.app.user_middleware if m.cls is limits.BodySizeLimit)
    cap_for = limits.BodySizeLimit(None, *middleware.args, **middleware.kwargs).cap_for
    scope = {"type": "http", "root_path": ""}
    assert cap_for({**scope, "method": "POST", "path": "/competitions/x/submit"}) \
        is limits.UPLOAD_CAP
    for method, path in [("GET", "/competitions/x/submit"), ("POST", "/competitions/x/login"),
                         ("PUT", "/api/competitions/x/selection"), ("POST", "/logout")]:
        assert cap_for({**scope, "method": method, "path": path}) is limits.JSON_CAP, path


def test_the_selection_body_is_validated_after_the_token_and_documented(client, h):
    _, token = h.add_team("owls")
    auth = {"Authorization": f"Bearer {token}"}
    bad_json = client.put(SELECTION, content=b'{"submission_ids": [1,', headers=auth)
    wrong = client.put(SELECTION, json={"submission_ids": ["one"]}, headers=auth)
    for r in (bad_json, wrong):
        assert r.status_code == 422
        errors = r.json()["detail"]
        assert errors and all(e["loc"][0] == "body" and e["msg"] for e in errors)
    assert "JSON" in bad_json.json()["detail"][0]["msg"]
    assert wrong.json()["detail"][0]["loc"] == ["body", "submission_ids", 0]
    # without a token the (broken) body is never looked at
    assert client.put(SELECTION, content=b"{not json").status_code == 401
    paths = client.get("/openapi.json").json()["paths"]
    body = paths["/api/competitions/{slug}/selection"]["put"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["required"] and schema["required"] == ["submission_ids"]


# --- real servers ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def guarded(_prepared_home, tmp_path_factory, start_server):
    """A server with a 2 s header timeout and the default 64 connections per address."""
    home = tmp_path_factory.mktemp("guarded") / "home"
    shutil.copytree(_prepared_home, home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HEADER_TIMEOUT", "2")
        mp.delenv("HARNESS_MAX_CONNECTIONS_PER_IP", raising=False)
        server = start_server(home)
    server.h = Harness(home)
    server.address = urlsplit(server.url).hostname, urlsplit(server.url).port
    return server


def _memory(server, field="VmHWM") -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(li for li in status.splitlines() if li.startswith(field + ":")).split()[1]) \
        * 1024


def _connect(address, source="127.0.0.1") -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(address)
    return s


def _read_all(s: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes the connection (or ``timeout`` passes)."""
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([s], [], [], deadline - time.monotonic())[0]:
            break
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data + b"<reset>"
        if not chunk:
            return data + b"<closed>"
        data += chunk
    return data


def _answer(s: socket.socket, conn: h11.Connection, timeout: float = 5.0):
    """The next whole response on ``s``: ``(status, body)``, parsed by h11."""
    status, body, deadline = None, b"", time.monotonic() + timeout
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            assert select.select([s], [], [], max(0.0, deadline - time.monotonic()))[0], \
                "no answer in time"
            conn.receive_data(s.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, body


def _request_bytes(conn: h11.Connection, target: str, method="GET", headers=()) -> bytes:
    data = conn.send(h11.Request(method=method, target=target, headers=[("Host", "x"), *headers]))
    return data + (conn.send(h11.EndOfMessage()) if method == "GET" else b"")


def test_a_huge_body_without_a_token_is_refused_unread_and_stalls_no_one(guarded):
    peak = _memory(guarded)
    answers, stop = [], threading.Event()

    def poll_board():
        with httpx.Client(base_url=guarded.url, timeout=30,
                          transport=httpx.HTTPTransport(local_address="127.0.0.2")) as c:
            while not stop.is_set():
                t = time.monotonic()
                status = c.get(BOARD).status_code
                answers.append((status, time.monotonic() - t))

    poller = threading.Thread(target=poll_board)
    poller.start()
    try:
        time.sleep(0.3)
        # declared length: answered from the headers alone, no byte of the body sent
        with _connect(guarded.address) as s:
            t = time.monotonic()
            conn = h11.Connection(h11.CLIENT)
            s.sendall(_request_bytes(conn, SELECTION, "PUT", [
                ("Content-Type", "application/json"), ("Content-Length", str(BIG))]))
            status, answer = _answer(s, conn)
            declared_s = time.monotonic() - t
        # chunked: no length to check, so the route refuses the token before reading
        with httpx.Client(base_url=guarded.url, timeout=30) as c:
            t = time.monotonic()
            chunked = c.put(SELECTION, content=_chunks(BIG),
                            headers={"Content-Type": "application/json"})
            chunked_s = time.monotonic() - t
        time.sleep(0.3)
    finally:
        stop.set()
        poller.join()
    assert status == 413 and "64 KiB" in json.loads(answer)["detail"], answer
    assert declared_s < 1.0, declared_s
    assert chunked.status_code == 401 and chunked_s < 3.0, (chunked.status_code, chunked_s)
    assert answers and all(status == 200 for status, _ in answers)
    slowest = max(seconds for _, seconds in answers)
    assert slowest < 1.0, f"the board took {slowest:.2f} s while the big bodies came in"
    grew = _memory(guarded) - peak
    assert grew < 8 * 2**20, f"the server's peak memory grew {grew / 2**20:.1f} MiB"


def test_slowloris_is_capped_per_address_and_timed_out(guarded):
    """200 half-sent requests from one address: 64 are held (then closed at the header
    timeout), the rest refused at once; another address is served all along."""
    cap, timeout = 64, 2.0
    flood = []
    try:
        t0 = time.monotonic()
        for _ in range(200):
            s = _connect(guarded.address)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")      # ... and never the blank line
            flood.append(s)
        with httpx.Client(base_url=guarded.url, timeout=5,
                          transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
            t = time.monotonic()
            served = other.get(BOARD)
            other_s = time.monotonic() - t
        with _connect(guarded.address) as again:           # the flooding address itself
            again.sendall(f"GET {BOARD} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            refused_again = _read_all(again, 2.0)
        answers = [_read_all(s, max(0.0, t0 + timeout + 3.0 - time.monotonic())) for s in flood]
    finally:
        for s in flood:
            s.close()
    assert served.status_code == 200 and other_s < 2.0, (served.status_code, other_s)
    assert refused_again.startswith(b"HTTP/1.1 503"), refused_again[:200]
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    held = [a for a in answers if not a.startswith(b"HTTP/1.1 503")]
    assert len(refused) >= 200 - cap and len(held) <= cap
    assert b"too many connections from your address" in refused[0]
    assert all(a.endswith((b"<closed>", b"<reset>")) for a in answers), \
        "a connection was still open after the header timeout"
    assert all(a in (b"<closed>", b"<reset>") for a in held)


def test_the_header_timeout_spares_keep_alive_but_catches_a_stalled_next_request(guarded):
    conn = h11.Connection(h11.CLIENT)
    with _connect(guarded.address) as s:
        first = _request_bytes(conn, BOARD)
        s.sendall(first[:20])
        time.sleep(1.0)                                   # slow, but within the 2 s
        s.sendall(first[20:])
        assert _answer(s, conn)[0] == 200
        time.sleep(2.5)                      # idle past the header timeout (keep-alive: 5 s)
        conn.start_next_cycle()
        s.sendall(_request_bytes(conn, BOARD))
        assert _answer(s, conn)[0] == 200
        s.sendall(b"GET / HTTP/1.1\r\n")    # the next request stalls half-way
        t = time.monotonic()
        rest = _read_all(s, 6.0)
        closed_after = time.monotonic() - t
    assert rest in (b"<closed>", b"<reset>") and 1.5 < closed_after < 3.5, (rest, closed_after)


def test_the_limits_reach_every_worker(_prepared_home, tmp_path, start_server):
    home = tmp_path / "home"
    shutil.copytree(_prepared_home, home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HEADER_TIMEOUT", "1")
        mp.setenv("HARNESS_MAX_CONNECTIONS_PER_IP", "8")
        server = start_server(home, workers=2)
    address = urlsplit(server.url).hostname, urlsplit(server.url).port
    flood = []
    try:
        t0 = time.monotonic()
        for _ in range(40):
            s = _connect(address)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            flood.append(s)
        answers = [_read_all(s, max(0.0, t0 + 4.0 - time.monotonic())) for s in flood]
    finally:
        for s in flood:
            s.close()
        server.stop()
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    assert len(refused) >= 40 - 2 * 8                       # 8 per address in each worker
    assert all(a.endswith((b"<closed>", b"<reset>")) for a in answers)
    log = server.log_path.read_text()
    assert "open-file limit" in log


def test_serve_raises_the_open_file_limit_to_the_hard_limit():
    code = ("import resource, json\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
            "from harness.server.limits import raise_open_file_limit\n"
            "print(json.dumps([raise_open_file_limit(), hard]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ}).stdout
    (before, after), hard = json.loads(out)
    assert before == min(256, hard) and after == hard


def test_serve_help_documents_the_connection_limits():
    out = subprocess.run([str(Path(sys.executable).with_name("harness")), "serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for text in ("--header-timeout", "--max-connections-per-ip", "default: 10.0",
                 "default: 64", "harness serve --host 0.0.0.0 --max-connections-per-ip"):
        assert text in out, text
