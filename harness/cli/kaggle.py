"""``harness kaggle setup``: point Kaggle's own command (``kaggle``, 2.x) at the class server.

The 2.x client has no setting for another host: it talks either to api.kaggle.com or, with
``KAGGLE_API_ENVIRONMENT=LOCALHOST``, to ``http://localhost``. So the lines this prints
name the class server as its HTTP proxy (``HTTP_PROXY``, with ``NO_PROXY`` cleared, which
would otherwise keep localhost off the proxy); the server answers those proxy-style
requests itself (:mod:`harness.server.kaggle`).

A student's real Kaggle credentials must never reach the class server. The client sends,
in this order of preference, ``$KAGGLE_API_TOKEN`` (a token or a token file),
``~/.kaggle/access_token``, a key from ``$KAGGLE_CONFIG_DIR/kaggle.json``, and when a
token is refused it may refresh an OAuth login from ``~/.kaggle/credentials.json`` (a
request that carries the refresh token). The lines set ``KAGGLE_API_TOKEN`` to the class
token's file, so a real token in the environment or in ``~/.kaggle`` is overridden, and
``KAGGLE_CONFIG_DIR`` to a folder of the class's own whose ``kaggle.json`` holds the class
token too, so the client's key login succeeds before it ever looks for an OAuth login.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Callable, TextIO

import click

from ..errors import HarnessError
from .output import emit
from .student import _server_address

# the client (httpx, pydantic) and harness.home (pandas) are imported inside the functions:
# `harness --help` and every other command load this module (tests/test_cli_core.py)
TOKEN_FILE, KEY_FILE = "access_token", "kaggle.json"
INTROSPECT = "/api/v1/security.OAuthService/IntrospectToken"


@click.group()
def kaggle():
    """Use Kaggle's own `kaggle` command (2.x) with the class server."""


def default_folder(server: str) -> Path:
    """``~/.config/harness/kaggle-HOST-PORT`` (beside the stored login): one per server."""
    from ..client import config_path

    address = server.split("://", 1)[1].replace(":", "-").replace("[", "").replace("]", "")
    return config_path().parent / f"kaggle-{address}"


def _write_private(path: Path, write: Callable[[TextIO], object]) -> None:
    """Write a file readable by its owner only (an older file is tightened too): ``write``
    is given the open file."""
    from ..home import private_file

    with os.fdopen(private_file(path), "w", encoding="utf-8") as f:
        write(f)
    os.chmod(path, 0o600)


def _team_name(server: str, token: str) -> str:
    """The token's team name, asked of the server: a wrong token is caught here, not at
    the first `kaggle` command (which would answer with Kaggle's own sign-in help)."""
    from ..client import Client

    with Client(server, token) as client:
        answer = client.request("POST", INTROSPECT, json={"token": client.token}).json()
    if not answer.get("active"):
        raise HarnessError(f"that token is not valid on {client.server}: copy it again, the "
                           "whole line from your teacher's message (no spaces or quotes "
                           "around it)")
    return answer.get("username") or "team"


@kaggle.command()
@click.option("--server", required=True, metavar="URL", callback=_server_address,
              help="The server's address, from your teacher.")
@click.option("--token", required=True, help="Your team's token (from your teacher).")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="The class's Kaggle settings folder (default: kaggle-HOST-PORT beside "
                   "the stored login, ~/.config/harness/).")
@click.option("--format", "fmt", type=click.Choice(["shell", "json"]), default="shell",
              show_default=True,
              help="shell: `export NAME=VALUE` lines for eval; json: {\"env\": {...}}.")
def setup(server, token, directory, fmt):
    """Write a Kaggle settings folder for the class and print the environment that points
    the real `kaggle` command at the server.

    Run it through eval in the shell where you use `kaggle`. Your own Kaggle token or
    kaggle.json is never sent to the class server: the lines override both. They set
    HTTP_PROXY, so other programs' plain-http requests in that shell go to the class
    server too: keep a separate shell for other work.

    \b
    Example:
      pip install kaggle==2.2.5 kagglesdk==0.1.38 six==1.17.0
      eval "$(harness kaggle setup --server http://10.0.0.5:8000 --token 3q2-SX...)"
      kaggle competitions submit -c digits -f predictions.csv -m "first try"
    """
    from ..home import private_dir

    token = token.strip()
    team = _team_name(server, token)
    folder = private_dir(Path(directory or default_folder(server)).expanduser().resolve())
    _write_private(folder / TOKEN_FILE, lambda f: f.write(token + "\n"))
    _write_private(folder / KEY_FILE, lambda f: json.dump({"username": team, "key": token}, f))
    env = {"KAGGLE_CONFIG_DIR": str(folder),
           "KAGGLE_API_TOKEN": str(folder / TOKEN_FILE),
           "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
           # requests reads both spellings, and the lower-case one wins
           "HTTP_PROXY": server, "http_proxy": server,
           "NO_PROXY": "", "no_proxy": ""}
    click.echo(f"kaggle settings for team {team} on {server} are in {folder}", err=True)
    emit({"env": env}, fmt, show=lambda: click.echo(
        "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())))
