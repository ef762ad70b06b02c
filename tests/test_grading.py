"""Grades from hand-made boards: thresholds per board, points, the copy check."""

from harness.grading import grade, grade_rows, passes
from harness.spec import Threshold

THRESHOLDS = (Threshold("simple", 0.80, 0.80), Threshold("strong", 0.95, 0.94, 2.0, 3.0),
              Threshold("private-only", None, 0.90))


def board(*rows, name="public"):
    return {"board": name, "rows": [
        {"rank": i + 1, "team": t, "score": s, "baseline": b} for i, (t, s, b) in enumerate(rows)]}


PUBLIC = board(("ann", 0.96, False), ("strong", 0.95, True), ("ben", 0.95, False),
               ("cat", 0.96, False), ("dan", 0.70, False))
PRIVATE = board(("ann", 0.93, False), ("cat", 0.93, False), ("strong", 0.94, True),
                ("ben", 0.945, False), ("dan", 0.81, False), name="private")


def test_thresholds_points_and_copies():
    grades = {g.team: g for g in grade(PUBLIC, PRIVATE, THRESHOLDS, True)}
    assert set(grades) == {"ann", "ben", "cat", "dan"}           # baselines are not teams
    ann, ben, dan = grades["ann"], grades["ben"], grades["dan"]
    assert ann.passed_public == ("simple", "strong")
    assert ann.passed_private == ("simple", "private-only")      # 0.93 < strong's 0.94
    assert (ann.points_public, ann.points_private, ann.points) == (3.0, 2.0, 5.0)
    assert ben.passed_public == ("simple", "strong")             # a tie passes
    assert ben.passed_private == ("simple", "strong", "private-only")
    assert ben.points == 3.0 + 5.0
    assert dan.passed_public == () and dan.passed_private == ("simple",)
    assert ann.same_scores_as == ("cat",) and grades["cat"].same_scores_as == ("ann",)
    assert not ben.copy_flag and not dan.copy_flag


def test_lower_is_better_and_rounding():
    assert passes(0.10, 0.12, False) and not passes(0.13, 0.12, False)
    assert not passes(0.949996, 0.95, True)
    assert passes(0.949996, 0.95, True, decimals=5)
    assert not passes(None, 0.5, True) and not passes(0.9, None, True)


def test_rows_and_missing_private():
    grades = grade(PUBLIC, None, THRESHOLDS, True)
    rows = {r["team"]: r for r in grade_rows(grades, THRESHOLDS)}
    assert rows["ann"]["simple_public"] == 1 and rows["ann"]["simple_private"] == 0
    assert rows["ann"]["private-only_public"] is None            # not graded on that board
    assert rows["ann"]["copy_flag"] == 0                         # no pair without a private
    assert list(rows["dan"])[-5:] == ["points_public", "points_private", "points",
                                      "copy_flag", "same_scores_as"]


def test_roster_teams_without_entries_get_a_row():
    from harness.grading import grade
    from harness.spec import Threshold

    board = {"rows": [{"rank": 1, "team": "a", "score": 0.9, "baseline": False}]}
    out = grade(board, board, (Threshold("simple", 0.5, 0.5),), True, roster=["a", "quiet"])
    quiet = next(g for g in out if g.team == "quiet")
    assert quiet.public_score is None and quiet.points_public == 0 and not quiet.same_scores_as
    assert [g.team for g in out] == ["a", "quiet"]


def test_with_files_only_the_same_file_is_a_copy():
    """Two different files can tie on both scores on a small public part: with the files
    known, only teams whose entries are the same file are flagged."""
    files = {"ann": "sha-a", "cat": "sha-c", "ben": "sha-b", "dan": "sha-b"}
    grades = {g.team: g for g in grade(PUBLIC, PRIVATE, THRESHOLDS, True, files=files)}
    assert not grades["ann"].copy_flag and not grades["cat"].copy_flag   # same scores only
    assert grades["ben"].same_scores_as == ("dan",) and grades["dan"].same_scores_as == ("ben",)
    no_digest = {g.team: g for g in grade(PUBLIC, PRIVATE, THRESHOLDS, True, files={})}
    assert not any(g.copy_flag for g in no_digest.values())
