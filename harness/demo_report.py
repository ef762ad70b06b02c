"""The demo's outputs: both boards side by side in the terminal, and a static HTML report."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from .shakeup import Shakeup, shakeup_plot


def _arrow(change: int | None) -> str:
    if change is None:
        return "new"
    return f"▲{change}" if change > 0 else f"▼{-change}" if change < 0 else "="


def print_boards(console, shake: Shakeup, strategies: dict[str, str]) -> None:
    """Public and private rank and score per team, sorted by private rank."""
    from rich.table import Table

    table = Table(title="digits after the reveal (sorted by private rank)")
    for col in ("private", "public", "move", "team", "strategy", "public score",
                "private score"):
        table.add_column(col, justify="right" if col not in ("team", "strategy") else "left")
    for m in shake.moves:
        style = "green" if (m.change or 0) > 0 else "red" if (m.change or 0) < 0 else ""
        table.add_row(str(m.private_rank or "-"), str(m.public_rank or "-"), _arrow(m.change),
                      m.team, strategies.get(m.team, ""), _num(m.public_score),
                      _num(m.private_score), style=style)
    console.print(table)
    for b in shake.baselines:
        console.print(f"  baseline {b['team']:8} public {_num(b['public_score'])}  "
                      f"private {_num(b['private_score'])}")


def _num(x) -> str:
    return "-" if x is None else f"{x:.5f}"


def write_demo_report(directory: Path, *, shake: Shakeup, headline: dict,
                      strategies: dict[str, str], students, public_before: dict,
                      baselines: dict, labs: dict, seed: int, started: datetime,
                      comparison: dict | None = None) -> Path:
    """Write ``index.html`` with the boards, the shake-up plot, learning curves and lab
    headlines (plots beside it); return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shakeup_plot(shake, metric="accuracy", greater_is_better=True,
                 title="digits: public vs private accuracy", path=directory / "shakeup.png")
    curves = []
    for (slug, name), (result, png) in baselines.items():
        if Path(png).is_file():
            target = directory / f"curve-{slug}-{name}.png"
            shutil.copyfile(png, target)
            curves.append({"slug": slug, "name": name, "png": target.name,
                           "validation": result.validation_score,
                           "diagnosis": result.diagnosis})
        else:
            curves.append({"slug": slug, "name": name, "png": None,
                           "validation": result.validation_score,
                           "diagnosis": result.diagnosis})
    lab_plots = []
    for name, info in labs.items():
        for plot in info.get("plots", []):
            target = directory / f"lab-{name}-{Path(plot).name}"
            shutil.copyfile(plot, target)
            lab_plots.append(target.name)
    env = Environment(loader=PackageLoader("harness", "templates"),
                      autoescape=select_autoescape(["html"]))
    page = env.get_template("demo_report.html").render(
        moves=shake.moves, baseline_rows=shake.baselines, arrow=_arrow, num=_num,
        strategies=strategies, headline=headline, students=students,
        public_before=public_before, curves=curves, labs=labs, lab_plots=lab_plots,
        seed=seed, started=started.isoformat(timespec="seconds"), comparison=comparison,
        risers=shake.risers(), fallers=shake.fallers())
    out = directory / "index.html"
    out.write_text(page)
    return out
