"""Teacher commands: `harness baseline` (train, write, record, submit) and `harness grades`.

The library is imported inside the commands: torch loads only when a torch
baseline is trained, so `harness --help` and every other command stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from .options import format_option, with_service, with_teacher
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
@click.option("--preset", help="A preset configuration: simple, medium, strong, boss (every "
              "competition has them), or all.")
@click.option("--name", help="File name of the submission (default: the preset or model).")
@click.option("--hidden", callback=_widths, help="MLP widths / CNN channels, e.g. 128,64 "
              "(gbt: leaves per tree).")
@click.option("--wide/--no-wide", default=None, help="MLP: add a linear path (wide & deep).")
@click.option("--dropout", type=float, help="Dropout probability (mlp, cnn).")
@click.option("--weight-decay", type=float, help="L2 penalty on the weights.")
@click.option("--augment", type=float, help="Image augmentation strength 0-1: random shifts "
              "or crops, small rotations (<=15 deg), and pixel noise (digits) or colour jitter "
              "(image competitions). Never horizontal flips on digits (a mirrored digit is "
              "another symbol); an image competition flips only where it is flip-safe (see "
              "--flip).")
@click.option("--flip", type=click.Choice(["auto", "on", "off"]), help="Image competitions: "
              "horizontal flips where the competition says they keep the label (auto), "
              "always (on: breaks the labels of e.g. shapes' arrows), or never (off).")
@click.option("--cutout", type=float, help="Image competitions: erase a random square of "
              "this share of the side per image, 0 = off.")
@click.option("--noise", type=float, help="Gaussian noise per training batch: features (std) "
              "or pixels (on the 0-1 scale).")
@click.option("--mixup", type=float, help="Mixup Beta(a, a) of rows or images and their "
              "labels, 0 = off.")
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
              "public and private rows and write them into [grading] of the home's copy of "
              "competition.toml (HOME/competitions/SLUG/), which `harness grades` reads.")
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

    Image competitions (e.g. shapes) train mlp or cnn on images streamed from
    the folders, and also write NAME-augmented.png: training images as the
    network sees them. Any table works: text columns are one-hot encoded, missing values
    imputed. Built-in competitions have tuned presets; every other one (your
    own competition.toml) gets generic ones: a linear model, then boosted
    trees. A built-in not prepared in the home yet is prepared first.

    \b
    Examples:
      harness baseline digits --model cnn --augment 0.5 --epochs 20
      harness baseline shapes --preset strong
      harness baseline shapes --model cnn --hidden 16,32,64 --augment 0.5 --cutout 0.25
      harness baseline digits --model mlp --hidden 128 --dropout 0.3 --weight-decay 1e-4 \\
          --optimizer momentum --lr 0.05 --warmup-epochs 2 --lr-decay cosine --early-stopping 3
      harness baseline fertility --model gbt --epochs 300
      harness baseline digits --preset strong --submit
      harness baseline digits --preset all --record
      harness baseline my-course --preset simple
    """
    from ..baselines import BaselineConfig, preset_config, presets_for, train_baseline
    from ..lab.common import ensure_prepared

    given = {k: v for k, v in opts.items() if v is not None}
    if (model is None) == (preset is None):
        raise click.UsageError("give exactly one of --model NAME and --preset NAME|all")
    if record and preset != "all":
        raise click.UsageError("--record needs --preset all (it records every preset)")
    if preset not in (None, "all"):
        preset_config(slug, preset)          # a bad name fails before any preparing
    prepared = ensure_prepared(store.home, slug, echo=lambda m: click.echo(m, err=True))
    slug = prepared.spec.slug                # SLUG may have been a competition's folder
    image = prepared.is_image
    if preset == "all":
        if given:
            raise click.UsageError(f"--preset all trains the preset configurations; drop "
                                   f"{', '.join('--' + k.replace('_', '-') for k in given)}")
        runs = list(presets_for(slug, image).items())
    elif preset is not None:
        runs = [(name or preset, preset_config(slug, preset, image).replace(**given))]
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
        if result.augmented_png is not None:
            row["augmented_png"] = str(result.augmented_png)
        rows.append(row)
        if fmt == "table":
            metric = prepared.spec.metric
            click.echo(f"  validation {metric.name}: {result.validation_score:.5f}  "
                       f"({len(result.history)} epochs, {result.seconds:.1f} s"
                       + (", stopped early" if result.stopped_early else "") + ")")
            click.echo(f"  diagnosis: {result.diagnosis}")
            click.echo(f"  wrote {csv_path} and {png}"
                       + (f" and {result.augmented_png}" if result.augmented_png else ""))

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
    from ..scoring import AnswerKey

    spec = prepared.spec
    key = AnswerKey.from_prepared(prepared)
    measured = {}
    for row in rows:
        pub, priv = measure(results[row["name"]][1], key, spec.scoring.public_decimals)
        measured[row["name"]] = (pub, priv)
        row["public_score"], row["private_score"] = pub, priv
    comment = f"measured by `harness baseline {spec.slug} --preset all --record`"
    # the home's copy only: the installed package (built-ins) is shared and may be
    # read-only, and the home's copy is the one `harness grades` and the server read
    target = prepared.directory / "competition.toml"
    write_grading(target, measured, spec.grading, comment)
    # a running server reloads a competition when its manifest's stamp changes
    os.utime(prepared.directory / "manifest.json")
    if fmt == "table":
        for n, (pub, priv) in measured.items():
            click.echo(f"recorded {n}: public {pub}, private {priv}")
        click.echo(f"into [grading] of {target} (kept when the competition is prepared "
                   "again; a threshold its source competition.toml names wins)")


