"""Course grades from the two leaderboards and the competition's thresholds (pure).

A team passes a threshold on a board when its score there is at least as
good as the threshold (ties pass: beating a baseline means matching it or
better), compared at the board's shown precision when ``decimals`` is given.
Each passed threshold earns its ``points_public`` / ``points_private``
(default 1 each). Baseline rows are not teams and get no grade.

The copy check flags teams whose board entries are the same file, when the
caller knows the files (``files``: a digest per team, as `harness grades` reads
them from the archive); without files it falls back to an identical (public,
private) score pair, which two different files can share by chance on a small
public part.

How far apart the thresholds are, next to how uncertain a board score is
(:func:`threshold_gaps`): for accuracy, in test rows (one row is ``1/n`` of
accuracy on a board of ``n`` rows); for every metric, in half-widths of the 95%
interval at the easier threshold. Two thresholds closer than an interval's
half-width grade the luck of the split as much as the model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .spec import Threshold


@dataclass(frozen=True)
class TeamGrade:
    """One team's scores, passed thresholds and points."""

    team: str
    public_score: float | None
    private_score: float | None
    public_rank: int | None
    private_rank: int | None
    passed_public: tuple[str, ...]
    passed_private: tuple[str, ...]
    points_public: float
    points_private: float
    same_scores_as: tuple[str, ...] = ()

    @property
    def points(self) -> float:
        return self.points_public + self.points_private

    @property
    def copy_flag(self) -> bool:
        return bool(self.same_scores_as)


def passes(score: float | None, threshold: float | None, greater_is_better: bool,
           decimals: int | None = None) -> bool:
    """True when ``score`` is at least as good as ``threshold`` (False if either is None)."""
    if score is None or threshold is None:
        return False
    if decimals is not None:
        score, threshold = round(score, decimals), round(threshold, decimals)
    return score >= threshold if greater_is_better else score <= threshold


def _team_rows(board: dict | None) -> dict[str, dict]:
    return {r["team"]: r for r in (board or {}).get("rows", []) if not r.get("baseline")}


def grade(public_board: dict, private_board: dict | None, thresholds: tuple[Threshold, ...],
          greater_is_better: bool, decimals: int | None = None,
          roster: Iterable[str] = (),
          files: Mapping[str, str | None] | None = None) -> list[TeamGrade]:
    """Grade every team on the two boards.

    Parameters
    ----------
    public_board, private_board : dict
        Leaderboards as :meth:`harness.service.Harness.leaderboard` returns them
        (``{"rows": [{"rank", "team", "score", "baseline", ...}]}``); the private
        one may be None (not graded on it).
    thresholds : tuple of Threshold
        The competition's ``[grading]`` table.
    greater_is_better : bool
        The metric's direction.
    decimals : int, optional
        Compare scores and thresholds rounded to this many decimals (the
        board's ``public_decimals``).
    roster : iterable of str, optional
        Every team of the course: those on neither board are graded too (no
        score, no points), so the export has a row per student team.
    files : mapping of team to file digest, optional
        The digest of each team's board entry file. When given, the copy check
        flags only teams whose entries are the same file (a team without a
        digest is never flagged); else teams with the same score pair.

    Returns
    -------
    list of TeamGrade
        In public-board order, then teams only on the private board, then the
        rest of the roster.
    """
    pub, priv = _team_rows(public_board), _team_rows(private_board)
    teams = list(pub) + [t for t in priv if t not in pub]
    teams += [t for t in roster if t not in pub and t not in priv]
    grades = []
    for team in teams:
        p_row, q_row = pub.get(team, {}), priv.get(team, {})
        p_score, q_score = p_row.get("score"), q_row.get("score")
        passed_p = tuple(t.name for t in thresholds
                         if passes(p_score, t.public, greater_is_better, decimals))
        passed_q = tuple(t.name for t in thresholds
                         if passes(q_score, t.private, greater_is_better, decimals))
        by_name = {t.name: t for t in thresholds}
        grades.append(TeamGrade(
            team, p_score, q_score, p_row.get("rank"), q_row.get("rank"), passed_p, passed_q,
            float(sum(by_name[n].points_public for n in passed_p)),
            float(sum(by_name[n].points_private for n in passed_q))))
    return _flag_copies(grades, files)


