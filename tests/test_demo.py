"""The demo at a tiny size: a real server, real clients, a report whose numbers are this run's,
teams with their own files, and a headline over re-drawn classes."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import harness.demo as demo_module
from harness.cli import main
from harness.class_models import Candidates
from harness.classroom import TeamModels, assign_strategies, prober, roster
from harness.demo import compare, headline, replay, run_demo
from harness.errors import HarnessError
from harness.grading import grade
from harness.metrics import get_metric
from harness.redraw import redraw_classes
from harness.scoring import AnswerKey
from harness.service import Harness
from harness.shakeup import compute_shakeup

CLASSES = 30
SLUG = "synthetic"
HEADLINE_KEYS = {"classes", "tuners_behind_share", "this_class", "redrawn", "competition",
                 "seed", "teams", "candidates_per_team", "rows", "rules", "training_seconds",
                 "seconds", "report"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One tiny demo through the real command, `--format json`; the DemoResult kept too."""
    home = tmp_path_factory.mktemp("demo") / "home"
    kept = {}

    def keep(**kwargs):
        kept["result"] = run_demo(**kwargs)
        return kept["result"]

    patch = pytest.MonkeyPatch()
    patch.setattr(demo_module, "run_demo", keep)
    try:
        out = CliRunner().invoke(main, [
            "demo", "--students", "8", "--candidates", "6", "--rows", "4000", "--classes",
            str(CLASSES), "--seed", "3", "--presets", "simple", "--no-labs", "--format", "json",
            "--home", str(home)])
    finally:
        patch.undo()
    assert out.exit_code == 0, out.output + out.stderr
    return kept["result"], json.loads(out.stdout), out.stderr


def test_json_headline_is_one_object_with_the_share(demo_run):
    result, printed, _ = demo_run
    assert set(printed) == HEADLINE_KEYS
    assert printed == json.loads(json.dumps(result.headline))
    assert printed["classes"] == CLASSES and printed["redrawn"]["classes"] == CLASSES
    assert 0 <= printed["tuners_behind_share"] <= 1
    this = printed["this_class"]
    assert {"public-tuner", "validation", "prober"} <= set(this["by_strategy"])
    assert this["comparison"]["ci"] > 0
    assert printed["rules"]["final_selections"] == 1


def test_the_demo_ends_with_the_cnn_homework_on_stderr(demo_run):
    _, _, text = demo_run
    assert "harness baseline shapes --preset strong" in text   # stdout stays one JSON object
    assert "harness lab augment shapes" in text


def test_report_and_numbers_come_from_this_run(demo_run):
    result, printed, text = demo_run
    assert result.report.is_file()
    html = result.report.read_text()
    assert "shakeup.png" in html and (result.report.parent / "shakeup.png").is_file()
    assert (result.report.parent / "redrawn.png").is_file()
    h = Harness(result.home)
    boards = h.leaderboard(SLUG, "public"), h.leaderboard(SLUG, "private")
    assert boards == (result.boards["public"], result.boards["private"])
    strategies = {s.team: s.strategy for s in result.students}
    digests = {r["id"]: hashlib.sha256(Path(r["path"]).read_bytes()).hexdigest()
               for s in result.students for r in s.submitted}
    files = {r["team"]: digests[r["submission_id"]] for r in boards[1]["rows"]
             if not r["baseline"]}
    again = headline(compute_shakeup(*boards), strategies, True, files)
    assert again == result.headline["this_class"]["by_strategy"]
    for name, row in again.items():             # the printed headline is these numbers
        assert re.search(rf"{name}\s+{int(row['teams'])} teams\s+public {row['public']:.4f}", text)
        assert f"{row['private']:.4f}" in html
    share = f"{printed['tuners_behind_share']:.0%}"
    assert share in text and share in html


