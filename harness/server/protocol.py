"""uvicorn's HTTP/1.1 protocol with two connection limits against slow or greedy clients.

uvicorn times out idle keep-alive connections, but not a request whose headers never
finish: a few hundred connections that each send half a request line ("slowloris") hold
every file descriptor until the server answers nobody. :class:`GuardedH11Protocol`
closes a connection whose request headers are not complete ``header_timeout`` seconds
after they began (the first bytes of a request, or the connection itself), and refuses
a client address's connections beyond ``max_connections_per_ip`` with an immediate 503.
Both are counted per server process (each of ``--workers N`` counts its own).
"""

from __future__ import annotations

import asyncio
import functools
import json
import weakref
from collections import Counter
from typing import Any

import h11

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.server import ServerState

HEADER_TIMEOUT = 10.0
MAX_CONNECTIONS_PER_IP = 64


class _Tracker:
    """One server's open connections per client address, and the addresses warned about."""

    def __init__(self) -> None:
        self.open: Counter[str] = Counter()
        self.warned: set[str] = set()


# keyed by uvicorn's per-server state, so servers in one process (tests, the demo) count apart
_trackers: weakref.WeakKeyDictionary[ServerState, _Tracker] = weakref.WeakKeyDictionary()


def _refusal(limit: int) -> bytes:
    body = json.dumps({"detail": f"too many connections from your address at once (at most "
                                 f"{limit}); close some and retry in a few seconds"}).encode()
    head = ("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nretry-after: 5\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """:class:`uvicorn.protocols.http.h11_impl.H11Protocol` with a header timeout and a cap
    on the connections of one client address.

    Parameters
    ----------
    config, server_state, app_state, _loop
        As uvicorn passes them to every HTTP protocol.
    header_timeout : float
        Seconds a request's headers may take to arrive in full; 0 turns the check off.
    max_connections_per_ip : int
        Open connections one client address may hold in this process; 0 means no cap.
    """

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *,
                 header_timeout: float = HEADER_TIMEOUT,
                 max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self.max_connections_per_ip = max_connections_per_ip
        self._tracker = _trackers.setdefault(server_state, _Tracker())
        self._address: str | None = None      # set while this connection is counted
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None

    # --- connections per address ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        remote = get_remote_addr(transport)
        address = remote[0] if remote else None        # None: a Unix socket, not capped
        tracker = self._tracker
        if address is not None and self.max_connections_per_ip:
            if tracker.open[address] >= self.max_connections_per_ip:
                self._refused = True
                if address not in tracker.warned:     # once per episode, not per connection
                    tracker.warned.add(address)
                    self.logger.warning("refusing connections from %s: it holds %d already "
                                        "(--max-connections-per-ip)", address,
                                        tracker.open[address])
                transport.write(_refusal(self.max_connections_per_ip))
                transport.close()
                return
            tracker.open[address] += 1
            self._address = address
        super().connection_made(transport)
        self._arm_header_timer()

    def _release(self) -> None:
        address, self._address = self._address, None
        if address is None:
            return
        tracker = self._tracker
        tracker.open[address] -= 1
        if tracker.open[address] <= 0:
            del tracker.open[address]       # keep the table as small as the open connections
        if tracker.open.get(address, 0) < self.max_connections_per_ip:
            tracker.warned.discard(address)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:           # uvicorn never saw this connection
            return
        self._cancel_header_timer()
        self._release()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event) -> None:
        # the connection is handed to another protocol, which will not release it here
        self._cancel_header_timer()
        self._release()
        super().handle_websocket_upgrade(event)

    # --- header timeout ------------------------------------------------------------------

    def _awaiting_headers(self) -> bool:
        """No request in progress: the next one's headers are due (h11: the client IDLE)."""
        return self.conn.their_state is h11.IDLE

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and self.header_timeout:
            self._header_timer = self.loop.call_later(self.header_timeout,
                                                      self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.logger.debug("%s - closed: request headers not complete in %g s",
                              self.client, self.header_timeout)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        # bytes came and no request is complete: the clock runs from the first of them
        # (or from the connection); a complete request head stops it
        if self._awaiting_headers():
            self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn has just parsed what the client pipelined: a complete request stops the
        # clock, a partial one starts it; nothing at all is keep-alive's business
        if not self._awaiting_headers():
            self._cancel_header_timer()
        elif self.conn.trailing_data[0]:
            self._arm_header_timer()


def guarded_protocol(header_timeout: float = HEADER_TIMEOUT,
                     max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP):
    """The ``http=`` argument of :class:`uvicorn.Config` for :class:`GuardedH11Protocol`.

    A :func:`functools.partial`, so it pickles into ``--workers N`` processes with its
    settings (a class made on the fly would not).

    Parameters
    ----------
    header_timeout : float
        Seconds a request's headers may take; 0 turns the check off.
    max_connections_per_ip : int
        Open connections per client address and process; 0 means no cap.
    """
    if header_timeout < 0 or max_connections_per_ip < 0:
        raise ValueError(f"header_timeout ({header_timeout}) and max_connections_per_ip "
                         f"({max_connections_per_ip}) must be >= 0 (0 turns a limit off)")
    return functools.partial(GuardedH11Protocol, header_timeout=header_timeout,
                             max_connections_per_ip=max_connections_per_ip)
