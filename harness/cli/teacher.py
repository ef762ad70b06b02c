"""Teacher commands: serve, teacher, team, close, reopen, reveal, rescore.

``serve`` and ``teacher`` (the teacher tokens) run on the server machine, on the home.
The others act on the home directly when one is given, or over HTTP with a teacher token
(:func:`harness.cli.options.with_teacher`): the same service methods either way.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import HarnessError
from ..roster import parse_roster, read_roster, tokens_path, write_tokens
from .options import format_option, remote, with_service, with_teacher
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
    """uvicorn's multi-process mode, with three fixes for a classroom server.

    On Linux every worker listens on a socket of its own (``SO_REUSEPORT``,
    :mod:`harness.server.listeners`): on uvicorn's one shared socket, the first worker to
    wake takes a whole burst of connections while the others idle. The shared socket
    uvicorn binds for its workers (elsewhere) lacks TCP_NODELAY, so every answer waits
    ~40 ms for the client's delayed ACK (uvicorn issue #3149): it is re-wrapped as a TCP
    socket, which uvicorn then configures like a single-process one. And a worker
    importing scikit-learn on a busy machine can take longer than uvicorn's 5 s health
    check, which would kill it over and over: allow 60 s. ``http`` (the guarded protocol,
    a picklable partial) travels to every worker inside the config.
    """
    import socket
    from contextlib import nullcontext

    from uvicorn.supervisors import Multiprocess

    from ..server import listeners

    config = uvicorn.Config("harness.server.app:create_app_from_env", factory=True, host=host,
                            port=port, workers=workers, log_level=log_level,
                            timeout_worker_healthcheck=60, http=http)
    spread = listeners.spread_supported()
    with listeners.lock_folder() if spread else nullcontext() as locks:
        if spread:
            try:
                sockets = listeners.bind_per_worker(host, port, workers, config.backlog, locks)
            except OSError as exc:
                raise HarnessError(f"cannot listen on {host}:{port}: {exc.strerror}; is "
                                   "another server using the port? Pick another with --port"
                                   ) from None
            supervisor = listeners.PerWorkerMultiprocess
        else:
            sock = config.bind_socket()
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP,
                                     fileno=sock.detach())
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets, supervisor = [sock], Multiprocess
        try:
            supervisor(config, sockets=sockets).run()
        except KeyboardInterrupt:
            pass


@click.group()
def teacher():
    """Teacher tokens: what lets the teacher act over HTTP from another machine.

    Run these on the server machine (they read the home). With a teacher token, the
    teacher commands (close, reveal, team ..., grades, audit, submissions,
    leaderboard --private) work from a laptop: `harness login --server URL --token TOKEN`.

    \b
    Example:
      harness teacher token --home /srv/harness --label laptop
      harness teacher list --home /srv/harness
      harness teacher revoke --home /srv/harness --id 1
    """


@teacher.command("token")
@click.option("--label", default="", help="A name for the token (e.g. laptop), shown in the "
                                          "audit log.")
@with_service
@format_option()
def teacher_token(label, harness, fmt):
    """Create a teacher token and print it, once (only a hash is stored).

    \b
    Example:
      harness teacher token --home /srv/harness --label laptop
      harness teacher token --home /srv/harness --format json     # {"token": "..."}
    """
    who, token = harness.issue_teacher_token(label)

    def show():
        click.echo(f"teacher token #{who['id']} (shown only now; keep it like a password):")
        click.echo(token)
        click.echo("on your laptop: harness login --server http://HOST:PORT --token TOKEN")

    emit({"id": who["id"], "label": who["label"], "token": token}, fmt, show=show)


@teacher.command("revoke")
@click.argument("token", required=False)
@click.option("--id", "token_id", type=int, default=None, help="The token's number "
                                                                 "(`harness teacher list`).")
@click.option("--all", "everyone", is_flag=True, help="End every teacher token.")
@with_service
def teacher_revoke(token, token_id, everyone, harness):
    """End a teacher token (by the token itself, its --id, or --all); it fails at once.

    \b
    Example:
      harness teacher revoke --home /srv/harness --id 2
      harness teacher revoke --home /srv/harness --all
    """
    ended = harness.revoke_teacher_token(token=token, token_id=token_id, everyone=everyone)
    click.echo(f"revoked {ended} teacher token(s)")


@teacher.command("list")
@with_service
@format_option()
def teacher_list(harness, fmt):
    """List the teacher tokens (number, label, created, revoked; never the tokens).

    \b
    Example:
      harness teacher list --home /srv/harness
    """
    emit(harness.teachers.list(), fmt, [("id", "#"), ("label", "label"),
                                        ("created_at", "created (UTC)"),
                                        ("revoked", "revoked")], title="teacher tokens")


@click.group()
def team():
    """Teams: the course roster (they belong to the server, not to one competition).

    Names are unique ignoring case and surrounding spaces. A removed team is off the
    boards and grades, its token refused; `team restore` brings it back.

    \b
    Example:
      harness team add "Team Rocket" --member ana --member bo
      harness team import roster.csv
      harness team list
      harness team rename "Team Rocket" Rockets
      harness team member move ana --to owls
    """


def _show_token(team: dict, token: str, fmt: str, verb: str) -> None:
    def show():
        click.echo(f"{verb} team {team['name']!r}; its token (shown only now, hand it over):")
        click.echo(token)

    emit({"team": team["name"], "members": team["members"], "token": token}, fmt, show=show)


@team.command("add")
@click.argument("name")
@click.option("--member", "members", multiple=True, help="A member's name (repeatable).")
@click.option("--section", default=None, help="The members' section (for grades by member).")
@with_teacher
@format_option()
def team_add(name, members, section, backend, fmt):
    """Add a team and print its token, once (only a hash is stored).

    \b
    Example:
      harness team add "Team Rocket" --member ana --member bo
      harness team add solo --format json      # {"team": "solo", "token": "..."}
    """
    added, token = backend.add_team(name, members, section)
    _show_token(added, token, fmt, "added")


@team.command("import")
@click.argument("roster", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Where to write the tokens CSV (default: ROSTER-tokens.csv beside it).")
@with_teacher
@format_option()
def team_import(roster, output, backend, fmt):
    """Add the teams of a roster CSV (header team,member, optional section) and write the
    new teams' tokens.

    The tokens CSV (team,members,token; one row per new team, mode 0600) is ready for a
    mail merge; the server keeps only hashes. Importing again adds new members and new
    teams; existing teams keep their token (reissue one with `harness team token`).

    \b
    Example:
      printf 'team,member,section\\nrocket,ana,A\\nrocket,bo,A\\nowls,cy,B\\n' > roster.csv
      harness team import roster.csv          # prints where the tokens CSV went
    """
    out = tokens_path(roster, output)
    if remote(backend):
        text, name = read_roster(roster)
        parse_roster(text, name)                # refuse a bad header before sending it
        result = backend.import_roster_text(text, name)
        if result["tokens"]:
            write_tokens(out, result["tokens"])
    else:
        written, result = backend.import_roster_file(roster, out)
    result = {**result, "tokens_file": str(out) if result["tokens"] else None}

    def show():
        click.echo(f"imported {roster}: {result['teams_added']} new team(s), "
                   f"{result['teams_existing']} existing, {result['members_added']} "
                   f"member(s) added to existing teams"
                   + (f", {result['sections_changed']} section(s) changed"
                      if result["sections_changed"] else ""))
        if result["tokens"]:
            click.echo(f"tokens of the new teams written to {out}: mail each team its own "
                       "line (the server keeps only hashes)")

    emit({k: v for k, v in result.items() if k != "tokens"}, fmt, show=show)


@team.command("list")
@click.option("--removed", is_flag=True, help="Also the removed teams.")
@with_teacher
@format_option()
def team_list(removed, backend, fmt):
    """List the teams, their members and sections (never their tokens).

    \b
    Example:
      harness team list --format csv
      harness team list --removed
    """
    rows = backend.roster(removed=removed)
    teams: dict[str, dict] = {}
    for r in rows:                      # json: one object per team, members as names
        team_ = teams.setdefault(r["team"], {"name": r["team"], "members": [], "sections": [],
                                             "removed": r["removed"]})
        if r["member"] is not None:
            team_["members"].append(r["member"])
            team_["sections"].append(r["section"])
    emit(list(teams.values()), fmt,
         [("team", "team"), ("member", "member"), ("section", "section")]
         + ([("removed", "removed")] if removed else []), rows, records=rows, title="teams")


def _team_command(name, action, done, example, *params):
    """A team command that changes one team and prints it: ``params`` are its click
    arguments and options, passed to the service method ``action`` in this order."""
    def command(backend, **kwargs):
        # by name: click orders its values as they were typed, not as they were declared
        changed = getattr(backend, action)(*(kwargs[p.name] for p in names))
        members = ", ".join(changed["members"]) or "no members"
        click.echo(f"{done(**kwargs)}; {changed['name']!r} now: {members}")

    command.__doc__ = f"{example[0]}\n\n\b\nExample:\n  " + "\n  ".join(example[1:])
    command.__name__ = f"team_{name.replace(' ', '_')}"
    for param in reversed(params):
        command = param(command)
    names = command.__click_params__[::-1]
    return with_teacher(command)


team.add_command(click.command("rename")(_team_command(
    "rename", "rename_team", lambda old, new: f"renamed {old!r} to {new!r}",
    ("Rename a team; its submissions, scores and token stay.",
     'harness team rename "Team Rocket" Rockets'),
    click.argument("old"), click.argument("new"))))
team.add_command(click.command("remove")(_team_command(
    "remove", "remove_team", lambda name: f"removed {name!r} (off the boards and grades, its "
                                          "token refused; `harness team restore` undoes it)",
    ("Take a team off the boards and grades; its history is kept and restorable.",
     "harness team remove owls"),
    click.argument("name"))))
team.add_command(click.command("restore")(_team_command(
    "restore", "restore_team", lambda name: f"restored {name!r}",
    ("Bring a removed team back onto the boards; its token works again.",
     "harness team restore owls"),
    click.argument("name"))))


@team.command("token")
@click.argument("name")
@with_teacher
@format_option()
def team_token(name, backend, fmt):
    """Give a team a new token (for a lost or leaked one); the old one fails at once.

    \b
    Example:
      harness team token owls
    """
    team_, token = backend.reissue_token(name)
    _show_token(team_, token, fmt, "new token for")


@team.group("member")
def member():
    """Members: add one to a team, remove one, move one to another team.

    \b
    Example:
      harness team member add owls dee --section B
      harness team member remove owls dee
      harness team member move dee --to rocket
    """


member.add_command(click.command("add")(_team_command(
    "member add", "add_member", lambda team, member, section: f"added {member!r} to {team!r}",
    ("Add a member to a team.", "harness team member add owls dee --section B"),
    click.argument("team"), click.argument("member"),
    click.option("--section", default=None, help="Their section."))))
member.add_command(click.command("remove")(_team_command(
    "member remove", "remove_member", lambda team, member: f"removed {member!r} from {team!r}",
    ("Take a member out of a team.", "harness team member remove owls dee"),
    click.argument("team"), click.argument("member"))))
member.add_command(click.command("move")(_team_command(
    "member move", "move_member",
    lambda member, to, source: f"moved {member!r} to {to!r}",
    ("Move a member to another team (their section stays).",
     "harness team member move dee --to rocket",
     "harness team member move dee --to rocket --from owls   # a name in two teams"),
    click.argument("member"), click.option("--to", required=True, help="The team they join."),
    click.option("--from", "source", default=None,
                 help="The team they leave (only when the name is in several teams)."))))


@team.command("baseline")
@click.argument("slug")
@click.argument("name")
@click.option("-f", "--file", "file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The prediction CSV.")
@click.option("-m", "--message", default="", help="A note shown with the row.")
@with_teacher
@format_option()
def team_baseline(slug, name, file, message, backend, fmt):
    """Add a prediction CSV as a named baseline row (on both boards, marked; not a team).

    It is scored like any upload but has no limits and no grade.

    \b
    Example:
      harness team baseline digits "logistic regression" -f submissions/digits/logreg.csv
    """
    row = backend.add_baseline(slug, name, Path(file).read_bytes(), message)
    emit(row, fmt, SUBMISSION_COLUMNS, submission_rows([row]),
         title=f"{slug}: baseline {name!r} added")


def _where(backend) -> str:
    return f" (on {backend.server})" if remote(backend) else ""


def _state_command(name, verb, help_text, example):
    @click.command(name, help=f"{help_text}\n\n\b\nExample:\n  {example}")
    @click.argument("slug")
    @with_teacher
    def command(slug, backend):
        getattr(backend, name)(slug)
        click.echo(f"{slug}: {verb}{_where(backend)}")

    return command


close = _state_command(
    "close", "closed; uploads are refused (403) until `harness reveal` or `harness reopen`",
    "Close a competition: uploads are refused from now on (as after the deadline).",
    "harness close digits")
reopen = _state_command(
    "reopen", "open again for uploads",
    "Reopen a closed competition (before the reveal).", "harness reopen digits")


def _at_terminal() -> bool:
    """Whether a person can answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()


