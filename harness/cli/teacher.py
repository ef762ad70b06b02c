"""Teacher commands on the server machine: serve, team, close, reopen, reveal, rescore.

They read and write the home (``--home`` / HARNESS_HOME) and its database directly and
never need the server running.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import click

from .options import format_option, with_service
from .output import SUBMISSION_COLUMNS, emit, submission_rows


@click.command()
@with_service
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets the classroom reach it.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes sharing the one database.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--header-timeout", default=10.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(min=0), envvar="HARNESS_HEADER_TIMEOUT",
              help="Close a connection whose request headers are not complete within this "
                   "time (against clients that hold connections open); 0 = off "
                   "($HARNESS_HEADER_TIMEOUT).")
@click.option("--max-connections-per-ip", default=64, show_default=True, metavar="N",
              type=click.IntRange(min=0), envvar="HARNESS_MAX_CONNECTIONS_PER_IP",
              help="Open connections one client address may hold per worker; more are "
                   "answered 503 at once. Raise it when a whole class shares one address "
                   "(NAT); 0 = no cap ($HARNESS_MAX_CONNECTIONS_PER_IP).")
def serve(harness, host, port, workers, log_level, header_timeout,
          max_connections_per_ip):
    """Run the scoring server: the JSON API under /api, the pages, OpenAPI at /docs.

    Every prepared competition in the home is served. Uploads are scored at once;
    the private split never leaves this machine until `harness reveal`.

    Request bodies are capped (64 KiB for JSON and forms; uploads at the competition's
    max_upload_mb), and slow or greedy clients cannot hold every connection: see
    --header-timeout and --max-connections-per-ip. The open-file limit is raised to the
    system's hard limit at start.

    \b
    Example:
      harness prepare digits
      harness serve --host 0.0.0.0 --port 8000 --workers 2
      harness serve --database-url postgresql+psycopg://harness@127.0.0.1/harness
      harness serve --host 0.0.0.0 --max-connections-per-ip 256   # a class behind one NAT
    """
    import uvicorn

    from ..server.limits import raise_open_file_limit
    from ..server.protocol import guarded_protocol

    http = guarded_protocol(header_timeout, max_connections_per_ip)
    # built once here, so N workers never race to create the schema
    slugs = [c["slug"] for c in harness.list_competitions()]
    os.environ["HARNESS_HOME"] = str(harness.home)
    os.environ["HARNESS_DATABASE_URL"] = harness.database_url
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    click.echo(f"serving {', '.join(slugs) or 'no competitions (run `harness prepare SLUG`)'} "
               f"from {harness.home} at http://{shown}:{port}/ (API docs: /docs); "
               f"{workers} worker(s); Ctrl-C stops")
    files = raise_open_file_limit()
    if files is not None:      # each connection holds an open file
        before, after = files
        click.echo(f"open-file limit: {after}" + (f" (raised from {before})"
                                                 if after > before else ""))
    if workers == 1:
        uvicorn.run("harness.server.app:create_app_from_env", factory=True, host=host,
                    port=port, log_level=log_level, http=http)
        return
    _run_workers(uvicorn, host, port, workers, log_level, http)


def _run_workers(uvicorn, host, port, workers, log_level, http) -> None:
    """uvicorn's multi-process mode, with two fixes for a classroom server.

    The shared socket uvicorn binds for its workers lacks TCP_NODELAY, so every answer
    waits ~40 ms for the client's delayed ACK (uvicorn issue #3149): re-wrap it as a TCP
    socket, which uvicorn then configures like a single-process one. And a worker
    importing scikit-learn on a busy machine can take longer than uvicorn's 5 s health
    check, which would kill it over and over: allow 60 s. ``http`` (the guarded protocol,
    a picklable partial) travels to every worker inside the config.
    """
    import socket

    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("harness.server.app:create_app_from_env", factory=True, host=host,
                            port=port, workers=workers, log_level=log_level,
                            timeout_worker_healthcheck=60, http=http)
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass


@click.group()
def team():
    """Teams: the course roster (they belong to the server, not to one competition).

    \b
    Example:
      harness team add "Team Rocket" --member ana --member bo
      harness team import roster.csv
      harness team list
    """


@team.command("add")
@click.argument("name")
@click.option("--member", "members", multiple=True, help="A member's name (repeatable).")
@with_service
@format_option()
def team_add(name, members, harness, fmt):
    """Add a team and print its token, once (only a hash is stored).

    \b
    Example:
      harness team add "Team Rocket" --member ana --member bo
      harness team add solo --format json      # {"team": "solo", "token": "..."}
    """
    added, token = harness.add_team(name, members)

    def show():
        click.echo(f"added team {added['name']!r}; its token (shown only now, hand it over):")
        click.echo(token)

    emit({"team": added["name"], "token": token}, fmt, show=show)


@team.command("import")
@click.argument("roster", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Where to write the tokens CSV (default: next to the roster).")
@with_service
def team_import(roster, output, harness):
    """Add the teams of a roster CSV (columns team,member) and write their tokens.

    Each team gets one token; the tokens CSV (team,token) is written next to the
    roster for you to mail out; the server keeps only hashes.

    \b
    Example:
      printf 'team,member\\nrocket,ana\\nrocket,bo\\nowls,cy\\n' > roster.csv
      harness team import roster.csv          # prints where the tokens CSV went
    """
    out = harness.import_roster(Path(roster), output and Path(output))
    with open(out, newline="") as f:
        count = sum(1 for _ in csv.DictReader(f))
    click.echo(f"imported {count} team(s); tokens written to {out}: mail each team its own "
               "line (the server keeps only hashes)")


@team.command("list")
@with_service
@format_option()
def team_list(harness, fmt):
    """List the teams and their members (never their tokens).

    \b
    Example:
      harness team list --format csv
    """
    teams = harness.list_teams()
    emit(teams, fmt, [("id", "id"), ("name", "team"), ("members", "members")],
         title="teams")


@team.command("baseline")
@click.argument("slug")
@click.argument("name")
@click.option("-f", "--file", "file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The prediction CSV.")
@click.option("-m", "--message", default="", help="A note shown with the row.")
@with_service
@format_option()
def team_baseline(slug, name, file, message, harness, fmt):
    """Add a prediction CSV as a named baseline row (on both boards, marked; not a team).

    It is scored like any upload but has no limits and no grade.

    \b
    Example:
      harness team baseline digits "logistic regression" -f submissions/digits/logreg.csv
    """
    row = harness.add_baseline(slug, name, Path(file).read_bytes(), message)
    emit(row, fmt, SUBMISSION_COLUMNS, submission_rows([row]),
         title=f"{slug}: baseline {name!r} added")


def _state_command(name, verb, help_text, example):
    @click.command(name, help=f"{help_text}\n\n\b\nExample:\n  {example}")
    @click.argument("slug")
    @with_service
    def command(slug, harness):
        getattr(harness, name)(slug)
        click.echo(f"{slug}: {verb}")

    return command


close = _state_command(
    "close", "closed; uploads are refused (403) until `harness reveal` or `harness reopen`",
    "Close a competition: uploads are refused from now on (as after the deadline).",
    "harness close digits")
reopen = _state_command(
    "reopen", "open again for uploads",
    "Reopen a closed competition (before the reveal).", "harness reopen digits")
reveal = _state_command(
    "reveal", "revealed; the private board and private scores are visible to everyone",
    "Reveal the private leaderboard (and private scores) to the students.",
    "harness reveal digits")


@click.command()
@click.argument("slug")
@with_service
@format_option()
def rescore(slug, harness, fmt):
    """Score every submission again against the current answer key (after a fix).

    Old scores are kept in the history; the boards use the new ones.

    \b
    Example:
      harness rescore digits
    """
    result = harness.rescore(slug)
    emit(result, fmt, show=lambda: click.echo(f"{slug}: rescored {result['rescored']} "
                                              f"submission(s), {result['changed']} changed"))
