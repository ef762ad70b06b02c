"""Course baselines: scikit-learn and torch models, augmentation, regularization.

::

    from harness.baselines import BaselineConfig, train_baseline, preset_config

    result = train_baseline(prepared, preset_config("digits", "strong"))
    result.validation_score, result.diagnosis
    result.write("submissions/digits/strong.csv")      # + strong.png, the learning curve

Any competition works, a teacher's own table too: categorical columns are
one-hot encoded and missing values imputed (:mod:`harness.baselines.data`),
and every competition has the presets simple, medium, strong and boss
(:func:`presets_for`). torch is imported only when a torch model (mlp, cnn) is
trained, so the scikit-learn baselines work without the ``[train]`` extra.
"""

from .config import BaselineConfig, BaselineError
from .diagnosis import diagnose, trivial_loss
from .presets import GENERIC_PRESETS, PRESET_NAMES, PRESETS, preset_config, presets_for
from .train import BaselineResult, train_baseline

__all__ = ["BaselineConfig", "BaselineError", "BaselineResult", "GENERIC_PRESETS", "PRESETS",
           "PRESET_NAMES", "diagnose", "preset_config", "presets_for", "train_baseline",
           "trivial_loss"]
