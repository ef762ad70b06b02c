"""Recorded baseline configurations per built-in competition.

Each competition's presets are ordered on validation (boss beats strong beats
medium beats simple; ``tests/test_baselines_presets.py`` checks it), and
``strong`` trains in seconds on two cores (``benchmarks/bench_baselines.py``).
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
    "noise-binary": {
        # random labels: nothing beats a coin on fresh data, so one reference point
        "simple": C(model="linear"),
    },
}
del C


def preset_config(slug: str, name: str) -> BaselineConfig:
    """The recorded configuration ``name`` of competition ``slug``.

    Raises
    ------
    BaselineError
        For a competition without presets or an unknown preset name.
    """
    if slug not in PRESETS:
        raise BaselineError(f"no presets for competition {slug!r}; presets exist for "
                            f"{', '.join(PRESETS)} (or train one with --model)")
    if name not in PRESETS[slug]:
        raise BaselineError(f"no preset {name!r} for {slug!r}; choose one of "
                            f"{', '.join(PRESETS[slug])}")
    return PRESETS[slug][name]