@click.command()
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@with_teacher
def reveal(slug, yes, backend):
    """Reveal the private leaderboard (and private scores) to the students.

    It cannot be undone, so the competition must be closed (`harness close SLUG`) or past
    its deadline first, and it asks for confirmation (--yes skips the question; without a
    terminal --yes is required). With `[rules] reveal = "at_deadline"` the competition
    reveals itself at the deadline.

    \b
    Example:
      harness close digits
      harness reveal digits
      harness reveal digits --yes       # in a script
    """
    if not yes:
        if not _at_terminal():
            raise HarnessError(f"revealing {slug!r} cannot be undone; add --yes to confirm "
                               "when not at a terminal")
        click.confirm(f"Reveal the private leaderboard of {slug!r}{_where(backend)} to every "
                      "student? This cannot be undone", abort=True)
    backend.reveal(slug)
    click.echo(f"{slug}: revealed{_where(backend)}; the private board and private scores are "
               "visible to everyone")


@click.command()
@click.argument("slug")
@with_teacher
@format_option()
def rescore(slug, backend, fmt):
    """Score every submission again against the current answer key (after a fix).

    Old scores are kept in the history; the boards use the new ones.

    \b
    Example:
      harness rescore digits
    """
    result = backend.rescore(slug)
    emit(result, fmt, show=lambda: click.echo(f"{slug}: rescored {result['rescored']} "
                                              f"submission(s), {result['changed']} changed"))
