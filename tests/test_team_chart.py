"""A team's own public-vs-private chart (harness/team_chart.py): what it marks and says."""

import struct
import subprocess
import sys

import pytest

from harness.team_chart import team_chart, team_chart_plot


def sub(id, public, private, *, selected=False, final=None, late=False, status="scored",
        day=None):
    return {"id": id, "submitted_at": f"2026-03-{day or id:02d}T09:00:00+00:00",
            "status": status, "late": late, "public_score": public, "private_score": private,
            "selected": selected, "final": selected if final is None else final}


def test_the_best_private_file_not_selected_is_named():
    subs = [sub(3, 0.91, 0.80, selected=True), sub(1, 0.85, 0.86), sub(2, 0.88, 0.84),
            sub(4, 0.90, 0.81, final=True)]            # filled in from the best public
    chart = team_chart(subs, greater_is_better=True)
    assert [p.id for p in chart.points] == [1, 2, 3, 4]          # oldest first
    assert chart.missed.id == 1 and [p.id for p in chart.finals] == [3, 4]
    assert chart.final_private() == 0.81
    assert chart.caption(3) == ("your best private score was #1 (0.860), not selected; "
                                "your final selection scored 0.810")


def test_a_selected_best_says_so_also_on_a_tie():
    subs = [sub(1, 0.8, 0.9), sub(2, 0.9, 0.9, selected=True)]
    chart = team_chart(subs, greater_is_better=True)
    assert chart.missed is None and chart.best.id == 2
    assert chart.caption(2) == "your best private score was #2 (0.90), and you selected it"
    # two equal best scores, neither selected: the earlier one is named
    chart = team_chart([sub(5, 0.8, 0.9), sub(6, 0.7, 0.9), sub(7, 0.95, 0.6, selected=True)],
                       greater_is_better=True)
    assert chart.missed.id == 5


def test_lower_is_better():
    subs = [sub(1, 0.30, 0.25), sub(2, 0.20, 0.35, selected=True)]
    chart = team_chart(subs, greater_is_better=False)
    assert chart.missed.id == 1 and chart.final_private() == 0.35


def test_errors_and_late_files_are_left_out():
    subs = [sub(1, None, None, status="error"), sub(2, 0.8, 0.8, selected=True),
            sub(3, 0.99, 0.99, late=True)]
    chart = team_chart(subs, greater_is_better=True)
    assert [p.id for p in chart.points] == [2] and chart.late == 1
    assert chart.missed is None           # a file sent after the reveal is no lesson
    empty = team_chart([sub(1, None, None, status="error")], greater_is_better=True)
    assert empty.best is None and empty.caption() == "no scored submissions before the deadline"


def test_refuses_submissions_read_before_the_reveal():
    with pytest.raises(ValueError, match="after the reveal"):
        team_chart([sub(1, 0.8, None)], greater_is_better=True)


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("n", [0, 1, 150])
def test_plot_is_a_png_at_any_size(tmp_path, n):
    subs = [sub(i + 1, 0.8 + i / 1000, 0.8 - i / 2000, selected=i == n - 1, day=1 + i % 28)
            for i in range(n)]
    chart = team_chart(subs, greater_is_better=True)
    data = team_chart_plot(chart, metric="accuracy", title="t", path=tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes() == data
    assert png_size(data) == (880, 528)


def test_imports_no_server_or_database():
    code = ("import sys, harness.team_chart; print([m for m in ('fastapi', 'starlette', "
            "'sqlalchemy', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
