"""`harness lab overfit | attack | holdout-reuse`: overfitting the leaderboard, measured."""

from __future__ import annotations

import click

from .options import format_option, home_option
from .output import emit


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}; expected numbers separated by commas, e.g. "
                                 "0.1,0.2,0.4", param_hint=name) from None


def _finish(report, directory, fmt: str, rows: list[dict]) -> None:
    """Write the report; print the verdicts (table), the headline rows (csv) or numbers (json)."""
    from ..lab.report import write_report

    path = write_report(report, directory)

    def show():
        click.echo(report.title)
        for line in report.verdicts:
            click.echo(f"  - {line}")
        click.echo(f"report: {path}")

    emit({**report.numbers, "report": str(path)}, fmt, records=rows, show=show)


_out_option = click.option("--out", type=click.Path(file_okay=False), default=None,
                           help="Report folder [default: submissions/<slug>/lab].")
_seed_option = click.option("--seed", type=int, default=0, show_default=True,
                            help="Seed of every random draw (the run repeats exactly).")


@click.command()
@click.argument("slug", default="digits")
@home_option
@click.option("--configs", type=int, default=30, show_default=True,
              help="Configurations in the sweep.")
@click.option("--repeats", type=int, default=200, show_default=True,
              help="Random re-draws of the public rows per public size.")
@click.option("--fractions", default="0.1,0.2,0.4,0.6,0.8", show_default=True,
              help="Public shares of the test set for the optimism curve (the "
                   "competition's own share is always added).")
@_seed_option
@_out_option
@format_option()
def overfit(slug, home, configs, repeats, fractions, seed, out, fmt):
    """Tune by the public board vs by validation, and measure the optimism.

    Trains a sweep of small baselines (augmentation, weight decay, dropout,
    epochs, width), predicts the test set once each, then over many random
    re-draws of the public rows picks the winner by public score and by
    validation score, and scores both picks on the private rows with the real
    scorer. Prints the picks' public and private scores and the optimism
    (public - private), each the mean over the re-draws ± its 95% interval
    (the spread of re-draws of one test set, not of one board score), beside
    the standard error of one board score at that public size; writes the
    report with two plots. The competition is prepared first if it is a built-in
    not yet prepared in the home.

    \b
    Examples:
      harness lab overfit digits
      harness lab overfit digits --configs 12 --repeats 20 --format json
    """
    from ..lab.common import ensure_prepared, progress_bar
    from ..lab.overfit import overfit_lab
    from ..lab.report import lab_dir

    fracs = _floats(fractions, "--fractions")
    prepared = ensure_prepared(home, slug, echo=lambda m: click.echo(m, err=True))
    directory = lab_dir(prepared.spec.slug, out)
    report = overfit_lab(prepared, directory, configs=configs, repeats=repeats,
                         fractions=fracs, seed=seed, progress=progress_bar)
    n = report.numbers
    rows = [{"pick_by": way.removeprefix("by_"), **n[way], "board_se": n["board_se"]}
            for way in ("by_public", "by_validation")]
    _finish(report, directory, fmt, rows)


@click.command()
@click.argument("slug", default="noise-binary")
@home_option
@click.option("--queries", type=int, default=400, show_default=True,
              help="Random submissions per attack.")
@click.option("--repeats", type=int, default=5, show_default=True,
              help="Independent attacks averaged.")
@click.option("--public-rows", type=int, default=None,
              help="Re-draw the public part with this many test rows [default: the "
                   "competition's own].")
@click.option("--step", type=float, default=0.01, show_default=True,
              help="Step of the fixed-step Ladder board.")
@click.option("--every", type=int, default=10, show_default=True,
              help="Queries between points of the curve.")
@click.option("--fast", is_flag=True,
              help="Score in numpy rather than CSV bytes through the scorer (same numbers).")
