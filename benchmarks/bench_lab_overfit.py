"""Wall and CPU time of `harness lab overfit | attack | holdout-reuse` at their default
settings (the issue's budget: under 60 s each on 2 cores), with the headline numbers each
run printed. Each command runs as a teacher would run it: a fresh process, competitions
already prepared. Writes benchmarks/results/lab_overfit.json.

    python -m benchmarks.bench_lab_overfit [--only attack]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.home import find_spec_path
from harness.splits import prepare

from .common import write_result

COMMANDS = {
    "overfit": ["overfit", "digits"],
    "attack": ["attack", "noise-binary"],
    "holdout-reuse": ["holdout-reuse"],
}


def headline(name: str, numbers: dict) -> dict:
    """The few numbers worth quoting from a command's json output."""
    if name == "overfit":
        return {way: {k: round(v, 4) for k, v in numbers[way].items()}
                for way in ("by_public", "by_validation")}
    if name == "attack":
        return {board: {"shown_public_error": round(v["shown_public_error"], 4),
                        "private_error": round(v["private_error"], 4)}
                for board, v in numbers["boards"].items()}
    return {m: {k: round(v, 4) for k, v in numbers[m].items() if isinstance(v, float)}
            for m in ("standard", "thresholdout")}


def time_command(name: str, home: Path, out: Path) -> dict:
    harness = Path(sys.executable).with_name("harness")
    cmd = [str(harness), "lab", *COMMANDS[name], "--out", str(out / name), "--format", "json"]
    if name != "holdout-reuse":
        cmd[3:3] = ["--home", str(home)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    numbers = json.loads(done.stdout)
    return {"command": " ".join(["harness", "lab", *COMMANDS[name]]), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "load_average_before": round(load, 2),
            "under_60s": wall < 60, "headline": headline(name, numbers)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(COMMANDS), action="append")
    args = parser.parse_args(argv)
    names = args.only or list(COMMANDS)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        home, out = Path(tmp) / "home", Path(tmp) / "out"
        for slug in ("digits", "noise-binary"):
            prepare(find_spec_path(slug), home)
        for name in names:
            results[name] = time_command(name, home, out)
            r = results[name]
            print(f"{r['command']}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU "
                  f"(load average {r['load_average_before']})", flush=True)
    path = write_result("lab_overfit", {"note": "default settings; wall time depends on "
                                        "other load, CPU time much less", "commands": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
