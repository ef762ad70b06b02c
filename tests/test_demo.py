"""The demo at a tiny size: a real server, real clients, a report whose numbers are this run's."""

import re

import numpy as np
import pytest
from rich.console import Console

from harness.classroom import assign_strategies, roster
from harness.demo import compare, headline, run_demo
from harness.service import Harness
from harness.shakeup import compute_shakeup


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo") / "home"
    console = Console(record=True, width=140)
    result = run_demo(students=7, home=home, seed=3, candidates=5, labs=False,
                      presets=("simple",), console=console)
    return result, console.export_text()


def test_report_and_numbers_come_from_this_run(demo_run):
    result, text = demo_run
    assert result.report.is_file()
    html = result.report.read_text()
    assert "shakeup.png" in html and (result.report.parent / "shakeup.png").is_file()
    h = Harness(result.home)
    boards = h.leaderboard("digits", "public"), h.leaderboard("digits", "private")
    assert boards == (result.boards["public"], result.boards["private"])
    strategies = {s.team: s.strategy for s in result.students}
    again = headline(compute_shakeup(*boards), strategies, True)
    assert again == result.headline
    for name, row in again.items():             # the printed headline is these numbers
        assert re.search(rf"{name}\s+{int(row['teams'])} teams\s+public {row['public']:.4f}", text)
        assert f"{row['private']:.4f}" in html


def test_students_are_real_clients_within_the_rules(demo_run):
    result, _ = demo_run
    h = Harness(result.home)
    subs = h.all_submissions("digits")
    per_team = {}
    for s in subs:
        if not s["baseline"]:
            per_team[s["team"]] = per_team.get(s["team"], 0) + 1
    assert set(per_team) == {s.team for s in result.students}
    assert max(per_team.values()) <= h.prepared("digits").spec.rules.daily_limit
    for s in result.students:
        assert len(s.submitted) == per_team[s.team]
    selected = {s["team"] for s in subs if s["selected"]}
    forgetful = {s.team for s in result.students if s.strategy == "forgetful"}
    assert not selected & forgetful
    assert h.state("digits") == "revealed"
    assert any(s["baseline"] for s in subs)


def test_strategy_mix_and_roster():
    teams = roster(30, seed=1)["team"].unique().tolist()
    assert len(teams) == 30
    mix = assign_strategies(teams, seed=1)
    assert mix.count("prober") >= 1 and mix.count("public-tuner") >= 10
    assert assign_strategies(teams, seed=1) == mix


def test_compare_states_the_noise():
    head = {"public-tuner": {"optimism": 0.02, "optimism_se": 0.002, "private": 0.90},
            "validation": {"optimism": 0.0, "optimism_se": 0.002, "private": 0.92}}
    c = compare(head)
    assert c["difference"] == pytest.approx(0.02) and c["ci"] == pytest.approx(
        1.96 * np.hypot(0.002, 0.002))
    assert "overfits" in c["verdict"]
    head["public-tuner"]["optimism_se"] = 0.05
    assert "within the noise" in compare(head)["verdict"]
