"""The HTML pages: competitions, the live leaderboard, the shake-up, the upload form and
the teacher's page (/admin).

Thin routes over the :class:`harness.service.Harness` in ``request.app.state.harness``,
rendered with Jinja2 (autoescape on) from ``templates/``; CSS and the little JavaScript
(countdown, board refresh) come from ``/static``, so the pages work offline.

Secrecy is the service's job and is repeated here: the private board, private scores and
the shake-up plot are only fetched once the competition is revealed, and a team's page
lists only that team's own submissions.

Students log in by pasting their token once; it is kept in an HttpOnly, SameSite=Strict
cookie. The teacher logs in the same way with a teacher token, kept in a cookie of its own
that is only sent to /admin; the teacher's page is never shown to a browser logged in as
a team. Every POST carries a CSRF token: a random nonce cookie, with the form field being
HMAC(nonce, the login's token), so a forged form needs both the nonce and the HttpOnly token.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from ..csvsafe import write_csv
from ..errors import AuthError, ForbiddenError, HarnessError, NotFoundError, http_status
from ..home import RELEASED_FILES, RELEASED_NAMES, released_media_type
from ..images import example_strip
from ..service import Teacher, actor_name
from ..service.context import ACTOR
from ..shakeup import compute_shakeup, shakeup_plot
from ..team_chart import TeamChart, team_chart, team_chart_plot
from .deps import get_harness as _harness
from .deps import valid_slug as _slug
from .uploads import read_upload

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TOKEN_COOKIE = "harness_token"
TEACHER_COOKIE = "harness_teacher"
CSRF_COOKIE = "harness_csrf"
TOKEN_MAX_AGE = 60 * 60 * 24 * 120       # a semester
TEACHER_MAX_AGE = 60 * 60 * 12           # a working day: a teacher token can reveal
REFRESH_SECONDS = 30                      # how often the board reloads itself
TOP_MOVES = 3                             # risers and fallers shown after the reveal
HISTORY_PAGE = 50                         # a team's submissions per page of the submit page
TEAM_CHARTS_KEPT = 256                    # teams' chart PNGs held in memory (~60 kB each)
ADMIN_PAGE = 100                          # submissions per page of the teacher's table
AUDIT_SHOWN = 500                         # newest audit entries on the teacher's page
STATE_ACTIONS = ("close", "reopen", "reveal")
# the public board as CSV: the columns of the page's board (± as its two ends)
BOARD_CSV_FIELDS = ("rank", "team", "baseline", "score", "interval_low", "interval_high",
                    "tied", "entries", "last_submission")


def _format_time(value, tz: str, with_zone: bool = False) -> str:
    """An ISO time (or datetime) shown in the class's time zone, to the minute."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:           # the store keeps UTC
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    local = moment.astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M") + (f" ({tz})" if with_zone else "")


def _iso(value) -> str:
    if not value:
        return ""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _format_score(value, decimals: int = 5) -> str:
    return "" if value is None else f"{value:.{decimals}f}"


_env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True)
_env.filters.update(localtime=_format_time, iso=_iso, score=_format_score)
templates = Jinja2Templates(env=_env)


class PageRoute(APIRoute):
    """A route whose :class:`HarnessError` becomes an HTML error page, not JSON."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except HarnessError as exc:
                return _render(request, "error.html", {"message": str(exc)},
                               status_code=http_status(exc))

        return handle


router = APIRouter(route_class=PageRoute, include_in_schema=False)


# ---------------------------------------------------------------- session and CSRF


@dataclass(frozen=True)
class CookieLogin:
    """Where one kind of login keeps its token: the cookie, the paths it is sent to, and
    how long it lasts. The team's goes to every page; the teacher's only under /admin, so
    the teacher token never travels with a student page."""

    cookie: str
    path: str
    max_age: int


TEAM_LOGIN = CookieLogin(TOKEN_COOKIE, "/", TOKEN_MAX_AGE)
TEACHER_LOGIN = CookieLogin(TEACHER_COOKIE, "/admin", TEACHER_MAX_AGE)


def _token(request: Request, login: CookieLogin = TEAM_LOGIN) -> str:
    return request.cookies.get(login.cookie, "")


def _team(request: Request) -> dict | None:
    """The logged-in team (from the token cookie), or None."""
    token = _token(request)
    return _harness(request).authenticate(token) if token else None


def _nonce(request: Request) -> str:
    """This browser's CSRF nonce; a new one is made (and set by _render) when missing."""
    nonce = getattr(request.state, "csrf_nonce", None)
    if nonce is None:
        nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        request.state.csrf_nonce = nonce
    return nonce


