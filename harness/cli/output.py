"""Print listings as a table (for the projector), CSV or JSON (exactly the API's objects)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ..csvsafe import csv_text

Column = tuple[str, str]          # (key in the row dict, header in the table)
FREE_TEXT = {"message", "title", "members", "description", "team"}


def short_time(value) -> str:
    """ISO 8601 -> ``2026-11-27 07:17`` (UTC) for tables; the JSON keeps the full value."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M")


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


def emit(obj, fmt: str, columns: Sequence[Column], rows: Iterable[dict] | None = None, *,
         records: Sequence[dict] | None = None, title: str | None = None,
         caption: str | None = None,
         formatters: dict[str, Callable] | None = None,
         mark: Callable[[dict], bool] | None = None, mark_label: str = "you") -> None:
    """Print a listing.

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
    formatters : dict, optional
        key -> function turning a value into table text (CSV keeps the raw values).
    mark : callable, optional
        Rows for which it is true are highlighted and labelled ``mark_label`` (the
        caller's own team on a leaderboard).
    """
    if fmt == "json":
        click.echo(json.dumps(obj, indent=2))
        return
    if fmt == "csv":
        records = list(records if records is not None else obj if isinstance(obj, list)
                       else [obj])
        fields = list(dict.fromkeys(k for record in records for k in record)) or \
            [k for k, _ in columns]
        # cells a student typed cannot run as formulas in the teacher's spreadsheet
        click.echo(csv_text(records, fields, verbatim=VERBATIM), nl=False)
        return
    rows = list(obj if rows is None else rows)
    keys = [k for k, _ in columns]
    formatters = formatters or {}
    table = Table(title=title, caption=caption, header_style="bold", box=box.SIMPLE_HEAD)
    marked = [bool(mark and mark(row)) for row in rows]
    if any(marked):
        table.add_column("")
    for key, header in columns:
        free_text = key in FREE_TEXT      # only these wrap; numbers and times stay on one line
        table.add_column(header, justify="right" if key in ("rank", "id", "entries") or
                         key.endswith("score") else "left", no_wrap=not free_text,
                         min_width=10 if free_text else None)
    for row, is_marked in zip(rows, marked):
        cells = [formatters.get(k, cell)(row.get(k)) for k in keys]
        if any(marked):
            cells.insert(0, f"> {mark_label}" if is_marked else "")
        table.add_row(*cells, style="bold green" if is_marked else None)
    if not rows:
        table.caption = "\n".join(filter(None, [caption, "(nothing yet)"]))
    Console(soft_wrap=False).print(table)
