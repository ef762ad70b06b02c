"""`harness demo`: the simulated class, end to end."""

from __future__ import annotations

import click


@click.command()
@click.option("--students", default=30, show_default=True, type=click.IntRange(2, 500),
              help="Simulated teams in the generated roster.")
@click.option("--minutes", default=0.0, show_default=True, type=click.FloatRange(0, 120),
              help="Spread the class's submissions over this many minutes (0 = full speed); "
                   "with --serve, watch the board fill up.")
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="Keep the demo's home here (default: a new temporary folder).")
@click.option("--serve", is_flag=True, help="Keep the server running at the end (Ctrl-C stops).")
@click.option("--seed", default=0, show_default=True, help="Seeds roster, strategies, models.")
@click.option("--candidates", default=24, show_default=True, type=click.IntRange(4, 60),
              help="Candidate models trained for the class to choose from.")
@click.option("--no-labs", is_flag=True, help="Skip the overfitting labs.")
def demo(students, minutes, home, serve, seed, candidates, no_labs):
    """Run a simulated class on a real server and write a report.

    Prepares digits and fertility in a temporary home, starts a server on a
    free loopback port, imports a generated roster, trains and submits the
    baseline presets, lets every simulated student submit over HTTP with its
    own strategy (public-board tuners, validation users, ensemblers, a prober,
    students who forget to select), reveals, prints both boards and the
    headline, runs the overfitting labs at small settings and writes a static
    HTML report.

    \b
    Examples:
      harness demo
      harness demo --students 60 --seed 3
      harness demo --serve --minutes 3     # watch the board fill up on a projector
    """
    from ..demo import run_demo

    run_demo(students=students, minutes=minutes, home=home, serve=serve, seed=seed,
             candidates=candidates, labs=not no_labs)
