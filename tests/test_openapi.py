"""/openapi.json documents the whole API: an outside fuzzer (schemathesis) run against it
with a team token finds no server error, no undocumented status code, no answer off its
schema and no undocumented content type; every JSON answer has a model, every declared
status its error model."""

from __future__ import annotations

import pytest
import schemathesis                       # a dev extra (pyproject.toml)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

from harness.home import RELEASED_FILES
from harness.server.app import create_app
from harness.service import Harness

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance,
          content_type_conformance]
OPEN, REVEALED, CLOSED = "digits", "breast-cancer", "fertility"
EXAMPLES = 25                       # per operation: 7 operations, 175 requests in all


def _operations() -> list[tuple[str, str]]:
    """(path, method) of every documented operation (the schema needs no harness)."""
    paths = create_app(None).openapi()["paths"]
    return [(path, method.upper()) for path, methods in paths.items() for method in methods]


@pytest.fixture
def fuzzed(prepared_home, make_predictions):
    """(schemathesis schema of an in-process app, team token): an open competition and a
    revealed one with scored submissions (so both boards have rows), a closed one."""
    h = Harness(prepared_home)
    team, token = h.add_team("fuzzers", ["a"])
    for slug in (OPEN, REVEALED):
        h.submit(slug, team, make_predictions(prepared_home, slug, 0.9, 0.8), "first")
    h.close(CLOSED)
    h.close(REVEALED)
    h.reveal(REVEALED)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(h)), token
    h.close_connections()


@pytest.mark.slow
@pytest.mark.parametrize("path,method", _operations())
def test_a_fuzzer_with_a_team_token_finds_nothing(fuzzed, path, method):
    schema, token = fuzzed
    operation = schema[path][method]
    # cases that fit the schema and cases that do not (those must be a documented 422)
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))
    # most cases name a real competition and file, so the fuzzer gets past the 404
    real = st.fixed_dictionaries({"slug": st.sampled_from([None, OPEN, REVEALED, CLOSED]),
                                  "name": st.sampled_from([None, *RELEASED_FILES])})

    @settings(max_examples=EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(case=cases, real=real)
    def run(case, real):
        for key, value in real.items():
            if value and key in (case.path_parameters or {}):
                case.path_parameters[key] = value
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_json_answer_has_a_model_and_every_status_its_error_model():
    spec = create_app(None).openapi()
    schemas = spec["components"]["schemas"]
    seen = set()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            answers = operation["responses"]
            ok = [s for s in answers if s.startswith("2")]
            assert len(ok) == 1, where
            content = answers[ok[0]]["content"]
            if path.endswith("/files/{name}"):
                assert list(content) == ["text/csv", "application/zip"], where
            else:
                assert list(content) == ["application/json"], where
                assert content["application/json"]["schema"], where
            errors = {s: a for s, a in answers.items() if not s.startswith("2")}
            assert {"401", "413", "429"} <= set(errors), where
            for status, answer in errors.items():
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                name = ref.rsplit("/", 1)[1]
                assert name == ("ValidationErrorDetail" if status == "422" else "ErrorDetail"), \
                    (where, status)
                assert answer["description"], (where, status)
                seen.add(status)
            if "Retry-After" not in errors["429"].get("headers", {}):
                pytest.fail(f"{where}: 429 does not document Retry-After")
    assert seen == {"400", "401", "403", "404", "413", "422", "429", "507"}
    assert {"ErrorDetail", "ValidationErrorDetail", "Submission", "UploadAnswer",
            "PublicBoard", "PrivateBoard", "Competition", "Rules"} <= set(schemas)
    # FastAPI's own 422 model is gone: the API answers ValidationErrorDetail's shape
    assert "HTTPValidationError" not in schemas
    assert "503" in spec["info"]["description"]


def test_listings_document_their_pagination_headers():
    paths = create_app(None).openapi()["paths"]
    for path in ("/api/competitions/{slug}/submissions", "/api/competitions/{slug}/leaderboard"):
        headers = paths[path]["get"]["responses"]["200"]["headers"]
        assert {"X-Total-Count", "Link"} <= set(headers), path


def test_request_bodies_read_after_the_token_are_documented():
    from harness.schemas import Selection, UploadForm

    paths = create_app(None).openapi()["paths"]
    select = paths["/api/competitions/{slug}/selection"]["put"]["requestBody"]
    assert select["content"]["application/json"]["schema"] == Selection.model_json_schema()
    upload = paths["/api/competitions/{slug}/submissions"]["post"]["requestBody"]
    form = upload["content"]["multipart/form-data"]["schema"]
    assert form == UploadForm.model_json_schema() and form["required"] == ["file"]


# --- the docs pages work offline: every asset from this server ------------------------------

ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page,script", [("/docs", "swagger-ui-bundle.js"),
                                         ("/redoc", "redoc.standalone.js")])
