"""Teacher commands of the pure core: prepare, score."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import format_option, home_option
from .output import emit


def _parse_options(pairs: tuple[str, ...]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}; expected KEY=VALUE, e.g. rows=1000000",
                                     param_hint="-o/--option")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@click.command()
@click.argument("competition")
@home_option
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Override a [data.options] value (repeatable).")
@click.option("--force", is_flag=True, help="Replace a competition prepared from another spec.")
def prepare(competition, home, options, force):
    """Build the splits and write the released files and the answer key.

    COMPETITION is a built-in slug (a folder of competitions/) or a path to a
    competition.toml or its folder.

    \b
    Examples:
      harness prepare digits
      harness prepare ./my-course/competition.toml --home /srv/harness
      harness prepare synthetic -o rows=1000000 --force
    """
    # imported here, like every pandas user, so that `harness --help` starts at once
    from ..home import find_spec_path
    from ..splits import prepare as prepare_competition

    prepared = prepare_competition(find_spec_path(competition), home,
                                   options=_parse_options(options), force=force)
    rows = prepared.manifest["rows"]
    click.echo(f"prepared {prepared.spec.slug!r} in {prepared.directory}")
    click.echo("  rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    click.echo(f"  released: {prepared.released_dir}  ("
               + ", ".join(n.removesuffix(".csv") for n in prepared.released_names) + ")")
    click.echo(f"  hidden:   {prepared.solution_path}  (never served)")


@click.command("score")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@home_option
@format_option()
def score_cmd(slug, file, home, fmt):
    """Score a prediction CSV locally against the answer key, on both boards.

    For the teacher, on the server machine: prints the public and the private
    score at full precision. Nothing is stored.

    \b
    Example:
      harness score digits submissions/digits/simple.csv
    """
    from ..home import load_prepared
    from ..scoring import AnswerKey, round_public, score

    prepared = load_prepared(home, slug)
    key = AnswerKey.from_prepared(prepared)
    result = score(Path(file), key)
    out = {"competition": slug, "file": file, "metric": key.metric.name,
           "public_score": result.public, "private_score": result.private}

    def show():
        d = prepared.spec.scoring.public_decimals
        click.echo(f"{slug}: {key.metric.name} ({key.metric.direction})")
        click.echo(f"  public  {result.public:.{max(d, 6)}f}  (board shows "
                   f"{round_public(result.public, d)})")
        click.echo(f"  private {result.private:.{max(d, 6)}f}")

    emit(out, fmt, show=show)
