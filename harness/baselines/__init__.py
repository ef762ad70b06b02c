"""Course baselines: scikit-learn and torch models, augmentation, regularization.

::

    from harness.baselines import BaselineConfig, train_baseline, PRESETS, preset_config

    result = train_baseline(prepared, preset_config("digits", "strong"))
    result.validation_score, result.diagnosis
    result.write("submissions/digits/strong.csv")      # + strong.png, the learning curve

torch is imported only when a torch model (mlp, cnn) is trained, so the
scikit-learn baselines work without the ``[train]`` extra.
"""

from .config import BaselineConfig, BaselineError
from .diagnosis import diagnose, trivial_loss
from .presets import PRESET_NAMES, PRESETS, preset_config
from .train import BaselineResult, train_baseline

__all__ = ["BaselineConfig", "BaselineError", "BaselineResult", "PRESETS", "PRESET_NAMES",
           "diagnose", "preset_config", "train_baseline", "trivial_loss"]
