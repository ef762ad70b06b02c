"""The secrecy walk: every route of the app, as everyone, before and after the reveal.

The routes come from the server itself: every path and method of /openapi.json and every
other route of the app (the HTML pages, the docs, the static files), with path and query
parameters filled with real slugs, released names and submission ids, other teams' ids,
unknown ids and path tricks. Each is called as no one, as team alpha and as team beta (by
Bearer header and by login cookie, with a valid CSRF token for the forms). The teacher has
no HTTP identity: the teacher's side is read through the CLI and the home (the private
board, every private score), and none of it may appear over HTTP before the reveal.

Before the reveal no answer (body or headers) holds a private score (each submission's,
computed here with harness.scoring.score, at several precisions), the private board's
order, a Usage value or Public/Private label of a test row, the answer key, or another
team's submissions. After the reveal the private board and the private scores do appear
(the detector is not blind). Refusals read the same, and take the same time, whether the
id involved is a public or a private one.

The app is served in process (tests/conftest.py AppServer: requests with their paths as
written, on one event loop as under uvicorn); nothing here needs a socket.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from starlette.routing import Mount

import harness
from harness.cli.app import main
from harness.home import RELEASED_FILES, load_prepared
from harness.scoring import AnswerKey, score
from harness.server.app import create_app
from harness.server.pages import CSRF_COOKIE, TOKEN_COOKIE, _csrf_value
from harness.service import Harness
from harness.spec import set_rules

SLUG = "digits"
TEAMS = ("team-alpha", "team-beta")
# (public right, private right) per submission: alpha leads the public board and is last on
# the private one, so the private order differs from the public one in every phase
PLANS = {"team-alpha": [(0.97, 0.58), (0.93, 0.62)], "team-beta": [(0.84, 0.91), (0.82, 0.94)]}
WALK_PLANS = {"team-alpha": (0.71, 0.57), "team-beta": (0.69, 0.95)}
BASELINE = (0.76, 0.78)
SLUG_VALUES = [SLUG, "no-such-competition", "..", "%2E%2E%2Fhidden", f"{SLUG}%2F..%2F{SLUG}",
               "DIGITS", f"{SLUG}%00"]
NAME_VALUES = list(RELEASED_FILES) + ["solution.csv", "..%2Fhidden%2Fsolution.csv",
                                      "manifest.json", "%2E%2E"]
GENERIC_VALUES = ["1", "-1", "x", "..%2F..%2Fhidden"]


@dataclass
class Hit:
    """One answer of the walk."""

    phase: str
    viewer: str | None
    method: str
    path: str
    status: int
    text: str                      # headers and body, decoded

    def __str__(self):
        who = self.viewer or "no one"
        return f"[{self.phase}] {who} {self.method} {self.path} -> {self.status}"


@dataclass
class World:
    home: Path
    h: Harness
    server: object                 # tests/conftest.py AppServer, the app in process
    database_url: str | None
    tokens: dict = field(default_factory=dict)
    markers: dict = field(default_factory=dict)      # team -> text only that team may see
    ids: dict = field(default_factory=dict)          # team -> its submission ids
    private_scores: list = field(default_factory=list)
    public_scores: list = field(default_factory=list)
    walk_files: dict = field(default_factory=dict)   # (phase, team, route) -> CSV bytes
    nonce: str = "walk-nonce-0123456789"

    def key(self) -> AnswerKey:
        return AnswerKey.from_prepared(load_prepared(self.home, SLUG))

    def predictions(self, make, team, public, private, seed) -> bytes:
        """A team's prediction file, its true scores remembered as secrets."""
        data = make(self.home, SLUG, public, private, seed=seed)
        result = score(data, self.key())
        self.private_scores.append(result.private)
        self.public_scores.append(result.public)
        return data

    def request(self, method, path, viewer=None, body=None, content_type=None) -> tuple:
        """A raw request (no client-side path clean-up) as ``viewer``: (status, text)."""
        headers = {"Cookie": f"{CSRF_COOKIE}={self.nonce}",
                   **({"Content-Type": content_type} if content_type else {})}
        if viewer:
            headers["Authorization"] = f"Bearer {self.tokens[viewer]}"
            headers["Cookie"] += f"; {TOKEN_COOKIE}={self.tokens[viewer]}"
        status, answer_headers, data = self.server.raw(method, path, headers.items(), body)
        head = "\n".join(f"{k}: {v}" for k, v in answer_headers)
        return status, head + "\n\n" + data.decode("utf-8", "replace")

    def csrf(self, viewer) -> str:
        return _csrf_value(self.nonce, self.tokens[viewer] if viewer else "")


