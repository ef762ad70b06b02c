"""The student commands against the server: login, competitions, download, submit,
submissions, select, leaderboard; errors as one line; local vs remote reading.

The app is served in process: the commands' HTTP client (harness.client.Client) is given
a transport that hands requests for the server's URL to it (conftest.py AppServer), while
any other address still goes over the network (an unreachable server stays unreachable).
"""

from __future__ import annotations

import json
import re
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
                                                  "token": classroom["tokens"]["owls"],
                                                  "role": "team"}


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
    assert "`harness serve`" not in line        # a student is never told a teacher command
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


# --- Kaggle habits, messages a student can act on, tables that read well (issue 14) -----------


def test_the_competition_is_a_slug_or_dash_c_for_every_command(classroom, cli, tmp_path,
                                                               make_predictions):
    cli("login", "--server", classroom["url"], "--token", classroom["tokens"]["owls"])
    csv_path = tmp_path / "predictions.csv"
    csv_path.write_bytes(make_predictions(classroom["home"], "fertility", 0.5, 0.5))
    first = json.loads(cli("submit", "-c", "fertility", "-f", csv_path, "--format",
                           "json").stdout)
    second = json.loads(cli("submit", "fertility", "-f", csv_path, "--format", "json").stdout)
    assert [first["team"], second["team"]] == ["owls", "owls"]
    for command in (["submissions"], ["leaderboard"], ["leaderboard", "--private", "--show"]):
        code = 2 if "--private" in command else 0      # not revealed: the same refusal
        as_slug = cli(*command, "fertility", "--format", "json", code=code)
        as_option = cli(*command, "--competition", "fertility", "--format", "json", code=code)
        assert as_slug.stdout == as_option.stdout and as_slug.stderr == as_option.stderr
    cli("download", "-c", "fertility", "-p", tmp_path / "data")
    assert (tmp_path / "data" / "sample_submission.csv").is_file()

    # select: the ids follow the slug, or follow -c
    for args in (["fertility", first["id"], second["id"]],
                 ["-c", "fertility", first["id"], second["id"]],
                 [first["id"], "-c", "fertility", second["id"]]):
        chosen = json.loads(cli("select", *args, "--format", "json").stdout)
        assert sorted(s["id"] for s in chosen) == sorted([first["id"], second["id"]])

    twice = cli("submissions", "fertility", "-c", "digits", code=2)
    assert "given twice" in twice.stderr and "Traceback" not in twice.output
    assert "given twice" in cli("select", "digits", "-c", "fertility", "12", code=2).stderr
    for command in ("download", "submissions", "leaderboard", "select"):
        none = cli(command, code=2)
        assert "which competition" in none.stderr and f"harness {command} -c digits" in \
            " ".join(none.stderr.split())
    no_ids = cli("select", "-c", "fertility", code=2)
    assert "which submissions" in no_ids.stderr


def test_competitions_list_is_the_listing(classroom, cli):
    cli("login", "--server", classroom["url"], "--token", classroom["tokens"]["owls"])
    assert cli("competitions", "list", "--format", "json").stdout == \
        cli("competitions", "--format", "json").stdout
    assert "fertility" in cli("competitions", "list").stdout
    assert "'list'" in cli("competitions", "lsit", code=2).stderr


def test_the_leaderboard_downloads_as_csv(classroom, cli, tmp_path, monkeypatch,
                                          make_predictions, due_soon):
    harness, home = classroom["harness"], classroom["home"]
    harness.submit("breast-cancer", harness.authenticate(classroom["tokens"]["rockets"]),
                   make_predictions(home, "breast-cancer", 0.9, 0.9))
    cli("login", "--server", classroom["url"], "--token", classroom["tokens"]["owls"])
    shown = cli("leaderboard", "breast-cancer", "--show", "--download", "-p", tmp_path / "b")
    saved = tmp_path / "b" / "breast-cancer-public-leaderboard.csv"
    assert str(saved) in shown.stderr and "rockets" in shown.stdout
    assert saved.read_text() == cli("leaderboard", "breast-cancer", "--format", "csv").stdout
    # default folder: the current one; a board without rows still has its header
    monkeypatch.chdir(tmp_path)
    cli("leaderboard", "-c", due_soon, "--download")
    header = (tmp_path / f"{due_soon}-public-leaderboard.csv").read_text().splitlines()
    assert header == ["rank,team,score,entries,last_submission,baseline,submission_id,"
                      "tied,interval_low,interval_high"]
    assert "--download" in cli("leaderboard", "digits", "-p", tmp_path, code=2).stderr


