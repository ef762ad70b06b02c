"""FastAPI dependencies shared by the API and the pages: the harness, the team, the slug.

The team comes from ``Authorization: Bearer TOKEN``; repeated bad tokens from one client
address are slowed down and then refused (:class:`FailureThrottle`). The slug has one
validator for every route, so no route can let a slug through that another refuses.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Annotated, Callable, TypeVar

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ..errors import AuthError, ForbiddenError, NotFoundError
from ..schemas import Team
from ..service import Harness, Teacher, UploadCheck, actor_name
from ..service.context import ACTOR
from ..spec import SLUG_RE

T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, description="The team token from your teacher.")

# the same words for a missing and a wrong token: the answer must not say which part failed
TOKEN_REQUIRED = ("a valid team token is required: send `Authorization: Bearer TOKEN` "
                  "(students: `harness login --server URL --token TOKEN`)")


TEACHER_REQUIRED = ("a valid teacher token is required: send `Authorization: Bearer TOKEN` "
                    "with a token from `harness teacher token` (run on the server machine)")


class FailureThrottle:
    """Slows down one client address that keeps sending bad tokens.

    Within a sliding ``window`` (seconds) the first ``free`` failures cost nothing, each
    further one is answered after ``delay`` seconds, and from ``block`` failures on every
    request from that address that carries a token gets 429 until the window has passed
    (checked before the token, so a blocked client cannot go on guessing). Tokens have
    128 random bits; this is defence in depth against scripts, kept per process.
    """

    def __init__(self, free: int = 5, block: int = 30, window: float = 60.0,
                 delay: float = 0.25, max_clients: int = 10_000):
        self.free, self.block, self.window, self.delay = free, block, window, delay
        self.max_clients = max_clients
        self._failures: dict[str, deque] = {}

    def _recent(self, client: str, now: float) -> deque:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 when it is not blocked)."""
        now = time.monotonic()
        times = self._recent(client, now)
        if len(times) < self.block:
            return 0.0
        return max(times[len(times) - self.block] + self.window - now, 0.0)

    def failed(self, client: str) -> float:
        """Record one bad token from ``client``; returns the delay to answer it with."""
        now = time.monotonic()
        if len(self._failures) >= self.max_clients:   # forget the longest-quiet clients first
            for key in sorted(self._failures, key=lambda k: self._failures[k][-1]
                              if self._failures[k] else 0.0)[:1000]:
                del self._failures[key]
        times = self._recent(client, now)
        times.append(now)
        self._failures[client] = times
        return self.delay if len(times) > self.free else 0.0


def get_harness(request: Request) -> Harness:
    """The application layer the app was built around."""
    return request.app.state.harness


def _throttled(request: Request) -> tuple[FailureThrottle, str]:
    """The throttle and the client's address; 429 at once for a blocked address."""
    throttle: FailureThrottle = request.app.state.throttle
    client = request.client.host if request.client else "?"
    wait = throttle.retry_after(client)
    if wait:
        raise HTTPException(429, f"too many bad tokens from this address; try again in "
                                 f"{wait:.0f} s", headers={"Retry-After": str(int(wait) + 1)})
    return throttle, client


async def _identify(request: Request, credentials: HTTPAuthorizationCredentials | None,
                    find: Callable[[str], T | None]) -> T:
    """What ``find(token)`` (run in the thread pool) returns for the bearer token; 401 when
    the token is missing or ``find`` returns None, a bad token counted by the throttle."""
    throttle, client = _throttled(request)
    if credentials is None or not credentials.credentials:
        raise AuthError(TOKEN_REQUIRED)
    found = await run_in_threadpool(find, credentials.credentials)
    if found is None:
        await asyncio.sleep(throttle.failed(client))
        raise AuthError(TOKEN_REQUIRED)
    return found


async def _authenticate(request: Request,
                        credentials: HTTPAuthorizationCredentials | None) -> Team:
    return Team.model_validate(
        await _identify(request, credentials, get_harness(request).authenticate))