def _csrf_value(nonce: str, token: str) -> str:
    return hmac.new(nonce.encode(), token.encode(), hashlib.sha256).hexdigest()


def _check_csrf(request: Request, submitted: str | None,
                login: CookieLogin = TEAM_LOGIN) -> None:
    """Refuse a POST whose CSRF field does not match the cookies (or comes from elsewhere);
    the field is bound to ``login``'s token, the one the form's page was rendered with."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise ForbiddenError("this form was sent from another site; reload the page and retry")
    nonce = request.cookies.get(CSRF_COOKIE, "")
    expected = _csrf_value(nonce, _token(request, login)) if nonce else ""
    if not (nonce and submitted
            and hmac.compare_digest(str(submitted).encode(), expected.encode())):
        raise ForbiddenError("the form has expired or was not sent from this site; "
                             "reload the page and submit it again")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _keep_login(response: Response, request: Request, login: CookieLogin, token: str) -> None:
    """Set ``login``'s cookie: HttpOnly (no script reads it), SameSite=Strict, Secure on https."""
    response.set_cookie(login.cookie, token, max_age=login.max_age, httponly=True,
                        samesite="strict", secure=_secure(request), path=login.path)


def _forget_login(response: Response, login: CookieLogin) -> None:
    response.delete_cookie(login.cookie, path=login.path, httponly=True, samesite="strict")


def _render(request: Request, name: str, context: dict, status_code: int = 200,
            login: CookieLogin = TEAM_LOGIN) -> Response:
    """A template as an HTML response; its forms' CSRF field is bound to ``login``'s token."""
    nonce = _nonce(request)
    context = {"team": None, "teacher": None, "projector": False, **context,
               "csrf": _csrf_value(nonce, _token(request, login))}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if request.cookies.get(CSRF_COOKIE) != nonce:
        response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="strict",
                            secure=_secure(request), path="/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'")
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---------------------------------------------------------------- what the pages show


def final_ranking_note(state: str, reveal: str, deadline) -> str:
    """When the final (private) ranking appears, as true for ``state`` and ``rules.reveal``.

    Parameters
    ----------
    state : str
        The competition's state as students see it: open, closed or revealed.
    reveal : str
        ``rules.reveal``: ``"manual"`` (the teacher reveals, after closing) or
        ``"at_deadline"`` (revealed by itself once the deadline has passed).
    deadline : datetime or str or None

    Examples
    --------
    >>> final_ranking_note("open", "manual", None)
    'the final ranking appears when the teacher reveals it, after closing the competition'
    >>> final_ranking_note("closed", "at_deadline", "2099-06-30T10:00:00+00:00")
    'the final ranking appears at the deadline, 2099-06-30 10:00 UTC'
    """
    if state == "revealed":
        return "the final ranking is out: the private leaderboard is shown"
    if reveal == "at_deadline" and deadline:
        return f"the final ranking appears at the deadline, {_format_time(deadline, 'UTC')} UTC"
    note = "the final ranking appears when the teacher reveals it"
    return note + (", after closing the competition" if state == "open" else "")


def _rules(prepared) -> dict:
    rules = prepared.spec.rules
    return {"deadline": rules.deadline, "timezone": rules.reset_timezone,
            "daily_limit": rules.daily_limit, "total_limit": rules.total_limit,
            "final_selections": rules.final_selections, "leaderboard": rules.leaderboard,
            "max_upload_mb": rules.max_upload_mb, "reveal": rules.reveal}


