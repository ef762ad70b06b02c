"""The soak test (benchmarks/bench_soak.py): a short run per backend against a real
`harness serve` must pass the same criteria as the full one, and the criteria themselves
must fail when an answer, the memory or the store is wrong. (`python -m benchmarks.run soak`
runs it for 10 minutes per backend.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from benchmarks import bench_soak
from benchmarks.bench_soak import MB, Plan, Record

READS = ("page", "leaderboard", "submissions", "competitions")
SHORT = ["--minutes", str(18 / 60), "--teams", "8", "--rows", "200", "--workers", "1",
         "--upload-every", "1,3", "--bad-share", "0.2", "--projectors", "2",
         "--poll-every", "1", "--students", "3", "--list-every", "1,2",
         "--rescore-every", "5", "--rss-growth-mb", "150"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_short_soak_passes_every_criterion(backend, request, tmp_path):
    args = SHORT + ["--backends", backend, "--results", str(tmp_path)]
    if backend == "postgresql":
        args += ["--postgres-url", request.getfixturevalue("postgres_url")]   # skips if absent
    bench_soak.main(args)
    out = json.loads((tmp_path / "soak.json").read_text())
    assert out["problems"] == []
    (run,) = out["runs"]
    assert run["backend"] == backend and run["passed"]
    assert run["errors"] == 0, run["error_samples"]
    assert set(run["requests"]) == {"upload", "upload_bad", "rescore", *READS}
    assert run["statuses"]["upload"] == {"201": run["uploads_201"]}
    assert set(run["statuses"]["upload_bad"]) == {"400"}
    assert all(set(run["statuses"][k]) == {"200"} for k in READS)
    assert run["stored_scored"] == run["uploads_201"] > 0 and run["every_answered_upload_stored"]
    rss = run["rss"]
    assert rss["ok"] and rss["growth_mb"] <= 150 and rss["samples"] >= 10
    assert 0 < rss["start_mb"] <= rss["max_mb"]
    assert run["rescores"]["count"] >= 1 and run["rescores"]["runs"][0]["rescored"] > 0
    assert all(run["latency_s"][k]["p99"] is not None for k in run["requests"])
    # the loops stop by themselves: the wall time is the duration plus what was in flight
    assert 18 <= run["wall_s"] < 18 + 30


def test_every_unexpected_answer_is_an_error_with_its_reason():
    def answer(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/down":
            raise httpx.ConnectError("connection refused", request=req)
        return httpx.Response(int(req.url.path.strip("/")), text="detail of the answer")

    async def send(record):
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer),
                                     base_url="http://test") as client:
            for kind, expected, path in (("upload", 201, "/201"), ("upload", 201, "/500"),
                                         ("upload_bad", 400, "/201"), ("page", 200, "/down"),
                                         ("page", 200, "/200")):
                await bench_soak.request(client, record, kind, expected, "GET", path)

    record = Record()
    asyncio.run(send(record))
    summary = record.summary()
    assert summary["requests"] == {"upload": 2, "upload_bad": 1, "page": 2}
    assert summary["errors"] == 3
    assert summary["errors_by_reason"] == {"upload: expected 201, got 500": 1,
                                           "upload_bad: expected 400, got 201": 1,
                                           "page: expected 200, got ConnectError": 1}
    assert summary["error_samples"][0]["detail"] == "detail of the answer"
    assert "connection refused" in summary["error_samples"][2]["detail"]


def test_memory_growth_beyond_the_bound_fails():
    plan = Plan(duration=600.0, rss_growth_mb=50.0)
    flat = [(t, 500 * MB) for t in range(0, 601, 5)]
    assert bench_soak.rss_verdict(flat, plan)["ok"]
    # a leak of 0.2 MB/s: the last minute's median is ~96 MB above the second minute's
    leak = [(t, 500 * MB + int(0.2 * MB * t)) for t in range(0, 601, 5)]
    verdict = bench_soak.rss_verdict(leak, plan)
    assert not verdict["ok"] and verdict["growth_mb"] > 50
    assert verdict["start_mb"] == 500 and verdict["max_mb"] == 620
    # a run too short to fill both windows cannot pass
    short = bench_soak.rss_verdict([(0.0, 500 * MB)], plan)
    assert not short["ok"] and "window" in short["problem"]
    assert not bench_soak.rss_verdict([], plan)["ok"]


def test_a_lost_upload_fails_the_verdict():
    plan = Plan(duration=20.0)
    record = Record()
    record.rss = [(t, 100 * MB) for t in range(0, 21)]
    for _ in range(3):
        record.note("upload", "201", "201", 0.01)
    assert bench_soak.verdict("sqlite", 1, record, 3, plan, 20.0)["passed"]
    failed = bench_soak.verdict("sqlite", 1, record, 2, plan, 20.0)
    assert not failed["passed"] and not failed["every_answered_upload_stored"]


def test_broken_files_are_each_broken_another_way():
    good = b"id,label\n1,0\n2,1\n3,2\n"
    bad = bench_soak.broken_files(good)
    assert len(set(bad)) == 4 and good not in bad
    assert bad[0] == b"id,label\n1,0\n2,1\n" and bad[2].endswith(b"3,2\n1,0\n")


def test_process_tree_rss_includes_children():
    # a parent that starts a child holding 200 MB; the parent alone holds far less
    child = ("import sys, time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]);"
             " print('ready', flush=True); time.sleep(60)")
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, "
                               f"'-c', {child!r}])"], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while bench_soak.tree_rss_bytes(parent.pid) < 200 * MB and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bench_soak.tree_rss_bytes(parent.pid) >= 200 * MB
        assert bench_soak.tree_rss_bytes(2**22 + 1) == 0        # no such process
    finally:
        os.killpg(parent.pid, signal.SIGKILL)      # the parent and the child it started
        parent.wait()
