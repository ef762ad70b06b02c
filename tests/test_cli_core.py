"""The teacher's `prepare` and `score` commands, through click; the command line's
structure: its commands, the shared --home/--database-url, one output path."""

import ast
import json
import os
import subprocess
import sys
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
            "grades", "kaggle", "lab", "leaderboard", "login", "prepare", "reopen", "rescore",
            "restore", "reveal", "score", "select", "serve", "submissions", "submit", "teacher",
            "team"]
LAB_COMMANDS = ["attack", "augment", "batch", "diagnose", "hessian", "holdout-reuse",
                "optimizers", "overfit"]
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


# --- command start: a student's commands import only what they need (issue 15) -----------

STUDENT_COMMANDS = ["login", "competitions", "download", "submit", "submissions", "select",
                    "leaderboard"]
# never imported by a student's command: the modelling, plotting and server stacks (a
# student's side is click, httpx, pydantic and rich); each costs a start of seconds
NOT_FOR_STUDENTS = ["sklearn", "matplotlib", "torch", "scipy", "pandas", "numpy", "pyarrow",
                    "sqlalchemy", "fastapi", "starlette", "uvicorn"]
# --help and --version print text: click alone
NOT_FOR_HELP = NOT_FOR_STUDENTS + ["httpx", "pydantic", "rich"]
UNREACHABLE = "http://127.0.0.1:1"            # nothing listens on port 1: refused at once
_REPORT_IMPORTS = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('IMPORTED', *sorted({m.split('.')[0] for m in sys.modules}),"
    " file=sys.stderr))\n"
    "from harness.cli import main\n"
    "main(sys.argv[1:], prog_name='harness')\n")


def _run_fresh(args, tmp_path):
    """`harness ARGS` in a fresh interpreter, as a student runs it (a token, no home, no
    stored login); its result and the top-level modules it had imported at exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env |= {"HARNESS_TOKEN": "a-team-token", "HARNESS_CONFIG": str(tmp_path / "login.json")}
    done = subprocess.run([sys.executable, "-c", _REPORT_IMPORTS, *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    *_, last = done.stderr.splitlines() or [""]
    assert last.startswith("IMPORTED "), done.stderr
    return done, set(last.split()[1:])


@pytest.mark.parametrize("args", [["--version"], ["--help"]] +
                         [[c, "--help"] for c in STUDENT_COMMANDS], ids=" ".join)
def test_help_and_version_import_click_alone(args, tmp_path):
    done, imported = _run_fresh(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert ("version" if args == ["--version"] else "Usage: harness") in done.stdout
    assert not imported & set(NOT_FOR_HELP), sorted(imported & set(NOT_FOR_HELP))


@pytest.mark.parametrize("args", [
    ["login", "--server", UNREACHABLE, "--token", "a-team-token"],
    ["competitions", "--server", UNREACHABLE],
    ["download", "digits", "-p", "data", "--server", UNREACHABLE],
    ["submit", "digits", "-f", "predictions.csv", "--server", UNREACHABLE],
    ["submissions", "digits", "--server", UNREACHABLE],
    ["select", "digits", "3", "--server", UNREACHABLE],
    ["leaderboard", "digits", "--server", UNREACHABLE],
], ids=lambda args: args[0])
def test_student_commands_reach_for_the_server_without_the_heavy_stacks(args, tmp_path):
    (tmp_path / "predictions.csv").write_text("id,target\n0,1\n")
    done, imported = _run_fresh(args, tmp_path)
    # the command got as far as its request (httpx loaded) and failed the way a student sees
    assert done.returncode == 2 and "httpx" in imported, done.stderr
    assert f"error: cannot reach the harness server at {UNREACHABLE}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not imported & set(NOT_FOR_STUDENTS), sorted(imported & set(NOT_FOR_STUDENTS))
