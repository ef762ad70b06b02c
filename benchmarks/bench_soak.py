"""The soak test: minutes of a class's mixed load on one `harness serve` per backend.

For ``--minutes`` (default 10) on 127.0.0.1 only, concurrently, each loop stopping by itself
at the deadline (a request in flight then is still answered, within its timeout):

- uploads at a class's rate: every team uploads a valid prediction file every
  ``--upload-every`` seconds (drawn at random), and a share ``--bad-share`` of the uploads
  are deliberately broken files (a row missing, the target column misnamed, a duplicated
  id, bytes that are no CSV), which must be refused with 400;
- projector pages polling: ``--projectors`` clients each fetch the competition page
  (HTML, projector mode) and the public leaderboard (JSON) every ``--poll-every`` seconds;
- students listing: ``--students`` clients each list a random team's submissions and the
  competitions, with that team's token, every ``--list-every`` seconds (drawn at random);
- a teacher rescoring: `harness rescore SLUG` as a CLI subprocess (the server's home and
  database) every ``--rescore-every`` seconds;
- the resident memory (VmRSS) of the server's process tree, summed, every few seconds.

Pass criteria, per backend: no error (every answer has the status expected of it: 201 for a
valid upload, 400 for a broken one, 200 for a read; a 5xx, another status, a timeout or a
connection error is an error and listed with its reason; a rescore must exit 0); the median
RSS of the last window (the last minute) at most ``--rss-growth-mb`` above the median of the
window after warm-up (the second minute); and as many scored submissions stored in the
database afterwards as uploads answered 201. Writes benchmarks/results/soak.json; exits
non-zero when a backend fails.

    python -m benchmarks.run soak [--minutes 10] [--backends sqlite,postgres] [--teams 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from harness.home import load_prepared

from . import load

MB = 2**20
ERROR_SAMPLES = 50           # errors listed in full per backend; all are counted by reason


@dataclass(frozen=True)
class Plan:
    """What the soak sends, and for how long (seconds throughout)."""

    duration: float = 600.0
    upload_every: tuple[float, float] = (20.0, 40.0)
    bad_share: float = 0.05
    projectors: int = 3
    poll_every: float = 2.0
    students: int = 10
    list_every: tuple[float, float] = (3.0, 7.0)
    rescore_every: float = 60.0
    request_timeout: float = 60.0
    rescore_timeout: float = 300.0
    rss_growth_mb: float = 50.0
    seed: int = 0

    @property
    def window(self) -> float:
        """The length of the RSS windows compared: a minute, less in a short run."""
        return min(60.0, self.duration / 4)

    @property
    def sample_every(self) -> float:
        return min(5.0, self.window / 5)


# ------------------------------------------------------------------ what is measured


class Record:
    """Every answer of one soak: counts, latencies and errors by kind of request."""

    def __init__(self):
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.errors: list[dict] = []
        self.rescores: list[dict] = []
        self.rss: list[tuple[float, int]] = []
        self.start = time.perf_counter()

    def note(self, kind: str, expected: str, got: str, seconds: float, detail: str = "") -> None:
        """One answer (``got``: a status code, an exception's name or an exit code)."""
        self.statuses[kind][got] += 1
        self.seconds[kind].append(seconds)
        if got != expected:
            self.errors.append({"kind": kind, "expected": expected, "got": got,
                                "at_s": round(time.perf_counter() - self.start, 1),
                                "detail": detail[:300]})

    def summary(self) -> dict:
        reasons = Counter(f"{e['kind']}: expected {e['expected']}, got {e['got']}"
                          for e in self.errors)
        return {"requests": {k: sum(c.values()) for k, c in sorted(self.statuses.items())},
                "statuses": {k: dict(c) for k, c in sorted(self.statuses.items())},
                "latency_s": {k: load.percentiles(v) for k, v in sorted(self.seconds.items())},
                "errors": len(self.errors), "errors_by_reason": dict(reasons),
                "error_samples": self.errors[:ERROR_SAMPLES]}


async def request(client: httpx.AsyncClient, record: Record, kind: str, expected: int,
                  method: str, path: str, **kwargs) -> None:
    """Send one request and note its answer; a transport failure is noted as its name."""
    t = time.perf_counter()
    try:
        r = await client.request(method, path, **kwargs)
        got, detail = str(r.status_code), r.text
    except httpx.HTTPError as exc:
        got, detail = type(exc).__name__, str(exc) or repr(exc)
    record.note(kind, str(expected), got, time.perf_counter() - t, detail)


def tree_rss_bytes(pid: int) -> int:
    """VmRSS summed over ``pid`` and its live descendants (0 for a process that is gone)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            status = Path(f"/proc/{p}/status").read_text()
            # a child may be started from any of the process's threads
            for children in Path(f"/proc/{p}/task").glob("*/children"):
                todo += [int(c) for c in children.read_text().split()]
        except OSError:
            continue
        total += next((int(line.split()[1]) * 1024 for line in status.splitlines()
                       if line.startswith("VmRSS:")), 0)
    return total


def rss_verdict(samples: list[tuple[float, int]], plan: Plan) -> dict:
    """Compare the median RSS of the last window with that of the window after warm-up."""
    w, end = plan.window, plan.duration
    warm = [b for t, b in samples if w <= t < 2 * w]
    last = [b for t, b in samples if t >= end - w]
    out = {"samples": len(samples), "window_s": round(w, 1), "bound_mb": plan.rss_growth_mb}
    if not samples:
        return out | {"ok": False, "problem": "no RSS sample was taken"}
    rss = [b for _, b in samples]
    out |= {"start_mb": round(rss[0] / MB, 1), "end_mb": round(rss[-1] / MB, 1),
            "max_mb": round(max(rss) / MB, 1)}
    if not warm or not last:
        return out | {"ok": False, "problem": "a window holds no sample; run longer"}
    before, after = statistics.median(warm), statistics.median(last)
    growth = (after - before) / MB
    return out | {"warm_median_mb": round(before / MB, 1), "last_median_mb": round(after / MB, 1),
                  "growth_mb": round(growth, 1),
                  "growth_pct": round(100 * (after - before) / before, 1),
                  "ok": growth <= plan.rss_growth_mb}


# ------------------------------------------------------------------ the loops


async def pause(seconds: float, deadline: float) -> bool:
    """Sleep ``seconds`` but not past ``deadline`` (loop time); True while time is left."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, min(seconds, deadline - loop.time())))
    return loop.time() < deadline


async def team(client, record, plan, rng, token, good, bad, deadline) -> None:
    """One team: an upload now and then, a broken one among them at random."""
    auth = {"Authorization": f"Bearer {token}"}
    path = f"/api/competitions/{load.SLUG}/submissions"
    wait = rng.uniform(0, plan.upload_every[1])    # the class does not start in step
    while await pause(wait, deadline):
        kind, expected, data = (("upload_bad", 400, rng.choice(bad))
                                if rng.random() < plan.bad_share
                                else ("upload", 201, rng.choice(good)))
        await request(client, record, kind, expected, "POST", path, headers=auth,
                      files={"file": ("predictions.csv", data, "text/csv")},
                      data={"message": "soak"})
        wait = rng.uniform(*plan.upload_every)


async def projector(client, record, plan, rng, deadline) -> None:
    """A projector page: the competition page and the public board, every few seconds."""
    wait = rng.uniform(0, plan.poll_every)
    while await pause(wait, deadline):
        await request(client, record, "page", 200, "GET", f"/competitions/{load.SLUG}",
                      params={"projector": 1})
        await request(client, record, "leaderboard", 200, "GET",
                      f"/api/competitions/{load.SLUG}/leaderboard")
        wait = plan.poll_every


async def student(client, record, plan, rng, tokens, deadline) -> None:
    """A student looking at their team's submissions and at the competitions."""
    while await pause(rng.uniform(*plan.list_every), deadline):
        auth = {"Authorization": f"Bearer {rng.choice(tokens)}"}
        await request(client, record, "submissions", 200, "GET",
                      f"/api/competitions/{load.SLUG}/submissions", headers=auth)
        await request(client, record, "competitions", 200, "GET", "/api/competitions",
                      headers=auth)


async def teacher(record, plan, home: Path, url: str, deadline) -> None:
    """`harness rescore` as the teacher runs it, every ``plan.rescore_every`` seconds."""
    cmd = [str(Path(sys.executable).with_name("harness")), "rescore", load.SLUG,
           "--home", str(home), "--database-url", url, "--format", "json"]
    while await pause(plan.rescore_every, deadline):
        t = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), plan.rescore_timeout)
            got, text = str(proc.returncode), out.decode(errors="replace")
        except asyncio.TimeoutError:
            got, text = "timeout", f"still running after {plan.rescore_timeout:g} s"
        finally:
            if proc.returncode is None:     # timed out, or the soak was cancelled
                proc.kill()
                await proc.wait()
        seconds = time.perf_counter() - t
        record.note("rescore", "0", got, seconds, text[-300:])
        entry = {"at_s": round(t - record.start, 1), "seconds": round(seconds, 2)}
        if got == "0":
            entry.update(json.loads(text))
        record.rescores.append(entry)


