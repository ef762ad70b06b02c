"""Kaggle's own `kaggle` command (2.x, pinned in the dev extra) against a real `harness serve`.

Each command a student uses on Kaggle runs as a subprocess with the environment that
`harness kaggle setup` prints, so it reaches the server the way a student's does: through
the server posing as its HTTP proxy (absolute-form requests). Around that, the routes are
asked directly for what the command does not show: no private score before the reveal in
any answer, 401 for a wrong token, signed links that refuse forgery and expiry, and never
a student's own Kaggle credentials on the wire. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import shlex
import socket
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.home import load_prepared
from harness.server.deps import TOKEN_REQUIRED
from harness.server.kaggle import Links
from harness.service import Harness
from harness.spec import set_rules

SLUG = "digits"
SECRET = "breast-cancer"            # revealed in its own test; nothing else touches it
KAGGLE = Path(sys.executable).with_name("kaggle")
RPC = "/api/v1/competitions.CompetitionApiService/"
# what a student may have from Kaggle itself; none of it may ever reach the class server
STUDENT = {"env_token": "REAL-ENV-TOKEN-123", "file_token": "REAL-FILE-TOKEN-456",
           "key": "REAL-KEY-789", "env_key": "REAL-ENV-KEY-000",
           "refresh": "REAL-REFRESH-TOKEN-abc", "oauth": "REAL-OAUTH-ACCESS-def"}


@dataclass
class Classroom:
    home: Path
    h: Harness
    url: str
    tokens: dict
    root: Path
    envs: dict = field(default_factory=dict)

    def setup(self, team: str, directory: Path | None = None, token: str | None = None,
              env: dict | None = None) -> dict:
        """The environment `harness kaggle setup --format json` prints for ``team``."""
        directory = directory or self.root / f"kaggle-{team}"
        result = CliRunner().invoke(main, ["kaggle", "setup", "--server", self.url, "--token",
                                           token or self.tokens[team], "--dir", str(directory),
                                           "--format", "json"], env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["env"]

    def env(self, team: str) -> dict:
        if team not in self.envs:
            self.envs[team] = self.setup(team)
        return self.envs[team]

    def call(self, method: str, body: dict, team: str | None = "owls", *, prefix="/api/v1",
             headers: dict | None = None) -> httpx.Response:
        """One RPC straight to the server (no proxy), as ``team``."""
        auth = {"Authorization": f"Bearer {self.tokens[team]}"} if team else {}
        return httpx.post(f"{self.url}{prefix}/competitions.CompetitionApiService/{method}",
                          json=body, headers={**auth, **(headers or {})}, timeout=60)


def clean_environment(home: Path) -> dict:
    """This process's environment without any Kaggle, harness or proxy settings, and a
    home of its own (so no real ~/.kaggle is read)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAGGLE_", "HARNESS_")) and "proxy" not in k.lower()}
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "VERBOSE": "", "COLUMNS": "200"}


def kaggle(classroom: Classroom, team: str, *args, code=0, cwd=None, env=None,
           setup_env=None) -> subprocess.CompletedProcess:
    """Run the real `kaggle` command with the environment setup printed for ``team``."""
    base = env or clean_environment(classroom.root / "student-home")
    result = subprocess.run([str(KAGGLE), *map(str, args)], capture_output=True, text=True,
                            cwd=cwd or classroom.root, timeout=120,
                            env={**base, **(setup_env or classroom.env(team))})
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def classroom(live_backend, start_server, tmp_path_factory):
    home, database_url = live_backend
    for slug in (SLUG, SECRET):
        toml = home / "competitions" / slug / "competition.toml"
        toml.write_text(set_rules(toml.read_text(), daily_limit=50, refusal_limit=0))
    h = Harness(home, database_url)
    tokens = {name: h.add_team(name, [name.title()])[1] for name in ("owls", "rockets")}
    server = start_server(home, database_url)
    yield Classroom(home, h, server.url, tokens, tmp_path_factory.mktemp("kaggle"))
    h.close_connections()


def released(home: Path, slug: str, name: str) -> bytes:
    return (load_prepared(home, slug).released_dir / name).read_bytes()


# --- harness kaggle setup -----------------------------------------------------------------------


