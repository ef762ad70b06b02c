"""Teacher operations on a home: backup, restore, doctor, audit."""

from __future__ import annotations

import sys

import click

from .app import format_option, home_option, main
from .output import emit

db_option = click.option("--database-url", envvar="HARNESS_DATABASE_URL", default=None,
                         metavar="URL", help="The store (default: SQLite in the home).")


@main.command()
@click.argument("archive", type=click.Path(dir_okay=False))
@home_option
@db_option
def backup(archive, home, database_url):
    """Back up a home (database rows and files) into one .tar.gz.

    The database travels as rows, so a backup made on SQLite restores on
    PostgreSQL and back. The archive is written whole or not at all.

    \b
    Example:
      harness backup class-2026-12-01.tar.gz --home /srv/harness
    """
    from ..operations import backup as run

    out = run(home, archive, database_url)
    rows = sum(out["rows"].values())
    click.echo(f"backed up {rows} rows and {out['files']} files to {out['archive']} "
               f"({out['bytes'] / 2**20:.1f} MiB)")


@main.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@home_option
@db_option
def restore(archive, home, database_url):
    """Restore a backup into a new, empty home (and an empty database).

    Nothing is overwritten: a home or database that already holds data is
    refused. Every file is checked against the hash recorded in the backup.

    \b
    Example:
      harness restore class-2026-12-01.tar.gz --home /srv/harness-restored
    """
    from ..operations import restore as run

    out = run(archive, home, database_url)
    click.echo(f"restored {sum(out['rows'].values())} rows and {out['files']} files "
               f"into {out['home']}")


@main.command()
@click.option("--fix", is_flag=True,
              help="Remove temporary files a crash left (not those in use) and make the "
                   "home's files and folders owner-only.")
@home_option
@db_option
@format_option()
def doctor(fix, home, database_url, fmt):
    """Check a home: private to its owner, leftovers, database, schema, answer keys, uploads.

    Exits 1 when a check fails. Changes nothing unless --fix is given.

    \b
    Example:
      harness doctor --home /srv/harness
      harness doctor --home /srv/harness --fix
    """
    from ..operations import doctor as run

    checks = run(home, database_url, fix=fix)
    if fmt == "table":
        for c in checks:
            mark = click.style("ok  ", fg="green") if c["ok"] else click.style("FAIL", fg="red")
            click.echo(f"{mark} {c['check']}: {c['detail']}")
    else:
        emit(checks, fmt, [("check", "check"), ("ok", "ok"), ("detail", "detail")])
    if not all(c["ok"] for c in checks):
        sys.exit(1)


@main.command()
@click.argument("slug", required=False)
@home_option
@db_option
@format_option()
def audit(slug, home, database_url, fmt):
    """The teacher actions on the server: close, reveal, rescore, teams, baselines.

    \b
    Example:
      harness audit digits --home /srv/harness
    """
    from ..service import Harness

    rows = Harness(home, database_url).audit_log(slug)
    emit(rows, fmt, [("at", "at"), ("action", "action"), ("competition", "competition"),
                     ("detail", "detail")])