def test_a_bad_token_at_login_says_to_copy_it_again(classroom, cli):
    for token in ("wrong", classroom["tokens"]["owls"][:-3], '""'):
        line = one_error_line(cli("login", "--server", classroom["url"], "--token", token,
                                  code=2))
        assert "token is not valid" in line and "copy it again" in line
        assert "harness serve" not in line and "Bearer" not in line
    assert not cli.config.exists()


@pytest.mark.parametrize("page", ["/competitions/digits", "/api", "/docs/", "/?x=1#top"])
def test_a_page_address_as_server_uses_the_servers_own(classroom, cli, page):
    result = cli("login", "--server", classroom["url"] + page,
                 "--token", classroom["tokens"]["foxes"])
    assert f"using the server's address {classroom['url']}" in result.stderr
    assert json.loads(cli.config.read_text())["server"] == classroom["url"]
    board = cli("leaderboard", "digits", "--server", classroom["url"] + page,
                "--format", "json")
    assert json.loads(board.stdout)["your_team"] == "foxes"


@pytest.mark.parametrize("address", ["my token", "http:/testserver", "ftp://testserver",
                                     "http://testserver:99999", "http://"])
def test_a_server_that_is_no_address_is_refused_with_an_example(cli, address):
    for args in (["login", "--server", address, "--token", "x"],
                 ["competitions", "--server", address]):
        result = cli(*args, code=2)
        assert "is not a server address" in result.stderr
        assert "e.g. http://10.0.0.5:8000" in " ".join(result.stderr.split())
        assert "Traceback" not in result.output
    result = cli("competitions", code=2, env={"HARNESS_SERVER": address, "HARNESS_TOKEN": "x"})
    assert "is not a server address" in result.stderr


@pytest.mark.parametrize("address, origin, page", [
    ("10.0.0.5:8000", "http://10.0.0.5:8000", ""),
    (" https://harness.example.edu/ \n", "https://harness.example.edu", ""),
    ("http://h:8000/competitions/digits/submit", "http://h:8000", "/competitions/digits/submit"),
    ("http://[::1]:8000/docs", "http://[::1]:8000", "/docs"),
    ("http://ana:pw@h:8000/api?x=1", "http://h:8000", "/api?x=1"),
])
def test_server_origin(address, origin, page):
    from harness.client import server_origin

    assert server_origin(address) == (origin, page)


def test_countdowns_read_in_minutes_hours_days_or_as_the_date():
    from datetime import datetime, timedelta, timezone

    from harness.cli.output import countdown, deadline_cell

    now = datetime(2026, 11, 3, 12, 0, tzinfo=timezone.utc)

    def at(**delta):
        return (now + timedelta(**delta)).isoformat()

    assert countdown(at(minutes=42, seconds=30), now) == "in 42 min"
    assert countdown(at(seconds=20), now) == "in 1 min"
    assert countdown(at(hours=5, minutes=12), now) == "in 5 h 12 min"
    assert countdown(at(hours=47, minutes=59), now) == "in 47 h 59 min"
    assert countdown(at(days=23, hours=3), now) == "in 23 days"
    assert countdown(at(days=61), now) is None                     # the date says it
    assert countdown(at(minutes=-1), now) is None
    assert deadline_cell(at(days=23), now) == "2026-11-26 12:00\nin 23 days"
    assert deadline_cell("2027-01-05T23:59:00+08:00", now) == "2027-01-05 15:59"  # in UTC
    assert deadline_cell(at(days=2), now, running=False) == "2026-11-05 12:00"
    assert deadline_cell(None, now) == "none"


