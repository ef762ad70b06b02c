"""Running a real course: roster repair, teacher tokens, the teacher over HTTP, a safe
reveal and grades per member (issue 14), on SQLite and PostgreSQL."""

import csv
import json
import stat

import pytest

from harness.admin_client import AdminClient
from harness.errors import ForbiddenError, HarnessError, NotFoundError
from harness.roster import parse_roster
from harness.service import Harness


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """None (SQLite in the home) or a PostgreSQL URL on a fresh schema."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("fresh_postgres_url")()


@pytest.fixture
def h(prepared_home, database_url):
    harness = Harness(prepared_home, database_url)
    yield harness
    harness.close_connections()


# --------------------------------------------------------------- the roster


@pytest.mark.parametrize("text, words", [
    ("name,email\nAda,ada@x.org\n", ["expected the header row team,member", "'name,email'"]),
    ("owls,Ada\nowls,Alan\n", ["expected the header row", "'owls,Ada'"]),
    ("team,member,grade\nowls,Ada,A\n", ["optionally section", "'team,member,grade'"]),
    ("team,member\n,Ada\n", ["line 2: the team is empty"]),
    ("team,member\n\n", ["has no students"]),
])
def test_a_roster_without_its_header_is_refused_naming_what_was_expected(text, words):
    with pytest.raises(HarnessError) as err:
        parse_roster(text, "roster.csv")
    for w in words:
        assert w in str(err.value)


def test_roster_headers_in_any_order_and_case_with_sections():
    rows = parse_roster("\ufeffSection,Member,TEAM\nA, Ada ,owls\nB,Alan,owls\n,,bats\n")
    assert [(r.team, r.member, r.section) for r in rows] == [
        ("owls", "Ada", "A"), ("owls", "Alan", "B"), ("bats", "", None)]


def test_team_names_are_unique_ignoring_case_and_spaces(h):
    h.add_team("Owls", ["Ada"])
    for other in ("owls", " OWLS ", "oWlS"):
        with pytest.raises(HarnessError, match="'Owls' already exists"):
            h.add_team(other)
    assert h.team_named(" owls")["name"] == "Owls"          # looked up the same way
    h.add_team("Bats")
    with pytest.raises(HarnessError, match="already exists"):
        h.rename_team("Bats", "OWLS")
    assert h.rename_team("Owls", "OWLS")["name"] == "OWLS"   # its own name, other case


def test_reimport_reports_members_added_and_keeps_tokens(h, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("team,member,section\nowls,Ada,A\nowls,Alan,A\n")
    out, first = h.import_roster_file(roster)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with open(out, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["team"] == "owls" and row["members"] == "Ada; Alan"
    roster.write_text("team,member,section\nOwls,Ada,B\nowls,Grace,A\nbats,Edsger,B\n")
    second_out, second = h.import_roster_file(roster, tmp_path / "more.csv")
    assert (second["teams_added"], second["teams_existing"], second["members_added"],
            second["sections_changed"]) == (1, 1, 1, 1)
    assert [t["team"] for t in second["tokens"]] == ["bats"]
    assert h.authenticate(row["token"])["members"] == ["Ada", "Alan", "Grace"]
    sections = {(r["team"], r["member"]): r["section"] for r in h.roster()}
    assert sections[("owls", "Ada")] == "B" and sections[("bats", "Edsger")] == "B"


def test_a_tokens_file_that_cannot_be_written_undoes_the_import(h, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("team,member\nowls,Ada\n")
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    with pytest.raises(OSError):
        h.import_roster_file(roster, blocked / "tokens.csv")
    assert h.list_teams() == []                          # no team without a known token


def test_rename_remove_restore_members_and_token(h, prepared_home, make_predictions):
    owls, owls_token = h.add_team("owls", ["Ada", "Alan"], section="A")
    bats, _ = h.add_team("bats", ["Grace"])
    h.submit("digits", owls, make_predictions(prepared_home, "digits", 0.9, 0.9))
    h.submit("digits", bats, make_predictions(prepared_home, "digits", 0.8, 0.8))

    assert h.rename_team("owls", "Night Owls")["name"] == "Night Owls"
    assert h.authenticate(owls_token)["name"] == "Night Owls"          # token stays
    assert [r["team"] for r in h.leaderboard("digits")["rows"]] == ["Night Owls", "bats"]

    h.remove_team("night owls")
    assert h.authenticate(owls_token) is None                          # refused at once
    assert [r["team"] for r in h.leaderboard("digits")["rows"]] == ["bats"]
    assert [r["team"] for r in h.leaderboard("digits", "private", teacher=True)["rows"]] \
        == ["bats"]
    assert [r["team"] for r in h.grades("digits")["rows"]] == ["bats"]
    assert h.get_competition("digits")["teams"] == 1
    assert len([s for s in h.all_submissions("digits") if s["team"] == "Night Owls"]) == 1
    with pytest.raises(HarnessError, match="removed; restore it first"):
        h.add_member("Night Owls", "Edsger")
    with pytest.raises(HarnessError, match="a removed team is called 'Night Owls'"):
        h.add_team("night owls")
    h.restore_team("Night Owls")
    assert h.authenticate(owls_token)["name"] == "Night Owls"
    assert [r["team"] for r in h.leaderboard("digits")["rows"]] == ["Night Owls", "bats"]

    assert h.add_member("bats", "Edsger", "B")["members"] == ["Grace", "Edsger"]
    with pytest.raises(HarnessError, match="already in team"):
        h.add_member("bats", "Edsger")
    assert sorted(h.move_member("Ada", to="bats")["members"]) == ["Ada", "Edsger", "Grace"]
    assert {(r["member"], r["section"]) for r in h.roster() if r["team"] == "bats"} == \
        {("Grace", None), ("Edsger", "B"), ("Ada", "A")}                  # section kept
    h.add_member("Night Owls", "Grace")
    with pytest.raises(HarnessError, match="say which with --from"):
        h.move_member("Grace", to="Night Owls")
    with pytest.raises(NotFoundError, match="its members: 'Alan', 'Grace'"):
        h.remove_member("Night Owls", "Ada")
    assert h.remove_member("Night Owls", "Grace")["members"] == ["Alan"]

    team, new = h.reissue_token("night owls")
    assert h.authenticate(owls_token) is None and h.authenticate(new)["name"] == "Night Owls"
    actions = [a["action"] for a in h.audit_log()]
    for action in ("team rename", "team remove", "team restore", "member add", "member move",
                   "member remove", "team token"):
        assert action in actions


def test_grades_by_member_one_row_per_roster_member(h, prepared_home, make_predictions):
    owls, _ = h.add_team("owls", ["Ada", "Alan"], section="A")
    h.add_team("bats")                                          # no members: no rows
    h.submit("digits", owls, make_predictions(prepared_home, "digits", 0.9, 0.9))
    table = h.grades("digits", "member")
    assert table["fields"][:3] == ["member", "section", "team"]
    assert [(r["member"], r["section"], r["team"]) for r in table["rows"]] == [
        ("Ada", "A", "owls"), ("Alan", "A", "owls")]
    assert table["rows"][0]["private_score"] == table["rows"][1]["private_score"] > 0.8
    assert table["without_members"] == ["bats"]
    assert [r["team"] for r in h.grades("digits", "team")["rows"]] == ["owls", "bats"]


# --------------------------------------------------------------- teacher tokens over HTTP


@pytest.fixture
def server(prepared_home, database_url, serve_app):
    return serve_app(prepared_home, database_url)


def admin(server, token) -> AdminClient:
    return AdminClient(server.url, token, transport=server.transport())


def test_team_tokens_get_403_on_admin_routes_and_change_nothing(server, make_predictions):
    team, team_token = server.h.add_team("owls", ["Ada"])
    _, teacher_token = server.h.issue_teacher_token("laptop")
    student = server.client(team_token)
    for method, path, body in [("POST", "/api/admin/competitions/digits/close", None),
                               ("POST", "/api/admin/teams/remove", {"team": "owls"}),
                               ("GET", "/api/admin/competitions/digits/submissions", None),
                               ("GET", "/api/admin/competitions/digits/leaderboard"
                                       "?board=private", None)]:
        answer = student.request(method, path, json=body)
        assert answer.status_code == 403, (path, answer.text)
        assert "teacher" in answer.json()["detail"] and "private" not in answer.text
    assert server.h.state("digits") == "open" and server.h.list_teams()[0]["name"] == "owls"
    assert server.client().post("/api/admin/competitions/digits/close").status_code == 401
    assert server.client("not-a-token").get("/api/admin/teams").status_code == 401
    # a teacher token is not a team's: it cannot upload
    upload = server.client(teacher_token).post(
        "/api/competitions/digits/submissions",
        files={"file": ("p.csv", make_predictions(server.home, "digits"), "text/csv")})
    assert upload.status_code == 401
    assert server.h.all_submissions("digits") == []


def test_the_teacher_acts_over_http_and_the_audit_names_the_token(server, tmp_path,
                                                                  make_predictions):
    _, token = server.h.issue_teacher_token("laptop")
    with admin(server, token) as teacher:
        assert teacher.is_teacher()
        added, owls_token = teacher.add_team("owls", ["Ada"], "A")
        result = teacher.import_roster_text("team,member,section\nbats,Grace,B\n", "r.csv")
        assert result["teams_added"] == 1 and result["tokens"][0]["team"] == "bats"
        with pytest.raises(HarnessError, match="expected the header row"):
            teacher.import_roster_text("name,email\nx,y\n", "bad.csv")
        server.h.submit("digits", server.h.team_named("owls"),
                        make_predictions(server.home, "digits", 0.9, 0.8))
        assert teacher.rename_team("owls", "Night Owls")["name"] == "Night Owls"
        assert teacher.add_member("bats", "Edsger")["members"] == ["Grace", "Edsger"]
        assert teacher.move_member("Edsger", "Night Owls")["members"] == ["Ada", "Edsger"]
        assert teacher.remove_member("Night Owls", "Edsger")["members"] == ["Ada"]
        _, fresh = teacher.reissue_token("night owls")
        assert server.client(owls_token).get("/api/competitions").status_code == 401
        assert server.client(fresh).get("/api/competitions").status_code == 200
        assert teacher.remove_team("bats")["removed"] is True
        assert teacher.restore_team("bats")["removed"] is False

        rows = teacher.all_submissions("digits", team="night owls", status="scored")
        assert len(rows) == 1 and rows[0]["private_score"] == pytest.approx(0.8, abs=0.01)
        private = teacher.leaderboard("digits", "private")
        assert private["revealed"] is False and private["rows"][0]["team"] == "Night Owls"
        with pytest.raises(ForbiddenError, match="still open .* `harness close digits`"):
            teacher.reveal("digits")
        assert teacher.close("digits")["state"] == "closed"
        assert teacher.reveal("digits")["state"] == "revealed"
        assert {r["member"] for r in teacher.grades("digits", "member")["rows"]} == \
            {"Ada", "Grace"}
        assert teacher.uploads_per_day("digits")[0]["scored"] == 1
        log = teacher.audit_log("digits")
    acted = {a["action"]: a["actor"] for a in log}
    assert acted["close"] == acted["reveal"] == acted["team rename"] \
        == "teacher token #1 (laptop)"
    assert server.h.state("digits") == "revealed"


def test_a_revoked_teacher_token_fails_at_once(server):
    who, token = server.h.issue_teacher_token()
    assert server.client(token).get("/api/admin/teams").status_code == 200
    assert server.h.revoke_teacher_token(token_id=who["id"]) == 1
    assert server.client(token).get("/api/admin/teams").status_code == 401
    with pytest.raises(NotFoundError):
        server.h.revoke_teacher_token(token_id=who["id"])
    with pytest.raises(HarnessError, match="say which"):
        server.h.revoke_teacher_token()


def test_the_cli_acts_over_http_without_a_home(server, cli, tmp_path, monkeypatch,
                                               make_predictions):
    """The teacher's laptop: `harness login` with a teacher token, then the teacher
    commands with no --home act on the server."""
    monkeypatch.delenv("HARNESS_HOME", raising=False)
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "teacher.json"))
    monkeypatch.chdir(tmp_path)                    # no ./.harness here
    server.route_clients(monkeypatch)
    made = json.loads(cli("teacher", "token", "--home", server.home, "--database-url",
                          server.h.database_url, "--label", "laptop", "--format",
                          "json").stdout)
    cli("login", "--server", server.url, "--token", made["token"])
    roster = tmp_path / "roster.csv"
    roster.write_text("team,member,section\nowls,Ada,A\nowls,Alan,A\nbats,Grace,B\n")
    out = cli("team", "import", roster).stdout
    assert "2 new team(s)" in out and "(on " not in out
    with open(tmp_path / "roster-tokens.csv", newline="") as f:
        tokens = {r["team"]: r["token"] for r in csv.DictReader(f)}
    assert server.h.authenticate(tokens["owls"])["members"] == ["Ada", "Alan"]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,email\nAda,a@x\n")
    assert "expected the header row" in cli("team", "import", bad, code=2).stderr
    assert not (tmp_path / "bad-tokens.csv").exists()
    cli("team", "rename", "bats", "Bats!")
    listed = json.loads(cli("team", "list", "--format", "json").stdout)
    assert {t["name"]: t["sections"] for t in listed} == {"owls": ["A", "A"], "Bats!": ["B"]}

    server.h.submit("digits", server.h.team_named("owls"),
                    make_predictions(server.home, "digits", 0.9, 0.9))
    assert "still open" in cli("reveal", "digits", "--yes", code=2).stderr
    assert f"(on {server.url})" in cli("close", "digits").stdout
    cli("reveal", "digits", "--yes")
    assert server.h.state("digits") == "revealed"
    cli("grades", "digits", "--by", "member", "-o", tmp_path / "lms.csv")
    with open(tmp_path / "lms.csv", newline="", encoding="utf-8") as f:
        lms = list(csv.DictReader(f))
    assert [(r["member"], r["section"], r["team"]) for r in lms] == [
        ("Grace", "B", "Bats!"), ("Ada", "A", "owls"), ("Alan", "A", "owls")]  # by team
    audit = json.loads(cli("audit", "digits", "--format", "json").stdout)
    assert {a["actor"] for a in audit if a["action"] in ("close", "reveal")} == \
        {"teacher token #1 (laptop)"}
    # the same commands with a team's login get the server's refusal, not a traceback
    cli("login", "--server", server.url, "--token", tokens["owls"])
    refused = cli("close", "digits", code=2).stderr
    assert "a team token cannot use it" in refused and "Traceback" not in refused


def test_reveal_asks_at_a_terminal(prepared_home, monkeypatch):
    from click.testing import CliRunner

    from harness.cli import main

    Harness(prepared_home).close("digits")
    monkeypatch.setattr("harness.cli.teacher._at_terminal", lambda: True)
    runner = CliRunner()
    said_no = runner.invoke(main, ["reveal", "digits", "--home", str(prepared_home)],
                            input="n\n")
    assert said_no.exit_code == 1 and "cannot be undone" in said_no.output
    assert Harness(prepared_home).state("digits") == "closed"
    said_yes = runner.invoke(main, ["reveal", "digits", "--home", str(prepared_home)],
                             input="y\n")
    assert said_yes.exit_code == 0 and Harness(prepared_home).state("digits") == "revealed"


def test_no_admin_route_answers_without_a_teacher_token(server):
    """Every /api/admin route, walked from the OpenAPI document: 401 without a token."""
    paths = server.client().get("/openapi.json").json()["paths"]
    admin_routes = [(m.upper(), p.replace("{slug}", "digits")) for p, ops in paths.items()
                    if p.startswith("/api/admin") for m in ops]
    assert len(admin_routes) >= 19
    for method, path in admin_routes:
        assert server.client().request(method, path).status_code == 401, (method, path)


def test_the_teacher_login_sees_every_team_and_the_private_board(server, cli, tmp_path,
                                                                 monkeypatch,
                                                                 make_predictions):
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "teacher.json"))
    server.route_clients(monkeypatch)
    owls, owls_token = server.h.add_team("owls")
    bats, _ = server.h.add_team("bats")
    for team, right in ((owls, 0.9), (bats, 0.8)):
        server.h.submit("digits", team, make_predictions(server.home, "digits", right, right))
    _, token = server.h.issue_teacher_token()
    assert "as the teacher" in cli("login", "--server", server.url, "--token", token).stdout
    rows = json.loads(cli("submissions", "digits", "--format", "json").stdout)
    assert {r["team"] for r in rows} == {"owls", "bats"}
    assert all(r["private_score"] is not None for r in rows)
    only = json.loads(cli("submissions", "-c", "digits", "--team", "OWLS",
                          "--format", "json").stdout)
    assert [r["team"] for r in only] == ["owls"]
    private = json.loads(cli("leaderboard", "digits", "--private", "--format", "json").stdout)
    assert private["revealed"] is False and [r["team"] for r in private["rows"]] == \
        ["owls", "bats"]
    assert "digits" in cli("competitions").stdout             # the teacher may list them
    # HARNESS_TOKEN from elsewhere: asked about once, same answers
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "nobody.json"))
    env = {"HARNESS_SERVER": server.url, "HARNESS_TOKEN": token}
    again = json.loads(cli("leaderboard", "digits", "--private", "--format", "json",
                           env=env).stdout)
    assert again["rows"] == private["rows"]
    # a student's token: their own list, and the private board stays hidden
    env["HARNESS_TOKEN"] = owls_token
    mine = json.loads(cli("submissions", "digits", "--format", "json", env=env).stdout)
    assert {r["team"] for r in mine} == {"owls"} and mine[0]["private_score"] is None
    assert "reveal" in cli("leaderboard", "digits", "--private", env=env, code=2).stderr
    assert "--team is for the teacher" in cli("submissions", "digits", "--team", "bats",
                                              env=env, code=2).output


def test_students_read_student_words(server, make_predictions):
    """No teacher command and no server path in what a student reads over HTTP."""
    owls, token = server.h.add_team("owls")
    bats, _ = server.h.add_team("bats")
    mine = server.h.submit("digits", owls, make_predictions(server.home, "digits", 0.9, 0.9))
    theirs = server.h.submit("digits", bats, make_predictions(server.home, "digits"))
    student = server.client(token)
    unknown = student.get("/api/competitions/digitz/files/test.csv")
    assert unknown.status_code == 404
    assert "no competition 'digitz'" in unknown.json()["detail"]
    assert "digits" in unknown.json()["detail"]                   # the ones there are
    refused = student.put("/api/competitions/digits/selection",
                          json={"submission_ids": [theirs["id"]]})
    assert refused.status_code == 404
    assert f"yours that can be selected (newest first): {mine['id']}" in \
        refused.json()["detail"]
    (server.home / "competitions/digits/released/test.csv").rename(
        server.home / "competitions/digits/released/test.moved")
    try:
        gone = student.get("/api/competitions/digits/files/test.csv").json()["detail"]
    finally:
        (server.home / "competitions/digits/released/test.moved").rename(
            server.home / "competitions/digits/released/test.csv")
    assert "tell your teacher" in gone
    for answer in (unknown.json()["detail"], refused.json()["detail"], gone):
        assert "harness " not in answer and str(server.home) not in answer
    # the teacher, on the server machine, gets the fix as a hint
    with pytest.raises(NotFoundError) as err:
        (server.home / "competitions/digits/hidden/solution.csv").rename(
            server.home / "competitions/digits/hidden/moved.csv")
        try:
            server.h.competitions.answer_key("digits", reload=True)
        finally:
            (server.home / "competitions/digits/hidden/moved.csv").rename(
                server.home / "competitions/digits/hidden/solution.csv")
    assert "harness prepare digits --force" in err.value.hint
    assert "harness" not in str(err.value)


def test_remote_baseline_and_rescore(server, cli, tmp_path, monkeypatch, make_predictions):
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "teacher.json"))
    server.route_clients(monkeypatch)
    _, token = server.h.issue_teacher_token()
    cli("login", "--server", server.url, "--token", token)
    sample = tmp_path / "sample.csv"
    sample.write_bytes(make_predictions(server.home, "digits", 0.7, 0.6))
    row = json.loads(cli("team", "baseline", "digits", "sample", "-f", sample,
                         "--format", "json").stdout)
    assert row["baseline"] is True and row["private_score"] == pytest.approx(0.6, abs=0.01)
    assert [r["team"] for r in server.h.leaderboard("digits")["rows"]] == ["sample"]
    assert json.loads(cli("rescore", "digits", "--format", "json").stdout)["rescored"] == 1
