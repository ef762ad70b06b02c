"""Faults: a real `harness serve` SIGKILLed in the middle of an upload burst (SQLite and
PostgreSQL), then restarted; and the upload folder's disk running full (507, not counted).

After the crash every upload answered 201 must be stored with its scores and its archived
file byte for byte; every upload refused with an answer must be absent (or an error row);
an upload cut off by the kill (no answer) is either absent or stored whole. Nothing is
half-written: no scored row without its file, no file counted twice, quotas and boards
agree with the rows, and `harness doctor` passes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from harness import rules
from harness.cli import main as cli_main
from harness.errors import StorageError, http_status
from harness.home import load_prepared
from harness.operations import dump_tables
from harness.scoring import AnswerKey, score
from harness.service import Harness
from harness.store import Database

SLUG = "digits"                 # daily_limit 5, no deadline
TEAMS = 12
UPLOADS_PER_TEAM = 6            # one over the daily limit: the burst meets 429s too
CLIENTS = 12                    # concurrent HTTP clients
KILL_AFTER = 16                 # the SIGKILL lands right after this many 201 answers


# --- helpers shared with test_multi_server.py ---------------------------------------------

@dataclass
class Upload:
    """One upload of a burst and what the server answered (``status`` None: no answer)."""

    team: str
    token: str
    message: str
    data: bytes
    url: str = ""
    status: int | None = None
    body: dict | None = None
    error: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def post_upload(upload: Upload, slug: str = SLUG) -> Upload:
    """Send one upload to ``upload.url``; records the answer, or the error if none came."""
    try:
        with httpx.Client(base_url=upload.url, timeout=60,
                          headers={"Authorization": f"Bearer {upload.token}"}) as c:
            r = c.post(f"/api/competitions/{slug}/submissions",
                       files={"file": ("predictions.csv", upload.data, "text/csv")},
                       data={"message": upload.message})
        upload.status, upload.body = r.status_code, r.json()
    except httpx.HTTPError as exc:   # the server died under this request
        upload.error = f"{type(exc).__name__}: {exc}"
    return upload


def burst(uploads: list[Upload], clients: int, on_answer=None, slug: str = SLUG) -> list[Upload]:
    """Fire ``uploads`` from ``clients`` threads at once; ``on_answer(upload)`` after each."""
    def one(u):
        post_upload(u, slug)
        if on_answer:
            on_answer(u)
        return u

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, uploads))


def make_uploads(home, make_predictions, teams: dict[str, str], per_team: int, urls: list[str],
                 slug: str = SLUG, tag: str = "") -> list[Upload]:
    """``per_team`` distinct prediction files per team, round-robin over teams and ``urls``."""
    out = []
    for k in range(per_team):
        for j, (name, token) in enumerate(teams.items()):
            i = len(out)
            data = make_predictions(home, slug, public_right=0.55 + (i % 40) / 100,
                                    private_right=0.5 + (i % 45) / 100, seed=i)
            out.append(Upload(name, token, f"{tag}{name} upload {k}", data,
                              urls[(j + k) % len(urls)]))   # each team alternates servers
    return out


def entries(rows: list[dict]) -> list[rules.Entry]:
    """The rules' view of ``Harness.all_submissions`` rows (full-precision scores)."""
    return [rules.Entry(r["id"], r["team"], datetime.fromisoformat(r["submitted_at"]),
                        r["public_score_full"], r["private_score_full"], status=r["status"],
                        late=r["late"], baseline=r["baseline"], selected=r["selected"])
            for r in rows]


def check_boards(h: Harness, slug: str = SLUG) -> dict:
    """Both boards as the service answers them equal the boards recomputed by harness.rules
    from every stored row; returns the public board."""
    spec = h.prepared(slug).spec
    kw = dict(greater_is_better=spec.metric.greater_is_better,
              decimals=spec.scoring.public_decimals)
    es = entries(h.all_submissions(slug))
    public = h.leaderboard(slug, "public")
    assert rules.ranking_only(public["rows"]) == rules.public_board(es, **kw)
    private = h.leaderboard(slug, "private", teacher=True)
    assert rules.ranking_only(private["rows"]) == rules.private_board(
        es, final_selections=spec.rules.final_selections, **kw)
    return public


