"""The teacher's `prepare` and `score` commands, through click; the command line's
structure: its commands, the shared --home/--database-url, one output path."""

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import harness.cli
from harness.cli import main
from harness.service import Harness


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


# --- the structure of the command line ---------------------------------------------------

COMMANDS = ["audit", "backup", "baseline", "close", "competitions", "demo", "doctor", "download",
            "grades", "lab", "leaderboard", "login", "prepare", "reopen", "rescore", "restore",
            "reveal", "score", "select", "serve", "submissions", "submit", "teacher", "team"]
LAB_COMMANDS = ["attack", "batch", "diagnose", "hessian", "holdout-reuse", "optimizers",
                "overfit"]
# every command that reads or writes the store (the database of a home)
STORE_COMMANDS = [["serve"], ["team", "add"], ["team", "import"], ["team", "list"],
                  ["team", "baseline"], ["team", "rename"], ["team", "remove"],
                  ["team", "restore"], ["team", "token"], ["team", "member", "add"],
                  ["team", "member", "remove"], ["team", "member", "move"],
                  ["teacher", "token"], ["teacher", "revoke"], ["teacher", "list"], ["close"], ["reopen"], ["reveal"], ["rescore"],
                  ["grades"], ["baseline"], ["submissions"], ["leaderboard"], ["backup"],
                  ["restore"], ["doctor"], ["audit"]]
CLI_MODULES = sorted(Path(harness.cli.__file__).parent.glob("*.py"))


def test_help_lists_the_documented_commands():
    out = CliRunner().invoke(main, ["--help"]).output
    listed = [line.split()[0] for line in out.split("Commands:\n", 1)[1].splitlines()
              if line.strip()]
    assert listed == COMMANDS
    assert sorted(main.commands["team"].commands) == ["add", "baseline", "import", "list",
                                                      "member", "remove", "rename", "restore",
                                                      "token"]
    assert sorted(main.commands["team"].commands["member"].commands) == ["add", "move",
                                                                         "remove"]
    assert sorted(main.commands["teacher"].commands) == ["list", "revoke", "token"]
    assert sorted(main.commands["lab"].commands) == LAB_COMMANDS


def test_every_store_command_takes_the_one_home_and_database_url_option():
    found = {}
    for path in STORE_COMMANDS:
        cmd = main
        for name in path:
            cmd = cmd.commands[name]
        params = {p.name: p for p in cmd.params}
        assert "database_url" in params, f"`harness {' '.join(path)}` has no --database-url"
        assert params["home"].envvar == "HARNESS_HOME"
        found[" ".join(path)] = (params["database_url"].envvar, params["database_url"].help)
    assert len(set(found.values())) == 1, found          # one option, not copies
    assert next(iter(found.values()))[0] == "HARNESS_DATABASE_URL"


def _decorators(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                yield node, d.func if isinstance(d, ast.Call) else d


@pytest.mark.parametrize("module", CLI_MODULES, ids=lambda p: p.name)
def test_commands_are_added_explicitly_not_on_import(module):
    """A module may hang commands on a group it defines itself (`team`), never on one it
    imports: the groups add their commands in app.py and lab.py, in plain sight."""
    tree = ast.parse(module.read_text())
    own_groups = {f.name for f, d in _decorators(tree)
                  if isinstance(d, ast.Attribute) and d.attr == "group"}
    attached = {ast.unparse(d) for _, d in _decorators(tree)
                if isinstance(d, ast.Attribute) and d.attr in ("command", "group")
                and isinstance(d.value, ast.Name) and d.value.id not in {"click", *own_groups}}
    assert not attached, f"{module.name} registers on an imported group: {sorted(attached)}"


WRITERS = {"json.dumps", "csv_text", "write_csv", "csv.writer", "csv.DictWriter", "to_csv"}


@pytest.mark.parametrize("module", [m for m in CLI_MODULES if m.name != "output.py"],
                         ids=lambda p: p.name)
def test_only_output_py_writes_csv_or_json(module):
    calls = {ast.unparse(n.func) for n in ast.walk(ast.parse(module.read_text()))
             if isinstance(n, ast.Call)}
    used = {c for c in calls if c in WRITERS or c.rsplit(".", 1)[-1] in WRITERS}
    assert not used, f"{module.name} prints CSV/JSON itself ({sorted(used)}); use output.emit"


@pytest.fixture(params=["sqlite", "postgres"])
def other_url(request, tmp_path, monkeypatch):
    """A database that is not the home's own: a second SQLite file, or PostgreSQL."""
    monkeypatch.delenv("HARNESS_DATABASE_URL", raising=False)
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'elsewhere.db'}"
    return request.getfixturevalue("fresh_postgres_url")()


def test_grades_and_baseline_submit_use_the_database_url(prepared_home, other_url, tmp_path):
    runner, home = CliRunner(), str(prepared_home)
    elsewhere = Harness(prepared_home, other_url)
    sample = (prepared_home / "competitions/breast-cancer/released/sample_submission.csv")
    ada = elsewhere.add_team("ada")[0]
    elsewhere.add_team("bob")
    elsewhere.submit("breast-cancer", ada, sample.read_bytes())

    def graded(*options, env=None):
        r = runner.invoke(main, ["grades", "breast-cancer", "--home", home, "--format", "json",
                                 *options], env=env)
        assert r.exit_code == 0, r.output
        return sorted(g["team"] for g in json.loads(r.output))

    assert graded("--database-url", other_url) == ["ada", "bob"]
    assert graded(env={"HARNESS_DATABASE_URL": other_url}) == ["ada", "bob"]
    assert graded() == []                    # the home's own database has no teams

    r = runner.invoke(main, ["baseline", "breast-cancer", "--model", "linear", "--name", "lin",
                             "--submit", "--home", home, "--database-url", other_url,
                             "--out-dir", str(tmp_path), "--no-progress", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["submission_id"] is not None

    def baselines(harness):
        board = harness.leaderboard("breast-cancer", "public")
        return [row["team"] for row in board["rows"] if row["baseline"]]

    assert baselines(elsewhere) == ["lin"]
    assert baselines(Harness(prepared_home)) == []