def multipart(data: bytes, message="walk", field_name="file") -> tuple[bytes, str]:
    boundary = f"walk-{uuid.uuid4().hex}"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n"
            f"{message}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f"name=\"{field_name}\"; filename=\"p.csv\"\r\nContent-Type: text/csv\r\n\r\n"
            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def form(pairs: list[tuple[str, str]]) -> tuple[bytes, str]:
    return "&".join(f"{quote(k)}={quote(str(v))}" for k, v in pairs).encode(), \
        "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def world(live_backend, serve_app, make_predictions):
    home, database_url = live_backend
    toml = home / "competitions" / SLUG / "competition.toml"
    # the walk submits a lot, and sends hundreds of refused files (timed)
    toml.write_text(set_rules(toml.read_text(), daily_limit=50, refusal_limit=0))
    server = serve_app(home, database_url)
    h = server.h
    w = World(home, h, server, database_url)
    for i, (team, plans) in enumerate(PLANS.items()):
        w.tokens[team] = h.add_team(team)[1]
        w.markers[team] = f"note-of-{team}-{uuid.uuid4().hex[:8]}"
        for j, (pub, priv) in enumerate(plans):
            body, ctype = multipart(w.predictions(make_predictions, team, pub, priv, 10 * i + j),
                                    message=w.markers[team])
            status, text = w.request("POST", f"/api/competitions/{SLUG}/submissions", team,
                                     body, ctype)
            assert status == 201, text
            w.ids.setdefault(team, []).append(json.loads(text.split("\n\n", 1)[1])["id"])
        bad, ctype = multipart(b"id,label\n1,2,3\n", message=w.markers[team] + "-error")
        assert w.request("POST", f"/api/competitions/{SLUG}/submissions", team, bad,
                         ctype)[0] == 400
    h.add_baseline(SLUG, "baseline", w.predictions(make_predictions, None, *BASELINE, 99))
    for phase, (i, team) in product(("before", "after"), enumerate(TEAMS)):
        for k, route in enumerate(("api", "page", "kaggle")):
            w.walk_files[phase, team, route] = w.predictions(
                make_predictions, team, *WALK_PLANS[team], seed=1000 + 100 * i + 10 * k
                + (phase == "after"))
    # the detector must be able to tell a private score from every public one
    public_texts = {t for v in w.public_scores for t in secret_texts(v)}
    assert not public_texts & {t for v in w.private_scores for t in secret_texts(v)}
    return w


# --- what must not leak -------------------------------------------------------------------------

def secret_texts(value: float) -> set[str]:
    return {repr(value), f"{value:.4f}", f"{value:.5f}", f"{value:.6f}",
            repr(round(value, 4)), repr(round(value, 5)), repr(round(value, 6))}


def secrets_pattern(values) -> re.Pattern:
    texts = sorted({t for v in values for t in secret_texts(v)}, key=len, reverse=True)
    return re.compile(r"(?<![0-9])(" + "|".join(map(re.escape, texts)) + r")(?![0-9])")


# the Usage column, or a test id next to its label (CSV, JSON object, or list)
USAGE_LABEL = re.compile(r"Usage|\d[\"']?\s*[,;\t:]\s*[\"']?(Public|Private)\b")
TEAMCOL = re.compile(r'<td class="teamcol">([^<]+?)\s*<')


def board_orders(text: str):
    """Every team order a body shows: JSON rows with rank and team, HTML board tables."""
    body = text.split("\n\n", 1)[-1]
    try:
        parsed = json.loads(body)
    except ValueError:
        for table in re.findall(r'data-testid="(\w+)-board"(.*?)</table>', body, re.S):
            yield table[0], [t for t in TEAMCOL.findall(table[1]) if t in TEAMS]
        return
    stack = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            if node and all(isinstance(r, dict) and {"rank", "team"} <= r.keys() for r in node):
                kind = parsed.get("board", "?") if isinstance(parsed, dict) else "?"
                yield kind, [r["team"] for r in node if not r.get("baseline")]
            stack.extend(node)


