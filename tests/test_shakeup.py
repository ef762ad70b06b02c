"""The shake-up: rank changes between the public and the private board, and its plot."""

from __future__ import annotations

import io

import pytest

from harness.shakeup import compute_shakeup, shakeup_plot


def board(*rows):
    """A leaderboard dict from (team, score[, baseline]) tuples in rank order."""
    out, rank = [], 0
    for team, score, *flag in rows:
        baseline = bool(flag and flag[0])
        rank += 0 if baseline else 1
        out.append({"rank": None if baseline else rank, "team": team, "score": score,
                    "baseline": baseline})
    return {"rows": out}


PUBLIC = board(("ada", 0.95), ("bob", 0.93), ("logreg", 0.92, True), ("cy", 0.90),
               ("dee", 0.85), ("constant", 0.10, True))
PRIVATE = board(("cy", 0.94), ("logreg", 0.925, True), ("bob", 0.92), ("dee", 0.91),
                ("ada", 0.80), ("constant", 0.11, True))


def test_moves_are_sorted_by_private_rank_and_ignore_baselines():
    shake = compute_shakeup(PUBLIC, PRIVATE)
    got = [(m.team, m.public_rank, m.private_rank, m.change) for m in shake.moves]
    # logreg sits between cy and bob on the private board but takes no team's place
    assert got == [("cy", 3, 1, 2), ("bob", 2, 2, 0), ("dee", 4, 3, 1), ("ada", 1, 4, -3)]
    assert [b["team"] for b in shake.baselines] == ["logreg", "constant"]
    assert shake.baselines[0] == {"team": "logreg", "public_score": 0.92, "private_score": 0.925}


def test_risers_and_fallers():
    shake = compute_shakeup(PUBLIC, PRIVATE)
    assert [(m.team, m.change) for m in shake.risers()] == [("cy", 2), ("dee", 1)]
    assert [(m.team, m.change) for m in shake.fallers()] == [("ada", -3)]
    assert [m.team for m in shake.risers(1)] == ["cy"]


def test_a_team_missing_from_the_private_board_has_no_change_and_comes_last():
    shake = compute_shakeup(board(("ada", 0.9), ("bob", 0.8)), board(("bob", 0.85)))
    assert [(m.team, m.private_rank, m.change) for m in shake.moves] == [
        ("bob", 1, 1), ("ada", None, None)]
    assert [m.team for m in shake.risers()] == ["bob"]
    assert shake.fallers() == []


def test_empty_boards():
    shake = compute_shakeup({"rows": []}, {"rows": []})
    assert shake.moves == () and shake.risers() == [] and shake.fallers() == []
    assert shakeup_plot(shake).startswith(b"\x89PNG")


@pytest.mark.parametrize("greater_is_better", [True, False])
def test_plot_is_a_png_and_is_written(tmp_path, greater_is_better):
    from PIL import Image

    path = tmp_path / "shake.png"
    png = shakeup_plot(compute_shakeup(PUBLIC, PRIVATE), metric="accuracy",
                       greater_is_better=greater_is_better, title="digits", path=path)
    assert path.read_bytes() == png
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > 600 and image.size[1] > 500


def test_plot_draws_each_baseline_as_lines():
    """Each baseline is a vertical line at its public and a horizontal one at its private score."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    captured = {}
    original = Figure.savefig

    def spy(self, *args, **kwargs):
        captured["figure"] = self
        return original(self, *args, **kwargs)

    Figure.savefig = spy
    try:
        shakeup_plot(compute_shakeup(PUBLIC, PRIVATE))
    finally:
        Figure.savefig = original
    ax = captured["figure"].axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"
              and len(line.get_xdata()) == 2]
    vertical = {float(line.get_xdata()[0]) for line in dashed
                if line.get_xdata()[0] == line.get_xdata()[1]}
    horizontal = {float(line.get_ydata()[0]) for line in dashed
                  if line.get_ydata()[0] == line.get_ydata()[1]}
    assert {0.92, 0.10} <= vertical and {0.925, 0.11} <= horizontal
    labels = ax.get_legend_handles_labels()[1]
    assert any("logreg" in label and "0.92 / 0.925" in label for label in labels)
    # the frame holds the teams, not the far-away constant baseline
    assert ax.get_xlim()[0] > 0.5


def test_at_course_scale_only_the_notable_teams_are_named():
    """1,000 names would be a grey smear: the private top and the biggest moves get one."""
    import random

    from harness.shakeup import TOP_LABELS, _labelled

    rng = random.Random(1)
    scores = [(f"t{i}", rng.random()) for i in range(1000)]
    pub = board(*sorted(scores, key=lambda r: -r[1]))
    prv = board(*sorted(((t, s + rng.gauss(0, 0.05)) for t, s in scores), key=lambda r: -r[1]))
    shake = compute_shakeup(pub, prv)
    at = {}
    for m in shake.moves:
        at.setdefault((m.public_score, m.private_score), []).append(m)
    named = {m.team for _, group in _labelled(at, crowded=True) for m in group}
    assert len(named) <= 3 * TOP_LABELS
    assert {m.team for m in shake.moves[:TOP_LABELS]} <= named          # the private top
    assert {m.team for m in shake.risers(TOP_LABELS)} <= named
    assert {m.team for m in shake.fallers(TOP_LABELS)} <= named
    assert shakeup_plot(shake).startswith(b"\x89PNG")


def test_risers_and_fallers_ignore_moves_among_teams_with_identical_scores():
    # ada and bob hold the same file: equal scores on both boards, ordered differently by
    # the boards' tie-breaks; their swap is no move, but together they fell below cy
    public = board(("ada", 0.90), ("bob", 0.90), ("cy", 0.80), ("dee", 0.70))
    private = board(("cy", 0.95), ("bob", 0.85), ("ada", 0.85), ("dee", 0.60))
    shake = compute_shakeup(public, private)
    assert [(m.team, m.change) for m in shake.moves] == [
        ("cy", 2), ("bob", 0), ("ada", -2), ("dee", 0)]            # the boards' own places
    assert [(m.team, m.public_rank, m.private_rank, m.change) for m in shake.risers()] == [
        ("cy", 3, 1, 2)]
    assert [(m.team, m.public_rank, m.private_rank, m.change) for m in shake.fallers()] == [
        ("ada", 1, 2, -1), ("bob", 1, 2, -1)]


def test_a_tie_on_one_board_only_is_no_move_within_the_tie():
    public = board(("ada", 0.90), ("bob", 0.90), ("cy", 0.80))
    private = board(("bob", 0.88), ("ada", 0.87), ("cy", 0.70))
    shake = compute_shakeup(public, private)
    assert shake.risers() == [] and [m.team for m in shake.fallers()] == ["ada"]
