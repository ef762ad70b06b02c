"""`harness lab diagnose|hessian|batch|optimizers`: the training-diagnostics lab.

Thin: parse options, call harness.lab.*, write the report, print the verdicts.
torch is imported inside the commands so `harness --help` stays fast and
works without the [train] extra.
"""

from __future__ import annotations

import click

from ..errors import DataError
from .options import format_option, home_option

out_option = click.option("--out", type=click.Path(file_okay=False), default=None,
                          help="Folder for the report and plots [default: submissions/lab].")
train_rows_option = click.option("--train-rows", type=click.IntRange(min=2), default=None,
                                 help="Use at most this many training rows (a random subset).")


def _setup():
    """torch for a lab run: one thread (tiny models: threads cost more than they give)."""
    try:
        import torch
    except ImportError as exc:   # the [train] extra is missing
        raise click.ClickException("the training lab needs torch: pip install 'harness[train]'"
                                   ) from exc
    torch.set_num_threads(1)
    return torch


def _data(home, slug, train_rows, seed=0):
    from ..lab.common import ensure_prepared
    from ..lab.nets import load_data

    data = load_data(ensure_prepared(home, slug, echo=click.echo))
    return data.subset(train_rows, seed)


def _finish(report, out) -> None:
    """Write the report, print its verdict lines and where it went."""
    from ..lab.report import lab_dir, write_report

    path = write_report(report, lab_dir(None, out))
    for line in report.verdicts:
        click.echo(f"- {line}")
    click.echo(f"report: {path}")


def _parse_model(text: str):

    depth, sep, width = text.lower().partition("x")
    try:
        d, w = int(depth), int(width or 0)
    except ValueError:
        d = w = -1
    if d < 0 or w < 0 or (d > 0 and w < 1) or (sep and not width):
        raise click.BadParameter(f"{text!r}; expected DEPTHxWIDTH, e.g. 4x128 (0 = linear)",
                                 param_hint="--model")
    return d, w


@click.command()
@click.argument("slug")
@home_option
@click.option("--preset", type=click.Choice(["default", "optimization"]), default="default",
              show_default=True, help="default: linear, 1x32 and 2x256 ReLU MLPs with Adam "
              "(the 2x256 overfits digits). optimization: linear, a 3-layer and a 24-layer "
              "plain tanh MLP with plain SGD (reproduces the deeper-trains-worse figure).")
@click.option("--model", "models", multiple=True, metavar="DEPTHxWIDTH",
              help="Replace the preset's models (repeatable; 0 = the linear reference).")
@click.option("--activation", type=click.Choice(["relu", "tanh", "sigmoid", "gelu"]),
              default=None, help="Activation of the --model networks [default: the preset's].")
@click.option("--residual/--no-residual", default=False, help="Skip connections (--model nets).")
@click.option("--norm/--no-norm", default=False, help="LayerNorm (--model nets).")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adagrad", "rmsprop", "adam",
                                                "adam-warmup"]), default=None,
              help="[default: the preset's]")
@click.option("--lr", type=float, default=None, help="Learning rate [default: the preset's].")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="[default: the preset's]")
@click.option("--batch-size", type=click.IntRange(min=0), default=None,
              help="Rows per update; 0 = full batch [default: the preset's].")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Repeat every model with this many seeds (verdict on the mean, and per seed).")
@click.option("--seed", type=int, default=0, show_default=True, help="The first seed.")
@click.option("--shift", type=float, default=0.0, show_default=True,
              help="Also score a shifted copy of the validation rows (images moved this many "
              "pixels right and down; table features by this many standard deviations): the "
              "mismatch branch. 0 = off.")
@click.option("--remedy-dropout", type=click.FloatRange(0, 1, max_open=True), default=0.5,
              show_default=True, help="Dropout of the regularized retry when the verdict is "
              "overfitting.")
@click.option("--remedy-weight-decay", type=click.FloatRange(min=0), default=1e-3,
              show_default=True, help="Weight decay of that retry (both 0: no retry).")
