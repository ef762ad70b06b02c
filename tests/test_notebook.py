"""`from harness import Client`: the notebook client, and the worked example notebook.

The client runs in process against the app (conftest.py AppServer): its defaults, its
DataFrames, and its check before an upload, whose refusals must be the server's own
words for the same file. The example notebook (examples/notebook.ipynb) is executed by a
real Jupyter kernel against a real `harness serve` on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import HarnessError, SubmissionError
from harness.home import RELEASED_FILES, load_prepared

JUDGES = itertools.count()
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "notebook.ipynb"


@pytest.fixture(scope="module")
def classroom(_prepared_home, tmp_path_factory, serve_app):
    home = tmp_path_factory.mktemp("notebook") / "home"
    shutil.copytree(_prepared_home, home)
    server = serve_app(home)
    return {"server": server, "home": home, "h": server.h}


@pytest.fixture
def client(classroom, monkeypatch, tmp_path):
    """A factory of notebook clients talking to the classroom in process, with no login
    from the environment or from a file (unless the test writes one)."""
    from harness import Client

    classroom["server"].route_clients(monkeypatch)
    for name in ("HARNESS_SERVER", "HARNESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "credentials.json"))
    made = []

    def make(*args, **kwargs):
        made.append(Client(*args, **kwargs))
        return made[-1]

    yield make
    for c in made:
        c.close()


def new_team(classroom, name) -> str:
    return classroom["h"].add_team(name)[1]


def server_refusal(classroom, slug, data: bytes) -> str:
    """What the server answers an upload of ``data`` with (from a team of its own)."""
    # a team per file: refused files in a row would hit the refusal limit (429)
    token = new_team(classroom, f"judge-{next(JUDGES)}")
    with classroom["server"].client(token) as c:
        answer = c.post(f"/api/competitions/{slug}/submissions",
                        files={"file": ("p.csv", data, "text/csv")})
    assert answer.status_code == 400, answer.text
    return answer.json()["detail"]


def test_import_harness_stays_light_until_the_client_is_used():
    code = ("import sys, harness; print(sorted(m for m in ('pandas', 'httpx', 'pyarrow') "
            "if m in sys.modules)); from harness import Client; print(Client.__module__, "
            "'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:2] == ["[]", "harness.notebook True"]
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        import harness
        harness.Nope


def test_the_login_comes_from_the_arguments_the_environment_or_harness_login(
        classroom, client, monkeypatch, tmp_path):
    url = classroom["server"].url
    token = new_team(classroom, "nb-defaults")
    with pytest.raises(HarnessError, match=r"no server given: pass Client\(server="):
        client()
    (tmp_path / "credentials.json").write_text(json.dumps({"server": url, "token": token}))
    stored = client()
    assert stored.server == url and token not in repr(stored)
    assert "digits" in set(stored.competitions()["slug"])
    monkeypatch.setenv("HARNESS_TOKEN", "from-the-environment")
    assert client()._http.token == "from-the-environment"
    assert client(token=token)._http.token == token           # the argument wins
    (tmp_path / "credentials.json").unlink()
    monkeypatch.delenv("HARNESS_TOKEN")
    anonymous = client(server=url)
    assert len(anonymous.leaderboard("digits").attrs) > 0      # the public board: no token
    with pytest.raises(HarnessError, match=r"no token: pass Client\(token="):
        anonymous.download("digits")


def test_download_returns_the_released_tables_and_saves_them_when_asked(
        classroom, client, tmp_path):
    c = client(server=classroom["server"].url, token=new_team(classroom, "nb-download"))
    released = load_prepared(classroom["home"], "digits").released_dir
    data = c.download("digits")
    assert set(data) == {name.removesuffix(".csv") for name in RELEASED_FILES}
    pd.testing.assert_frame_equal(data.train, pd.read_csv(released / "train.csv"))
    assert data["test"] is data.test and data.path is None and "train (" in repr(data)
    with pytest.raises(AttributeError, match="no table 'tst'"):
        data.tst
    saved = c.download("digits", path=tmp_path / "data")
    for name in RELEASED_FILES:
        assert (tmp_path / "data" / name).read_bytes() == (released / name).read_bytes()
    assert saved.path == tmp_path / "data"


def _bad_files(home, slug, make_predictions) -> dict[str, bytes]:
    """Files the server refuses, one per kind of mistake, built from a right one."""
    prepared = load_prepared(home, slug)
    id_column, target = prepared.spec.data.id_column, prepared.spec.data.target
    good = pd.read_csv(pd.io.common.BytesIO(make_predictions(home, slug))) \
        if prepared.spec.is_classification else \
        pd.read_csv(prepared.released_dir / "sample_submission.csv")

    def csv(frame):
        return frame.to_csv(index=False).encode()

    bad = {"header": csv(good.rename(columns={target: "prediction"})),
           "semicolons": csv(good).replace(b",", b";"),
           "missing ids": csv(good.head(10)),
           "repeated id": csv(pd.concat([good, good.head(1)])),
           "unknown id": csv(pd.concat([good.iloc[1:], good.head(1).assign(
               **{id_column: 10**9})])),
           "empty prediction": csv(good.assign(**{target: good[target].where(
               good.index != 3)})),
           "text": csv(good.astype({target: object}).assign(
               **{target: ["cat"] + list(good[target].iloc[1:])})),
           "empty file": b""}
    if prepared.spec.metric.needs_proba:
        bad["outside [0, 1]"] = csv(good.assign(**{target: good[target] + 1.5}))
    elif prepared.spec.is_classification:
        bad["not a class"] = csv(good.assign(**{target: good[target].where(
            good.index > 1, 11)}))
    else:
        bad["infinite"] = csv(good.assign(**{target: np.inf}))
    return bad


@pytest.mark.parametrize("slug", ["digits", "breast-cancer", "fertility"])
def test_a_file_the_server_would_refuse_is_refused_first_in_its_words(
        classroom, client, make_predictions, tmp_path, slug):
    token = new_team(classroom, f"nb-refused-{slug}")
    c = client(server=classroom["server"].url, token=token)
    for mistake, data in _bad_files(classroom["home"], slug, make_predictions).items():
        path = tmp_path / f"{mistake}.csv"
        path.write_bytes(data)
        with pytest.raises(SubmissionError) as refused:
            c.submit(slug, path)
        assert str(refused.value) == server_refusal(classroom, slug, data), mistake
    # nothing reached the server: no refused file in the team's list, no refusal counted
    assert c.submissions(slug).empty


def test_submit_a_dataframe_and_read_everything_back_as_dataframes(
        classroom, client, make_predictions):
    token = new_team(classroom, "nb-frames")
    c = client(server=classroom["server"].url, token=token)
    home = classroom["home"]
    predictions = pd.read_csv(pd.io.common.BytesIO(make_predictions(home, "digits", 0.9, 0.8)))
    first = c.submit("digits", predictions, message="a frame")
    assert first["status"] == "scored" and first["private_score"] is None
    assert 0.8 < first["public_score"] <= 1 and first["message"] == "a frame"
    # indexed by the id column works too; so does a path
    second = c.submit("digits", predictions.set_index("id"), message="indexed")
    assert second["public_score"] == first["public_score"]
    with pytest.raises(TypeError, match="a pandas DataFrame .* or the path of a CSV file"):
        c.submit("digits", predictions.to_numpy())
    with pytest.raises(HarnessError, match="no file 'nowhere.csv'"):
        c.submit("digits", "nowhere.csv")

    mine = c.submissions("digits")
    assert list(mine["message"]) == ["indexed", "a frame"]
    assert isinstance(mine["submitted_at"].dtype, pd.DatetimeTZDtype)
    assert str(mine["submitted_at"].dt.tz) == "UTC"
    assert mine["private_score"].isna().all()
    chosen = c.select("digits", first["id"])
    assert list(chosen["id"]) == [first["id"]] and chosen["selected"].all()

    board = c.leaderboard("digits")
    assert list(board.columns[:4]) == ["rank", "team", "score", "low"]
    assert board.attrs["your_team"] == "nb-frames" and board.attrs["board"] == "public"
    assert str(board["rank"].dtype) == "Int64"
    ours = board[board["team"] == "nb-frames"].iloc[0]
    assert ours["score"] == first["public_score"] and ours["low"] <= ours["score"] <= ours["high"]
    listing = c.competitions()
    assert {"slug", "metric", "deadline", "state"} <= set(listing.columns)
    with pytest.raises(HarnessError, match="hidden until the teacher reveals it"):
        c.leaderboard("digits", board="private")


# ---------------------------------------------------------------- the example notebook


def test_the_example_notebook_runs_against_a_real_server(live_backend, start_server, tmp_path,
                                                        monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    home, database_url = live_backend
    from harness.service import Harness

    h = Harness(home, database_url)
    token = h.add_team(f"notebook-{tmp_path.name[-12:]}")[1]
    team = h.authenticate(token)["name"]
    url = start_server(home, database_url).url
    # the kernel inherits this environment: Client() finds the server and the token there
    monkeypatch.setenv("HARNESS_SERVER", url)
    monkeypatch.setenv("HARNESS_TOKEN", token)
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "no-login.json"))
    notebook = nbformat.read(EXAMPLE, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = "\n".join(o.get("text", "") + json.dumps(o.get("data", {}))
                        for cell in notebook.cells if cell.cell_type == "code"
                        for o in cell.outputs)
    # (a cell that raised would have stopped execute() with its traceback)
    assert "validation accuracy: 0.9" in outputs
    assert re.search(r"refused, nothing uploaded: \d+ test ids are missing", outputs)
    assert f"you are {team}" in outputs
    assert (tmp_path / "data" / "digits" / "test.csv").is_file()      # download(path=...)
    # one upload reached the server, scored and selected; the refused one never did
    mine = h.submissions("digits", h.authenticate(token))
    assert [(s["status"], s["message"], s["selected"]) for s in mine] == \
        [("scored", "logistic regression", True)]
    h.close_connections()