def _public_percent(split) -> str:
    """The public part of the test rows in percent, e.g. ``"40"`` (public 0.12, private 0.18)."""
    return f"{round(100 * split.public / (split.public + split.private), 1):g}"


def _competition_context(request: Request, slug: str) -> dict:
    h = _harness(request)
    competition = h.get_competition(slug)
    prepared = h.prepared(slug)
    spec = prepared.spec
    return {"c": competition, "rules": _rules(prepared),
            "decimals": competition.get("public_decimals", spec.scoring.public_decimals),
            "tz": spec.rules.reset_timezone,
            "metric": spec.metric, "team": _team(request),
            "final_note": final_ranking_note(competition["state"], spec.rules.reveal,
                                             spec.rules.deadline)}


def _data_files(prepared, names: list[str]) -> list[dict]:
    """The released files with their rows and what each is for (the Data section)."""
    data, rows = prepared.spec.data, prepared.manifest.get("rows", {})
    test_rows = rows.get("public", 0) + rows.get("private", 0) or None
    about = {"train.csv": (rows.get("train"), f"training rows: the features and the target "
                                              f"{data.target!r}"),
             "validation.csv": (rows.get("validation"),
                                "more labelled rows, to choose a model before you upload"),
             "test.csv": (test_rows, "the rows to predict: the features only"),
             "sample_submission.csv": (test_rows, f"the shape of an upload: {data.id_column!r} "
                                                  f"and {data.target!r}, one row per test row")}
    if prepared.is_image:
        about["test.csv"] = (test_rows, "the rows to predict: each id and its image's file")
        about |= {f"{part}.zip": (n, f"the {part} images (PNG), named by the file column of "
                                     f"{part}.csv; unzipped, a {part}/ folder")
                  for part, n in (("train", rows.get("train")),
                                  ("validation", rows.get("validation")), ("test", test_rows))}
    return [{"name": n, "rows": about[n][0], "about": about[n][1]} for n in names if n in about]


def _final_note(h, slug: str) -> str:
    rules = h.prepared(slug).spec.rules
    return final_ranking_note(h.state(slug), rules.reveal, rules.deadline)


def _revealed_boards(h, slug: str) -> tuple[dict, dict] | None:
    """(public, private) boards once revealed, else None: nothing private is read before."""
    if h.state(slug) != "revealed":
        return None
    return h.leaderboard(slug, "public"), h.leaderboard(slug, "private")


# ---------------------------------------------------------------- routes


@router.get("/", name="index")
def index(request: Request):
    h = _harness(request)
    competitions = h.list_competitions()
    zones = {c["slug"]: h.prepared(c["slug"]).spec.rules.reset_timezone for c in competitions}
    return _render(request, "index.html", {"competitions": competitions, "zones": zones,
                                           "team": _team(request)})


@router.get("/competitions/{slug}", name="competition")
def competition(request: Request, slug: str, projector: int = 0,
                refresh: int = REFRESH_SECONDS):
    h = _harness(request)
    context = _competition_context(request, _slug(slug))
    boards = _revealed_boards(h, slug)
    if boards is None:
        public, private, shake = h.leaderboard(slug, "public"), None, None
    else:
        public, private = boards
        shake = compute_shakeup(public, private)
    prepared = h.prepared(slug)
    context.update(public=public, private=private, shake=shake,
                   risers=shake.risers(TOP_MOVES) if shake else [],
                   fallers=shake.fallers(TOP_MOVES) if shake else [],
                   moves={m.team: m for m in shake.moves} if shake else {},
                   projector=bool(projector), refresh=max(refresh, 2) if refresh > 0 else 0,
                   files=_data_files(prepared, context["c"]["files"]),
                   examples=prepared.is_image,
                   public_percent=_public_percent(prepared.spec.split),
                   server_url=str(request.base_url).rstrip("/"))
    return _render(request, "competition.html", context)


@router.get("/competitions/{slug}/leaderboard.csv", name="leaderboard_csv")
def leaderboard_csv(request: Request, slug: str):
    """The public board as CSV, for anyone: the rows and columns of the page's board.

    Only the public board is ever read here, before and after the reveal: the private
    board has its own place on the page once revealed, never in this file.
    """
    board = _harness(request).leaderboard(_slug(slug), "public")
    out = io.StringIO()
    write_csv(out, BOARD_CSV_FIELDS, (_board_record(row) for row in board["rows"]))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{slug}-public-leaderboard.csv"',
        "Cache-Control": "no-store"})