def test_students_are_real_clients_within_the_rules(demo_run):
    result, _, _ = demo_run
    h = Harness(result.home)
    subs = h.all_submissions(SLUG)
    per_team = {}
    for s in subs:
        if not s["baseline"]:
            per_team[s["team"]] = per_team.get(s["team"], 0) + 1
    assert set(per_team) == {s.team for s in result.students}
    assert max(per_team.values()) <= h.prepared(SLUG).spec.rules.daily_limit
    for s in result.students:
        assert len(s.submitted) == per_team[s.team]
    selected = {}
    for s in subs:
        if s["selected"]:
            selected.setdefault(s["team"], []).append(s["id"])
    forgetful = {s.team for s in result.students if s.strategy == "forgetful"}
    assert not set(selected) & forgetful
    for s in result.students:                   # one final selection, the one it chose
        if s.strategy != "forgetful":
            assert selected[s.team] == [s.selected]
    assert h.state(SLUG) == "revealed"
    assert any(s["baseline"] for s in subs)


def test_every_team_submits_its_own_files_and_nobody_is_flagged(demo_run):
    result, printed, _ = demo_run
    owners = {}
    for s in result.students:
        for r in s.submitted:
            digest = hashlib.sha256(Path(r["path"]).read_bytes()).hexdigest()
            owners.setdefault(digest, set()).add(s.team)
    assert all(len(teams) == 1 for teams in owners.values())
    spec = Harness(result.home).prepared(SLUG).spec
    graded = grade(result.boards["public"], result.boards["private"], spec.grading, True,
                   decimals=spec.scoring.public_decimals)
    assert not any(g.copy_flag for g in graded)
    assert printed["this_class"]["copy_flags"] == printed["this_class"]["copy_flags_same_file"] == 0
    assert printed["this_class"]["distinct_entry_files"] == len(result.students)


def test_the_prober_climbs_the_public_board_and_falls_in_private(demo_run):
    result, printed, _ = demo_run
    (p,) = printed["this_class"]["probers"]
    assert p["public_rank"] < p["private_rank"]
    assert printed["redrawn"]["prober"]["fell_share"] > 0.5
    row = printed["this_class"]["by_strategy"]["prober"]
    assert row["optimism"] > printed["this_class"]["by_strategy"]["validation"]["optimism"]


def test_the_numpy_board_replays_the_servers_class(demo_run):
    """Re-drawn classes run the same strategies as the HTTP students: played on the real
    public rows with the real seeds, every team gets the server's entry and scores."""
    result, _, _ = demo_run
    played = replay(result.prepared, result.teams, result.students)
    public = {r["team"]: r["score"] for r in result.boards["public"]["rows"]}
    entry = {r["team"]: r["submission_id"] for r in result.boards["private"]["rows"]}
    full = {s["id"]: s for s in Harness(result.home).all_submissions(SLUG)}
    target = result.prepared.spec.data.target
    for i, s in enumerate(result.students):
        assert played.public[i] == pytest.approx(public[s.team], abs=1e-12)
        server = full[entry[s.team]]
        assert played.private[i] == pytest.approx(server["private_score_full"], abs=1e-12)
        assert played.entry_public[i] == pytest.approx(server["public_score_full"], abs=1e-12)
        sent = next(r for r in s.submitted if r["id"] == entry[s.team])
        assert np.array_equal(pd.read_csv(sent["path"])[target].to_numpy(), played.entries[i])


def test_tuners_behind_share_is_counted_over_the_re_drawn_classes(demo_run):
    result, printed, _ = demo_run
    key = AnswerKey.from_prepared(result.prepared)
    order = [s.strategy for s in result.students]
    again = redraw_classes(result.teams, order, key.y, int(key.public.sum()),
                           classes=CLASSES, seed=3)
    assert len(again.gap) == CLASSES
    assert again.tuners_behind_share == pytest.approx(float(np.mean(again.gap > 0)))
    assert again.tuners_behind_share == printed["tuners_behind_share"]
    fewer = redraw_classes(result.teams, order, key.y, int(key.public.sum()), classes=7,
                           seed=3)
    assert len(fewer.gap) == 7 and (fewer.tuners_behind_share * 7) % 1 == pytest.approx(0)


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


