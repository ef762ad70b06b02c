"""Student commands (Kaggle-CLI-like): login, competitions, download, submit, submissions,
select, leaderboard. They talk HTTP to the server through :class:`harness.client.Client`.

``leaderboard`` and ``submissions`` also run on the server machine: given a home
explicitly (``--home`` or HARNESS_HOME) and no server (``--server`` or HARNESS_SERVER),
they read the home directly, as the teacher, who may then see ``--private`` before the
reveal.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from ..client import Client, normalize_server, save_credentials
from .options import format_option, with_service
from .output import (SUBMISSION_COLUMNS, board_records, emit, half_width, short_time,
                     submission_rows, uncertainty_caption)

server_option = click.option(
    "--server", envvar="HARNESS_SERVER", default=None, metavar="URL",
    help="The server (default: the one `harness login` stored; or $HARNESS_SERVER).")

LOCAL_RULE = ("Where it reads: with a home given (--home or HARNESS_HOME) and no server "
              "(--server or HARNESS_SERVER) it reads the home directly, as the teacher; "
              "otherwise it asks the server with the stored token.")


def _client(server, need_token=True) -> Client:
    return Client.from_config(server=server, need_token=need_token)


@click.command()
@click.option("--server", required=True, metavar="URL", help="The server's address.")
@click.option("--token", required=True, help="Your team's token (from your teacher).")
def login(server, token):
    """Check the token against the server and store both for the other commands.

    The file is $HARNESS_CONFIG or ~/.config/harness/credentials.json, readable
    only by you (mode 0600). HARNESS_SERVER and HARNESS_TOKEN override it.

    \b
    Example:
      harness login --server http://10.0.0.5:8000 --token 3q2-SX...
    """
    with Client(normalize_server(server), token) as client:
        competitions = client.competitions()     # 401 here if the token is wrong
    path = save_credentials(client.server, client.token)
    names = ", ".join(c["slug"] for c in competitions) or "none yet"
    click.echo(f"logged in to {client.server} (saved in {path}); competitions: {names}")


@click.command()
@server_option
@format_option()
def competitions(server, fmt):
    """List the server's competitions.

    \b
    Example:
      harness competitions
      harness competitions --format json
    """
    with _client(server) as client:
        rows = client.competitions()
    emit(rows, fmt, [("slug", "slug"), ("title", "title"), ("metric", "metric"),
                     ("deadline", "deadline"), ("state", "state"), ("teams", "teams")],
         formatters={"deadline": short_time}, title="competitions")


@click.command()
@click.argument("slug")
@click.option("-p", "--path", "directory", type=click.Path(file_okay=False), default=None,
              help="Folder to save into (default: ./SLUG).")
@server_option
def download(slug, directory, server):
    """Download the released files: train, validation, test and sample_submission.csv.

    \b
    Example:
      harness download digits -p data/digits
    """
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
        click.echo(f"saved {path} ({path.stat().st_size:,} bytes)")


@click.command()
@click.argument("slug")
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
        result = client.submit(slug, file, message)
    left = result.get("remaining_today")
    emit(result, fmt, show=lambda: click.echo(
        f"submission {result['id']} {result['status']}: public score {result['public_score']}"
        + (" (late: after the reveal, not ranked)" if result.get("late") else "")
        + ("; no daily limit" if left is None else f"; {left} left today")))


@click.command()
@click.argument("slug")
@click.option("--team", "team_name", default=None,
              help="Teacher (local): only this team's submissions.")
@server_option
@with_service(lazy=True, local=True)
@format_option()
def submissions(slug, team_name, server, store, fmt):
    """Your team's submissions, newest first (with ids for `harness select`).

    On the server machine (a home and no server given) it lists every team's
    submissions with both scores, for the teacher.

    \b
    Example:
      harness submissions digits
      harness submissions digits --home /srv/harness --team rocket   # teacher
    """
    local = bool(store.home and not server)
    if local:
        rows = store.harness.all_submissions(slug)
        if team_name:
            rows = [r for r in rows if r.get("team") == team_name]
    else:
        with _client(server) as client:
            rows = client.submissions(slug)
    # a student's own list needs no team column; the teacher's mixes every team
    columns = [c for c in SUBMISSION_COLUMNS if c[0] != "team" or local]
    emit(rows, fmt, columns, submission_rows(rows), formatters={"submitted_at": short_time},
         title=f"{slug}: submissions")


def _explain_where(command):
    command.help = inspect.cleandoc(command.help).replace(
        "\b\nExample:", LOCAL_RULE + "\n\n\b\nExample:")


_explain_where(submissions)


@click.command()
@click.argument("slug")
@click.argument("ids", nargs=-1, required=True, type=int)
@server_option
@format_option()
def select(slug, ids, server, fmt):
    """Choose your final submissions for the private leaderboard (replaces the old choice).

    At most the competition's final_selections ids of your own scored, on-time
    submissions; unfilled places are filled from your best public scores.

    \b
    Example:
      harness select digits 12 17
    """
    with _client(server) as client:
        rows = client.select(slug, list(ids))
    emit(rows, fmt, [c for c in SUBMISSION_COLUMNS if c[0] != "team"], submission_rows(rows),
         formatters={"submitted_at": short_time}, title=f"{slug}: selected")


@click.command()
@click.argument("slug")
@click.option("--private", is_flag=True,
              help="The private board (students: after the reveal; the teacher, locally: any "
                   "time).")
@server_option
@with_service(lazy=True, local=True)
@format_option()
def leaderboard(slug, private, server, store, fmt):
    """Show the leaderboard, made for the projector; your own team's row is marked.

    The public board needs no login.

    \b
    Example:
      harness leaderboard digits
      harness leaderboard digits --private --format csv
      harness leaderboard digits --private --home /srv/harness    # teacher, before the reveal
    """
    board = "private" if private else "public"
    if store.home and not server:
        result = store.harness.leaderboard(slug, board, teacher=True)
    else:
        with _client(server, need_token=private) as client:
            result = client.leaderboard(slug, board)
    mine = result.get("your_team")
    rows = [{**r, "team": f"{r['team']} (baseline)" if r.get("baseline") else r["team"],
             "pm": half_width(r.get("interval"))}
            for r in result.get("rows", [])]
    hidden = board == "private" and not result.get("revealed", True)
    emit(result, fmt, [("rank", "rank"), ("team", "team"), ("score", "score"), ("pm", "±"),
                       ("tied", "tied"), ("entries", "entries"),
                       ("last_submission", "last (UTC)")], rows,
         records=board_records(result.get("rows", [])),
         formatters={"last_submission": short_time,
                     "pm": lambda v: "" if v is None else f"± {v:.3g}",
                     "tied": lambda v: "yes" if v else ""},
         title=f"{slug}: {board} leaderboard",
         caption="\n".join(filter(None, [
             "teacher view: not revealed to the students yet" if hidden else None,
             uncertainty_caption(result)])),
         mark=lambda r: bool(mine) and r["team"] == mine)


_explain_where(leaderboard)
