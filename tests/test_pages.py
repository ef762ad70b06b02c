"""The HTML pages (harness/server/pages.py) through FastAPI's TestClient on the real app.

Covers what each page shows, the login cookie, CSRF on every POST, escaping of user
text, and secrecy: nothing private before the reveal, a team sees only its own history.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from harness.errors import ForbiddenError
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
        assert f'href="/competitions/{SLUG}/files/{name}"' in html
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
    assert "after the teacher reveals" in refused.text
    h.close(SLUG)            # closed is not revealed either
    assert client.get(f"/competitions/{SLUG}/your-chart.png").status_code == 403
    for url in (f"/competitions/{SLUG}/submit", f"/competitions/{SLUG}"):
        html = client.get(url).text
        assert "your-chart" not in html and "best private" not in html


def test_your_chart_after_the_reveal_shows_the_missed_best(client, h, make_predictions):
    owls_token, rivals_token, ids = chart_class(h, make_predictions)
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
    h.reveal(SLUG)
    html = client.get(f"/competitions/{SLUG}").text
    assert 'data-testid="private-uncertainty"' in html
    assert re.search(r'data-testid="private-tied">\d+</strong>', html)
    private = client.get(f"/api/competitions/{SLUG}/leaderboard?board=private",
                         headers={"Authorization": f"Bearer {h.new_token(h.team_named('ace'))}"}
                         ).json()
    assert private["scored_rows"] == len(key.private_index)
    assert all(r["interval"] for r in private["rows"])
