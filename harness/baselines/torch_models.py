"""The torch baselines: an MLP and, for image data, a small CNN, and their training loop.

Reproducibility: training runs with ``torch.use_deterministic_algorithms(True)``
and a fixed ``torch.set_num_threads(TRAIN_THREADS)`` (both restored after), the
weights are initialized after ``torch.manual_seed(seed)``, and every random
draw (batch order, augmentation, mixup) comes from generators seeded by
``seed``. Same seed, same machine -> the same predictions, bit for bit. One
thread also makes the result independent of the machine's core count; these
models are too small for a second thread to pay off.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .augment import augment_images, feature_noise, mixup
from .config import BaselineConfig, BaselineError
from .data import Arrays

TRAIN_THREADS = 1


def make_mlp(n_in: int, hidden: tuple[int, ...], n_out: int, dropout: float,
             wide: bool = False) -> nn.Module:
    """Linear -> ReLU -> Dropout per hidden width, then a linear output layer.

    ``wide`` adds a linear map from the inputs straight to the outputs.
    """
    layers, width = [], n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_out))
    deep = nn.Sequential(*layers)
    return WideAndDeep(nn.Linear(n_in, n_out), deep) if wide else deep


class WideAndDeep(nn.Module):
    """The sum of a linear model and an MLP of the same inputs."""

    def __init__(self, wide: nn.Module, deep: nn.Module):
        super().__init__()
        self.wide, self.deep = wide, deep

    def forward(self, x):
        return self.wide(x) + self.deep(x)


class SmallCNN(nn.Module):
    """3x3 convolutions (``channels``), a 2x2 max-pool after every second one, then
    a 64-unit dense layer: the lecture's "constrained model" for small images."""

    def __init__(self, side: int, channels: tuple[int, ...], n_out: int, dropout: float):
        super().__init__()
        layers, c_in, size = [], 1, side
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU()]
            if i % 2 == 1 and size >= 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            c_in = c
        self.side = side
        self.features = nn.Sequential(*layers)
        head = [nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(c_in * size * size, 64), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(64, n_out))
        self.head = nn.Sequential(*head)

    def forward(self, x):
        return self.head(self.features(x.reshape(-1, 1, self.side, self.side)))


def build_model(cfg: BaselineConfig, arrays: Arrays) -> nn.Module:
    """The network ``cfg`` asks for, sized for ``arrays``."""
    if cfg.model == "cnn":
        if not arrays.image_side:
            raise BaselineError("model 'cnn' needs image data (columns pixel0..pixelN, like "
                                "digits); use --model mlp for a table")
        return SmallCNN(arrays.image_side, cfg.hidden, arrays.n_outputs, cfg.dropout)
    return make_mlp(arrays.x_train.shape[1], cfg.hidden, arrays.n_outputs, cfg.dropout,
                    cfg.wide)


def make_optimizer(cfg: BaselineConfig, params) -> torch.optim.Optimizer:
    """The lecture's optimizers by name; ``weight_decay`` is an L2 penalty for all."""
    wd = cfg.weight_decay
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=wd)


