"""The student commands against the server: login, competitions, download, submit,
submissions, select, leaderboard; errors as one line; local vs remote reading.

The app is served in process: the commands' HTTP client (harness.client.Client) is given
a transport that hands requests for the server's URL to it (conftest.py AppServer), while
any other address still goes over the network (an unreachable server stays unreachable).
"""

from __future__ import annotations

import json
import shutil
import socket
import stat

import httpx
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.home import RELEASED_FILES, load_prepared

STUDENT_COMMANDS = ["login", "competitions", "download", "submit", "submissions", "select",
                    "leaderboard"]


@pytest.fixture(scope="module")
def classroom(_prepared_home, tmp_path_factory, serve_app):
    home = tmp_path_factory.mktemp("classroom") / "home"
    shutil.copytree(_prepared_home, home)
    server = serve_app(home)
    tokens = {name: server.h.add_team(name)[1] for name in ("owls", "rockets", "foxes")}
    return {"home": home, "harness": server.h, "tokens": tokens, "url": server.url,
            "server": server}


@pytest.fixture
def cli(tmp_path, monkeypatch, classroom):
    """Run `harness ...` in-process with a login file of this test's own, its client
    talking to the classroom's server."""
    classroom["server"].route_clients(monkeypatch)
    for name in ("HARNESS_SERVER", "HARNESS_TOKEN", "HARNESS_HOME", "HARNESS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "160")      # a wide terminal: table cells do not wrap
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "config" / "credentials.json"))
    runner = CliRunner()

    def run(*args, code=0, env=None):
        result = runner.invoke(main, [str(a) for a in args], env=env)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    run.config = tmp_path / "config" / "credentials.json"
    return run


def api(classroom, path, token=None, **params):
    with classroom["server"].client(token) as client:
        return client.get(path, params=params).json()


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_login_stores_the_token_for_the_owner_only(classroom, cli):
    bad = cli("login", "--server", classroom["url"], "--token", "wrong", code=2)
    assert "token" in one_error_line(bad)
    assert not cli.config.exists()
    ok = cli("login", "--server", classroom["url"].removeprefix("http://"),
             "--token", classroom["tokens"]["owls"])
    assert "logged in" in ok.stdout and "digits" in ok.stdout
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert json.loads(cli.config.read_text()) == {"server": classroom["url"],
                                                  "token": classroom["tokens"]["owls"]}


def test_a_student_session(classroom, cli, tmp_path, make_predictions):
    token = classroom["tokens"]["rockets"]
    cli("login", "--server", classroom["url"], "--token", token)

    listing = cli("competitions", "--format", "json").stdout
    assert json.loads(listing) == api(classroom, "/api/competitions", token)
    assert "digits" in cli("competitions").stdout

    out = tmp_path / "data"
    cli("download", "digits", "-p", out)
    released = load_prepared(classroom["home"], "digits").released_dir
    for name in RELEASED_FILES:
        assert (out / name).read_bytes() == (released / name).read_bytes()
    assert not list(out.glob("*.part"))

    csv_path = tmp_path / "predictions.csv"
    csv_path.write_bytes(make_predictions(classroom["home"], "digits", 0.9, 0.8))
    line = cli("submit", "digits", "-f", csv_path, "-m", "first try").stdout
    assert "scored" in line and "4 left today" in line
    second = json.loads(cli("submit", "digits", "-f", csv_path, "-m", "again",
                            "--format", "json").stdout)
    assert second["remaining_today"] == 3 and second["message"] == "again"
    assert second["private_score"] is None

    mine = json.loads(cli("submissions", "digits", "--format", "json").stdout)
    assert mine == api(classroom, "/api/competitions/digits/submissions", token)
    assert [s["message"] for s in mine] == ["again", "first try"]
    table = cli("submissions", "digits").stdout
    assert "first try" in table and str(second["id"]) in table

    chosen = json.loads(cli("select", "digits", second["id"], "--format", "json").stdout)
    assert [s["id"] for s in chosen] == [second["id"]] and chosen[0]["selected"] is True

    board = json.loads(cli("leaderboard", "digits", "--format", "json").stdout)
    assert board == api(classroom, "/api/competitions/digits/leaderboard", token)
    assert board["your_team"] == "rockets"
    table = cli("leaderboard", "digits").stdout
    marked = [row for row in table.splitlines() if "> you" in row]
    assert len(marked) == 1 and "rockets" in marked[0]
    csv_text = cli("leaderboard", "digits", "--format", "csv").stdout.splitlines()
    assert csv_text[0].startswith("rank,team,score,entries,last_submission,baseline")
    assert any(row.split(",")[1] == "rockets" for row in csv_text[1:])


def test_public_board_without_login(classroom, cli):
    result = cli("leaderboard", "digits", "--server", classroom["url"], "--format", "json")
    assert json.loads(result.stdout)["board"] == "public"
    assert "your_team" not in json.loads(result.stdout)


