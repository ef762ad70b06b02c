"""Student commands (Kaggle-CLI-like): login, competitions, download, submit, submissions,
select, leaderboard. They talk HTTP to the server through :class:`harness.client.Client`.
Each takes its competition as SLUG or ``-c SLUG`` (:mod:`.slug`).

``leaderboard`` and ``submissions`` also run on the server machine: given a home
explicitly (``--home`` or HARNESS_HOME) and no server (``--server`` or HARNESS_SERVER),
they read the home directly, as the teacher, who may then see ``--private`` before the
reveal.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import AuthError, HarnessError
from .options import format_option, with_service
from .output import (SUBMISSION_COLUMNS, board_fields, board_records, deadline_cell, emit,
                     half_width, save_csv, score_format, short_time, submission_rows,
                     uncertainty_caption)
from .slug import competition_slug

if TYPE_CHECKING:
    from ..client import Client

# The clients (httpx, pydantic) and rich are imported inside the functions that use them, so
# that `harness --help`, `--version` and every command's --help start without them.


def _server_address(ctx, param, value):
    """The server's base URL in ``--server``; a page's address pasted there is cut to
    its origin, saying so on stderr."""
    from ..client import server_origin

    if value is None:
        return None
    try:
        origin, page = server_origin(value)
    except HarnessError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    if page:
        click.echo(f"note: using the server's address {origin} (the rest, {page}, is one of "
                   "its pages)", err=True)
    return origin


server_option = click.option(
    "--server", envvar="HARNESS_SERVER", default=None, metavar="URL", callback=_server_address,
    help="The server (default: the one `harness login` stored; or $HARNESS_SERVER).")

LOCAL_RULE = ("Where it reads: with a home given (--home or HARNESS_HOME) and no server "
              "(--server or HARNESS_SERVER) it reads the home directly, as the teacher; "
              "otherwise it asks the server with the stored token (with a teacher token, "
              "as the teacher).")


def _client(server, need_token=True) -> Client:
    from ..client import Client

    return Client.from_config(server=server, need_token=need_token)


def _reader(server, need_token=True) -> Client:
    """The client of a command both a student and the teacher run (submissions,
    leaderboard): an :class:`AdminClient` when the token is a teacher's (the stored login
    says so; a token from elsewhere is asked about with one request)."""
    from ..admin_client import AdminClient
    from ..client import load_credentials

    client = _client(server, need_token)
    if not client.token:
        return client
    stored = load_credentials()
    if stored.get("token") == client.token:
        teacher = stored.get("role") == "teacher"
    else:
        with AdminClient(client.server, client.token) as probe:
            teacher = probe.is_teacher()
    if not teacher:
        return client
    client.disconnect()
    return AdminClient(client.server, client.token)


@click.command()
@click.option("--server", required=True, metavar="URL", callback=_server_address,
              help="The server's address, from your teacher.")
@click.option("--token", required=True, help="Your team's token (from your teacher).")
def login(server, token):
    """Check the token against the server and store both for the other commands.

    The file is $HARNESS_CONFIG or ~/.config/harness/credentials.json, readable
    only by you (mode 0600). HARNESS_SERVER and HARNESS_TOKEN override it.

    \b
    Example:
      harness login --server http://10.0.0.5:8000 --token 3q2-SX...
    """
    from ..admin_client import AdminClient
    from ..client import save_credentials

    with AdminClient(server, token) as client:
        try:
            competitions = client.competitions()      # a team's token or the teacher's
        except AuthError:
            raise HarnessError(
                f"that token is not valid on {client.server}: copy it again, the whole line "
                "from your teacher's message (no spaces or quotes around it)") from None
        role = "teacher" if client.is_teacher() else "team"
    path = save_credentials(client.server, client.token, role)
    names = ", ".join(c["slug"] for c in competitions) or "none yet"
    click.echo(f"logged in to {client.server}" + (" as the teacher" if role == "teacher" else "")
               + f" (saved in {path}); competitions: {names}")


@click.command()
@click.argument("action", required=False, type=click.Choice(["list"]), metavar="[list]")
@server_option
@format_option()
def competitions(action, server, fmt):
    """List the server's competitions (`harness competitions list` too, as in the Kaggle CLI).

    Deadlines are in UTC; under one less than 60 days away, how long is left.

    \b
    Example:
      harness competitions
      harness competitions list --format json
    """
    del action                      # only "list", the Kaggle CLI's word: the same listing
    with _client(server) as client:
        listing = client.competitions()
    rows = [{**c, "deadline": deadline_cell(c["deadline"], running=c["state"] == "open")}
            for c in listing]
    emit(listing, fmt, [("slug", "slug"), ("title", "title"), ("metric", "metric"),
                        ("deadline", "deadline (UTC)"), ("state", "state"),
                        ("teams", "teams")], rows, title="competitions")


@click.command()
@competition_slug
@click.option("-p", "--path", "directory", type=click.Path(file_okay=False), default=None,
              help="Folder to save into (default: ./SLUG).")
@server_option
def download(slug, directory, server):
    """Download the released files: train, validation, test and sample_submission.csv.

    For an image competition, also its images: train/, validation/ and test/ folders of
    PNGs (each sent as one zip, unpacked here, the zip deleted); the CSVs' file column
    names each row's image in its folder.

    \b
    Example:
      harness download digits -p data/digits
      harness download -c digits -p data/digits
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    directory = Path(directory or slug)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  console=console, transient=True) as progress:
        tasks: dict[str, int] = {}

        def report(name, done, total):
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done)

        with _client(server) as client:
            saved = client.download(slug, directory, progress=report)
    for path in saved:
        if path.is_dir():
            click.echo(f"saved {path}/ ({sum(1 for _ in path.iterdir()):,} images)")
        else:
            click.echo(f"saved {path} ({path.stat().st_size:,} bytes)")


