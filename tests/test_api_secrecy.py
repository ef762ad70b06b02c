"""The private split stays hidden: probe every endpoint of the app (in process) before the
reveal with no token, a student token, another team's token and a bad token, plus path
tricks on the file download, and check no answer carries a private score, a private rank,
the Usage column or the answer key. After the reveal the same detector does find the
private scores (so it is not blind)."""

from __future__ import annotations

import json
import shutil

import pytest

from harness.home import RELEASED_FILES, load_prepared
from harness.scoring import AnswerKey, score

SLUG = "digits"
# (public right, private right): every private score differs from every public one
PLANS = {"alpha": [(1.0, 0.55), (0.9, 0.81)], "beta": [(0.8, 0.93)]}
BASELINE = (0.7, 0.66)


class World:
    def __init__(self, server):
        self.home, self.h, self.server = server.home, server.h, server
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, list[int]] = {}
        self.secrets: dict[str, list[str]] = {}      # slug -> private scores as text

    def request(self, method, path, token=None, body=None, content_type=None):
        """A raw request (the path as written, no client-side clean-up): (status, body)."""
        headers = []
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        if content_type:
            headers.append(("Content-Type", content_type))
        status, _, data = self.server.raw(method, path, headers, body)
        return status, data


def _secret_texts(value: float) -> list[str]:
    return [repr(value), f"{value:.5f}", f"{value:.4f}", repr(round(value, 5)),
            repr(round(value, 4))]


def _add_secrets(world, slug, data: bytes):
    result = score(data, AnswerKey.from_prepared(load_prepared(world.home, slug)))
    assert abs(result.private - result.public) > 1e-3
    world.secrets.setdefault(slug, []).extend(_secret_texts(result.private))


def _multipart(data: bytes, message="probe"):
    boundary = "probe-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n{message}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request, _prepared_home, tmp_path_factory, serve_app, make_predictions):
    database_url = request.getfixturevalue("fresh_postgres_url")() \
        if request.param == "postgres" else None
    home = tmp_path_factory.mktemp(f"secrecy-{request.param}") / "home"
    shutil.copytree(_prepared_home, home)
    w = World(serve_app(home, database_url))
    harness = w.h
    for slug in (SLUG, "breast-cancer"):
        for seed, (team, plans) in enumerate(PLANS.items()):
            if team not in w.tokens:
                w.tokens[team] = harness.add_team(team)[1]
            for i, (pub, priv) in enumerate(plans):
                data = make_predictions(home, slug, pub, priv, seed=seed * 10 + i)
                body, ctype = _multipart(data)
                status, answer = w.request("POST", f"/api/competitions/{slug}/submissions",
                                           w.tokens[team], body, ctype)
                assert status == 201, answer
                w.ids.setdefault(f"{slug}/{team}", []).append(json.loads(answer)["id"])
                _add_secrets(w, slug, data)
        data = make_predictions(home, slug, *BASELINE, seed=99)
        harness.add_baseline(slug, "teacher's baseline", data)
        _add_secrets(w, slug, data)
    w.tokens["bad"] = "not-a-real-token"
    return w


