"""The options commands share: ``--home``, ``--database-url``, ``--format``, and
:func:`with_service`, which gives a command its home, database URL and service."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import click


def _home(default: str | None, help: str):
    return click.option("--home", envvar="HARNESS_HOME", default=default,
                        show_default=default is not None, type=click.Path(file_okay=False),
                        help=help)


home_option = _home(".harness", "The server's home folder (or $HARNESS_HOME).")
# no default: an explicit home is what switches leaderboard/submissions to local reading
local_home_option = _home(None, "Teacher: read this home directly instead of asking a server "
                                "($HARNESS_HOME).")
database_url_option = click.option(
    "--database-url", envvar="HARNESS_DATABASE_URL", default=None, metavar="URL",
    help="The store (default: SQLite in the home; or postgresql+psycopg://USER@HOST/DB; "
         "$HARNESS_DATABASE_URL).")


def format_option(default="table"):
    return click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
                        default=default, show_default=True,
                        help="Output format; json is stable for scripts.")


@dataclass
class Store:
    """The home and database URL a command was given (None: the defaults).

    Attributes
    ----------
    home : str or None
    database_url : str or None
        None: ``$HARNESS_DATABASE_URL``, else SQLite in the home.
    """

    home: str | None
    database_url: str | None

    @functools.cached_property
    def harness(self):
        """The service on this home and database, opened on first use."""
        # imported here so `harness --help` stays fast
        from ..service import Harness

        return Harness(self.home, self.database_url)


def with_service(command=None, *, lazy: bool = False, local: bool = False):
    """Give a command ``--home`` and ``--database-url``, and the service on them.

    Use it bare (``@with_service``) or with arguments (``@with_service(lazy=True)``).

    Parameters
    ----------
    command : callable, optional
        The command's function. By default it receives ``harness``, the opened
        :class:`harness.service.Harness`.
    lazy : bool, default False
        Pass ``store`` (a :class:`Store`) instead: for commands that only may need the
        service (``store.harness`` opens it) or that hand the home and URL on (backup,
        restore, doctor, which must not create a schema first).
    local : bool, default False
        ``--home`` has no default, so that ``store.home`` is None unless one is given
        (the commands that otherwise ask a server).
    """
    def decorate(f):
        @functools.wraps(f)
        def run(*args, home, database_url, **kwargs):
            store = Store(home, database_url)
            if lazy:
                kwargs["store"] = store
            else:
                kwargs["harness"] = store.harness
            return f(*args, **kwargs)

        # click lists options in the reverse order they are added: --home, then --database-url
        return (local_home_option if local else home_option)(database_url_option(run))

    return decorate if command is None else decorate(command)


server_option = click.option(
    "--server", envvar="HARNESS_SERVER", default=None, metavar="URL",
    help="The server (default: the one `harness login` stored; or $HARNESS_SERVER).")
token_option = click.option(
    "--token", envvar="HARNESS_TOKEN", default=None, metavar="TOKEN",
    help="Teacher: a teacher token from `harness teacher token` (default: the stored login; "
         "or $HARNESS_TOKEN).")

TEACHER_RULE = ("Where it acts: with a home given (--home, $HARNESS_HOME or "
                "--database-url) it works on the home directly, on the server machine; "
                "otherwise, with a server and a teacher token (--server/--token, "
                "$HARNESS_SERVER/$HARNESS_TOKEN or `harness login`), over HTTP; else on "
                "./.harness.")


def teacher_backend(home: str | None, database_url: str | None, server: str | None,
                    token: str | None):
    """What a teacher command acts on: the home (a :class:`harness.service.Harness`) or a
    server (a :class:`harness.admin_client.AdminClient`), by :data:`TEACHER_RULE`."""
    if not (home or database_url):
        from ..client import load_credentials

        stored = load_credentials()
        server = server or stored.get("server")
        token = token or stored.get("token")
        if server and token:
            from ..admin_client import AdminClient

            return AdminClient(server, token)
    from ..service import Harness

    return Harness(home, database_url)


def with_teacher(command=None):
    """Give a teacher command ``--home``, ``--database-url``, ``--server`` and ``--token``,
    and ``backend``: the home or the server it acts on (:func:`teacher_backend`), with the
    service's method names either way.

    The command's help gains :data:`TEACHER_RULE` before its example.
    """
    def decorate(f):
        @functools.wraps(f)
        def run(*args, home, database_url, server, token, **kwargs):
            backend = teacher_backend(home, database_url, server, token)
            try:
                return f(*args, backend=backend, **kwargs)
            finally:
                backend.close_connections()

        if run.__doc__ and "\b\nExample:" in run.__doc__:
            import inspect

            run.__doc__ = inspect.cleandoc(run.__doc__).replace(
                "\b\nExample:", TEACHER_RULE + "\n\n\b\nExample:")
        return local_home_option(database_url_option(server_option(token_option(run))))

    return decorate if command is None else decorate(command)


def remote(backend) -> bool:
    """Whether ``backend`` is a server (not the home)."""
    from ..admin_client import AdminClient

    return isinstance(backend, AdminClient)
