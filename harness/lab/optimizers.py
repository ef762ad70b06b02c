"""Optimizers side by side: SGD, momentum, Adagrad, RMSProp, Adam, Adam with warm-up.

Two measurements:

- :func:`run_optimizers`: the same model, data and epochs for each optimizer,
  each at the learning rate a small grid chose on validation (every rate
  trained with several seeds); final numbers as mean ± sd over the seeds.
- :func:`toy_trajectories`: a 2-D loss shaped like the lecture's pictures, a
  narrow valley (curvature 100x steeper across than along) with a small bump
  that leaves a shallow local minimum before the global one. Each optimizer
  runs at every rate of a grid and is shown at the rate that grid picks, so
  the story (plain gradient descent stops in the local minimum at every rate
  it is stable at; momentum can roll past the bump; adaptive rates rescale
  each coordinate) does not rest on one hand-set rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .common import label_axes, plot_loss_curves, pyplot, quiet, save_figure
from .nets import DEFAULT_LR, OPTIMIZERS, LabData, fit, make_optimizer, seeded_mlp

LABELS = {"sgd": "SGD", "momentum": "SGD + momentum", "adagrad": "Adagrad",
          "rmsprop": "RMSProp", "adam": "Adam", "adam-warmup": "Adam + warm-up & decay"}

# each optimizer's rates: its usual rate (nets.DEFAULT_LR) times these, half a decade apart
LR_FACTORS = (0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass
class OptimizerStudy:
    """What :func:`run_optimizers` measured.

    Attributes
    ----------
    table : DataFrame
        One row per optimizer at its chosen rate: final numbers as mean and sd
        over the seeds, and ``at_grid_edge`` when the rate is the grid's
        smallest or largest (a wider grid might choose otherwise).
    grid : DataFrame
        One row per (optimizer, rate): mean and sd over the seeds of the final
        validation accuracy and training loss, ``chosen`` marking the pick.
    curves : dict
        Label -> (training losses, validation losses) per epoch, averaged over
        the seeds at the chosen rate.
    seeds : tuple of int
    """

    table: pd.DataFrame
    grid: pd.DataFrame
    curves: dict
    seeds: tuple


def _finite(values) -> np.ndarray:
    """A diverged run's NaN or inf scores as the worst possible."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v), v, np.inf)


def choose_lr(grid: pd.DataFrame, classification: bool) -> pd.Series:
    """The grid row per optimizer to keep: best mean validation over the seeds. Pure.

    Classification: the highest mean validation accuracy, ties to the lower
    mean validation loss; regression: the lowest mean validation loss. Returns
    a boolean mask over ``grid``'s rows.
    """
    chosen = pd.Series(False, index=grid.index)
    for _, part in grid.groupby("optimizer", sort=False):
        loss = _finite(part["val_loss"])
        if classification:
            acc = np.nan_to_num(part["val_acc"].to_numpy(float), nan=-np.inf)
            order = np.lexsort((loss, -acc))
        else:
            order = np.argsort(loss, kind="stable")
        chosen[part.index[order[0]]] = True
    return chosen


def run_optimizers(data: LabData, names=OPTIMIZERS, *, epochs: int = 20, batch_size: int = 64,
                   depth: int = 2, width: int = 64, seeds=(0, 1, 2),
                   factors=LR_FACTORS, progress=quiet) -> OptimizerStudy:
    """Train the same model with each optimizer over a grid of rates and several seeds.

    Seed ``s`` gives every optimizer and rate the same initialization and batch
    order. Each optimizer's rate is chosen on validation (:func:`choose_lr`,
    the mean over the seeds); its row in the table is that rate's runs.

    Parameters
    ----------
    data : LabData
    names : sequence of str
        Optimizers (see :data:`harness.lab.nets.OPTIMIZERS`).
    epochs, batch_size, depth, width : int
    seeds : sequence of int
    factors : sequence of float
        The rates tried: each optimizer's usual rate (``DEFAULT_LR``) times these.
    progress : callable
        Wraps the loop over the runs: ``progress(iterable, desc)`` (see
        :mod:`harness.lab.common`).
    """
    seeds = tuple(seeds)
    factors = tuple(sorted(set(float(f) for f in factors)))
    if not seeds or not factors or min(factors) <= 0:
        raise ValueError(f"run_optimizers needs seeds and positive rate factors; got "
                         f"seeds={seeds}, factors={factors}")
    runs = [(name, DEFAULT_LR[name] * f, seed) for name in names for f in factors
            for seed in seeds]
    hists: dict = {}
    for name, lr, seed in progress(runs, "optimizers x rates x seeds"):
        model = seeded_mlp(data, depth, width, seed)
        hists[name, lr, seed] = fit(model, data, epochs=epochs, batch_size=batch_size,
                                    optimizer=name, lr=lr, seed=seed)
    rows = []
    for name in names:
        for f in factors:
            lr = DEFAULT_LR[name] * f
            finals = pd.DataFrame([hists[name, lr, s].final() for s in seeds])
            rows.append({"optimizer": LABELS[name], "lr": lr,
                         **{f"{c}": float(finals[c].mean()) for c in finals},
                         **{f"{c}_sd": float(finals[c].std(ddof=1)) if len(seeds) > 1
                            else 0.0 for c in finals}})
    grid = pd.DataFrame(rows)
    grid["chosen"] = choose_lr(grid, data.is_classification)
    table_rows, curves = [], {}
    for name in names:
        row = grid[(grid.optimizer == LABELS[name]) & grid.chosen].iloc[0]
        lrs = grid[grid.optimizer == LABELS[name]].lr
        picked = [hists[name, row.lr, s] for s in seeds]
        table_rows.append({
            "optimizer": LABELS[name], "lr": row.lr,
            "at_grid_edge": bool(len(lrs) > 1 and row.lr in (lrs.min(), lrs.max())),
            **{c: row[c] for c in ("train_loss", "train_loss_sd", "val_loss", "val_loss_sd",
                                   "train_acc", "train_acc_sd", "val_acc", "val_acc_sd")},
            "seconds": float(np.mean([sum(h.epoch_seconds) for h in picked]))})
        curves[LABELS[name]] = (np.mean([h.train_loss for h in picked], axis=0),
                                np.mean([h.val_loss for h in picked], axis=0))
    return OptimizerStudy(pd.DataFrame(table_rows), grid, curves, seeds)


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.3g} ± {sd:.2g}"


