"""The shake-up: how the final (private) standings differ from the public board.

Pure: takes the leaderboard dicts the service returns (``{"rows": [{"rank", "team",
"score", "baseline", ...}]}``) and imports no server or database, so the pages and the
demo's static report share it.

Ranks here are positions among teams only: baselines are drawn as reference lines and
never take a team's place, so a baseline sitting between two teams does not count as a
rank change.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Move:
    """One team's place on both boards.

    ``change`` is ``public_rank - private_rank``: positive when the team rose on the
    private board, negative when it fell, None when it is missing from a board.
    """

    team: str
    public_rank: int | None
    private_rank: int | None
    public_score: float | None
    private_score: float | None

    @property
    def change(self) -> int | None:
        if self.public_rank is None or self.private_rank is None:
            return None
        return self.public_rank - self.private_rank


@dataclass(frozen=True)
class Shakeup:
    """Every team's move, sorted by private rank (teams missing there come last)."""

    moves: tuple[Move, ...]
    baselines: tuple[dict, ...]    # {"team", "public_score", "private_score"}

    def risers(self, n: int = 3) -> list[Move]:
        """The ``n`` teams that climbed the most (only teams that did climb).

        Ranks here are shared by ties (see :meth:`settled`), so teams with identical
        scores that merely swapped places are no risers.
        """
        up = [m for m in self.settled() if m.change is not None and m.change > 0]
        return sorted(up, key=lambda m: (-m.change, m.private_rank, m.team))[:n]

    def fallers(self, n: int = 3) -> list[Move]:
        """The ``n`` teams that dropped the most (only teams that did drop; ties as in
        :meth:`risers`)."""
        down = [m for m in self.settled() if m.change is not None and m.change < 0]
        return sorted(down, key=lambda m: (m.change, m.private_rank, m.team))[:n]

    def settled(self) -> list[Move]:
        """The moves with tied ranks: teams with identical scores on a board share the
        best of their places there (competition ranking, "1224").

        A board orders equal scores by submission time, so without this a group of teams
        with the same file would show moves among themselves that say nothing.
        """
        def shared(rank, score) -> dict[float, int]:
            best: dict[float, int] = {}
            for m in self.moves:
                if rank(m) is not None and score(m) is not None:
                    best[score(m)] = min(best.get(score(m), rank(m)), rank(m))
            return best

        pub = shared(lambda m: m.public_rank, lambda m: m.public_score)
        prv = shared(lambda m: m.private_rank, lambda m: m.private_score)
        return [replace(m, public_rank=pub.get(m.public_score, m.public_rank)
                        if m.public_rank is not None else None,
                        private_rank=prv.get(m.private_score, m.private_rank)
                        if m.private_rank is not None else None) for m in self.moves]


def _team_places(board: dict) -> dict[str, tuple[int, float | None]]:
    """team -> (rank among teams, score), in the board's order (which breaks ties)."""
    places: dict[str, tuple[int, float | None]] = {}
    for row in board.get("rows", []):
        if row.get("baseline"):
            continue
        places.setdefault(row["team"], (len(places) + 1, row.get("score")))
    return places


def _baseline_scores(board: dict) -> dict[str, float | None]:
    return {row["team"]: row.get("score") for row in board.get("rows", []) if row.get("baseline")}


def compute_shakeup(public: dict, private: dict) -> Shakeup:
    """Each team's public and private rank and the change between them.

    Parameters
    ----------
    public, private : dict
        Leaderboards as :meth:`harness.service.Harness.leaderboard` returns them; rows
        in rank order, baseline rows marked ``baseline=True``.

    Returns
    -------
    Shakeup
        Moves sorted by private rank, then the teams only on the public board.

    Examples
    --------
    >>> pub = {"rows": [{"team": "a", "score": 0.9}, {"team": "b", "score": 0.8}]}
    >>> prv = {"rows": [{"team": "b", "score": 0.85}, {"team": "a", "score": 0.7}]}
    >>> [(m.team, m.change) for m in compute_shakeup(pub, prv).moves]
    [('b', 1), ('a', -1)]
    """
    pub, prv = _team_places(public), _team_places(private)
    teams = sorted(set(pub) | set(prv),
                   key=lambda t: (prv[t][0] if t in prv else len(prv) + pub[t][0]))
    moves = tuple(Move(team=t,
                       public_rank=pub[t][0] if t in pub else None,
                       private_rank=prv[t][0] if t in prv else None,
                       public_score=pub[t][1] if t in pub else None,
                       private_score=prv[t][1] if t in prv else None) for t in teams)
    pub_base, prv_base = _baseline_scores(public), _baseline_scores(private)
    baselines = tuple({"team": name, "public_score": pub_base.get(name),
                       "private_score": prv_base.get(name)}
                      for name in list(pub_base) + [n for n in prv_base if n not in pub_base])
    return Shakeup(moves, baselines)