def test_setup_writes_a_private_folder_and_prints_the_environment(classroom, cli, tmp_path):
    token = classroom.tokens["owls"]
    shell = cli("kaggle", "setup", "--server", classroom.url, "--token", token).stdout
    lines = shell.strip().splitlines()
    assert all(line.startswith("export ") for line in lines), shell
    env = dict(shlex.split(line[len("export "):])[0].split("=", 1) for line in lines)
    port = classroom.url.rsplit(":", 1)[1]
    folder = tmp_path / f"kaggle-127.0.0.1-{port}"          # beside $HARNESS_CONFIG
    assert env == {"KAGGLE_CONFIG_DIR": str(folder),
                   "KAGGLE_API_TOKEN": str(folder / "access_token"),
                   "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
                   "HTTP_PROXY": classroom.url, "http_proxy": classroom.url,
                   "NO_PROXY": "", "no_proxy": ""}
    assert (folder / "access_token").read_text().strip() == token
    assert json.loads((folder / "kaggle.json").read_text()) == {"username": "owls",
                                                                "key": token}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("access_token", "kaggle.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    as_json = cli("kaggle", "setup", "--server", classroom.url, "--token", token,
                  "--format", "json").stdout
    assert json.loads(as_json) == {"env": env}

    wrong = cli("kaggle", "setup", "--server", classroom.url, "--token", "not-a-token",
                "--dir", tmp_path / "wrong", code=2)
    assert "that token is not valid" in wrong.output and not (tmp_path / "wrong").exists()


# --- the commands a student runs ----------------------------------------------------------------


def test_list_files_and_downloads(classroom, tmp_path):
    listing = kaggle(classroom, "owls", "competitions", "list").stdout
    assert SLUG in listing and SECRET in listing
    files = kaggle(classroom, "owls", "competitions", "files", "-c", SLUG).stdout
    names = ["train.csv", "validation.csv", "test.csv", "sample_submission.csv"]
    assert all(name in files for name in names), files

    kaggle(classroom, "owls", "competitions", "download", "-c", SLUG, "-p", tmp_path / "all")
    with zipfile.ZipFile(tmp_path / "all" / f"{SLUG}.zip") as archive:
        assert archive.namelist() == names
        for name in names:
            assert archive.read(name) == released(classroom.home, SLUG, name), name

    kaggle(classroom, "owls", "competitions", "download", "-c", SLUG, "-f", "test.csv",
           "-p", tmp_path / "one")
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["test.csv"]
    assert (tmp_path / "one/test.csv").read_bytes() == released(classroom.home, SLUG,
                                                                 "test.csv")

    hidden = kaggle(classroom, "owls", "competitions", "download", "-c", SLUG, "-f",
                    "solution.csv", "-p", tmp_path / "hidden", code=1)
    assert "no file 'solution.csv' in 'digits'" in hidden.stderr
    assert not (tmp_path / "hidden").exists()


def test_submit_then_submissions_and_leaderboard(classroom, tmp_path, make_predictions):
    predictions = tmp_path / "predictions.csv"
    predictions.write_bytes(make_predictions(classroom.home, SLUG, 0.9, 0.8, seed=1))
    out = kaggle(classroom, "rockets", "competitions", "submit", "-c", SLUG, "-f", predictions,
                 "-m", "kaggle's own command").stdout
    mine = classroom.h.submissions(SLUG, classroom.h.team_named("rockets"))[0]
    assert mine["status"] == "scored" and mine["message"] == "kaggle's own command"
    assert mine["filename"] == "predictions.csv"
    assert f"Submission ref: {mine['id']}" in out
    assert f"submission {mine['id']} scored, public score {mine['public_score']:.5f}" in out

    listed = kaggle(classroom, "rockets", "competitions", "submissions", "-c", SLUG).stdout
    row = next(line for line in listed.splitlines() if line.split()[:1] == [str(mine["id"])])
    assert "predictions.csv" in row and "COMPLETE" in row and f"{mine['public_score']:.5f}" in row

    board = kaggle(classroom, "owls", "competitions", "leaderboard", "-c", SLUG, "--show").stdout
    assert any("rockets" in line and f"{mine['public_score']:.5f}" in line
               for line in board.splitlines()), board

    kaggle(classroom, "owls", "competitions", "leaderboard", "-c", SLUG, "--download",
           "-p", tmp_path / "board")
    with zipfile.ZipFile(tmp_path / "board" / f"{SLUG}.zip") as archive:
        text = archive.read(f"{SLUG}-public-leaderboard.csv").decode()
    assert text.splitlines()[0] == "Rank,TeamName,LastSubmissionDate,Score,SubmissionCount"
    assert f",rockets,{mine['submitted_at'][:10]}" in text


