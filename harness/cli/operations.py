"""Teacher operations on a home: backup, restore, doctor, audit."""

from __future__ import annotations

import sys

import click

from .options import format_option, with_service, with_teacher
from .output import emit


@click.command()
@click.argument("archive", type=click.Path(dir_okay=False))
@with_service(lazy=True)
def backup(archive, store):
    """Back up a home (database rows and files) into one .tar.gz.

    The database travels as rows, so a backup made on SQLite restores on
    PostgreSQL and back. The archive is written whole or not at all.

    \b
    Example:
      harness backup class-2026-12-01.tar.gz --home /srv/harness
    """
    from ..operations import backup as run

    out = run(store.home, archive, store.database_url)
    rows = sum(out["rows"].values())
    click.echo(f"backed up {rows} rows and {out['files']} files to {out['archive']} "
               f"({out['bytes'] / 2**20:.1f} MiB)")


@click.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@with_service(lazy=True)
def restore(archive, store):
    """Restore a backup into a new, empty home (and an empty database).

    Nothing is overwritten: a home or database that already holds data is
    refused. Every file is checked against the hash recorded in the backup.

    \b
    Example:
      harness restore class-2026-12-01.tar.gz --home /srv/harness-restored
    """
    from ..operations import restore as run

    out = run(archive, store.home, store.database_url)
    click.echo(f"restored {sum(out['rows'].values())} rows and {out['files']} files "
               f"into {out['home']}")


@click.command()
@click.option("--fix", is_flag=True,
              help="Remove temporary files a crash left (not those in use) and make the "
                   "home's files and folders owner-only.")
@with_service(lazy=True)
@format_option()
def doctor(fix, store, fmt):
    """Check a home: private to its owner, leftovers, database, schema, answer keys, uploads.

    Exits 1 when a check fails. Changes nothing unless --fix is given.

    \b
    Example:
      harness doctor --home /srv/harness
      harness doctor --home /srv/harness --fix
    """
    from ..operations import doctor as run

    checks = run(store.home, store.database_url, fix=fix)

    def show():
        for c in checks:
            mark = click.style("ok  ", fg="green") if c["ok"] else click.style("FAIL", fg="red")
            click.echo(f"{mark} {c['check']}: {c['detail']}")

    emit(checks, fmt, show=show)
    if not all(c["ok"] for c in checks):
        sys.exit(1)


@click.command()
@click.argument("slug", required=False)
@with_teacher
@format_option()
def audit(slug, backend, fmt):
    """The teacher actions on the server: close, reveal, rescore, teams, baselines, and
    who did each (the home on the server machine, or which teacher token).

    \b
    Example:
      harness audit digits --home /srv/harness
    """
    rows = backend.audit_log(slug)
    emit(rows, fmt, [("at", "at (UTC)"), ("action", "action"), ("competition", "competition"),
                     ("detail", "detail"), ("actor", "by")])