def _flag_copies(grades: list[TeamGrade],
                 files: Mapping[str, str | None] | None = None) -> list[TeamGrade]:
    """Mark teams whose entries are the same file (or, without files, the same scores)."""
    def sameness(g: TeamGrade):
        if files is not None:
            return files.get(g.team)
        if g.public_score is None or g.private_score is None:
            return None
        return (g.public_score, g.private_score)

    groups: dict = defaultdict(list)
    for g in grades:
        if sameness(g) is not None:
            groups[sameness(g)].append(g.team)
    out = []
    for g in grades:
        same = groups.get(sameness(g), []) if sameness(g) is not None else []
        others = tuple(t for t in same if t != g.team)
        out.append(TeamGrade(**{**g.__dict__, "same_scores_as": others}) if others else g)
    return out


def grade_rows(grades: list[TeamGrade], thresholds: tuple[Threshold, ...]) -> list[dict]:
    """Flat rows for a CSV: scores, ranks, 1/0 per threshold per board, points, copy flag.

    A threshold without a value on a board gets an empty cell there.
    """
    rows = []
    for g in grades:
        row = {"team": g.team, "public_score": g.public_score, "private_score": g.private_score,
               "public_rank": g.public_rank, "private_rank": g.private_rank}
        for t in thresholds:
            row[f"{t.name}_public"] = None if t.public is None else int(t.name in g.passed_public)
            row[f"{t.name}_private"] = (None if t.private is None
                                        else int(t.name in g.passed_private))
        row |= {"points_public": g.points_public, "points_private": g.points_private,
                "points": g.points, "copy_flag": int(g.copy_flag),
                "same_scores_as": ";".join(g.same_scores_as)}
        rows.append(row)
    return rows


@dataclass(frozen=True)
class ThresholdGap:
    """How far one threshold is above the next easier one on a board.

    ``difference`` is in metric units (positive: ``upper`` is the harder one); ``rows``
    is that difference in test rows (accuracy only, else None); ``half_width`` is the
    95% interval's half-width of a score at ``lower`` (None when unknown).
    """

    board: str
    lower: str
    upper: str
    lower_value: float
    upper_value: float
    n: int
    rows: float | None
    half_width: float | None

    @property
    def difference(self) -> float:
        return abs(self.upper_value - self.lower_value)

    @property
    def widths(self) -> float | None:
        """The difference in 95% half-widths (how clearly a board tells them apart)."""
        if not self.half_width:
            return None
        return self.difference / self.half_width

    def describe(self) -> str:
        """One line for the teacher, e.g. ``public, 217 rows: simple -> strong: 32.6 rows
        apart, 2.9 x the 95% ±``."""
        apart = f"{self.rows:.1f} rows apart" if self.rows is not None \
            else f"{self.difference:.4g} apart"
        widths = self.widths
        noise = f", {widths:.1f} x the 95% ±" if widths is not None else ""
        return (f"{self.board}, {self.n} rows: {self.lower} -> {self.upper}: "
                f"{apart}{noise}")


def threshold_gaps(thresholds: tuple[Threshold, ...], *, greater_is_better: bool,
                   metric: str, scored_rows: dict[str, int],
                   interval: Callable[[str, float], list | None] | None = None
                   ) -> list[ThresholdGap]:
    """How many rows separate each threshold from the next easier one, per board.

    Parameters
    ----------
    thresholds : tuple of Threshold
        The competition's ``[grading]`` table.
    greater_is_better : bool
        The metric's direction.
    metric : str
        The metric's name: for ``accuracy`` the gaps are also counted in rows.
    scored_rows : dict
        ``{"public": n, "private": n}``: the rows each board scores (a board left out
        gets no gaps).
    interval : callable, optional
        ``interval(board, score) -> [low, high] or None``: a board's 95% interval of a
        shown score (:meth:`harness.service.boards.Boards.interval`).

    Returns
    -------
    list of ThresholdGap
        Per board, from the easiest threshold up.
    """
    out = []
    for board, n in scored_rows.items():
        values = sorted(((getattr(t, board), t.name) for t in thresholds
                         if getattr(t, board) is not None),
                        reverse=not greater_is_better)
        for (low, low_name), (high, high_name) in zip(values, values[1:]):
            found = interval(board, low) if interval is not None else None
            half = (found[1] - found[0]) / 2 if found else None
            out.append(ThresholdGap(board, low_name, high_name, low, high, n,
                                    abs(high - low) * n if metric == "accuracy" else None,
                                    half))
    return out