def key_lines(home) -> set[str]:
    """The answer key as `id,target` lines (what a leak of solution.csv would show)."""
    solution = pd.read_csv(load_prepared(home, SLUG).solution_path)
    target = load_prepared(home, SLUG).spec.data.target
    return {f"{i},{y}" for i, y in zip(solution["id"], solution[target])}


def leaks(world, hit: Hit, secrets: re.Pattern, keys: set[str], orders: dict) -> list[str]:
    """What in one answer gives away what ``hit.viewer`` must not see (empty: nothing)."""
    found = [f"private score {m.group(0)}" for m in secrets.finditer(hit.text)][:3]
    found += [f"test-row label {m.group(0)!r}" for m in USAGE_LABEL.finditer(hit.text)][:3]
    lines = set(hit.text.replace("\r", "").split("\n"))
    if len(lines & keys) > 0.5 * len(keys) or "id,label,Usage" in hit.text:
        found.append("the answer key")
    for team, marker in world.markers.items():
        if marker in hit.text and team != hit.viewer:
            found.append(f"{team}'s submissions")
    for kind, teams in board_orders(hit.text):
        if kind == "private" or (len(teams) > 1 and teams != orders["public"]):
            found.append(f"a {kind} board in the order {teams}")
    if re.search(r'"private_(score|rank)":\s*[-0-9]', hit.text):
        found.append("a private_score value")
    return found


# --- the walk ------------------------------------------------------------------------------------

def fill(name: str, world, viewer) -> list[str]:
    """Values for a path or query parameter called ``name``."""
    own = world.ids.get(viewer) or world.ids[TEAMS[0]]
    other = world.ids[TEAMS[1] if viewer == TEAMS[0] else TEAMS[0]]
    if name == "slug":
        return SLUG_VALUES
    if name in ("name", "filename", "file", "path"):
        return NAME_VALUES
    if name == "board":
        return ["public", "private", "Private", ""]
    if name.endswith("id") or name in ("submitted",):
        return [str(own[0]), str(other[0]), "999999", "-1", str(2**63)]
    return GENERIC_VALUES


def _schema(spec, schema):
    while "$ref" in schema:
        node = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def id_lists(world, viewer) -> list[list[int]]:
    own = world.ids.get(viewer) or world.ids[TEAMS[0]]
    other = world.ids[TEAMS[1] if viewer == TEAMS[0] else TEAMS[0]]
    return [own[:1], own[:2], other[:1], [own[0], other[0]], [999999], [2**63], []]


def api_bodies(spec, op, world, viewer, phase) -> list[tuple]:
    """(body, content type) variants for one OpenAPI operation."""
    content = op.get("requestBody", {}).get("content", {})
    if not content:
        return [(None, None)]
    if "multipart/form-data" in content:
        good = world.walk_files[phase, viewer or TEAMS[0], "api"]
        return [multipart(good, world.markers.get(viewer, "anonymous")),
                multipart(b"id,label\n1,2,3\n"), multipart(good, field_name="upload")]
    schema = _schema(spec, content["application/json"]["schema"])
    bodies = []
    for prop, sub in schema.get("properties", {}).items():
        sub = _schema(spec, sub)
        if sub.get("type") == "array" and _schema(spec, sub.get("items", {})).get("type") \
                == "integer":
            values = id_lists(world, viewer)
        elif sub.get("type") == "integer":
            values = [int(v) for v in fill(prop, world, viewer) if v.lstrip("-").isdigit()]
        else:
            values = ["x", "..%2F"]
        bodies += [json.dumps({prop: v}).encode() for v in values]
    return [(b, "application/json") for b in bodies + [b"{}", b"not json"]]


