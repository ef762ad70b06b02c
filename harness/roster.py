"""A course roster: reading ``team,member[,section]`` CSVs and writing the tokens file (pure).

The roster is checked here, once, whether the teacher imports it on the server machine or
sends it over HTTP: its header must name the columns, so a file exported with other
columns (``name,email``) is refused instead of turning its header into a team.
The tokens file is what the teacher mails out: one row per team with its members and its
token, written once (never over an older file, which may hold tokens shown only once),
readable by its owner alone.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .csvsafe import write_csv
from .errors import HarnessError

REQUIRED = ("team", "member")
OPTIONAL = ("section",)
TOKEN_COLUMNS = ["team", "members", "token"]
MAX_NAME = 200


@dataclass(frozen=True)
class RosterRow:
    """One student of the roster: their team, their name, their section (or None)."""

    team: str
    member: str
    section: str | None = None


def _clean(value: str, what: str, where: str) -> str:
    value = value.strip()
    if len(value) > MAX_NAME or any(ord(c) < 32 for c in value):
        raise HarnessError(f"{where}: the {what} {value[:40]!r} is too long or has control "
                           "characters; use a short printable name")
    return value


def parse_roster(text: str, source: str = "roster") -> list[RosterRow]:
    """The rows of a roster CSV's text.

    Parameters
    ----------
    text : str
        The CSV: a header row naming ``team`` and ``member`` (and optionally ``section``),
        in any order and any case, then one row per student. A row with a team and no
        member makes a team without members. Blank rows are skipped.
    source : str
        The file's name, for the messages.

    Returns
    -------
    list of RosterRow

    Raises
    ------
    HarnessError
        The header does not name the columns (the message says which were expected and
        which were found), a row has no team, or there are no rows.

    Examples
    --------
    >>> parse_roster("team,member,section\\nowls,Ada,A\\nowls,Alan,B\\n")[1]
    RosterRow(team='owls', member='Alan', section='B')
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = None
    rows: list[RosterRow] = []
    for line, cells in enumerate(reader, start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if header is None:
            header = [c.lower() for c in cells]
            found = ",".join(cells)
            unknown = [c for c in header if c and c not in REQUIRED + OPTIONAL]
            missing = [c for c in REQUIRED if c not in header]
            if missing or unknown or len(set(header)) != len(header):
                raise HarnessError(
                    f"{source} line {line}: expected the header row team,member (and "
                    f"optionally section), found {found[:120]!r}; put that header on the "
                    "first line, with one row per student below it")
            continue
        cell = dict(zip(header, cells))
        where = f"{source} line {line}"
        if not cell.get("team"):
            raise HarnessError(f"{where}: the team is empty; expected rows team,member"
                               + (",section" if "section" in header else ""))
        rows.append(RosterRow(_clean(cell["team"], "team", where),
                              _clean(cell.get("member", ""), "member", where),
                              _clean(cell.get("section", ""), "section", where) or None))
    if not rows:
        raise HarnessError(f"{source} has no students; expected a header row team,member "
                           "(optionally section) and one row per student")
    return rows


def read_roster(path: str | Path) -> tuple[str, str]:
    """The text of the roster file at ``path`` and its name, for :func:`parse_roster`.

    Raises
    ------
    HarnessError
        The file does not exist or is not UTF-8 text.
    """
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig"), path.name
    except FileNotFoundError:
        raise HarnessError(f"roster {path} does not exist; expected a CSV with the header "
                           "team,member (optionally section)") from None
    except UnicodeDecodeError:
        raise HarnessError(f"roster {path} is not UTF-8 text; save it from the spreadsheet "
                           "as \"CSV UTF-8\"") from None


def tokens_path(roster: str | Path, output: str | Path | None = None) -> Path:
    """Where the tokens file of ``roster`` goes (``output``, else ``ROSTER-tokens.csv``
    beside it); HarnessError if a file is already there."""
    roster = Path(roster)
    out = Path(output) if output else roster.with_name(f"{roster.stem}-tokens.csv")
    if out.exists():
        raise HarnessError(f"{out} already exists; it may hold tokens that are shown only "
                           "once. Move it away or pass another output path (-o FILE)")
    return out


def write_tokens(path: str | Path, tokens: Iterable[dict]) -> Path:
    """Write the tokens file: rows ``team, members, token`` (members joined by ``; ``),
    created new with mode 0600; never over an existing file.

    Team and member names cannot run as formulas in a spreadsheet; tokens are copied
    exactly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        write_csv(f, TOKEN_COLUMNS,
                  ({"team": t["team"], "members": "; ".join(t.get("members", ())),
                    "token": t["token"]} for t in tokens), verbatim=["token"])
    return path
