"""The augmentation lab: the same CNN without augmentation, with label-safe augmentation
and with label-breaking augmentation, on an image competition.

Three runs of one network and budget (the competition's ``strong`` preset by default),
differing only in what the training images go through
(:mod:`harness.baselines.image_augment`):

- **none**: the images as they are;
- **label-safe**: random crops, small rotations and colour jitter, plus horizontal
  flips only where the competition says they keep the label (``[data] flip_safe``);
- **label-breaking**: the same plus horizontal flips of half the images whatever the
  labels say. On ``shapes`` a flipped left arrow is a right arrow still labelled left:
  the network is taught that the two arrows are one class, and both arrow classes
  suffer.

Each run's training and validation curves go into one PNG, and its submission is
scored by the real scorer on the public and on the private rows. The lab trains on
the home's prepared competition, answer key included: it is a teacher's (or a
self-study) tool, like ``harness baseline --record``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import HarnessError
from ..home import Prepared
from ..scoring import AnswerKey, round_public, score
from ..uncertainty import differs, paired_difference, replicates
from .common import plot_loss_curves, quiet
from .report import Report

STRENGTH = 0.5      # when the base configuration has no augmentation of its own
RUNS = {
    # no augmentation at all, whatever the base configuration had
    "none": {"augment": 0.0, "flip": "off", "cutout": 0.0, "mixup": 0.0, "noise": 0.0},
    "label-safe": {"flip": "auto"},
    "label-breaking": {"flip": "on"},
}


def lab_configs(base, strength: float | None = None) -> dict:
    """The three runs' configurations: ``base`` with each run's augmentation settings.

    ``strength`` (the augmented runs' ``augment``) defaults to ``base``'s own, or to
    :data:`STRENGTH` when ``base`` has none.
    """
    if strength is None:
        strength = base.augment or STRENGTH
    if not 0 < strength <= 1:
        raise HarnessError(f"strength={strength}: expected a number in (0, 1], e.g. 0.5")
    return {name: base.replace(**({"augment": strength} | changes) if name != "none"
                               else changes)
            for name, changes in RUNS.items()}


def augment_lab(prepared: Prepared, directory, *, base=None, strength: float | None = None,
                epochs: int | None = None, progress=quiet) -> Report:
    """Train the three runs, score them on both boards, plot their curves.

    Parameters
    ----------
    prepared : Prepared
        An image competition.
    directory : Path
        Where each run's submission, learning curve and augmented-examples grid, and
        the lab's curves PNG go.
    base : BaselineConfig, optional
        The network and budget [default: the competition's ``strong`` preset].
    strength : float, optional
        ``augment`` of the two augmented runs [default: the base configuration's
        own, or :data:`STRENGTH` when it has none].
    epochs : int, optional
        Override the base configuration's epochs.
    progress : callable
        ``progress(iterable, desc)`` around the runs (see :mod:`harness.lab.common`).

    Returns
    -------
    Report
        ``numbers["runs"]``: per run its validation, public and private scores and
        final losses.
    """
    from ..baselines import preset_config, train_baseline

    if not prepared.is_image:
        raise HarnessError(f"{prepared.spec.slug!r} is a table competition; the augmentation "
                           "lab trains a CNN on an image competition, e.g. shapes")
    directory = Path(directory)
    base = base or preset_config(prepared.spec.slug, "strong", image=True)
    if epochs is not None:
        base = base.replace(epochs=epochs)
    if base.model != "cnn":
        raise HarnessError(f"the augmentation lab compares one CNN; got model {base.model!r}")
    key = AnswerKey.from_prepared(prepared)
    decimals = prepared.spec.scoring.public_decimals
    metric = prepared.spec.metric.name
    y_val = prepared.validation[prepared.spec.data.target].to_numpy()
    rows, curves, grids, reps = [], {}, [], {}
    configs = lab_configs(base, strength)
    strength = configs["label-safe"].augment
    for name, cfg in progress(list(configs.items()), "training"):
        result = train_baseline(prepared, cfg, progress=False, label=name)
        csv_path, _ = result.write(directory / f"augment-{name}.csv")
        if name != "none":
            grids.append(result.augmented_png)
        boards = score(csv_path, key)
        reps[name] = replicates(prepared.spec.metric, y_val, result.validation_predictions)
        kept = result.history[result.best_epoch]
        rows.append({"run": name, "flips": _flips(cfg, prepared.spec.data.flip_safe),
                     "config": cfg.describe(), "validation": result.validation_score,
                     "public": round_public(boards.public, decimals),
                     "private": round_public(boards.private, decimals),
                     "train_loss": kept["train_loss"], "val_loss": kept["val_loss"],
                     "epochs": len(result.history), "seconds": round(result.seconds, 2)})
        curves[name] = ([h["train_loss"] for h in result.history],
                        [h["val_loss"] for h in result.history])
    table = pd.DataFrame(rows)
    slug = prepared.spec.slug
    plot = plot_loss_curves(curves, directory / "augment.png",
                            f"{slug}: the same CNN, three augmentations")
    verdicts = _verdicts(table, reps, prepared.spec.data.flip_safe, metric,
                         prepared.spec.metric.greater_is_better)
    return Report("augment", f"Augmentation lab on {slug}", verdicts,
                  {f"Scores ({metric}) and final losses": table}, [plot, *grids],
                  {"metric": metric, "flip_safe": prepared.spec.data.flip_safe,
                   "runs": table.to_dict("records")},
                  {"slug": slug, "base": base.to_dict(), "strength": strength})


def _flips(cfg, flip_safe: bool) -> str:
    from ..baselines.image_augment import flips

    return "yes" if flips(cfg, flip_safe) else "no"


def _verdicts(table: pd.DataFrame, reps: dict, flip_safe: bool, metric: str,
              higher: bool) -> list[str]:
    by = table.set_index("run")
    none, safe, broken = (by.loc[n] for n in RUNS)

    def compare(a: str, b: str) -> tuple[int, str]:
        """+1 when run a is clearly better than b on validation, -1 clearly worse, 0 tied,
        with the difference and its 95% interval as text."""
        diff, half = paired_difference(reps[a], reps[b])
        text = f"{diff:+.4f} ± {half:.4f}"
        if not differs(reps[a], reps[b]):
            return 0, text
        return (1 if (diff > 0) == higher else -1), text

    lines = [f"Validation {metric}: none {none['validation']:.4f}, label-safe "
             f"{safe['validation']:.4f}, label-breaking {broken['validation']:.4f}; public "
             f"{none['public']}, {safe['public']}, {broken['public']}; private "
             f"{none['private']}, {safe['private']}, {broken['private']}."]
    verdict, text = compare("label-safe", "none")
    if verdict > 0:
        lines.append(f"Label-safe augmentation helps ({text} on validation, 95% interval of "
                     "a paired bootstrap): the network sees more varied images of each class, "
                     "so it memorizes less.")
    elif verdict == 0:
        lines.append(f"Label-safe augmentation and none are tied on validation ({text}, "
                     "within the 95% interval of a paired bootstrap): too small a difference "
                     "for this many validation images to tell apart, or the images already "
                     "vary as much as the augmentation would make them.")
    else:
        lines.append(f"Label-safe augmentation costs here ({text} on validation): too few "
                     "epochs to profit from harder images, or already enough data; "
                     "augmentation trades training fit for generalization, and it needs the "
                     "epochs to pay off.")
    gap_none = none["val_loss"] - none["train_loss"]
    gap_safe = safe["val_loss"] - safe["train_loss"]
    if gap_safe < gap_none:
        lines.append(f"Validation loss minus training loss (the overfitting gap): none "
                     f"{gap_none:.3f}, label-safe {gap_safe:.3f}: augmented images are harder "
                     "to memorize (compare the curves).")
    else:
        lines.append(f"Validation loss minus training loss (the overfitting gap): none "
                     f"{gap_none:.3f}, label-safe {gap_safe:.3f}: no sign of memorizing for "
                     "augmentation to prevent.")
    if flip_safe:
        lines.append("This competition is flip-safe ([data] flip_safe = true): a mirror image "
                     "keeps its label, so the 'label-breaking' run breaks nothing here.")
        return lines
    verdict, text = compare("label-safe", "label-breaking")
    if verdict > 0:
        lines.append(f"Flipping breaks labels (label-safe minus label-breaking: {text}): a "
                     "mirrored image of a class that a flip changes (a left arrow becomes a "
                     "right arrow) keeps its old label, so the network is taught wrong "
                     "answers and scores worse than with label-safe augmentation.")
    else:
        lines.append(f"The label-breaking run (flips forced on) did not score clearly worse "
                     f"than the label-safe one this time ({text}): with few images or epochs "
                     "the difference drowns in the noise; train longer or on more images "
                     "(the arrows' classes suffer first).")
    return lines
