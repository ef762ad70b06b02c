"""The server benchmarks at a tiny size: they run end to end against a real `harness serve`,
write their JSON with every field, count what fails, and stop within their time bound.
(`make bench` runs them at full size.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

from benchmarks import bench_rush, bench_server, load

LATENCY_KEYS = {"p50", "p95", "p99", "max"}
CPU_KEYS = {"server_s", "server_cores", "postgres_s", "postgres_cores", "load_generator_s",
            "load_generator_cores"}


def check_run(run: dict, uploads: int) -> None:
    assert "error" not in run, run.get("error")
    assert run["uploads"] == uploads
    assert run["ok"] == uploads and run["failures"] == 0, run["failure_samples"]
    assert run["stored_scored"] == run["ok"] and run["consistent"]
    assert set(run["latency_s"]) == LATENCY_KEYS
    assert 0 < run["latency_s"]["p50"] <= run["latency_s"]["p99"] <= run["latency_s"]["max"]
    assert run["throughput_per_s"] > 0
    assert set(run["cpu"]) == CPU_KEYS and run["cpu"]["server_s"] > 0


def test_bench_server_tiny(tmp_path):
    bench_server.main(["--teams", "6", "--rows", "200", "--clients", "3", "--workers", "1",
                       "--board-teams", "12", "--board-submissions", "60",
                       "--board-repeats", "2", "--backends", "sqlite",
                       "--time-limit", "60", "--results", str(tmp_path)])
    out = json.loads((tmp_path / "server.json").read_text())
    assert {"machine", "setup", "targets", "burst", "leaderboard", "problems"} <= set(out)
    assert out["problems"] == [] and out["setup"]["test_rows"] == 200
    (burst,) = out["burst"]
    check_run(burst, 6)
    assert isinstance(burst["meets_target"], bool)
    (board,) = out["leaderboard"]
    assert board["teams"] == 12 and board["submissions"] == 60
    assert set(board["in_process"]) == {"public", "private_teacher", "public_after_upload"}
    assert isinstance(board["tied_with_leader"], int) and board["first_board_s"]["median"] > 0
    assert set(board["http"]) == {"public", "private_revealed"}
    assert all(t["median"] > 0 for part in ("in_process", "http") for t in board[part].values())
    assert isinstance(board["meets_target"], bool)


def test_bench_rush_tiny(tmp_path):
    # PostgreSQL when CI provides it (a database of its own, dropped after), else SQLite
    pg = os.environ.get("HARNESS_TEST_POSTGRES_URL", "")
    backend = "postgresql" if pg and not load.postgres_unreachable(pg) else "sqlite"
    # closed loop only: one server start (the open loop is driven in the test below)
    args = ["--teams", "6", "--rows", "200", "--clients", "3", "--no-open", "--workers", "1",
            "--backends", backend, "--time-limit", "60", "--results", str(tmp_path),
            "--repeat", "2"]
    if pg:
        args += ["--postgres-url", pg]
    bench_rush.main(args)
    out = json.loads((tmp_path / "rush.json").read_text())
    assert {"machine", "setup", "targets", "sequential", "runs", "problems"} <= set(out)
    assert out["problems"] == []
    # each round: one client's back-to-back uploads of every file, beside their scoring in
    # process, then the rush
    assert out["rounds"] == 2
    assert [r["round"] for r in out["sequential"]] == [1, 2]
    assert [r["round"] for r in out["runs"]] == [1, 2]
    one = out["sequential"][0]
    check_run(one, 6)
    assert one["clients"] == 1 and one["backend"] == backend
    assert 0 < one["in_process_score_s"]["p50"] <= one["in_process_score_s"]["max"]
    # an upload over HTTP does the scoring and more
    assert one["upload_over_score"] > 1 and one["upload_above_score_ms"] > 0
    assert isinstance(one["meets_target"], bool)
    # the same bytes to a bare ASGI app: HTTP's own share, below the whole upload's
    assert set(one["bare_http_s"]) == LATENCY_KEYS
    assert 0 < one["bare_http_s"]["p50"] < one["latency_s"]["p50"]
    parts = one["parts_p50_ms"]
    assert set(parts) == {"bare_http", "service_in_process", "rest"}
    assert abs(sum(parts.values()) - one["latency_s"]["p50"] * 1000) < 0.05
    run = out["runs"][0]
    check_run(run, 6)
    assert run["backend"] == backend and run["workers"] == 1 and run["clients"] == 3
    assert isinstance(run["within_window"], bool)
    # the summary: each figure's range over the rounds
    seq = out["summary"]["sequential"][backend]
    assert seq["rounds"] == 2 and 0 <= seq["meets_target"] <= 2
    uploads = sorted(r["latency_s"]["p50"] * 1000 for r in out["sequential"])
    assert (seq["upload_p50_ms"]["min"], seq["upload_p50_ms"]["max"]) == \
        (round(uploads[0], 2), round(uploads[1], 2))
    (burst,) = out["summary"]["runs"].values()
    assert burst["rounds"] == 2 and 0 <= burst["p99_under_target"] <= 2
    throughputs = [r["throughput_per_s"] for r in out["runs"]]
    assert burst["throughput_per_s"]["min"] == min(throughputs)
    assert burst["throughput_per_s"]["max"] == max(throughputs)
    # PostgreSQL's share is measured (a number), but 6 tiny uploads on a loaded box can stay
    # under one clock tick (10 ms) of backend CPU: it was 0.0 in one full-suite run
    assert run["cpu"]["postgres_s"] >= 0 if backend == "postgresql" else True


def test_failures_are_counted_and_a_run_stops_at_its_time_limit():
    """A server that accepts but never answers: every upload is counted as unfinished, and
    the generator returns at its time limit."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        t = time.perf_counter()
        outcomes, wall = load.generate_load(url, "x", [("token", b"id,y\n1,0\n")] * 4,
                                            clients=2, time_limit=1.0)
        assert time.perf_counter() - t < 5
        summary = load.summarize(outcomes, wall)
        assert summary["ok"] == 0 and summary["failures"] == 4
        assert summary["failures_by_kind"] == {"unfinished": 4}
        assert summary["latency_s"]["p50"] is None
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        listener.close()


def test_open_loop_keeps_its_rate_and_counts_refused_connections():
    port = load.free_port()           # nobody listens there
    outcomes, wall = load.generate_load(f"http://127.0.0.1:{port}", "x",
                                        [("token", b"id,y\n1,0\n")] * 3, rate=4.0,
                                        time_limit=10.0)
    assert wall >= 0.5                # three uploads at 4/s start over 0.5 s
    summary = load.summarize(outcomes, wall)
    assert summary["failures"] == 3 and summary["failures_by_kind"] == {"ConnectError": 3}
    assert len(summary["failure_samples"]) == 3


def test_process_tree_cpu_includes_children():
    burn = ("import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.3: pass\ntime.sleep(30)")
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 20
        while load.tree_cpu_seconds(child.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert load.tree_cpu_seconds(child.pid) >= 0.3
        assert load.tree_cpu_seconds(os.getpid()) >= load.own_cpu_seconds() + 0.25
    finally:
        child.kill()
        child.wait()