def optimizers_verdict(study: OptimizerStudy, factors=LR_FACTORS) -> list[str]:
    """The rates chosen, the lowest training loss and the best validation, with spreads. Pure."""
    t = study.table.reset_index(drop=True)
    n = len(study.seeds)
    lines = [
        f"Each optimizer's learning rate chosen from its usual rate x "
        f"{', '.join(f'{f:g}' for f in factors)} by the mean final validation "
        f"{'accuracy' if not t['val_acc'].isna().all() else 'loss'} over {n} seeds "
        "(same initialization and batch order per seed): "
        + ", ".join(f"{r.optimizer} {r.lr:.3g}" for r in t.itertuples()) + ". Numbers below: "
        f"mean ± sd over the {n} seeds at that rate.",
    ]
    edge = t[t.at_grid_edge]
    if len(edge):
        lines.append("At the edge of its grid (a wider grid might choose another rate): "
                     + ", ".join(edge.optimizer) + ".")
    by_train = t.sort_values("train_loss")
    lines.append("Lowest final training loss: " + ", ".join(
        f"{r.optimizer} {_pm(r.train_loss, r.train_loss_sd)}" for r in by_train.itertuples())
        + ".")
    if not t["val_acc"].isna().all():
        best = t.loc[t["val_acc"].idxmax()]
        worst = t.loc[t["val_acc"].idxmin()]
        gap = best["val_acc"] - worst["val_acc"]
        spread = max(best["val_acc_sd"], worst["val_acc_sd"])
        lines.append(
            f"Final validation accuracy: best {best['optimizer']} "
            f"{_pm(best['val_acc'], best['val_acc_sd'])}, worst {worst['optimizer']} "
            f"{_pm(worst['val_acc'], worst['val_acc_sd'])}: "
            + ("each tuned, the optimizers end within the seeds' spread of one another."
               if gap <= 2 * spread else
               "a gap larger than twice the seeds' spread.")
            + " The rate was chosen on the same validation runs, so these are slightly "
            "optimistic.")
    return lines


def plot_curves(curves: dict, path: Path, title: str) -> Path:
    """Training and validation loss per epoch, one line per optimizer.

    ``curves`` maps a label to ``(training losses, validation losses)``
    (:attr:`OptimizerStudy.curves`).
    """
    return plot_loss_curves(curves, path, title)


