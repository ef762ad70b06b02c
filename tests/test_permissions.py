"""The home is private to its owner whatever the umask: the database (every private score),
the uploads (every team's predictions), backups and restored homes; `harness doctor`
reports a home other local users can read, and `--fix` tightens it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.home import find_spec_path
from harness.operations import backup, doctor, restore
from harness.service import Harness
from harness.splits import prepare


@pytest.fixture
def loose_umask():
    """The common default umask (022): files 0644 and folders 0755 unless we say otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def shared(root: Path, skip: str | None = None) -> list[str]:
    """Every file or folder under ``root`` (and ``root``) with a group/other permission bit."""
    found = []
    for path in [root, *root.rglob("*")]:
        rel = path.relative_to(root).as_posix()
        if skip and (rel == skip or rel.startswith(skip + "/")):
            continue
        if stat.S_IMODE(path.lstat().st_mode) & 0o077:
            found.append(f"{rel} {stat.filemode(path.lstat().st_mode)}")
    return found


def privacy(home) -> dict:
    return next(c for c in doctor(home) if c["check"] == "home is private")


def test_a_new_home_is_owner_only_under_umask_022(loose_umask, tmp_path):
    home = tmp_path / "home"
    h = Harness(home)                      # the first command creates the home and database
    prepare(find_spec_path("digits"), home)
    sample = (home / "competitions/digits/released/sample_submission.csv").read_bytes()
    team, _ = h.add_team("owls", ["ana"])
    h.submit("digits", team, sample, "first")
    roster = tmp_path / "roster.csv"
    roster.write_text("team,member\nrockets,bo\n")
    tokens, _ = h.import_roster_file(roster)

    names = {p.name for p in home.iterdir()}
    assert {"harness.db", "harness.db-wal", "harness.db-shm", "uploads"} <= names
    # competitions/ is written by `prepare`; its <slug> folders are 0700, which hides their
    # files from other users whatever the files' own modes (checked by doctor below)
    assert shared(home, skip="competitions") == []
    assert stat.S_IMODE((home / "competitions/digits").stat().st_mode) == 0o700
    assert privacy(home)["ok"], privacy(home)
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600

    archive = tmp_path / "backups" / "b.tar.gz"
    backup(home, archive)
    assert shared(archive.parent) == []
    restored = tmp_path / "restored"
    restore(archive, restored)
    assert (restored / "uploads/digits").is_dir() and shared(restored) == []


def test_doctor_reports_a_readable_home_and_fix_tightens_it(tmp_path):
    home = tmp_path / "home"
    h = Harness(home)
    prepare(find_spec_path("digits"), home)
    team, _ = h.add_team("owls")
    h.submit("digits", team, (home / "competitions/digits/released/sample_submission.csv")
             .read_bytes(), "first")
    hidden = home / "competitions/digits/hidden/solution.csv"
    for path, mode in [(home, 0o755), (home / "harness.db", 0o644), (home / "uploads", 0o755),
                       (home / "uploads/digits", 0o755), (hidden, 0o644)]:
        os.chmod(path, mode)
    found = privacy(home)
    assert not found["ok"]
    assert "harness.db" in found["detail"] and "--fix" in found["detail"]
    # behind the 0700 competition folder the answer key is not reachable: not reported
    assert "solution.csv" not in found["detail"]

    r = CliRunner().invoke(main, ["doctor", "--home", str(home)])
    assert r.exit_code == 1 and "FAIL home is private" in r.output
    assert stat.S_IMODE((home / "harness.db").stat().st_mode) == 0o644   # nothing changed

    r = CliRunner().invoke(main, ["doctor", "--home", str(home), "--fix"])
    assert r.exit_code == 0, r.output
    assert "owner-only" in r.output
    assert shared(home) == []
    assert stat.S_IMODE(hidden.stat().st_mode) == 0o600
    assert privacy(home)["ok"]
    r = CliRunner().invoke(main, ["doctor", "--home", str(home)])
    assert r.exit_code == 0 and "FAIL" not in r.output


def test_a_group_writable_folder_is_reported(tmp_path):
    home = tmp_path / "home"
    Harness(home).close_connections()
    os.chmod(home, 0o770)                  # the group could replace the database
    assert not privacy(home)["ok"]
    os.chmod(home, 0o711)                  # others may pass through, but read nothing
    assert privacy(home)["ok"], privacy(home)


def test_prepare_into_a_new_home_makes_it_and_competitions_owner_only(loose_umask, tmp_path):
    home = tmp_path / "fresh" / "home"
    prepare(find_spec_path("digits"), home)
    for folder in (home, home / "competitions", home / "competitions/digits"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_an_open_database_file_is_never_opened_again_outside_sqlite(tmp_path, monkeypatch):
    """Making the database owner-only must not open an existing file: closing any
    descriptor of it drops every SQLite lock this process holds on it, after which a
    closing Harness thinks it is the last connection, checkpoints and deletes the WAL,
    and a server keeps answering from a stale snapshot (a reveal it never saw; caught by
    tests/test_benchmarks_smoke.py::test_bench_server_tiny)."""
    import harness.store.db as db

    first = Harness(tmp_path / "home")                 # creates harness.db
    first.add_team("owls")
    opened = []
    real = os.open
    monkeypatch.setattr(db.os, "open", lambda path, *a, **k: opened.append(str(path))
                        or real(path, *a, **k))
    second = Harness(tmp_path / "home")
    assert not [p for p in opened if p.endswith("harness.db")], opened
    assert second.list_teams()[0]["name"] == "owls"
    first.close_connections()
    second.close_connections()