async def sampler(record, plan, pid: int, deadline) -> None:
    """The server tree's RSS every ``plan.sample_every`` seconds, the first at once."""
    while True:
        record.rss.append((time.perf_counter() - record.start, tree_rss_bytes(pid)))
        if not await pause(plan.sample_every, deadline):
            break
    record.rss.append((time.perf_counter() - record.start, tree_rss_bytes(pid)))


async def soak(server_url: str, pid: int, home: Path, url: str, tokens: list[str],
               good: list[bytes], bad: list[bytes], plan: Plan) -> Record:
    """Run every loop until ``plan.duration`` has passed; what is still unanswered after
    the timeouts is cancelled and noted as an error."""
    record = Record()
    deadline = asyncio.get_running_loop().time() + plan.duration
    clients = len(tokens) + plan.projectors + plan.students
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=server_url, limits=limits,
                                 timeout=httpx.Timeout(plan.request_timeout, connect=10.0)
                                 ) as client:
        rngs = (random.Random(f"{plan.seed}-{i}") for i in range(clients))
        loops = [team(client, record, plan, next(rngs), t, good, bad, deadline)
                 for t in tokens]
        loops += [projector(client, record, plan, next(rngs), deadline)
                  for _ in range(plan.projectors)]
        loops += [student(client, record, plan, next(rngs), tokens, deadline)
                  for _ in range(plan.students)]
        loops += [teacher(record, plan, home, url, deadline), sampler(record, plan, pid, deadline)]
        tasks = [asyncio.create_task(c) for c in loops]
        grace = max(plan.request_timeout * 2, plan.rescore_timeout) + 30
        _, late = await asyncio.wait(tasks, timeout=plan.duration + grace)
        for task in late:
            task.cancel()
            record.note("unfinished", "done", "cancelled", 0.0,
                        "a loop was still waiting after the deadline and the timeouts")
        await asyncio.gather(*late, return_exceptions=True)
        for task in tasks:
            if task not in late and task.exception():
                raise task.exception()
    return record


