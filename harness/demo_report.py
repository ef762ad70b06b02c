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


def print_boards(console, shake: Shakeup, strategies: dict[str, str], *,
                 title: str = "after the reveal (sorted by private rank)") -> None:
    """Public and private rank and score per team, sorted by private rank."""
    from rich.table import Table

    table = Table(title=title)
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


def gap_plot(redrawn, this_gap: float | None, path: Path, *, metric: str) -> None:
    """Histogram over the re-drawn classes of (validation users - tuners) mean private
    score, with zero and this class marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.hist(redrawn.gap, bins=30, color="#4c72b0", alpha=0.85)
    ax.axvline(0, color="#333333", linewidth=1, label="tuners = validation users")
    if this_gap is not None:
        ax.axvline(this_gap, color="#d73027", linestyle="--", linewidth=1.5,
                   label=f"this class ({this_gap:+.4f})")
    ax.set_xlabel(f"validation users' minus tuners' mean private {metric} "
                  "(right of 0: tuners behind)")
    ax.set_ylabel("re-drawn classes")
    ax.set_title(f"{redrawn.classes} re-drawn classes: tuners behind in "
                 f"{redrawn.tuners_behind_share:.0%}")
    ax.legend(fontsize=8)
    fig.savefig(path)


def write_demo_report(directory: Path, *, shake: Shakeup, summary: dict,
                      strategies: dict[str, str], students, public_before: dict,
                      redrawn, baselines: dict, labs: dict, seed: int, started: datetime,
                      metric: str, greater_is_better: bool) -> Path:
    """Write ``index.html`` with the boards, the shake-up plot, the re-drawn classes,
    learning curves and lab headlines (plots beside it); return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    slug = summary.get("competition", "")
    shakeup_plot(shake, metric=metric, greater_is_better=greater_is_better,
                 title=f"{slug}: public vs private {metric}", path=directory / "shakeup.png")
    comparison = summary["this_class"]["comparison"]
    sign = 1 if greater_is_better else -1
    gap_plot(redrawn, sign * comparison["private_gap"] if comparison else None,
             directory / "redrawn.png", metric=metric)
    curves = []
    for (name_slug, name), (result, png) in baselines.items():
        target = directory / f"curve-{name_slug}-{name}.png"
        if Path(png).is_file():
            shutil.copyfile(png, target)
        curves.append({"slug": name_slug, "name": name,
                       "png": target.name if Path(png).is_file() else None,
                       "validation": result.validation_score, "diagnosis": result.diagnosis})
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
        strategies=strategies, summary=summary, headline=summary["this_class"]["by_strategy"],
        students=students, public_before=public_before, curves=curves, labs=labs,
        lab_plots=lab_plots, seed=seed, started=started.isoformat(timespec="seconds"),
        comparison=comparison, metric=metric, slug=slug,
        risers=shake.risers(), fallers=shake.fallers())
    out = directory / "index.html"
    out.write_text(page)
    return out
