"""Every command's output: a table (for the projector), CSV (formulas neutralised by
:mod:`harness.csvsafe`) or JSON (exactly the API's objects)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

import click

from ..csvsafe import csv_text, write_csv

Column = tuple[str, str]          # (key in the row dict, header in the table)
FREE_TEXT = {"message", "title", "members", "description", "team"}


def _moment(value) -> datetime | None:
    """An ISO 8601 time as an aware datetime in UTC (None when it is not one)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None \
        else moment.astimezone(timezone.utc)


def short_time(value) -> str:
    """ISO 8601 -> ``2026-11-27 07:17`` (UTC, which the column's header says) for tables;
    the JSON keeps the full value."""
    if not value:
        return "-"
    moment = _moment(value)
    return str(value) if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def countdown(value, now: datetime | None = None) -> str | None:
    """How long until ``value`` (ISO 8601): ``in 42 min``, ``in 5 h 12 min`` within two
    days, ``in 23 days`` within 60; None when it is further (the date says it better) or
    past.
    """
    moment = _moment(value) if value else None
    if moment is None:
        return None
    left = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    minutes = int(left // 60)
    if left <= 0 or minutes >= 60 * 24 * 60:
        return None
    if minutes < 60:
        return f"in {max(minutes, 1)} min"
    if minutes < 48 * 60:
        return f"in {minutes // 60} h {minutes % 60} min"
    return f"in {minutes // (60 * 24)} days"


def deadline_cell(value, now: datetime | None = None, *, running: bool = True) -> str:
    """A deadline for a table whose header says UTC: the date and time, and under it how
    long is left (:func:`countdown`) while that reads better than the date; not when the
    clock is not ``running`` (a competition closed early)."""
    if not value:
        return "none"
    left = countdown(value, now) if running else None
    return short_time(value) + (f"\n{left}" if left else "")


def _decimals_in(value: float) -> int:
    """The decimals a number needs to be written in full (at most 12)."""
    return len(f"{value:.12f}".rstrip("0").partition(".")[2])


def score_format(values: Iterable, decimals: int | None = None) -> Callable:
    """A formatter showing scores with the competition's ``public_decimals`` (``0.900``,
    not ``0.9``), never hiding a decimal a score has (a Ladder's step may have more).

    With ``decimals`` unknown (the public board without a token), the scores of the
    column set it: the most decimals any of them needs.
    """
    if decimals is None:
        decimals = max((_decimals_in(v) for v in values if v is not None), default=0)
    return lambda v: "-" if v is None else f"{v:.{max(decimals, _decimals_in(v))}f}"


def cell(value) -> str:
    """One value as a table cell: None as '-', booleans as yes/blank, the rest as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


VERBATIM = ("token",)            # machine-made: copied exactly, never prefixed (csvsafe)


def _plain(value):
    """NumPy numbers (the labs' results) as Python numbers for JSON."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _csv_fields(records: Sequence[dict], fields, columns: Sequence[Column]) -> list[str]:
    if fields is not None:
        return list(fields)
    return list(dict.fromkeys(k for record in records for k in record)) or \
        [k for k, _ in columns]


def save_csv(path, records: Sequence[dict], fields: Sequence[str] | None = None) -> None:
    """Write ``records`` to the CSV file ``path`` (its folder is made), formulas neutralised.

    ``fields`` defaults to every key of the records; give it for a header without rows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        write_csv(f, _csv_fields(records, fields, ()), records, verbatim=VERBATIM)


def emit(obj, fmt: str, columns: Sequence[Column] = (), rows: Iterable[dict] | None = None, *,
         records: Sequence[dict] | None = None, fields: Sequence[str] | None = None,
         show: Callable[[], None] | None = None, title: str | None = None,
         caption: str | None = None,
         formatters: dict[str, Callable] | None = None,
         mark: Callable[[dict], bool] | None = None, mark_label: str = "you") -> None:
    """Print a command's result: the one path for ``--format table|csv|json``.

    Parameters
    ----------
    obj : list or dict
        What ``--format json`` prints, unchanged (the API's object).
    fmt : {"table", "csv", "json"}
    columns : sequence of (key, header)
        The columns of the table.
    rows : iterable of dict, optional
        The table's rows; ``obj`` itself when it is a list.
    records : sequence of dict, optional
        The CSV's rows, one column per field of the API's objects (default: ``obj`` when
        it is a list, else ``[obj]``). Text that a spreadsheet would run as a formula
        gets a leading ``'`` (:func:`harness.csvsafe.safe_cell`); numbers stay numbers.
    fields : sequence of str, optional
        The CSV's columns (default: every key of the records, else the table's keys).
    show : callable, optional
        Prints the table view itself (sentences rather than a listing); ``columns`` and
        the table options are then unused.
    formatters : dict, optional
        key -> function turning a value into table text (CSV keeps the raw values).
    mark : callable, optional
        Rows for which it is true are highlighted and labelled ``mark_label`` (the
        caller's own team on a leaderboard).
    """
    if fmt == "json":
        click.echo(json.dumps(obj, indent=2, default=_plain))
        return
    if fmt == "csv":
        records = list(records if records is not None else obj if isinstance(obj, list)
                       else [obj])
        # cells a student typed cannot run as formulas in the teacher's spreadsheet
        click.echo(csv_text(records, _csv_fields(records, fields, columns), verbatim=VERBATIM),
                   nl=False)
        return
    if show is not None:
        show()
        return
    # rich only for a table: `--help`, `--version` and --format json/csv start without it
    from rich import box
    from rich.console import Console
    from rich.table import Table

    rows = list(obj if rows is None else rows)
    keys = [k for k, _ in columns]
    formatters = formatters or {}
    # two spaces between columns and none at the edges: a board fits 80 columns
    table = Table(title=title, caption=caption, header_style="bold", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, collapse_padding=True)
    marked = [bool(mark and mark(row)) for row in rows]
    if any(marked):
        table.add_column("")
    for key, header in columns:
        free_text = key in FREE_TEXT      # only these wrap; numbers and times stay on one line
        table.add_column(header, justify="right" if key in ("rank", "id", "entries") or
                         key.endswith("score") else "left", no_wrap=not free_text,
                         min_width=10 if free_text else None,
                         overflow="fold" if free_text else "ellipsis")   # long words go on
    for row, is_marked in zip(rows, marked):
        cells = [formatters.get(k, cell)(row.get(k)) for k in keys]
        if any(marked):
            cells.insert(0, f"> {mark_label}" if is_marked else "")
        table.add_row(*cells, style="bold green" if is_marked else None)
    if not rows:
        table.caption = "\n".join(filter(None, [caption, "(nothing yet)"]))
    Console(soft_wrap=False).print(table)


def half_width(interval) -> float | None:
    """Half a board row's 95% ``interval``: the "±" beside its score (None without one)."""
    return None if not interval else (interval[1] - interval[0]) / 2


def board_fields(board: str) -> list[str]:
    """The CSV columns of a board's rows (:func:`board_records`), from the API's models:
    the header of a board without rows."""
    from ..schemas import BoardRow, PrivateBoardRow   # pydantic: not for `--help`

    model = PrivateBoardRow if board == "private" else BoardRow
    return [f for f in model.model_fields if f != "interval"] + ["interval_low",
                                                                  "interval_high"]


def board_records(rows: Sequence[dict]) -> list[dict]:
    """A board's rows for CSV: the ``interval`` as two number columns a spreadsheet reads
    (``interval_low``, ``interval_high``) instead of one JSON cell."""
    out = []
    for r in rows:
        r = dict(r)
        if "interval" in r:
            low, high = r.pop("interval") or (None, None)
            r |= {"interval_low": low, "interval_high": high}
        out.append(r)
    return out


def uncertainty_caption(board: dict) -> str | None:
    """The line under a board's table saying what ± and ``tied`` mean, with the count."""
    tied, n = board.get("tied_with_leader"), board.get("scored_rows")
    if not board.get("rows") or (tied is None and n is None):
        return None
    where = f" ({n} {board.get('board', 'public')} test rows)" if n else ""
    line = f"±: half the 95% interval{where}"
    if tied is not None:
        line += (f"; tied: {tied} team{'s' * (tied != 1)}, the leader included, not "
                 "significantly different from the leader")
    return line


SUBMISSION_COLUMNS = [("id", "id"), ("team", "team"), ("submitted_at", "submitted (UTC)"),
                      ("public_score", "public"), ("private_score", "private"),
                      ("selected", "selected"), ("message", "message")]


def submission_rows(rows: list[dict]) -> list[dict]:
    """Rows for a table: a refused file says why in place of its message; late ones say so."""
    def refused(error):         # the whole reason is in --format json/csv
        return "refused: " + (error if len(error) <= 70 else error[:69] + "…")

    return [{**r, "message": (refused(r["error"]) if r.get("error") else r.get("message")
                              or "") + (" (late)" if r.get("late") else "")} for r in rows]
