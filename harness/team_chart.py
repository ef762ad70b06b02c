"""Each team's own "did I overfit the public board?" chart, for after the reveal.

Every on-time scored submission's public and private score in the order they were
sent, the final selection marked, and the best private score the team did *not*
select highlighted: the lesson of the course in the team's own numbers.

Pure: takes the submission dicts :meth:`harness.service.Harness.submissions` returns
(after the reveal, with private scores) and imports no server or database. Nothing
here decides who may see the chart: the caller serves it to its team, after the reveal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .shakeup import png_bytes


@dataclass(frozen=True)
class Point:
    """One scored, on-time submission as the chart shows it (scores as the team saw them)."""

    id: int
    submitted_at: str
    public: float
    private: float
    selected: bool      # ticked by the team
    final: bool         # counts on the private board: ticked, or filled in from the best public


@dataclass(frozen=True)
class TeamChart:
    """What a team's chart shows; build it with :func:`team_chart`.

    ``points`` are oldest first; ``best`` is the submission with the best private
    score (the earliest of equal ones, or a final one when a final one has it);
    ``late`` counts the scored submissions sent after the deadline, which never
    counted and are left out.
    """

    points: tuple[Point, ...]
    best: Point | None
    greater_is_better: bool
    late: int = 0

    @property
    def finals(self) -> tuple[Point, ...]:
        return tuple(p for p in self.points if p.final)

    @property
    def missed(self) -> Point | None:
        """The best-private submission when no final one scored as well, else None."""
        if self.best is None or self.best.final:
            return None
        return self.best

    def final_private(self) -> float | None:
        """The team's private board score: the best private score among its finals."""
        scores = [p.private for p in self.finals]
        if not scores:
            return None
        return max(scores) if self.greater_is_better else min(scores)

    def caption(self, decimals: int = 5) -> str:
        """One sentence on what the chart shows, e.g. "your best private score was #12
        (0.91000), not selected; your final selection scored 0.88000"."""
        if self.best is None:
            return "no scored submissions before the deadline"
        best = f"your best private score was #{self.best.id} ({self.best.private:.{decimals}f})"
        if self.missed is None:
            return f"{best}, and you selected it"
        final = self.final_private()
        tail = "" if final is None else f"; your final selection scored {final:.{decimals}f}"
        return f"{best}, not selected{tail}"


def team_chart(submissions: list[dict], *, greater_is_better: bool) -> TeamChart:
    """A team's chart from its submissions.

    Parameters
    ----------
    submissions : list of dict
        The team's submissions as :meth:`harness.service.Harness.submissions` returns
        them after the reveal (``id``, ``submitted_at``, ``status``, ``late``,
        ``public_score``, ``private_score``, ``selected``, ``final``), in any order.
    greater_is_better : bool
        The metric's direction.

    Returns
    -------
    TeamChart

    Raises
    ------
    ValueError
        When a scored submission has no private score (the list was read before the
        reveal, when private scores are hidden).

    Examples
    --------
    >>> subs = [{"id": 1, "submitted_at": "2026-01-01T10:00:00Z", "status": "scored",
    ...          "late": False, "public_score": 0.9, "private_score": 0.7,
    ...          "selected": True, "final": True},
    ...         {"id": 2, "submitted_at": "2026-01-02T10:00:00Z", "status": "scored",
    ...          "late": False, "public_score": 0.8, "private_score": 0.85,
    ...          "selected": False, "final": False}]
    >>> team_chart(subs, greater_is_better=True).caption(2)
    'your best private score was #2 (0.85), not selected; your final selection scored 0.70'
    """
    scored = [s for s in submissions if s.get("status") == "scored"]
    if any(s.get("private_score") is None for s in scored):
        raise ValueError("a scored submission has no private score: read the submissions "
                         "after the reveal (private scores are hidden before)")
    on_time = sorted((s for s in scored if not s.get("late")),
                     key=lambda s: (s["submitted_at"], s["id"]))
    points = tuple(Point(int(s["id"]), str(s["submitted_at"]), float(s["public_score"]),
                         float(s["private_score"]), bool(s.get("selected")),
                         bool(s.get("final"))) for s in on_time)
    sign = -1 if greater_is_better else 1
    # a final one with the best score counts as "selected it", else the earliest best
    best = min(points, key=lambda p: (sign * p.private, not p.final), default=None)
    return TeamChart(points, best, greater_is_better, late=len(scored) - len(on_time))