def test_headline_intervals_count_distinct_files_not_teams():
    public = {"rows": [{"team": t, "score": s} for t, s in
                       (("a", 0.90), ("b", 0.90), ("c", 0.80), ("d", 0.85))]}
    private = {"rows": [{"team": t, "score": s} for t, s in
                        (("d", 0.86), ("a", 0.84), ("b", 0.84), ("c", 0.70))]}
    shake = compute_shakeup(public, private)
    strategies = dict.fromkeys("abc", "public-tuner") | {"d": "validation"}
    same = headline(shake, strategies, True, {"a": "f1", "b": "f1", "c": "f2", "d": "f3"})
    tuners = same["public-tuner"]
    assert tuners["teams"] == 3 and tuners["files"] == 2
    # two files: optimism 0.06 (a and b's file) and 0.10 (c's)
    assert tuners["optimism_se"] == pytest.approx(np.std([0.06, 0.10], ddof=1) / np.sqrt(2))
    apart = headline(shake, strategies, True)       # no file identities: one per team
    assert apart["public-tuner"]["files"] == 3
    assert apart["public-tuner"]["optimism_se"] < tuners["optimism_se"]


def _team(truth: np.ndarray, rng, k: int = 9) -> TeamModels:
    """k close candidates, as trained models are: they agree (and are right) on the easy
    rows, and split on the hard fifth, where each is right about half the time."""
    n = len(truth)
    hard = rng.random(n) < 0.2

    def model():
        wrong = (truth + rng.integers(1, 3, size=n)) % 3
        return np.where(hard, np.where(rng.random(n) < 0.5, truth, wrong), truth)

    test = np.stack([model() for _ in range(k)])
    names = [f"c{i}" for i in range(k)]
    return TeamModels(test, test[:, :10], np.linspace(0.8, 0.7, k), names,
                      get_metric("accuracy"), truth[:10])


def test_the_prober_keeps_flips_only_when_the_public_score_rises():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, size=4000)
    public = np.zeros(len(truth), dtype=bool)
    public[:400] = True
    team = _team(truth, rng)
    sent = []

    def submit(preds, message):
        sent.append(preds)
        return round(float(np.mean(preds[public] == truth[public])), 5)

    choice = prober(team, submit, np.random.default_rng(1))
    scores = [np.mean(p[public] == truth[public]) for p in sent]
    private = [np.mean(p[~public] == truth[~public]) for p in sent]
    assert len(sent) == 31 and choice.index == int(np.argmax(scores))
    climbed = scores[choice.index] - scores[0]
    assert climbed > 0.01                                           # it climbed in public
    assert private[choice.index] - private[0] < climbed / 2         # far less in private
    # each probe flips a few rows of the best kept so far (a probe that fell is dropped)
    for i in range(1, len(sent)):
        kept = sent[int(np.argmax(scores[:i]))]
        assert 0 < np.sum(sent[i] != kept) < 0.05 * len(truth)


def test_redraw_refuses_a_class_without_both_groups():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, size=300)
    teams = [_team(truth, rng) for _ in range(3)]
    with pytest.raises(HarnessError, match="at least one 'public-tuner' and one 'validation'"):
        redraw_classes(teams, ["validation", "ensemble", "prober"], truth, 30)
    with pytest.raises(HarnessError, match="--classes must be >= 1"):
        redraw_classes(teams, ["validation", "public-tuner", "prober"], truth, 30, classes=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"students": 3}, "--students must be at least 5"),
    ({"candidates": 41}, "--candidates must be between 2 and the demo's daily limit"),
    ({"presets": ("simple", "huge")}, "no preset 'huge'"),
])
def test_bad_settings_are_refused_before_anything_runs(tmp_path, kwargs, message):
    with pytest.raises(HarnessError, match=message):
        run_demo(home=tmp_path / "home", **kwargs)
    assert not (tmp_path / "home").exists()