# ------------------------------------------------------------------ one backend


def broken_files(good: bytes) -> list[bytes]:
    """Uploads that must be refused (400): each breaks the file in another way."""
    header, *rows = good.splitlines()
    return [b"\n".join([header, *rows[:-1]]) + b"\n",            # a row missing
            b"\n".join([header + b"_x", *rows]) + b"\n",          # the target misnamed
            b"\n".join([header, *rows, rows[0]]) + b"\n",         # an id twice
            b"\x00\x01\x02 these bytes are no CSV \xff\xfe"]


def soak_run(base: Path, work: Path, backend: str, plan: Plan, *, teams: int, workers: int,
             good: list[bytes], postgres_url: str) -> dict:
    """A fresh home, database and server; the soak against it; the verdict."""
    home = load.fresh_home(base, work / f"soak-{backend}")
    try:
        with load.database(backend, home, postgres_url) as url:
            tokens = load.add_teams(home, url, teams)
            with load.Server(home, url, workers) as server:
                cpu0, pg0 = server.cpu_seconds(), load.postgres_cpu_seconds(url)
                t = time.perf_counter()
                record = asyncio.run(soak(server.url, server.process.pid, home, url, tokens,
                                          good, broken_files(good[0]), plan))
                wall = time.perf_counter() - t
                cpu = {"server_cores": round((server.cpu_seconds() - cpu0) / wall, 3),
                       "postgres_cores": round((load.postgres_cpu_seconds(url) - pg0) / wall, 3)}
                stored = load.stored_scored(home, url)
                log = server.log_tail(3000) if record.errors else None
        return verdict(backend, workers, record, stored, plan, wall) | {
            "cpu": cpu, **({"server_log_tail": log} if log else {})}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def verdict(backend: str, workers: int, record: Record, stored: int, plan: Plan,
            wall: float) -> dict:
    """The result of one backend: what was sent, how it was answered, and whether it passed."""
    answered = record.statuses["upload"]["201"]
    rss = rss_verdict(record.rss, plan)
    rescores = [r["seconds"] for r in record.rescores]
    out = {"backend": backend, "workers": workers, "wall_s": round(wall, 1),
           **record.summary(),
           "uploads_201": answered, "stored_scored": stored,
           "every_answered_upload_stored": stored == answered, "rss": rss,
           "rescores": {"count": len(rescores), "seconds": load.percentiles(rescores),
                        "runs": record.rescores}}
    out["passed"] = not record.errors and rss["ok"] and stored == answered and answered > 0
    return out


