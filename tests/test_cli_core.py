"""The teacher's `prepare` and `score` commands, through click."""

import json

from click.testing import CliRunner

from harness.cli import main


def test_prepare_then_score(tmp_path):
    runner = CliRunner()
    home = str(tmp_path / "home")
    r = runner.invoke(main, ["prepare", "breast-cancer", "--home", home])
    assert r.exit_code == 0, r.output
    assert "train 284" in r.output and "never served" in r.output
    sample = tmp_path / "home/competitions/breast-cancer/released/sample_submission.csv"
    r = runner.invoke(main, ["score", "breast-cancer", str(sample), "--home", home,
                             "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["metric"] == "roc_auc" and out["public_score"] == 0.5   # a constant scores 0.5


def test_errors_are_one_line(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["prepare", "no-such-competition", "--home", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.startswith("error: 'no-such-competition' is neither a path nor a built-in")
    assert "Traceback" not in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n")
    runner.invoke(main, ["prepare", "digits", "--home", str(tmp_path)])
    r = runner.invoke(main, ["score", "digits", str(bad), "--home", str(tmp_path)])
    assert r.exit_code == 2 and "header but no rows" in r.output


def test_option_syntax_is_checked(tmp_path):
    r = CliRunner().invoke(main, ["prepare", "synthetic", "-o", "rows", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "expected KEY=VALUE" in r.output


def test_every_command_has_help_with_an_example():
    runner = CliRunner()

    def walk(group, path):
        for name, cmd in group.commands.items():
            r = runner.invoke(main, [*path, name, "--help"])
            assert r.exit_code == 0, (path, name)
            if hasattr(cmd, "commands"):
                walk(cmd, [*path, name])
            else:
                assert "Example" in r.output, f"`harness {' '.join([*path, name])}` --help has no example"

    walk(main, [])