def test_an_unreachable_server_is_one_line_naming_the_url(cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = cli("competitions", "--server", dead, code=2, env={"HARNESS_TOKEN": "x"})
    line = one_error_line(result)
    assert dead in line and "cannot reach" in line
    result = cli("login", "--server", dead, "--token", "x", code=2)
    assert dead in one_error_line(result)


def test_server_errors_reach_the_student_as_the_servers_detail(classroom, cli, tmp_path):
    token = classroom["tokens"]["foxes"]
    cli("login", "--server", classroom["url"], "--token", token)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n1,3\n")
    result = cli("submit", "digits", "-f", bad, code=2)
    with classroom["server"].client(token) as client:
        detail = client.post("/api/competitions/digits/submissions",
                             files={"file": ("bad.csv", bad.read_bytes())}).json()["detail"]
    assert one_error_line(result) == f"error: {detail}"
    hidden = cli("leaderboard", "digits", "--private", code=2)
    assert "reveal" in one_error_line(hidden)
    unknown = cli("submissions", "no-such-competition", code=2)
    assert "no-such-competition" in one_error_line(unknown)
    assert "not logged in" not in unknown.stderr
    cli("select", "digits", "999999", code=2)


def test_environment_overrides_the_stored_login(classroom, cli):
    cli("login", "--server", classroom["url"], "--token", classroom["tokens"]["owls"])
    board = cli("leaderboard", "digits", "--format", "json",
                env={"HARNESS_TOKEN": classroom["tokens"]["foxes"]}).stdout
    assert json.loads(board)["your_team"] == "foxes"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = cli("competitions", code=2, env={"HARNESS_SERVER": dead})
    assert dead in one_error_line(result)


def test_no_login_says_how_to_log_in(cli):
    assert "harness login" in one_error_line(cli("competitions", code=2))


def test_with_a_home_and_no_server_the_teacher_reads_it_directly(classroom, cli, make_predictions):
    harness, home = classroom["harness"], classroom["home"]
    data = make_predictions(home, "noise-binary", 0.6, 0.4)
    harness.submit("noise-binary", harness.authenticate(classroom["tokens"]["owls"]), data)
    private = json.loads(cli("leaderboard", "noise-binary", "--private", "--home", home,
                             "--format", "json").stdout)
    assert private["board"] == "private"
    assert private == harness.leaderboard("noise-binary", "private", teacher=True)
    table = cli("leaderboard", "noise-binary", "--private", env={"HARNESS_HOME": str(home)}).stdout
    assert "owls" in table and "not revealed" in " ".join(table.split())
    everyone = json.loads(cli("submissions", "noise-binary", "--home", home,
                              "--format", "json").stdout)
    assert {"owls"} <= {s["team"] for s in everyone}
    assert all(s["private_score"] is not None for s in everyone if s["status"] == "scored")
    # a server given as well: it asks the server, where the private board is still hidden
    cli("login", "--server", classroom["url"], "--token", classroom["tokens"]["owls"])
    remote = cli("leaderboard", "noise-binary", "--private", "--home", home,
                 "--server", classroom["url"], code=2)
    assert "reveal" in one_error_line(remote)


@pytest.mark.parametrize("command", STUDENT_COMMANDS)
def test_every_student_command_has_help_with_an_example(cli, command):
    assert "Example" in cli(command, "--help").stdout


def test_client_turns_any_server_answer_into_one_line():
    from harness.client import Client
    from harness.errors import HarnessError, LimitError

    answers = {
        "/api/competitions": httpx.Response(500, text="<html>boom</html>"),
        "/api/competitions/x": httpx.Response(422, json={"detail": [
            {"loc": ["body", "submission_ids", 0], "msg": "Input should be a valid integer"}]}),
        "/api/competitions/x/submissions": httpx.Response(429, json={"detail": "limit reached"}),
    }
    client = Client("example.test:8000", " token\n",
                    transport=httpx.MockTransport(lambda request: answers[request.url.path]))
    assert client.server == "http://example.test:8000" and client.token == "token"
    with pytest.raises(HarnessError, match=r"answered 500 Internal Server Error \(GET /api/comp"):
        client.competitions()
    with pytest.raises(HarnessError, match=r"^submission_ids\.0: Input should be a valid integer$"):
        client.competition("x")
    with pytest.raises(LimitError, match="^limit reached$"):
        client.submissions("x")


def test_the_leaderboard_shows_intervals_and_the_teams_tied_with_the_leader(
        classroom, cli, make_predictions):
    """roc_auc: intervals from the reference curve; the table's ± and tie mark, the CSV's
    interval columns and the JSON all carry the server's numbers."""
    harness, home = classroom["harness"], classroom["home"]
    for name, right in (("owls", 0.95), ("rockets", 0.94), ("foxes", 0.7)):
        team = harness.authenticate(classroom["tokens"][name])
        harness.submit("breast-cancer", team,
                       make_predictions(home, "breast-cancer", right, right, seed=7))
    cli("login", "--server", classroom["url"], "--token", classroom["tokens"]["foxes"])
    board = json.loads(cli("leaderboard", "breast-cancer", "--format", "json").stdout)
    assert board["tied_with_leader"] == sum(r["tied"] is True for r in board["rows"]) >= 1
    assert all(r["interval"][0] < r["score"] <= r["interval"][1] for r in board["rows"])
    table = cli("leaderboard", "breast-cancer").stdout
    assert "±" in table and f"tied: {board['tied_with_leader']} team" in table
    for r in board["rows"]:
        half = (r["interval"][1] - r["interval"][0]) / 2
        line = next(line for line in table.splitlines() if f" {r['team']} " in line)
        assert f"± {half:.3g}" in line and ("yes" in line) == r["tied"]
    rows = cli("leaderboard", "breast-cancer", "--format", "csv").stdout.splitlines()
    header = rows[0].split(",")
    for line, r in zip(rows[1:], board["rows"]):
        cells = dict(zip(header, line.split(",")))
        assert [float(cells["interval_low"]), float(cells["interval_high"])] == r["interval"]