def _board_record(row: dict) -> dict:
    """One public board row for the CSV: the interval as its two ends, a spreadsheet's numbers."""
    low, high = row.get("interval") or (None, None)
    return {**{k: row.get(k) for k in BOARD_CSV_FIELDS}, "interval_low": low,
            "interval_high": high}


class PlotCache:
    """One PNG per name (a competition's shake-up, a team's chart), drawn once per state.

    The key is everything the picture shows (both boards' moves, the baselines, title
    and metric), so a rescore, a late baseline or a spec edit draws it again and nothing
    else has to invalidate it. One lock per name: a projector and a hundred students
    asking at once wait for one drawing instead of starting a hundred. With ``limit``,
    only that many names keep their PNG (the least recently asked go first).
    """

    def __init__(self, limit: int | None = None):
        self._png: OrderedDict[Hashable, tuple[tuple, bytes]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self._limit = limit

    def get(self, name: Hashable, key: tuple, draw) -> bytes:
        """The PNG for ``key``, from ``draw()`` only when the cached one is for another key."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            with self._guard:
                cached = self._png.get(name)
                if cached is not None and cached[0] == key:
                    self._png.move_to_end(name)
                    return cached[1]
            png = draw()
            with self._guard:
                self._png[name] = (key, png)
                self._png.move_to_end(name)
                while self._limit is not None and len(self._png) > self._limit:
                    self._png.popitem(last=False)
            return png


@router.get("/competitions/{slug}/shakeup.png", name="shakeup_png")
def shakeup_png(request: Request, slug: str):
    # a plain def: FastAPI runs it in its thread pool, off the event loop
    h = _harness(request)
    boards = _revealed_boards(h, _slug(slug))
    if boards is None:
        raise ForbiddenError(f"the shake-up is shown with the final ranking; "
                             f"{_final_note(h, slug)}")
    spec = h.prepared(slug).spec
    shake = compute_shakeup(*boards)
    title = f"{spec.title}: public vs private"
    key = (title, spec.scoring.metric, spec.metric.greater_is_better, shake.moves,
           tuple(tuple(sorted(b.items())) for b in shake.baselines))
    png = request.app.state.shakeup_plots.get(slug, key, lambda: shakeup_plot(
        shake, metric=spec.scoring.metric, greater_is_better=spec.metric.greater_is_better,
        title=title))
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=30"})


_charts_guard = threading.Lock()


def _app_cache(request: Request, name: str, limit: int | None = None) -> PlotCache:
    """The app's :class:`PlotCache` called ``name`` (made on first use)."""
    with _charts_guard:
        cache = getattr(request.app.state, name, None)
        if cache is None:
            cache = PlotCache(limit=limit)
            setattr(request.app.state, name, cache)
    return cache


def _team_charts(request: Request) -> PlotCache:
    """This app's cache of the teams' chart PNGs (made on first use)."""
    return _app_cache(request, "team_charts", TEAM_CHARTS_KEPT)


@router.get("/competitions/{slug}/examples.png", name="examples_png")
def examples_png(request: Request, slug: str):
    """Example training images of an image competition, for anyone: the page's strip.

    Only training images (whose labels every student has) are drawn; drawn once per
    version of the released training images.
    """
    prepared = _harness(request).prepared(_slug(slug))
    if not prepared.is_image:
        raise NotFoundError(f"{slug!r} is not an image competition: it has no example images")
    key = (prepared.manifest["files"].get("released/train.zip"),)
    png = _app_cache(request, "example_strips").get(slug, key, lambda: example_strip(
        prepared.image_dir("train"), prepared.released("train"), prepared.spec.data.target,
        classification=prepared.spec.is_classification))
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=300"})


def _own_chart(submissions: list[dict], spec) -> TeamChart | None:
    """A team's chart from its own submissions, or None while they hold no private
    scores (before the reveal, or read just before it)."""
    try:
        return team_chart(submissions, greater_is_better=spec.metric.greater_is_better)
    except ValueError:
        return None


@router.get("/competitions/{slug}/your-chart.png", name="team_chart_png")
def team_chart_png(request: Request, slug: str):
    """The logged-in team's own public-vs-private chart, after the reveal only.

    No team is named in the URL: the chart is always the cookie's team's, so no team
    can ask for another's. Before the reveal it would show private scores: 403.
    """
    h = _harness(request)
    _slug(slug)
    team = _team(request)
    if team is None:
        raise AuthError("log in with your team token on the Submit page to see your chart")
    if h.state(slug) != "revealed":
        raise ForbiddenError(f"your chart shows private scores, so it appears with the final "
                             f"ranking; {_final_note(h, slug)}")
    spec = h.prepared(slug).spec
    chart = _own_chart(h.submissions(slug, team), spec)
    if chart is None:          # the service hid the private scores after all
        raise ForbiddenError(f"your chart appears with the final ranking; "
                             f"{_final_note(h, slug)}")
    decimals = h.get_competition(slug).get("public_decimals", spec.scoring.public_decimals)
    title = f"{spec.title}: your submissions, public vs private"
    key = (title, spec.scoring.metric, decimals, chart)
    png = _team_charts(request).get((slug, team["id"]), key, lambda: team_chart_plot(
        chart, metric=spec.scoring.metric, decimals=decimals, title=title))
    # one team's picture: never kept by a shared cache
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


@router.get("/competitions/{slug}/files/{name}", name="download")
def download(request: Request, slug: str, name: str):
    """A released file for a logged-in team (the API route wants a Bearer header instead)."""
    if _team(request) is None:
        raise AuthError("log in with your team token on the Submit page to download the files")
    if name not in RELEASED_NAMES:
        raise NotFoundError(f"no released file {name!r}; released: {', '.join(RELEASED_FILES)}")
    path = _harness(request).released_file(_slug(slug), name)
    return FileResponse(path, media_type=released_media_type(name), filename=name)


def _submit_page(request: Request, slug: str, status_code: int = 200, page: int = 1,
                 **extra) -> Response:
    h = _harness(request)
    context = _competition_context(request, slug)
    team = context["team"]
    everything = h.submissions(slug, team) if team else []
    pages = max(1, -(-len(everything) // HISTORY_PAGE))
    page = min(max(page, 1), pages)
    history = everything[(page - 1) * HISTORY_PAGE:page * HISTORY_PAGE]
    shown = {s["id"] for s in history}
    # a selection saved from one page must keep the selected files listed on other pages
    kept = [s["id"] for s in everything if s["selected"] and s["id"] not in shown]
    state = h.state(slug)
    if state != "revealed":       # the service hides them too; this is the backstop
        history = [{**s, "private_score": None} for s in history]
    chart = _own_chart(everything, h.prepared(slug).spec) if state == "revealed" else None
    context.update(history=history, state=state, revealed=state == "revealed",
                   chart=chart if chart is not None and chart.points else None,
                   token_cookie_present=bool(_token(request)), page=page, pages=pages,
                   total=len(everything), selected_elsewhere=kept, **extra)
    return _render(request, "submit.html", context, status_code=status_code)


@router.get("/competitions/{slug}/submit", name="submit_page")
def submit_page(request: Request, slug: str, submitted: int | None = None,
                remaining: int | None = None, selected: int = 0, page: int = 1):
    return _submit_page(request, _slug(slug), page=page, submitted=submitted,
                        remaining=remaining, selection_saved=bool(selected))


def _throttle(request: Request):
    return getattr(request.app.state, "throttle", None)


async def _log_in(request: Request, login: CookieLogin, identify: Callable[[str], object],
                  refused: Callable[[str, int], Response], wrong_token: str,
                  done_url: Callable[[], str],
                  check_first: Callable[[], object] = lambda: None) -> Response:
    """The login form's POST, for a team (the Submit page) and for the teacher (/admin).

    Parameters
    ----------
    login : CookieLogin
        The cookie that keeps the token, and that the form's CSRF field is bound to.
    identify : callable
        ``identify(token)``: who the token is, or None; a :class:`ForbiddenError` for a
        valid token of the wrong kind (refused with its message, not counted as a guess).
    refused : callable
        ``refused(message, status)``: the page showing why there is no login.
    wrong_token : str
        The message for a token that is not valid (counted by the throttle).
    done_url : callable
        ``done_url()``: where a successful login goes (asked once the input is checked).
    check_first : callable, optional
        Run after the CSRF check, before the token is read: a check that raises (the
        slug's, or "this browser is logged in as a team" on the teacher's login).
    """
    form = await request.form(max_files=0, max_fields=4)
    _check_csrf(request, form.get("csrf"), login)
    await run_in_threadpool(check_first)
    token = str(form.get("token") or "").strip()
    throttle, client = _throttle(request), request.client.host if request.client else "?"
    if throttle is not None and throttle.retry_after(client):
        raise AuthError("too many wrong tokens from this computer; wait a minute and retry")
    try:
        who = await run_in_threadpool(identify, token) if token else None
    except ForbiddenError as exc:
        return await run_in_threadpool(refused, str(exc), 403)
    if who is None:
        if throttle is not None:
            throttle.failed(client)
        return await run_in_threadpool(refused, wrong_token, 401)
    response = _redirect(done_url())
    _keep_login(response, request, login, token)
    return response


async def _log_out(request: Request, login: CookieLogin, done_url: str) -> Response:
    form = await request.form(max_files=0, max_fields=2)
    _check_csrf(request, form.get("csrf"), login)
    response = _redirect(done_url)
    _forget_login(response, login)
    return response


@router.post("/competitions/{slug}/login", name="login")
async def login(request: Request, slug: str):
    return await _log_in(
        request, TEAM_LOGIN, _harness(request).authenticate,
        lambda message, status: _submit_page(request, slug, status_code=status,
                                             login_error=message),
        wrong_token="that token is not valid; copy it again from your teacher's message "
                    "(no spaces)",
        done_url=lambda: request.url_for("submit_page", slug=slug).path,
        check_first=lambda: _slug(slug))


@router.post("/logout", name="logout")
async def logout(request: Request):
    return await _log_out(request, TEAM_LOGIN, "/")


async def _require_team(request: Request) -> dict:
    team = await run_in_threadpool(_team, request)
    if team is None:
        raise AuthError("log in with your team token first")
    return team


async def _attempt(request: Request, slug: str, error_field: str, work):
    """``(await work(), None)``, or ``(None, the submit page showing the problem)``.

    A problem the student can fix (a bad file, a limit, a wrong selection) is shown on
    the submit page, in ``error_field``, with its HTTP status; a lost login is not.
    """
    try:
        return await work(), None
    except AuthError:
        raise
    except HarnessError as exc:
        status, message = http_status(exc), str(exc)
        page = await run_in_threadpool(lambda: _submit_page(
            request, slug, status_code=status, **{error_field: message}))
        return None, page


@router.post("/competitions/{slug}/submit", name="submit")
async def submit(request: Request, slug: str, csrf: str = ""):
    # the CSRF token rides in the form's action URL, so it is checked before the
    # (possibly large) body is read; the body is read with the competition's size cap
    _check_csrf(request, csrf)
    h = _harness(request)
    team = await _require_team(request)
    prepared = await run_in_threadpool(h.prepared, _slug(slug))

    async def upload():
        sent = await read_upload(request, prepared.spec.rules.max_upload_bytes)
        return await run_in_threadpool(h.submit, slug, team, sent.data, sent.message,
                                       sent.filename)

    result, problem = await _attempt(request, slug, "upload_error", upload)
    if problem is not None:
        return problem
    query = {"submitted": result["id"]}
    if result.get("remaining_today") is not None:
        query["remaining"] = result["remaining_today"]
    return _redirect(request.url_for("submit_page", slug=slug).path + "?" + urlencode(query))


@router.post("/competitions/{slug}/selection", name="select")
async def select(request: Request, slug: str):
    form = await request.form(max_files=0, max_fields=200)
    _check_csrf(request, form.get("csrf"))
    h = _harness(request)
    team = await _require_team(request)
    # an unknown competition is a 404 page, not a form error
    await run_in_threadpool(h.prepared, _slug(slug))

    async def save():
        try:
            ids = [int(v) for v in form.getlist("submission_id")]
        except ValueError:
            raise HarnessError("the selection must be submission ids (numbers)") from None
        return await run_in_threadpool(h.select, slug, team, ids)

    _, problem = await _attempt(request, slug, "selection_error", save)
    return problem or _redirect(request.url_for("submit_page", slug=slug).path + "?selected=1")


# ---------------------------------------------------------------- the teacher's page


TEAM_TOKEN_AT_ADMIN = ("that is a team's token: this page is the teacher's and needs a "
                       "teacher token. Students: log in on a competition's Submit page")


def _teacher(request: Request) -> Teacher | None:
    """The teacher logged in on this browser, or None.

    Raises
    ------
    ForbiddenError
        The browser is logged in as a team: the teacher's page is never a team's, whatever
        other cookie it holds.
    """
    team = _team(request)
    if team is not None:
        raise ForbiddenError(f"this browser is logged in as team {team['name']!r}; the "
                             "teacher page is not for teams (teachers: log the team out at "
                             "the top of its Submit page, then come back)")
    token = _token(request, TEACHER_LOGIN)
    return _harness(request).authenticate_teacher(token) if token else None


async def _require_teacher(request: Request) -> Teacher:
    """The logged-in teacher (401 without one, 403 for a team); this request's teacher
    actions are audited as done by that token, as on /api/admin."""
    teacher = await run_in_threadpool(_teacher, request)
    if teacher is None:
        raise AuthError("log in with a teacher token on the teacher page (/admin) first")
    # set in the handler's own context: the threads it runs the service in copy it
    ACTOR.set(actor_name(teacher))
    return teacher


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class SubmissionFilter:
    """The teacher's filters of the submissions table (GET query parameters; "" = all).

    Raises
    ------
    HarnessError
        A status other than scored or error, or a day that is not a YYYY-MM-DD date.
    """

    team: str = ""
    status: str = ""
    day: str = ""          # a UTC day, like the uploads-per-day table

    def __post_init__(self):
        if self.status not in ("", "scored", "error"):
            raise HarnessError(f"status {self.status[:40]!r} is not a filter; use scored or "
                               "error (or leave it empty for all)")
        if self.day:
            try:
                if not _DAY.fullmatch(self.day):
                    raise ValueError
                date.fromisoformat(self.day)
            except ValueError:
                raise HarnessError(f"day {self.day[:40]!r} is not a date; use YYYY-MM-DD "
                                   "(a UTC day), e.g. 2026-03-01") from None

    def keeps(self, submission: dict) -> bool:
        return ((not self.team or submission["team"] == self.team)
                and (not self.status or submission["status"] == self.status)
                and (not self.day or submission["submitted_at"].startswith(self.day)))

    def url(self, slug: str, page: int = 1) -> str:
        """The teacher page with these filters, for ``slug``, at ``page``."""
        query = {"competition": slug, "team": self.team, "status": self.status,
                 "day": self.day, "page": page if page > 1 else ""}
        return "/admin?" + urlencode({k: v for k, v in query.items() if v})


def _admin_competition(h, slug: str, filters: SubmissionFilter, page: int) -> dict:
    """What the teacher page shows of one competition: its state and buttons, every
    submission (filtered, newest first, one page), uploads per day, probing, the audit log."""
    competition = h.get_competition(slug)
    prepared = h.prepared(slug)
    rules = prepared.spec.rules
    everything = h.all_submissions(slug)
    matched = [s for s in reversed(everything) if filters.keeps(s)]
    pages = max(1, -(-len(matched) // ADMIN_PAGE))
    page = min(max(page, 1), pages)
    per_day = h.uploads_per_day(slug)
    audit = h.audit_log(slug)
    return {"c": competition, "rules": _rules(prepared), "tz": rules.reset_timezone,
            "decimals": competition["public_decimals"],
            "final_note": final_ranking_note(competition["state"], rules.reveal,
                                             rules.deadline),
            "submissions": matched[(page - 1) * ADMIN_PAGE:page * ADMIN_PAGE],
            "matched": len(matched), "total": len(everything), "filters": filters,
            "clear_url": SubmissionFilter().url(slug),
            "page": page, "pages": pages,
            "team_names": sorted({s["team"] for s in everything}, key=str.casefold),
            "days": sorted({s["submitted_at"][:10] for s in everything}, reverse=True),
            "per_day": per_day, "busiest": max((d["uploads"] for d in per_day), default=0),
            "probing": h.probing_teams(slug),
            "audit": audit[::-1][:AUDIT_SHOWN], "audit_total": len(audit)}


def _admin_page(request: Request, competition: str = "", team: str = "", status: str = "",
                day: str = "", page: int = 1, status_code: int = 200, **extra) -> Response:
    """The teacher page: the login form, or one competition's (the first by default)."""
    h = _harness(request)
    teacher = _teacher(request)
    context: dict = {"teacher": teacher, **extra}
    if teacher is not None:
        competitions = h.list_competitions()
        slug = competition or (competitions[0]["slug"] if competitions else "")
        context.update(teacher_name=actor_name(teacher), competitions=competitions)
        if slug:
            context.update(_admin_competition(h, _slug(slug), SubmissionFilter(team, status, day),
                                              page))
    return _render(request, "admin.html", context, status_code=status_code, login=TEACHER_LOGIN)


@router.get("/admin", name="admin")
def admin(request: Request, competition: str = "", team: str = "", status: str = "",
          day: str = "", page: int = 1, done: str = ""):
    return _admin_page(request, competition, team, status, day, page,
                       done=done if done in STATE_ACTIONS else "")


@router.post("/admin/login", name="admin_login")
async def admin_login(request: Request):
    h = _harness(request)

    def identify(token: str) -> Teacher | None:
        teacher = h.authenticate_teacher(token)
        if teacher is None and h.authenticate(token) is not None:
            raise ForbiddenError(TEAM_TOKEN_AT_ADMIN)
        return teacher

    return await _log_in(
        request, TEACHER_LOGIN, identify,
        lambda message, status: _admin_page(request, status_code=status, login_error=message),
        wrong_token="that token is not valid; copy the teacher token again (no spaces)",
        done_url=lambda: request.url_for("admin").path,
        check_first=lambda: _teacher(request))


@router.post("/admin/logout", name="admin_logout")
async def admin_logout(request: Request):
    return await _log_out(request, TEACHER_LOGIN, "/admin")


@router.post("/admin/competitions/{slug}/{action}", name="admin_action")
async def admin_action(request: Request, slug: str, action: str):
    """Close, reopen or reveal from the teacher page (audited with the teacher's token).

    A reveal also needs the form's confirm box ticked, so no stray click reveals; the
    service refuses it while the competition is open, and the page shows why.
    """
    form = await request.form(max_files=0, max_fields=4)
    _check_csrf(request, form.get("csrf"), TEACHER_LOGIN)
    await _require_teacher(request)
    h = _harness(request)
    await run_in_threadpool(h.prepared, _slug(slug))      # an unknown competition: 404
    if action not in STATE_ACTIONS:
        raise NotFoundError(f"no teacher action {action[:40]!r}; the buttons are "
                            f"{', '.join(STATE_ACTIONS)}")

    def page_with(message: str, status: int) -> Response:
        return _admin_page(request, slug, status_code=status, action_error=message,
                           failed_action=action)

    if action == "reveal" and form.get("confirm") != "reveal":
        return await run_in_threadpool(page_with, "nothing was revealed: tick the box saying "
                                                  "you understand, then press Reveal", 400)
    try:
        await run_in_threadpool(getattr(h, action), slug)
    except HarnessError as exc:
        return await run_in_threadpool(page_with, str(exc), http_status(exc))
    return _redirect("/admin?" + urlencode({"competition": slug, "done": action}))
