"""What every lab shares, torch-free: data on demand, plots, progress.

- :func:`ensure_prepared`: a prepared competition, preparing a built-in one first
  when the home does not have it yet.
- :func:`pyplot`, :func:`label_axes`, :func:`save_figure`, :func:`plot_loss_curves`:
  matplotlib, dressed and written the same way in every lab.
- The progress protocol, the one every lab takes: ``progress(iterable, desc)``
  returns an iterable yielding the same items (and may show a bar meanwhile).
  ``tqdm`` itself is one; :func:`quiet` (the labs' default) shows nothing and
  :func:`progress_bar` is the commands' bar on stderr.

The numpy labs (attack, holdout, overfit's study) and their commands import only
this module from the labs' shared code, so they run where torch is not installed;
the torch parts live in :mod:`harness.lab.nets`.
"""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from ..errors import PreparedError
from ..home import Prepared, find_spec_path, load_prepared

T = TypeVar("T")


def quiet(iterable: Iterable[T], desc: str | None = None) -> Iterable[T]:
    """The silent progress: ``iterable`` itself (a library call prints nothing by default)."""
    return iterable


def progress_bar(iterable: Iterable[T], desc: str | None = None) -> Iterable[T]:
    """A tqdm bar on stderr that clears itself when the loop ends: the commands' progress.

    On stderr so that ``--format json`` or ``csv`` output on stdout stays clean.
    """
    from tqdm import tqdm

    # sys.stderr is looked up per call: click's test runner swaps it
    return tqdm(iterable, desc=desc, leave=False, file=sys.stderr)


def ensure_prepared(home, slug: str, echo=None) -> Prepared:
    """``load_prepared(home, slug)``, preparing the built-in competition first if needed.

    ``echo`` (e.g. ``click.echo``) is told when the competition gets prepared.

    Raises
    ------
    HarnessError
        When ``slug`` is neither prepared in ``home`` nor a built-in competition.
    """
    try:
        return load_prepared(home, slug)
    except PreparedError:
        spec_path = find_spec_path(slug)   # raises a clear error for an unknown slug
        from ..splits import prepare   # the lab needs it only on a fresh home

        prepared = prepare(spec_path, home)
        if echo is not None:
            echo(f"prepared {prepared.spec.slug!r} in {prepared.directory} (it was not "
                 "prepared in this home yet)")
        return prepared


def pyplot():
    """matplotlib.pyplot on the Agg backend (the labs write PNG files, never open windows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(curves: dict, path, title: str, null_loss: float | None = None):
    """Training and validation loss per epoch side by side, one line per run (log scale).

    ``curves`` maps a label to ``(training losses, validation losses)``;
    ``null_loss`` draws the constant prediction's loss for scale.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, (tr, va) in curves.items():
        line, = axes[0].plot(tr, label=name)
        axes[1].plot(va, color=line.get_color(), label=name)
    for ax, what in zip(axes, ("training", "validation")):
        if null_loss is not None:
            ax.axhline(null_loss, color="grey", ls=":", lw=1, label="constant prediction")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"{what} loss")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def label_axes(ax, xlabel: str, ylabel: str | None = None, title: str | None = None,
               legend: bool = True) -> None:
    """Axis labels, title, a small legend and a light grid: the labs' common dress."""
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def save_figure(fig, path):
    """Lay out, write as PNG and close ``fig``; return ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clf()
    pyplot().close(fig)
    return path