PUBLIC_COLOUR, PRIVATE_COLOUR, MISSED_COLOUR = "#4c72b0", "#d55e00", "#e6a000"


def team_chart_plot(chart: TeamChart, *, metric: str = "score", decimals: int = 5,
                    title: str = "", path: str | Path | None = None) -> bytes:
    """The team's chart as a PNG.

    Across: the team's submissions, oldest to newest (ticks name their ids, as on
    the submit page); up: the public score (blue) and the private score (orange) of
    each. Final selections are ringed; the best private score that was not selected
    is a gold star with its id. The caption (:meth:`TeamChart.caption`) is the subtitle.

    Parameters
    ----------
    chart : TeamChart
        From :func:`team_chart`.
    metric : str
        The metric's name, for the axis label.
    decimals : int
        The board's decimals, for the caption.
    title : str
        The plot's title.
    path : str or Path, optional
        Also write the PNG here.

    Returns
    -------
    bytes
        The PNG file's bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=(8, 4.8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    points = chart.points
    x = list(range(1, len(points) + 1))
    many = len(points) > 60
    style = {"linewidth": 1.2, "markersize": 3 if many else 6, "zorder": 3}
    ax.plot(x, [p.public for p in points], "o-", color=PUBLIC_COLOUR, label="public score",
            **style)
    ax.plot(x, [p.private for p in points], "s-", color=PRIVATE_COLOUR, label="private score",
            **style)
    finals = [(i, p) for i, p in zip(x, points) if p.final]
    if finals:
        # one ring on each board's point: the selection is judged on the private one
        ax.scatter([i for i, _ in finals] * 2,
                   [p.public for _, p in finals] + [p.private for _, p in finals],
                   s=260 if not many else 120, facecolors="none", edgecolors="black",
                   linewidths=1.6, zorder=4, label="your final selection")
    missed = chart.missed
    if missed is not None:
        at = points.index(missed) + 1
        ax.scatter([at], [missed.private], marker="*", s=420, color=MISSED_COLOUR,
                   edgecolors="black", linewidths=0.8, zorder=5,
                   label="best private, not selected")
        right = at > (len(points) + 1) / 2      # the label points inwards, never off the frame
        ax.annotate(f"#{missed.id}: best private, not selected", (at, missed.private),
                    xytext=(-12 if right else 12, 14), textcoords="offset points",
                    ha="right" if right else "left", fontsize=9, zorder=6,
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": MISSED_COLOUR},
                    arrowprops={"arrowstyle": "-", "color": MISSED_COLOUR})
    ids = [p.id for p in points]
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: f"#{ids[int(v) - 1]}" if v == int(v) and 1 <= v <= len(ids) else ""))
    if points:
        ax.set_xlim(0.4, len(points) + 0.6)
        values = [v for p in points for v in (p.public, p.private)]
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.12 or abs(hi) * 0.05 or 0.05
        ax.set_ylim(lo - pad, hi + pad * 1.8)     # headroom for the star's label
    better = "higher is better" if chart.greater_is_better else "lower is better"
    late = f" ({chart.late} late, not shown)" if chart.late else ""
    ax.set_xlabel(f"your submissions, oldest to newest{late}")
    ax.set_ylabel(f"{metric} ({better})")
    fig.suptitle(title or "Your submissions: public vs private", fontsize=12)
    caption = chart.caption(decimals)
    ax.set_title(caption[:1].upper() + caption[1:], fontsize=10)
    ax.grid(True, alpha=0.3)
    if points:
        ax.legend(loc="best", fontsize=8, framealpha=0.9, markerscale=0.7)
    return png_bytes(fig, path)
