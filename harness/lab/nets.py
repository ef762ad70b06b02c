"""Small torch helpers the training-diagnostics labs share.

- :func:`load_data`: a prepared competition -> standardized float tensors.
- :func:`make_mlp`: an MLP of given depth and width, plain or with residual
  connections and layer normalization.
- :func:`make_optimizer`: the optimizers of the lecture by name, with an
  optional warm-up + cosine-decay schedule.
- :func:`fit`: a plain full-batch / minibatch training loop returning the
  per-epoch training and validation loss and accuracy, and the time spent.

The labs' torch-free helpers (preparing on demand, plots, progress) are in
:mod:`harness.lab.common`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..home import Prepared
from .common import quiet


@dataclass
class LabData:
    """A competition's training and validation parts as standardized tensors.

    ``y`` holds class indices (int64) for classification and floats for
    regression; features are standardized with the training part's mean and
    standard deviation.
    """

    slug: str
    task: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: list | None = None
    image_side: int | None = None   # 8 for digits: rows are side x side images
    channels: int = 1               # 3 for a colour image competition (rows: C x side x side)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Logits per row: one per class (binary included), one for regression."""
        return len(self.classes) if self.classes else 1

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    def null_loss(self) -> float:
        """Training loss of the best constant prediction (class prior / mean).

        The scale the lab's rules measure losses against: a model no better
        than this has learned nothing.
        """
        if self.is_classification:
            p = torch.bincount(self.y_train, minlength=self.n_outputs).double()
            p = p[p > 0] / p.sum()
            return float(-(p * p.log()).sum())
        return float(self.y_train.var(unbiased=False))

    def subset(self, n_train: int | None, seed: int = 0) -> "LabData":
        """The same data with at most ``n_train`` training rows (a random subset)."""
        if n_train is None or n_train >= len(self.y_train):
            return self
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self.y_train), generator=g)[:n_train]
        return LabData(self.slug, self.task, self.x_train[idx], self.y_train[idx],
                       self.x_val, self.y_val, self.classes, self.image_side, self.channels)


def load_data(prepared: Prepared) -> LabData:
    """The training and validation parts of ``prepared`` as float tensors.

    Encoded as the baselines encode them (:func:`harness.baselines.data.load_arrays`):
    features standardized, or an image scaled as a whole to [0, 1]; classes as
    indices; a regression target standardized, so losses are on a unit scale.

    Raises
    ------
    DataError
        When a feature is not numeric or a value is missing.
    """
    if prepared.is_image:
        return load_image_pixels(prepared)
    from ..baselines.data import load_arrays

    a = load_arrays(prepared)
    if a.classes is not None:
        y_tr, y_va = torch.tensor(a.y_train), torch.tensor(a.y_val)
    else:
        y_tr = torch.tensor((a.y_train - a.y_mean) / a.y_scale, dtype=torch.float32)
        y_va = torch.tensor((a.y_val - a.y_mean) / a.y_scale, dtype=torch.float32)
    return LabData(prepared.spec.slug, a.task, torch.tensor(a.x_train), y_tr,
                   torch.tensor(a.x_val), y_va,
                   list(a.classes) if a.classes is not None else None, a.image_side)


def load_image_pixels(prepared: Prepared) -> LabData:
    """An image competition's training and validation images as rows of pixels on [0, 1].

    Decoded into memory (channels first, flattened): the labs train small networks
    on pixel features; pass ``--train-rows`` to bound the training part. A square
    image sets ``image_side`` (for the shifted-rows check).
    """
    from ..baselines.image_data import load_image_data

    d = load_image_data(prepared)
    channels, height, width = d.shape
    if d.classes is not None:
        y_tr, y_va = torch.tensor(d.y_train), torch.tensor(d.y_val)
    else:
        y_tr = torch.tensor((d.y_train - d.y_mean) / d.y_scale, dtype=torch.float32)
        y_va = torch.tensor((d.y_val - d.y_mean) / d.y_scale, dtype=torch.float32)
    return LabData(prepared.spec.slug, d.task, torch.from_numpy(d.x_train.pixels()), y_tr,
                   torch.from_numpy(d.x_val.pixels()), y_va,
                   list(d.classes) if d.classes is not None else None,
                   height if height == width else None, channels)


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
               "softplus": nn.Softplus}