@click.command()
@competition_slug
@click.option("-f", "--file", "file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The prediction CSV (id column + target, like sample_submission.csv).")
@click.option("-m", "--message", default="", help="What you tried (shown in your list).")
@server_option
@format_option()
def submit(slug, file, message, server, fmt):
    """Upload a prediction CSV; it is scored at once on the public part of the test set.

    A file that fails validation is refused with the reason and does not count.

    \b
    Example:
      harness submit digits -f predictions.csv -m "logistic regression, C=1"
    """
    with _client(server) as client:
        decimals = _public_decimals(client, slug) if fmt == "table" else None
        result = client.submit(slug, file, message)
    left = result.get("remaining_today")
    shown = score_format([result["public_score"]], decimals)(result["public_score"])
    emit(result, fmt, show=lambda: click.echo(
        f"submission {result['id']} {result['status']}: public score {shown}"
        + (" (late: after the reveal, not ranked)" if result.get("late") else "")
        + ("; no daily limit" if left is None else f"; {left} left today")))


@click.command()
@competition_slug
@click.option("--team", "team_name", default=None,
              help="Teacher: only this team's submissions.")
@server_option
@with_service(lazy=True, local=True)
@format_option()
def submissions(slug, team_name, server, store, fmt):
    """Your team's submissions, newest first (with ids for `harness select`).

    For the teacher (a home and no server given, or a teacher token) it lists every
    team's submissions with both scores.

    \b
    Example:
      harness submissions digits
      harness submissions digits --home /srv/harness --team rocket   # teacher
    """
    from ..admin_client import AdminClient

    teacher = bool(store.home and not server)
    if teacher:
        rows = store.harness.all_submissions(slug)
        decimals = store.harness.get_competition(slug)["public_decimals"]
        if team_name:
            wanted = store.harness.team_named(team_name)["name"]
            rows = [r for r in rows if r.get("team") == wanted and not r.get("baseline")]
    else:
        with _reader(server) as client:
            teacher = isinstance(client, AdminClient)
            if teacher:
                rows = client.all_submissions(slug, team=team_name)
            elif team_name:
                raise click.UsageError("--team is for the teacher (a teacher token or "
                                       "--home); your own list has only your team")
            else:
                rows = client.submissions(slug)
            decimals = _public_decimals(client, slug) if fmt == "table" and rows else None
    # a student's own list needs no team column; the teacher's mixes every team
    columns = [c for c in SUBMISSION_COLUMNS if c[0] != "team" or teacher]
    emit(rows, fmt, columns, submission_rows(rows), formatters=_submission_formats(rows, decimals),
         title=f"{slug}: submissions")


def _public_decimals(client: Client, slug: str) -> int | None:
    """The decimals ``slug``'s scores are shown with; None without a token to ask."""
    return client.competition(slug)["public_decimals"] if client.token else None


def _submission_formats(rows: list[dict], decimals: int | None) -> dict:
    """The table formatters of a submission listing: times and scores as shown."""
    return {"submitted_at": short_time,
            **{key: score_format([r.get(key) for r in rows], decimals)
               for key in ("public_score", "private_score")}}


def _explain_where(command):
    command.help = inspect.cleandoc(command.help).replace(
        "\b\nExample:", LOCAL_RULE + "\n\n\b\nExample:")


_explain_where(submissions)


