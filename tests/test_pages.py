"""The HTML pages (harness/server/pages.py) through FastAPI's TestClient on the real app.

Covers what each page shows, the login cookie, CSRF on every POST, escaping of user
text, and secrecy: nothing private before the reveal, a team sees only its own history.
"""

from __future__ import annotations

import html as html_text
import io
import re
import shutil
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from harness.errors import ForbiddenError, HarnessError
from harness.scoring import AnswerKey, round_public, score

SLUG = "digits"
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def h(classroom_harness):
    return classroom_harness


@pytest.fixture
def client(classroom_client):
    return classroom_client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html) or \
        re.search(r'csrf=([0-9a-f]+)', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def login(client, token) -> None:
    page = client.get(f"/competitions/{SLUG}/submit")
    r = client.post(f"/competitions/{SLUG}/login",
                    data={"token": token, "csrf": csrf_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def upload(client, data: bytes, message="try"):
    page = client.get(f"/competitions/{SLUG}/submit")
    token = re.search(r'submit\?csrf=([0-9a-f]+)', page.text).group(1)
    return client.post(f"/competitions/{SLUG}/submit?csrf={token}",
                       files={"file": ("preds.csv", data, "text/csv")},
                       data={"message": message})


def rows_of(html: str, testid: str) -> list[str]:
    """The team cell texts of one board table, in order."""
    table = re.search(rf'data-testid="{testid}">(.*?)</table>', html, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", cell).split("\n")[0].strip()
            for cell in re.findall(r'<td class="teamcol">(.*?)</td>', table, re.S)]


# ---------------------------------------------------------------- overview pages


def test_index_lists_competitions_with_countdown_and_teams(client, h, make_predictions):
    team, _ = h.add_team("owls")
    h.submit(SLUG, team, make_predictions(h.home, SLUG, 0.9, 0.9))
    page = client.get("/")
    assert page.status_code == 200
    assert "Handwritten digits" in page.text and 'href="/competitions/digits"' in page.text
    assert re.search(r'data-testid="teams">1<', page.text)
    deadline = re.search(r'data-deadline="([^"]+)"', page.text).group(1)
    assert datetime.fromisoformat(deadline) == datetime.fromisoformat("2099-06-30T10:00:00+00:00")
    assert "2099-06-30 18:00 (Asia/Taipei)" in page.text


def test_competition_page_shows_rules_files_and_the_public_board(client, h, make_predictions):
    key = AnswerKey.from_prepared(h.prepared(SLUG))
    a, _ = h.add_team("owls")
    b, _ = h.add_team(EVIL)
    files = {"owls": make_predictions(h.home, SLUG, 0.8, 0.9, seed=1),
             EVIL: make_predictions(h.home, SLUG, 0.95, 0.7, seed=2)}
    h.submit(SLUG, a, files["owls"])
    h.submit(SLUG, a, make_predictions(h.home, SLUG, 0.5, 0.5, seed=3))
    h.submit(SLUG, b, files[EVIL])
    h.add_baseline(SLUG, "middle", make_predictions(h.home, SLUG, 0.9, 0.9, seed=4))
    page = client.get(f"/competitions/{SLUG}")
    assert page.status_code == 200
    html = page.text
    for words in ("accuracy", "higher is better", "2099-06-30 18:00 (Asia/Taipei)",
                  "5 submissions", "midnight Asia/Taipei", "Final selections"):
        assert words in html
    for name in ("train.csv", "validation.csv", "test.csv", "sample_submission.csv"):
        # listed; the links come with the login (the download needs a token)
        assert name in html and f'href="/competitions/{SLUG}/files/{name}"' not in html
    # baseline placed by score between the two teams, marked, without a rank
    assert rows_of(html, "public-board") == ["&lt;script&gt;alert(1)&lt;/script&gt;",
                                             "middle baseline", "owls"]
    assert re.search(r'<tr class="baseline">\s*<td class="rank">&mdash;', html)
    # the best public score as shown (rounded), the entry count
    best = round_public(score(files["owls"], key).public, 5)
    assert f"{best:.5f}" in html
    assert re.search(r'<td class="num entries">2</td>', html)
    # user text escaped, never raw
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-refresh="30"' in html


def test_projector_mode_and_refresh_setting(client):
    html = client.get(f"/competitions/{SLUG}?projector=1&refresh=5").text
    assert '<body class="projector" data-refresh="5">' in html
    assert 'data-testid="rules"' not in html and 'data-testid="public-board"' in html
    assert "data-refresh" not in client.get(f"/competitions/{SLUG}?refresh=0").text


def test_unknown_competition_is_an_html_404(client):
    r = client.get("/competitions/nope")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "nope" in r.text


def test_pages_forbid_framing_and_foreign_scripts(client):
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/live.js").status_code == 200


# ---------------------------------------------------------------- login and uploads


def test_login_keeps_the_token_in_an_httponly_strict_cookie(client, h):
    _, token = h.add_team("owls")
    page = client.get(f"/competitions/{SLUG}/submit")
    assert 'name="token"' in page.text
    r = client.post(f"/competitions/{SLUG}/login",
                    data={"token": token, "csrf": csrf_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303
    cookie = [v for v in r.headers.get_list("set-cookie") if v.startswith("harness_token=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token in cookie
    page = client.get(f"/competitions/{SLUG}/submit")
    assert 'data-testid="whoami">team <strong>owls</strong>' in page.text
    assert 'name="token"' not in page.text


def test_a_wrong_token_is_refused(client, h):
    h.add_team("owls")
    page = client.get(f"/competitions/{SLUG}/submit")
    r = client.post(f"/competitions/{SLUG}/login",
                    data={"token": "not-a-token", "csrf": csrf_of(page.text)})
    assert r.status_code == 401 and 'data-testid="login-error"' in r.text
    assert "harness_token" not in client.cookies


def test_upload_shows_the_score_and_a_bad_file_its_error(client, h, make_predictions):
    key = AnswerKey.from_prepared(h.prepared(SLUG))
    _, token = h.add_team("owls")
    login(client, token)
    data = make_predictions(h.home, SLUG, 0.8, 0.6)
    r = upload(client, data, message="<b>first</b>")
    assert r.status_code == 200
    assert re.search(r"/submit\?submitted=\d+&remaining=4$", str(r.url))
    shown = f"{round_public(score(data, key).public, 5):.5f}"
    assert re.search(rf'data-testid="result-score">{shown}<', r.text)
    assert "4 submissions left today" in r.text
    assert "&lt;b&gt;first&lt;/b&gt;" in r.text and "<b>first</b>" not in r.text
    r = upload(client, b"id,label\n1,3\n", message="broken")
    assert r.status_code == 400
    assert 'data-testid="upload-error"' in r.text and "does not count" in r.text
    team = h.authenticate(token)
    assert [s["status"] for s in h.submissions(SLUG, team)] == ["error", "scored"]
    assert r.text.count("left today") == 0


def test_finals_are_selected_with_the_checkboxes(client, h, make_predictions):
    _, token = h.add_team("owls")
    login(client, token)
    for i in range(3):
        upload(client, make_predictions(h.home, SLUG, 0.7 + i / 10, 0.7, seed=i), f"v{i}")
    team = h.authenticate(token)
    ids = [s["id"] for s in h.submissions(SLUG, team)]
    page = client.get(f"/competitions/{SLUG}/submit").text
    r = client.post(f"/competitions/{SLUG}/selection",
                    data={"csrf": csrf_of(page), "submission_id": [str(ids[0]), str(ids[2])]})
    assert r.status_code == 200 and 'data-testid="selection-saved"' in r.text
    assert {s["id"] for s in h.submissions(SLUG, team) if s["selected"]} == {ids[0], ids[2]}
    for i in (ids[0], ids[2]):
        assert re.search(rf'value="{i}"[^>]*checked', r.text)
    assert not re.search(rf'value="{ids[1]}"[^>]*checked', r.text)
    r = client.post(f"/competitions/{SLUG}/selection",
                    data={"csrf": csrf_of(page), "submission_id": [str(i) for i in ids]})
    assert r.status_code == 400 and "at most 2" in r.text
    other, _ = h.add_team("rivals")
    theirs = h.submit(SLUG, other, make_predictions(h.home, SLUG, 0.5, 0.5))["id"]
    r = client.post(f"/competitions/{SLUG}/selection",
                    data={"csrf": csrf_of(page), "submission_id": [str(theirs)]})
    assert r.status_code == 404


def test_downloads_need_the_login(client, h):
    _, token = h.add_team("owls")
    assert client.get(f"/competitions/{SLUG}/files/test.csv").status_code == 401
    login(client, token)
    r = client.get(f"/competitions/{SLUG}/files/test.csv")
    assert r.status_code == 200
    assert r.content == (h.prepared(SLUG).released_dir / "test.csv").read_bytes()
    assert client.get(f"/competitions/{SLUG}/files/solution.csv").status_code == 404
    assert client.get(f"/competitions/{SLUG}/files/..%2Fhidden%2Fsolution.csv").status_code == 404


# ---------------------------------------------------------------- CSRF


def test_every_post_checks_the_csrf_token(client, h, make_predictions):
    _, token = h.add_team("owls")
    login(client, token)
    page = client.get(f"/competitions/{SLUG}/submit").text
    good = csrf_of(page)
    files = {"file": ("p.csv", make_predictions(h.home, SLUG), "text/csv")}
    posts = [(f"/competitions/{SLUG}/login", {"token": token}),
             (f"/competitions/{SLUG}/selection", {"submission_id": "1"}),
             ("/logout", {})]
    for url, data in posts:
        assert client.post(url, data=data).status_code == 403, url
        assert client.post(url, data={**data, "csrf": "0" * 64}).status_code == 403, url
    assert client.post("/logout", data={"csrf": "\u00fc" * 64}).status_code == 403
    assert client.post(f"/competitions/{SLUG}/submit", files=files).status_code == 403
    assert client.post(f"/competitions/{SLUG}/submit?csrf={'0' * 64}",
                       files=files).status_code == 403
    # right token, but sent by another site
    r = client.post("/logout", data={"csrf": good}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert h.submissions(SLUG, h.authenticate(token)) == []
    # the token is bound to the team cookie: another team's form value does not fit
    _, token2 = h.add_team("rivals")
    with TestClient(client.app) as other:
        login(other, token2)
        theirs = csrf_of(other.get(f"/competitions/{SLUG}/submit").text)
    assert theirs != good
    assert client.post("/logout", data={"csrf": theirs}).status_code == 403
    r = client.post("/logout", data={"csrf": good}, follow_redirects=False)
    assert r.status_code == 303 and 'harness_token=""' in r.headers["set-cookie"]


# ---------------------------------------------------------------- secrecy


def test_nothing_private_before_the_reveal(client, h, make_predictions):
    _, token = h.add_team(EVIL)
    other, _ = h.add_team("rivals")
    login(client, token)
    upload(client, make_predictions(h.home, SLUG, 0.9, 0.6, seed=5), message="mine")
    h.submit(SLUG, other, make_predictions(h.home, SLUG, 0.7, 0.95, seed=6),
             message="SECRET-THEIRS")
    private = {f"{s['private_score_full']:.5f}" for s in h.all_submissions(SLUG)}
    public = {f"{s['public_score']:.5f}" for s in h.all_submissions(SLUG)}
    private -= public
    assert private
    pages = [client.get(url).text for url in (
        "/", f"/competitions/{SLUG}", f"/competitions/{SLUG}?projector=1",
        f"/competitions/{SLUG}/submit")]
    for html in pages:
        for value in private:
            assert value not in html
        for word in ("Usage", "Private leaderboard", "private-board", "shakeup.png",
                     "SECRET-THEIRS", EVIL):
            assert word not in html
    submit_page = pages[-1]
    assert "mine" in submit_page and ">Private<" not in submit_page
    assert client.get(f"/competitions/{SLUG}/shakeup.png").status_code == 403


def test_the_shakeup_after_the_reveal(client, h, make_predictions):
    teams = {}
    # public order a > b > c; private order c > b > a
    for name, pub, prv in (("alpha", 0.95, 0.60), ("bravo", 0.85, 0.80), ("charlie", 0.75, 0.95)):
        team, token = h.add_team(name)
        teams[name] = token
        h.submit(SLUG, team, make_predictions(h.home, SLUG, pub, prv, seed=len(teams)))
    h.add_baseline(SLUG, "logreg", make_predictions(h.home, SLUG, 0.9, 0.9, seed=9))
    login(client, teams["bravo"])
    h.close(SLUG)
    h.reveal(SLUG)
    html = client.get(f"/competitions/{SLUG}").text
    assert 'data-testid="shakeup"' in html
    assert rows_of(html, "private-board") == ["charlie", "logreg baseline", "bravo you", "alpha"]
    assert rows_of(html, "public-board") == ["alpha", "logreg baseline", "bravo you", "charlie"]
    private_table = re.search(r'data-testid="private-board">(.*?)</table>', html, re.S).group(1)
    moves = re.findall(r'<span class="move (\w+)"', private_table)
    assert moves == ["up", "same", "down"]
    risers = re.search(r'data-testid="risers">(.*?)</div>', html, re.S).group(1)
    fallers = re.search(r'data-testid="fallers">(.*?)</div>', html, re.S).group(1)
    assert "charlie" in risers and "#3 &rarr; #1" in risers and "alpha" not in risers
    assert "alpha" in fallers and "#1 &rarr; #3" in fallers
    board = h.leaderboard(SLUG, "private")
    assert f"{board['rows'][0]['score']:.5f}" in private_table
    png = client.get(f"/competitions/{SLUG}/shakeup.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    # own history now shows the private score
    page = client.get(f"/competitions/{SLUG}/submit").text
    mine = h.submissions(SLUG, h.authenticate(teams["bravo"]))[0]
    assert ">Private<" in page and f"{mine['private_score']:.5f}" in page


def test_a_team_sees_only_its_own_history(client, h, make_predictions):
    _, token = h.add_team("owls")
    other, _ = h.add_team("rivals")
    h.submit(SLUG, other, make_predictions(h.home, SLUG, 0.5, 0.5), message="rivals-plan-B")
    login(client, token)
    upload(client, make_predictions(h.home, SLUG, 0.9, 0.9), message="owls-plan-A")
    page = client.get(f"/competitions/{SLUG}/submit").text
    assert "owls-plan-A" in page and "rivals-plan-B" not in page
    h.close(SLUG)
    h.reveal(SLUG)
    page = client.get(f"/competitions/{SLUG}/submit").text
    assert "owls-plan-A" in page and "rivals-plan-B" not in page


def test_closed_competition_refuses_uploads_on_the_page(client, h, make_predictions):
    _, token = h.add_team("owls")
    login(client, token)
    h.close(SLUG)
    page = client.get(f"/competitions/{SLUG}/submit").text
    assert "Submissions are closed" in page and 'type="file"' not in page
    r = upload_direct(client, make_predictions(h.home, SLUG))
    assert r.status_code == 403
    with pytest.raises(ForbiddenError):
        h.leaderboard(SLUG, "private")


def upload_direct(client, data):
    """POST an upload with a valid CSRF token taken from the leaderboard page's forms."""
    page = client.get(f"/competitions/{SLUG}").text
    return client.post(f"/competitions/{SLUG}/submit?csrf={csrf_of(page)}",
                       files={"file": ("p.csv", data, "text/csv")})


def test_the_shakeup_png_is_drawn_once_per_state_of_the_boards(client, h, make_predictions,
                                                               monkeypatch):
    import harness.server.pages as pages

    drawn = []
    real = pages.shakeup_plot
    monkeypatch.setattr(pages, "shakeup_plot", lambda *a, **k: drawn.append(1) or real(*a, **k))
    for name, pub, prv in (("alpha", 0.95, 0.60), ("bravo", 0.85, 0.80)):
        team, _ = h.add_team(name)
        h.submit(SLUG, team, make_predictions(h.home, SLUG, pub, prv, seed=len(name)))
    h.close(SLUG)
    h.reveal(SLUG)
    first = client.get(f"/competitions/{SLUG}/shakeup.png")
    for _ in range(3):
        assert client.get(f"/competitions/{SLUG}/shakeup.png").content == first.content
    assert len(drawn) == 1
    # a new baseline line changes the picture: drawn again, once
    h.add_baseline(SLUG, "logreg", make_predictions(h.home, SLUG, 0.9, 0.9, seed=9))
    client.get(f"/competitions/{SLUG}/shakeup.png")
    client.get(f"/competitions/{SLUG}/shakeup.png")
    assert len(drawn) == 2
    # a rescore that changes the scores draws it again too
    h.rescore(SLUG)
    client.get(f"/competitions/{SLUG}/shakeup.png")
    assert len(drawn) in (2, 3)       # 2 when the rescore changed nothing that is shown


# ---------------------------------------------------------------- each team's own chart


def chart_class(h, make_predictions):
    """Two teams; owls' best private file (#2) is not its selection (#1). Returns tokens
    and owls' submission ids."""
    owls, owls_token = h.add_team("owls")
    rivals, rivals_token = h.add_team("rivals")
    ids = [h.submit(SLUG, owls, make_predictions(h.home, SLUG, pub, prv, seed=i))["id"]
           for i, (pub, prv) in enumerate(((0.95, 0.70), (0.80, 0.93), (0.85, 0.80)))]
    h.submit(SLUG, rivals, make_predictions(h.home, SLUG, 0.9, 0.9, seed=7),
             message="rivals-only")
    h.select(SLUG, owls, [ids[0]])
    return owls_token, rivals_token, ids


def test_your_chart_is_secret_before_the_reveal(client, h, make_predictions):
    owls_token, _, _ = chart_class(h, make_predictions)
    assert client.get(f"/competitions/{SLUG}/your-chart.png").status_code == 401
    login(client, owls_token)
    refused = client.get(f"/competitions/{SLUG}/your-chart.png")
    assert refused.status_code == 403 and not refused.content.startswith(b"\x89PNG")
    assert "when the teacher reveals it, after closing" in refused.text
    h.close(SLUG)            # closed is not revealed either
    assert client.get(f"/competitions/{SLUG}/your-chart.png").status_code == 403
    for url in (f"/competitions/{SLUG}/submit", f"/competitions/{SLUG}"):
        html = client.get(url).text
        assert "your-chart" not in html and "best private" not in html


def test_your_chart_after_the_reveal_shows_the_missed_best(client, h, make_predictions):
    owls_token, rivals_token, ids = chart_class(h, make_predictions)
    h.close(SLUG)
    h.reveal(SLUG)
    assert client.get(f"/competitions/{SLUG}/your-chart.png").status_code == 401
    login(client, owls_token)
    png = client.get(f"/competitions/{SLUG}/your-chart.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and "no-store" in png.headers["cache-control"]
    page = client.get(f"/competitions/{SLUG}/submit").text
    best = next(s for s in h.submissions(SLUG, h.authenticate(owls_token)) if s["id"] == ids[1])
    caption = re.search(r'data-testid="your-chart-caption">(.*?)</figcaption>', page, re.S)
    assert f"Your best private score was #{ids[1]} ({best['private_score']:.5f}), not " \
           "selected" in caption.group(1)
    assert f'src="/competitions/{SLUG}/your-chart.png"' in page
    board = client.get(f"/competitions/{SLUG}").text
    link = re.search(r'data-testid="your-chart-link">(.*?)</p>', board, re.S).group(1)
    assert f'href="/competitions/{SLUG}/submit#your-chart"' in link
    assert "your-chart-link" not in client.get(f"/competitions/{SLUG}?projector=1").text
    # another team gets its own chart, whatever it adds to the URL
    with TestClient(client.app) as rivals:
        login(rivals, rivals_token)
        theirs = rivals.get(f"/competitions/{SLUG}/your-chart.png?team=owls")
        assert theirs.status_code == 200 and theirs.content != png.content
        page = rivals.get(f"/competitions/{SLUG}/submit").text
        [own] = h.submissions(SLUG, h.authenticate(rivals_token))
        assert f"#{own['id']} ({own['private_score']:.5f}), and you selected it" in page
        assert all(f"#{i} (" not in page for i in ids)


def test_your_chart_is_drawn_once_per_team_and_state(client, h, make_predictions,
                                                     monkeypatch):
    import harness.server.pages as pages

    drawn = []
    real = pages.team_chart_plot
    monkeypatch.setattr(pages, "team_chart_plot",
                        lambda chart, **k: drawn.append(chart.points[-1].id) or real(chart, **k))
    owls_token, rivals_token, ids = chart_class(h, make_predictions)
    h.close(SLUG)
    h.reveal(SLUG)
    login(client, owls_token)
    first = client.get(f"/competitions/{SLUG}/your-chart.png").content
    assert client.get(f"/competitions/{SLUG}/your-chart.png").content == first
    assert drawn == [ids[-1]]
    with TestClient(client.app) as rivals:
        login(rivals, rivals_token)
        rivals.get(f"/competitions/{SLUG}/your-chart.png")
    assert len(drawn) == 2 and drawn[0] != drawn[1]
    # a late upload is left out of the chart but changes its note: drawn again, once
    h.submit(SLUG, h.authenticate(owls_token), make_predictions(h.home, SLUG, 0.9, 0.9))
    client.get(f"/competitions/{SLUG}/your-chart.png")
    client.get(f"/competitions/{SLUG}/your-chart.png")
    assert len(drawn) == 3


def test_plot_cache_keeps_at_most_its_limit():
    from harness.server.pages import PlotCache

    cache, drawn = PlotCache(limit=2), []

    def draw(name):
        return lambda: drawn.append(name) or name.encode()

    for name in ("a", "b", "a", "c", "a", "b"):
        assert cache.get(name, (1,), draw(name)) == name.encode()
    # "a" was asked again before "c" came, so "b" went first and was drawn again
    assert drawn == ["a", "b", "c", "b"]


def test_the_board_shows_each_scores_interval_and_the_band_tied_with_the_leader(
        client, h, make_predictions):
    """The page's ± column and shaded band, and the API's JSON, say the same: here two
    teams one public row apart are tied, a third far behind is not."""
    key = AnswerKey.from_prepared(h.prepared(SLUG))
    base = make_predictions(h.home, SLUG, 0.97, 0.97, seed=1)
    lines = base.decode().splitlines()             # in the answer key's order, after a header
    line = next(i + 1 for i in key.public_index
                if lines[i + 1].split(",")[1] == str(int(key.y[i])))
    row_id, right = lines[line].split(",")
    lines[line] = f"{row_id},{(int(right) + 5) % 10}"      # one more public row wrong
    closer = ("\n".join(lines) + "\n").encode()
    assert score(closer, key).public == pytest.approx(score(base, key).public
                                                      - 1 / len(key.public_index))
    for name, data in (("ace", base), ("close", closer),
                       ("far", make_predictions(h.home, SLUG, 0.6, 0.6, seed=2))):
        team, _ = h.add_team(name)
        h.submit(SLUG, team, data)
    h.add_baseline(SLUG, "middle", make_predictions(h.home, SLUG, 0.8, 0.8, seed=3))
    board = client.get(f"/api/competitions/{SLUG}/leaderboard").json()
    assert board["tied_with_leader"] == 2 and board["scored_rows"] == len(key.public_index)
    assert [(r["team"], r["tied"]) for r in board["rows"]] == [
        ("ace", True), ("close", True), ("middle", None), ("far", False)]
    html = client.get(f"/competitions/{SLUG}").text
    table = re.search(r'data-testid="public-board">(.*?)</table>', html, re.S).group(1)
    tied_rows = re.findall(r'<tr class="[^"]*\btied\b[^"]*">.*?<td class="teamcol">(\w+)',
                           table, re.S)
    assert tied_rows == ["ace", "close"]
    for r in board["rows"]:       # the ± is half the interval; the interval in the tooltip
        low, high = r["interval"]
        assert f'title="95% interval: {low:.5f} to {high:.5f}">&plusmn;&thinsp;' \
               f'{(high - low) / 2:.5f}</td>' in table
    legend = re.search(r'data-testid="public-uncertainty">(.*?)</p>', html, re.S).group(1)
    assert f"{len(key.public_index)} public test rows" in legend
    assert re.search(r'data-testid="public-tied">2</strong> teams, the leader included', legend)
    # after the reveal the private board gets its own
    h.close(SLUG)
    h.reveal(SLUG)
    html = client.get(f"/competitions/{SLUG}").text
    assert 'data-testid="private-uncertainty"' in html
    assert re.search(r'data-testid="private-tied">\d+</strong>', html)
    private = client.get(f"/api/competitions/{SLUG}/leaderboard?board=private",
                         headers={"Authorization": f"Bearer {h.new_token(h.team_named('ace'))}"}
                         ).json()
    assert private["scored_rows"] == len(key.private_index)
    assert all(r["interval"] for r in private["rows"])


# ---------------------------------------------------------------- the competition's overview


def section(html: str, testid: str) -> str:
    """The text of the element marked ``data-testid=testid`` (to its first closing tag of
    the same name), tags dropped and spaces squeezed."""
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no {testid!r} on the page"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2)))
    return html_text.unescape(text).strip()


def test_the_overview_has_data_evaluation_and_rules(client, h):
    html = client.get(f"/competitions/{SLUG}").text
    nav = section(html, "overview-nav")
    assert nav.split() == ["Overview", "Data", "Evaluation", "Rules", "Leaderboard"]
    assert "Handwritten digits" in html and "8x8 grey-scale images" in section(html, "overview")
    split = h.prepared(SLUG).spec.split          # public 0.12, private 0.18 of all rows
    percent = f"{round(100 * split.public / (split.public + split.private), 1):g}"
    assert percent == "40"
    evaluation = section(html, "evaluation")
    assert "accuracy" in evaluation and "higher is better" in evaluation
    assert "shown with 5 decimals" in evaluation
    assert "The public board is computed on 40% of the test rows" in evaluation
    rules = section(html, "rules")
    for words in ("2099-06-30 18:00 (Asia/Taipei) = 2099-06-30 10:00 UTC",
                  "5 submissions (the day turns over at midnight Asia/Taipei)",
                  "In total no limit", "Final selections 2", "at most 50 MB per file",
                  "best public score per team",
                  "the final ranking appears when the teacher reveals it, after closing the "
                  "competition (reveal: by the teacher)"):
        assert words in rules, words
    # not logged in: the files are listed with their rows, and how to get them
    data = section(html, "data")
    rows = h.prepared(SLUG).manifest["rows"]
    assert f"train.csv {rows['train']} training rows" in data
    assert f"test.csv {rows['public'] + rows['private']}" in data
    assert "/files/" not in re.search(r'data-testid="data">(.*?)</section>', html, re.S).group(1)
    help_text = section(html, "download-help")
    assert "log in once on the Submit page" in help_text
    assert "harness login --server http://testserver --token YOUR_TOKEN" in help_text
    assert f"harness download -c {SLUG}" in help_text
    # logged in: each file is a download link
    _, token = h.add_team("owls")
    login(client, token)
    html = client.get(f"/competitions/{SLUG}").text
    for name in h.get_competition(SLUG)["files"]:
        assert f'href="/competitions/{SLUG}/files/{name}" download' in html
    assert 'data-testid="download-help"' not in html


def competition_client(classroom_home, tmp_path, **rules):
    """A TestClient and Harness on a copy of the classroom with those ``[rules]``."""
    from harness.server.app import create_app
    from harness.service import Harness
    from harness.spec import set_rules

    home = tmp_path / "ruled"
    shutil.copytree(classroom_home, home)
    spec = home / "competitions" / SLUG / "competition.toml"
    spec.write_text(set_rules(spec.read_text(), **rules))
    h = Harness(home)
    return TestClient(create_app(h)), h


def test_the_final_ranking_text_follows_the_state_and_the_reveal_rule(
        client, h, classroom_home, tmp_path):
    from harness.server.pages import final_ranking_note

    _, token = h.add_team("owls")
    login(client, token)
    stale = ("shown after the deadline", "after the teacher reveals them")
    manual_open = "the final ranking appears when the teacher reveals it, after closing"
    html = client.get(f"/competitions/{SLUG}").text
    assert manual_open in section(html, "final-note") and not any(s in html for s in stale)
    h.close(SLUG)
    html = client.get(f"/competitions/{SLUG}").text
    note = section(html, "final-note")
    assert "appears when the teacher reveals it" in note and "after closing" not in note
    closed = client.get(f"/competitions/{SLUG}/submit").text
    assert section(closed, "closed-note").strip() == (
        "Submissions are closed; the final ranking appears when the teacher reveals it.")
    assert not any(s in closed for s in stale)
    # reveal = "at_deadline": the date, in UTC, open or closed
    other, h2 = competition_client(classroom_home, tmp_path, reveal="at_deadline")
    with other:
        _, token2 = h2.add_team("owls")
        login(other, token2)
        at_deadline = "the final ranking appears at the deadline, 2099-06-30 10:00 UTC"
        for close in (False, True):
            if close:
                h2.close(SLUG)
            html = other.get(f"/competitions/{SLUG}").text
            assert at_deadline in section(html, "final-note")
            assert "(reveal: automatic, at the deadline)" in section(html, "final-note")
            assert "teacher reveals" not in html
        assert at_deadline in section(other.get(f"/competitions/{SLUG}/submit").text,
                                      "closed-note")
        refused = other.get(f"/competitions/{SLUG}/shakeup.png")
        assert refused.status_code == 403 and at_deadline in refused.text
    h2.close_connections()
    assert final_ranking_note("revealed", "at_deadline", "2099-06-30T10:00:00Z") == \
        "the final ranking is out: the private leaderboard is shown"


# ---------------------------------------------------------------- the public board as CSV


def test_the_public_board_downloads_as_csv_and_never_holds_a_private_score(
        client, h, make_predictions):
    import pandas as pd

    plans = {"alpha": (0.95, 0.61), "bravo": (0.83, 0.92), "=cmd|' /C calc'!A0": (0.7, 0.8)}
    for i, (name, (pub, prv)) in enumerate(plans.items()):
        team, _ = h.add_team(name)
        h.submit(SLUG, team, make_predictions(h.home, SLUG, pub, prv, seed=30 + i))
    h.add_baseline(SLUG, "middle", make_predictions(h.home, SLUG, 0.9, 0.9, seed=39))
    page = client.get(f"/competitions/{SLUG}").text
    assert f'href="/competitions/{SLUG}/leaderboard.csv"' in page
    private = {round(s["private_score_full"], d) for s in h.all_submissions(SLUG)
               for d in (3, 4, 5)} - {round(s["public_score"], d)
                                      for s in h.all_submissions(SLUG) for d in (3, 4, 5)}
    assert private

    def download() -> tuple[str, pd.DataFrame]:
        r = client.get(f"/competitions/{SLUG}/leaderboard.csv")      # no login needed
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.headers["content-disposition"] == \
            f'attachment; filename="{SLUG}-public-leaderboard.csv"'
        return r.text, pd.read_csv(io.StringIO(r.text), keep_default_na=False)

    before, table = download()
    assert list(table.columns) == ["rank", "team", "baseline", "score", "interval_low",
                                   "interval_high", "tied", "entries", "last_submission"]
    board = h.leaderboard(SLUG, "public")["rows"]
    assert list(table["team"]) == [r["team"] if not r["team"].startswith("=") else
                                   "'" + r["team"] for r in board]
    assert list(table["score"]) == [r["score"] for r in board]
    assert list(table["rank"].astype(str)) == ["" if r["rank"] is None else str(r["rank"])
                                               for r in board]
    for value in private:
        assert str(value) not in before
    # after the reveal: still the public board, nothing private in it
    h.close(SLUG)
    h.reveal(SLUG)
    after, table = download()
    assert after == before
    for value in private:
        assert str(value) not in after
    assert "Private" not in after and "private" not in after.lower()
    assert client.get("/competitions/nope/leaderboard.csv").status_code == 404


# ---------------------------------------------------------------- the teacher's page


@pytest.fixture
def teacher_token(h) -> str:
    return h.issue_teacher_token("course laptop")[1]


def admin_login(client, token, status=303):
    page = client.get("/admin")
    r = client.post("/admin/login", data={"token": token, "csrf": csrf_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == status, r.text
    return r


def admin_post(client, action, slug=SLUG, **fields):
    page = client.get(f"/admin?competition={slug}").text
    return client.post(f"/admin/competitions/{slug}/{action}",
                       data={"csrf": csrf_of(page), **fields})


def test_the_teacher_logs_in_with_a_teacher_token_only(client, h, teacher_token):
    page = client.get("/admin")
    assert page.status_code == 200 and 'action="/admin/login"' in page.text
    assert "no-store" in page.headers["cache-control"]
    # a wrong token and a team's token: refused, no cookie
    r = admin_login(client, "not-a-token", status=401)
    assert "that token is not valid" in r.text
    _, team_token = h.add_team("owls")
    r = admin_login(client, team_token, status=403)
    assert "that is a team's token" in section(r.text, "login-error")
    assert "harness_teacher" not in client.cookies and "harness_token" not in client.cookies
    # the teacher's token: an HttpOnly, strict cookie sent only to /admin
    r = admin_login(client, teacher_token)
    assert r.headers["location"] == "/admin"
    cookie = [v for v in r.headers.get_list("set-cookie") if v.startswith("harness_teacher=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    assert teacher_token in cookie
    page = client.get("/admin").text
    assert "teacher token #1 (course laptop)" in section(page, "whoami")
    assert 'data-testid="submissions"' in page and 'name="token"' not in page
    # the teacher's cookie does not make a team: the student pages stay logged out
    assert 'data-testid="whoami"' not in client.get(f"/competitions/{SLUG}/submit").text
    # log out: the cookie goes
    r = client.post("/admin/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 303 and 'harness_teacher=""' in r.headers["set-cookie"]
    assert 'name="token"' in client.get("/admin").text


def test_a_browser_logged_in_as_a_team_never_sees_the_teacher_page(client, h, teacher_token,
                                                                   make_predictions):
    team, team_token = h.add_team("owls")
    h.submit(SLUG, team, make_predictions(h.home, SLUG, 0.9, 0.6), message="SECRET-MINE")
    secret = f"{h.all_submissions(SLUG)[0]['private_score']:.5f}"
    login(client, team_token)
    for url in ("/admin", f"/admin?competition={SLUG}&status=scored"):
        r = client.get(url)
        assert r.status_code == 403 and "text/html" in r.headers["content-type"]
        assert "not for teams" in r.text and secret not in r.text
    # even with the CSRF value the teacher's forms expect, the team's browser is refused
    from harness.server.pages import CSRF_COOKIE, _csrf_value

    admin_csrf = _csrf_value(client.cookies[CSRF_COOKIE], "")
    r = client.post("/admin/login", data={"token": teacher_token, "csrf": admin_csrf})
    assert r.status_code == 403 and "not for teams" in r.text
    assert "harness_teacher" not in client.cookies
    # a teacher cookie beside the team's changes nothing
    client.cookies.set("harness_teacher", teacher_token, path="/admin")
    assert client.get("/admin").status_code == 403
    r = client.post(f"/admin/competitions/{SLUG}/close",
                    data={"csrf": csrf_of(client.get(f"/competitions/{SLUG}/submit").text)})
    assert r.status_code == 403 and h.state(SLUG) == "open"
    # without any login an action is refused too
    with TestClient(client.app) as nobody:
        r = nobody.post(f"/admin/competitions/{SLUG}/close",
                        data={"csrf": csrf_of(nobody.get("/admin").text)})
        assert r.status_code == 401 and h.state(SLUG) == "open"


def test_every_teacher_post_checks_the_csrf_token(client, h, teacher_token):
    admin_login(client, teacher_token)
    good = csrf_of(client.get("/admin").text)
    for url, data in (("/admin/login", {"token": teacher_token}), ("/admin/logout", {}),
                      (f"/admin/competitions/{SLUG}/close", {}),
                      (f"/admin/competitions/{SLUG}/reveal", {"confirm": "reveal"})):
        assert client.post(url, data=data).status_code == 403, url
        assert client.post(url, data={**data, "csrf": "0" * 64}).status_code == 403, url
    # right value, other site
    r = client.post(f"/admin/competitions/{SLUG}/close", data={"csrf": good},
                    headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and h.state(SLUG) == "open"
    # the team page's CSRF value is bound to another cookie: it does not fit here
    student = csrf_of(client.get(f"/competitions/{SLUG}/submit").text)
    assert student != good
    assert client.post(f"/admin/competitions/{SLUG}/close",
                       data={"csrf": student}).status_code == 403
    assert h.state(SLUG) == "open" and not [a for a in h.audit_log(SLUG)
                                            if a["action"] == "close"]


def near_copies(data: bytes, n: int) -> list[bytes]:
    """``n`` files, each differing from the one before in one row's label (probing)."""
    import pandas as pd

    table = pd.read_csv(io.BytesIO(data))
    target = table.columns[1]
    files = []
    for i in range(n):
        table.loc[i, target] = (table.loc[i, target] + 1) % 10
        files.append(table.to_csv(index=False).encode())
    return files


def test_the_teacher_page_lists_filters_and_watches_the_submissions(
        client, h, teacher_token, make_predictions):
    day1, day2 = datetime(2030, 1, 10, 4, 0), datetime(2030, 1, 11, 4, 0)
    owls, _ = h.add_team("owls")
    probers, _ = h.add_team(EVIL)
    base = make_predictions(h.home, SLUG, 0.8, 0.7, seed=40)
    h.submit(SLUG, owls, base, message="owls-first", now=day1)
    with pytest.raises(HarnessError):         # recorded as an error
        h.submit(SLUG, owls, b"id,label\n1,2,3\n", message="owls-broken", now=day2)
    for i, data in enumerate(near_copies(make_predictions(h.home, SLUG, 0.9, 0.9, seed=41), 7)):
        h.submit(SLUG, probers, data, message=f"probe-{i}", now=day1 if i < 5 else day2)
    h.add_baseline(SLUG, "middle", make_predictions(h.home, SLUG, 0.85, 0.85, seed=42))
    admin_login(client, teacher_token)
    page = client.get("/admin")
    assert page.status_code == 200
    html = page.text
    assert EVIL not in html and "&lt;script&gt;" in html            # escaped
    assert section(html, "matched").startswith("10 of 10 submissions")
    # every team's submissions, newest first, with private scores (the teacher's view)
    table = re.search(r'data-testid="submissions">(.*?)</table>', html, re.S).group(1)
    every = h.all_submissions(SLUG)
    ids = [int(i) for i in re.findall(r'data-testid="submission-row">\s*<td class="num">(\d+)',
                                      table)]
    assert ids == [s["id"] for s in reversed(every)]
    first = next(s for s in every if s["message"] == "owls-first")
    assert f"{first['private_score']:.5f}" in table and "2030-01-10 04:00" in table

    def shown(**query) -> list[int]:
        r = client.get("/admin", params={"competition": SLUG, **query})
        assert r.status_code == 200, r.text
        t = re.search(r'data-testid="submissions">(.*?)</table>', r.text, re.S).group(1)
        return [int(i) for i in re.findall(
            r'data-testid="submission-row">\s*<td class="num">(\d+)', t)]

    by_message = {s["message"]: s["id"] for s in every}
    assert shown(team="owls") == [by_message["owls-broken"], by_message["owls-first"]]
    assert shown(status="error") == [by_message["owls-broken"]]
    assert shown(team=EVIL, day="2030-01-11") == [by_message["probe-6"], by_message["probe-5"]]
    assert shown(team="owls", status="scored", day="2030-01-11") == []
    assert shown(team="middle") == [next(s["id"] for s in every if s["baseline"])]
    for bad, says in (({"status": "winning"}, "use scored or error"),
                      ({"day": "2030-13-01"}, "use YYYY-MM-DD"),
                      ({"day": "yesterday"}, "use YYYY-MM-DD")):
        r = client.get("/admin", params={"competition": SLUG, **bad})
        assert r.status_code == 400 and says in section(r.text, "error"), bad
    # uploads per day (UTC), the probing team, the audit log with who acted
    per_day = section(html, "uploads-per-day")
    assert "2030-01-10 6 6 0" in per_day and "2030-01-11 3 2 1" in per_day
    probing = section(html, "probing")
    assert "&lt;script&gt;" in re.search(r'data-testid="probing">(.*?)</table>', html,
                                         re.S).group(1)
    assert "owls" not in probing
    assert client.get("/admin?competition=nope").status_code == 404


def test_the_teacher_closes_reveals_and_reopens_with_confirmation(client, h, teacher_token):
    admin_login(client, teacher_token)
    # a reveal needs the confirm box, and the competition closed
    r = admin_post(client, "reveal")
    assert r.status_code == 400 and "nothing was revealed" in section(r.text, "action-error")
    r = admin_post(client, "reveal", confirm="reveal")
    assert r.status_code == 403 and h.state(SLUG) == "open"
    refusal = section(r.text, "action-error")
    assert "still open" in refusal and "close it first" in refusal
    assert "the Close button below closes it" in refusal
    # close: a JS confirm on the form, then the state and the audit log say so
    html = client.get("/admin").text
    close_form = re.search(r'<form method="post" action="/admin/competitions/digits/close"'
                           r' data-confirm="([^"]+)"', html)
    assert close_form and "Uploads are refused" in close_form.group(1)
    assert re.search(r'action="/admin/competitions/digits/reveal" class="reveal" '
                     r'data-confirm="[^"]*cannot be undone', html)
    assert re.search(r'name="confirm" value="reveal" required', html)
    r = admin_post(client, "close")
    assert r.status_code == 200 and h.state(SLUG) == "closed"
    assert "Closed" in section(r.text, "action-done")
    assert "closed" in section(r.text, "admin-state")
    r = admin_post(client, "reopen")
    assert h.state(SLUG) == "open" and 'data-testid="close"' in r.text
    admin_post(client, "close")
    r = admin_post(client, "reveal", confirm="reveal")
    assert r.status_code == 200 and h.state(SLUG) == "revealed"
    assert "Revealed" in section(r.text, "action-done")
    assert 'data-testid="reveal"' not in r.text and 'data-testid="reopen"' not in r.text
    r = admin_post(client, "reopen")
    assert r.status_code == 403 and "already revealed" in section(r.text, "action-error")
    # every action audited with the teacher token that did it
    actions = [(a["action"], a["actor"]) for a in h.audit_log(SLUG)
               if a["action"] in ("close", "reopen", "reveal")]
    assert actions == [(a, "teacher token #1 (course laptop)")
                       for a in ("close", "reopen", "close", "reveal")]
    audit = section(r.text, "audit")
    assert "reveal" in audit and "teacher token #1 (course laptop)" in audit
    assert admin_post(client, "delete").status_code == 404