def test_candidates_are_each_teams_own(tmp_path):
    from harness.class_models import train_candidates
    from harness.home import find_spec_path
    from harness.splits import prepare

    prepared = prepare(find_spec_path(SLUG), tmp_path, options={"rows": 2000})
    c = train_candidates(prepared, 3, 4, seed=0, epochs=2)
    assert isinstance(c, Candidates) and c.test.shape == (3, 4, len(prepared.test))
    flat = c.test.reshape(12, -1)
    assert len({row.tobytes() for row in flat}) == 12           # no two candidates alike
    assert set(np.unique(flat)) <= set(prepared.classes)
    y = prepared.validation[prepared.spec.data.target].to_numpy()
    assert c.val_score[1, 2] == pytest.approx(np.mean(c.validation[1, 2] == y))
    assert (c.val_score.max(axis=1) > 0.6).all()      # they learned something (chance: 1/3)
    # one grid of learning rates per team, the same for every team
    assert [n.split(", lr ")[1].split(",")[0] for n in c.names[0]] == ["0.005", "0.014",
                                                                       "0.037", "0.1"]
    assert [n.split(", seed")[0] for n in c.names[2]] == [n.split(", seed")[0]
                                                          for n in c.names[0]]
    again = train_candidates(prepared, 3, 4, seed=0, epochs=2)
    assert np.array_equal(again.test, c.test)                    # seeded


def test_copy_flags_say_whether_the_flagged_teams_share_a_file():
    from harness.demo import class_summary
    from harness.redraw import Redrawn

    rows = [("a", 0.9, 0.8), ("b", 0.9, 0.8), ("c", 0.7, 0.6), ("d", 0.7, 0.6), ("e", 0.5, 0.5)]
    public = {"rows": [{"team": t, "score": p, "rank": i + 1} for i, (t, p, _) in
                       enumerate(rows)]}
    private = {"rows": [{"team": t, "score": q, "rank": i + 1} for i, (t, _, q) in
                        enumerate(rows)]}
    shake = compute_shakeup(public, private)
    strategies = {"a": "public-tuner", "b": "validation", "c": "public-tuner",
                  "d": "validation", "e": "prober"}
    redrawn = Redrawn(3, 2 / 3, np.array([0.01, 0.02, -0.01]), {}, None, None, None)
    graded = grade(public, private, (), True)
    files = {"a": "f1", "b": "f1", "c": "f2", "d": "f3", "e": "f4"}   # c and d: by chance
    summary = class_summary(shake, strategies, headline(shake, strategies, True, files),
                            redrawn, graded, files, True)
    this = summary["this_class"]
    assert this["copy_flags"] == 4 and this["copy_flags_same_file"] == 2
    assert this["distinct_entry_files"] == 4 and this["entries"] == 5
    assert summary["tuners_behind_share"] == pytest.approx(2 / 3)


def test_bench_demo_records_the_share_and_the_time(tmp_path):
    from benchmarks import bench_demo

    bench_demo.main(["--seeds", "3", "--no-labs", "--results", str(tmp_path), "--students", "6",
                     "--candidates", "4", "--rows", "2000", "--classes", "5", "--presets",
                     "simple"])
    out = json.loads((tmp_path / "demo.json").read_text())
    assert {"machine", "settings", "targets", "min_share", "max_wall_s", "runs",
            "meets_share_every_seed", "under_budget_every_seed"} <= set(out)
    (run,) = out["runs"]
    assert run["seed"] == 3 and run["classes"] == 5 and run["wall_s"] > 0
    assert (run["tuners_behind_share"] * 5) % 1 == pytest.approx(0)
    assert run["this_class"]["entries"] == 6
    assert "--students 6" in out["settings"]["command"]


def test_candidates_train_in_groups_and_tick_per_epoch(tmp_path, monkeypatch):
    import harness.class_models as cm
    from harness.home import find_spec_path
    from harness.splits import prepare

    prepared = prepare(find_spec_path(SLUG), tmp_path, options={"rows": 2000})
    monkeypatch.setattr(cm, "GROUP", 5)          # 12 candidates: groups of 5, 5 and 2
    monkeypatch.setattr(cm, "PREDICT", 3)
    ticks = []
    c = cm.train_candidates(prepared, 3, 4, seed=1, epochs=2, tick=ticks.append)
    assert ticks == [5, 5, 5, 5, 2, 2] and sum(ticks) == 3 * 4 * 2
    assert c.test.shape == (3, 4, len(prepared.test))
    assert c.validation.shape == (3, 4, len(prepared.validation))
    assert len({row.tobytes() for row in c.test.reshape(12, -1)}) == 12
