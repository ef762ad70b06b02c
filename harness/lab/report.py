"""A lab's report: verdict lines, tables of numbers and plots, as Markdown and HTML.

Every lab writes one with :func:`write_report` and prints where it went.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

DEFAULT_ROOT = Path("submissions")


def lab_dir(slug: str | None = None, out: str | Path | None = None) -> Path:
    """Where a lab writes: ``out`` if given, else ``submissions/<slug>/lab`` or ``submissions/lab``."""
    if out is not None:
        d = Path(out)
    elif slug:
        d = DEFAULT_ROOT / slug / "lab"
    else:
        d = DEFAULT_ROOT / "lab"
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass
class Report:
    """What a lab found.

    Parameters
    ----------
    name : str
        File stem, e.g. ``"overfit"`` -> ``overfit.md`` and ``overfit.html``.
    title : str
    verdicts : list of str
        Plain sentences stating what the numbers show.
    tables : dict of str -> DataFrame
        Named tables of numbers.
    plots : list of Path
        PNG files (written beside the report).
    numbers : dict
        Headline numbers, also written as ``<name>.json`` for scripts and tests.
    settings : dict
        The settings the lab ran with (seeds included), so a run can be repeated.
    """

    name: str
    title: str
    verdicts: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def write_report(report: Report, directory: Path) -> Path:
    """Write ``<name>.md``, ``<name>.html`` and ``<name>.json``; return the HTML path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    md = [f"# {report.title}", ""]
    md += [f"- {v}" for v in report.verdicts] + [""]
    if report.settings:
        md += ["Settings: " + ", ".join(f"{k}={v}" for k, v in report.settings.items()), ""]
    for name, table in report.tables.items():
        md += [f"## {name}", "", table.to_markdown(index=False) if _has_tabulate()
               else "```\n" + table.to_string(index=False) + "\n```", ""]
    for plot in report.plots:
        md += [f"![{Path(plot).stem}]({Path(plot).name})", ""]
    (directory / f"{report.name}.md").write_text("\n".join(md))

    body = [f"<h1>{html.escape(report.title)}</h1>", "<ul>"]
    body += [f"<li>{html.escape(v)}</li>" for v in report.verdicts] + ["</ul>"]
    if report.settings:
        body.append("<p><small>Settings: " + html.escape(", ".join(
            f"{k}={v}" for k, v in report.settings.items())) + "</small></p>")
    for name, table in report.tables.items():
        body += [f"<h2>{html.escape(name)}</h2>", table.to_html(index=False, float_format=_fmt)]
    for plot in report.plots:
        body.append(f'<p><img src="{html.escape(Path(plot).name)}" style="max-width:100%"></p>')
    page = ("<!doctype html><meta charset='utf-8'><title>" + html.escape(report.title)
            + "</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
            "</style>" + "\n".join(body))
    out = directory / f"{report.name}.html"
    out.write_text(page)
    (directory / f"{report.name}.json").write_text(json.dumps(
        {"title": report.title, "verdicts": report.verdicts, "numbers": report.numbers,
         "settings": report.settings}, indent=2, default=float))
    return out


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401  (pandas.to_markdown needs it)
    except ImportError:
        return False
    return True