def test_a_refused_file_reads_as_in_harness_submit(classroom, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n1,2,3\n")
    refused = kaggle(classroom, "owls", "competitions", "submit", "-c", SLUG, "-f", bad,
                     "-m", "broken", code=1)
    native = subprocess.run(
        [str(Path(sys.executable).with_name("harness")), "submit", SLUG, "-f", str(bad)],
        capture_output=True, text=True, timeout=120,
        env={**clean_environment(tmp_path / "user"), "HARNESS_SERVER": classroom.url,
             "HARNESS_TOKEN": classroom.tokens["owls"]})
    assert native.returncode == 2 and native.stderr.startswith("error: "), native.stderr
    message = native.stderr.splitlines()[0].removeprefix("error: ")
    assert "3 fields" in message
    assert message in refused.stderr.splitlines()       # after the upload's progress bar
    # the refused file is in the team's list, as one sent with `harness submit` is
    listed = kaggle(classroom, "owls", "competitions", "submissions", "-c", SLUG).stdout
    assert any("bad.csv" in line and "ERROR" in line and "broken" in line
               for line in listed.splitlines()), listed


# --- what the command does not show -------------------------------------------------------------


def _submit_directly(classroom: Classroom, team: str, slug: str, data: bytes,
                     prefix="/api/v1") -> dict:
    start = classroom.call("StartSubmissionUpload", {"competitionName": slug,
                                                     "fileName": "p.csv",
                                                     "contentLength": len(data)}, team,
                           prefix=prefix).json()
    assert httpx.put(start["createUrl"], content=data).status_code == 200
    created = classroom.call("CreateSubmission", {"competitionName": slug,
                                                  "blobFileTokens": start["token"],
                                                  "submissionDescription": "direct"}, team,
                             prefix=prefix)
    assert created.status_code == 200, created.text
    return created.json()


def _every_answer(classroom: Classroom, slug: str) -> list[str]:
    """The text of every answer the routes give about ``slug``, both prefixes."""
    texts = []
    for prefix in ("/v1", "/api/v1"):
        for method, body in [("ListCompetitions", {}),
                             ("ListDataFiles", {"competitionName": slug}),
                             ("ListSubmissions", {"competitionName": slug, "page": 1}),
                             ("GetLeaderboard", {"competitionName": slug}),
                             ("GetLeaderboard", {"competitionName": slug,
                                                 "overridePublic": True})]:
            answer = classroom.call(method, body, prefix=prefix)
            assert answer.status_code == 200, answer.text
            texts.append(answer.text)
        board = classroom.call("DownloadLeaderboard", {"competitionName": slug}, prefix=prefix)
        with zipfile.ZipFile(io.BytesIO(board.content)) as archive:
            texts += [archive.read(name).decode() for name in archive.namelist()]
    return texts


def _texts(value: float) -> set[str]:
    return {repr(value)} | {f"{value:.{n}f}" for n in range(3, 8)}


def test_no_private_score_before_the_reveal(classroom, make_predictions):
    h = classroom.h
    created = [_submit_directly(classroom, "owls", SECRET,
                                make_predictions(classroom.home, SECRET, 0.95, 0.6, seed=s),
                                prefix=prefix) for s, prefix in ((3, "/v1"), (4, "/api/v1"))]
    rows = [r for r in h.all_submissions(SECRET) if r["id"] in {c["ref"] for c in created}]
    private = {t for r in rows for t in _texts(r["private_score_full"])}
    public = {t for r in rows for t in _texts(r["public_score_full"])}
    assert len(rows) == 2 and not private & public      # the search below can tell them apart
    answers = [c["message"] for c in created] + _every_answer(classroom, SECRET)
    found = [(t, a[:200]) for a in answers for t in private if t in a]
    assert not found, found
    assert any(f"{r['public_score']:.5f}" in answers[-1] for r in rows)  # the board has them

    h.close(SECRET)
    h.reveal(SECRET)
    after = classroom.call("ListSubmissions", {"competitionName": SECRET}).json()
    shown = {s["ref"]: s["privateScore"] for s in after["submissions"]}
    for r in rows:
        assert abs(float(shown[r["id"]]) - r["private_score_full"]) < 1e-5
    board = classroom.call("GetLeaderboard", {"competitionName": SECRET}).json()
    private_board = h.leaderboard(SECRET, "private")["rows"]
    assert [s["score"] for s in board["submissions"]] == \
        [f"{r['score']:.5f}" for r in private_board]       # the final board, as on Kaggle


def test_a_wrong_token_is_refused_and_key_login_works(classroom):
    def basic(name, token):
        return {"Authorization": "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()}

    body = {"competitionName": SLUG}
    for headers in ({"Authorization": "Bearer not-a-token"}, basic("owls", "not-a-token"), {}):
        answer = classroom.call("ListSubmissions", body, None, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"code": 401, "message": TOKEN_REQUIRED}
    assert classroom.call("ListSubmissions", body, None,
                          headers=basic("owls", classroom.tokens["owls"])).status_code == 200
    introspect = "/api/v1/security.OAuthService/IntrospectToken"
    assert httpx.post(classroom.url + introspect, json={"token": "not-a-token"}).json() == \
        {"active": False}
    assert httpx.post(classroom.url + introspect, json={"token": classroom.tokens["owls"]}
                      ).json() == {"active": True, "username": "owls"}


def test_links_are_signed_and_short_lived(classroom, tmp_path):
    sample = released(classroom.home, SLUG, "sample_submission.csv")
    start = classroom.call("StartSubmissionUpload", {"competitionName": SLUG,
                                                     "fileName": "s.csv"}).json()
    assert start["createUrl"].startswith(classroom.url + "/")         # absolute, this host
    payload, signature = start["token"].split(".")
    forged = start["createUrl"].replace(signature, signature[::-1])
    expired = Links(classroom.home).sign("upload", json.loads(base64.urlsafe_b64decode(
        payload + "=" * (-len(payload) % 4))), ttl=-1)
    for url in (forged, f"{classroom.url}/api/v1/kaggle-uploads/{expired}"):
        answer = httpx.put(url, content=sample)
        assert answer.status_code == 403 and "not valid or has expired" in answer.json()["message"]
    assert httpx.put(start["createUrl"], content=sample).status_code == 200

    create = {"competitionName": SLUG, "blobFileTokens": start["token"]}
    assert classroom.call("CreateSubmission", create, "rockets").status_code == 403  # not theirs
    assert classroom.call("CreateSubmission", {**create, "blobFileTokens": expired}
                          ).status_code == 403
    assert classroom.call("CreateSubmission", create).status_code == 200
    again = classroom.call("CreateSubmission", create)
    assert again.status_code == 400 and "submitted already" in again.json()["message"]

    # over max_upload_mb: refused when announced, and by Content-Length before any byte
    cap = load_prepared(classroom.home, SLUG).spec.rules.max_upload_bytes
    big = classroom.call("StartSubmissionUpload", {"competitionName": SLUG, "fileName": "b.csv",
                                                   "contentLength": cap + 1})
    assert big.status_code == 413 and "max_upload_mb" in big.json()["message"]
    fresh = classroom.call("StartSubmissionUpload", {"competitionName": SLUG}).json()
    host, port = classroom.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("PUT", fresh["createUrl"].removeprefix(classroom.url))
    conn.putheader("Content-Length", str(cap + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()

    # a download link names one file: it opens nothing else, and not once tampered with
    moved = classroom.call("DownloadDataFile", {"competitionName": SLUG, "fileName": "test.csv"})
    assert moved.status_code == 303
    link = moved.headers["location"]
    assert httpx.get(link).content == released(classroom.home, SLUG, "test.csv")
    grant = link.split("/")[-2]
    tampered = grant[:-2] + ("AA" if not grant.endswith("AA") else "BB")
    for other in (link.replace("/test.csv", "/train.csv"), link.replace(grant, tampered)):
        assert httpx.get(other).status_code == 403


def _raw_post(classroom: Classroom, target: str, host: str, body: dict) -> tuple[bytes, bytes]:
    """(status line and headers, body) of one POST sent as written, token of owls."""
    data = json.dumps(body).encode()
    address, port = classroom.url.removeprefix("http://").split(":")
    with socket.create_connection((address, int(port)), timeout=30) as s:
        s.sendall(f"POST {target} HTTP/1.1\r\nHost: {host}\r\n"
                  f"Authorization: Bearer {classroom.tokens['owls']}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                  "Connection: close\r\n\r\n".encode() + data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return head, payload


def test_absolute_form_requests_are_served(classroom):
    """What a client sends to its HTTP proxy: the server serves it as its own path."""
    head, data = _raw_post(classroom, f"http://localhost{RPC}ListDataFiles", "localhost",
                           {"competitionName": SLUG})
    assert head.startswith(b"HTTP/1.1 200"), head
    assert [f["name"] for f in json.loads(data)["files"]][0] == "train.csv"
    # a target naming another host than the Host header is not taken for this server's
    head, _ = _raw_post(classroom, f"http://evil.example{RPC}ListDataFiles", "localhost",
                        {"competitionName": SLUG})
    assert head.startswith(b"HTTP/1.1 404"), head
    # harness's own commands still work in a shell that has the class server as its proxy
    with httpx.Client(proxy=classroom.url, timeout=30) as client:
        assert [c["slug"] for c in client.get(
            classroom.url + "/api/competitions",
            headers={"Authorization": f"Bearer {classroom.tokens['owls']}"}).json()] \
            == sorted([SLUG, SECRET, "fertility", "noise-binary"])


def test_a_students_own_kaggle_credentials_never_reach_the_server(classroom, tmp_path):
    home = tmp_path / "student"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle/kaggle.json").write_text(json.dumps({"username": "me",
                                                          "key": STUDENT["key"]}))
    (home / ".kaggle/access_token").write_text(STUDENT["file_token"])
    # an OAuth login whose access token has expired: the client would refresh it
    (home / ".kaggle/credentials.json").write_text(json.dumps({
        "refresh_token": STUDENT["refresh"], "access_token": STUDENT["oauth"],
        "access_token_expiration": "2000-01-01T00:00:00+00:00", "username": "me"}))
    for path in (home / ".kaggle").iterdir():
        path.chmod(0o600)
    env = {**clean_environment(home), "KAGGLE_API_TOKEN": STUDENT["env_token"],
           "KAGGLE_USERNAME": "me", "KAGGLE_KEY": STUDENT["env_key"], "VERBOSE": "1"}
    # the student's own token is no class token: refused, never taken for one
    assert classroom.call("ListSubmissions", {"competitionName": SLUG}, None, headers={
        "Authorization": f"Bearer {STUDENT['env_token']}"}).status_code == 401

    setup_env = classroom.setup("owls", tmp_path / "class", env=env)
    # VERBOSE: the client prints every request it sends, headers and body
    trace = kaggle(classroom, "owls", "competitions", "submissions", "-c", SLUG, env=env,
                   setup_env=setup_env)
    sent = trace.stdout + trace.stderr
    assert f"Authorization: Bearer {classroom.tokens['owls']}" in sent
    assert not [s for s in STUDENT.values() if s in sent]

    # a class token that stopped working (a typo, a new token): still none of the student's,
    # not even the OAuth refresh the client tries when nothing else signs it in
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        del env[name]
    Path(setup_env["KAGGLE_API_TOKEN"]).write_text("stale-class-token\n")
    trace = kaggle(classroom, "owls", "competitions", "submissions", "-c", SLUG, env=env,
                   setup_env=setup_env, code=1)
    sent = trace.stdout + trace.stderr
    assert not [s for s in STUDENT.values() if s in sent]
    assert "Authorization: Bearer stale-class-token" in sent and "\n401\n" in sent


def test_links_work_across_worker_processes(classroom, start_server, make_predictions):
    """Start, PUT and Create land on whichever worker accepts each connection: every one
    must take the others' links and find the others' uploads (the key and the waiting
    files are in the home). A key of each process's own would fail most rounds."""
    server = start_server(classroom.home, classroom.h.database_url, workers=2)
    other = Classroom(classroom.home, classroom.h, server.url, classroom.tokens, classroom.root)
    for seed in range(6):
        created = _submit_directly(other, "rockets", SLUG,
                                   make_predictions(classroom.home, SLUG, 0.8, 0.8, seed=seed))
        assert "scored" in created["message"]
