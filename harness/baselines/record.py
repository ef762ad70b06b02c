"""Score presets on both boards and write them into competition.toml's ``[grading]``.

Only the ``[grading]`` section is rewritten, as text; every other byte of the
file stays as it was (comments, order, quoting). Thresholds of other names and
custom points are kept. The result is parsed back and compared with the
original before it is written, so a file this cannot edit safely is refused,
never damaged.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

from ..errors import SpecError
from ..scoring import AnswerKey, round_public, score
from ..spec import Threshold

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


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


def grading_section(thresholds: list[Threshold], comment: str = "") -> str:
    """The ``[grading]`` table as TOML text (one inline table per threshold)."""
    lines = ["[grading]" + (f"   # {comment}" if comment else "")]
    for t in thresholds:
        parts = [f"{k} = {_num(v)}" for k, v in (("public", t.public), ("private", t.private))
                 if v is not None]
        parts += [f"{k} = {_num(v)}" for k, v in (("points_public", t.points_public),
                                                   ("points_private", t.points_private))
                  if v != 1.0]
        name = t.name if re.fullmatch(r"[A-Za-z0-9_-]+", t.name) else f'"{t.name}"'
        lines.append(f"{name} = {{ {', '.join(parts)} }}")
    return "\n".join(lines) + "\n"


def merge_thresholds(old: tuple[Threshold, ...], measured: dict[str, tuple[float, float]]
                     ) -> list[Threshold]:
    """``old`` with each measured name's public/private replaced (points kept), new ones added."""
    out, seen = [], set()
    for t in old:
        if t.name in measured:
            pub, priv = measured[t.name]
            out.append(Threshold(t.name, pub, priv, t.points_public, t.points_private))
            seen.add(t.name)
        else:
            out.append(t)
    out += [Threshold(n, p, q) for n, (p, q) in measured.items() if n not in seen]
    return out


def replace_grading(text: str, section: str) -> str:
    """``text`` with its ``[grading]`` section (and ``[grading.*]`` tables) replaced.

    Appends the section when the file has none. Raises SpecError when the
    result would change anything outside ``[grading]``.
    """
    lines = text.splitlines(keepends=True)
    start = end = None
    in_string = None
    for i, line in enumerate(lines):
        if in_string is None:
            m = _HEADER.match(line)
            if m:
                name = m.group(1).strip().strip('"')
                is_grading = name == "grading" or name.startswith("grading.")
                if is_grading and start is None:
                    start = i
                elif not is_grading and start is not None and end is None:
                    end = i
        in_string = _string_state(line, in_string)
    if start is None:
        body = text if not text or text.endswith("\n") else text + "\n"
        new = body + ("\n" if body.strip() else "") + section
    else:
        end = len(lines) if end is None else end
        # keep the blank lines that separated the section from the next one
        last = end
        while last > start + 1 and not lines[last - 1].strip():
            last -= 1
        new = "".join(lines[:start]) + section + "".join(lines[last:])
    _check_same_outside_grading(text, new)
    return new


def _string_state(line: str, state: str | None) -> str | None:
    """Track whether a line ends inside a multi-line TOML string."""
    i = 0
    while i < len(line):
        if state is None:
            if line[i] == "#":
                return None
            for q in ('"""', "'''"):
                if line.startswith(q, i):
                    state, i = q, i + 3
                    break
            else:
                i += 1
        else:
            if line.startswith(state, i):
                state, i = None, i + 3
            else:
                i += 2 if (state == '"""' and line[i] == "\\") else 1
    return state


def _check_same_outside_grading(old: str, new: str) -> None:
    try:
        a, b = tomllib.loads(old), tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("grading", f"could not rewrite the section safely ({exc}); edit "
                        "[grading] by hand") from None
    a.pop("grading", None)
    b.pop("grading", None)
    if a != b:
        raise SpecError("grading", "could not rewrite the section without touching the "
                        "rest of the file; edit [grading] by hand")


def write_grading(toml_path: str | Path, measured: dict[str, tuple[float, float]],
                  old: tuple[Threshold, ...], comment: str = "") -> str:
    """Write the measured thresholds into ``toml_path``'s ``[grading]``; returns the new text."""
    path = Path(toml_path)
    text = path.read_text(encoding="utf-8")
    new = replace_grading(text, grading_section(merge_thresholds(old, measured), comment))
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new


def _num(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return f"{value:.1f}"
    return repr(float(value))
