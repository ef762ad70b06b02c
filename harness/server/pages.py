"""The HTML pages: competitions, the live leaderboard, the shake-up and the upload form.

Thin routes over the :class:`harness.service.Harness` in ``request.app.state.harness``,
rendered with Jinja2 (autoescape on) from ``templates/``; CSS and the little JavaScript
(countdown, board refresh) come from ``/static``, so the pages work offline.

Secrecy is the service's job and is repeated here: the private board, private scores and
the shake-up plot are only fetched once the competition is revealed, and a team's page
lists only that team's own submissions.

Students log in by pasting their token once; it is kept in an HttpOnly, SameSite=Strict
cookie. Every POST carries a CSRF token: a random nonce cookie, with the form field being
HMAC(nonce, team token), so a forged form needs both the nonce and the HttpOnly token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from ..errors import AuthError, ForbiddenError, HarnessError, NotFoundError, http_status
from ..home import RELEASED_FILES
from ..shakeup import compute_shakeup, shakeup_plot
from ..team_chart import TeamChart, team_chart, team_chart_plot
from .deps import get_harness as _harness
from .deps import valid_slug as _slug
from .uploads import read_upload

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TOKEN_COOKIE = "harness_token"
CSRF_COOKIE = "harness_csrf"
TOKEN_MAX_AGE = 60 * 60 * 24 * 120       # a semester
REFRESH_SECONDS = 30                      # how often the board reloads itself
TOP_MOVES = 3                             # risers and fallers shown after the reveal
HISTORY_PAGE = 50                         # a team's submissions per page of the submit page
TEAM_CHARTS_KEPT = 256                    # teams' chart PNGs held in memory (~60 kB each)


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


def _token(request: Request) -> str:
    return request.cookies.get(TOKEN_COOKIE, "")


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


def _check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a POST whose CSRF field does not match the cookies (or comes from elsewhere)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise ForbiddenError("this form was sent from another site; reload the page and retry")
    nonce = request.cookies.get(CSRF_COOKIE, "")
    expected = _csrf_value(nonce, _token(request)) if nonce else ""
    if not (nonce and submitted
            and hmac.compare_digest(str(submitted).encode(), expected.encode())):
        raise ForbiddenError("the form has expired or was not sent from this site; "
                             "reload the page and submit it again")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _render(request: Request, name: str, context: dict, status_code: int = 200) -> Response:
    nonce = _nonce(request)
    context = {"team": None, "projector": False, **context,
               "csrf": _csrf_value(nonce, _token(request))}
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


def _rules(prepared) -> dict:
    rules = prepared.spec.rules
    return {"deadline": rules.deadline, "timezone": rules.reset_timezone,
            "daily_limit": rules.daily_limit, "total_limit": rules.total_limit,
            "final_selections": rules.final_selections, "leaderboard": rules.leaderboard,
            "max_upload_mb": rules.max_upload_mb}


def _competition_context(request: Request, slug: str) -> dict:
    h = _harness(request)
    competition = h.get_competition(slug)
    prepared = h.prepared(slug)
    return {"c": competition, "rules": _rules(prepared),
            "decimals": competition.get("public_decimals", prepared.spec.scoring.public_decimals),
            "tz": prepared.spec.rules.reset_timezone,
            "metric": prepared.spec.metric, "team": _team(request)}


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
    context.update(public=public, private=private, shake=shake,
                   risers=shake.risers(TOP_MOVES) if shake else [],
                   fallers=shake.fallers(TOP_MOVES) if shake else [],
                   moves={m.team: m for m in shake.moves} if shake else {},
                   projector=bool(projector), refresh=max(refresh, 2) if refresh > 0 else 0,
                   files=RELEASED_FILES)
    return _render(request, "competition.html", context)


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
        raise ForbiddenError("the shake-up is shown after the teacher reveals the private board")
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


def _team_charts(request: Request) -> PlotCache:
    """This app's cache of the teams' chart PNGs (made on first use)."""
    with _charts_guard:
        cache = getattr(request.app.state, "team_charts", None)
        if cache is None:
            cache = request.app.state.team_charts = PlotCache(limit=TEAM_CHARTS_KEPT)
    return cache


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
        raise ForbiddenError("your chart shows private scores, so it appears after the "
                             "teacher reveals the private board")
    spec = h.prepared(slug).spec
    chart = _own_chart(h.submissions(slug, team), spec)
    if chart is None:          # the service hid the private scores after all
        raise ForbiddenError("your chart appears after the teacher reveals the private board")
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
    if name not in RELEASED_FILES:
        raise NotFoundError(f"no released file {name!r}; released: {', '.join(RELEASED_FILES)}")
    path = _harness(request).released_file(_slug(slug), name)
    return FileResponse(path, media_type="text/csv", filename=name)


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


@router.post("/competitions/{slug}/login", name="login")
async def login(request: Request, slug: str):
    form = await request.form(max_files=0, max_fields=4)
    _check_csrf(request, form.get("csrf"))
    _slug(slug)
    token = str(form.get("token") or "").strip()
    throttle, client = _throttle(request), request.client.host if request.client else "?"
    if throttle is not None and throttle.retry_after(client):
        raise AuthError("too many wrong tokens from this computer; wait a minute and retry")
    team = await run_in_threadpool(_harness(request).authenticate, token) if token else None
    if team is None:
        if throttle is not None:
            throttle.failed(client)
        return await run_in_threadpool(
            lambda: _submit_page(request, slug, status_code=401,
                                 login_error="that token is not valid; copy it again from "
                                             "your teacher's message (no spaces)"))
    response = _redirect(request.url_for("submit_page", slug=slug).path)
    response.set_cookie(TOKEN_COOKIE, token, max_age=TOKEN_MAX_AGE, httponly=True,
                        samesite="strict", secure=_secure(request), path="/")
    return response


@router.post("/logout", name="logout")
async def logout(request: Request):
    form = await request.form(max_files=0, max_fields=2)
    _check_csrf(request, form.get("csrf"))
    response = _redirect("/")
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


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
