"""`harness baseline` writes CSV + PNG, records [grading], submits; `harness grades`."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tomllib

import pytest
from click.testing import CliRunner

from harness.baselines.record import write_grading
from harness.cli import main
from harness.errors import SpecError
from harness.home import competitions_root, load_prepared
from harness.scoring import AnswerKey, score
from harness.splits import prepare


def _run(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result


def test_baseline_writes_csv_and_png(prepared_home, tmp_path):
    out = tmp_path / "subs"
    r = _run(["baseline", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "2",
              "--home", str(prepared_home), "--out-dir", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    csv_path, png = out / "digits" / "mlp.csv", out / "digits" / "mlp.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    key = AnswerKey.from_prepared(load_prepared(prepared_home, "digits"))
    assert score(csv_path, key).public > 0.2          # scoreable, and above chance (0.1)
    assert "validation accuracy" in r.output and "diagnosis:" in r.output


def test_baseline_json_and_bad_options(prepared_home, tmp_path):
    r = _run(["baseline", "breast-cancer", "--model", "linear", "--name", "lin",
              "--home", str(prepared_home), "--out-dir", str(tmp_path), "--format", "json"])
    row = json.loads(r.output)[0]
    assert row["name"] == "lin" and 0.5 < row["validation_score"] <= 1
    r = CliRunner().invoke(main, ["baseline", "breast-cancer", "--model", "gbt", "--dropout",
                                  "0.2", "--home", str(prepared_home)])
    assert r.exit_code == 2 and "does not use dropout" in r.output
    r = CliRunner().invoke(main, ["baseline", "digits", "--home", str(prepared_home)])
    assert r.exit_code == 2 and "exactly one of --model" in r.output


def test_help_says_no_flips():
    r = _run(["baseline", "--help"])
    assert "Never horizontal flips" in r.output and "Example" in r.output


@pytest.fixture
def builtins(tmp_path, monkeypatch):
    """A private copy of the built-in competitions (what an installed package holds)."""
    root = tmp_path / "competitions"
    shutil.copytree(competitions_root() / "noise-binary", root / "noise-binary")
    monkeypatch.setenv("HARNESS_COMPETITIONS", str(root))
    return root


def test_record_writes_grading_into_the_home_copy_only(builtins, tmp_path):
    home = tmp_path / "home"
    prepare(builtins / "noise-binary", home)
    package = builtins / "noise-binary" / "competition.toml"
    package_bytes = package.read_bytes()
    toml = home / "competitions" / "noise-binary" / "competition.toml"
    before = toml.read_text()
    r = _run(["baseline", "noise-binary", "--preset", "all", "--record", "--home", str(home),
              "--out-dir", str(tmp_path / "subs"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert package.read_bytes() == package_bytes          # the package is never written
    after = toml.read_text()
    assert after.startswith(before.rstrip("\n"))      # the rest of the file is untouched
    grading = tomllib.loads(after)["grading"]
    assert list(grading) == ["simple", "medium", "strong", "boss"]
    key = AnswerKey.from_prepared(load_prepared(home, "noise-binary"))
    s = score(tmp_path / "subs" / "noise-binary" / "medium.csv", key)
    assert grading["medium"] == {"public": round(s.public, 5), "private": round(s.private, 5)}
    # what `harness grades` reads has it, and preparing again is not "another spec"
    assert load_prepared(home, "noise-binary").spec.grading[1].public == round(s.public, 5)
    prepare(builtins / "noise-binary", home)


TOML = '''slug = "x"   # kept
description = """a line
[grading]
simple = { public = 0.1 }"""

[grading]   # old
simple = { public = 0.5, private = 0.5, points_public = 2 }   # hand-set points
other = { public = 0.7 }

# the rules follow
[grading.extra]
public = 0.1

[rules]
daily_limit = 3
'''


def test_write_grading_changes_only_the_measured_values(tmp_path):
    path = tmp_path / "competition.toml"
    path.write_text(TOML)
    new = write_grading(path, {"simple": (0.9, 0.8), "extra": (0.3, 0.2), "boss": (1.0, 0.95)},
                        comment="measured")
    assert new == path.read_text() == TOML.replace(
        "simple = { public = 0.5, private = 0.5, points_public = 2 }   # hand-set points\n"
        "other = { public = 0.7 }\n",
        "simple = { public = 0.9, private = 0.8, points_public = 2 }   # hand-set points\n"
        "other = { public = 0.7 }\nboss = { public = 1.0, private = 0.95 }\n").replace(
        "public = 0.1\n\n[rules]", "public = 0.3\nprivate = 0.2\n\n[rules]")
    path.write_text('slug = "x"\n')
    assert write_grading(path, {"a": (1.0, 0.5)}, comment="measured") == (
        'slug = "x"\n\n[grading] # measured\na = { public = 1.0, private = 0.5 }\n')
    path.write_text('[grading]\na = 3\n')
    with pytest.raises(SpecError, match=r"\[grading.a\] must be a table"):
        write_grading(path, {"a": (1.0, 0.5)})
    assert path.read_text() == '[grading]\na = 3\n'


def test_submit_and_grades(prepared_home, tmp_path):
    from harness.service import Harness

    home = str(prepared_home)
    r = _run(["baseline", "breast-cancer", "--model", "linear", "--name", "simple", "--submit",
              "--home", home, "--out-dir", str(tmp_path), "--no-progress"])
    assert r.exit_code == 0, r.output
    h = Harness(prepared_home)
    board = h.leaderboard("breast-cancer", "public")
    assert [row["team"] for row in board["rows"] if row["baseline"]] == ["simple"]
    data = (tmp_path / "breast-cancer" / "simple.csv").read_bytes()
    for name in ("ada", "bob"):                          # bob hands in ada's file
        h.submit("breast-cancer", h.add_team(name)[0], data)
    sample = (prepared_home / "competitions" / "breast-cancer" / "released" /
              "sample_submission.csv").read_bytes()
    h.submit("breast-cancer", h.add_team("cy")[0], sample)
    out = tmp_path / "grades.csv"
    r = _run(["grades", "breast-cancer", "-o", str(out), "--home", home])
    assert r.exit_code == 0, r.output
    rows = {row["team"]: row for row in csv.DictReader(io.StringIO(out.read_text()))}
    assert set(rows) == {"ada", "bob", "cy"}               # the baseline is not graded
    assert rows["ada"]["copy_flag"] == "1" and rows["ada"]["same_scores_as"] == "bob"
    assert rows["cy"]["copy_flag"] == "0"
    assert re.search(r"\b2 .*flagged", r.output), r.output


def test_grades_flag_the_same_file_not_the_same_scores(prepared_home, tmp_path):
    """Two different files with equal scores on both boards are not copies; the same file
    handed in by two teams is."""
    import pandas as pd

    from harness.home import load_prepared
    from harness.service import Harness

    h = Harness(prepared_home)
    solution = pd.read_csv(load_prepared(prepared_home, "digits").solution_path)
    wrong = solution.copy()
    first_public = solution.index[solution["Usage"] == "Public"][0]
    wrong.loc[first_public, "label"] = (solution.loc[first_public, "label"] + 1) % 10
    other = wrong.copy()              # wrong on the same row, with another wrong label
    other.loc[first_public, "label"] = (solution.loc[first_public, "label"] + 2) % 10
    as_csv = lambda df: df[["id", "label"]].to_csv(index=False).encode()   # noqa: E731
    assert as_csv(wrong) != as_csv(other)
    for name, data in (("ada", as_csv(wrong)), ("bob", as_csv(other)),
                       ("cy", as_csv(solution)), ("dee", as_csv(solution))):
        h.submit("digits", h.add_team(name)[0], data)
    out = tmp_path / "grades.csv"
    r = _run(["grades", "digits", "-o", str(out), "--home", str(prepared_home)])
    assert r.exit_code == 0, r.output
    rows = {row["team"]: row for row in csv.DictReader(io.StringIO(out.read_text()))}
    assert rows["ada"]["public_score"] == rows["bob"]["public_score"]
    assert rows["ada"]["copy_flag"] == rows["bob"]["copy_flag"] == "0"
    assert rows["cy"]["copy_flag"] == "1" and rows["cy"]["same_scores_as"] == "dee"
