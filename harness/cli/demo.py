"""`harness demo`: the simulated class, end to end."""

from __future__ import annotations

import click

from .output import emit


@click.command()
@click.option("--students", default=30, show_default=True, type=click.IntRange(5, 500),
              help="Simulated teams in the generated roster.")
@click.option("--minutes", default=0.0, show_default=True, type=click.FloatRange(0, 120),
              help="Spread the class's submissions over this many minutes (0 = full speed); "
                   "with --serve, watch the board fill up.")
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="Keep the demo's home here (default: a new temporary folder).")
@click.option("--serve", is_flag=True, help="Keep the server running at the end (Ctrl-C stops).")
@click.option("--seed", default=0, show_default=True,
              help="Seeds the table, split, roster, strategies and models.")
@click.option("--candidates", default=20, show_default=True, type=click.IntRange(2, 40),
              help="Candidate models each team trains (a public-board tuner submits all).")
@click.option("--rows", default=20000, show_default=True, type=click.IntRange(2000, 100000),
              help="Rows of the class's table (synthetic).")
@click.option("--classes", default=500, show_default=True, type=click.IntRange(1, 100000),
              help="Re-drawn classes played from the teams' predictions (no HTTP) for the "
                   "distribution of the headline.")
@click.option("--presets", default="simple,strong", show_default=True,
              help="Baseline presets added to the board as baseline rows (comma-separated).")
@click.option("--no-labs", is_flag=True, help="Skip the overfitting labs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True,
              help="json: print the headline as one JSON object on stdout (the run's "
                   "progress goes to stderr).")
def demo(students, minutes, home, serve, seed, candidates, rows, classes, presets, no_labs,
         fmt):
    """Run a simulated class on a real server and write a report.

    Prepares the synthetic table (20,000 rows, public rows a tenth of the test
    set, one final selection) in a temporary home, starts a server on a free
    loopback port, imports a generated roster, trains and submits baseline
    presets, lets every team train its own candidate models and every student
    submit over HTTP with its own strategy (public-board tuners, validation
    users, ensemblers, a prober, students who forget to select), reveals, prints
    both boards and the headline for this class and over --classes re-drawn
    classes (tuners_behind_share: the share of classes in which the tuners'
    mean private score is below the validation users'), runs the overfitting
    labs at small settings and writes a static HTML report.

    \b
    Examples:
      harness demo
      harness demo --students 60 --seed 3
      harness demo --classes 1000 --format json
      harness demo --serve --minutes 3     # watch the board fill up on a projector
    """
    from rich.console import Console

    from ..demo import run_demo

    # JSON on stdout for scripts; everything a person reads goes to stderr then
    console = Console(stderr=True, width=max(Console(stderr=True).width, 110)) \
        if fmt == "json" else None
    names = tuple(p.strip() for p in presets.split(",") if p.strip())
    result = run_demo(students=students, minutes=minutes, home=home, serve=serve, seed=seed,
                      candidates=candidates, rows=rows, classes=classes, labs=not no_labs,
                      presets=names, console=console)
    if fmt == "json":
        emit(result.headline, "json")
    (console or Console()).print(NEXT_STEPS)


# the demo is table-based and quick; the course's CNN homework is the image competition
NEXT_STEPS = """
Next, the CNN homework (an image competition, 10,000 generated 32x32 images):
  harness prepare shapes --home class             # add -o n=2000 for a quick look
  harness baseline shapes --preset strong --home class
  harness lab augment shapes --home class         # no, label-safe and label-breaking augmentation"""
