"""What a baseline is: :class:`BaselineConfig`, validated on construction.

One flat, frozen dataclass serves every model so that a preset, a command
line and a lab sweep all speak the same names. Options that mean nothing for
a model (dropout for gradient-boosted trees, say) are refused rather than
silently ignored, so every option a user sets really changes something.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..errors import HarnessError

MODELS = ("linear", "gbt", "mlp", "cnn")
TORCH_MODELS = ("mlp", "cnn")
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
LR_DECAYS = ("none", "cosine", "step")
FLIPS = ("auto", "on", "off")

# Which options each model reads; the rest must keep their defaults.
_COMMON = {"model", "seed"}
_TORCH = {"hidden", "wide", "dropout", "weight_decay", "augment", "flip", "cutout", "noise",
          "mixup", "optimizer", "lr", "momentum", "warmup_epochs", "lr_decay", "batch_size", "epochs", "early_stopping"}
USES = {
    "linear": _COMMON | {"weight_decay"},
    # gbt: epochs = boosting iterations, lr = shrinkage, weight_decay = l2_regularization,
    # hidden[0] = leaves per tree, early_stopping = patience on the validation loss
    "gbt": _COMMON | {"hidden", "weight_decay", "lr", "epochs", "early_stopping"},
    "mlp": _COMMON | _TORCH,
    "cnn": _COMMON | (_TORCH - {"wide"}),
}


class BaselineError(HarnessError):
    """A baseline option with a bad value, or one that does not fit the model or data."""


@dataclass(frozen=True)
class BaselineConfig:
    """One baseline's model, regularization, augmentation and optimization settings.

    Parameters
    ----------
    model : {"linear", "gbt", "mlp", "cnn"}
        ``linear``: logistic regression (classification) or ridge (regression);
        ``gbt``: scikit-learn's HistGradientBoosting; ``mlp``: a torch
        multi-layer perceptron (on an image competition: on the raw pixels);
        ``cnn``: a small torch CNN (image data only: ``digits``'s pixel columns or
        an image competition such as ``shapes``). An image competition trains
        ``mlp`` or ``cnn`` only.
    hidden : tuple of int
        MLP layer widths, CNN channels per conv layer, or ``(leaves,)`` for gbt.
    wide : bool
        MLP only: add a linear path from the inputs to the outputs beside the
        hidden layers ("wide and deep"), so the network starts from what a
        linear model can do.
    dropout : float
        Dropout probability after each hidden layer (torch models).
    weight_decay : float
        L2 penalty coefficient on the mean loss: ``loss + weight_decay/2 * |w|^2``
        (torch: the optimizer's weight decay; linear: ``C = 1/(weight_decay n)``
        or ``alpha = weight_decay n / 2``; gbt: ``l2_regularization``).
    augment : float
        Image augmentation strength in [0, 1]. Pixel tables (``digits``): random
        shifts up to 1.5 px, rotations up to 15 degrees and pixel noise, all
        scaled by it, never flips (a mirrored digit is another symbol). Image
        competitions: random crops with padding, rotations up to 15 degrees and
        colour jitter (:mod:`harness.baselines.image_augment`), plus horizontal
        flips where the competition's ``flip_safe`` allows them.
    flip : {"auto", "on", "off"}
        Image competitions: horizontal flips when ``augment > 0`` and the
        competition is ``flip_safe`` (auto), always (on: breaks the labels of a
        competition that is not flip-safe, which the augmentation lab shows), or
        never (off).
    cutout : float
        Image competitions: erase one random square of this share of the side
        per image (0 = off).
    noise : float
        Gaussian noise added to every training batch: in standard deviations of
        the standardized features (tables) or on the [0, 1] pixel scale (image
        competitions).
    mixup : float
        Mixup's Beta(mixup, mixup) parameter (rows or images and their labels
        mixed), 0 = off.
    optimizer : {"sgd", "momentum", "adagrad", "rmsprop", "adam"}
    lr : float
        Learning rate (gbt: the shrinkage).
    momentum : float
        Momentum of ``optimizer="momentum"``.
    warmup_epochs : int
        Epochs of linear learning-rate warm-up.
    lr_decay : {"none", "cosine", "step"}
        Decay after the warm-up: cosine to 0, or x0.1 at 50% and 75%.
    batch_size : int
    epochs : int
        Training epochs (gbt: boosting iterations).
    early_stopping : int
        Patience in epochs on the validation loss, 0 = off; the best epoch's
        weights are kept.
    seed : int
    """

    model: str = "mlp"
    hidden: tuple[int, ...] = (64,)
    wide: bool = False
    dropout: float = 0.0
    weight_decay: float = 0.0
    augment: float = 0.0
    flip: str = "auto"
    cutout: float = 0.0
    noise: float = 0.0
    mixup: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    warmup_epochs: int = 0
    lr_decay: str = "none"
    batch_size: int = 64
    epochs: int = 20
    early_stopping: int = 0
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        _choice("model", self.model, MODELS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_decay", self.lr_decay, LR_DECAYS)
        _choice("flip", self.flip, FLIPS)
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise BaselineError(f"hidden={self.hidden}: needs one or more positive widths, "
                                "e.g. hidden=(64,) or --hidden 128,64")
        for name, low, high in (("dropout", 0, 0.95), ("augment", 0, 1), ("cutout", 0, 0.75),
                                ("noise", 0, 10),
                                ("mixup", 0, 10), ("weight_decay", 0, 100),
                                ("momentum", 0, 0.999)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise BaselineError(f"{name}={value} is out of range; expected a number in "
                                    f"[{low}, {high}]")
        if not 0 < self.lr <= 10:
            raise BaselineError(f"lr={self.lr} is out of range; expected 0 < lr <= 10")
        for name, low in (("batch_size", 1), ("epochs", 1), ("warmup_epochs", 0),
                          ("early_stopping", 0)):
            if getattr(self, name) < low:
                raise BaselineError(f"{name}={getattr(self, name)} must be {low} or more")
        if self.warmup_epochs >= self.epochs:
            raise BaselineError(f"warmup_epochs={self.warmup_epochs} leaves no epoch after "
                                f"the warm-up; use fewer than epochs={self.epochs}")
        unused = [f.name for f in fields(self)
                  if f.name not in USES[self.model] and getattr(self, f.name) != f.default]
        if unused:
            users = sorted(m for m in MODELS if set(unused) <= USES[m])
            raise BaselineError(f"model {self.model!r} does not use {', '.join(unused)}"
                                + (f"; those options work with {', '.join(users)}"
                                   if users else ""))

    @classmethod
    def for_model(cls, model: str, **overrides) -> "BaselineConfig":
        """A config with sensible defaults for ``model``, then ``overrides``.

        gbt's boosting needs a larger step and more iterations than a network's
        optimizer, so its defaults are ``lr=0.1, epochs=200, hidden=(31,)``.
        """
        base = dict(MODEL_DEFAULTS.get(model, {}))
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(model=model, **base)

    def to_dict(self) -> dict:
        """Plain values (JSON-friendly) of every option."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    def describe(self) -> str:
        """The options that differ from the defaults, as ``key=value`` text."""
        parts = [f"{f.name}={_fmt(getattr(self, f.name))}" for f in fields(self)
                 if f.name != "model" and getattr(self, f.name) != f.default]
        return f"{self.model}" + (f" ({', '.join(parts)})" if parts else "")

    def replace(self, **changes) -> "BaselineConfig":
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)


MODEL_DEFAULTS = {
    "gbt": {"lr": 0.1, "epochs": 200, "hidden": (31,)},
    "linear": {},
    "mlp": {},
    "cnn": {"hidden": (16, 32)},
}


def _choice(name, value, allowed):
    if value not in allowed:
        raise BaselineError(f"{name}={value!r} is not one of {', '.join(allowed)}")


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
