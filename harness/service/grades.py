"""The teacher's grade table: per team, or per roster member for an LMS.

Built from the boards (the private one read before the reveal too), the competition's
``[grading]`` thresholds, the roster and the copy check's file digests; the same table
whether the teacher asks on the server machine or over HTTP.
"""

from __future__ import annotations

from ..grading import grade, grade_rows, threshold_gaps

BY = ("team", "member")


def team_fields(thresholds) -> list[str]:
    """The columns of the per-team table (also its header when no team has a grade)."""
    return (["team", "public_score", "private_score", "public_rank", "private_rank"]
            + [f"{t.name}_{b}" for t in thresholds for b in ("public", "private")]
            + ["points_public", "points_private", "points", "copy_flag", "same_scores_as"])


MEMBER_FIELDS = ["member", "section", "team", "public_score", "private_score",
                 "passed_public", "passed_private", "points"]


def grade_table(harness, slug: str, by: str = "team") -> dict:
    """The grades of ``slug``.

    Parameters
    ----------
    harness : harness.service.Harness
    slug : str
    by : {"team", "member"}
        ``team``: one row per team (scores, ranks, 1/0 per threshold and board, points,
        copy flag). ``member``: one row per roster member (member, section, team, scores,
        the thresholds passed on each board, points), for an LMS.

    Returns
    -------
    dict
        ``rows``, ``fields`` (the columns, in order), ``thresholds`` (one line per gap
        between thresholds, next to the noise of a board score), ``graded`` (whether
        ``[grading]`` has thresholds), ``flagged`` (teams flagged by the copy check) and
        ``without_members`` (teams left out of a per-member table: they have no members).
    """
    if by not in BY:
        raise ValueError(f"by must be one of {BY}, not {by!r}")
    spec = harness.prepared(slug).spec
    public = harness.leaderboard(slug, "public")
    private = harness.leaderboard(slug, "private", teacher=True)
    roster = harness.teams.roster()
    graded = grade(public, private, spec.grading, spec.metric.greater_is_better,
                   decimals=spec.scoring.public_decimals,
                   roster=list(dict.fromkeys(r["team"] for r in roster)),
                   files=harness.entry_files(slug, "private"))
    team_rows = grade_rows(graded, spec.grading)
    gaps = threshold_gaps(spec.grading, greater_is_better=spec.metric.greater_is_better,
                          metric=spec.metric.name,
                          scored_rows={b["board"]: b["scored_rows"] for b in (public, private)
                                       if b.get("scored_rows")},
                          interval=lambda board, value: harness.boards.interval(
                              slug, board, value))
    passed = {g.team: g for g in graded}
    out = {"competition": slug, "by": by, "graded": bool(spec.grading),
           "thresholds": [g.describe() for g in gaps],
           "flagged": sum(g.copy_flag for g in graded), "without_members": []}
    if by == "team":
        for row in team_rows:
            g = passed[row["team"]]
            for board in ("public", "private"):
                row[f"passed_{board}"] = [t.name for t in spec.grading
                                          if t.name in getattr(g, f"passed_{board}")]
        return {**out, "rows": team_rows, "fields": team_fields(spec.grading)}
    by_team = {r["team"]: r for r in team_rows}
    rows = []
    for member in roster:
        if member["member"] is None:
            out["without_members"].append(member["team"])
            continue
        team = by_team[member["team"]]
        g = passed[member["team"]]
        rows.append({"member": member["member"], "section": member["section"] or "",
                     "team": member["team"], "public_score": team["public_score"],
                     "private_score": team["private_score"],
                     **{f"passed_{b}": ";".join(t.name for t in spec.grading
                                                if t.name in getattr(g, f"passed_{b}"))
                        for b in ("public", "private")},
                     "points": team["points"]})
    return {**out, "rows": rows, "fields": MEMBER_FIELDS}
