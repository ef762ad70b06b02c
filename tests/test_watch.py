"""`harness leaderboard SLUG --watch`: the live board for the projector.

What it marks and how it counts down is checked on the functions that decide it; the
command itself runs in process against the app (an idle watch is answered 304, a
teacher's token watches the public board where the ETag is), and as a real process in a
pseudo-terminal against a real `harness serve` (it redraws in place, marks the teams that
moved, and Ctrl-C ends it with exit code 0 and the cursor shown again).
"""

from __future__ import annotations

import json
import os
import re
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from functools import partialmethod
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.cli.watch import BoardView, changed_rows, time_left
from harness.client import Client
from harness.service import Harness

SHOW_CURSOR, HIDE_CURSOR = "\x1b[?25h", "\x1b[?25l"


def row(team, rank, score, entries=1, baseline=False, last="2030-01-01T10:00:00+00:00"):
    return {"team": team, "rank": rank, "score": score, "entries": entries,
            "baseline": baseline, "last_submission": last}


# ---------------------------------------------------------------- what is marked


def test_the_rows_that_changed_are_marked_and_nothing_on_the_first_board():
    before = [row("owls", 1, 0.9), row("foxes", 2, 0.8), row("logistic", None, 0.7, baseline=True),
              row("rockets", 3, 0.6)]
    after = [row("foxes", 1, 0.95, entries=2), row("owls", 2, 0.9),
             row("logistic", None, 0.7, baseline=True), row("rockets", 3, 0.6, entries=2),
             row("bats", 4, 0.5), row("logistic", 5, 0.1)]     # a team named like a baseline
    assert changed_rows(None, after) == {}
    assert changed_rows(after, after) == {}
    assert changed_rows(before, after) == {
        ("foxes", False): "▲ 1", ("owls", False): "▼ 1",
        ("rockets", False): "•",        # same place, one more entry
        ("bats", False): "new", ("logistic", False): "new"}


def test_marks_last_one_refresh_and_a_304_clears_them():
    view = BoardView("digits", "public", 10)
    view.show({"rows": [row("owls", 1, 0.9)]}, '"a"', None)
    assert view.marks == {} and view.changed_at is not None
    view.show({"rows": [row("foxes", 1, 0.95), row("owls", 2, 0.9)]}, '"b"', None)
    assert view.marks == {("foxes", False): "new", ("owls", False): "▼ 1"}
    assert view.etag == '"b"'
    changed = view.changed_at
    view.show(None, '"b"', None)        # unchanged since the refresh before
    assert view.marks == {} and view.changed_at == changed and view.board["rows"][0]["team"] \
        == "foxes"


@pytest.mark.parametrize("competition, expected", [
    ({"state": "open", "deadline": "2030-01-03T03:04:05+00:00"}, "2d 03:04:05 left"),
    ({"state": "open", "deadline": "2030-01-01T00:00:59Z"}, "00:00:59 left"),
    ({"state": "open", "deadline": "2030-01-01T08:00:00+08:00"}, "deadline passed"),
    ({"state": "open", "deadline": None}, "no deadline"),
    ({"state": "closed", "deadline": "2030-01-02T00:00:00Z"}, "closed"),
    ({"state": "revealed", "deadline": None}, "final: the private board is revealed"),
    (None, "time left: log in (`harness login`) to see the deadline"),
])
def test_the_clock(competition, expected):
    assert time_left(competition, datetime(2030, 1, 1, tzinfo=timezone.utc)) == expected


# ---------------------------------------------------------------- in process


@pytest.fixture(scope="module")
def classroom(classroom_home, tmp_path_factory, serve_app):
    """`digits` with a deadline in 2099 (conftest's classroom), served in process."""
    home = tmp_path_factory.mktemp("watch") / "home"
    shutil.copytree(classroom_home, home)
    server = serve_app(home)
    tokens = {name: server.h.add_team(name)[1] for name in ("owls", "rockets")}
    return {"server": server, "tokens": tokens, "home": home}