def plot_grid(grid: pd.DataFrame, path: Path, metric: str = "val_acc") -> Path:
    """Validation (mean ± sd over seeds) against the learning rate, one line per optimizer."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, part in grid.groupby("optimizer", sort=False):
        line = ax.errorbar(part.lr, part[metric], yerr=part[f"{metric}_sd"], marker="o",
                           ms=4, capsize=2, label=name)
        pick = part[part.chosen]
        ax.plot(pick.lr, pick[metric], "*", ms=14, color=line[0].get_color())
    ax.set_xscale("log")
    label_axes(ax, "learning rate", f"final {metric.replace('_', ' ')} (mean ± sd over seeds)",
               "the learning-rate grid (star: the rate chosen)")
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------
# the 2-D toy

@dataclass(frozen=True)
class BumpyValley:
    """``a/2 x² + b/2 y² + h exp(-(x-c)²/2s²)``: a narrow valley with a bump across it."""

    a: float = 0.1      # curvature along the valley
    b: float = 10.0     # across it: 100x steeper, the ill-conditioning
    h: float = 0.15     # the bump's height ...
    c: float = -2.0     # ... position ...
    s: float = 0.3      # ... and width
    start: tuple = (-4.0, 0.8)

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        x, y = w[..., 0], w[..., 1]
        return (0.5 * self.a * x ** 2 + 0.5 * self.b * y ** 2
                + self.h * torch.exp(-(x - self.c) ** 2 / (2 * self.s ** 2)))

    def local_minima_x(self) -> np.ndarray:
        """Where the loss along the valley floor (y = 0) has its local minima."""
        xs = torch.linspace(-6.0, 2.0, 8001, dtype=torch.float64)
        f = self(torch.stack([xs, torch.zeros_like(xs)], -1)).numpy()
        inner = (f[1:-1] < f[:-2]) & (f[1:-1] < f[2:])
        return xs.numpy()[1:-1][inner]


# the toy's rates: 0.001 to 1 in quarter decades, the same grid for every optimizer
TOY_LRS = tuple(float(f"{10 ** e:.3g}") for e in np.arange(-3, 0.01, 0.25))


def _toy_paths(loss: BumpyValley, name: str, lrs, steps: int) -> list[np.ndarray]:
    """One optimizer's paths from the start, one per rate, all run at once.

    Each rate is its own parameter group of one optimizer, and the summed loss
    gives each point the gradient of its own loss only: the same as separate
    runs, in one loop.
    """
    points = [torch.tensor(loss.start, dtype=torch.float64, requires_grad=True) for _ in lrs]
    groups = [{"params": [w], "lr": lr} for w, lr in zip(points, lrs)]
    opt, schedule = make_optimizer(name, groups, lrs[0], total_steps=steps)
    paths = np.empty((len(lrs), steps + 1, 2))
    paths[:, 0] = loss.start
    for t in range(steps):
        opt.zero_grad()
        loss(torch.stack(points)).sum().backward()
        opt.step()
        if schedule is not None:
            schedule.step()
        paths[:, t + 1] = torch.stack(points).detach().numpy()
    return list(paths)


def _toy_row(loss: BumpyValley, name: str, lr: float, path: np.ndarray,
             start_loss: float) -> dict:
    with np.errstate(over="ignore", invalid="ignore"):
        final = float(loss(torch.tensor(path[-1])))
        diverged = not math.isfinite(final) or final > 1e3 * start_loss
        return {"optimizer": LABELS[name], "lr": lr, "final_x": path[-1, 0],
                "final_y": path[-1, 1], "final_loss": final, "diverged": diverged,
                "crossed_bump": bool(not diverged and path[:, 0].max() > loss.c),
                "across_travel": float(np.abs(np.diff(path[:, 1])).sum())}


def toy_trajectories(loss: BumpyValley = BumpyValley(), names=OPTIMIZERS, steps: int = 300,
                     lrs: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Each optimizer's path on the toy from the same start, at one rate each.

    ``lrs`` maps an optimizer to its rate (default: its usual rate, ``DEFAULT_LR``).

    Returns
    -------
    table : DataFrame
        Per optimizer: final x, y, loss, whether it diverged (a non-finite or
        exploding loss), whether the path crossed the bump, and the total
        distance travelled across the valley (zig-zag).
    paths : dict
        Label -> (steps+1, 2) array.
    """
    start_loss = float(loss(torch.tensor(loss.start, dtype=torch.float64)))
    rows, paths = [], {}
    for name in names:
        lr = (lrs or {}).get(name, DEFAULT_LR[name])
        path, = _toy_paths(loss, name, [lr], steps)
        rows.append(_toy_row(loss, name, lr, path, start_loss))
        paths[LABELS[name]] = path
    return pd.DataFrame(rows), paths


