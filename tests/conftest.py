"""Shared fixtures: a fresh home, prepared built-in competitions, the PostgreSQL URL."""

from __future__ import annotations

import os
import shutil

import pytest

from harness.home import find_spec_path, load_prepared
from harness.splits import prepare

POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL", "")

# Property tests explore new inputs on every developer run; CI replays a fixed set, so a
# red CI run always means a change broke something (the fuzzers found real bugs here).
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")


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


@pytest.fixture
def postgres_url():
    """The PostgreSQL URL for tests that need it; skips with the reason when absent."""
    if not POSTGRES_URL:
        pytest.skip("HARNESS_TEST_POSTGRES_URL is not set (CI sets it in .ci/run)")
    try:
        import sqlalchemy as sa

        sa.create_engine(POSTGRES_URL).connect().close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    return POSTGRES_URL


# --- live servers: a real `harness serve` subprocess (API, CLI and page tests) ----------------

import signal  # noqa: E402
from harness.demo import free_port  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402


class LiveServer:
    """One `harness serve` process on 127.0.0.1; ``url`` is its base URL."""

    def __init__(self, home, database_url=None, workers=1, log_path=None):
        self.home, self.database_url, self.workers = Path(home), database_url, workers
        self.log_path = Path(log_path or Path(home).parent / f"serve-{uuid.uuid4().hex[:6]}.log")
        self.process = None
        self.url = ""

    def start(self, timeout=120.0):   # generous: a loaded 2-core CI box imports slowly
        import httpx

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


@pytest.fixture(scope="module")
def fresh_postgres_url():
    """Factory: a new empty PostgreSQL database per call (dropped after the module);
    skips when PostgreSQL is absent. Servers and tests in parallel never share tables."""
    if not POSTGRES_URL:
        pytest.skip("HARNESS_TEST_POSTGRES_URL is not set (CI sets it in .ci/run)")
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        admin.connect().close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    names = []

    def create() -> str:
        name = f"harness_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    yield create
    with admin.connect() as c:
        for name in names:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def make_predictions():
    """Factory: ``make_predictions(home, slug, public_right=1.0, private_right=1.0, seed=0)``
    -> CSV bytes of a classification submission right on those fractions of the public and
    the private rows (built from the hidden solution, so tests know both scores)."""
    import numpy as np
    import pandas as pd

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


@pytest.fixture
def pg_schema_url(postgres_url):
    """A PostgreSQL URL whose tables live in a fresh schema of their own (dropped after).

    The schema rides on the URL (``options=-csearch_path=...``), so a Harness, a server
    worker or a subprocess given this URL all see the same isolated tables.
    """
    import uuid
    from urllib.parse import quote

    import sqlalchemy as sa

    schema = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


# --- pages: a classroom-like competition (far deadline, the class's own time zone) ---------


@pytest.fixture(scope="session")
def classroom_home(tmp_path_factory):
    """A home with `digits` prepared for a class in Asia/Taipei, deadline 2099-06-30 18:00
    there (so page tests never hit the built-in deadline); copy it before writing to it."""
    from harness.spec import set_rules

    root = tmp_path_factory.mktemp("classroom")
    text = set_rules((find_spec_path("digits") / "competition.toml").read_text(),
                     deadline="2099-06-30T18:00:00+08:00", reset_timezone="Asia/Taipei")
    (root / "spec").mkdir()
    (root / "spec" / "competition.toml").write_text(text)
    prepare(root / "spec", root / "home")
    return root / "home"


# --- one live home per backend (hostile-input and secrecy suites) ----------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_backend(request, _prepared_home, tmp_path_factory):
    """``(home, database_url)`` for a module's live server, once per backend: a copy of the
    prepared built-ins, and None (SQLite in the home) or a fresh PostgreSQL database."""
    database_url = request.getfixturevalue("fresh_postgres_url")() \
        if request.param == "postgres" else None
    home = tmp_path_factory.mktemp(f"live-{request.param}") / "home"
    shutil.copytree(_prepared_home, home)
    return home, database_url