def variants(path: str, path_names: list[str], query_names: list[str], world, viewer):
    """``path`` filled with real values, then with each parameter varied alone (the others
    real): (url, is_the_real_one). Path parameters are ``{name}`` or ``{name:convertor}``."""
    real = {n: fill(n, world, viewer)[0] for n in path_names}

    def url(values):
        out = path
        for n, v in values.items():
            out = re.sub(r"{" + n + r"(?::\w+)?}", v, out)
        return out

    yield url(real), True
    for n in path_names:
        for v in fill(n, world, viewer)[1:]:
            yield url({**real, n: v}), False
    for q in query_names:
        for v in fill(q, world, viewer):
            yield f"{url(real)}?{q}={v}", False


def api_requests(spec, world, viewer, phase):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters", [])
            bodies = api_bodies(spec, op, world, viewer, phase)
            for url, real in variants(path, [p["name"] for p in params if p["in"] == "path"],
                                      [p["name"] for p in params if p["in"] == "query"],
                                      world, viewer):
                for body, ctype in (bodies if real else bodies[:1]):
                    yield method.upper(), url, body, ctype


def page_bodies(route_name, world, viewer, phase) -> list[tuple]:
    """(query, body, content type) variants for the pages' POST routes, by route name."""
    csrf = world.csrf(viewer)
    token = world.tokens.get(viewer, "")
    own = world.ids.get(viewer) or world.ids[TEAMS[0]]
    other = world.ids[TEAMS[1] if viewer == TEAMS[0] else TEAMS[0]]
    if route_name.startswith("kaggle_"):
        return kaggle_bodies(route_name, world, viewer, phase)
    if route_name == "login":       # no one: an empty token (counts as one failed login)
        return [("", *form([("csrf", csrf), ("token", token)]))]
    if route_name == "logout":
        return [("", *form([("csrf", csrf)]))]
    if route_name == "submit":
        good = world.walk_files[phase, viewer or TEAMS[0], "page"]
        return [(f"?csrf={csrf}", *multipart(good, world.markers.get(viewer, "anonymous"))),
                (f"?csrf={csrf}", *multipart(b"id,label\n1,2,3\n")),
                ("?csrf=forged", *multipart(good))]
    if route_name == "admin_login":  # a team's token (refused) or, as no one, an empty one
        return [("", *form([("csrf", csrf), ("token", token)]))]
    if route_name in ("admin_logout", "admin_action"):
        return [("", *form([("csrf", csrf), ("confirm", "reveal")]))]
    if route_name == "select":
        return [("", *form([("csrf", csrf)] + [("submission_id", i) for i in ids]))
                for ids in (own[:1], other[:1], [999999], ["x"])]
    raise AssertionError(f"the walk has no body for the page route {route_name!r}: add one")


KAGGLE_RPC = "/api/v1/competitions.CompetitionApiService/"


def kaggle_upload(world, team, data: bytes) -> str:
    """The upload token of ``data`` sent the kaggle command's way by ``team`` (its
    StartSubmissionUpload, then the PUT to the link it answered)."""
    body = json.dumps({"competitionName": SLUG, "fileName": "k.csv"}).encode()
    status, text = world.request("POST", KAGGLE_RPC + "StartSubmissionUpload", team, body,
                                 "application/json")
    assert status == 200, text
    start = json.loads(text.split("\n\n", 1)[1])
    assert world.request("PUT", urlsplit(start["createUrl"]).path, None, data, "text/csv")[0] \
        == 200
    return start["token"]


