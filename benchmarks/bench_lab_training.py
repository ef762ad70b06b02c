"""Wall and CPU time of `harness lab diagnose | hessian | batch | optimizers` at their default
settings (the issue's budget: under 60 s each on 2 cores), with each run's verdict. Each
command runs as a teacher would run it: a fresh process (so torch's one-time import is
included), competitions already prepared. Writes benchmarks/results/lab_training.json.

    python -m benchmarks.bench_lab_training [--only hessian]
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

# command -> (arguments after `harness lab`, report name)
COMMANDS = {
    "diagnose": (["diagnose", "digits"], "diagnose"),
    "diagnose-optimization": (["diagnose", "digits", "--preset", "optimization"],
                              "diagnose-optimization"),
    "hessian": (["hessian"], "hessian"),
    "batch": (["batch", "digits"], "batch"),
    "optimizers": (["optimizers", "digits"], "optimizers"),
}


def run(name: str, home: Path, out: Path) -> dict:
    """Run one command in a child process; its times and the verdict lines it reported."""
    args, report = COMMANDS[name]
    exe = Path(sys.executable).with_name("harness")
    cmd = [str(exe), "lab", *args, "--home", str(home), "--out", str(out)]
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(usage_after, f) - getattr(usage_before, f) for f in ("ru_utime", "ru_stime"))
    written = json.loads((out / f"{report}.json").read_text())
    return {"command": " ".join(["harness", "lab", *args]), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "load_average_before": round(load, 2),
            "under_60s": wall < 60, "verdicts": written["verdicts"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(COMMANDS), action="append")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        home, out = Path(tmp) / "home", Path(tmp) / "out"
        for slug in ("digits", "breast-cancer"):
            prepare(find_spec_path(slug), home)
        for name in args.only or list(COMMANDS):
            r = results[name] = run(name, home, out)
            print(f"{r['command']}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU "
                  f"(load average {r['load_average_before']})", flush=True)
    path = write_result("lab_training", {
        "note": "default settings, one process per command (torch import included); wall "
                "time depends on other load on the machine, CPU time much less",
        "commands": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
