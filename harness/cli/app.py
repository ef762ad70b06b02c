"""The root click group; every command is added to it here, explicitly."""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import HarnessError
from . import baselines, core, demo, kaggle, lab, operations, student, teacher


class HarnessGroup(click.Group):
    """A group that prints user errors as one line instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            click.echo(f"error: {exc}", err=True)
            if getattr(exc, "hint", None):       # local only: the server never sends hints
                click.echo(f"hint: {exc.hint}", err=True)
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
      harness teacher token --label laptop
    Teacher (from a laptop, with that teacher token):
      harness login --server http://HOST:8000 --token TEACHER_TOKEN
      harness close digits
    Student (talks to the server):
      harness login --server http://HOST:8000 --token TOKEN
      harness submit digits -f predictions.csv -m "first try"

    Run `harness COMMAND --help` for each command's options and an example.
    """


COMMANDS = (core.prepare, core.score_cmd,
            teacher.serve, teacher.teacher, teacher.team, teacher.close, teacher.reopen,
            teacher.reveal, teacher.rescore,
            student.login, student.competitions, student.download, student.submit,
            student.submissions, student.select, student.leaderboard,
            kaggle.kaggle,
            baselines.baseline, baselines.grades,
            operations.backup, operations.restore, operations.doctor, operations.audit,
            demo.demo, lab.lab)
for command in COMMANDS:
    main.add_command(command)