def check_stored(h: Harness, uploads: list[Upload], slug: str = SLUG) -> dict:
    """Every stored row is whole and matches what its upload was sent and answered.

    Returns counts: ``answered`` (201s), ``refused``, ``cut`` (no answer), ``cut_stored``
    (no answer but committed before the kill), ``orphans`` (archived files of transactions
    that never committed: on disk, counted nowhere).
    """
    db = Database(h.database_url)
    try:
        tables = dump_tables(db)
    finally:
        db.dispose()
    key = AnswerKey.from_prepared(load_prepared(h.home, slug))
    comp_id = {c["slug"]: c["id"] for c in tables["competitions"]}[slug]
    stored = [r for r in tables["submissions"] if r["competition_id"] == comp_id]
    by_id = {r["id"]: r for r in h.all_submissions(slug)}
    assert set(by_id) == {r["id"] for r in stored}
    by_message = Counter(r["message"] for r in stored)
    assert max(by_message.values(), default=1) == 1, "an upload was stored twice"
    sent = {u.message: u for u in uploads}
    row_of = {r["message"]: r for r in stored}

    for u in uploads:
        row = row_of.get(u.message)
        if u.status == 201:
            assert row is not None, f"{u.message!r} was answered 201 but is not stored"
            view = by_id[row["id"]]
            assert (view["id"], view["team"], view["status"], view["public_score"]) == \
                (u.body["id"], u.team, "scored", u.body["public_score"])
        elif u.status is not None:            # refused with an answer: never scored
            assert row is None or row["status"] == "error", (u.message, u.status, u.body)

    paths = [r["path"] for r in stored if r["status"] == "scored"]
    assert len(paths) == len(set(paths)), "two rows share one archived file"
    for r in stored:
        if r["status"] != "scored":
            assert r["path"] is None
            continue
        # the archived file is intact (the bytes sent) and scores to the stored scores
        data = (h.home / r["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sent[r["message"]].sha256, r
        again = score(data, key)
        assert (again.public, again.private) == (r["public_score"], r["private_score"])

    # quotas count exactly the scored rows (the row and its quota commit together)
    scored = Counter((r["team_id"], r["day"]) for r in stored if r["status"] == "scored")
    used = {(q["team_id"], q["period"]): q["used"] for q in tables["quotas"]
            if q["competition_id"] == comp_id and q["period"] != "total"}
    assert {k: v for k, v in used.items() if v} == dict(scored)
    limit = h.prepared(slug).spec.rules.daily_limit
    assert not limit or max(scored.values(), default=0) <= limit

    # files no row points to come from transactions the kill cut off: uploads with no answer
    archived = {p.relative_to(h.home).as_posix() for p in (h.home / "uploads" / slug).glob("*.csv")}
    orphans = archived - set(paths)
    cut = {u.sha256 for u in uploads if u.status is None}
    assert {hashlib.sha256((h.home / p).read_bytes()).hexdigest() for p in orphans} <= cut
    return {"answered": sum(u.status == 201 for u in uploads),
            "refused": sum(u.status not in (None, 201) for u in uploads),
            "cut": sum(u.status is None for u in uploads),
            "cut_stored": sum(u.status is None and u.message in row_of for u in uploads),
            "orphans": len(orphans)}


def doctor_passes(h: Harness) -> None:
    result = CliRunner().invoke(cli_main, ["doctor", "--home", str(h.home),
                                           "--database-url", h.database_url])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output


# --- the crash ------------------------------------------------------------------------------

def _live_group_members(pgid: int, wait: float = 10.0) -> list[int]:
    """Processes of group ``pgid`` still running after ``wait`` s; zombies count as dead
    (killed workers wait for whoever reaps orphans, which in a container may be slow)."""
    end = time.monotonic() + wait
    while True:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(stat.parent.name))
        if not alive or time.monotonic() > end:
            return alive
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_mid_burst_loses_nothing_answered(backend, request, _prepared_home, tmp_path,
                                                  start_server, make_predictions):
    url = request.getfixturevalue("fresh_postgres_url")() if backend == "postgres" else None
    home = tmp_path / "home"
    shutil.copytree(_prepared_home, home)
    h = Harness(home, url)
    teams = {f"{backend}-team-{i}": h.add_team(f"{backend}-team-{i}")[1] for i in range(TEAMS)}
    workers = 2 if backend == "postgres" else 1     # the kill must take every worker down
    server = start_server(home, url, workers=workers)
    uploads = make_uploads(home, make_predictions, teams, UPLOADS_PER_TEAM, [server.url])
    # two teams send all their files first, so 429s (answered refusals) come before the kill
    eager = set(list(teams)[:2])
    uploads.sort(key=lambda u: u.team not in eager)

    lock, answered = threading.Lock(), []

    def kill_mid_burst(u):
        with lock:
            if u.status == 201:
                answered.append(u)
            if len(answered) == KILL_AFTER and server.process.poll() is None:
                server.stop(signal.SIGKILL)        # the process group: server and workers

    burst(uploads, CLIENTS, kill_mid_burst)
    assert not _live_group_members(server.process.pid), "part of the old server survived"
    counts = {"answered": sum(u.status == 201 for u in uploads),
              "cut": sum(u.status is None for u in uploads)}
    assert counts["answered"] >= KILL_AFTER and counts["cut"] > 0, \
        f"the kill did not land mid-burst: {counts}"

    restarted = start_server(home, url, workers=1)
    counts = check_stored(h, uploads)
    public = check_boards(h)
    print(f"{backend}: {counts}")
    with httpx.Client(base_url=restarted.url, timeout=60) as c:
        assert c.get(f"/api/competitions/{SLUG}/leaderboard").json()["rows"] == public["rows"]

    # the restarted server takes uploads again (no lock or half transaction left behind)
    scored = Counter(r["team"] for r in h.all_submissions(SLUG) if r["status"] == "scored")
    name = min(teams, key=lambda t: scored[t])
    again = post_upload(Upload(name, teams[name], f"{name} after the restart",
                               make_predictions(home, SLUG, 0.9, 0.9, seed=999), restarted.url))
    assert again.status == 201, again.body or again.error
    assert again.body["remaining_today"] == 5 - scored[name] - 1
    check_stored(h, uploads + [again])
    check_boards(h)
    doctor_passes(h)


# --- the disk runs full ---------------------------------------------------------------------

@pytest.fixture
def tiny_upload_disk(tmp_path):
    """A home whose uploads/ folder is a 256 KiB tmpfs, filled to the brim by a filler file
    (yields the home and the filler); skips when this machine does not let us mount."""
    home = tmp_path / "home"
    uploads = home / "uploads"
    uploads.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(uploads)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip("cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN): "
                    + (mounted.stderr.strip() or f"exit {mounted.returncode}")
                    + "; test_disk_full_in_process covers the same path by patching")
    filler = uploads / "filler"
    try:
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    try:
        yield home, filler
    finally:
        subprocess.run(["umount", "-l", str(uploads)], check=False)


@pytest.mark.slow
def test_disk_full_is_507_and_not_counted(tiny_upload_disk, _prepared_home, start_server,
                                          make_predictions):
    home, filler = tiny_upload_disk
    shutil.copytree(_prepared_home / "competitions", home / "competitions")
    h = Harness(home)
    name = "full-disk"
    token = h.add_team(name)[1]
    server = start_server(home)
    data = make_predictions(home, SLUG, 0.8, 0.8)

    full = post_upload(Upload(name, token, "disk is full", data, server.url))
    assert full.status == 507, full.body or full.error
    assert "upload folder is full" in full.body["detail"]
    assert "not counted" in full.body["detail"]
    assert h.all_submissions(SLUG) == []
    assert h.submissions(SLUG, h.team_named(name)) == []
    assert sorted(p.name for p in (home / "uploads").rglob("*") if p.is_file()) == ["filler"]

    filler.unlink()                                # space again: the next upload counts first
    ok = post_upload(Upload(name, token, "space again", data, server.url))
    assert ok.status == 201, ok.body or ok.error
    assert ok.body["remaining_today"] == 4         # the 507 used none of the daily 5
    check_stored(h, [full, ok])
    doctor_passes(h)
    server.stop()


def test_disk_full_in_process(prepared_home, make_predictions, monkeypatch):
    """The same without a mount: the archive's rename fails with ENOSPC (HTTP layer too)."""
    from harness.server.app import create_app

    h = Harness(prepared_home)
    team, token = h.add_team("full-disk")
    real_replace = os.replace
    uploads = prepared_home / "uploads"

    def no_space(src, dst, *a, **kw):
        if uploads in Path(dst).parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", no_space)
    data = make_predictions(prepared_home, SLUG, 0.8, 0.8)
    with pytest.raises(StorageError, match="upload folder is full") as caught:
        h.submit(SLUG, team, data, "disk is full")
    assert http_status(caught.value) == 507
    async def upload_through_the_app():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(h)),
                                     base_url="http://harness.test") as client:
            return await client.post(f"/api/competitions/{SLUG}/submissions",
                                     headers={"Authorization": f"Bearer {token}"},
                                     files={"file": ("p.csv", data, "text/csv")},
                                     data={"message": "again"})

    r = asyncio.run(upload_through_the_app())
    assert r.status_code == 507 and "not counted" in r.json()["detail"]
    assert h.all_submissions(SLUG) == []
    assert [p for p in uploads.rglob("*") if p.is_file()] == []   # no half file, no temp file

    monkeypatch.setattr(os, "replace", real_replace)
    assert h.submit(SLUG, team, data, "space again")["remaining_today"] == 4
