"""The pages in a real browser: headless Debian chromium (Playwright) on a live `harness serve`.

One class's afternoon, in order: the board is on the projector; a team logs in, uploads,
sees its score and a refused file's error; the projector's board updates by itself; the
team selects its finals; the teacher reveals with the CLI; the projector shows the
shake-up. Screenshots of each page go to tests/artifacts/ for a reviewer.

Skipped, with the reason, when /usr/bin/chromium or Playwright is missing
(`make test` installs chromium first: tests/install_browser.sh).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness.errors import HarnessError
from harness.home import find_spec_path
from harness.scoring import AnswerKey, round_public, score
from harness.service import Harness
from harness.splits import prepare

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
SLUG = "digits"
EVIL = "<script>alert(1)</script>"
TIMEOUT_MS = 20_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="no /usr/bin/chromium: run `make browser` (apt-get install "
                              "chromium) to run the browser tests"),
]
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def classroom(classroom_home, tmp_path_factory, make_predictions):
    """A copy of the classroom home with two teams, two baselines and one rival entry."""
    home = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(classroom_home, home)
    h = Harness(home)
    _, evil_token = h.add_team(EVIL, ["Mallory"])
    rival, _ = h.add_team("rivals")
    # rivals lead the public board but not the private one: a shake-up to show
    h.submit(SLUG, rival, make_predictions(home, SLUG, 0.97, 0.62, seed=11), "probing")
    h.add_baseline(SLUG, "logistic regression", make_predictions(home, SLUG, 0.88, 0.87, seed=12))
    h.add_baseline(SLUG, "constant", make_predictions(home, SLUG, 0.1, 0.1, seed=13))
    h.close_connections()
    return {"home": home, "token": evil_token}


@pytest.fixture(scope="module")
def server(classroom, start_server):
    return start_server(classroom["home"])


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def watch(page, problems: list) -> None:
    """Collect what must never happen: a script dialog (XSS), console errors (CSP, 404s)."""
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    def console(message):
        # the refused upload's page answers 400 by design; anything else is a problem
        url = message.location.get("url", "")
        if message.type == "error" and not ("status of 400" in message.text
                                            and re.search(r"/submit\?csrf=", url)):
            problems.append(f"console: {message.text} ({url})")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


def test_a_class_from_first_upload_to_the_shakeup(server, browser, classroom, make_predictions,
                                                 tmp_path):
    home, token = classroom["home"], classroom["token"]
    key = AnswerKey.from_prepared(Harness(home).prepared(SLUG))
    problems: list[str] = []
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)

    # the projector: its own browser context (no login), refreshing every 2 s
    wall = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    watch(wall, problems)
    wall.goto(server.url + "/")
    expect(wall.get_by_test_id("competition-card")).to_contain_text("Handwritten digits")
    # a deadline years away reads as its date, not as thousands of days
    expect(wall.locator(".countdown").first).to_have_text("until 2099-06-30 UTC")
    shot(wall, "01-index")
    wall.goto(server.url + f"/competitions/{SLUG}")
    expect(wall.get_by_test_id("rules")).to_contain_text("2099-06-30 18:00 (Asia/Taipei)")
    expect(wall.get_by_test_id("last-header").first).to_have_text("Last (Asia/Taipei)")
    shot(wall, "02-competition")
    wall.goto(server.url + f"/competitions/{SLUG}?projector=1&refresh=2")
    board = wall.get_by_test_id("public-board")
    expect(board).to_contain_text("rivals")
    expect(board).not_to_contain_text(EVIL)
    expect(board.locator("tr.baseline")).to_have_count(2)
    shot(wall, "03-projector-before")

    # a student: logs in with the token, once
    student = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    watch(student, problems)
    student.goto(server.url + f"/competitions/{SLUG}/submit")
    shot(student, "04-login")
    student.fill("#token", token)
    student.get_by_role("button", name="Log in").click()
    expect(student.get_by_test_id("whoami")).to_have_text(f"team {EVIL}")
    cookies = {c["name"]: c for c in student.context.cookies()}
    assert cookies["harness_token"]["httpOnly"] and cookies["harness_token"]["sameSite"] == "Strict"
    assert "harness_token" not in student.evaluate("document.cookie")

    # upload: the score appears, the same the scorer gives
    first = make_predictions(home, SLUG, 0.93, 0.9, seed=21)
    path = tmp_path / "first.csv"
    path.write_bytes(first)
    student.set_input_files("#file", str(path))
    student.fill("#message", "<b>cnn</b> + augmentation")
    student.get_by_role("button", name="Submit").click()
    shown = f"{round_public(score(first, key).public, 5):.5f}"
    expect(student.get_by_test_id("result-score")).to_have_text(shown)
    expect(student.get_by_test_id("history")).to_contain_text("<b>cnn</b> + augmentation")
    shot(student, "05-submitted")

    # a broken file: the error is shown and nothing counts
    broken = tmp_path / "broken.csv"
    broken.write_text("id,label\n0,3\n")
    student.set_input_files("#file", str(broken))
    student.get_by_role("button", name="Submit").click()
    expect(student.get_by_test_id("upload-error")).to_contain_text("does not count")
    shot(student, "06-upload-error")

    # the projector's board updates by itself (no reload by the test)
    mine = board.locator("tr.team-row", has_text=EVIL)
    expect(mine).to_contain_text(shown)
    expect(mine).to_have_class(re.compile(r"\bteam-row\b"))
    expect(board.locator("tr.team-row").first).to_contain_text("rivals")
    shot(wall, "07-projector-updated")

    # finals: a second upload, then tick the first one only
    second = tmp_path / "second.csv"
    second.write_bytes(make_predictions(home, SLUG, 0.94, 0.5, seed=22))
    student.set_input_files("#file", str(second))
    student.fill("#message", "tuned on the public board")
    student.get_by_role("button", name="Submit").click()
    expect(student.get_by_test_id("result-score")).to_be_visible()
    boxes = student.locator('input[name="submission_id"]')
    expect(boxes).to_have_count(2)
    boxes.nth(0).uncheck()      # newest first: the tuned one
    boxes.nth(1).check()
    student.get_by_test_id("save-selection").click()
    expect(student.get_by_test_id("selection-saved")).to_be_visible()
    expect(student.locator('input[name="submission_id"]').nth(1)).to_be_checked()
    expect(student.locator('input[name="submission_id"]').nth(0)).not_to_be_checked()
    assert "Private" not in student.get_by_test_id("history").inner_text()
    shot(student, "08-finals")

    # the teacher reveals with the CLI; the projector shows the shake-up by itself
    harness_cli = str(Path(sys.executable).with_name("harness"))
    for step in (["close", SLUG], ["reveal", SLUG, "--yes"]):
        subprocess.run([harness_cli, *step, "--home", str(home)], check=True,
                       capture_output=True)
    expect(wall.get_by_test_id("shakeup")).to_be_visible()
    private = wall.get_by_test_id("private-board")
    # the selected honest file wins the private board; the public leader falls
    expect(private.locator("tr.team-row").first).to_contain_text(EVIL)
    expect(private.locator("tr.team-row").first.locator(".move")).to_have_class(re.compile("up"))
    expect(wall.get_by_test_id("fallers")).to_contain_text("rivals")
    plot = wall.get_by_test_id("shakeup-plot")
    expect(plot).to_be_visible()
    plot.evaluate("img => img.decode()")      # resolves once the PNG has loaded and decoded
    assert plot.evaluate("img => img.naturalWidth") > 600
    shot(wall, "09-shakeup-projector")
    student.goto(server.url + f"/competitions/{SLUG}")
    expect(student.get_by_test_id("risers")).to_contain_text(EVIL)
    shot(student, "10-shakeup")
    student.goto(server.url + f"/competitions/{SLUG}/submit")
    expect(student.get_by_test_id("history")).to_contain_text("Private")
    shot(student, "11-history-revealed")

    assert problems == []


@pytest.fixture(scope="module")
def teacher_class(classroom_home, tmp_path_factory, make_predictions, start_server):
    """Its own copy of the classroom (the class test above reveals its own): two teams,
    three uploads (one refused), a teacher token; served."""
    home = tmp_path_factory.mktemp("teacher") / "home"
    shutil.copytree(classroom_home, home)
    h = Harness(home)
    owls, _ = h.add_team("owls")
    rivals, _ = h.add_team("rivals")
    h.submit(SLUG, owls, make_predictions(home, SLUG, 0.9, 0.8, seed=51), "owls-cnn")
    h.submit(SLUG, rivals, make_predictions(home, SLUG, 0.85, 0.9, seed=52), "rivals-forest")
    with pytest.raises(HarnessError):        # recorded as a refused upload
        h.submit(SLUG, rivals, b"id,label\n1,2,3\n", "rivals-broken")
    _, token = h.issue_teacher_token("browser test")
    h.close_connections()
    return {"server": start_server(home), "token": token}


def test_the_teacher_page_from_login_to_the_reveal(teacher_class, browser):
    url, token = teacher_class["server"].url, teacher_class["token"]
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)
    problems: list[str] = []
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # the close and reveal buttons ask first: answered as `answer` says, and noted
    asked: list[str] = []
    answer = {"accept": True}
    page.on("dialog", lambda d: (asked.append(d.message),
                                 d.accept() if answer["accept"] else d.dismiss()))

    # the competition page, as the public sees it: the Kaggle-like overview
    page.goto(url + f"/competitions/{SLUG}")
    for part in ("overview", "data", "evaluation", "rules"):
        expect(page.get_by_test_id(part)).to_be_visible()
    expect(page.get_by_test_id("evaluation")).to_contain_text(
        "The public board is computed on 40% of the test rows")
    expect(page.get_by_test_id("rules")).to_contain_text("2099-06-30 10:00 UTC")
    expect(page.get_by_test_id("final-note")).to_contain_text(
        "appears when the teacher reveals it, after closing")
    expect(page.get_by_test_id("download-help")).to_contain_text(f"harness download -c {SLUG}")
    csv = page.request.get(url + page.get_by_test_id("board-csv").get_attribute("href"))
    assert csv.ok and csv.text().splitlines()[0].startswith("rank,team,baseline,score")
    page.get_by_role("link", name="Evaluation").click()
    assert page.url.endswith("#evaluation")
    shot(page, "14-overview")

    # the teacher logs in with the teacher token
    page.goto(url + "/admin")
    page.fill("#token", token)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("whoami")).to_have_text("teacher token #1 (browser test)")
    rows = page.get_by_test_id("submission-row")
    expect(rows).to_have_count(3)
    # filters: one team, then its refused upload only
    page.select_option("#f-team", "rivals")
    page.get_by_test_id("apply-filters").click()
    expect(rows).to_have_count(2)
    page.select_option("#f-status", "error")
    page.get_by_test_id("apply-filters").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("rivals-broken")
    assert "team=rivals" in page.url and "status=error" in page.url
    expect(page.get_by_test_id("uploads-per-day")).to_contain_text("3")
    shot(page, "15-admin-filtered")

    # close: a dismissed confirm changes nothing; an accepted one closes
    state = page.get_by_test_id("admin-state")
    expect(state).to_have_text("open")
    answer["accept"] = False
    page.get_by_test_id("close").click()
    expect(state).to_have_text("open")
    assert asked and "Uploads are refused" in asked[-1]
    answer["accept"] = True
    page.get_by_test_id("close").click()
    expect(page.get_by_test_id("action-done")).to_contain_text("Closed")
    expect(state).to_have_text("closed")
    # reveal: the box must be ticked, then the confirm accepted
    page.get_by_test_id("reveal-confirm").check()
    page.get_by_test_id("reveal").click()
    expect(page.get_by_test_id("action-done")).to_contain_text("Revealed")
    expect(state).to_have_text("final results")
    assert "cannot be undone" in asked[-1] and len(asked) == 3
    expect(page.get_by_test_id("reveal")).to_have_count(0)
    newest = page.get_by_test_id("audit").locator("tbody tr")
    for row, action in ((0, "reveal"), (1, "close")):      # newest first, with who acted
        expect(newest.nth(row).locator("td").nth(1)).to_have_text(action)
        expect(newest.nth(row).locator("td").nth(3)).to_have_text(
            "teacher token #1 (browser test)")
    shot(page, "16-admin-revealed")

    # the class sees it: the shake-up, and the final note says so
    page.goto(url + f"/competitions/{SLUG}")
    expect(page.get_by_test_id("shakeup")).to_be_visible()
    expect(page.get_by_test_id("final-note")).to_contain_text("the final ranking is out")
    assert problems == []


# ReDoc's "API docs by Redocly" footer always asks its CDN for this logo and hides it when
# that fails; nothing else on either docs page may leave the server
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_the_api_docs_render_with_every_other_host_blocked(server, browser):
    # a classroom without internet: any request that leaves this server is refused and noted
    own = urlsplit(server.url).netloc
    left: list[str] = []
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 800})

    def only_this_server(route):
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    watch(page, problems)
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)

    page.goto(server.url + "/docs")
    # Swagger UI ran (its script and stylesheet came from here) and read /openapi.json
    expect(page.locator(".information-container .title")).to_contain_text("harness")
    operation = page.locator('.opblock-summary-path[data-path="/api/competitions"]')
    expect(operation.first).to_be_visible()
    expect(page.locator(".opblock-summary")).not_to_have_count(0)
    assert page.evaluate("getComputedStyle(document.querySelector('.opblock')).borderRadius") \
        != "0px"                                    # swagger-ui.css applied
    shot(page, "12-docs-offline")
    assert left == [] and problems == []

    page.goto(server.url + "/redoc")
    expect(page.locator("h1", has_text="harness")).to_be_visible()
    expect(page.get_by_text("/api/competitions").first).to_be_attached()
    shot(page, "13-redoc-offline")

    context.close()
    assert set(left) <= {REDOC_LOGO}, left
    assert [p for p in problems if REDOC_LOGO not in p] == []


@pytest.fixture(scope="module")
def shapes_server(tmp_path_factory, start_server):
    """A fresh home with the image competition `shapes` (120 images), served."""
    home = tmp_path_factory.mktemp("browser-shapes") / "home"
    prepare(find_spec_path("shapes"), home, options={"n": 120})
    return start_server(home)


def test_the_image_competition_page_shows_its_example_images(shapes_server, browser):
    # the CNN homework's page: the image parts listed as zips, and a strip of example
    # training images the browser actually decoded (not a broken-image icon)
    problems: list[str] = []
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    watch(page, problems)
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(shapes_server.url + "/competitions/shapes")
    expect(page.get_by_test_id("overview")).to_contain_text("arrow_left")
    expect(page.get_by_test_id("overview")).not_to_contain_text("harness prepare")  # a teacher's
    data = page.get_by_test_id("data")
    for part in ("train.zip", "validation.zip", "test.zip", "train.csv", "test.csv"):
        expect(data).to_contain_text(part)
    strip = page.get_by_test_id("examples").locator("img")
    expect(strip).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=strip.element_handle())
    width, height = strip.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width > height > 64, (width, height)         # several 32x32 tiles with their labels
    assert strip.evaluate("img => img.getBoundingClientRect().width") > 200
    shot(page, "14-image-competition")
    assert problems == []