def _json_values(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _json_values(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _json_values(v, key)


def leaks(world, slug, data: bytes) -> list[str]:
    """What in one answer would give the private split away (empty when nothing does)."""
    text = data.decode("utf-8", "replace")
    solution = load_prepared(world.home, slug).solution_path.read_text()
    found = [s for s in world.secrets[slug] if s in text]
    found += [m for m in (',"Private"', ',"Public"', ",Private\n", "Usage") if m in text]
    if solution.strip() and solution.strip()[:200] in text:
        found.append("solution.csv")
    try:
        parsed = json.loads(text)
    except ValueError:
        return found
    for key in ("private_score", "private_rank", "private"):
        found += [f"{key}={v!r}" for v in _json_values(parsed, key)
                  if v is not None and not isinstance(v, (dict, bool))]
    return found


def endpoints(world, viewer: str | None):
    """Every request a student can make, as (method, path, body, content_type)."""
    base = f"/api/competitions/{SLUG}"
    own = world.ids.get(f"{SLUG}/{viewer}", []) or world.ids[f"{SLUG}/alpha"]
    body, ctype = _multipart((load_prepared(world.home, SLUG).released_dir
                              / "sample_submission.csv").read_bytes())
    yield "GET", "/api/competitions", None, None
    yield "GET", base, None, None
    for name in RELEASED_FILES:
        yield "GET", f"{base}/files/{name}", None, None
    yield "GET", f"{base}/submissions", None, None
    yield "POST", f"{base}/submissions", body, ctype
    yield "PUT", f"{base}/selection", json.dumps({"submission_ids": own[:1]}).encode(), \
        "application/json"
    yield "GET", f"{base}/leaderboard", None, None
    yield "GET", f"{base}/leaderboard?board=public", None, None
    yield "GET", f"{base}/leaderboard?board=private", None, None
    yield "GET", f"{base}/leaderboard?board=Private", None, None
    for page in ("/openapi.json", "/docs", "/", f"/competitions/{SLUG}",
                 f"/competitions/{SLUG}/leaderboard", f"/competitions/{SLUG}?board=private",
                 f"/competitions/{SLUG}/submit", f"/competitions/{SLUG}/shakeup.png"):
        yield "GET", page, None, None


@pytest.mark.parametrize("viewer", [None, "alpha", "beta", "bad"])
def test_no_endpoint_leaks_before_the_reveal(world, viewer):
    token = world.tokens.get(viewer) if viewer else None
    seen = 0
    for method, path, body, ctype in endpoints(world, viewer):
        status, data = world.request(method, path, token, body, ctype)
        assert status < 500, (method, path, data[:300])
        assert not leaks(world, SLUG, data), (viewer, method, path, leaks(world, SLUG, data))
        if "board=private" in path and path.startswith("/api/"):
            assert status in (401, 403), (viewer, path, status)
        if path.endswith(".png"):                  # the public-vs-private plot
            assert status != 200, (viewer, path)
        if viewer == "bad" and path.startswith("/api/"):
            assert status == 401, (method, path, status)
        if viewer is None and path.startswith("/api/"):
            public_board = path.endswith(("/leaderboard", "board=public"))
            expected = 200 if public_board else 422 if path.endswith("board=Private") else 401
            assert status == expected, (method, path, status)
        seen += 1
    assert seen >= 18


def test_a_team_never_sees_another_teams_submissions(world):
    for viewer, other in (("alpha", "beta"), ("beta", "alpha")):
        status, data = world.request("GET", f"/api/competitions/{SLUG}/submissions",
                                     world.tokens[viewer])
        rows = json.loads(data)
        assert status == 200 and rows
        assert {r["team"] for r in rows} == {viewer}
        assert not set(world.ids[f"{SLUG}/{other}"]) & {r["id"] for r in rows}
        foreign = json.dumps({"submission_ids": world.ids[f"{SLUG}/{other}"][:1]}).encode()
        status, _ = world.request("PUT", f"/api/competitions/{SLUG}/selection",
                                  world.tokens[viewer], foreign, "application/json")
        assert status in (400, 403, 404)


TRICKS = [
    "solution.csv", "hidden%2Fsolution.csv", "..%2Fhidden%2Fsolution.csv",
    "..%2f..%2fcompetitions%2fdigits%2fhidden%2fsolution.csv", "%2E%2E%2Fhidden%2Fsolution.csv",
    "..%5Chidden%5Csolution.csv", "%2Fetc%2Fpasswd", "manifest.json", "competition.toml",
    "..%2Fmanifest.json", "..%2Fcompetition.toml", "..", ".", "%2E%2E", "train.csv%00.csv",
    "TRAIN.CSV", "test.csv%2F..%2F..%2Fhidden%2Fsolution.csv", "..%252Fhidden%252Fsolution.csv",
    "../hidden/solution.csv", "../../../competitions/digits/hidden/solution.csv",
]


@pytest.mark.parametrize("viewer", [None, "alpha"])
def test_file_download_path_tricks_are_404(world, viewer):
    token = world.tokens.get(viewer) if viewer else None
    solution_path = load_prepared(world.home, SLUG).solution_path
    tricks = [f"/api/competitions/{SLUG}/files/{t}" for t in TRICKS] + [
        f"/api/competitions/{SLUG}/files/{str(solution_path).replace('/', '%2F')}",
        f"/api/competitions/{SLUG}/files/{solution_path}",
        f"/api/competitions/..%2Fcompetitions%2F{SLUG}%2Fhidden/files/solution.csv",
        f"/api/competitions/{SLUG}%2Fhidden/files/solution.csv",
        f"/api/competitions/{SLUG}/hidden/solution.csv",
        "/static/..%2F..%2F..%2Fhome.py", "/static/../api.py",
    ] + [f"/competitions/{SLUG}/files/{t}" for t in TRICKS]      # the pages' download route
    for path in tricks:
        status, data = world.request("GET", path, token)
        if path.startswith("/api/"):
            assert status in ((404,) if token else (401, 404)), (path, status, data[:200])
        else:                      # pages log in by cookie: without one nothing is served
            assert status in (303, 401, 403, 404), (path, status, data[:200])
        assert not leaks(world, SLUG, data), path
        assert solution_path.read_bytes()[:100] not in data


def test_detector_finds_private_scores_after_the_reveal(world):
    slug = "breast-cancer"
    before = world.request("GET", f"/api/competitions/{slug}/submissions", world.tokens["alpha"])
    assert before[0] == 200 and not leaks(world, slug, before[1])
    world.h.close(slug)
    world.h.reveal(slug)
    status, data = world.request("GET", f"/api/competitions/{slug}/submissions",
                                 world.tokens["alpha"])
    assert status == 200 and leaks(world, slug, data)           # private scores now shown
    status, data = world.request("GET", f"/api/competitions/{slug}/leaderboard?board=private",
                                 world.tokens["beta"])
    assert status == 200 and json.loads(data)["rows"]