@pytest.fixture
def watch(classroom, monkeypatch, tmp_path):
    """Run `harness leaderboard ...` in process with a terminal rich draws on; returns
    (result, [(path, status) of each request])."""
    seen = []
    inner = classroom["server"].transport()

    def record(request):
        response = inner.handle_request(request)
        seen.append((request.url.path, response.status_code))
        return response

    monkeypatch.setattr(Client, "__init__", partialmethod(Client.__init__,
                                                          transport=httpx.MockTransport(record)))
    for name in ("HARNESS_SERVER", "HARNESS_TOKEN", "HARNESS_HOME", "HARNESS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "credentials.json"))

    def run(*args, code=0, token=None):
        env = {"TTY_COMPATIBLE": "1", "COLUMNS": "120", "LINES": "40",
               "HARNESS_SERVER": classroom["server"].url, "HARNESS_TOKEN": token}
        seen.clear()
        result = CliRunner().invoke(main, ["leaderboard", *map(str, args)], env=env)
        assert result.exit_code == code, (result.output, result.exception)
        return result, list(seen)

    return run


def test_an_idle_watch_is_answered_304(classroom, watch, make_predictions):
    with classroom["server"].client(classroom["tokens"]["owls"]) as c:
        c.post("/api/competitions/digits/submissions",
               files={"file": ("p.csv", make_predictions(classroom["home"], "digits", 0.9))})
    result, seen = watch("digits", "--watch", "--interval", 1, "--refreshes", 3,
                         token=classroom["tokens"]["rockets"])
    board = [status for path, status in seen if path.endswith("/leaderboard")]
    assert board == [200, 304, 304]
    out = result.stdout
    assert out.startswith(HIDE_CURSOR) and out.rstrip().endswith(SHOW_CURSOR)
    assert out.count("digits: public leaderboard") >= 3          # drawn again in place
    assert "\x1b[1A" in out                                     # ... by moving the cursor up
    assert "owls" in out and "Ctrl-C to stop" in out
    assert re.search(r"\d+d \d\d:\d\d:\d\d left", out)      # the deadline's countdown


def test_a_teacher_watches_the_public_board_where_its_etag_is(classroom, watch):
    _, teacher_token = classroom["server"].h.issue_teacher_token("projector")
    result, seen = watch("digits", "--watch", "--interval", 1, "--refreshes", 2,
                         token=teacher_token)
    board = [(path, status) for path, status in seen if path.endswith("/leaderboard")]
    assert board == [("/api/competitions/digits/leaderboard", 200),
                     ("/api/competitions/digits/leaderboard", 304)]
    assert re.search(r"\d+d \d\d:\d\d:\d\d left", result.stdout)   # it reads the deadline


def test_the_teacher_watches_the_home_directly(classroom, watch, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(classroom["home"]))
    result = CliRunner().invoke(main, ["leaderboard", "digits", "--private", "--watch",
                                       "--interval", "1", "--refreshes", "2"],
                                env={"TTY_COMPATIBLE": "1", "COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "digits: private leaderboard" in result.stdout       # before the reveal: local
    assert re.search(r"\d+d \d\d:\d\d:\d\d left", result.stdout)


@pytest.mark.parametrize("args, problem", [
    (["--interval", "5"], "--interval and --refreshes are for --watch"),
    (["--refreshes", "2"], "--interval and --refreshes are for --watch"),
    (["--watch", "--format", "json"], "--format json prints one board"),
    (["--watch", "--download"], "--download saves one board"),
    (["--watch", "--interval", "0.2"], "0.2 is not in the range x>=1"),
])
def test_options_that_do_not_go_with_watch_are_refused(watch, args, problem):
    result, seen = watch("digits", *args, code=2)
    assert problem in result.output and not seen


def test_a_wrong_competition_is_one_error_line_before_the_screen(watch):
    result, _ = watch("nope", "--watch", "--interval", 1, code=2)
    assert result.output.startswith("error: ") and HIDE_CURSOR not in result.output


# ---------------------------------------------------------------- a real terminal


def _read(fd, until, timeout=60.0) -> str:
    """Read the pseudo-terminal until ``until(text so far)`` holds."""
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:          # the other end closed: the process is gone
                break
            out += chunk
            if until(out.decode("utf-8", "replace")):
                break
    return out.decode("utf-8", "replace")


def _upload(url, token, data):
    answer = httpx.post(f"{url}/api/competitions/digits/submissions",
                        headers={"Authorization": f"Bearer {token}"},
                        files={"file": ("p.csv", data, "text/csv")}, timeout=60)
    assert answer.status_code == 201, answer.text


def test_ctrl_c_ends_the_watch_cleanly_in_a_terminal(_prepared_home, tmp_path, start_server,
                                                     make_predictions):
    home = tmp_path / "home"
    shutil.copytree(_prepared_home, home)
    h = Harness(home)
    tokens = {name: h.add_team(name)[1] for name in ("owls", "foxes")}
    h.close_connections()
    url = start_server(home).url
    _upload(url, tokens["owls"], make_predictions(home, "digits", 0.8))
    (tmp_path / "login.json").write_text(json.dumps({"server": url, "token": tokens["owls"],
                                                     "role": "team"}))
    env = {**os.environ, "HARNESS_CONFIG": str(tmp_path / "login.json"), "COLUMNS": "120",
           "LINES": "40", "TERM": "xterm"}
    for name in ("HARNESS_SERVER", "HARNESS_TOKEN", "HARNESS_HOME", "TTY_COMPATIBLE"):
        env.pop(name, None)
    main_fd, terminal = pty.openpty()
    harness = str(Path(sys.executable).with_name("harness"))
    process = subprocess.Popen([harness, "leaderboard", "digits", "--watch", "--interval", "1"],
                               stdin=terminal, stdout=terminal, stderr=terminal, env=env,
                               start_new_session=True)
    os.close(terminal)
    try:
        first = _read(main_fd, lambda text: "owls < you" in text)
        assert "owls < you" in first and HIDE_CURSOR in first, first
        _upload(url, tokens["foxes"], make_predictions(home, "digits", 1.0))
        moved = _read(main_fd, lambda text: "▼ 1" in text)
        assert "new" in moved and "▼ 1" in moved, moved       # foxes new on top, owls down
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
        rest = _read(main_fd, lambda text: "stopped watching" in text, timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main_fd)
    assert code == 0, rest
    assert rest.rfind(SHOW_CURSOR) > rest.rfind(HIDE_CURSOR), rest     # the cursor is back
    assert "stopped watching digits" in rest
    assert "Traceback" not in first + moved + rest and "Aborted" not in rest


# ---------------------------------------------------------------- the projector page


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run `make browser`")
def test_the_projector_page_redraws_only_when_the_board_changed(classroom_home, tmp_path,
                                                               start_server, make_predictions):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    home = tmp_path / "home"
    shutil.copytree(classroom_home, home)
    h = Harness(home)
    tokens = {name: h.add_team(name)[1] for name in ("owls", "foxes")}
    h.close_connections()
    url = start_server(home).url
    _upload(url, tokens["owls"], make_predictions(home, "digits", 0.8))
    seen = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.on("response", lambda r: seen.append((httpx.URL(r.url).path, r.status)))
        page.goto(url + "/competitions/digits?projector=1&refresh=2")
        board = page.get_by_test_id("public-board")
        sync_api.expect(board).to_contain_text("owls")

        def probes_after(start):
            return [s for path, s in seen[start:] if path.startswith("/api/")]

        # idle: after the first probe (which learns the tag and reloads once), only 304s
        page.wait_for_timeout(7000)
        idle = list(seen)
        assert probes_after(0)[:1] == [200] and probes_after(0)[1:] and \
            set(probes_after(0)[1:]) == {304}, idle
        reloads = [path for path, _ in idle[1:] if path == "/competitions/digits"]
        assert len(reloads) == 1, idle           # the one after the first probe only

        _upload(url, tokens["foxes"], make_predictions(home, "digits", 1.0))
        sync_api.expect(board).to_contain_text("foxes", timeout=20_000)
        assert 200 in probes_after(len(idle)), seen[len(idle):]
        browser.close()