class _Block(nn.Module):
    """Linear -> (LayerNorm) -> activation -> (dropout), with an optional skip connection."""

    def __init__(self, n_in, n_out, activation, residual, norm, dropout=0.0):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.norm = nn.LayerNorm(n_out) if norm else nn.Identity()
        self.act = ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.residual = residual and n_in == n_out

    def forward(self, x):
        h = self.drop(self.act(self.norm(self.linear(x))))
        return x + h if self.residual else h


def make_mlp(n_in: int, n_out: int, depth: int, width: int, *, activation: str = "relu",
             residual: bool = False, norm: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """An MLP with ``depth`` hidden layers of ``width`` units.

    ``depth=0`` is the linear model (logistic / softmax / linear regression),
    the lab's easy-to-optimize reference. ``residual`` adds skip connections
    around the hidden layers of equal width; ``norm`` adds LayerNorm (which,
    unlike BatchNorm, also works with batches of one); ``dropout`` zeroes that
    share of each hidden layer's outputs while training.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers, size = [], n_in
    for _ in range(depth):
        layers.append(_Block(size, width, activation, residual, norm, dropout))
        size = width
    layers.append(nn.Linear(size, n_out))
    return nn.Sequential(*layers)


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def loss_and_accuracy(logits: torch.Tensor, y: torch.Tensor, task: str):
    """Mean loss (cross-entropy, or MSE for regression) and accuracy (NaN for regression)."""
    if task == "regression":
        return F.mse_loss(logits.squeeze(-1), y), torch.tensor(float("nan"))
    loss = F.cross_entropy(logits, y)
    return loss, (logits.argmax(-1) == y).float().mean()


OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adam-warmup")
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.02, "adagrad": 0.05, "rmsprop": 1e-3, "adam": 1e-3,
              "adam-warmup": 3e-3}


def warmup_cosine(total_steps: int, warmup: float = 0.1):
    """lr multiplier: linear warm-up over ``warmup`` of the steps, then cosine decay to 0."""
    w = max(1, int(round(warmup * total_steps)))

    def factor(step: int) -> float:
        if step < w:
            return (step + 1) / w
        progress = (step - w) / max(1, total_steps - w)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def make_optimizer(name: str, params, lr: float | None = None, *, total_steps: int = 1,
                   momentum: float = 0.9, weight_decay: float = 0.0):
    """An optimizer by the lecture's name and its per-update lr schedule (or None).

    Names: ``sgd``, ``momentum`` (SGD with momentum), ``adagrad``, ``rmsprop``,
    ``adam``, ``adam-warmup`` (Adam with linear warm-up and cosine decay over
    ``total_steps`` updates). ``lr=None`` takes :data:`DEFAULT_LR`.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else lr
    params = list(params)
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    elif name == "momentum":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    elif name == "adagrad":
        opt = torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    elif name == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    schedule = (torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total_steps))
                if name == "adam-warmup" else None)
    return opt, schedule


@dataclass
class History:
    """Per-epoch numbers of one training run (index 0 is before any update).

    With ``fit(eval_every=k)`` an entry is recorded every ``k`` epochs (and
    after the last); ``at_update`` says after how many updates each was taken
    and ``epoch_seconds`` holds the training time since the previous entry
    (evaluation excluded).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    at_update: list[int] = field(default_factory=list)
    updates: int = 0

    def final(self) -> dict:
        """The last epoch's losses and accuracies."""
        return {"train_loss": self.train_loss[-1], "val_loss": self.val_loss[-1],
                "train_acc": self.train_acc[-1], "val_acc": self.val_acc[-1]}