def kaggle_bodies(route_name, world, viewer, phase) -> list[tuple]:
    """(query, body, content type) variants for the kaggle command's routes
    (harness.server.kaggle), by route name: real uploads for CreateSubmission."""
    def js(value):
        return "", json.dumps(value).encode(), "application/json"

    named = {"competitionName": SLUG}
    common = [js(named), js({"competitionName": "..%2Fhidden"}), js({**named, "pageToken": "x"}),
              js({}), ("", b"not json", "application/json")]
    if route_name == "kaggle_upload":           # a PUT to a link; the walk's links are forged
        return [("", b"id,label\n1,2\n", "text/csv")]
    if route_name == "kaggle_introspect_token":
        return [js({"token": world.tokens.get(viewer, "")}), js({"token": "x"}), js({})]
    if route_name == "kaggle_download_data_file":
        return [js({**named, "fileName": name}) for name in NAME_VALUES] + common
    if route_name in ("kaggle_get_leaderboard", "kaggle_download_leaderboard"):
        return [js({**named, "overridePublic": True})] + common
    if route_name == "kaggle_start_submission_upload":
        return [js({**named, "fileName": "k.csv", "contentLength": 10})] + common
    if route_name == "kaggle_create_submission":
        team = viewer or TEAMS[0]
        other = TEAMS[1] if team == TEAMS[0] else TEAMS[0]
        uploads = [kaggle_upload(world, team, world.walk_files[phase, team, "kaggle"]),
                   kaggle_upload(world, team, b"id,label\n1,2,3\n"),
                   kaggle_upload(world, other, b"id,label\n1,2\n"), "forged.token"]
        return [js({**named, "blobFileTokens": token,
                    "submissionDescription": world.markers.get(viewer, "anonymous")})
                for token in uploads] + common
    return common


def app_routes(app):
    """Every route of the app, with routers included into it flattened (newer FastAPI keeps
    an included router as one entry of ``app.routes``)."""
    stack = list(reversed(app.routes))
    while stack:
        route = stack.pop()
        if hasattr(route, "original_router"):
            prefix = getattr(route.include_context, "prefix", "")
            assert not prefix, "an include prefix: the walk would need to add it"
            stack.extend(reversed(route.original_router.routes))
        else:
            yield route


def page_requests(app, spec, world, viewer, phase):
    """Every route of the app that /openapi.json does not list: pages, docs, static files."""
    for route in app_routes(app):
        if isinstance(route, Mount):
            directory = Path(route.app.directory)
            # the docs pages' Swagger UI and ReDoc bundles come from an installed package,
            # the same bytes for everyone (ReDoc's code holds the word "Usage"): only the
            # escapes are tried there; the harness's own static files are read in full
            ours = directory.resolve().is_relative_to(Path(harness.__file__).resolve().parent)
            files = [p.relative_to(directory).as_posix() for p in directory.rglob("*")
                     if p.is_file()] if ours else []
            for name in files + ["..%2F..%2Fservice.py", "../api.py", "%2E%2E%2Fpages.py"]:
                yield "GET", f"{route.path}/{name}", None, None
            continue
        if route.path in spec["paths"]:
            continue
        names = re.findall(r"{(\w+)(?::\w+)?}", route.path)
        dependant = getattr(route, "dependant", None)
        query_names = [q.name for q in dependant.query_params] if dependant else []
        for method in sorted(route.methods - {"HEAD"}):
            for url, real in variants(route.path, names, query_names if method == "GET" else [],
                                      world, viewer):
                if method == "GET":
                    yield method, url, None, None
                    continue
                bodies = page_bodies(route.name, world, viewer, phase)
                for query, body, ctype in (bodies if real else bodies[:1]):
                    yield method, url + query, body, ctype


def walk(world, phase: str) -> list[Hit]:
    spec = json.loads(world.request("GET", "/openapi.json")[1].split("\n\n", 1)[1])
    app = create_app(world.h)

    def walk_as(viewer) -> list[Hit]:
        hits = []
        for requests in (api_requests(spec, world, viewer, phase),
                         page_requests(app, spec, world, viewer, phase)):
            for method, path, body, ctype in requests:
                status, text = world.request(method, path, viewer, body, ctype)
                hits.append(Hit(phase, viewer, method, path, status, text))
        return hits

    # the viewers walk at the same time (each in order): quicker, and a little concurrency
    with ThreadPoolExecutor(3) as pool:
        return [hit for hits in pool.map(walk_as, (None, *TEAMS)) for hit in hits]


def teacher_view(world) -> dict:
    """The teacher's side, read as the teacher reads it: the CLI on the home."""
    args = ["leaderboard", SLUG, "--private", "--home", str(world.home), "--format", "json"]
    if world.database_url:
        args += ["--database-url", world.database_url]
    result = CliRunner().invoke(main, args, env={"HARNESS_SERVER": ""})
    assert result.exit_code == 0, result.output
    board = json.loads(result.output)
    rows = board["rows"] if isinstance(board, dict) else board
    return {"private": [r["team"] for r in rows if not r.get("baseline")],
            "public": [r["team"] for r in world.h.leaderboard(SLUG)["rows"]
                       if not r.get("baseline")],
            "all": world.h.all_submissions(SLUG)}


