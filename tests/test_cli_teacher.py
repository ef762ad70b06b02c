"""The teacher commands (team add/import/list/baseline, close, reopen, reveal, rescore,
serve) and the README's classroom flow end to end through the server (served in process:
tests/conftest.py AppServer; tests/test_readme.py runs the README against a real one)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.home import load_prepared
from harness.scoring import AnswerKey, score
from harness.service import Harness

TEACHER_COMMANDS = [["serve"], ["team"], ["team", "add"], ["team", "import"], ["team", "list"],
                    ["team", "baseline"], ["close"], ["reopen"], ["reveal"], ["rescore"]]


def test_team_add_prints_the_token_once(prepared_home, cli):
    out = cli("team", "add", "Night Owls", "--member", "ana", "--member", "bo",
              "--home", prepared_home).stdout
    token = out.strip().splitlines()[-1]
    harness = Harness(prepared_home)
    assert harness.authenticate(token) == {"id": 1, "name": "Night Owls", "members": ["ana", "bo"]}
    as_json = json.loads(cli("team", "add", "solo", "--home", prepared_home,
                             "--format", "json").stdout)
    assert set(as_json) == {"team", "members", "token"} and as_json["team"] == "solo"
    assert harness.authenticate(as_json["token"])["name"] == "solo"
    listed = json.loads(cli("team", "list", "--home", prepared_home, "--format", "json").stdout)
    assert [t["name"] for t in listed] == ["Night Owls", "solo"]
    assert token not in cli("team", "list", "--home", prepared_home).stdout
    assert "error:" in cli("team", "add", "solo", "--home", prepared_home, code=2).stderr


def test_team_import_writes_a_tokens_csv(prepared_home, cli, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("team,member\nrockets,ana\nrockets,bo\nowls,cy\n")
    out = cli("team", "import", roster, "--home", prepared_home).stdout
    assert "2 new team(s)" in out
    written = re.search(r"tokens of the new teams written to (\S+?):", out).group(1)
    with open(written, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["team"] for r in rows) == ["owls", "rockets"]
    harness = Harness(prepared_home)
    for row in rows:
        assert harness.authenticate(row["token"])["name"] == row["team"]
    assert sorted(harness.authenticate(next(r["token"] for r in rows if r["team"] == "rockets"))
                  ["members"]) == ["ana", "bo"]


def test_baseline_row_and_state_commands(prepared_home, cli, tmp_path, make_predictions):
    harness = Harness(prepared_home)
    predictions = tmp_path / "logreg.csv"
    predictions.write_bytes(make_predictions(prepared_home, "digits", 0.8, 0.75))
    added = json.loads(cli("team", "baseline", "digits", "logistic regression", "-f", predictions,
                           "--home", prepared_home, "--format", "json").stdout)
    assert added["baseline"] is True and added["status"] == "scored"
    board = harness.leaderboard("digits")
    assert [(r["team"], r["baseline"]) for r in board["rows"]] == [("logistic regression", True)]
    table = cli("leaderboard", "digits", "--home", prepared_home).stdout
    assert "logistic regression (baseline)" in table

    assert "closed" in cli("close", "digits", "--home", prepared_home).stdout
    assert harness.state("digits") == "closed"
    cli("reopen", "digits", "--home", prepared_home)
    assert harness.state("digits") == "open"
    result = json.loads(cli("rescore", "digits", "--home", prepared_home,
                            "--format", "json").stdout)
    assert result == {"rescored": 1, "changed": 0}
    refused = cli("reveal", "digits", "--home", prepared_home, "--yes", code=2).stderr
    assert "still open" in refused and "harness close digits" in refused
    assert "--yes" in cli("reveal", "digits", "--home", prepared_home, code=2).stderr  # no tty
    cli("close", "digits", "--home", prepared_home)
    assert "revealed" in cli("reveal", "digits", "--home", prepared_home, "--yes").stdout
    assert harness.state("digits") == "revealed"
    assert "error:" in cli("reveal", "no-such", "--home", prepared_home, "--yes",
                           code=2).stderr


@pytest.mark.parametrize("command", TEACHER_COMMANDS, ids=" ".join)
def test_every_teacher_command_has_help_with_an_example(cli, command):
    assert "Example" in cli(*command, "--help").stdout


def test_the_readme_classroom_flow(tmp_path, cli, serve_app, monkeypatch, make_predictions):
    home = tmp_path / "srv"
    # teacher: prepare, roster, serve
    cli("prepare", "digits", "--home", home)
    roster = tmp_path / "roster.csv"
    roster.write_text("team,member\nrockets,ana\nowls,bo\n")
    out = cli("team", "import", roster, "--home", home).stdout
    with open(re.search(r"tokens of the new teams written to (\S+?):", out).group(1),
              newline="") as f:
        tokens = {r["team"]: r["token"] for r in csv.DictReader(f)}
    server = serve_app(home)
    server.route_clients(monkeypatch)
    key = AnswerKey.from_prepared(load_prepared(home, "digits"))

    # students, each on their own machine (own login file)
    expected = {}
    plans = {"rockets": [(1.0, 0.7), (0.9, 0.9)], "owls": [(0.95, 0.95)]}
    for team, plan in plans.items():
        monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / f"{team}.json"))
        cli("login", "--server", server.url, "--token", tokens[team])
        data = tmp_path / team
        cli("download", "digits", "-p", data)
        assert (data / "test.csv").read_bytes() == \
            (load_prepared(home, "digits").released_dir / "test.csv").read_bytes()
        ids = []
        for i, (pub, priv) in enumerate(plan):
            path = tmp_path / f"{team}-{i}.csv"
            path.write_bytes(make_predictions(home, "digits", pub, priv, seed=i))
            result = json.loads(cli("submit", "digits", "-f", path, "-m", f"try {i}",
                                    "--format", "json").stdout)
            ids.append(result["id"])
            expected.setdefault(team, []).append(score(path, key))
        if team == "rockets":        # picks the second (better private), not the best public
            cli("select", "digits", ids[1])
        board = json.loads(cli("leaderboard", "digits", "--format", "json").stdout)
        assert board["your_team"] == team
        cli("leaderboard", "digits", "--private", code=2)      # hidden before the reveal

    public = json.loads(cli("leaderboard", "digits", "--format", "json").stdout)
    assert [r["team"] for r in public["rows"]] == ["rockets", "owls"]
    assert public["rows"][0]["score"] == pytest.approx(1.0)

    # teacher: a look before the reveal, then the reveal
    early = json.loads(cli("leaderboard", "digits", "--private", "--home", home,
                           "--format", "json").stdout)
    cli("close", "digits", "--home", home)
    cli("reveal", "digits", "--home", home, "--yes")
    private = json.loads(cli("leaderboard", "digits", "--private", "--format", "json").stdout)
    assert [r["team"] for r in private["rows"]] == ["owls", "rockets"]
    assert private["rows"][0]["score"] == pytest.approx(expected["owls"][0].private, abs=1e-5)
    assert private["rows"][1]["score"] == pytest.approx(expected["rockets"][1].private, abs=1e-5)
    assert [r["team"] for r in early["rows"]] == [r["team"] for r in private["rows"]]
    mine = json.loads(cli("submissions", "digits", "--format", "json").stdout)
    assert all(s["private_score"] is not None for s in mine)


# --- CSV for the teacher's spreadsheet: no cell runs as a formula ----------------------------

FORMULAS = ['=HYPERLINK("http://x","click")', "=cmd|' /C calc'!A0", "+1+cmd|x", "-2+3",
            "@SUM(A1)", "\t=1+1", "\r=1+1"]


def test_safe_cell_prefixes_formulas_and_keeps_numbers():
    from harness.csvsafe import safe_cell

    for text in FORMULAS:
        assert safe_cell(text) == "'" + text
    # numbers, and text that is a plain number (a spreadsheet reads it as that number)
    for value in (-1.5, -0.5, 3, 0, True, "-1.5", "+2", "-1e-3", ".5", "7"):
        assert safe_cell(value) == value
    assert safe_cell(None) == "" and safe_cell(["a", "b"]) == '["a", "b"]'
    assert safe_cell("-") == "'-" and safe_cell("-inf") == "'-inf" and safe_cell("a=1") == "a=1"


def _csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_teacher_csv_exports_neutralise_formulas(prepared_home, cli, tmp_path):
    harness = Harness(prepared_home)
    sample = (prepared_home / "competitions/digits/released/sample_submission.csv").read_bytes()
    teams = [harness.add_team("=cmd|' /C calc'!A0", ["@ana"])[0],
             harness.add_team("@rocket")[0]]               # two: a daily limit of 5
    for i, text in enumerate(FORMULAS):
        harness.submit("digits", teams[i % 2], sample, message=text, filename=f"{text}.csv")

    rows = _csv_rows(cli("submissions", "digits", "--home", prepared_home,
                         "--format", "csv").stdout)
    assert len(rows) == len(FORMULAS)
    for i, (row, text) in enumerate(zip(rows, FORMULAS)):
        assert row["message"] == "'" + text and row["filename"] == f"'{text}.csv"
        assert row["team"] == "'" + teams[i % 2]["name"]
        float(row["public_score"]), float(row["private_score"])   # numbers stay numbers
        assert not row["public_score"].startswith("'")

    listed = _csv_rows(cli("team", "list", "--home", prepared_home, "--format", "csv").stdout)
    assert (listed[0]["team"], listed[0]["member"]) == ("'=cmd|' /C calc'!A0", "'@ana")

    graded = _csv_rows(cli("grades", "digits", "--home", prepared_home, "--format", "csv").stdout)
    assert sorted(g["team"] for g in graded) == ["'=cmd|' /C calc'!A0", "'@rocket"]
    assert float(graded[0]["private_score"]) == pytest.approx(float(rows[0]["private_score"]))
    cli("grades", "digits", "--home", prepared_home, "-o", tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="") as f:
        assert {g["team"] for g in csv.DictReader(f)} == {"'=cmd|' /C calc'!A0", "'@rocket"}


def test_score_csv_is_quoted_and_safe(prepared_home, cli, tmp_path):
    path = tmp_path / "=a,b.csv"          # a comma broke the old hand-joined line
    path.write_bytes((prepared_home / "competitions/digits/released/sample_submission.csv")
                     .read_bytes())
    rows = list(csv.reader(io.StringIO(cli("score", "digits", path, "--home", prepared_home,
                                           "--format", "csv").stdout)))
    assert rows[0] == ["competition", "file", "metric", "public_score", "private_score"]
    assert rows[1][1] == str(path) and len(rows[1]) == 5
    float(rows[1][3]), float(rows[1][4])


def test_team_names_are_neutralised_but_tokens_copied_exactly(prepared_home, cli, tmp_path,
                                                              monkeypatch):
    import secrets

    made = iter(["-first+token", "=second-token"])   # URL-safe tokens may start with "-"
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(made))
    roster = tmp_path / "roster.csv"
    roster.write_text('team,member\n"=HYPERLINK(""http://x"",""go"")",ana\n')
    harness = Harness(prepared_home)
    with open(harness.import_roster_file(roster)[0], newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row == {"team": "'" + '=HYPERLINK("http://x","go")', "members": "ana",
                   "token": "-first+token"}
    assert harness.authenticate(row["token"])["name"] == '=HYPERLINK("http://x","go")'
    (added,) = _csv_rows(cli("team", "add", "--home", prepared_home, "--format", "csv",
                             "--", "-x").stdout)
    assert added == {"team": "'-x", "members": "[]", "token": "=second-token"}