@click.command()
@click.argument("slug")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the grades to this CSV file (plain UTF-8, for a spreadsheet or an "
                   "LMS).")
@click.option("--by", type=click.Choice(["team", "member"]), default="team", show_default=True,
              help="One row per team, or one per roster member (member, section, team, "
                   "scores, thresholds passed, points) for an LMS.")
@with_teacher
@format_option()
def grades(slug, output, by, backend, fmt):
    """Grade every team: scores, thresholds passed on each board, points, copy check.

    For the teacher (the private board is read before the reveal too). Thresholds and
    points come from competition.toml's [grading] (`harness baseline SLUG --preset all
    --record` fills it); a score at least as good as a threshold passes it. copy_flag marks
    teams whose final board entries are the same file (compared by their SHA-256 in the
    archive). --by member gives each roster member their team's grade, for an LMS.

    \b
    Example:
      harness grades digits -o grades.csv
      harness grades digits --by member -o lms.csv
    """
    table = backend.grades(slug, by)
    rows = table["rows"]
    notes = []
    if table["without_members"]:
        notes.append(f"note: {len(table['without_members'])} team(s) have no members, so no "
                     f"row here: {', '.join(table['without_members'][:10])}")
    if not table["graded"]:
        notes.append(f"note: {slug!r} has no [grading] thresholds; run `harness baseline "
                     f"{slug} --preset all --record` on the server machine, or add them to "
                     "competition.toml")
    if output:
        save_csv(output, rows, table["fields"])
        click.echo(f"wrote {len(rows)} {by}s' grades to {output}"
                   + (f"; {table['flagged']} team(s) flagged by the copy check"
                      if table["flagged"] else ""))
        for note in notes:
            click.echo(note)
        return
    if by == "member":
        columns, shown = [(f, f.replace("_", " ")) for f in table["fields"]], rows
    else:
        columns = GRADE_COLUMNS
        shown = [{**r, "copy": r["same_scores_as"] and f"same as {r['same_scores_as']}"}
                 for r in rows]
    # how far apart the thresholds are, next to the noise of a board score
    emit(rows, fmt, columns, shown, fields=table["fields"], title=f"{slug}: grades ({by})",
         formatters={"points": lambda v: f"{v:g}"},
         caption="\n".join((["thresholds:"] + table["thresholds"] if table["thresholds"]
                            else []) + notes) or None)


GRADE_COLUMNS = [("team", "team"), ("public_score", "public"), ("private_score", "private"),
                 ("passed_public", "passed public"), ("passed_private", "passed private"),
                 ("points", "points"), ("copy", "copy?")]
