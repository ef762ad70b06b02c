"""Request-body caps and the open-file limit: what keeps one client from starving the rest.

:class:`BodySizeLimit` is a pure ASGI middleware. Each request gets a cap from its route
(small for the JSON API and the page forms, large for the two upload routes, whose exact
per-competition cap is checked by :func:`harness.server.uploads.read_upload` after the token);
a declared ``Content-Length`` over the cap is answered 413 before the app runs, and the
bytes of a body are counted while they stream in (a chunked body has no length), so no
route ever holds more than its cap in memory. The connection limits (a header timeout,
connections per client address) live in :mod:`harness.server.protocol`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TooLargeError

# a selection or a login form is a few hundred bytes; 64 KiB leaves room for any browser
JSON_BODY_LIMIT = 64 * 1024
# room for the multipart boundaries, part headers and the message around the file itself
MULTIPART_SLACK = 64 * 1024
# the largest max_upload_mb a competition.toml may set (harness.spec checks (0, 2048]);
# the upload routes check their own competition's cap, this is only the outer bound
UPLOAD_BODY_CEILING = 2048 * 2**20 + MULTIPART_SLACK


@dataclass(frozen=True)
class BodyCap:
    """The most bytes a request body may have, and what to tell a client that sends more."""

    size: int
    fix: str

    def message(self) -> str:
        """The one-line 413 ``detail``: the limit, then the fix."""
        return f"the request body is over this route's limit of {_human(self.size)}; {self.fix}"


JSON_CAP = BodyCap(JSON_BODY_LIMIT, "send only the fields the route documents (see /docs)")
UPLOAD_CAP = BodyCap(UPLOAD_BODY_CEILING,
                     "submit the plain CSV with only the id and target columns")


def _human(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size} bytes"


class BodyTooLarge(TooLargeError):
    """A request body passed its cap while streaming in (HTTP 413).

    A :class:`harness.errors.HarnessError`, so the API and the pages answer it in their
    own form; :class:`BodySizeLimit` answers it itself when nothing else did.
    """


class BodySizeLimit:
    """ASGI middleware: refuse (413) request bodies over their route's cap.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    default : BodyCap
        The cap of every route not listed in ``routes``.
    routes : sequence of (starlette.routing.BaseRoute, BodyCap)
        Routes with a cap of their own, matched by method and path the way the router
        matches them (``route.matches(scope)``).
    """

    def __init__(self, app: ASGIApp, default: BodyCap = JSON_CAP,
                 routes: Sequence[tuple[BaseRoute, BodyCap]] = ()):
        self.app, self.default, self.routes = app, default, tuple(routes)

    def cap_for(self, scope: Scope) -> BodyCap:
        """The cap of the route ``scope`` goes to."""
        for route, cap in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return cap
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope)
        headers = Headers(scope=scope)
        if "transfer-encoding" in headers and "content-length" in headers:
            # RFC 9112 6.3: a request with both is a smuggling attempt behind a proxy that
            # reads the other one; answer 400 and close the connection
            await _send_json(send, 400, "the request has both Transfer-Encoding and "
                             "Content-Length; send one of them", close=True)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > cap.size:
            # answered before anything is read; the server discards the unread body
            await _send_413(send, cap)
            return
        seen, started = 0, False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap.size:
                    raise BodyTooLarge(cap.message())
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_413(send, cap)


async def _send_413(send: Send, cap: BodyCap) -> None:
    await _send_json(send, 413, cap.message())


async def _send_json(send: Send, status: int, detail: str, close: bool = False) -> None:
    """Answer ``{"detail": detail}``; ``close`` ends the connection after it (h11 obeys
    the header)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise this process's soft open-file limit to its hard limit.

    Each connection holds a file descriptor, and the usual soft limit of 1,024 lets a
    few hundred idle connections lock everyone else out. Worker processes inherit the
    raised limit.

    Returns
    -------
    (before, after) : tuple of int, or None
        The soft limit before and after (equal when it could not be raised); None where
        the platform has no such limit (Windows).
    """
    try:
        import resource
    except ImportError:          # Windows: no RLIMIT_NOFILE
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # an unlimited hard limit (macOS) is refused as a soft one; 1M descriptors is plenty
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 2**20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]