@pytest.fixture(scope="module")
def due_soon(classroom):
    """A competition in the classroom whose deadline is 5 h 30 min away (no submissions)."""
    from datetime import datetime, timedelta, timezone

    from harness.home import find_spec_path
    from harness.spec import set_rules
    from harness.splits import prepare

    deadline = datetime.now(timezone.utc) + timedelta(hours=5, minutes=30)
    text = (find_spec_path("digits") / "competition.toml").read_text()
    text = set_rules(text.replace('slug = "digits"', 'slug = "digits-soon"'),
                     deadline=deadline.isoformat(timespec="seconds"))
    spec = classroom["home"].parent / "soon" / "competition.toml"
    spec.parent.mkdir()
    spec.write_text(text)
    prepare(spec.parent, classroom["home"])
    return "digits-soon"


def test_times_are_labelled_utc_and_near_deadlines_count_down(classroom, cli, due_soon):
    cli("login", "--server", classroom["url"], "--token", classroom["tokens"]["owls"])
    table = cli("competitions").stdout
    header = next(line for line in table.splitlines() if "slug" in line)
    assert "deadline (UTC)" in header
    row = table.splitlines().index(next(line for line in table.splitlines()
                                        if due_soon in line))
    assert re.search(r"in 5 h \d+ min", table.splitlines()[row + 1]), table
    assert "last (UTC)" in cli("leaderboard", "digits").stdout
    assert "submitted (UTC)" in cli("submissions", "digits").stdout


def test_scores_keep_their_shown_decimals(classroom, cli, tmp_path, make_predictions):
    """digits shows 5 decimals: a public score of exactly 1 reads 1.00000 everywhere."""
    harness, home = classroom["harness"], classroom["home"]
    assert harness.get_competition("digits")["public_decimals"] == 5
    cli("login", "--server", classroom["url"], "--token", classroom["tokens"]["foxes"])
    csv_path = tmp_path / "right.csv"
    csv_path.write_bytes(make_predictions(home, "digits", 1.0, 0.5))
    sent = cli("submit", "digits", "-f", csv_path, "-m", "all right")
    assert "public score 1.00000;" in sent.stdout
    assert json.loads(cli("submissions", "digits", "--format", "json").stdout)[0][
        "public_score"] == 1                                      # JSON: the API's number
    line = next(row for row in cli("submissions", "digits").stdout.splitlines()
                if "all right" in row)
    assert " 1.00000 " in line
    board = cli("leaderboard", "digits").stdout
    assert re.search(r"foxes\s+1\.00000\s", board), board
    # the board needs no token; without one the column's own scores set the decimals
    anonymous = cli("leaderboard", "digits", "--server", classroom["url"],
                    env={"HARNESS_CONFIG": str(tmp_path / "nobody.json")}).stdout
    scores = json.loads(cli("leaderboard", "digits", "--format", "json").stdout)["rows"]
    places = max(len(repr(r["score"]).partition(".")[2]) for r in scores)
    assert re.search(rf"foxes\s+1\.{'0' * places}\s", anonymous), anonymous


def test_listings_fit_80_columns(classroom, cli, make_predictions, due_soon):
    """At 80 columns no line is longer, and no time or score is cut short (a table too
    wide for the terminal would be cropped at its right edge)."""
    harness, home = classroom["harness"], classroom["home"]
    long = harness.add_team("the-very-long-team-name-of-four")[1]
    harness.submit("digits", harness.authenticate(long),
                   make_predictions(home, "digits", 0.93, 0.9), message="a long message " * 6)
    cli("login", "--server", classroom["url"], "--token", long)
    numbers = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d|\d+\.\d+")
    for args in (["competitions"], ["leaderboard", "digits"], ["submissions", "digits"],
                 ["leaderboard", "digits", "--private", "--home", home],
                 ["submissions", "digits", "--home", home]):
        narrow = cli(*args, env={"COLUMNS": "80"}).stdout
        assert max(len(line) for line in narrow.splitlines()) <= 80, narrow
        wide = cli(*args).stdout                               # 160 columns
        assert sorted(numbers.findall(narrow)) == sorted(numbers.findall(wide)), narrow
        assert numbers.findall(narrow)
    board = cli("leaderboard", "digits", env={"COLUMNS": "80"}).stdout
    assert "the leader included" in " ".join(board.split())
    for args in (["--version"], ["--help"], *([c, "--help"] for c in STUDENT_COMMANDS)):
        text = cli(*args, env={"COLUMNS": "80"}).stdout
        assert text.strip() and max(len(line) for line in text.splitlines()) <= 80, text
