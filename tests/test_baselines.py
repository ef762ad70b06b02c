"""Each baseline option changes what it should; training is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.baselines import BaselineConfig, BaselineError, train_baseline
from harness.baselines.augment import affine_matrices, augment_images
from harness.baselines.data import image_side, load_arrays
from harness.baselines.torch_models import Batches, build_model, evaluate_loss, lr_schedule
from harness.home import load_prepared

TINY = dict(hidden=(16,), epochs=3, batch_size=64)


@pytest.fixture
def digit_arrays(digits):
    return load_arrays(digits)


@pytest.fixture
def fertility(prepared_home):
    return load_prepared(prepared_home, "fertility")


def _weight_norm(model) -> float:
    with torch.no_grad():
        return float(sum((p ** 2).sum() for n, p in model.named_parameters() if "weight" in n))


def test_weight_decay_shrinks_the_weights(digits):
    plain = train_baseline(digits, BaselineConfig(**TINY), progress=False)
    decayed = train_baseline(digits, BaselineConfig(**TINY, weight_decay=0.05), progress=False)
    assert _weight_norm(decayed.model) < 0.8 * _weight_norm(plain.model)


def test_weight_decay_shrinks_the_linear_model(digits):
    loose = train_baseline(digits, BaselineConfig(model="linear", weight_decay=1e-4),
                           progress=False)
    tight = train_baseline(digits, BaselineConfig(model="linear", weight_decay=0.1),
                           progress=False)
    assert np.linalg.norm(tight.model.coef_) < 0.5 * np.linalg.norm(loose.model.coef_)


def test_dropout_is_active_in_training_only(digit_arrays):
    model = build_model(BaselineConfig(dropout=0.5, **TINY), digit_arrays)
    x = torch.from_numpy(digit_arrays.x_train[:32])
    model.train()
    assert not torch.equal(model(x), model(x))      # a fresh dropout mask per pass
    model.eval()
    assert torch.equal(model(x), model(x))


def _one_epoch(cfg, arrays):
    xs, ys = zip(*Batches(cfg, arrays))
    return torch.cat(xs), torch.cat(ys)


def test_image_augmentation_changes_inputs_never_labels(digit_arrays):
    x0, y0 = _one_epoch(BaselineConfig(**TINY), digit_arrays)
    x1, y1 = _one_epoch(BaselineConfig(augment=0.7, **TINY), digit_arrays)
    assert torch.equal(y0, y1)                       # same order, same labels
    assert not torch.allclose(x0, x1)
    assert x1.min() >= 0 and x1.max() <= 1           # still a valid image
    # a mild change: the augmented image still correlates with the original
    corr = torch.nn.functional.cosine_similarity(x0, x1, dim=1)
    assert float(corr.median()) > 0.7


def test_augmentation_never_flips():
    gen = torch.Generator().manual_seed(0)
    theta = affine_matrices(5000, 1.0, 8, gen)
    det = torch.linalg.det(theta[:, :, :2])
    assert torch.allclose(det, torch.ones_like(det), atol=1e-5)   # rotations, no mirrors
    # a bar on the left stays on the left: never mirrored to the right half
    img = torch.zeros(8, 8)
    img[3, 0:3] = 1.0
    out = augment_images(img.reshape(1, 64).repeat(500, 1), 1.0, 8, gen).reshape(500, 8, 8)
    centroid_x = (out * torch.arange(8.0)).sum(dim=(1, 2)) / out.sum(dim=(1, 2))
    assert (centroid_x < 3.5).all()


def test_augment_is_refused_for_tables(prepared_home):
    bc = load_prepared(prepared_home, "breast-cancer")
    with pytest.raises(BaselineError, match="--noise or --mixup"):
        train_baseline(bc, BaselineConfig(augment=0.5, **TINY), progress=False)


def test_feature_noise_changes_inputs_never_labels(fertility):
    arrays = load_arrays(fertility)
    x0, y0 = _one_epoch(BaselineConfig(**TINY), arrays)
    x1, y1 = _one_epoch(BaselineConfig(noise=0.3, **TINY), arrays)
    assert torch.equal(y0, y1)
    assert abs(float((x1 - x0).std()) - 0.3) < 0.02


def test_mixup_mixes_inputs_and_labels_alike(prepared_home):
    arrays = load_arrays(load_prepared(prepared_home, "breast-cancer"))
    cfg = BaselineConfig(mixup=0.4, **TINY)
    batches = Batches(cfg, arrays)
    xb, yb = batches.x[:40], batches.y[:40]
    mx, my = batches.augment(xb, yb)
    assert my.shape == (40, 2) and torch.allclose(my.sum(1), torch.ones(40))
    assert not torch.equal(mx, xb)
    # every row is lam * row_i + (1 - lam) * row_j for one lam: inputs and labels alike
    lams = {round(float(v), 6) for v in my[:, 0]} - {0.0, 1.0}
    assert lams

    def mixed_alike(lam):
        return all(any(torch.allclose(mx[i], lam * xb[i] + (1 - lam) * xb[j], atol=1e-5)
                       and torch.allclose(my[i], lam * yb[i] + (1 - lam) * yb[j], atol=1e-5)
                       for j in range(40)) for i in range(40))

    assert any(mixed_alike(lam) for lam in lams)


def test_early_stopping_stops_when_validation_loss_rises(prepared_home):
    noise = load_prepared(prepared_home, "noise-binary")   # random labels: it can only overfit
    cfg = BaselineConfig(hidden=(128,), lr=0.01, epochs=40, batch_size=32, early_stopping=2)
    result = train_baseline(noise, cfg, progress=False)
    assert result.stopped_early and len(result.history) < 40
    vals = [h["val_loss"] for h in result.history]
    assert result.val_loss == min(vals)                     # the best epoch's weights are kept
    assert all(v >= min(vals) for v in vals[result.best_epoch + 1:])
    assert result.diagnosis.startswith(("overfitting", "model bias"))


def test_gbt_early_stopping_keeps_the_best_iteration(prepared_home):
    bc = load_prepared(prepared_home, "breast-cancer")
    cfg = BaselineConfig.for_model("gbt", epochs=100, lr=0.5, early_stopping=3)
    result = train_baseline(bc, cfg, progress=False)
    assert len(result.history) < 100
    assert result.val_loss == min(h["val_loss"] for h in result.history)
    # the predictions come from the kept iteration, not the last one fitted
    y = bc.validation["malignant"].to_numpy()
    p = np.clip(result.predict(bc.validation), 1e-15, 1 - 1e-15)
    log_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert np.isclose(log_loss, result.val_loss)


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.5), ("momentum", 0.05),
                                          ("adagrad", 0.05), ("rmsprop", 3e-3),
                                          ("adam", 1e-2)])
def test_each_optimizer_lowers_the_training_loss(digits, digit_arrays, optimizer, lr):
    cfg = BaselineConfig(optimizer=optimizer, lr=lr, **{**TINY, "epochs": 4})
    torch.manual_seed(cfg.seed)
    start = evaluate_loss(build_model(cfg, digit_arrays), digit_arrays.x_train,
                          digit_arrays.y_train, digit_arrays)
    result = train_baseline(digits, cfg, progress=False)
    assert result.history[-1]["train_loss"] < 0.6 * start


def test_warmup_and_decay_shape_the_schedule():
    flat = lr_schedule(BaselineConfig(lr=0.1, epochs=8))
    assert flat == [0.1] * 8
    warm = lr_schedule(BaselineConfig(lr=0.1, epochs=8, warmup_epochs=3))
    assert warm[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    cos = lr_schedule(BaselineConfig(lr=0.1, epochs=8, lr_decay="cosine"))
    assert cos[0] == 0.1 and all(a > b for a, b in zip(cos, cos[1:])) and cos[-1] < 0.01
    step = lr_schedule(BaselineConfig(lr=0.1, epochs=8, lr_decay="step"))
    assert step == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_the_optimizer_follows_the_schedule(digits):
    cfg = BaselineConfig(warmup_epochs=1, lr_decay="cosine", **TINY)
    result = train_baseline(digits, cfg, progress=False)
    assert [h["lr"] for h in result.history] == lr_schedule(cfg)


def test_batch_size_and_epochs(digit_arrays):
    cfg = BaselineConfig(**{**TINY, "batch_size": 100})
    sizes = [len(x) for x, _ in Batches(cfg, digit_arrays)]
    assert sizes[:-1] == [100] * (len(sizes) - 1) and sum(sizes) == len(digit_arrays.x_train)


def test_same_seed_same_bytes_other_seed_other_bytes(digits, tmp_path):
    cfg = BaselineConfig(model="cnn", hidden=(4, 8), dropout=0.2, augment=0.5, epochs=2)
    paths = []
    for i, seed in enumerate((3, 3, 4)):
        result = train_baseline(digits, cfg.replace(seed=seed), progress=False)
        paths.append(result.write(tmp_path / f"run{i}.csv", plot=False)[0])
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c


def test_predictions_are_submission_ready(prepared_home, digits):
    bc = load_prepared(prepared_home, "breast-cancer")
    proba = train_baseline(bc, BaselineConfig(**TINY), progress=False)
    p = proba.predict(bc.test)
    assert p.dtype.kind == "f" and (p >= 0).all() and (p <= 1).all()
    labels = train_baseline(digits, BaselineConfig(model="linear"), progress=False)
    sub = labels.submission()
    assert list(sub.columns) == ["id", "label"]
    assert set(sub["label"]) <= set(digits.classes) and len(sub) == len(digits.test)
    assert labels.validation_score > 0.9


def test_options_a_model_ignores_are_refused():
    with pytest.raises(BaselineError, match="does not use dropout"):
        BaselineConfig(model="gbt", dropout=0.2)
    with pytest.raises(BaselineError, match="mlp"):
        BaselineConfig(model="linear", mixup=0.2)
    with pytest.raises(BaselineError, match="out of range"):
        BaselineConfig(dropout=1.5)
    with pytest.raises(BaselineError, match="warm-up"):
        BaselineConfig(epochs=3, warmup_epochs=3)


def test_cnn_needs_images(prepared_home):
    bc = load_prepared(prepared_home, "breast-cancer")
    with pytest.raises(BaselineError, match="image data"):
        train_baseline(bc, BaselineConfig(model="cnn", epochs=1), progress=False)
    assert image_side([f"pixel{i}" for i in range(64)]) == 8
    assert image_side([f"pixel{i}" for i in range(10)]) is None
