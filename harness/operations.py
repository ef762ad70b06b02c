"""Operations on a home: backup, restore, and a health check (`harness doctor`).

A backup is one ``.tar.gz``: every table of the store as JSON lines (so it moves
between SQLite and PostgreSQL), and the home's files (prepared competitions and
archived uploads). Restoring it into an empty home and backing that up again
gives the same archive contents: the round trip is exact.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import DateTime, Integer, func, select, text

from . import __version__
from .errors import HarnessError
from .home import list_prepared, load_prepared, resolve_home
from .store import SCHEMA_VERSION, Database, default_url
from .store.models import Base

FORMAT = 1
SKIP = ("harness.db", "harness.db-wal", "harness.db-shm", "harness.db.writelock")  # as rows


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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with tarfile.open(tmp, "w:gz") as tar:
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
        home.mkdir(parents=True, exist_ok=True)
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
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
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


def doctor(home: str | Path | None, database_url: str | None = None) -> list[dict]:
    """Check a home: its database, schema version, answer keys and archived uploads.

    Returns one ``{"check", "ok", "detail"}`` row per check; nothing is changed.
    """
    home = resolve_home(home)
    checks: list[dict] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    check("home exists", home.is_dir(), str(home))
    if not home.is_dir():
        return checks
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
          f"answer key {len(sol)} ids, test.csv {len(test)}; re-run `harness prepare {slug}`")