@torch.no_grad()
def score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str) -> tuple[float, float]:
    """Loss and accuracy of ``model`` on the rows ``x, y``, in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    loss, acc = loss_and_accuracy(model(x), y, task)
    model.train(was_training)
    return float(loss), float(acc)


def evaluate(model: nn.Module, data: LabData) -> tuple[float, float, float, float]:
    """Training loss, validation loss, training accuracy, validation accuracy."""
    tl, ta = score(model, data.x_train, data.y_train, data.task)
    vl, va = score(model, data.x_val, data.y_val, data.task)
    return tl, vl, ta, va


def fit(model: nn.Module, data: LabData, *, epochs: int, batch_size: int | None = None,
        optimizer: str = "adam", lr: float | None = None, momentum: float = 0.9,
        weight_decay: float = 0.0, seed: int = 0, max_updates: int | None = None,
        eval_every: int = 1, progress=quiet) -> History:
    """Train ``model`` on ``data`` and record losses and accuracies after every epoch.

    Parameters
    ----------
    model : nn.Module
    data : LabData
    epochs : int
        Passes over the training rows; the rows are reshuffled every epoch.
    batch_size : int, optional
        Rows per update; None (or at least the training size) is full-batch.
    optimizer, lr, momentum, weight_decay
        See :func:`make_optimizer`.
    seed : int
        Seeds the shuffling (the model's initialization is the caller's).
    max_updates : int, optional
        Stop after this many parameter updates, within an epoch if need be (the
        batch lab gives every batch size the same number of updates).
    eval_every : int
        Measure the losses after every ``eval_every``-th epoch (and the last);
        evaluating costs about a training step's time, too much for a full
        batch trained for thousands of epochs.
    progress : callable
        Wraps the epoch loop: ``progress(iterable, desc)`` (see :mod:`harness.lab.common`).

    Returns
    -------
    History
        Entry 0 is the untrained model; the loss is measured on the whole
        training part in eval mode, not averaged over the epoch's batches.
        A run that diverges stops early with NaN losses recorded.
    """
    n = len(data.y_train)
    bs = n if batch_size is None else max(1, min(int(batch_size), n))
    per_epoch = math.ceil(n / bs)
    total = per_epoch * epochs if max_updates is None else min(per_epoch * epochs, max_updates)
    opt, schedule = make_optimizer(optimizer, model.parameters(), lr, total_steps=total,
                                   momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    hist = History()
    _record(hist, evaluate(model, data), 0.0)
    model.train()
    seconds = 0.0
    for epoch in progress(range(1, epochs + 1), "epochs"):
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen) if bs < n else None
        for i in range(0, n, bs):
            if hist.updates >= total:
                break
            if order is None:
                xb, yb = data.x_train, data.y_train
            else:
                idx = order[i:i + bs]
                xb, yb = data.x_train[idx], data.y_train[idx]
            loss, _ = loss_and_accuracy(model(xb), yb, data.task)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            hist.updates += 1
        seconds += time.perf_counter() - start     # the evaluation below is not training
        last = epoch == epochs or hist.updates >= total
        if epoch % eval_every and not last:
            continue
        _record(hist, evaluate(model, data), seconds)
        seconds = 0.0
        if last or not math.isfinite(hist.train_loss[-1]):
            break
    return hist


def _record(hist: History, numbers, seconds: float) -> None:
    tl, vl, ta, va = numbers
    hist.train_loss.append(tl)
    hist.val_loss.append(vl)
    hist.train_acc.append(ta)
    hist.val_acc.append(va)
    hist.epoch_seconds.append(seconds)
    hist.at_update.append(hist.updates)


def mean_curves(curves, length: int):
    """The mean over runs of equal-schedule curves, runs that stopped early padded with NaN.

    A diverged run stops with a NaN loss; padding keeps the other runs' mean
    defined at every later point.
    """
    padded = [np.concatenate([np.asarray(c, dtype=float), np.full(length - len(c), np.nan)])
              for c in curves]
    with warnings.catch_warnings():     # a point where every run had stopped: NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(padded, axis=0) if padded else np.full(length, np.nan)


def seeded_mlp(data: LabData, depth: int, width: int, seed: int, **kwargs) -> nn.Sequential:
    """:func:`make_mlp` for ``data``'s inputs and outputs, initialized from ``seed``."""
    torch.manual_seed(seed)
    return make_mlp(data.n_features, data.n_outputs, depth, width, **kwargs)