@_seed_option
@_out_option
@format_option()
def attack(slug, home, queries, repeats, public_rows, step, every, fast, seed, out, fmt):
    """Blum & Hardt's boosting attack against the Kaggle board and the Ladder.

    Submits random label vectors, keeps those the board scores above chance,
    then submits their majority vote; every submission is scored by the same
    scorer and Ladder code as the server, in process (going through a live
    server is not supported). With the built-in noise-binary (4,000 public
    rows, random labels) the Kaggle board shows ~0.43 error after 400 queries
    while the private error stays 0.50; the Ladder shows ~0.48.

    \b
    Examples:
      harness lab attack
      harness lab attack noise-binary --queries 200 --repeats 3 --public-rows 1000
      harness lab attack --format json
    """
    from ..lab.attack import attack_lab
    from ..lab.common import ensure_prepared, progress_bar
    from ..lab.report import lab_dir

    prepared = ensure_prepared(home, slug, echo=lambda m: click.echo(m, err=True))
    directory = lab_dir(prepared.spec.slug, out)
    report = attack_lab(prepared, directory, queries=queries, repeats=repeats,
                        public_rows=public_rows, step=step, every=every, seed=seed, fast=fast,
                        progress=progress_bar)
    rows = [{"board": name, **values} for name, values in report.numbers["boards"].items()]
    _finish(report, directory, fmt, rows)


@click.command("holdout-reuse")
@click.option("--n", "n", type=int, default=1000, show_default=True,
              help="Rows in each of the training, holdout and fresh sets.")
@click.option("--d", "d", type=int, default=1000, show_default=True,
              help="Pure-noise features.")
@click.option("--k-max", type=int, default=None,
              help="Largest number of features in the classifier [default: d/20].")
@click.option("--repeats", type=int, default=20, show_default=True,
              help="Independent analysts averaged.")
@click.option("--select-threshold", type=float, default=None,
              help="Correlation both sets must pass, same sign [default: 1/sqrt(n)].")
@click.option("--threshold", type=float, default=None,
              help="Thresholdout's T, on the [0, 1] scale of its queries [default: 1/sqrt(n)].")
@click.option("--noise", type=float, default=None,
              help="Thresholdout's Laplace noise scale σ [default: T/10].")
@click.option("--budget", type=int, default=1000, show_default=True,
              help="Thresholdout's budget of holdout answers.")
@_seed_option
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Report folder [default: submissions/lab].")
@format_option()
def holdout_reuse(n, d, k_max, repeats, select_threshold, threshold, noise, budget, seed,
                  out, fmt):
    """Dwork et al.'s reusable holdout: feature selection overfits a reused holdout.

    Pure-noise data (no classifier beats 0.5 on fresh data): features whose
    correlation with the label agrees on training and holdout are kept and the
    top k vote. The standard holdout's accuracy climbs with k while fresh data
    stays at 0.5; asked through Thresholdout (Dwork et al.'s pseudocode: Laplace
    noise on the threshold and the answers, a budget), the holdout stays near
    the truth. Says whether Thresholdout was closer to the truth at every k
    shown (paired over the analysts), or where not and why.

    \b
    Examples:
      harness lab holdout-reuse
      harness lab holdout-reuse --n 2000 --d 2000 --threshold 0.03 --noise 0.003 --budget 200
    """
    import numpy as np

    from ..lab.common import progress_bar
    from ..lab.holdout import holdout_lab
    from ..lab.report import lab_dir

    ks = None
    if k_max is not None:
        ks = np.unique(np.linspace(0, k_max, 11).round().astype(int))
    directory = lab_dir(None, out)
    report = holdout_lab(directory, n=n, d=d, ks=ks, repeats=repeats,
                         select_threshold=select_threshold, threshold=threshold, noise=noise,
                         budget=budget, seed=seed, progress=progress_bar)
    num = report.numbers
    rows = [{"mechanism": m, **{k: v for k, v in num[m].items()}}
            for m in ("standard", "thresholdout")]
    _finish(report, directory, fmt, rows)