def test_secrecy_walk(world):
    """The whole walk before the reveal, the reveal, and the walk again; then the checks.

    One test per backend on purpose: under ``pytest -n 2`` a fixture shared by several
    tests would be built (the walk run) once on each worker.
    """
    before_view = teacher_view(world)
    before = walk(world, "before")
    world.h.close(SLUG)
    world.h.reveal(SLUG)
    after = walk(world, "after")
    walks = {"before": before, "after": after, "view": before_view,
             "final": teacher_view(world)}
    check_coverage(walks, world)
    check_no_server_error(walks)
    check_before_the_reveal(walks, world)
    check_after_the_reveal(walks, world)


def check_coverage(walks, world):
    spec = json.loads(world.request("GET", "/openapi.json")[1].split("\n\n", 1)[1])
    hits = walks["before"]
    assert len(hits) > 400
    for path, ops in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{\w+\}", "[^?]+", path) + r"(\?|$)")
        for method in ops:
            assert any(h.method == method.upper() and pattern.match(h.path) for h in hits), \
                (method, path)
    for route in app_routes(create_app(world.h)):
        prefix = route.path.split("{")[0]
        assert any(h.path.startswith(prefix) for h in hits), route.path
    # the walk reached real data, not only refusals: logged in by header and by cookie
    assert {h.status for h in hits} >= {200, 201, 303, 401, 403, 404}
    for team in TEAMS:
        for path in (f"/api/competitions/{SLUG}/submissions", f"/competitions/{SLUG}/submit"):
            assert any(h.viewer == team and h.path == path and h.method == "GET"
                       and world.markers[team] in h.text for h in hits), (team, path)
    # and it saw the public board as JSON and as a page (so the order check ran)
    shown = {(h.path.startswith("/api/"), kind) for h in hits for kind, teams in
             board_orders(h.text) if len(teams) == 2}
    assert shown >= {(True, "public"), (False, "public")}


def check_no_server_error(walks):
    bad = [str(h) for h in walks["before"] + walks["after"]
           if h.status >= 500 or "Traceback" in h.text]
    assert not bad, "\n".join(bad[:20])


def check_before_the_reveal(walks, world):
    view = walks["view"]
    assert view["private"] != view["public"]        # the rank check has teeth
    secrets = secrets_pattern(world.private_scores)
    keys = key_lines(world.home)
    found = [f"{h}: {leaks(world, h, secrets, keys, view)}" for h in walks["before"]
             if leaks(world, h, secrets, keys, view)]
    assert not found, "\n".join(found[:20])
    # every private score of the test was searched for (the teacher's view agrees)
    stored = {r["private_score_full"] for r in walks["final"]["all"] if r["status"] == "scored"}
    assert stored <= set(world.private_scores)
    assert len(stored) >= 7


def check_after_the_reveal(walks, world):
    """The private side shows (the walk is not blind); still nothing else leaks."""
    final = walks["final"]
    secrets = secrets_pattern(world.private_scores)
    keys = key_lines(world.home)
    after = walks["after"]
    boards = [(h, kind, teams) for h in after for kind, teams in board_orders(h.text)
              if kind == "private"]
    assert any(h.path.startswith("/api/") for h, _, _ in boards)          # the JSON board
    assert any(not h.path.startswith("/api/") for h, _, _ in boards)      # and the page
    assert all(teams == final["private"] for _, _, teams in boards)
    own = [h for h in after if h.viewer == TEAMS[0] and h.method == "GET"
           and h.path == f"/api/competitions/{SLUG}/submissions"]
    assert own and all(secrets.search(h.text) for h in own)            # not a blind detector
    for h in after:             # still: no answer key, no labels, no other team's rows
        problems = [p for p in leaks(world, h, secrets, keys, final)
                    if not p.startswith(("private score", "a private board", "a public board",
                                         "a private_score"))]
        assert not problems, (str(h), problems)


# --- refusals about a public id and about a private id: same words, same status, same time ------

