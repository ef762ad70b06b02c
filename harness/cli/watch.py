"""``harness leaderboard SLUG --watch``: the board live in a terminal, for the projector.

The board is redrawn in place (rich's ``Live``) every ``--interval`` seconds; the rows that
changed since the refresh before are marked (moved up or down, new, or a new score or
entry at the same rank), and a clock counts down to the deadline every second. Over HTTP
each refresh sends the ``ETag`` of the board on screen as ``If-None-Match``: while nothing
changes the server answers 304 without drawing the board, so a watcher left running all
lesson costs it next to nothing. Ctrl-C ends the watch with exit code 0 and the cursor
back.

Where the board comes from follows the other commands: a home and no server, the home
directly (as the teacher); else the server, with the stored token. A teacher's token
watches the private board through the teacher's route; the public board is everyone's,
so it is asked for without the teacher's token, where the ``ETag`` is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import click

from ..errors import HarnessError
from .output import half_width, score_format, short_time, uncertainty_caption

DEFAULT_INTERVAL = 10.0             # seconds between two refreshes of the board
CLOCK_TICKS = 2                     # redraws per second between refreshes (the countdown)


def check_options(watch: bool, interval: float | None, refreshes: int | None, download: bool,
                  fmt: str) -> None:
    """Refuse the options that do not go with ``--watch`` (or need it)."""
    if not watch:
        if interval is not None or refreshes is not None:
            raise click.UsageError("--interval and --refreshes are for --watch; add --watch")
        return
    if fmt != "table":
        raise click.UsageError(f"--watch draws the board in the terminal; --format {fmt} "
                               "prints one board: leave out one of them")
    if download:
        raise click.UsageError("--watch draws the board in the terminal; --download saves "
                               "one board: leave out one of them")


# ------------------------------------------------------------------------ sources


class _LocalSource:
    """The board read from the home directly (the teacher on the server machine)."""

    def __init__(self, harness, slug: str, board: str):
        self.harness, self.slug, self.board_name = harness, slug, board

    def board(self, etag: str | None) -> tuple[dict | None, str | None]:
        return self.harness.leaderboard(self.slug, self.board_name, teacher=True), None

    def competition(self) -> dict | None:
        return self.harness.get_competition(self.slug)

    def close(self) -> None:
        pass


class _RemoteSource:
    """The board from the server: ``boards`` asks for it, ``info`` for the deadline (it
    needs a token: None without one)."""

    def __init__(self, boards, info, slug: str, board: str):
        self.boards, self.info, self.slug, self.board_name = boards, info, slug, board

    def board(self, etag: str | None) -> tuple[dict | None, str | None]:
        from ..admin_client import AdminClient

        if isinstance(self.boards, AdminClient):        # the teacher's route: no ETag there
            return self.boards.leaderboard(self.slug, self.board_name), None
        return self.boards.leaderboard_if_changed(self.slug, self.board_name, etag)

    def competition(self) -> dict | None:
        return self.info.competition(self.slug) if self.info.token else None

    def close(self) -> None:
        for client in {id(self.boards): self.boards, id(self.info): self.info}.values():
            client.disconnect()


def source_for(slug: str, board: str, server: str | None, store,
               reader: Callable) -> _LocalSource | _RemoteSource:
    """Where the watched board comes from (see the module's docstring); ``reader`` is the
    student commands' ``_reader(server, need_token)``."""
    from ..admin_client import AdminClient
    from ..client import Client

    if store.home and not server:
        return _LocalSource(store.harness, slug, board)
    client = reader(server, need_token=board == "private")
    if isinstance(client, AdminClient) and board == "public":
        return _RemoteSource(Client(client.server), client, slug, board)
    return _RemoteSource(client, client, slug, board)


# ------------------------------------------------------------------------ what changed


def _entrant(row: dict) -> tuple[str, bool]:
    return row["team"], bool(row.get("baseline"))


def changed_rows(before: list[dict] | None, after: list[dict]) -> dict[tuple[str, bool], str]:
    """The rows of ``after`` that differ from ``before``, each with its mark.

    ``▲ n`` / ``▼ n``: moved up or down n places; ``new``: not on the board before;
    ``•``: the same rank with another score, entry count or last submission. Nothing is
    marked on the first board (``before`` None).

    Examples
    --------
    >>> before = [{"team": "a", "rank": 1, "score": 0.9, "entries": 1},
    ...           {"team": "b", "rank": 2, "score": 0.8, "entries": 1}]
    >>> after = [{"team": "b", "rank": 1, "score": 0.95, "entries": 2},
    ...          {"team": "a", "rank": 2, "score": 0.9, "entries": 1},
    ...          {"team": "c", "rank": 3, "score": 0.5, "entries": 1}]
    >>> changed_rows(before, after)
    {('b', False): '▲ 1', ('a', False): '▼ 1', ('c', False): 'new'}
    """
    if before is None:
        return {}
    old = {_entrant(r): r for r in before}
    marks = {}
    for row in after:
        was = old.get(_entrant(row))
        if was is None:
            marks[_entrant(row)] = "new"
        elif row.get("rank") is not None and was.get("rank") is not None \
                and row["rank"] != was["rank"]:
            moved = was["rank"] - row["rank"]
            marks[_entrant(row)] = f"▲ {moved}" if moved > 0 else f"▼ {-moved}"
        elif any(row.get(k) != was.get(k) for k in ("rank", "score", "entries",
                                                      "last_submission")):
            marks[_entrant(row)] = "•"
    return marks


# ------------------------------------------------------------------------ the clock


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def time_left(competition: dict | None, now: datetime) -> str:
    """The clock's text: ``2d 03:04:05 left``, ``00:12:09 left``, or why there is none.

    Examples
    --------
    >>> now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    >>> time_left({"state": "open", "deadline": "2030-01-03T03:04:05+00:00"}, now)
    '2d 03:04:05 left'
    >>> time_left({"state": "open", "deadline": "2030-01-01T00:12:09Z"}, now)
    '00:12:09 left'
    >>> time_left({"state": "closed", "deadline": None}, now)
    'closed'
    """
    if competition is None:
        return "time left: log in (`harness login`) to see the deadline"
    state, deadline = competition.get("state"), _moment(competition.get("deadline"))
    if state == "revealed":
        return "final: the private board is revealed"
    if state == "closed":
        return "closed"
    if deadline is None:
        return "no deadline"
    left = int((deadline - now).total_seconds())
    if left <= 0:
        return "deadline passed"
    days, rest = divmod(left, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {clock} left" if days else f"{clock} left"


# ------------------------------------------------------------------------ the screen


@dataclass
class BoardView:
    """What the watch shows: the last board, its marks, when it was asked for, and the
    last failure (the board on screen stays; the next refresh tries again)."""

    slug: str
    board_name: str
    interval: float
    board: dict | None = None
    etag: str | None = None
    competition: dict | None = None
    marks: dict = field(default_factory=dict)
    checked_at: datetime | None = None
    changed_at: datetime | None = None
    problem: str | None = None
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    def show(self, board: dict | None, etag: str | None, competition: dict | None) -> None:
        """Take one refresh's answer (``board`` None: unchanged since the last one)."""
        self.checked_at, self.problem = self.now(), None
        if board is None:
            self.marks = {}
            return
        self.marks = changed_rows(self.board["rows"] if self.board else None, board["rows"])
        if self.board is None or self.marks or board["rows"] != self.board["rows"]:
            self.changed_at = self.checked_at
        self.board, self.etag, self.competition = board, etag, competition

    def failed(self, problem: str) -> None:
        self.checked_at, self.problem = self.now(), problem

    def render(self):
        """The screen: a header with the clock, the board, what the marks mean."""
        from rich import box
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        board = self.board or {"rows": []}
        rows, mine = board["rows"], board.get("your_team")
        shown = score_format([r["score"] for r in rows], board.get("public_decimals"))
        header = Text.assemble(
            (f"{self.slug}: {self.board_name} leaderboard", "bold"), "   ",
            (time_left(self.competition, self.now()), "bold cyan"))
        status = f"checked {self.checked_at:%H:%M:%S} UTC, every {self.interval:g} s" \
            + (f"; last change {self.changed_at:%H:%M:%S} UTC" if self.changed_at else "") \
            + "; Ctrl-C to stop"
        lines = [header, Text(status, style="dim")]
        if self.problem:
            lines.append(Text(f"{self.problem} (showing the last board; trying again)",
                              style="bold red"))
        table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False,
                      pad_edge=False, collapse_padding=True)
        for header_text, justify in (("", "left"), ("rank", "right"), ("team", "left"),
                                     ("score", "right"), ("±", "left"), ("tied", "left"),
                                     ("entries", "right"), ("last (UTC)", "left")):
            table.add_column(header_text, justify=justify, no_wrap=True,
                             overflow="ellipsis")
        for row in rows:
            mark = self.marks.get(_entrant(row), "")
            pm = half_width(row.get("interval"))
            yours = bool(mine) and row["team"] == mine and not row.get("baseline")
            team = row["team"] + (" (baseline)" if row.get("baseline") else "") \
                + (" < you" if yours else "")
            table.add_row(mark, "-" if row.get("rank") is None else str(row["rank"]), team,
                          shown(row["score"]), "" if pm is None else f"± {pm:.3g}",
                          "yes" if row.get("tied") else "", str(row.get("entries", "")),
                          short_time(row.get("last_submission")),
                          style="bold yellow" if mark else "bold green" if yours else None)
        legend = "▲/▼ moved, new: first on the board, •: new score or entry (since the " \
                 "refresh before)"
        notes = [n for n in (uncertainty_caption(board), legend if self.marks else None) if n]
        if not rows:
            notes.insert(0, "(nothing yet)")
        return Group(*lines, table, *(Text(n, style="dim") for n in notes))


def watch(source, slug: str, board: str, *, interval: float = DEFAULT_INTERVAL,
          refreshes: int | None = None, console=None) -> None:
    """Show the board of ``source`` until Ctrl-C (or ``refreshes`` refreshes).

    The first board is read before the screen is taken, so a wrong slug or token is the
    usual one-line error; later failures (the server restarting, the network) are shown
    above the last board, and the next refresh tries again.
    """
    from rich.console import Console
    from rich.live import Live

    view = BoardView(slug, board, interval)
    try:
        first, etag = source.board(None)
        view.show(first, etag, source.competition())
        with Live(get_renderable=view.render, console=console or Console(),
                  refresh_per_second=CLOCK_TICKS, redirect_stdout=False,
                  redirect_stderr=False) as live:
            done = 1
            while refreshes is None or done < refreshes:
                time.sleep(interval)
                try:
                    fresh, etag = source.board(view.etag)
                    # the state and the deadline may have moved with the board (closed)
                    view.show(fresh, etag, source.competition() if fresh is not None
                              else view.competition)
                except HarnessError as exc:
                    view.failed(str(exc))
                live.refresh()
                done += 1
    except KeyboardInterrupt:       # the way to stop watching: not an error, exit code 0
        click.echo(f"stopped watching {slug}", err=True)
    finally:
        source.close()