@train_rows_option
@out_option
def diagnose(slug, home, preset, models, activation, residual, norm, optimizer, lr, epochs,
             batch_size, seeds, seed, shift, remedy_dropout, remedy_weight_decay, train_rows,
             out):
    """Model bias, optimization issue, overfitting or mismatch? The lecture's flowchart.

    Trains the linear model (the easy-to-optimize reference) and networks of
    growing depth/width on the same budget, then follows the flowchart for the
    biggest one, training loss first. Training loss high: an optimization
    issue if a smaller net trains lower, else model bias. Training loss low:
    validation loss large next to it is overfitting (then the same net is
    retrained with dropout and weight decay to show the gap closing); with
    --shift, validation fine but the shifted rows worse is a mismatch; else
    fine. The thresholds are the ones `harness baseline` uses.

    \b
    Examples:
      harness lab diagnose digits
      harness lab diagnose digits --preset optimization
      harness lab diagnose digits --model 0 --model 1x32 --shift 2
      harness lab diagnose breast-cancer --model 0 --model 2x64 --model 8x64 --residual --norm
    """
    _setup()
    from dataclasses import asdict, replace

    from ..lab.common import progress_bar
    from ..lab.diagnose import (PRESETS, ModelSpec, Remedy, plot_curves, run_diagnose,
                                shifted_inputs)
    from ..lab.report import Report, lab_dir

    specs, budget = PRESETS[preset]
    if models:
        act = activation or specs[-1].activation
        specs = tuple(ModelSpec(d, w, act, residual, norm) for d, w in map(_parse_model, models))
    elif activation or residual or norm:
        specs = tuple(s if s.depth == 0 else replace(s, activation=activation or s.activation,
                                                     residual=residual, norm=norm) for s in specs)
    budget = replace(budget, **{k: v for k, v in (("optimizer", optimizer), ("lr", lr),
                                                   ("epochs", epochs)) if v is not None})
    if batch_size is not None:
        budget = replace(budget, batch_size=batch_size or None)
    data = _data(home, slug, train_rows, seed)
    seed_list = tuple(range(seed, seed + seeds))
    remedy = Remedy(remedy_dropout, remedy_weight_decay)
    if shift:
        try:
            shifted_inputs(data, shift)      # refuse a shift the images cannot take, early
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--shift") from None
    result = run_diagnose(data, specs, budget, seed_list, shift=shift, remedy=remedy,
                          progress=progress_bar)

    name = "diagnose" if preset == "default" and not models else f"diagnose-{preset}"
    plot = plot_curves(result, lab_dir(None, out) / f"{name}.png",
                       f"{slug}: loss curves ({budget.optimizer}, {budget.epochs} epochs)")
    kinds = result.per_seed_kinds
    agree = sum(k == result.diagnosis.kind for k in kinds)
    verdicts = [f"Verdict: {result.diagnosis.kind.upper()}"] + result.diagnosis.lines + [
        f"Per seed: {', '.join(kinds)} ({agree}/{len(kinds)} agree with the verdict on the "
        "mean)."]
    table = result.summary().drop(columns=["depth", "width"])
    report = Report(name, f"Diagnose training on {slug}", verdicts,
                    {"Evidence (mean over seeds)": table, "Per seed": result.per_seed}, [plot],
                    {"verdict": result.diagnosis.kind, "per_seed": kinds,
                     "null_loss": result.null_loss, "thresholds": asdict(result.thresholds),
                     "models": result.table.drop(columns=["depth", "width"]).to_dict("records"),
                     "remedy": (None if result.remedy is None else
                                result.remedy.drop(columns=["depth", "width"]).to_dict(
                                    "records")[0])},
                    {"slug": slug, "preset": preset, "seeds": list(seed_list),
                     "epochs": budget.epochs, "batch_size": budget.batch_size,
                     "optimizer": budget.optimizer, "lr": budget.lr,
                     "train_rows": len(data.y_train), "shift": shift,
                     "remedy": asdict(remedy), "models": [s.name for s in specs]})
    click.echo(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    _finish(report, out)


@click.command()
@click.option("--competition", "slug", default="breast-cancer", show_default=True,
              help="Real data for the network part.")
@home_option
@click.option("--hidden", type=click.IntRange(min=1), default=8, show_default=True,
              help="Hidden units of the one-hidden-layer tanh network.")
@click.option("--seeds", type=click.IntRange(min=1), default=6, show_default=True,
              help="Runs (seeds); each trains a different number of steps first.")
@click.option("--pretrain-max", type=click.IntRange(min=0), default=300, show_default=True,
              help="Adam steps before the gradient-norm phase grow from 0 to this over the "
              "runs, to reach points of different training loss.")
@click.option("--gradnorm-iters", type=click.IntRange(min=1), default=150, show_default=True,
              help="L-BFGS iterations minimizing the squared gradient norm.")
@click.option("--max-full", type=click.IntRange(min=2), default=3000, show_default=True,
              help="Full Hessian up to this many parameters; Lanczos beyond.")
@click.option("--grad-tol", type=float, default=1e-4, show_default=True,
              help="A gradient norm up to this counts as a critical point.")
@click.option("--eig-tol", type=float, default=1e-3, show_default=True,
              help="Eigenvalues with |λ| <= max(this x max|λ|, sqrt(max|λ| x gradient norm)) "
              "count as flat: they neither make a saddle nor vote in the minimum ratio.")
@train_rows_option
@out_option
def hessian(slug, home, hidden, seeds, pretrain_max, gradnorm_iters, max_full, grad_tol,
            eig_tol, train_rows, out):
    """Critical points by the Hessian: local minimum, saddle point or local maximum?

    First the lecture's toy, y = w1*w2*x with one example (x=1, target 1): at
    the origin the gradient is 0 and the Hessian [[0,-2],[-2,0]] has
    eigenvalues -2 and 2, a saddle; stepping along the eigenvector of -2
    lowers the loss. Then a small network on real data: trained, moved to a
    point of small gradient by minimizing the gradient norm, and judged by its
    Hessian's eigenvalues: positive, negative and flat counts, and the minimum
    ratio (the share of positive eigenvalues among the non-flat ones; flat =
    too small for its sign to mean anything next to the largest curvature and
    the remaining gradient, see --eig-tol).

    \b
    Examples:
      harness lab hessian
      harness lab hessian --competition digits --hidden 4 --seeds 4
      harness lab hessian --hidden 100 --max-full 2000     (Lanczos on 3,302 params)
    """
    _setup()
    import numpy as np
    import pandas as pd

    from ..lab.common import progress_bar
    from ..lab.hessian import (PointTolerances, describe_point, network_point, plot_points,
                               plot_toy, toy)
    from ..lab.report import Report, lab_dir

    tol = PointTolerances(eig_rel=eig_tol, grad=grad_tol)
    directory = lab_dir(None, out)
    t = toy()
    toy_plot = plot_toy(t, directory / "hessian-toy.png")
    u = t.escape_direction
    verdicts = [
        f"Toy y = w1*w2*x at the origin: gradient {t.gradient.tolist()}, Hessian "
        f"{t.hessian.round(6).tolist()}, eigenvalues {t.eigenvalues.round(6).tolist()}: "
        f"{t.verdict.kind}.",
        f"Escape along u = ({u[0]:+.3f}, {u[1]:+.3f}), the eigenvector of "
        f"{t.eigenvalues[0]:g}: loss {t.escape_loss[0]:.3g} at t=0 -> "
        f"{t.escape_loss.min():.3g} at t={t.escape_t[t.escape_loss.argmin()]:.2f}; gradient "
        f"descent from a 0.01 nudge along u ends at loss {t.path_loss[-1]:.2g}.",
    ]

    data = _data(home, slug, train_rows)
    if not data.is_classification:
        raise DataError(f"{slug} is a regression competition; the Hessian lab's network "
                        "needs a classification one (e.g. breast-cancer, digits)")
    steps = [int(round(pretrain_max * k / max(1, seeds - 1))) for k in range(seeds)]
    points = [network_point(data, hidden=hidden, seed=k, pretrain_steps=pre,
                            gradnorm_iters=gradnorm_iters, max_full=max_full, tol=tol)
              for k, pre in progress_bar(list(enumerate(steps)), "critical points")]
    pts_plot = plot_points(points, directory / "hessian-network.png", tol)
    critical = sum(p.verdict.critical for p in points)
    null = data.null_loss()
    verdicts.append(f"Network on {slug}: {points[0].params:,} parameters "
                    f"({points[0].method} Hessian); {critical}/{len(points)} runs reached a "
                    f"gradient norm <= {grad_tol:g} (called critical). Flat eigenvalues: "
                    f"|λ| <= max({eig_tol:g} x max|λ|, sqrt(max|λ| x gradient norm)); they "
                    "neither make a saddle nor vote in the minimum ratio.")
    for p in points:
        line = describe_point(p, tol)
        if p.train_loss < 1e-4 * null:
            line += (" The training loss is ~0: the training rows are separated, the loss only "
                     "approaches its infimum at infinity, so this is a flat region, not a "
                     "minimum in the usual sense.")
        verdicts.append(line)
    kinds = pd.Series([p.verdict.kind if p.verdict.critical else "not critical"
                       for p in points]).value_counts()
    verdicts.append("Kinds found: " + ", ".join(f"{k} x{v}" for k, v in kinds.items()) + ".")
    table = pd.DataFrame([{
        "seed": p.seed, "params": p.params, "pretrain_steps": p.pretrain_steps,
        "train_loss": p.train_loss,
        "grad_norm": p.grad_norm, "critical": p.verdict.critical, "kind": p.verdict.kind,
        "minimum_ratio": p.verdict.minimum_ratio, "positive": p.verdict.positive,
        "negative": p.verdict.negative, "flat": p.verdict.flat, "min_eig": p.verdict.min_eig,
        "max_eig": p.verdict.max_eig, "flat_gradient_share": p.flat_gradient_share,
    } for p in points])
    report = Report("hessian", "Critical points by the Hessian", verdicts,
                    {"Network points": table}, [toy_plot, pts_plot],
                    {"toy": {"gradient": t.gradient.tolist(), "hessian": t.hessian.tolist(),
                             "eigenvalues": t.eigenvalues.tolist(), "kind": t.verdict.kind,
                             "escape_loss": t.escape_loss.tolist()},
                     "points": table.replace({np.nan: None}).to_dict("records")},
                    {"competition": slug, "hidden": hidden, "seeds": seeds,
                     "pretrain_steps": steps, "gradnorm_iters": gradnorm_iters,
                     "max_full": max_full, "grad_tol": grad_tol, "eig_tol": eig_tol,
                     "train_rows": len(data.y_train)})
    _finish(report, out)


def _factors(text: str) -> tuple[float, ...]:
    try:
        factors = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        factors = ()
    if not factors or min(factors) <= 0:
        raise click.BadParameter(f"{text!r}; expected positive numbers separated by commas, "
                                 "e.g. 0.3,1,3,10", param_hint="--lr-factors")
    return factors


def _batch_sizes(text: str):
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in ("full", "n", "all"):
            out.append(None)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise click.BadParameter(f"{part!r}; expected positive integers or 'full', e.g. "
                                     "1,8,32,full", param_hint="--batch-sizes")
    return out


@click.command()
@click.argument("slug")
@home_option
@click.option("--batch-sizes", default="1,8,32,128,full", show_default=True,
              help="Comma-separated; 'full' = the whole training set.")
@click.option("--budget", type=click.Choice(["updates", "epochs"]), default="updates",
              show_default=True, help="updates: the same number of parameter updates for every "
              "batch size (--updates); epochs: the same passes over the data (--epochs).")
@click.option("--updates", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Updates per batch size under --budget updates.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Epochs per batch size under --budget epochs.")
@click.option("--lr", type=float, default=0.1, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default="sgd",
              show_default=True)
@click.option("--depth", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Repeat every batch size with this many seeds (same initializations).")
@click.option("--seed", type=int, default=0, show_default=True, help="The first seed.")
@train_rows_option
@out_option
@format_option()
def batch(slug, home, batch_sizes, budget, updates, epochs, lr, optimizer, depth, width, seeds,
          seed, train_rows, out, fmt):
    """Batch size: time per update and per epoch; do large batches generalize worse?

    Trains the same network from the same initializations with batches from 1
    row to the whole training set, the same learning rate, and the same
    number of updates (or, with --budget epochs, of epochs) for each. Then
    tests the lecture's claim among the batch sizes that converged: similar
    training accuracy, but large batches worse on validation. It says plainly
    whether the claim showed here. --format json prints the numbers, with a
    validation_accuracy per batch size.

    \b
    Examples:
      harness lab batch digits
      harness lab batch digits --budget epochs --epochs 20 --format json
      harness lab batch breast-cancer --batch-sizes 1,16,full --updates 1000
    """
    _setup()
    from ..lab.batch import BatchBudget, batch_verdict, judge_claim, plot_batch, run_batch
    from ..lab.common import progress_bar
    from ..lab.report import Report, lab_dir
    from .lab_overfit import _finish as finish_with_format

    sizes = _batch_sizes(batch_sizes)
    data = _data(home, slug, train_rows, seed)
    plan = BatchBudget(budget, updates if budget == "updates" else epochs)
    seed_list = tuple(range(seed, seed + seeds))
    table, per_seed, curves = run_batch(data, sizes, plan, depth=depth, width=width,
                                        optimizer=optimizer, lr=lr, seeds=seed_list,
                                        progress=progress_bar)
    n_val = len(data.y_val)
    claim = judge_claim(table, per_seed, n_validation=n_val, null_loss=data.null_loss())
    table["converged"] = table["batch_size"].isin(claim["converged"])
    directory = lab_dir(None, out)
    plot = plot_batch(table, curves, claim, directory / "batch.png", plan)
    network = "linear" if depth == 0 else f"{depth}x{width} ReLU MLP"
    verdicts = batch_verdict(table, claim, plan, n_train=len(data.y_train), n_validation=n_val,
                             optimizer=optimizer, lr=lr, seeds=seeds, network=network)
    rows = table.astype(object).where(table.notna(), None).to_dict("records")  # NaN -> null
    report = Report("batch", f"Batch size on {slug}", verdicts,
                    {"By batch size (mean over seeds)": table, "Per seed": per_seed}, [plot],
                    {"budget": budget, plan.kind: plan.amount, "claim": claim, "rows": rows},
                    {"slug": slug, "budget": budget, plan.kind: plan.amount, "lr": lr,
                     "optimizer": optimizer, "depth": depth, "width": width,
                     "seeds": list(seed_list), "train_rows": len(data.y_train),
                     "validation_rows": n_val})
    if fmt == "table":
        click.echo(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    finish_with_format(report, directory, fmt, rows)


@click.command()
@click.argument("slug")
@home_option
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--depth", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Train every optimizer and rate with this many seeds (mean ± sd).")
@click.option("--seed", type=int, default=0, show_default=True, help="The first seed.")
@click.option("--lr-factors", default="0.3,1,3,10,30", show_default=True,
              help="The learning-rate grid: each optimizer's usual rate times these; the rate "
              "with the best mean validation over the seeds is kept.")
@click.option("--toy-steps", type=click.IntRange(min=1), default=300, show_default=True,
              help="Steps of each optimizer on the 2-D toy loss.")
@train_rows_option
@out_option
def optimizers(slug, home, epochs, batch_size, depth, width, seeds, seed, lr_factors, toy_steps,
               train_rows, out):
    """SGD, momentum, Adagrad, RMSProp, Adam and Adam with warm-up, side by side.

    The same network, data and epochs for each optimizer, each at the learning
    rate a small grid picks on validation (every rate trained with several
    seeds: mean ± sd): loss curves, the grid, final accuracies. Then a 2-D
    narrow valley with a small bump, every optimizer at every rate of a grid:
    who zig-zags, who stops at the local minimum, who rolls past it, at the
    rate the grid picks and over all of them.

    \b
    Examples:
      harness lab optimizers digits
      harness lab optimizers breast-cancer --epochs 40 --batch-size 32 --seeds 5
      harness lab optimizers digits --lr-factors 0.1,1,10 --seeds 2
    """
    _setup()
    from ..lab.common import progress_bar
    from ..lab.optimizers import (BumpyValley, optimizers_verdict, plot_curves, plot_grid,
                                  plot_toy, run_optimizers, toy_sweep, toy_verdict)
    from ..lab.report import Report, lab_dir

    factors = _factors(lr_factors)
    directory = lab_dir(None, out)
    data = _data(home, slug, train_rows, seed)
    seed_list = tuple(range(seed, seed + seeds))
    study = run_optimizers(data, epochs=epochs, batch_size=batch_size, depth=depth,
                           width=width, seeds=seed_list, factors=factors,
                           progress=progress_bar)
    valley = BumpyValley()
    toy_grid, toy_table, paths = toy_sweep(valley, steps=toy_steps)
    metric = "val_acc" if data.is_classification else "val_loss"
    plots = [plot_curves(study.curves, directory / "optimizers.png",
                         f"{slug}: {depth}x{width} MLP, batch {batch_size}, {epochs} epochs "
                         f"(mean over {seeds} seeds, chosen rates)"),
             plot_grid(study.grid, directory / "optimizers-grid.png", metric),
             plot_toy(valley, paths, directory / "optimizers-toy.png")]
    verdicts = (optimizers_verdict(study, factors)
                + toy_verdict(toy_table, toy_grid, valley))
    report = Report("optimizers", f"Optimizers on {slug}", verdicts,
                    {"Same model, same data (mean and sd over seeds at the chosen rate)":
                     study.table, "Learning-rate grid": study.grid,
                     "2-D toy at the chosen rates": toy_table, "2-D toy, every rate": toy_grid},
                    plots,
                    {"rows": study.table.to_dict("records"),
                     "grid": study.grid.to_dict("records"),
                     "toy": toy_table.to_dict("records"),
                     "toy_grid": toy_grid.to_dict("records")},
                    {"slug": slug, "epochs": epochs, "batch_size": batch_size, "depth": depth,
                     "width": width, "seeds": list(seed_list), "lr_factors": list(factors),
                     "toy_steps": toy_steps, "train_rows": len(data.y_train)})
    click.echo(study.table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    _finish(report, out)


@click.command()
@click.argument("slug", default="shapes")
@home_option
@click.option("--strength", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Augmentation strength of the two augmented runs (crops, rotations, "
              "colour jitter) [default: the strong preset's, 0.25 on shapes].")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of every run [default: the strong preset's].")
@out_option
@format_option()
def augment(slug, home, strength, epochs, out, fmt):
    """The same CNN with no, label-safe and label-breaking augmentation.

    Trains the competition's strong-preset CNN three times: on the images as they
    are; with random crops, small rotations and colour jitter (flips only where the
    competition is flip-safe); and with horizontal flips forced on, which on shapes
    turns left arrows into right arrows that keep their old label. Writes the three
    runs' training and validation curves (augment.png), each run's grid of augmented
    training images and its submission, and prints each run's validation, public and
    private score. For a teacher or self-study: it reads the home's answer key.

    \b
    Examples:
      harness lab augment shapes
      harness lab augment shapes --epochs 4 --format json
    """
    _setup()
    from ..lab.augment import augment_lab
    from ..lab.common import ensure_prepared, progress_bar
    from ..lab.report import lab_dir, write_report
    from .output import emit

    prepared = ensure_prepared(home, slug, echo=lambda m: click.echo(m, err=True))
    directory = lab_dir(prepared.spec.slug, out)
    report = augment_lab(prepared, directory, strength=strength, epochs=epochs,
                         progress=progress_bar)
    path = write_report(report, directory)
    runs = report.numbers["runs"]

    def show():
        click.echo(_runs_table(runs))
        for line in report.verdicts:
            click.echo(f"- {line}")
        click.echo(f"report: {path}")

    emit({**report.numbers, "report": str(path)}, fmt, records=runs, show=show)


def _runs_table(rows: list[dict]) -> str:
    """The runs as aligned text (the columns a student compares)."""
    import pandas as pd

    cols = ["run", "flips", "validation", "public", "private", "train_loss", "val_loss",
            "epochs"]
    return pd.DataFrame(rows)[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")
