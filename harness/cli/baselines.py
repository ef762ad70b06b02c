"""Teacher commands: `harness baseline` (train, write, record, submit) and `harness grades`.

The library is imported inside the commands: torch loads only when a torch
baseline is trained, so `harness --help` and every other command stay fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from .options import format_option, with_service
from .output import emit, save_csv


def _widths(ctx, param, value):
    if value is None:
        return None
    try:
        widths = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}; expected comma-separated integers, e.g. 128,64")
    if not widths:
        raise click.BadParameter("needs at least one width, e.g. 64")
    return widths


@click.command()
@click.argument("slug")
@click.option("--model", type=click.Choice(["linear", "gbt", "mlp", "cnn"]),
              help="linear (logistic/ridge), gbt (boosted trees), mlp, cnn (image data).")
@click.option("--preset", help="A recorded configuration: simple, medium, strong, boss, or all.")
@click.option("--name", help="File name of the submission (default: the preset or model).")
@click.option("--hidden", callback=_widths, help="MLP widths / CNN channels, e.g. 128,64 "
              "(gbt: leaves per tree).")
@click.option("--wide/--no-wide", default=None, help="MLP: add a linear path (wide & deep).")
@click.option("--dropout", type=float, help="Dropout probability (mlp, cnn).")
@click.option("--weight-decay", type=float, help="L2 penalty on the weights.")
@click.option("--augment", type=float, help="Image augmentation strength 0-1: random shifts "
              "(<=1.5 px), small rotations (<=15 deg) and pixel noise. Never horizontal flips: "
              "a mirrored digit is a different symbol.")
@click.option("--noise", type=float, help="Tabular augmentation: Gaussian feature noise (std).")
@click.option("--mixup", type=float, help="Tabular augmentation: mixup Beta(a, a), 0 = off.")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adagrad", "rmsprop", "adam"]))
@click.option("--lr", type=float, help="Learning rate (gbt: shrinkage).")
@click.option("--momentum", type=float, help="Momentum of --optimizer momentum.")
@click.option("--warmup-epochs", type=int, help="Epochs of linear learning-rate warm-up.")
@click.option("--lr-decay", type=click.Choice(["none", "cosine", "step"]))
@click.option("--batch-size", type=int)
@click.option("--epochs", type=int, help="Training epochs (gbt: boosting iterations).")
@click.option("--early-stopping", type=int, metavar="PATIENCE",
              help="Stop when the validation loss has not improved for PATIENCE epochs.")
@click.option("--seed", type=int)
@click.option("--out-dir", type=click.Path(file_okay=False), default="submissions",
              show_default=True, help="CSV and PNG go to OUT_DIR/SLUG/NAME.csv|.png.")
@click.option("--record", is_flag=True, help="With --preset all: score every preset on the "
              "public and private rows and write them into competition.toml's [grading].")
@click.option("--submit", is_flag=True, help="Add the submission(s) as baseline rows.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@with_service(lazy=True)
@format_option()
def baseline(slug, model, preset, name, out_dir, record, submit, progress, store, fmt, **opts):
    """Train a baseline on train.csv, report on validation.csv, predict test.csv.

    Writes OUT_DIR/SLUG/NAME.csv (a valid submission) and NAME.png (training
    and validation loss per epoch), and prints the validation score and the
    lecture's diagnosis: model bias or optimization, overfitting, or fine.
    Options after a --preset override its values. Same --seed, same CSV bytes.

    \b
    Examples:
      harness baseline digits --model cnn --augment 0.5 --epochs 20
      harness baseline digits --model mlp --hidden 128 --dropout 0.3 --weight-decay 1e-4 \\
          --optimizer momentum --lr 0.05 --warmup-epochs 2 --lr-decay cosine --early-stopping 3
      harness baseline fertility --model gbt --epochs 300
      harness baseline digits --preset strong --submit
      harness baseline digits --preset all --record
    """
    from ..baselines import PRESETS, BaselineConfig, preset_config, train_baseline
    from ..home import load_prepared

    given = {k: v for k, v in opts.items() if v is not None}
    if (model is None) == (preset is None):
        raise click.UsageError("give exactly one of --model NAME and --preset NAME|all")
    if record and preset != "all":
        raise click.UsageError("--record needs --preset all (it records every preset)")
    prepared = load_prepared(store.home, slug)
    if preset == "all":
        if given:
            raise click.UsageError(f"--preset all trains the recorded configurations; drop "
                                   f"{', '.join('--' + k.replace('_', '-') for k in given)}")
        preset_config(slug, "simple")            # a clear error for a slug without presets
        runs = [(n, cfg) for n, cfg in PRESETS[slug].items()]
    elif preset is not None:
        runs = [(name or preset, preset_config(slug, preset).replace(**given))]
    else:
        runs = [(name or model, BaselineConfig.for_model(model, **given))]

    rows, results = [], {}
    for run_name, cfg in runs:
        if fmt == "table":
            click.echo(f"{run_name}: {cfg.describe()}")
        result = train_baseline(prepared, cfg, progress=progress and fmt == "table",
                                label=run_name)
        csv_path, png = result.write(Path(out_dir) / slug / f"{run_name}.csv")
        results[run_name] = (result, csv_path)
        row = {"name": run_name, "model": cfg.describe(),
               "validation_score": result.validation_score, "seconds": round(result.seconds, 3),
               "epochs_run": len(result.history), "train_loss": result.train_loss,
               "val_loss": result.val_loss, "diagnosis": result.diagnosis,
               "csv": str(csv_path), "png": str(png)}
        rows.append(row)
        if fmt == "table":
            metric = prepared.spec.metric
            click.echo(f"  validation {metric.name}: {result.validation_score:.5f}  "
                       f"({len(result.history)} epochs, {result.seconds:.1f} s"
                       + (", stopped early" if result.stopped_early else "") + ")")
            click.echo(f"  diagnosis: {result.diagnosis}")
            click.echo(f"  wrote {csv_path} and {png}")

    if record:
        _record(prepared, results, rows, fmt)
    if submit:
        for row in rows:
            res, csv_path = results[row["name"]]
            sub = store.harness.add_baseline(slug, row["name"], Path(csv_path).read_bytes(),
                                             message=f"baseline {res.config.describe()}")
            row["submission_id"] = sub.get("id")
            if fmt == "table":
                click.echo(f"submitted {row['name']!r} as a baseline row "
                           f"(public {sub.get('public_score')})")
    if fmt != "table":          # the table view was printed run by run
        emit(rows, fmt)


def _record(prepared, results, rows, fmt) -> None:
    from ..baselines.record import measure, write_grading
    from ..home import competitions_root
    from ..scoring import AnswerKey

    spec = prepared.spec
    key = AnswerKey.from_prepared(prepared)
    measured = {}
    for row in rows:
        pub, priv = measure(results[row["name"]][1], key, spec.scoring.public_decimals)
        measured[row["name"]] = (pub, priv)
        row["public_score"], row["private_score"] = pub, priv
    comment = f"measured by `harness baseline {spec.slug} --preset all --record`"
    targets = [prepared.directory / "competition.toml"]
    builtin = competitions_root() / spec.slug / "competition.toml"
    if builtin.is_file():
        targets.insert(0, builtin)
    for path in targets:
        write_grading(path, measured, spec.grading, comment)
    if fmt == "table":
        for n, (pub, priv) in measured.items():
            click.echo(f"recorded {n}: public {pub}, private {priv}")
        click.echo("into [grading] of " + " and ".join(str(t) for t in targets))


@click.command()
@click.argument("slug")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the grades to this CSV file.")
@with_service
@format_option()
def grades(slug, output, harness, fmt):
    """Grade every team: scores, thresholds passed on each board, points, copy check.

    For the teacher (reads the home; the private board is read before the
    reveal too). Thresholds and points come from competition.toml's [grading]
    (`harness baseline SLUG --preset all --record` fills it); a score at least
    as good as a threshold passes it. copy_flag marks teams whose final board
    entries are the same file (compared by their SHA-256 in the archive).

    \b
    Example:
      harness grades digits -o grades.csv
    """
    from ..grading import grade, grade_rows, threshold_gaps

    spec = harness.prepared(slug).spec
    public = harness.leaderboard(slug, "public")
    private = harness.leaderboard(slug, "private", teacher=True)
    graded = grade(public, private, spec.grading, spec.metric.greater_is_better,
                   decimals=spec.scoring.public_decimals,
                   roster=[t["name"] for t in harness.list_teams()],
                   files=harness.entry_files(slug, "private"))
    rows = grade_rows(graded, spec.grading)
    # the header of a class without grades yet; else the rows' own columns
    fields = None if rows else _empty_fields(spec.grading)
    if output:
        save_csv(output, rows, fields)
        flagged = sum(g.copy_flag for g in graded)
        click.echo(f"wrote {len(rows)} teams' grades to {output}"
                   + (f"; {flagged} flagged by the copy check" if flagged else ""))
        if not spec.grading:
            click.echo(f"note: {slug!r} has no [grading] thresholds; run `harness baseline "
                       f"{slug} --preset all --record` or add them to competition.toml")
        return
    table = [{**r, "copy": r["same_scores_as"] and f"same as {r['same_scores_as']}",
              **{f"passed_{board}": [t.name for t in spec.grading if r.get(f"{t.name}_{board}")]
                 for board in ("public", "private")}} for r in rows]
    # how far apart the thresholds are, next to the noise of a board score
    gaps = threshold_gaps(spec.grading, greater_is_better=spec.metric.greater_is_better,
                          metric=spec.metric.name,
                          scored_rows={b["board"]: b["scored_rows"] for b in (public, private)
                                       if b.get("scored_rows")},
                          interval=lambda board, value: harness.boards.interval(
                              slug, board, value))
    emit(rows, fmt, GRADE_COLUMNS, table, fields=fields, title=f"{slug}: grades",
         formatters={"points": lambda v: f"{v:g}"},
         caption="\n".join(["thresholds:"] + [g.describe() for g in gaps]) if gaps else None)


GRADE_COLUMNS = [("team", "team"), ("public_score", "public"), ("private_score", "private"),
                 ("passed_public", "passed public"), ("passed_private", "passed private"),
                 ("points", "points"), ("copy", "copy?")]


def _empty_fields(thresholds) -> list[str]:
    return (["team", "public_score", "private_score", "public_rank", "private_rank"]
            + [f"{t.name}_{b}" for t in thresholds for b in ("public", "private")]
            + ["points_public", "points_private", "points", "copy_flag", "same_scores_as"])
