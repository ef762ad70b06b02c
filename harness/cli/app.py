"""The root click group and the options every command shares."""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import HarnessError


class HarnessGroup(click.Group):
    """A group that prints user errors as one line instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                 "max_content_width": 100})
@click.version_option(__version__, prog_name="harness")
def main():
    """harness: Kaggle-style competitions for teaching machine learning.

    \b
    Teacher (on the server machine, reads the home directly):
      harness prepare digits
      harness serve --port 8000
    Student (talks to the server):
      harness login --server http://HOST:8000 --token TOKEN
      harness submit digits -f predictions.csv -m "first try"

    Run `harness COMMAND --help` for each command's options and an example.
    """


home_option = click.option(
    "--home", envvar="HARNESS_HOME", default=".harness", show_default=True,
    type=click.Path(file_okay=False), help="The server's home folder (or $HARNESS_HOME).")


def format_option(default="table"):
    return click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
                        default=default, show_default=True,
                        help="Output format; json is stable for scripts.")