def lr_schedule(cfg: BaselineConfig) -> list[float]:
    """The learning rate of each epoch: linear warm-up, then none / cosine / step decay.

    Warm-up climbs ``lr * (e + 1) / (warmup_epochs + 1)``; cosine then falls
    from ``lr`` towards 0; step multiplies by 0.1 at 50% and again at 75% of the
    epochs after the warm-up.
    """
    out = []
    w, rest = cfg.warmup_epochs, cfg.epochs - cfg.warmup_epochs
    for e in range(cfg.epochs):
        if e < w:
            out.append(cfg.lr * (e + 1) / (w + 1))
            continue
        t = e - w
        if cfg.lr_decay == "cosine":
            out.append(cfg.lr * 0.5 * (1 + math.cos(math.pi * t / rest)))
        elif cfg.lr_decay == "step":
            out.append(cfg.lr * (0.1 ** ((t >= rest // 2) + (t >= (3 * rest) // 4))))
        else:
            out.append(cfg.lr)
    return out


@contextmanager
def deterministic(threads: int = TRAIN_THREADS):
    """Deterministic kernels and a fixed thread count for the block, restored after."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    _set_deterministic(True)
    try:
        yield
    finally:
        _set_deterministic(old_det)
        torch.set_num_threads(old_threads)


def _set_deterministic(mode: bool) -> None:
    # torch.use_deterministic_algorithms also sets a torch.compile (inductor) flag, and
    # importing inductor for it costs 2-6 s per process; nothing here is compiled, so set
    # the kernels' flag alone when torch exposes it
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(mode)
    else:
        setter(mode)


class Batches:
    """Minibatches of one epoch in a seeded random order, augmented as ``cfg`` says.

    ``targets`` are class indices, or one-hot rows when mixup needs to mix them,
    or standardized regression targets.
    """

    def __init__(self, cfg: BaselineConfig, arrays: Arrays):
        self.cfg, self.arrays = cfg, arrays
        self.x = torch.from_numpy(arrays.x_train)
        if arrays.classes is not None:
            self.y = torch.from_numpy(np.array(arrays.y_train))   # a writable copy
            if cfg.mixup > 0:
                self.y = F.one_hot(self.y, arrays.n_outputs).float()
        else:
            self.y = torch.from_numpy(((arrays.y_train - arrays.y_mean) / arrays.y_scale)
                                      .astype(np.float32)).reshape(-1, 1)
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def augment(self, x: torch.Tensor, y: torch.Tensor):
        """One batch as the model sees it (the labels only mixed by mixup)."""
        cfg = self.cfg
        if cfg.cutout > 0 or cfg.flip != "auto":
            raise BaselineError("--cutout and --flip work on image competitions (a folder of "
                                "images, like shapes); this competition is a table")
        if cfg.augment > 0:
            if not self.arrays.image_side:
                raise BaselineError("--augment shifts and rotates images; this competition "
                                    "is a table: use --noise or --mixup instead")
            x = augment_images(x, cfg.augment, self.arrays.image_side, self.gen)
        x = feature_noise(x, cfg.noise, self.gen)
        return mixup(x, y, cfg.mixup, self.rng, self.gen)

    def __iter__(self):
        n = len(self.x)
        order = torch.from_numpy(self.rng.permutation(n))
        size = min(self.cfg.batch_size, n)
        for start in range(0, n, size):
            idx = order[start:start + size]
            yield self.augment(self.x[idx], self.y[idx])


def _loss(out: torch.Tensor, target: torch.Tensor, classification: bool) -> torch.Tensor:
    if classification:
        return F.cross_entropy(out, target)   # class indices or mixed class probabilities
    return F.mse_loss(out, target)


def evaluate_loss(model: nn.Module, x: np.ndarray, y: np.ndarray, arrays: Arrays) -> float:
    """Mean loss on clean data in eval mode (cross-entropy, or MSE in target units)."""
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(x))
        if arrays.classes is not None:
            return float(F.cross_entropy(out, torch.from_numpy(np.array(y))))
        pred = out.double().squeeze(1) * arrays.y_scale + arrays.y_mean
        return float(torch.mean((pred - torch.from_numpy(np.array(y))) ** 2))


def fit_torch(cfg: BaselineConfig, arrays: Arrays, progress: bool = True, label: str = "",
              *, build=build_model, make_batches=Batches, losses=None):
    """Train a torch baseline.

    Parameters
    ----------
    cfg : BaselineConfig
    arrays : Arrays or ImageData
    progress : bool
        A tqdm bar over the epochs.
    label : str
        The bar's label.
    build, make_batches, losses : callable, optional
        What differs for an image competition (:mod:`harness.baselines.image_models`):
        ``build(cfg, arrays)`` the network, ``make_batches(cfg, arrays)`` an iterable of
        one epoch's ``(inputs, targets)``, ``losses(model)`` the ``(training, validation)``
        loss on clean data. The defaults train on a table's arrays.

    Returns
    -------
    (model, history, best_epoch)
        The trained model (the best epoch's weights under early stopping), the
        per-epoch ``{"epoch", "train_loss", "val_loss", "lr"}`` and the index
        into history of the kept weights.
    """
    classification = arrays.classes is not None
    with deterministic():
        torch.manual_seed(cfg.seed)
        model = build(cfg, arrays)
        opt = make_optimizer(cfg, model.parameters())
        batches = make_batches(cfg, arrays)
        if losses is None:
            def losses(net):
                return (evaluate_loss(net, arrays.x_train, arrays.y_train, arrays),
                        evaluate_loss(net, arrays.x_val, arrays.y_val, arrays))
        lrs = lr_schedule(cfg)
        history, best, best_state, best_epoch, wait = [], math.inf, None, 0, 0
        bar = tqdm(range(cfg.epochs), desc=label or cfg.model, unit="epoch",
                   disable=not progress, leave=False)
        for epoch in bar:
            for group in opt.param_groups:
                group["lr"] = lrs[epoch]
            model.train()
            for xb, yb in batches:
                opt.zero_grad(set_to_none=True)
                _loss(model(xb), yb, classification).backward()
                opt.step()
            train_loss, val_loss = losses(model)
            history.append({"epoch": epoch + 1, "train_loss": train_loss,
                            "val_loss": val_loss, "lr": lrs[epoch]})
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            if not cfg.early_stopping:
                best_epoch = epoch
                continue
            if val_loss < best:
                best, best_epoch, wait = val_loss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                wait += 1
                if wait >= cfg.early_stopping:
                    break
        bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
    return model, history, best_epoch


def torch_predictor(model: nn.Module, arrays: Arrays, needs_proba: bool, forward=None):
    """``x (encoded) -> predictions``: labels, P(last class), or numbers.

    ``forward(model, x)`` gives the logits (default: the model on ``x`` as one tensor;
    an image competition streams its dataset through in batches).
    """

    def predict(x) -> np.ndarray:
        with deterministic(), torch.no_grad():
            out = (forward(model, x) if forward else model(torch.from_numpy(x))).double()
        if arrays.classes is None:
            return out.squeeze(1).numpy() * arrays.y_scale + arrays.y_mean
        if needs_proba:
            return torch.softmax(out, dim=1)[:, -1].numpy()
        return arrays.decode(out.argmax(dim=1).numpy())

    return predict