@click.command()
@competition_slug(then="ids")
@click.argument("ids", nargs=-1, type=int)
@server_option
@format_option()
def select(slug, ids, server, fmt):
    """Choose your final submissions for the private leaderboard (replaces the old choice).

    At most the competition's final_selections ids of your own scored, on-time
    submissions; unfilled places are filled from your best public scores.

    \b
    Example:
      harness select digits 12 17
      harness select -c digits 12 17
    """
    if not ids:
        raise click.UsageError(
            f"which submissions? Give their ids after the competition (`harness submissions "
            f"{slug}` lists them), e.g. `harness select {slug} 12 17`")
    with _client(server) as client:
        rows = client.select(slug, list(ids))
        decimals = _public_decimals(client, slug) if fmt == "table" else None
    emit(rows, fmt, [c for c in SUBMISSION_COLUMNS if c[0] != "team"], submission_rows(rows),
         formatters=_submission_formats(rows, decimals), title=f"{slug}: selected")


@click.command()
@competition_slug
@click.option("--private", is_flag=True,
              help="The private board (students: after the reveal; the teacher, locally: any "
                   "time).")
@click.option("--show", is_flag=True,
              help="Accepted as in the Kaggle CLI; the board is shown anyway.")
@click.option("--download", is_flag=True,
              help="Also save the board as a CSV file in -p, named after the competition "
                   "and the board.")
@click.option("-p", "--path", "directory", type=click.Path(file_okay=False), default=None,
              help="Folder for --download (default: the current one).")
@click.option("--watch", is_flag=True,
              help="Keep the board on screen for the projector: redrawn in place every "
                   "--interval seconds, the rows that changed marked, the time left counting "
                   "down. Ctrl-C stops.")
@click.option("--interval", type=click.FloatRange(min=1), default=None, metavar="S",
              help="Seconds between two refreshes with --watch (default: 10; at least 1).")
@click.option("--refreshes", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --watch: stop after N refreshes (default: at Ctrl-C).")
@server_option
@with_service(lazy=True, local=True)
@format_option()
def leaderboard(slug, private, show, download, directory, watch, interval, refreshes, server,
                store, fmt):
    """Show the leaderboard, made for the projector; your own team's row is marked.

    The public board needs no login. With --watch it stays on screen and follows the
    board; an unchanged board costs the server next to nothing.

    \b
    Example:
      harness leaderboard digits
      harness leaderboard digits --watch --interval 5          # the projector
      harness leaderboard -c digits --show --download -p boards
      harness leaderboard digits --private --format csv
      harness leaderboard digits --private --home /srv/harness    # teacher
    """
    from .watch import DEFAULT_INTERVAL, check_options, source_for
    from .watch import watch as watch_board

    del show                        # the Kaggle CLI's flag: the board is shown anyway
    if directory is not None and not download:
        raise click.UsageError("-p/--path is the folder for --download; add --download")
    check_options(watch, interval, refreshes, download, fmt)
    board = "private" if private else "public"
    if watch:
        watch_board(source_for(slug, board, server, store, _reader), slug, board,
                    interval=interval or DEFAULT_INTERVAL, refreshes=refreshes)
        return
    if store.home and not server:
        result = store.harness.leaderboard(slug, board, teacher=True)
    else:
        with _reader(server, need_token=private) as client:
            result = client.leaderboard(slug, board)
    decimals = result.get("public_decimals")
    mine = result.get("your_team")
    rows = [{**r, "team": f"{r['team']} (baseline)" if r.get("baseline") else r["team"],
             "pm": half_width(r.get("interval"))}
            for r in result.get("rows", [])]
    records = board_records(result.get("rows", []))
    fields = None if records else board_fields(board)
    if download:
        path = Path(directory or ".") / f"{slug}-{board}-leaderboard.csv"
        save_csv(path, records, fields)
        click.echo(f"saved the {board} leaderboard ({len(records)} rows) to {path}", err=True)
    hidden = board == "private" and not result.get("revealed", True)
    emit(result, fmt, [("rank", "rank"), ("team", "team"), ("score", "score"), ("pm", "±"),
                       ("tied", "tied"), ("entries", "entries"),
                       ("last_submission", "last (UTC)")], rows,
         records=records, fields=fields,
         formatters={"last_submission": short_time,
                     "score": score_format([r["score"] for r in rows], decimals),
                     "pm": lambda v: "" if v is None else f"± {v:.3g}",
                     "tied": lambda v: "yes" if v else ""},
         title=f"{slug}: {board} leaderboard",
         caption="\n".join(filter(None, [
             "teacher view: not revealed to the students yet" if hidden else None,
             uncertainty_caption(result)])),
         mark=lambda r: bool(mine) and r["team"] == mine)


_explain_where(leaderboard)
