"""Shared fixtures: homes, PostgreSQL databases, servers (in process and real), predictions.

Most tests of routes, status codes, bodies and secrecy serve the app in process
(:class:`AppServer`: no socket, no subprocess, seconds for a module). A real
`harness serve` subprocess (:class:`LiveServer`) is for what only a real server shows:
raw sockets and the HTTP protocol, races across processes, SIGKILL, several servers or
workers on one database, peak memory, the browser and the README.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from functools import partialmethod
from pathlib import Path
from urllib.parse import quote, unquote

import anyio
import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from anyio.from_thread import start_blocking_portal
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from harness.client import Client
from harness.home import find_spec_path, load_prepared
from harness.server.app import create_app
from harness.service import Harness
from harness.spec import set_rules
from harness.splits import prepare

POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL", "")
NO_POSTGRES = "HARNESS_TEST_POSTGRES_URL is not set (CI sets it in .ci/run)"

# Property tests explore new inputs on every developer run; CI replays a fixed set, so a
# red CI run always means a change broke something (the fuzzers found real bugs here).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (for a server started just after).

    The tests' own, so that they do not lean on the demo's helper (harness.demo).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- servers ----------------------------------------------------------------------------------


class AppServer:
    """The server's app on one home and database, served in this process (no socket).

    Parameters
    ----------
    home : path
        The home the app serves.
    database_url : str, optional
        None: SQLite in the home.

    Attributes
    ----------
    h : harness.service.Harness
        The teacher's handle on the same home and database. The app has a Harness of its
        own, as a server process would, so a test still sees whether what the teacher
        changes reaches the app through the store.
    app : fastapi.FastAPI
        The server's app (``create_app``).
    url : str
        The base URL the in-process clients use.
    """

    url = "http://testserver"

    def __init__(self, home, database_url=None):
        self.home = Path(home)
        self.h = Harness(home, database_url)
        self.app = create_app(Harness(home, database_url))
        self._stack = ExitStack()
        self._portal = None
        self._network = httpx.HTTPTransport()

    def client(self, token=None, *, address="testclient", **kwargs) -> TestClient:
        """A TestClient on the app, as a team (``token``) or no one, from ``address``.

        Like a plain httpx client (and unlike TestClient's default) it does not follow
        redirects, so a 303 is seen as a 303.
        """
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return TestClient(self.app, base_url=self.url, headers=headers, client=(address, 50000),
                          follow_redirects=kwargs.pop("follow_redirects", False), **kwargs)

    def raw(self, method, target, headers=(), body=b"", address="testclient"):
        """One request with ``target`` passed to the app as sent: (status, headers, body).

        httpx resolves ``.`` and ``..`` in a URL before sending it; a real server gets
        them as they are, so path tricks go through here, with the ASGI scope uvicorn
        builds (``path`` percent-decoded, ``raw_path`` as sent). The app runs on one event
        loop for every call, as under uvicorn; an exception in the app is raised here.
        """
        if self._portal is None:
            self._portal = self._stack.enter_context(start_blocking_portal())
        return self._portal.call(self._call, method, target, list(headers), body, address)

    async def _call(self, method, target, headers, body, address):
        path, _, query = target.partition("?")
        names = {k.lower() for k, _ in headers}
        headers = [(k.lower().encode(), str(v).encode()) for k, v in headers]
        if "host" not in names:
            headers.append((b"host", b"testserver"))
        if body and "content-length" not in names and "transfer-encoding" not in names:
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "root_path": "", "path": unquote(path),
                 "raw_path": path.encode(), "query_string": query.encode(), "headers": headers,
                 "client": (address, 50000), "server": ("testserver", 80), "state": {}}
        done = anyio.Event()
        pending = [{"type": "http.request", "body": body or b"", "more_body": False}]
        sent = []

        async def receive():
            if pending:
                return pending.pop()
            await done.wait()                   # the body is all read: wait for the end
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return (start["status"], [(k.decode(), v.decode()) for k, v in start["headers"]],
                b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport: requests for :attr:`url` go to the app, any other goes
        over the network (so an unreachable address is still unreachable)."""
        host = httpx.URL(self.url).host

        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.host != host:
                return self._network.handle_request(request)
            status, headers, body = self.raw(request.method, request.url.raw_path.decode(),
                                             request.headers.multi_items(), request.read())
            return httpx.Response(status, headers=headers, content=body)

        return httpx.MockTransport(handle)

    def route_clients(self, monkeypatch) -> None:
        """Make every :class:`harness.client.Client` (the student commands) use
        :meth:`transport` for the rest of the test."""
        monkeypatch.setattr(Client, "__init__",
                            partialmethod(Client.__init__, transport=self.transport()))

    def close(self) -> None:
        self._stack.close()
        self._network.close()
        self.h.close_connections()
        self.app.state.harness.close_connections()


class LiveServer:
    """One `harness serve` process on 127.0.0.1; ``url`` is its base URL."""

    def __init__(self, home, database_url=None, workers=1, log_path=None):
        self.home, self.database_url, self.workers = Path(home), database_url, workers
        self.log_path = Path(log_path or Path(home).parent / f"serve-{uuid.uuid4().hex[:6]}.log")
        self.process = None
        self.url = ""

    def start(self, timeout=120.0):   # generous: a loaded 2-core CI box imports slowly
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [str(Path(sys.executable).with_name("harness")), "serve", "--home", str(self.home),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers),
               "--log-level", "warning"]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_HOME",
                                                                 "HARNESS_DATABASE_URL")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"`harness serve` exited {self.process.returncode}:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                if httpx.get(self.url + "/openapi.json", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"`harness serve` did not answer in {timeout} s:\n"
                           + self.log_path.read_text()[-3000:])

    def stop(self, sig=signal.SIGTERM):
        """Stop the server and its workers (its own process group, started for it)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture(scope="module")
def serve_app():
    """Factory: ``serve_app(home, database_url=None) -> AppServer`` (the app in process);
    each is closed when the module's tests are done."""
    servers = []

    def serve(home, database_url=None):
        servers.append(AppServer(home, database_url))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def start_server():
    """Factory: ``start_server(home, database_url=None, workers=1) -> LiveServer`` (started);
    every server it started is stopped when the module's tests are done."""
    started = []

    def start(home, database_url=None, workers=1):
        server = LiveServer(home, database_url, workers)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``cli(*args, code=0, env=None)``: run a harness command in process (CliRunner),
    asserting its exit code, with no server, token or home from the environment and a
    login file of the test's own."""
    from click.testing import CliRunner

    from harness.cli import main

    for name in ("HARNESS_SERVER", "HARNESS_TOKEN", "HARNESS_HOME", "HARNESS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "credentials.json"))
    runner = CliRunner()

    def run(*args, code=0, env=None):
        result = runner.invoke(main, [str(a) for a in args], env=env)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    return run


# --- homes ------------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path):
    """An empty home folder."""
    return tmp_path / "home"


@pytest.fixture(scope="session")
def _prepared_home(tmp_path_factory):
    """One home with every small built-in prepared once per session (copied per test)."""
    h = tmp_path_factory.mktemp("prepared") / "home"
    for slug in ("digits", "breast-cancer", "fertility", "noise-binary"):
        prepare(find_spec_path(slug), h)
    return h


@pytest.fixture
def prepared_home(_prepared_home, tmp_path):
    """A home of its own for each test, holding the prepared built-ins."""
    h = tmp_path / "phome"
    shutil.copytree(_prepared_home, h)
    return h


@pytest.fixture
def digits(prepared_home):
    """The prepared `digits` competition in a test's own home."""
    return load_prepared(prepared_home, "digits")


@pytest.fixture(scope="session")
def classroom_home(tmp_path_factory):
    """A home with `digits` prepared for a class in Asia/Taipei, deadline 2099-06-30 18:00
    there (so page tests never hit the built-in deadline); copy it before writing to it."""
    root = tmp_path_factory.mktemp("classroom")
    text = set_rules((find_spec_path("digits") / "competition.toml").read_text(),
                     deadline="2099-06-30T18:00:00+08:00", reset_timezone="Asia/Taipei")
    (root / "spec").mkdir()
    (root / "spec" / "competition.toml").write_text(text)
    prepare(root / "spec", root / "home")
    return root / "home"


@pytest.fixture
def classroom_harness(classroom_home, tmp_path):
    """A Harness on a fresh copy of the prepared classroom (its own SQLite database)."""
    home = tmp_path / "home"
    shutil.copytree(classroom_home, home)
    harness = Harness(home)
    yield harness
    harness.close_connections()


@pytest.fixture
def classroom_client(classroom_harness):
    """FastAPI's TestClient on the app over :func:`classroom_harness`."""
    with TestClient(create_app(classroom_harness)) as c:
        yield c


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_backend(request, _prepared_home, tmp_path_factory):
    """``(home, database_url)`` for a module's server, once per backend: a copy of the
    prepared built-ins, and None (SQLite in the home) or a fresh PostgreSQL database."""
    database_url = request.getfixturevalue("fresh_postgres_url")() \
        if request.param == "postgres" else None
    home = tmp_path_factory.mktemp(f"live-{request.param}") / "home"
    shutil.copytree(_prepared_home, home)
    return home, database_url


# --- PostgreSQL ---------------------------------------------------------------------------------


def _reachable_postgres() -> sa.Engine:
    """An engine on $HARNESS_TEST_POSTGRES_URL; skips the test, saying why, without one."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        engine.connect().close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        engine.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    return engine


@pytest.fixture
def postgres_url():
    """The PostgreSQL URL itself (for tools that make their own databases, e.g. the soak
    benchmark); skips with the reason when absent. Tests that write tables use
    ``fresh_postgres_url``."""
    _reachable_postgres().dispose()
    return POSTGRES_URL


@pytest.fixture(scope="module")
def fresh_postgres_url():
    """Factory: a PostgreSQL URL on empty tables of its own, one per call; skips without
    PostgreSQL.

    Each call makes a schema (dropped when the module's tests are done) and puts it on the
    URL (``options=-csearch_path=...``), so a Harness, a `harness serve` process and its
    workers, or a CLI subprocess given the URL all see the same tables, and tests or servers
    in parallel never share one. A schema, not a database: making and dropping one takes
    milliseconds where a database takes a second or more.
    """
    admin = _reachable_postgres()
    schemas = []

    def create() -> str:
        schemas.append(f"test_{uuid.uuid4().hex[:12]}")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schemas[-1]}"'))
        sep = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schemas[-1]}')}"

    yield create
    with admin.connect() as c:
        # a session still inside a transaction on these tables (a server that failed to
        # stop) must fail the teardown, not hang the suite
        c.execute(sa.text("SET lock_timeout = '30s'"))
        for schema in schemas:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


# --- predictions --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_predictions():
    """Factory: ``make_predictions(home, slug, public_right=1.0, private_right=1.0, seed=0)``
    -> CSV bytes of a classification submission right on those fractions of the public and
    the private rows (built from the hidden solution, so tests know both scores)."""

    def make(home, slug, public_right=1.0, private_right=1.0, seed=0) -> bytes:
        prepared = load_prepared(home, slug)
        target, id_column = prepared.spec.data.target, prepared.spec.data.id_column
        solution = pd.read_csv(prepared.solution_path)
        rng = np.random.default_rng(seed)
        wrong = np.zeros(len(solution), dtype=bool)
        for usage, right in (("Public", public_right), ("Private", private_right)):
            rows = np.flatnonzero(solution["Usage"].to_numpy() == usage)
            wrong[rng.choice(rows, size=round(len(rows) * (1 - right)), replace=False)] = True
        y = solution[target].to_numpy()
        classes = np.sort(np.unique(y))
        shifted = classes[(np.searchsorted(classes, y) + 1) % len(classes)]
        out = pd.DataFrame({id_column: solution[id_column], target: np.where(wrong, shifted, y)})
        return out.to_csv(index=False).encode()

    return make
