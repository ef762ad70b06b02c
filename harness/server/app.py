"""Build the FastAPI application around one :class:`harness.service.Harness`.

``harness serve`` runs :func:`create_app_from_env` as a uvicorn factory, so that each of
``--workers N`` processes builds its own app (and its own answer-key cache) on the same
home and database.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from .. import __version__
from . import admin, api, deps, kaggle, limits

STATIC_DIR = Path(__file__).resolve().parent / "static"
# where the Swagger UI and ReDoc assets fastapi-offline ships are served (no token needed)
DOCS_ASSETS_URL = "/static-offline-docs"
DESCRIPTION = (
    "Kaggle-style competitions for teaching machine learning. Send `Authorization: Bearer "
    "TOKEN` (from your teacher); the public leaderboard needs no token. Every refusal is "
    "`{\"detail\": \"...\"}` saying what was wrong and how to fix it (a 422 lists the "
    "problems instead). Any request may also be answered 503 (with `Retry-After`) by the "
    "connection guard in front of the app, when one client address holds too many "
    "connections at once.")


def create_app(harness, *, throttle: deps.FailureThrottle | None = None) -> FastAPI:
    """The server's app: the JSON API under /api, OpenAPI at /docs and /redoc, the web pages.

    The docs pages load Swagger UI and ReDoc from this server, never from a CDN, so they
    work on a classroom network without internet.

    Parameters
    ----------
    harness : harness.service.Harness
        The application layer every route calls.
    throttle : FailureThrottle, optional
        How repeated bad tokens from one client are slowed down (default settings if None).

    Returns
    -------
    fastapi.FastAPI
    """
    # FastAPI's own /docs and /redoc, with assets served here instead of from a CDN
    app = FastAPIOffline(title="harness", version=__version__, description=DESCRIPTION,
                         static_url=DOCS_ASSETS_URL)
    app.state.harness = harness
    app.state.throttle = throttle or deps.FailureThrottle()
    api.install(app)
    app.include_router(admin.router)
    app.include_router(kaggle.router)        # the real `kaggle` command's routes
    routers = [api.router, admin.router, kaggle.router]
    uploads = {api.submit, *admin.UPLOAD_ROUTES, *kaggle.UPLOAD_ROUTES}
    try:
        from . import pages
    except ModuleNotFoundError as exc:
        # only a missing pages module is fine; a broken import inside it must surface
        if exc.name != f"{__package__}.pages":
            raise
    else:
        app.include_router(pages.router)
        routers.append(pages.router)
        uploads.add(pages.submit)
        app.state.shakeup_plots = pages.PlotCache()
    # every body is capped before it is read: small for JSON and forms; the upload routes
    # get the outer bound and check their competition's own cap after the token
    app.add_middleware(limits.BodySizeLimit, default=limits.JSON_CAP,
                       routes=[(route, limits.UPLOAD_CAP) for router in routers
                               for route in router.routes if route.endpoint in uploads])
    # outermost: a proxy-style target (`POST http://localhost/api/v1/...`, the kaggle
    # command's through HTTP_PROXY) becomes its path before any route or cap is looked up
    app.add_middleware(kaggle.AbsoluteForm)
    if STATIC_DIR.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """The app for the home in ``$HARNESS_HOME`` and the database in ``$HARNESS_DATABASE_URL``.

    The uvicorn factory ``harness serve`` starts (one call per worker process).
    """
    from ..service import Harness

    return create_app(Harness(os.environ.get("HARNESS_HOME") or None,
                              os.environ.get("HARNESS_DATABASE_URL") or None))