async def require_reader(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                         ) -> Team | None:
    """A team's token or a teacher's, for the routes that only read what every team may
    see (the competitions and their released files): the caller's team, or None for the
    teacher. 401 when missing or wrong."""
    throttle, client = _throttled(request)
    if credentials is None or not credentials.credentials:
        raise AuthError(TOKEN_REQUIRED)
    h = get_harness(request)
    team = await run_in_threadpool(h.authenticate, credentials.credentials)
    if team is not None:
        return Team.model_validate(team)
    if await run_in_threadpool(h.authenticate_teacher, credentials.credentials) is not None:
        return None
    await asyncio.sleep(throttle.failed(client))
    raise AuthError(TOKEN_REQUIRED)


async def require_teacher(request: Request,
                          credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                          ) -> Teacher:
    """The teacher token's identity from ``Authorization: Bearer TOKEN``: 401 when missing
    or wrong, 403 for a team's token. The teacher actions of the request are audited as
    done by this token."""
    throttle, client = _throttled(request)
    if credentials is None or not credentials.credentials:
        raise AuthError(TEACHER_REQUIRED)
    h = get_harness(request)
    teacher = await run_in_threadpool(h.authenticate_teacher, credentials.credentials)
    if teacher is None:
        if await run_in_threadpool(h.authenticate, credentials.credentials) is not None:
            raise ForbiddenError("this is the teacher's part of the server; a team token "
                                 "cannot use it")
        await asyncio.sleep(throttle.failed(client))
        raise AuthError(TEACHER_REQUIRED)
    # set in the request's own context: the route (and the threads it runs in) see it
    ACTOR.set(actor_name(teacher))
    return teacher


async def require_team(request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                       ) -> Team:
    """The caller's team from ``Authorization: Bearer TOKEN``; 401 when missing or wrong."""
    return await _authenticate(request, credentials)


async def optional_team(request: Request,
                        credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                        ) -> Team | None:
    """The caller's team when a token is sent (401 if it is wrong), else None."""
    if credentials is None and "authorization" not in request.headers:
        return None
    return await _authenticate(request, credentials)


def valid_slug(slug: Annotated[str, Path(description="The competition's slug, e.g. digits.")]
               ) -> str:
    """``slug`` when it can name a competition, else 404 (whether it exists is the
    service's question).

    A full match: with ``re.match`` the pattern's ``$`` would let ``"digits\\n"`` through.
    """
    if not SLUG_RE.fullmatch(slug):
        raise NotFoundError(f"no competition {slug!r}")
    return slug


# The dependencies proper are coroutines: FastAPI runs a plain ``def`` dependency in its
# thread pool, a hop that costs more than these checks (two per request on the upload
# path); the plain functions stay for the pages, which call them directly.
async def harness_dependency(request: Request) -> Harness:
    return get_harness(request)


async def slug_dependency(slug: Annotated[str, Path(
        description="The competition's slug, e.g. digits.")]) -> str:
    return valid_slug(slug)


HarnessDep = Annotated[Harness, Depends(harness_dependency)]
TeamDep = Annotated[Team, Depends(require_team)]
OptionalTeamDep = Annotated[Team | None, Depends(optional_team)]
TeacherDep = Annotated[Teacher, Depends(require_teacher)]
ReaderDep = Annotated[Team | None, Depends(require_reader)]
SlugDep = Annotated[str, Depends(slug_dependency)]


async def require_uploader(request: Request,
                           slug: Annotated[str, Path(description="The competition's slug, "
                                                                 "e.g. digits.")],
                           credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                           ) -> UploadCheck:
    """The upload routes' token check and the upload's own checks (the competition takes
    uploads, the limits are not used up) in one read, before the form is read: 401 when
    the token is missing or wrong (whatever the slug), then 404 / 403 / 429 as the upload
    would get them."""
    h = get_harness(request)

    def check(token: str) -> UploadCheck | None:
        try:
            valid_slug(slug)
        except NotFoundError:
            if h.authenticate(token) is None:
                return None
            raise
        return h.check_upload(slug, token)

    return await _identify(request, credentials, check)


UploaderDep = Annotated[UploadCheck, Depends(require_uploader)]
