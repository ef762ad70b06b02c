"""The load generator and the moving parts the server benchmarks share.

One *upload run* (:func:`upload_run`): a fresh home (the prepared benchmark competition
copied in) on a fresh database (a SQLite file, or a new PostgreSQL database dropped
afterwards), a roster of teams imported through the service, one `harness serve`
subprocess (its own process group, always stopped), and an async httpx load generator in
this process that uploads one prediction file per team over loopback, either closed-loop
(``clients`` connections, each sending its next upload when the last one is answered) or
open-loop (uploads start at a fixed ``rate`` whatever the answers). Every upload that is
not answered 201 is counted as a failure with its reason; afterwards the database is
asked how many scored submissions it holds, which must equal the 201s.

CPU use is read from /proc: utime+stime of the server process and all its descendants
(uvicorn's workers), of the PostgreSQL backends serving the run's database, and of this
process (the load generator), each before and after, divided by the wall time.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from harness.classroom import read_tokens
from harness.demo import free_port
from harness.home import find_spec_path, load_prepared
from harness.service import Harness
from harness.spec import set_rules
from harness.splits import prepare

from .common import RESULTS, machine

SLUG = "bench"
DEFAULT_POSTGRES = os.environ.get("HARNESS_TEST_POSTGRES_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ options and results


def add_common_options(parser) -> None:
    """The size and placement options both server benchmarks take."""
    parser.add_argument("--teams", type=int, default=500,
                        help="teams, one upload each (default %(default)s)")
    parser.add_argument("--rows", type=int, default=10_000,
                        help="test rows, i.e. rows per uploaded file (default %(default)s)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (default %(default)s)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES,
                        help="an existing PostgreSQL database; each run creates and drops "
                             "a database of its own on that server (default %(default)s)")
    parser.add_argument("--time-limit", type=float, default=300.0,
                        help="seconds one run may take before what is left is cancelled "
                             "and counted as failed (default %(default)s)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder for the result JSON (default benchmarks/results)")


def write_json(directory: Path, name: str, payload: dict) -> Path:
    """``DIR/NAME.json`` with the machine facts first (like :func:`common.write_result`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    return path


def backends(text: str) -> list[str]:
    """``"sqlite,postgresql"`` -> the names, checked."""
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = set(names) - {"sqlite", "postgresql"}
    if unknown:
        raise SystemExit(f"unknown backend(s) {sorted(unknown)}; use sqlite, postgresql")
    return names


def int_list(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4] (an argparse type)."""
    return [int(x) for x in text.split(",") if x.strip()]


def backend_runs(args, configs, run, log=print) -> tuple[list[dict], list[str]]:
    """Call ``run(backend, config)`` for every backend in ``args.backends`` and config in
    ``configs(backend)``. A backend that cannot be reached is kept in the results as
    skipped, with the reason; a run that raises is kept with its error and named in the
    problems (never dropped). Returns (results, problems)."""
    results, problems = [], []
    for backend in backends(args.backends):
        reason = postgres_unreachable(args.postgres_url) if backend == "postgresql" else None
        if reason:
            results.append({"backend": backend, "skipped": reason})
            log(f"{backend}: skipped: {reason}")
            continue
        for config in configs(backend):
            try:
                results.append(run(backend, config))
            except Exception as exc:  # noqa: BLE001 - keep going; the run is reported failed
                results.append({"backend": backend, "config": repr(config),
                                "error": f"{type(exc).__name__}: {exc}"[:3000]})
                problems.append(f"{backend} {config!r}: {type(exc).__name__}: {exc}"[:300])
                log(f"{backend} {config!r}: FAILED {type(exc).__name__}: {exc}"[:500])
    return results, problems


# ------------------------------------------------------------------ the competition


def prepare_competition(home: Path, test_rows: int, slug: str = SLUG) -> Path:
    """Prepare ``slug`` in ``home``: the built-in synthetic task with ``test_rows`` test rows
    (public 10 %, private 10 % of five times as many rows), no daily limit. Returns the home.

    An odd ``test_rows`` may come out a row off (the manifest has the real counts)."""
    source = find_spec_path("synthetic")
    spec_dir = Path(home).parent / f"spec-{slug}"
    spec_dir.mkdir(parents=True)
    shutil.copy2(source / "prepare.py", spec_dir / "prepare.py")
    text = (source / "competition.toml").read_text()
    text = re.sub(r'(?m)^slug = ".*"$', f'slug = "{slug}"', text)
    text = re.sub(r"(?m)^rows = \d+$", f"rows = {5 * test_rows}", text)
    for part, share in (("train", 0.7), ("validation", 0.1), ("public", 0.1), ("private", 0.1)):
        text = re.sub(rf"(?m)^{part} = [0-9.]+$", f"{part} = {share}", text)
    # unstratified: the parts get exactly their fractions (per-class rounding loses a row)
    text = re.sub(r"(?m)^stratify = true$", "stratify = false", text)
    (spec_dir / "competition.toml").write_text(set_rules(text, daily_limit=0))
    prepare(spec_dir, home)
    return Path(home)


def prediction_files(home: Path, teams: int, seed: int = 0) -> list[bytes]:
    """One prediction CSV per team: right on a share of rows drawn per team (0.35 to 0.95),
    every other team's rows shuffled, so the scores and the work per file vary."""
    prepared = load_prepared(home, SLUG)
    target, id_column = prepared.spec.data.target, prepared.spec.data.id_column
    solution = pd.read_csv(prepared.solution_path)
    ids = solution[id_column].astype(str).to_numpy(dtype=object)
    classes = np.asarray(prepared.classes)
    truth = np.searchsorted(classes, solution[target].to_numpy())
    # the "id,label" line of every row for every class, so a file is one join
    lines = [ids + "," + str(c) for c in classes]
    rng = np.random.default_rng(seed)
    files = []
    for team in range(teams):
        right = rng.random(len(ids)) < rng.uniform(0.35, 0.95)
        guess = np.where(right, truth, rng.integers(0, len(classes), len(ids)))
        rows = np.choose(guess, lines)
        if team % 2:
            rows = rows[rng.permutation(len(rows))]
        files.append((f"{id_column},{target}\n" + "\n".join(rows) + "\n").encode())
    return files


def add_teams(home: Path, database_url: str, teams: int, prefix: str = "team") -> list[str]:
    """Import a roster of ``teams`` teams (``PREFIX-0000``, ...) through the service; their
    tokens, in order."""
    names = [f"{prefix}-{i:04d}" for i in range(teams)]
    roster = home / f"{prefix}-roster.csv"
    roster.write_text("team,member\n" + "".join(f"{n},{n}-student\n" for n in names))
    h = Harness(home, database_url)
    try:
        tokens = read_tokens(h.import_roster_file(roster)[0])
    finally:
        h.close_connections()
    return [tokens[n] for n in names]


def fresh_home(base_home: Path, dest: Path) -> Path:
    """A new home holding a copy of the prepared competitions (no database, no uploads)."""
    shutil.copytree(base_home / "competitions", dest / "competitions")
    return dest


# ------------------------------------------------------------------ databases


def postgres_unreachable(admin_url: str) -> str | None:
    """Why PostgreSQL at ``admin_url`` cannot be used, or None when it can."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(admin_url)
        engine.connect().close()
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to measure
        return f"PostgreSQL at {admin_url} is not reachable: {str(exc).splitlines()[0]}"
    return None


@contextmanager
def fresh_postgres(admin_url: str):
    """A new empty database on ``admin_url``'s server; yields its URL, drops it after."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"harness_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(backend: str, home: Path, admin_url: str):
    """The URL of a fresh database of ``backend`` for one run (removed after)."""
    if backend == "sqlite":
        yield f"sqlite:///{home / 'harness.db'}"
    else:
        with fresh_postgres(admin_url) as url:
            yield url


# ------------------------------------------------------------------ CPU from /proc


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime+stime in seconds) of a live process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()   # the name may hold spaces and parens
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _processes() -> dict[int, tuple[int, float]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                out[int(entry)] = st
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and every live descendant of it."""
    procs = _processes()
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _) in procs.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(procs[p][1] for p in tree if p in procs)


def postgres_cpu_seconds(database_url: str | None) -> float:
    """CPU seconds used so far by the live PostgreSQL backends of that database (0 if none)."""
    if not database_url or not database_url.startswith("postgresql"):
        return 0.0
    import sqlalchemy as sa

    name = sa.make_url(database_url).database
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # a backend names itself "postgres: USER DATABASE CLIENT STATE"
        if cmdline.startswith("postgres: ") and f" {name} " in cmdline:
            st = _stat(int(entry))
            total += st[1] if st else 0.0
    return total


def own_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# ------------------------------------------------------------------ the server


class Server:
    """A `harness serve` subprocess in a process group of its own; a context manager that
    always stops the whole group (SIGTERM, then SIGKILL)."""

    def __init__(self, home: Path, database_url: str, workers: int = 1):
        self.home, self.database_url, self.workers = Path(home), database_url, workers
        self.log = self.home / "serve.log"
        self.process: subprocess.Popen | None = None
        self.url = ""

    def command(self, port: int) -> list[str]:
        return [str(Path(sys.executable).with_name("harness")), "serve",
                "--home", str(self.home), "--database-url", self.database_url,
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers),
                "--log-level", "warning",
                # every simulated client comes from 127.0.0.1: no per-address cap here
                "--max-connections-per-ip", "0"]

    def __enter__(self) -> "Server":
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("HARNESS_HOME", "HARNESS_DATABASE_URL")}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command(port), stdout=log,
                                            stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)
        try:
            self._wait_ready(timeout=180.0)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"`harness serve` exited {self.process.returncode}: "
                                   + self.log_tail())
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"`harness serve` did not answer in {timeout:.0f} s: "
                               + self.log_tail())
        self._wait_idle(deadline)

    def _wait_idle(self, deadline: float) -> None:
        """Until every worker has finished starting (the tree's CPU use has settled), so
        the measured burst does not share the machine with workers still importing."""
        last, quiet = tree_cpu_seconds(self.process.pid), 0
        while time.monotonic() < deadline and quiet < 2:
            time.sleep(0.5)
            now = tree_cpu_seconds(self.process.pid)
            quiet = quiet + 1 if now - last < 0.05 * self.workers else 0
            last = now

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid) if self.process else 0.0

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


class BareServer(Server):
    """The bare ASGI app of :mod:`benchmarks.sink` under uvicorn (the floor of an upload's
    time over HTTP), run like a :class:`Server`; its log goes to ``folder``."""

    def __init__(self, folder: Path):
        super().__init__(folder, database_url="")

    def command(self, port: int) -> list[str]:
        return [sys.executable, str(Path(__file__).with_name("sink.py")), "--port", str(port)]


def bare_round_trips(folder: Path, files: list[bytes], time_limit: float = 300.0) -> dict:
    """One client's back-to-back uploads of ``files`` (as :func:`upload_run` sends them)
    to :class:`BareServer`: the summary of :func:`summarize`."""
    folder.mkdir(parents=True, exist_ok=True)
    with BareServer(folder) as server:
        jobs = [(f"token-{i}", data) for i, data in enumerate(files)]
        outcomes, wall = generate_load(server.url, SLUG, jobs, clients=1,
                                       time_limit=time_limit)
    return summarize(outcomes, wall)


@contextmanager
def sigterm_unwinds():
    """While inside, SIGTERM raises SystemExit like Ctrl-C raises KeyboardInterrupt, so a
    benchmark stopped by `timeout` or `kill` still stops its servers and drops its
    databases (the servers run in sessions of their own and get no signal of their own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum, _frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------ the load generator


async def _upload(client: httpx.AsyncClient, slug: str, token: str, data: bytes,
                  start: float, outcomes: list) -> None:
    """One upload; appends (status or failure kind, seconds since ``start``, detail)."""
    try:
        r = await client.post(f"/api/competitions/{slug}/submissions",
                              headers={"Authorization": f"Bearer {token}"},
                              files={"file": ("predictions.csv", data, "text/csv")},
                              data={"message": "benchmark upload"})
        detail = "" if r.status_code == 201 else r.text[:300]
        outcomes.append((str(r.status_code), time.perf_counter() - start, detail))
    except httpx.HTTPError as exc:
        outcomes.append((type(exc).__name__, time.perf_counter() - start, str(exc)[:300]))


async def _closed_loop(url, slug, jobs, clients, timeout, outcomes) -> None:
    """``clients`` simulated clients, each with an HTTP client and connection of its own
    (as every student's `harness submit` is): one shared client's connection pool scans
    every connection for each request (httpcore), and at 128 connections that scan, not
    the server, set the pace (the generator at 0.8 cores, the server idle, p95 5.7 s)."""
    queue = list(reversed(jobs))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()      # loaded once: plain HTTP here, but each client
                                            # would load the CA bundle (20 ms) for its own

    async def worker():
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout,
                                     verify=tls) as client:
            while queue:
                token, data = queue.pop()
                await _upload(client, slug, token, data, time.perf_counter(), outcomes)

    await asyncio.gather(*(worker() for _ in range(min(clients, len(jobs)))))


async def _open_loop(client, slug, jobs, rate, outcomes) -> None:
    t0 = time.perf_counter()
    tasks = []
    for i, (token, data) in enumerate(jobs):
        due = t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        # latency counts from when the upload was due, so a slow server is not hidden
        # by the generator falling behind (no coordinated omission)
        tasks.append(asyncio.create_task(_upload(client, slug, token, data, due, outcomes)))
    await asyncio.gather(*tasks)


async def _drive(url, slug, jobs, clients, rate, time_limit, timeout, outcomes) -> None:
    timeout = httpx.Timeout(timeout, connect=10.0)
    if rate:
        # the open loop: one client, with enough connections never to queue in it
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
        client = httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout)
        run = _open_loop(client, slug, jobs, rate, outcomes)
    else:
        client, run = None, _closed_loop(url, slug, jobs, clients, timeout, outcomes)
    try:
        await asyncio.wait_for(run, time_limit)
    except asyncio.TimeoutError:
        pass       # what did not finish is counted below as "unfinished"
    finally:
        if client is not None:
            await client.aclose()


def generate_load(url: str, slug: str, jobs: list[tuple[str, bytes]], *, clients: int = 0,
                  rate: float = 0.0, time_limit: float = 300.0,
                  timeout: float = 60.0) -> tuple[list, float]:
    """Send every ``(token, file)`` job; closed-loop with ``clients`` or open-loop at ``rate``
    uploads/s. Returns the outcomes (one per job; jobs cut off by ``time_limit`` count as
    ``unfinished``) and the wall time in seconds."""
    outcomes: list = []
    t = time.perf_counter()
    asyncio.run(_drive(url, slug, jobs, clients, rate, time_limit, timeout, outcomes))
    wall = time.perf_counter() - t
    outcomes += [("unfinished", wall, "cut off by the time limit")] * (len(jobs) - len(outcomes))
    return outcomes, wall


def percentiles(seconds, qs=(50, 95, 99)) -> dict:
    """``{"p50": ..., ...}`` in seconds (None when there is nothing to measure)."""
    if len(seconds) == 0:
        return {f"p{q}": None for q in qs} | {"max": None}
    arr = np.asarray(seconds)
    return {f"p{q}": round(float(np.percentile(arr, q)), 4) for q in qs} | {
        "max": round(float(arr.max()), 4)}


def summarize(outcomes: list, wall: float) -> dict:
    """Counts, throughput and latency of the 201s; every other answer is a failure."""
    ok = [t for status, t, _ in outcomes if status == "201"]
    failures: dict[str, int] = {}
    samples: list[str] = []
    for status, _, detail in outcomes:
        if status != "201":
            failures[status] = failures.get(status, 0) + 1
            if len(samples) < 5:
                samples.append(f"{status}: {detail}")
    return {"uploads": len(outcomes), "ok": len(ok), "failures": len(outcomes) - len(ok),
            "failures_by_kind": failures, "failure_samples": samples,
            "wall_s": round(wall, 3),
            "throughput_per_s": round(len(ok) / wall, 2) if wall else None,
            "latency_s": percentiles(ok)}


def stored_scored(home: Path, database_url: str) -> int:
    """Scored submissions the database holds for the benchmark competition."""
    h = Harness(home, database_url)
    try:
        return sum(s["status"] == "scored" for s in h.all_submissions(SLUG))
    finally:
        h.close_connections()


def upload_run(base_home: Path, workdir: Path, files: list[bytes], *, backend: str,
               workers: int, clients: int = 0, rate: float = 0.0, time_limit: float = 300.0,
               postgres_url: str = DEFAULT_POSTGRES, before=None, after=None) -> dict:
    """One burst of uploads (one per team) against a fresh server and database.

    ``before(home, url) -> dict`` runs before the server starts and ``after(server, home,
    url) -> dict`` once the burst is over (with the server still up); their answers are
    kept under ``"before"`` and ``"after"`` in the result.
    """
    run_dir = workdir / f"run-{uuid.uuid4().hex[:8]}"
    home = fresh_home(base_home, run_dir)
    mode = f"open {rate:g}/s" if rate else f"closed {clients} clients"
    result = {"backend": backend, "workers": workers, "mode": mode,
              "clients": clients or None, "rate_per_s": rate or None,
              "load_average_before": round(os.getloadavg()[0], 2)}
    try:
        with database(backend, home, postgres_url) as url:
            if before:
                result["before"] = before(home, url)
            t = time.perf_counter()
            tokens = add_teams(home, url, len(files))
            teams_s = time.perf_counter() - t
            with Server(home, url, workers) as server:
                start_s = time.perf_counter() - t - teams_s
                cpu0, pg0 = server.cpu_seconds(), postgres_cpu_seconds(url)
                gen0 = own_cpu_seconds()
                outcomes, wall = generate_load(server.url, SLUG, list(zip(tokens, files)),
                                               clients=clients, rate=rate,
                                               time_limit=time_limit)
                cpu = server.cpu_seconds() - cpu0
                pg = postgres_cpu_seconds(url) - pg0
                gen = own_cpu_seconds() - gen0
                result["setup_s"] = {"import_teams": round(teams_s, 2),
                                     "start_server": round(start_s, 2)}
                result.update(summarize(outcomes, wall))
                result["stored_scored"] = stored_scored(home, url)
                result["consistent"] = result["stored_scored"] == result["ok"]
                result["cpu"] = {
                    "server_s": round(cpu, 2), "server_cores": round(cpu / wall, 2),
                    "postgres_s": round(pg, 2), "postgres_cores": round(pg / wall, 2),
                    "load_generator_s": round(gen, 2),
                    "load_generator_cores": round(gen / wall, 2)}
                if result["failures"]:
                    result["server_log_tail"] = server.log_tail(1500)
                if after:
                    result["after"] = after(server, home, url)
            return result
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def describe(r: dict) -> str:
    """One line of a run, for the console."""
    lat = r["latency_s"]
    ms = {k: (f"{v * 1000:.0f}" if v is not None else "-") for k, v in lat.items()}
    return (f"{r['backend']:10s} w{r['workers']} {r['mode']:18s} {r['ok']}/{r['uploads']} ok "
            f"({r['failures']} failed) {r['throughput_per_s']}/s  p50 {ms['p50']} ms  "
            f"p95 {ms['p95']} ms  p99 {ms['p99']} ms  server {r['cpu']['server_cores']} cores"
            f"  pg {r['cpu']['postgres_cores']}  gen {r['cpu']['load_generator_cores']}"
            f"  stored {r['stored_scored']}")