def toy_sweep(loss: BumpyValley = BumpyValley(), names=OPTIMIZERS, steps: int = 300,
              lrs=TOY_LRS) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Every optimizer at every rate of ``lrs``, and each at the rate the grid picks.

    The pick, the same rule for all: the lowest loss after ``steps`` steps
    among the rates that did not diverge, the smallest rate among equal losses
    (within 0.1%): the gentlest rate that does as well.

    Returns
    -------
    grid : DataFrame
        :func:`toy_trajectories`' columns for every (optimizer, rate), and ``chosen``.
    table : DataFrame
        The chosen rows.
    paths : dict
        Label -> the path at the chosen rate.
    """
    lrs = sorted(lrs)
    start_loss = float(loss(torch.tensor(loss.start, dtype=torch.float64)))
    rows, every = [], {}
    for name in names:
        for lr, path in zip(lrs, _toy_paths(loss, name, lrs, steps)):
            rows.append(_toy_row(loss, name, lr, path, start_loss))
            every[LABELS[name], lr] = path
    grid = pd.DataFrame(rows)
    grid["chosen"] = False
    for _, part in grid.groupby("optimizer", sort=False):
        ok = part[~part.diverged]
        if ok.empty:
            continue
        best = ok.final_loss.min()
        ties = ok[np.isclose(ok.final_loss, best, rtol=1e-3, atol=1e-6)]
        grid.loc[ties.lr.idxmin(), "chosen"] = True
    table = grid[grid.chosen].reset_index(drop=True)
    paths = {r.optimizer: every[r.optimizer, r.lr] for r in table.itertuples()}
    return grid, table, paths


def toy_verdict(table: pd.DataFrame, grid: pd.DataFrame,
                loss: BumpyValley = BumpyValley()) -> list[str]:
    """Who rolled past the bump at its chosen rate and over the whole grid; the zig-zag. Pure."""
    minima = loss.local_minima_x()
    local = [m for m in minima if m < loss.c]
    crossed = table[table["crossed_bump"]]["optimizer"].tolist()
    stuck = table[~table["crossed_bump"]]["optimizer"].tolist()
    straight = abs(loss.start[1])   # the least distance across: straight down to y = 0
    lrs = sorted(grid.lr.unique())
    lines = [
        f"Toy loss: valley {loss.b / loss.a:.0f}x steeper across than along, a bump at "
        f"x={loss.c:g} leaving a local minimum at x={local[0]:.2f}." if local else
        f"Toy loss: valley {loss.b / loss.a:.0f}x steeper across than along, bump at x={loss.c:g}.",
        f"Each optimizer at the rate that {len(lrs)} rates from {lrs[0]:g} to {lrs[-1]:g} "
        "(quarter decades) pick by the same rule, the lowest loss after the steps, the "
        "smallest of equal ones: " + ", ".join(f"{r.optimizer} {r.lr:.3g}"
                                               for r in table.itertuples()) + ".",
        ("At those rates, rolled past the bump to the global minimum: "
         + (", ".join(crossed) or "none") + "; stopped before the bump (in the local "
         "minimum): " + (", ".join(stuck) or "none") + "."),
    ]
    over = []
    for name, part in grid.groupby("optimizer", sort=False):
        ok = part[~part.diverged]
        hit = ok[ok.crossed_bump]
        text = f"{name} at {len(hit)} of {len(ok)}"
        if len(hit):
            text += f" (from {hit.lr.min():.3g})" if hit.lr.min() > ok.lr.min() else " (all)"
        over.append(text)
    lines.append("Over every rate that did not diverge, crossed the bump: " + ", ".join(over)
                 + ". Plain gradient descent has no inertia: each step follows the local slope, "
                 "which points back from the bump, so no stable rate takes it over.")
    sgd = grid[(grid.optimizer == LABELS["sgd"]) & ~grid.diverged]
    if len(sgd):
        top = sgd.loc[sgd.lr.idxmax()]
        low = sgd.loc[sgd.lr.idxmin()]
        lines.append(f"SGD is stable only below 2/b = {2 / loss.b:g} (the steep direction); its "
                     f"zig-zag across the valley grows with the rate: distance travelled "
                     f"across {low.across_travel:.2f} at {low.lr:.3g} (straight down is "
                     f"{straight:g}), {top.across_travel:.2f} at {top.lr:.3g}.")
    zig = table.sort_values("across_travel", ascending=False)
    lines.append("Distance travelled across the valley at the chosen rates (zig-zag; straight "
                 f"down is {straight:g}): " + ", ".join(f"{r.optimizer} {r.across_travel:.2f}"
                                                         for r in zig.itertuples()) + ".")
    return lines


def plot_toy(loss: BumpyValley, paths: dict, path: Path) -> Path:
    """Contour of the toy loss with every optimizer's trajectory."""
    plt = pyplot()
    xs = np.linspace(-5, 1.5, 300)
    ys = np.linspace(-1.2, 1.2, 200)
    X, Y = np.meshgrid(xs, ys)
    Z = loss(torch.tensor(np.stack([X, Y], -1))).numpy()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    cs = ax.contour(X, Y, Z, levels=np.quantile(Z, np.linspace(0.01, 0.95, 25)),
                    cmap="Greys", linewidths=0.7)
    ax.clabel(cs, fontsize=6, fmt="%.2f")
    for label, p in paths.items():
        ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=1, label=label)
    ax.plot(*loss.start, "ko", label="start")
    ax.axvline(loss.c, color="red", ls=":", lw=1, label="bump")
    ax.set_xlabel("w1 (along the valley)")
    ax.set_ylabel("w2 (across)")
    ax.set_title("a narrow valley with a small bump: optimizer trajectories")
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)
