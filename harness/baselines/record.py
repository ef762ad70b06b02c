"""Score presets on both boards and write them into competition.toml's ``[grading]``.

The file is edited through tomlkit, which writes back what it read: only the
measured ``public``/``private`` values change; comments, order, quoting, other
thresholds and custom points stay as they were. The new text replaces the file
in one rename, so a server reading it meanwhile sees the old or the new file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import MutableMapping
from pathlib import Path

import tomlkit

from ..errors import SpecError
from ..home import private_file, temp_path
from ..scoring import AnswerKey, round_public, score
from ..spec import Threshold, set_toml_key, toml_document


def measure(csv_path: str | Path, key: AnswerKey, decimals: int) -> tuple[float, float]:
    """A written submission's (public, private) scores, rounded as the boards show them.

    Parameters
    ----------
    csv_path : str or Path
        The baseline's submission CSV (the bytes a board would score).
    key : AnswerKey
        The prepared competition's answer key.
    decimals : int
        ``public_decimals`` of the competition.
    """
    s = score(Path(csv_path), key)
    return round_public(s.public, decimals), round_public(s.private, decimals)


def write_grading(toml_path: str | Path, measured: dict[str, tuple[float, float]],
                  old: tuple[Threshold, ...] = (), comment: str = "") -> str:
    """Write measured thresholds into ``toml_path``'s ``[grading]``; returns the new text.

    Parameters
    ----------
    toml_path : str or Path
        The competition.toml to edit in place.
    measured : dict
        ``{name: (public, private)}``; each name's ``public``/``private`` are
        set, its points and every other row stay, a new name is added.
    old : tuple of Threshold, optional
        Not needed any more (the file's own rows are kept as they are); still
        accepted because ``harness baseline --record`` passes it.
    comment : str, optional
        Written after the ``[grading]`` header when the file has no such table.
    """
    path = Path(toml_path)
    text = path.read_text(encoding="utf-8")
    doc = toml_document(text, source=path)
    if "grading" not in doc:
        table = tomlkit.table()
        if comment:
            table.comment(comment)
        doc["grading"] = table
    grading = doc["grading"]
    for name, (public, private) in measured.items():
        values = {"public": float(public), "private": float(private)}
        if name not in grading:
            set_toml_key(grading, name, _inline_table(values))
            continue
        row = grading[name]
        if not isinstance(row, MutableMapping):
            raise SpecError(f"grading.{name}", f"must be a table like {{ public = 0.8, "
                            f"private = 0.8 }} to record into, found {row!r}", path)
        row.update(values)   # points and comments of the row stay
    new = tomlkit.dumps(doc)
    if new != text:
        tmp = temp_path(path)
        try:
            with os.fdopen(private_file(tmp), "w", encoding="utf-8") as f:
                f.write(new)
            shutil.copymode(path, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return new


def _inline_table(values: dict) -> tomlkit.items.InlineTable:
    """``values`` as ``{ public = .., private = .. }``, spaced like the built-in files."""
    row = tomlkit.inline_table()
    row.update(values)
    row[next(iter(values))].indent(1)
    row.add(tomlkit.ws(" "))
    return row