def describe(r: dict) -> str:
    """A few lines of one backend's result, for the console."""
    ms = {k: f"{v['p50'] * 1000:.0f}/{v['p95'] * 1000:.0f}/{v['p99'] * 1000:.0f}"
          for k, v in r["latency_s"].items() if v["p50"] is not None and k != "rescore"}
    rss, resc = r["rss"], r["rescores"]
    return "\n".join([
        f"{r['backend']}: {'PASSED' if r['passed'] else 'FAILED'} in {r['wall_s']} s, "
        f"{sum(r['requests'].values())} requests, {r['errors']} errors "
        f"{r['errors_by_reason'] or ''}",
        "  requests " + ", ".join(f"{k} {n}" for k, n in r["requests"].items()),
        "  p50/p95/p99 ms " + ", ".join(f"{k} {v}" for k, v in ms.items()),
        f"  RSS start {rss.get('start_mb')} MB, end {rss.get('end_mb')} MB, max "
        f"{rss.get('max_mb')} MB, growth {rss.get('growth_mb')} MB (bound {rss['bound_mb']})"
        + (f" [{rss['problem']}]" if "problem" in rss else ""),
        f"  rescores {resc['count']}, {resc['seconds']['p50']} s median, "
        f"{resc['seconds']['max']} s max; stored {r['stored_scored']} of "
        f"{r['uploads_201']} uploads answered 201; server {r['cpu']['server_cores']} cores"])


# ------------------------------------------------------------------ the command


