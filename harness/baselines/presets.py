"""The baseline presets simple, medium, strong and boss, for every competition.

:data:`PRESETS` holds the configurations tuned for built-in competitions: each
one's presets are ordered on validation (boss beats strong beats medium beats
simple; ``tests/test_baselines_presets.py`` checks it), and ``strong`` trains
in seconds on two cores (``benchmarks/bench_baselines.py``).

Every other competition, a teacher's own table included, and every preset name
a built-in leaves out, gets :data:`GENERIC_PRESETS`: a regularized linear model,
then gradient-boosted trees of growing size. They need scikit-learn only (no
``[train]`` extra) and fit classification and regression alike: the spec's task
picks logistic or ridge regression, the boosted classifier or regressor, and
the spec's metric the predicted labels or probabilities.
"""

from __future__ import annotations

from .config import BaselineConfig, BaselineError

PRESET_NAMES = ("simple", "medium", "strong", "boss")

C = BaselineConfig
PRESETS: dict[str, dict[str, BaselineConfig]] = {
    # the course's story: a linear model, an MLP, a small CNN, a CNN with augmentation
    "digits": {
        "simple": C(model="linear", weight_decay=0.01),
        "medium": C(model="mlp", hidden=(128,), epochs=30, batch_size=32, lr=3e-3,
                    lr_decay="cosine"),
        "strong": C(model="cnn", hidden=(16, 32), epochs=12, batch_size=32, lr=3e-3,
                    lr_decay="cosine"),
        "boss": C(model="cnn", hidden=(32, 64), augment=0.5, epochs=25, batch_size=32,
                  lr=3e-3, lr_decay="cosine"),
    },
    # 284 training rows: regularization wins (the unregularized linear model overfits)
    "breast-cancer": {
        "simple": C(model="gbt", lr=0.1, epochs=3, hidden=(4,)),
        "medium": C(model="linear"),
        "strong": C(model="mlp", hidden=(32,), dropout=0.2, weight_decay=1e-3, noise=0.2,
                    epochs=60, batch_size=32),
        "boss": C(model="linear", weight_decay=0.3),
    },
    # the lagged target dominates: least squares on the lags is the one to beat
    "fertility": {
        "simple": C(model="linear", weight_decay=1.0),
        "medium": C(model="gbt", lr=0.1, epochs=100, hidden=(15,)),
        "strong": C(model="linear", weight_decay=1e-3),
        "boss": C(model="linear"),
    },
    "synthetic": {
        "simple": C(model="linear"),
        "medium": C(model="gbt", lr=0.1, epochs=100, hidden=(15,)),
        "strong": C(model="mlp", hidden=(128, 128), epochs=20, batch_size=128,
                    lr_decay="cosine"),
        "boss": C(model="mlp", hidden=(256, 256), dropout=0.1, epochs=30, batch_size=128,
                  warmup_epochs=2, lr_decay="cosine"),
    },
    # the CNN homework: pixels without convolutions; a small CNN; a wider one with light
    # label-safe augmentation (crops, rotations, colour; no flips: shapes is not flip-safe);
    # the same trained twice as long with cutout. Measured on 10k images (README, "The CNN
    # homework"): capacity and epochs order them; light augmentation is a tie at this size
    # (16-32-64, 12 epochs: 0.983 with, 0.980 without) and heavy regularization costs
    # (augment 0.5 + cutout 0.25 + mixup 0.2 + dropout 0.1: 0.863 at 15 epochs)
    "shapes": {
        "simple": C(model="mlp", hidden=(128,), epochs=10, batch_size=128, lr=1e-3),
        "medium": C(model="cnn", hidden=(8, 16, 32), epochs=5, batch_size=64, lr=3e-3,
                    lr_decay="cosine"),
        "strong": C(model="cnn", hidden=(16, 32, 64), augment=0.25, epochs=8, batch_size=64,
                    lr=3e-3, lr_decay="cosine", weight_decay=1e-4),
        "boss": C(model="cnn", hidden=(16, 32, 64), augment=0.25, cutout=0.125, epochs=16,
                  batch_size=64, lr=3e-3, lr_decay="cosine", weight_decay=1e-4),
    },
    "noise-binary": {
        # random labels: nothing beats a coin on fresh data; the generic presets show it too
        "simple": C(model="linear"),
    },
}

# any table: a linear model with a light L2 penalty (logistic regression on one-hot
# columns may separate the classes and then never converge without one), then boosted
# trees; strong and boss stop on the validation loss, so a small table costs little
GENERIC_PRESETS: dict[str, BaselineConfig] = {
    "simple": C(model="linear", weight_decay=1e-3),
    "medium": C(model="gbt", lr=0.1, epochs=100, hidden=(15,)),
    "strong": C(model="gbt", lr=0.1, epochs=300, hidden=(31,), early_stopping=20),
    "boss": C(model="gbt", lr=0.05, epochs=800, hidden=(31,), weight_decay=1.0,
              early_stopping=40),
}


# any image competition (the generic presets are scikit-learn models on table columns): the
# shapes story sized for unknown images, stopping on the validation loss
IMAGE_PRESETS: dict[str, BaselineConfig] = {
    "simple": C(model="mlp", hidden=(128,), epochs=10, batch_size=128),
    "medium": C(model="cnn", hidden=(16, 32, 64), epochs=15, lr_decay="cosine",
                early_stopping=3),
    "strong": C(model="cnn", hidden=(16, 32, 64), augment=0.5, epochs=20, lr_decay="cosine",
                weight_decay=1e-4, early_stopping=4),
    "boss": C(model="cnn", hidden=(32, 64, 64), augment=0.5, cutout=0.25, mixup=0.2,
              dropout=0.2, epochs=30, lr_decay="cosine", weight_decay=1e-4, early_stopping=5),
}
del C


def presets_for(slug: str, image: bool = False) -> dict[str, BaselineConfig]:
    """Every preset of competition ``slug``, simple to boss.

    A built-in's own presets, and the generic ones for the names it leaves out
    (and for every competition without presets of its own): :data:`IMAGE_PRESETS`
    when ``image`` (an image competition), else :data:`GENERIC_PRESETS`.
    """
    own = PRESETS.get(slug, {})
    generic = IMAGE_PRESETS if image else GENERIC_PRESETS
    return {name: own.get(name, generic[name]) for name in PRESET_NAMES}


def preset_config(slug: str, name: str, image: bool = False) -> BaselineConfig:
    """The configuration of preset ``name`` for competition ``slug`` (see :func:`presets_for`).

    Raises
    ------
    BaselineError
        For an unknown preset name.
    """
    if name not in PRESET_NAMES:
        raise BaselineError(f"no preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return presets_for(slug, image)[name]
