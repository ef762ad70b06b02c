"""Backup/restore round-trips exactly (SQLite and PostgreSQL); doctor; the audit log."""

import tarfile

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.operations import backup, doctor, dump_tables, restore
from harness.service import Harness
from harness.store import Database, default_url


def busy_home(home, url=None):
    """A home with teams, scored and refused uploads, a selection, a baseline, a reveal."""
    h = Harness(home, url)
    sample = (home / "competitions/digits/released/sample_submission.csv").read_bytes()
    (t1, _), (t2, _) = h.add_team("owls", ["ana"]), h.add_team("<b>rocket</b>", ["bo", "cy"])
    first = h.submit("digits", t1, sample, "constant")
    h.submit("digits", t2, sample.replace(b",3\n", b",1\n"), "ones")
    with pytest.raises(Exception):
        h.submit("digits", t1, b"id,label\n", "broken")
    h.select("digits", t1, [first["id"]])
    h.add_baseline("digits", "constant", sample)
    h.close("digits")
    h.reveal("digits")
    return h


def archive_contents(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()
                if m.isfile() and m.name != "manifest.json"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_backup_restore_round_trip(prepared_home, tmp_path, backend, request):
    new_pg = request.getfixturevalue("fresh_postgres_url") if backend == "postgres" else None
    url = new_pg() if new_pg else None
    h = busy_home(prepared_home, url)
    boards = (h.leaderboard("digits", "public"), h.leaderboard("digits", "private"))
    first = tmp_path / "first.tar.gz"
    backup(prepared_home, first, url)

    restored = tmp_path / "restored"
    target_url = new_pg() if new_pg else None
    restore(first, restored, target_url)
    second = tmp_path / "second.tar.gz"
    backup(restored, second, target_url)
    assert archive_contents(first) == archive_contents(second)

    h2 = Harness(restored, target_url)
    assert (h2.leaderboard("digits", "public"), h2.leaderboard("digits", "private")) == boards
    # ids keep counting after the restored ones
    team, token = h2.add_team("newcomers")
    assert h2.authenticate(token)["name"] == "newcomers"
    assert team["id"] > max(t["id"] for t in h.list_teams())


def test_sqlite_backup_restores_on_postgres(prepared_home, tmp_path, fresh_postgres_url):
    url = fresh_postgres_url()
    h = busy_home(prepared_home)
    board = h.leaderboard("digits", "private")
    backup(prepared_home, tmp_path / "b.tar.gz")
    restore(tmp_path / "b.tar.gz", tmp_path / "pg-home", url)
    assert Harness(tmp_path / "pg-home", url).leaderboard("digits", "private") == board


def test_restore_refuses_a_used_home_and_damaged_archives(prepared_home, tmp_path):
    busy_home(prepared_home)
    backup(prepared_home, tmp_path / "b.tar.gz")
    with pytest.raises(Exception, match="not empty"):
        restore(tmp_path / "b.tar.gz", prepared_home)
    (tmp_path / "junk.tar.gz").write_bytes(b"")
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(tmp_path / "junk.tar.gz", arcname="files/x.csv")
    with pytest.raises(Exception, match="not a harness backup"):
        restore(bad, tmp_path / "new")


def test_doctor_finds_what_is_wrong(prepared_home):
    h = busy_home(prepared_home)
    assert all(c["ok"] for c in doctor(prepared_home)), doctor(prepared_home)
    sub = h.all_submissions("digits")[-1]
    upload = next((prepared_home / "uploads/digits").glob("*.csv"))
    upload.unlink()
    (prepared_home / "competitions/digits/hidden/solution.csv").write_text("id,label,Usage\n")
    failed = {c["check"] for c in doctor(prepared_home) if not c["ok"]}
    assert "archived uploads present" in failed
    assert "digits: files match the manifest" in failed
    assert "digits: answer key matches test.csv ids" in failed
    assert sub


def test_doctor_cli_exit_code(prepared_home, tmp_path):
    r = CliRunner().invoke(main, ["doctor", "--home", str(prepared_home)])
    assert r.exit_code == 0, r.output
    assert "database reachable" in r.output
    r = CliRunner().invoke(main, ["doctor", "--home", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and "FAIL home exists" in r.output


def test_audit_log_records_teacher_actions(prepared_home):
    busy_home(prepared_home)
    h = Harness(prepared_home)
    h.rescore("digits")
    actions = [a["action"] for a in h.audit_log("digits")]
    assert actions == ["team add", "team add", "baseline add", "close", "reveal", "rescore"]
    assert {a["actor"] for a in h.audit_log("digits")} == {"home (server machine)"}
    r = CliRunner().invoke(main, ["audit", "digits", "--home", str(prepared_home),
                                  "--format", "csv"])
    assert r.exit_code == 0 and "rescore" in r.output and "reveal" in r.output


def test_schema_v1_database_is_migrated(tmp_path):
    from sqlalchemy import text

    from harness.store import SCHEMA_VERSION

    url = default_url(tmp_path)
    Database(url).dispose()
    db = Database(url)
    with db.engine.begin() as conn:                  # make it look like a release-1 database
        conn.execute(text("DROP TABLE audit"))
        conn.execute(text("DROP TABLE replicates"))        # added by schema version 4
        for undo in ("DROP TABLE teacher_tokens", "DROP INDEX ux_teams_name_key",  # version 5
                     "ALTER TABLE teams DROP COLUMN name_key",
                     "ALTER TABLE teams DROP COLUMN removed_at",
                     "ALTER TABLE members DROP COLUMN section"):
            conn.execute(text(undo))
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("UPDATE schema_version SET version = 1"))
    db.dispose()
    db = Database(url)
    assert {"audit", "replicates", "teacher_tokens"} <= set(dump_tables(db))
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() \
            == SCHEMA_VERSION


def test_doctor_reports_and_fix_removes_stray_temp_files(prepared_home):
    import os
    import subprocess
    import sys
    import time

    busy_home(prepared_home)
    folder = prepared_home / "uploads/digits"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)               # exited: its temp file can have no writer
    crashed = folder / f".90.csv.{dead_pid}.140000.tmp"
    writing = folder / f".91.csv.{os.getpid()}.140001.tmp"     # a live process, just now
    stale = folder / f".92.csv.{os.getpid()}.140002.tmp"       # a live pid, 20 minutes old
    for path in (crashed, writing, stale):
        path.write_bytes(b"id,label\n")
    os.utime(stale, (time.time() - 1200,) * 2)

    row = next(c for c in doctor(prepared_home) if c["check"] == "upload temporary files")
    assert "2 left by a crash" in row["detail"] and "1 in progress" in row["detail"]
    assert crashed.name in row["detail"] and "--fix" in row["detail"]
    assert crashed.exists() and stale.exists()            # reported, not removed

    archived = sorted(folder.glob("*.csv"))
    r = CliRunner().invoke(main, ["doctor", "--home", str(prepared_home), "--fix"])
    assert r.exit_code == 0, r.output
    assert "removed 2 left by a crash" in r.output and "1 in progress" in r.output
    assert not crashed.exists() and not stale.exists() and writing.exists()
    assert sorted(folder.glob("*.csv")) == archived and archived   # uploads untouched
    writing.unlink()
    row = next(c for c in doctor(prepared_home) if c["check"] == "upload temporary files")
    assert row["detail"] == "none"