def seconds_pair(text: str) -> tuple[float, float]:
    """``"20,40"`` -> (20.0, 40.0) (an argparse type)."""
    low, high = (float(x) for x in text.split(","))
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW,HIGH seconds, 0 < LOW <= HIGH")
    return low, high


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     conflict_handler="resolve")
    load.add_common_options(parser)
    parser.set_defaults(teams=60)
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (or postgres) "
                             "(default %(default)s)")
    parser.add_argument("--time-limit", type=float, default=Plan.request_timeout,
                        help="seconds one request may take before it counts as an error "
                             "(default %(default)s)")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="how long the load runs per backend (default %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server worker processes (default %(default)s, as `harness "
                             "serve`'s)")
    parser.add_argument("--upload-every", type=seconds_pair, default=Plan.upload_every,
                        metavar="LOW,HIGH", help="seconds between a team's uploads, drawn "
                                                 "uniformly (default 20,40)")
    parser.add_argument("--bad-share", type=float, default=Plan.bad_share,
                        help="share of uploads that are broken files (default %(default)s)")
    parser.add_argument("--projectors", type=int, default=Plan.projectors)
    parser.add_argument("--poll-every", type=float, default=Plan.poll_every)
    parser.add_argument("--students", type=int, default=Plan.students)
    parser.add_argument("--list-every", type=seconds_pair, default=Plan.list_every,
                        metavar="LOW,HIGH")
    parser.add_argument("--rescore-every", type=float, default=Plan.rescore_every)
    parser.add_argument("--rss-growth-mb", type=float, default=Plan.rss_growth_mb,
                        help="the memory bound: MB the server tree's median RSS may grow "
                             "from the 2nd to the last minute (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.backends = ",".join("postgresql" if b.strip() == "postgres" else b
                             for b in args.backends.split(","))
    plan = Plan(duration=args.minutes * 60, upload_every=args.upload_every,
                bad_share=args.bad_share, projectors=args.projectors,
                poll_every=args.poll_every, students=args.students,
                list_every=args.list_every, rescore_every=args.rescore_every,
                request_timeout=args.time_limit, rss_growth_mb=args.rss_growth_mb,
                seed=args.seed)

    with load.sigterm_unwinds(), tempfile.TemporaryDirectory(prefix="harness-soak-") as tmp:
        work = Path(tmp)
        base = load.prepare_competition(work / "base-home", args.rows)
        rules = load_prepared(base, load.SLUG).spec.rules
        if rules.daily_limit or rules.total_limit:
            raise RuntimeError(f"the soak needs no upload limits, found daily_limit="
                               f"{rules.daily_limit}, total_limit={rules.total_limit}")
        good = load.prediction_files(base, 3 * args.teams, seed=args.seed)
        print(f"soak: {args.minutes:g} min per backend, {args.teams} teams x {args.rows} rows, "
              f"uploads every {plan.upload_every[0]:g}-{plan.upload_every[1]:g} s "
              f"({plan.bad_share:.0%} broken), {plan.projectors} projectors, "
              f"{plan.students} students, rescore every {plan.rescore_every:g} s, "
              f"{args.workers} workers, load average {os.getloadavg()[0]:.2f}", flush=True)

        def run(backend, _):
            r = soak_run(base, work, backend, plan, teams=args.teams, workers=args.workers,
                         good=good, postgres_url=args.postgres_url)
            print(describe(r), flush=True)
            return r

        results, problems = load.backend_runs(args, lambda backend: ["soak"], run)
        problems += [f"{r['backend']}: failed (errors {r['errors']}, RSS ok {r['rss']['ok']}, "
                     f"stored {r['stored_scored']} of {r['uploads_201']} answered 201)"
                     for r in results if "passed" in r and not r["passed"]]

    setup = {"minutes": args.minutes, "teams": args.teams, "test_rows": args.rows,
             "workers": args.workers, "plan": asdict(plan),
             "rules": {"daily_limit": rules.daily_limit, "total_limit": rules.total_limit},
             "transport": "HTTP/1.1 on 127.0.0.1",
             "load_generator": "async httpx in the benchmark process (not the server's); "
                               "the rescore is the `harness rescore` CLI",
             "rss_note": "VmRSS summed over `harness serve` and its workers, sampled "
                         "every plan.sample_every s; growth = median of the last window "
                         "minus median of the second window (window = a minute, or a "
                         "quarter of a shorter run)"}
    criteria = {"errors": 0, "rss_growth_mb_at_most": plan.rss_growth_mb,
                "stored_scored": "equals the uploads answered 201"}
    print("wrote", load.write_json(args.results, "soak", {
        "setup": setup, "criteria": criteria, "runs": results, "problems": problems}))
    if problems:
        raise RuntimeError("; ".join(problems))


if __name__ == "__main__":
    main()