def _refused_file(world, test_id: int, case: str) -> bytes:
    """The released sample with the row of ``test_id`` first, broken in one way by ``case``."""
    lines = (load_prepared(world.home, SLUG).released_dir / "sample_submission.csv"
             ).read_text().splitlines()
    header, rows = lines[0], lines[1:]
    mine = next(r for r in rows if r.split(",")[0] == str(test_id))
    rest = [r for r in rows if r is not mine]
    body = {"missing": rest, "duplicate": [mine] + rest + [mine],
            "bad value": [f"{test_id},banana"] + rest, "empty value": [f"{test_id},"] + rest,
            "extra cell": [mine + ",1"] + rest}[case]
    return "\n".join([header] + body).encode()


def _id_pairs(world, n=2) -> list[tuple[int, int]]:
    """(public id, private id) pairs with as many digits each, so the files are alike."""
    key = world.key()
    rng = np.random.default_rng(7)
    public, private = key.ids[key.public], key.ids[~key.public]
    pairs = []
    while len(pairs) < n:
        p, q = int(rng.choice(public)), int(rng.choice(private))
        if len(str(p)) == len(str(q)) and str(p) not in str(q) and str(q) not in str(p):
            pairs.append((p, q))
    return pairs


def _masked(text: str, *ids: int) -> str:
    return re.sub(r"(?<![0-9])(" + "|".join(map(str, ids)) + r")(?![0-9])", "<ID>", text)


def _upload(world, data: bytes, page=False) -> tuple[int, str]:
    """(status, the refusal's words) from the API or from the upload page."""
    team = TEAMS[0]
    body, ctype = multipart(data, "parity")
    if not page:
        status, text = world.request("POST", f"/api/competitions/{SLUG}/submissions", team,
                                     body, ctype)
        return status, json.loads(text.split("\n\n", 1)[1])["detail"]
    status, text = world.request("POST", f"/competitions/{SLUG}/submit?csrf={world.csrf(team)}",
                                 team, body, ctype)
    found = re.search(r'data-testid="upload-error">(.*?)</p>', text, re.S)
    return status, found.group(1) if found else text[-300:]


CASES = ("missing", "duplicate", "bad value", "empty value", "extra cell")


def _timings(world, files: list[bytes], tries: int) -> list[float]:
    """Medians of ``tries`` interleaved uploads of each file (interleaved: same noise)."""
    times = [[] for _ in files]
    for _ in range(tries):
        for i, data in enumerate(files):
            start = time.perf_counter()
            status, _ = _upload(world, data)
            times[i].append(time.perf_counter() - start)
            assert status == 400
    return [statistics.median(t) for t in times]


def _same_time(world, files: list[bytes]) -> str | None:
    """None when two refusals take the same time, else the medians measured."""
    _timings(world, files, 3)                                     # warm up
    for _ in range(3):    # a real difference shows every round; noise on a busy box does not
        public, private = _timings(world, files, 20)
        if abs(public - private) <= max(0.3 * min(public, private), 0.005):
            return None
    return f"median {public * 1e3:.1f} ms for a public id, {private * 1e3:.1f} ms for a private id"


def test_refusals_are_alike_for_public_and_private_ids(world):
    """Same status and words (the id masked) from the API and the upload page, same time."""
    named = set()
    for case in CASES:
        for public_id, private_id in _id_pairs(world):
            for page in (False, True):
                a = _upload(world, _refused_file(world, public_id, case), page)
                b = _upload(world, _refused_file(world, private_id, case), page)
                assert 400 <= a[0] < 500, a
                masked = _masked(a[1], public_id, private_id)
                assert (a[0], masked) == (b[0], _masked(b[1], public_id, private_id)), \
                    (case, page, a, b)
                if "<ID>" in masked:
                    named.add(case)
    assert named >= {"missing", "duplicate"}       # the refusals do name the id
    public_id, private_id = _id_pairs(world, 1)[0]
    slow = {case: _same_time(world, [_refused_file(world, public_id, case),
                                     _refused_file(world, private_id, case)])
            for case in ("missing", "duplicate", "bad value")}
    assert not any(slow.values()), slow