def test_the_docs_pages_load_every_asset_from_this_server(classroom_client, page, script):
    import re

    from harness.server import limits

    answer = classroom_client.get(page)         # no token: the docs are public
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    # no absolute or protocol-relative URL at all: nothing can come from another host
    assert not re.search(r"https?://|[\"'(]//", html), html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert any(url.endswith("/" + script) for url in assets), assets
    for url in assets:
        assert url.startswith("/"), url
        got = classroom_client.get(url)
        expected = ASSET_TYPES[url[url.rindex("."):]]
        assert got.status_code == 200 and expected in got.headers["content-type"], \
            (url, got.status_code, got.headers.get("content-type"))
        assert len(got.content) > 1000, url
    spec = re.search(r"""(?:url: |spec-url=)["']([^"']+)["']""", html).group(1)
    assert spec == "/openapi.json" and classroom_client.get(spec).json()["info"]["title"]
    # the assets sit behind the same body cap as every route (413, not the mount's 405)
    refused = classroom_client.post(assets[0], content=b"x" * (limits.JSON_BODY_LIMIT + 1))
    assert refused.status_code == 413, refused.text


# --- the client validates every answer with the same models ----------------------------------

SUBMISSION = {"id": 7, "team": "owls", "message": "", "filename": "p.csv",
              "submitted_at": "2026-01-05T10:00:00+00:00", "status": "scored", "error": None,
              "public_score": 0.9, "private_score": None, "selected": False, "final": True,
              "late": False, "baseline": False}


def _client(answers: dict):
    import httpx

    from harness.client import Client

    return Client("example.test", "token", transport=httpx.MockTransport(
        lambda request: answers[request.url.path]))


def test_the_client_answers_the_models_dump():
    import httpx

    board = {"competition": "x", "board": "public", "revealed": False, "leaderboard": "kaggle",
             "metric": "accuracy", "greater_is_better": True, "total_rows": 1, "offset": 0,
             "rows": [{"rank": 1, "team": "owls", "score": 0.9, "entries": 1,
                       "last_submission": "2026-01-05T10:00:00+00:00", "baseline": False,
                       "submission_id": 7, "from_a_newer_server": 1}]}
    client = _client({
        "/api/competitions/x/submissions": httpx.Response(
            201, json={**SUBMISSION, "remaining_today": None, "from_a_newer_server": "x"}),
        "/api/competitions/x/leaderboard": httpx.Response(200, json=board)})
    answer = client.submit("x", __file__)
    # a field this version does not know is dropped; the rest is the answer, unchanged
    assert answer == {**SUBMISSION, "remaining_today": None}
    got = client.leaderboard("x")
    assert "your_team" not in got            # not sent without a token: not made up either
    assert got["rows"][0] == {k: v for k, v in board["rows"][0].items()
                              if k != "from_a_newer_server"}


@pytest.mark.parametrize("answer", [
    {"json": [{"slug": "x"}]},                        # fields missing
    {"json": {"detail": "a dict where a list belongs"}},
    {"text": "<html>a proxy's page</html>"},            # not JSON at all
])
def test_an_answer_off_the_models_is_one_line_naming_a_version_mismatch(answer):
    import httpx

    from harness import __version__
    from harness.errors import HarnessError

    client = _client({"/api/competitions": httpx.Response(200, **answer)})
    with pytest.raises(HarnessError) as info:
        client.competitions()
    message = str(info.value)
    assert "\n" not in message
    assert "answered GET /api/competitions with something unexpected" in message
    assert f"another harness version than this one ({__version__})" in message


def test_a_private_board_row_must_carry_its_public_rank():
    import httpx

    from harness.errors import HarnessError

    row = {"rank": 1, "team": "owls", "score": 0.8, "entries": 1, "baseline": False,
           "last_submission": "2026-01-05T10:00:00+00:00", "submission_id": 7}
    board = {"competition": "x", "board": "private", "revealed": True, "leaderboard": "kaggle",
             "metric": "accuracy", "greater_is_better": True, "total_rows": 1, "offset": 0,
             "rows": [row]}
    client = _client({"/api/competitions/x/leaderboard": httpx.Response(200, json=board)})
    with pytest.raises(HarnessError, match=r"unexpected \(private\.rows\.0\.public_rank: "):
        client.leaderboard("x", "private")
    board["rows"] = [{**row, "public_rank": 2, "public_score": 0.9}]
    client = _client({"/api/competitions/x/leaderboard": httpx.Response(200, json=board)})
    assert client.leaderboard("x", "private")["rows"] == board["rows"]