def png_bytes(fig, path: str | Path | None = None) -> bytes:
    """A matplotlib figure as PNG bytes, also written to ``path`` when given."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


LABEL_ALL_UP_TO = 40     # more points than this and only the notable ones get a name
TOP_LABELS = 5           # named at scale: this many of the private top, risers and fallers


def _point_kind(group: list[Move]) -> str:
    """The colour of a point that ``group`` (teams with equal scores) shares."""
    if len(group) > 1:
        return "same" if all(not g.change for g in group) else "shared"
    change = group[0].change
    return "same" if not change else ("up" if change > 0 else "down")


def _labelled(at: dict[tuple, list[Move]], crowded: bool) -> list:
    """The points that get a name: all of them, or at scale the private board's top and
    the biggest moves each way (a thousand names would be a grey smear)."""
    if not crowded:
        return list(at.items())
    point_of = {m.team: xy for xy, group in at.items() for m in group}
    moved = [m for group in at.values() for m in group if m.change]
    notable = sorted((m for g in at.values() for m in g if m.private_rank is not None),
                     key=lambda m: m.private_rank)[:TOP_LABELS]
    notable += sorted((m for m in moved if m.change > 0), key=lambda m: -m.change)[:TOP_LABELS]
    notable += sorted((m for m in moved if m.change < 0), key=lambda m: m.change)[:TOP_LABELS]
    keys = list(dict.fromkeys(point_of[m.team] for m in notable))
    return [(k, at[k]) for k in keys]


def shakeup_plot(shakeup: Shakeup, *, metric: str = "score", greater_is_better: bool = True,
                 title: str = "", path: str | Path | None = None) -> bytes:
    """The public-vs-private score plot as a PNG.

    Each team is a point (public score across, private score up), coloured by whether it
    rose or fell; the diagonal is "same score on both boards"; each baseline is a pair of
    dashed lines at its public (vertical) and private (horizontal) score, so the teams
    that beat it on each board sit on the better side of its lines. The axes frame the
    teams; the legend gives every baseline's (public / private) score, also one that lies
    outside the frame.

    Parameters
    ----------
    shakeup : Shakeup
        From :func:`compute_shakeup`.
    metric : str
        The metric's name, for the axis labels.
    greater_is_better : bool
        The metric's direction (said in the axis labels).
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

    fig = Figure(figsize=(8, 6.4), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    colours = {"up": "#1a9850", "down": "#d73027", "same": "#4c72b0", "shared": "#8c6bb1"}
    points = [m for m in shakeup.moves
              if m.public_score is not None and m.private_score is not None]
    # the axes frame the teams; a baseline far below them (a constant model) would squash
    # them into a corner, so such a line stays off-plot and is named in the legend
    values = [v for m in points for v in (m.public_score, m.private_score)]
    if not values:
        values = [v for b in shakeup.baselines for v in (b["public_score"], b["private_score"])
                  if v is not None]
    middle = (min(m.public_score for m in points) + max(m.public_score for m in points)) / 2 \
        if points else 0.0
    # teams with the same (public, private) pair share a point: one label, not a smudge
    at: dict[tuple, list[Move]] = {}
    for m in points:
        at.setdefault((m.public_score, m.private_score), []).append(m)
    # one scatter call per colour: a call per point took 7 s at 1,000 teams
    by_kind: dict[str, list[tuple[float, float, int]]] = {}
    for (x, y), group in at.items():
        by_kind.setdefault(_point_kind(group), []).append((x, y, len(group)))
    crowded = len(at) > LABEL_ALL_UP_TO
    base = 70 if not crowded else max(12, 70 * (LABEL_ALL_UP_TO / len(at)) ** 0.5)
    for kind, pts in by_kind.items():
        ax.scatter([p[0] for p in pts], [p[1] for p in pts],
                   s=[base + 25 * (p[2] - 1) for p in pts], color=colours[kind], zorder=3,
                   edgecolor="white", linewidth=0.8 if not crowded else 0.3,
                   alpha=1.0 if not crowded else 0.75)
    for (x, y), group in _labelled(at, crowded):
        m = group[0]
        if len(group) == 1:
            arrow = "" if not m.change else (f" ▲{m.change}" if m.change > 0
                                             else f" ▼{-m.change}")
            text = f"{m.team}{arrow}"
        else:
            text = f"{len(group)} teams, same scores"
        right = x > middle     # labels point inwards so none leaves the frame
        ax.annotate(text, (x, y), fontsize=9 if not crowded else 8,
                    xytext=(-6 if right else 6, 4), textcoords="offset points",
                    ha="right" if right else "left", color="#222222", zorder=4,
                    bbox=None if not crowded else
                    {"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.75, "lw": 0})
    if values:
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 0.05
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="#999999", linewidth=1, zorder=1,
                label="same score on both boards")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    palette = ["#7b3294", "#e08214", "#008837", "#2166ac", "#b2182b", "#555555"]
    for i, b in enumerate(shakeup.baselines):
        colour = palette[i % len(palette)]
        if b["public_score"] is not None:
            ax.axvline(b["public_score"], color=colour, linestyle="--", linewidth=1.2, zorder=2)
        if b["private_score"] is not None:
            ax.axhline(b["private_score"], color=colour, linestyle="--", linewidth=1.2, zorder=2)
        shown = " / ".join("–" if v is None else f"{v:.4g}"
                           for v in (b["public_score"], b["private_score"]))
        ax.plot([], [], color=colour, linestyle="--", label=f"baseline {b['team']} ({shown})")
    better = "higher is better" if greater_is_better else "lower is better"
    ax.set_xlabel(f"public {metric} ({better})")
    ax.set_ylabel(f"private {metric} ({better})")
    heading = title or "Public vs private score"
    if crowded:
        heading += (f"\n{len(points)} teams; named: the private top {TOP_LABELS} and the "
                    f"{TOP_LABELS} biggest moves each way")
    ax.set_title(heading, fontsize=10 if crowded else None)
    ax.grid(True, alpha=0.3)
    shown_kinds = [("up", "rose"), ("down", "fell"), ("same", "kept its place")]
    if any(len(g) > 1 and any(m.change for m in g) for g in at.values()):
        shown_kinds.append(("shared", "several teams, moves differ"))
    for kind, label in shown_kinds:
        ax.scatter([], [], color=colours[kind], label=label)
    # "best" searches every point for a free corner: seconds at course scale
    ax.legend(loc="best" if not crowded else "lower right", fontsize=8, framealpha=0.85)
    return png_bytes(fig, path)
