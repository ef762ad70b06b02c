"""Command start: how long `harness --version`, `--help`, a command's --help and a student
command against an unreachable server take, next to the floor `python -c "import click,
httpx"` (the two libraries every student command needs), measured in the same run.

Each command runs ``--repeats`` times as a fresh process, the commands taking turns so that
other work on the machine slows them alike; the fastest run of each (the least disturbed)
gives its ratio to the floor's, and the target is <= 2x. The student commands run against
http://127.0.0.1:1, where nothing listens: the refusal is immediate, so their time is the
imports, the HTTP client's set-up and the error path (the run checks that each ended with the
"cannot reach" error, exit code 2). Bytecode is cached (in a temporary PYTHONPYCACHEPREFIX,
warmed by one run), as after `pip install`; the heavy libraries each command imported are
listed from one `python -X importtime` run. Writes benchmarks/results/startup.json.

    python -m benchmarks.bench_startup [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import machine, write_result

TARGET_RATIO = 2.0
UNREACHABLE = "http://127.0.0.1:1"
FLOOR = ("floor: python -c 'import click, httpx'", [sys.executable, "-c", "import click, httpx"])
# for reference, not the target's floor: what any request adds (httpcore and the TLS context,
# which httpx.Client() loads even for http://)
CLIENT_FLOOR = ("python -c 'import click, httpx; httpx.Client()'",
                [sys.executable, "-c", "import click, httpx; httpx.Client()"])
# (name, arguments after `harness`, whether it must fail with the can't-reach error)
COMMANDS = [
    ("harness --version", ["--version"], False),
    ("harness --help", ["--help"], False),
    ("harness leaderboard --help", ["leaderboard", "--help"], False),
    ("harness submit --help", ["submit", "--help"], False),
    (f"harness competitions --server {UNREACHABLE}", ["competitions", "--server", UNREACHABLE],
     True),
    (f"harness leaderboard digits --server {UNREACHABLE}",
     ["leaderboard", "digits", "--server", UNREACHABLE], True),
]
# libraries that would mean a command imports more than it needs (or its budget allows)
HEAVY = ["pandas", "numpy", "pyarrow", "scipy", "sklearn", "matplotlib", "torch", "sqlalchemy",
         "fastapi", "starlette", "uvicorn", "jinja2", "pydantic", "httpx", "httpcore", "rich"]


def _environment(cache: str, config: str) -> dict:
    """A student's environment: a token (so the commands get as far as the request), no
    stored login or home of whoever runs the benchmark, and a bytecode cache."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HARNESS_") and k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"HARNESS_TOKEN": "benchmark-token", "HARNESS_CONFIG": config,
                  "PYTHONPYCACHEPREFIX": cache}


def _run(cmd: list[str], env: dict, must_fail: bool) -> float:
    """One fresh process; its wall time in seconds. Raises when it did not do what it should."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    expected = (2, "cannot reach") if must_fail else (0, "")
    if done.returncode != expected[0] or expected[1] not in done.stderr:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}, expected "
                           f"{expected[0]}: {done.stderr.strip()[-300:]}")
    return wall


def _imported(cmd: list[str], env: dict) -> list[str]:
    """The libraries of :data:`HEAVY` that ``cmd`` (a python or harness command) imports."""
    python = [sys.executable, "-X", "importtime"]
    argv = python + cmd[1:] if cmd[0] == sys.executable else python + [cmd[0], *cmd[1:]]
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    top = {line.rsplit("|", 1)[1].strip().split(".")[0]
           for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [m for m in HEAVY if m in top]


def measure(repeats: int) -> dict:
    harness = str(Path(sys.executable).with_name("harness"))
    cases = [(FLOOR[0], FLOOR[1], False), (CLIENT_FLOOR[0], CLIENT_FLOOR[1], False)] + [(name, [harness, *args], fails)
                                            for name, args, fails in COMMANDS]
    with tempfile.TemporaryDirectory(prefix="harness-startup-") as tmp:
        env = _environment(str(Path(tmp) / "pycache"), str(Path(tmp) / "credentials.json"))
        for _, cmd, fails in cases:                      # warms the bytecode cache
            _run(cmd, env, fails)
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        load_before = os.getloadavg()[0]
        for _ in range(repeats):                         # in turns: load drifts hit all alike
            for name, cmd, fails in cases:
                times[name].append(_run(cmd, env, fails))
        imported = {name: _imported(cmd, env) for name, cmd, _ in cases}
    floor_min, floor_median = min(times[FLOOR[0]]), statistics.median(times[FLOOR[0]])
    rows = []
    for name, _, _ in cases:
        best, median = min(times[name]), statistics.median(times[name])
        row = {"command": name, "min_s": round(best, 4), "median_s": round(median, 4),
               "ratio_to_floor": round(best / floor_min, 2),
               "median_ratio_to_floor": round(median / floor_median, 2),
               "imports": imported[name]}
        if name not in (FLOOR[0], CLIENT_FLOOR[0]):
            row["meets_target"] = row["ratio_to_floor"] <= TARGET_RATIO
        rows.append(row)
    return {"setup": {"repeats": repeats, "load_average_before": round(load_before, 2),
                      "load_average_after": round(os.getloadavg()[0], 2),
                      "ratio": "fastest run over the floor's fastest run",
                      "bytecode": "cached (temporary PYTHONPYCACHEPREFIX, warmed by one run)",
                      "unreachable_server": UNREACHABLE},
            "targets": {"ratio_to_floor": TARGET_RATIO}, "results": rows,
            "meets_target": all(r["meets_target"] for r in rows[2:])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs of each command")
    parser.add_argument("--results", default=None, help="Write startup.json here instead.")
    args = parser.parse_args(argv)
    payload = measure(args.repeats)
    for r in payload["results"]:
        verdict = "" if "meets_target" not in r else \
            ("  meets target" if r["meets_target"] else "  MISSES target")
        print(f"{r['command']:58} min {r['min_s'] * 1000:5.0f} ms  median "
              f"{r['median_s'] * 1000:5.0f} ms  {r['ratio_to_floor']:4.2f}x floor{verdict}  "
              f"imports: {', '.join(r['imports']) or '-'}", flush=True)
    if args.results:
        path = Path(args.results) / "startup.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    else:
        path = write_result("startup", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
