"""Operations on a home: backup, restore, and a health check (`harness doctor`).

A backup is one ``.tar.gz``: every table of the store as JSON lines (so it moves
between SQLite and PostgreSQL), and the home's files (prepared competitions and
archived uploads). Restoring it into an empty home and backing that up again
gives the same archive contents: the round trip is exact. Like the home, the
archive and the restored files are owner-only: they hold every private score.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import DateTime, Integer, func, select, text

from . import __version__
from .errors import HarnessError
from .home import (TEMP_NAME, list_prepared, load_prepared, private_dir, private_file,
                   resolve_home)
from .store import SCHEMA_VERSION, Database, default_url
from .store.models import Base

FORMAT = 1
SKIP = ("harness.db", "harness.db-wal", "harness.db-shm", "harness.db.writelock")  # as rows
TEMP_GRACE_S = 600    # an upload's temporary file lives milliseconds; older ones are leftovers


def _tables():
    return Base.metadata.sorted_tables           # parents before children


def _encode(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _decode(column, value):
    if value is not None and isinstance(column.type, DateTime):
        return datetime.fromisoformat(value)
    return value


def dump_tables(db: Database) -> dict[str, list[dict]]:
    """Every row of every table, in primary-key order, as JSON-ready dicts."""
    out = {}
    with db.engine.connect() as conn:
        for table in _tables():
            rows = conn.execute(select(table).order_by(*table.primary_key.columns))
            out[table.name] = [{k: _encode(v) for k, v in r._mapping.items()} for r in rows]
    return out


def _home_files(home: Path, exclude: Path | None = None):
    for path in sorted(home.rglob("*")):
        if path.is_file() and path.name not in SKIP and path != exclude \
                and not path.name.startswith("."):
            yield path


def backup(home: str | Path | None, out: str | Path, database_url: str | None = None) -> dict:
    """Write a backup of ``home`` (database and files) to ``out`` (.tar.gz).

    Returns a summary: rows per table, files, bytes.
    """
    home = resolve_home(home)
    if not home.is_dir():
        raise HarnessError(f"no home at {home}; pass --home (or set HARNESS_HOME)")
    out = Path(out).resolve()
    db = Database(database_url or default_url(home))
    try:
        tables = dump_tables(db)
    finally:
        db.dispose()
    manifest = {"format": FORMAT, "harness_version": __version__,
                "schema_version": SCHEMA_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "rows": {name: len(rows) for name, rows in tables.items()}, "files": {}}
    private_dir(out.parent)
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)                   # a leftover would keep its old mode
    with os.fdopen(private_file(tmp), "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, rows in tables.items():
            data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
            _add_bytes(tar, f"db/{name}.jsonl", data)
        for path in _home_files(home, exclude=out):
            rel = path.relative_to(home).as_posix()
            manifest["files"][rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            tar.add(path, arcname=f"files/{rel}", recursive=False)
        _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
    tmp.replace(out)                              # never a half-written backup
    return {"archive": str(out), "rows": manifest["rows"], "files": len(manifest["files"]),
            "bytes": out.stat().st_size}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def restore(archive: str | Path, home: str | Path | None, database_url: str | None = None) -> dict:
    """Restore a backup into an empty home (and an empty database).

    Raises
    ------
    HarnessError
        When the target already holds competitions or data, or the archive is not a
        harness backup, or a file's hash does not match the backup's manifest.
    """
    archive = Path(archive)
    home = resolve_home(home)
    if home.exists() and any(home.iterdir()):
        raise HarnessError(f"{home} is not empty; restore into a new, empty home (nothing is "
                           "overwritten)")
    with tarfile.open(archive, "r:gz") as tar:
        try:
            manifest = json.loads(tar.extractfile("manifest.json").read())
        except (KeyError, json.JSONDecodeError):
            raise HarnessError(f"{archive} is not a harness backup (no manifest.json)") from None
        if manifest.get("format") != FORMAT:
            raise HarnessError(f"{archive} has backup format {manifest.get('format')}; this "
                               f"harness reads format {FORMAT}")
        if manifest.get("schema_version", 0) > SCHEMA_VERSION:
            raise HarnessError(f"{archive} comes from a newer harness (schema "
                               f"{manifest['schema_version']}); upgrade harness to restore it")
        db = Database(database_url or default_url(home))
        try:
            with db.engine.begin() as conn:
                for table in _tables():
                    if table.name != "schema_version" and \
                            conn.execute(select(func.count()).select_from(table)).scalar():
                        raise HarnessError(f"the database {db.url_safe} already has "
                                           f"{table.name}; restore into an empty database")
            with db.engine.begin() as conn:
                for table in _tables():
                    member = f"db/{table.name}.jsonl"
                    try:
                        lines = tar.extractfile(member).read().decode().splitlines()
                    except KeyError:
                        continue                       # an older backup without this table
                    rows = [json.loads(line) for line in lines if line]
                    rows = [{k: _decode(table.c[k], v) for k, v in r.items()
                             if k in table.c} for r in rows]
                    if table.name == "schema_version":
                        rows = [{**r, "version": SCHEMA_VERSION} for r in rows]
                        conn.execute(table.delete())
                    if rows:
                        conn.execute(table.insert(), rows)
                if not db.is_sqlite:
                    _reset_sequences(conn)
        finally:
            db.dispose()
        private_dir(home)
        for member in tar.getmembers():
            if not member.name.startswith("files/") or not member.isfile():
                continue
            rel = member.name[len("files/"):]
            target = (home / rel).resolve()
            if home.resolve() not in target.parents:
                raise HarnessError(f"{archive} holds a path outside the home ({rel}); refused")
            data = tar.extractfile(member).read()
            if hashlib.sha256(data).hexdigest() != manifest["files"].get(rel):
                raise HarnessError(f"{rel} in {archive} does not match its recorded hash; the "
                                   "backup is damaged")
            private_dir(target.parent)
            with os.fdopen(private_file(target), "wb") as f:
                f.write(data)
    return {"home": str(home), "rows": manifest["rows"], "files": len(manifest["files"])}


def _reset_sequences(conn) -> None:
    """After inserting explicit ids on PostgreSQL, move each id sequence past them."""
    for table in _tables():
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and isinstance(pk[0].type, Integer) and table.name != "schema_version" \
                and not pk[0].foreign_keys:
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                f"COALESCE((SELECT MAX({pk[0].name}) FROM {table.name}), 0) + 1, false)"))


def doctor(home: str | Path | None, database_url: str | None = None, *,
           fix: bool = False) -> list[dict]:
    """Check a home: privacy, leftovers, database, schema version, answer keys, uploads.

    Parameters
    ----------
    home : str or Path, optional
    database_url : str, optional
    fix : bool, default False
        Also repair what is safe to repair: remove temporary files no writer is
        using and make every file and folder of the home owner-only. Without it
        nothing is changed.

    Returns
    -------
    list of dict
        One ``{"check", "ok", "detail"}`` row per check.
    """
    home = resolve_home(home)
    checks: list[dict] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    check("home exists", home.is_dir(), str(home))
    if not home.is_dir():
        return checks
    _check_private(home, check, fix)
    _check_temp_files(home, check, fix)
    url = database_url or default_url(home)
    try:
        db = Database(url)
    except Exception as exc:  # noqa: BLE001 - any failure to open is the finding itself
        check("database reachable", False, f"{url}: {exc}")
        return checks
    try:
        with db.engine.connect() as conn:
            version = conn.execute(text("SELECT version FROM schema_version")).scalar()
        check("database reachable", True, db.url_safe)
        check("schema version", version == SCHEMA_VERSION,
              f"database {version}, harness {SCHEMA_VERSION}")
        tables = dump_tables(db)
    finally:
        db.dispose()
    for slug in list_prepared(home):
        _check_competition(home, slug, check)
    subs = tables.get("submissions", [])
    stored = [r for r in subs if r.get("path")]
    missing = [r["id"] for r in stored if not (home / r["path"]).is_file()]
    check("archived uploads present", not missing,
          f"{len(stored) - len(missing)} of {len(stored)} present"
          + (f"; missing for submissions {missing[:5]}" if missing else ""))
    referenced = {(home / r["path"]).resolve() for r in stored}
    orphans = [p for p in sorted((home / "uploads").rglob("*.csv"))
               if p.resolve() not in referenced] if (home / "uploads").is_dir() else []
    # an upload cut off by a crash between archiving and commit: never counted, harmless
    check("uploads without a submission", True,
          f"{len(orphans)} (left by uploads a crash cut off; never counted, safe to delete)"
          if orphans else "none")
    return checks


def _check_competition(home: Path, slug: str, check) -> None:
    try:
        prepared = load_prepared(home, slug)
    except HarnessError as exc:
        check(f"{slug}: spec loads", False, str(exc))
        return
    check(f"{slug}: spec loads", True, prepared.spec.title)
    bad = [rel for rel, digest in prepared.manifest.get("files", {}).items()
           if not (prepared.directory / rel).is_file() or
           hashlib.sha256((prepared.directory / rel).read_bytes()).hexdigest() != digest]
    check(f"{slug}: files match the manifest", not bad,
          "all present and unchanged" if not bad else f"changed or missing: {', '.join(bad)}")
    if not prepared.solution_path.is_file():
        check(f"{slug}: answer key present", False, str(prepared.solution_path))
        return
    id_col = prepared.spec.data.id_column
    sol = pd.read_csv(prepared.solution_path, usecols=[id_col])[id_col]
    test = pd.read_csv(prepared.released_dir / "test.csv", usecols=[id_col])[id_col]
    check(f"{slug}: answer key matches test.csv ids", sol.tolist() == test.tolist(),
          f"{len(sol)} ids" if sol.tolist() == test.tolist() else
          f"answer key {len(sol)} ids, test.csv {len(test)}; re-run `{prepared.prepare_command}`")


def _check_private(home: Path, check, fix: bool) -> None:
    """Fail when another local user can read or change a file (or change a folder)."""
    exposed, loose = _exposure(home)
    if fix and loose:
        failed = []
        for path, mode in loose:
            try:
                os.chmod(path, mode & ~0o077)
            except OSError as exc:
                failed.append(f"{_rel(home, path)} ({exc.strerror})")
        check("home is private", not failed,
              f"made {len(loose) - len(failed)} files and folders owner-only"
              + (f"; could not change {', '.join(failed[:5])}" if failed else ""))
        return
    names = [_rel(home, p) for p in exposed]
    check("home is private", not exposed,
          "only its owner can read it" if not exposed else
          f"other local users can read or change {', '.join(names[:5])}"
          + (f" and {len(names) - 5} more" if len(names) > 5 else "")
          + f"; run `harness doctor --fix` (or `chmod -R go-rwx {home}`)")


def _exposure(home: Path) -> tuple[list[Path], list[tuple[Path, int]]]:
    """What others can reach, and every entry with any group/other permission bit.

    A file is exposed when the group or others may read or write it and may pass
    through every folder from the home down to it (a 0700 folder hides its
    contents whatever their modes); a folder is exposed when they may write into
    it. Symbolic links are not followed. ``loose`` is what ``--fix`` tightens.
    """
    classes = ((stat.S_IRGRP | stat.S_IWGRP, stat.S_IWGRP, stat.S_IXGRP),
               (stat.S_IROTH | stat.S_IWOTH, stat.S_IWOTH, stat.S_IXOTH))
    exposed: list[Path] = []
    loose: list[tuple[Path, int]] = []
    reach: dict[Path, tuple] = {}      # who may pass through each folder, from the home down

    def visit(path: Path, mode: int, through) -> None:
        is_dir = stat.S_ISDIR(mode)
        if any(mode & (write if is_dir else access) for access, write, _ in through):
            exposed.append(path)
        if mode & 0o077:
            loose.append((path, stat.S_IMODE(mode)))
        if is_dir:
            reach[path] = tuple(c for c in through if mode & c[2])

    visit(home, os.stat(home).st_mode, classes)
    for folder, dirs, files in os.walk(home):
        for name in sorted(dirs) + sorted(files):
            path = Path(folder, name)
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue                  # removed while we looked (a finished upload's temp)
            if not stat.S_ISLNK(mode):
                visit(path, mode, reach[Path(folder)])
    return exposed, loose


def _check_temp_files(home: Path, check, fix: bool) -> None:
    """Report (and with ``fix`` remove) upload temporary files a crash left behind.

    A temporary file is in use when its writer's process (this machine's process id,
    from its name) is alive and the file is younger than :data:`TEMP_GRACE_S`;
    those are left alone.
    """
    uploads = home / "uploads"
    stray, busy = [], []
    for path in sorted(uploads.rglob(".*.tmp")) if uploads.is_dir() else []:
        found = TEMP_NAME.fullmatch(path.name)
        if found is None:
            continue                      # not ours: left alone
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            continue                      # renamed into place while we looked
        (busy if age < TEMP_GRACE_S and _alive(int(found["pid"])) else stray).append(path)
    if fix:
        for path in stray:
            path.unlink(missing_ok=True)
    names = ", ".join(_rel(home, p) for p in stray[:3]) + (", ..." if len(stray) > 3 else "")
    parts = []
    if stray:
        parts.append(f"removed {len(stray)} left by a crash ({names})" if fix else
                     f"{len(stray)} left by a crash ({names}); never counted, safe to delete: "
                     "`harness doctor --fix` removes them")
    if busy:
        parts.append(f"{len(busy)} in progress (an upload is writing them; kept)")
    check("upload temporary files", True, "; ".join(parts) or "none")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (signal 0 tests without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                       # alive, owned by another user
    except (OverflowError, OSError):
        return False
    return True


def _rel(home: Path, path: Path) -> str:
    return "." if path == home else path.relative_to(home).as_posix()
