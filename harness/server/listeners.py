"""One listening socket per worker process, so that ``harness serve --workers N`` spreads
connections over its workers.

uvicorn's workers share one listening socket, and the first worker to wake up accepts
every connection waiting on it (asyncio accepts up to the backlog at once). A burst of
connections, a class at the deadline, then lands on one or two workers while the others
idle: with 4 workers and 32 clients, two workers got no request at all and one queued
its uploads for 230 ms at the median (benchmarks/bench_rush.py, this module's reason).

On Linux each worker gets a socket of its own, all bound to the one port with
``SO_REUSEPORT``: the kernel spreads new connections over them by address and port. The
server process binds them all before the workers start (so a port in use fails at once)
and keeps them open, so a worker that dies leaves its socket's waiting connections for
its replacement. A worker takes the first socket no live worker holds (a lock file per
socket, held for the worker's life). uvicorn's signals that add or remove a worker
(SIGTTIN, SIGTTOU) are ignored then: the number of workers is that of the sockets.
Elsewhere the workers share one socket as before.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from uvicorn.supervisors import Multiprocess

from ..home import private_file

logger = logging.getLogger("uvicorn.error")
FIXED = ("{} ignored: each worker has its own socket; restart the server with another "
         "--workers to change their number")


def spread_supported() -> bool:
    """Whether the kernel spreads connections over sockets sharing a port (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_per_worker(host: str, port: int, workers: int, backlog: int,
                    lock_dir: Path) -> "PerWorkerSockets":
    """``workers`` listening TCP sockets on ``host:port`` (``SO_REUSEPORT``, Nagle off).

    Raises
    ------
    OSError
        The address cannot be bound (the port is in use, say).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if port:
        # SO_REUSEPORT would also let these join another server's sockets on the port (a
        # second `harness serve` by mistake, splitting the class between two homes): a
        # plain bind first fails when anything listens there
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # no delayed-ACK wait on every answer (uvicorn issue #3149)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]          # port 0: the others take the same one
            sock.listen(backlog)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return PerWorkerSockets(sockets, lock_dir)


class PerWorkerSockets(list):
    """The workers' listening sockets, as uvicorn hands them to every worker: iterated in
    a worker process, the list holds only that worker's own socket (see the module).

    Parameters
    ----------
    sockets : list of socket.socket
        One per worker, all on one port.
    lock_dir : Path
        A private folder for the lock files (one per socket) that say which worker holds
        which socket.
    """

    def __init__(self, sockets, lock_dir: Path):
        super().__init__(sockets)
        self.lock_dir = str(lock_dir)
        self.owner = os.getpid()          # the server process: it serves none of them
        self.claimed: int | None = None   # in a worker: the index of its own socket

    def __iter__(self):
        if os.getpid() == self.owner:
            return super().__iter__()     # the server process, and pickling to a worker
        if self.claimed is None:
            self.claimed = self._claim()
        if self.claimed is None:          # more workers than sockets: serve them all
            return super().__iter__()
        return iter([self[self.claimed]])

    def _claim(self) -> int | None:
        for index in range(len(self)):
            fd = private_file(Path(self.lock_dir) / f"socket-{index}.lock", os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BaseException as exc:
                os.close(fd)
                if isinstance(exc, BlockingIOError):
                    continue                      # a live worker holds this one
                raise
            # the descriptor stays open: the lock lasts as long as this process
            return index
        return None


@contextmanager
def lock_folder() -> Iterator[Path]:
    """A private temporary folder for the sockets' lock files, for the server's life.

    The server holds a shared lock on it: systemd-tmpfiles skips a locked folder when it
    ages /tmp, so a server running for a whole term keeps its lock files.
    """
    with tempfile.TemporaryDirectory(prefix="harness-workers-") as folder:
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield Path(folder)
        finally:
            os.close(fd)


class PerWorkerMultiprocess(Multiprocess):
    """uvicorn's supervisor for :class:`PerWorkerSockets`: the number of workers is fixed.

    uvicorn adds a worker on SIGTTIN and stops one on SIGTTOU (which a background job
    writing to a terminal can receive); with one socket per worker, a stopped worker
    would leave its socket's connections unanswered, and an added one has no socket.
    """

    def handle_ttin(self) -> None:
        logger.warning(FIXED.format("SIGTTIN"))

    def handle_ttou(self) -> None:
        logger.warning(FIXED.format("SIGTTOU"))
