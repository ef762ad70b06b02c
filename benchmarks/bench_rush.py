"""The deadline rush: 500 teams each upload a 10,000-row prediction file within 60 s, against
one `harness serve` on SQLite and on PostgreSQL with 1, 2 and 4 worker processes; each
closed-loop (32 and 128 concurrent clients, every upload sent as soon as a client is free)
and open-loop (uploads start at a fixed rate, teams / duration per second, whatever the
answers). Throughput, p50/p95/p99 latency, failures, and the CPU use of the server, of
PostgreSQL's backends and of the load generator. A fresh database and server per run.
Writes benchmarks/results/rush.json.

    python -m benchmarks.bench_rush [--teams 500 --rows 10000 --duration 60
                                     --clients 32,128 --workers 1,2,4 --backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.home import load_prepared

from . import load

P99_TARGET_S = 1.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load.add_common_options(parser)
    parser.add_argument("--duration", type=float, default=60.0,
                        help="the rush window in seconds; the open loop spreads the uploads "
                             "evenly over it (default %(default)s)")
    parser.add_argument("--clients", type=load.int_list, default=[32, 128],
                        help="closed-loop client counts, comma-separated (default 32,128)")
    parser.add_argument("--no-open", dest="open_loop", action="store_false",
                        help="skip the open-loop run")
    parser.add_argument("--workers", type=load.int_list, default=[1, 2, 4],
                        help="PostgreSQL server worker counts (default 1,2,4); SQLite runs "
                             "one worker")
    args = parser.parse_args(argv)
    rate = args.teams / args.duration
    modes = [("closed", c) for c in args.clients] + ([("open", rate)] if args.open_loop else [])

    with load.sigterm_unwinds(), tempfile.TemporaryDirectory(prefix="harness-rush-") as tmp:
        work = Path(tmp)
        base = load.prepare_competition(work / "base-home", args.rows)
        files = load.prediction_files(base, args.teams)
        print(f"rush: {args.teams} teams x {args.rows} rows "
              f"({sum(map(len, files)) / 2**20:.1f} MB), window {args.duration:g} s", flush=True)

        def configs(backend):
            workers = [1] if backend == "sqlite" else args.workers
            return [(w, kind, value) for w in workers for kind, value in modes]

        def run(backend, config):
            workers, kind, value = config
            r = load.upload_run(base, work, files, backend=backend, workers=workers,
                                clients=value if kind == "closed" else 0,
                                rate=value if kind == "open" else 0.0,
                                time_limit=args.time_limit, postgres_url=args.postgres_url)
            # open loop: the last upload starts at the window's end, so allow it the p99 target
            slack = P99_TARGET_S if kind == "open" else 0.0
            r["within_window"] = r["failures"] == 0 and r["wall_s"] <= args.duration + slack
            print(load.describe(r), flush=True)
            return r

        runs, problems = load.backend_runs(args, configs, run)
        manifest = load_prepared(base, load.SLUG).manifest["rows"]

    path = load.write_json(args.results, "rush", {
        "setup": {"teams": args.teams, "test_rows": manifest["public"] + manifest["private"],
                  "window_s": args.duration, "open_rate_per_s": round(rate, 3),
                  "time_limit_s": args.time_limit, "transport": "HTTP/1.1 on loopback",
                  "load_generator": "async httpx in the benchmark process (not the server's)",
                  "cpu_note": "cores = CPU seconds / wall seconds; server = `harness serve` "
                              "and its worker processes; postgres = the backends of the run's "
                              "own database; the machine may be shared (see load average)"},
        "targets": {"failures": 0, "p99_s": P99_TARGET_S, "window_s": args.duration},
        "runs": runs, "problems": problems})
    print(f"wrote {path}")
    if problems:
        raise RuntimeError("; ".join(problems))


if __name__ == "__main__":
    main()
