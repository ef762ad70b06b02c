"""CSV for the teacher's spreadsheet: cells that cannot run as formulas (pure).

A submission's message or filename is typed by a student; a CSV cell such as
``=HYPERLINK("http://x","click")`` or ``=cmd|' /C calc'!A0`` would run when the
teacher opens the export in a spreadsheet. Following the OWASP rule for CSV
injection, a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return gets a leading apostrophe, which spreadsheets read as "this is
text". Numbers are never changed, and neither is text that is a plain decimal
number such as ``"-0.5"`` or ``"+1e-3"``: a spreadsheet reads it as that number,
not as a formula, and an apostrophe would turn a score into text. Columns
named as ``verbatim`` (access tokens) are copied exactly: nobody chooses their
characters, and a token must survive character for character.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import re
from typing import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value):
    """One value as a CSV cell a spreadsheet shows as data, never runs as a formula.

    Parameters
    ----------
    value : object
        None becomes an empty cell, lists and dicts their JSON text; numbers
        (including booleans and NumPy numbers) are returned unchanged.

    Returns
    -------
    object
        The number unchanged, else text; text starting with one of
        :data:`FORMULA_STARTS` that is not a plain decimal number is prefixed
        with ``'``.

    Examples
    --------
    >>> safe_cell('=HYPERLINK("http://x","click")')
    '\\'=HYPERLINK("http://x","click")'
    >>> safe_cell(-0.5), safe_cell("-0.5"), safe_cell("-rocket")
    (-0.5, '-0.5', "'-rocket")
    """
    if value is None:
        return ""
    if isinstance(value, numbers.Number):
        return value
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(f, fields: Sequence[str], records: Iterable[dict], *,
              verbatim: Iterable[str] = ()) -> None:
    """Write a header and one row per record to the text file ``f``, every cell made safe.

    Parameters
    ----------
    f : file
        Opened for writing text (with ``newline=""`` when it is a real file).
    fields : sequence of str
        The columns, in order; a record's missing key is an empty cell.
    records : iterable of dict
    verbatim : iterable of str, optional
        Fields written as they are (machine-made values such as tokens).
    """
    exact = set(verbatim)
    plain = csv.writer(f, lineterminator="\n")
    # the csv module quotes only the line terminator's characters, but spreadsheets and
    # csv readers also break lines at a bare CR: a row holding one is quoted in full
    quoted = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
    plain.writerow([safe_cell(k) for k in fields])
    for record in records:
        values = [(k, record.get(k)) for k in fields]
        row = [v if k in exact and v is not None else safe_cell(v) for k, v in values]
        (quoted if any(isinstance(c, str) and "\r" in c for c in row) else plain).writerow(row)


def csv_text(records: Sequence[dict], fields: Sequence[str] | None = None, *,
             verbatim: Iterable[str] = ()) -> str:
    """``records`` as safe CSV text (see :func:`write_csv`).

    ``fields`` defaults to every key of the records, in order of first appearance.
    """
    if fields is None:
        fields = list(dict.fromkeys(k for record in records for k in record))
    buf = io.StringIO()
    write_csv(buf, fields, records, verbatim=verbatim)
    return buf.getvalue()
