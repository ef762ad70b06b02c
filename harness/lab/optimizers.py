"""Optimizers side by side: SGD, momentum, Adagrad, RMSProp, Adam, Adam with warm-up.

Two measurements:

- :func:`run_optimizers`: the same model, data, initialization and epochs
  for each optimizer; loss curves and final accuracies.
- :func:`toy_trajectories`: a 2-D loss shaped like the lecture's pictures, a
  narrow valley (curvature 100x steeper across than along) with a small bump
  that leaves a shallow local minimum before the global one. Plain gradient
  descent zig-zags across the valley and stops in the local minimum; momentum
  can roll past the bump; adaptive learning rates rescale each coordinate so
  the path no longer zig-zags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .common import plot_loss_curves, pyplot, quiet, save_figure
from .nets import OPTIMIZERS, LabData, fit, make_optimizer, seeded_mlp

LABELS = {"sgd": "SGD", "momentum": "SGD + momentum", "adagrad": "Adagrad",
          "rmsprop": "RMSProp", "adam": "Adam", "adam-warmup": "Adam + warm-up & decay"}


def run_optimizers(data: LabData, names=OPTIMIZERS, *, epochs: int = 30, batch_size: int = 64,
                   depth: int = 2, width: int = 64, seed: int = 0, lrs: dict | None = None,
                   progress=quiet) -> tuple[pd.DataFrame, dict]:
    """Train the same model from the same initialization with each optimizer.

    ``lrs`` overrides the learning rates (default: :data:`harness.lab.nets.DEFAULT_LR`,
    each optimizer's usual rate); ``progress(iterable, desc)`` wraps the loop over the
    optimizers (see :mod:`harness.lab.common`).
    """
    from .nets import DEFAULT_LR

    rows, curves = [], {}
    for name in progress(names, "optimizers"):
        lr = (lrs or {}).get(name, DEFAULT_LR[name])
        model = seeded_mlp(data, depth, width, seed)
        hist = fit(model, data, epochs=epochs, batch_size=batch_size, optimizer=name, lr=lr,
                   seed=seed)
        rows.append({"optimizer": LABELS[name], "lr": lr, **hist.final(),
                     "best_val_acc": max(hist.val_acc), "seconds": float(sum(hist.epoch_seconds))})
        curves[LABELS[name]] = hist
    return pd.DataFrame(rows), curves


def optimizers_verdict(table: pd.DataFrame) -> list[str]:
    """Which optimizer reached the lowest training loss and the best validation. Pure."""
    t = table.reset_index(drop=True)
    by_train = t.sort_values("train_loss")
    lines = ["Lowest final training loss: " + ", ".join(
        f"{r.optimizer} {r.train_loss:.3g}" for r in by_train.itertuples()) + "."]
    if not t["val_acc"].isna().all():
        best = t.loc[t["val_acc"].idxmax()]
        worst = t.loc[t["val_acc"].idxmin()]
        lines.append(f"Final validation accuracy: best {best['optimizer']} "
                     f"{best['val_acc']:.3f}, worst {worst['optimizer']} {worst['val_acc']:.3f}.")
    return lines


def plot_curves(curves: dict, path: Path, title: str) -> Path:
    """Training and validation loss per epoch, one line per optimizer."""
    return plot_loss_curves({k: (h.train_loss, h.val_loss) for k, h in curves.items()},
                            path, title)


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


# rates for the toy: plain SGD near its stability limit across the valley (2/b = 0.2)
TOY_LR = {"sgd": 0.18, "momentum": 0.05, "adagrad": 0.5, "rmsprop": 0.02, "adam": 0.1,
          "adam-warmup": 0.1}


def toy_trajectories(loss: BumpyValley = BumpyValley(), names=OPTIMIZERS, steps: int = 300,
                     lrs: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Each optimizer's path on the toy from the same start.

    Returns
    -------
    table : DataFrame
        Per optimizer: final x, y, loss, whether the path crossed the bump,
        and the total distance travelled across the valley (zig-zag).
    paths : dict
        Label -> (steps+1, 2) array.
    """
    rows, paths = [], {}
    for name in names:
        lr = (lrs or {}).get(name, TOY_LR[name])
        w = torch.tensor(loss.start, dtype=torch.float64, requires_grad=True)
        opt, schedule = make_optimizer(name, [w], lr, total_steps=steps)
        path = [w.detach().numpy().copy()]
        for _ in range(steps):
            opt.zero_grad()
            loss(w).backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            path.append(w.detach().numpy().copy())
        path = np.array(path)
        rows.append({"optimizer": LABELS[name], "lr": lr, "final_x": path[-1, 0],
                     "final_y": path[-1, 1],
                     "final_loss": float(loss(torch.tensor(path[-1]))),
                     "crossed_bump": bool(path[:, 0].max() > loss.c),
                     "across_travel": float(np.abs(np.diff(path[:, 1])).sum())})
        paths[LABELS[name]] = path
    return pd.DataFrame(rows), paths


def toy_verdict(table: pd.DataFrame, loss: BumpyValley = BumpyValley()) -> list[str]:
    """Who rolled past the bump, who stopped in the local minimum, who zig-zagged. Pure."""
    minima = loss.local_minima_x()
    local = [m for m in minima if m < loss.c]
    crossed = table[table["crossed_bump"]]["optimizer"].tolist()
    stuck = table[~table["crossed_bump"]]["optimizer"].tolist()
    straight = abs(loss.start[1])   # the least distance across: straight down to y = 0
    lines = [
        f"Toy loss: valley {loss.b / loss.a:.0f}x steeper across than along, a bump at "
        f"x={loss.c:g} leaving a local minimum at x={local[0]:.2f}." if local else
        f"Toy loss: valley {loss.b / loss.a:.0f}x steeper across than along, bump at x={loss.c:g}.",
        ("Rolled past the bump to the global minimum: " + (", ".join(crossed) or "none") + "."),
        ("Stopped before the bump (in the local minimum): " + (", ".join(stuck) or "none") + "."),
    ]
    zig = table.sort_values("across_travel", ascending=False)
    lines.append("Distance travelled across the valley (zig-zag; straight down is "
                 f"{straight:g}): " + ", ".join(f"{r.optimizer} {r.across_travel:.2f}"
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
