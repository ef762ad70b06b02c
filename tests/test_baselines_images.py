"""CNN baselines on an image competition (`shapes` at n=300): a tiny run writes a scored
submission and the augmented-examples grid, the augmentation ops keep shapes and respect
flip_safe, the presets exist and record into [grading]."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from harness.baselines import BaselineConfig, BaselineError, presets_for, train_baseline
from harness.baselines.image_augment import (augment_batch, colour_jitter, cutout, flips,
                                             horizontal_flip, random_crop, rotate)
from harness.baselines.image_models import standardize
from harness.cli import main
from harness.home import find_spec_path, load_prepared
from harness.scoring import AnswerKey, score
from harness.splits import prepare

N_SHAPES = 300
TINY = dict(model="cnn", hidden=(4, 8), epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def shapes_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("shapes") / "home"
    prepare(find_spec_path("shapes"), home, options={"n": N_SHAPES})
    return home


@pytest.fixture(scope="module")
def shapes(shapes_home):
    return load_prepared(shapes_home, "shapes")


def test_a_tiny_cnn_writes_a_submission_the_scorer_accepts(shapes, tmp_path):
    cfg = BaselineConfig(**TINY, augment=0.5, cutout=0.25, mixup=0.2, dropout=0.1)
    result = train_baseline(shapes, cfg, progress=False)
    csv_path, png = result.write(tmp_path / "tiny.csv")
    sub = pd.read_csv(csv_path)
    assert list(sub.columns) == ["id", "label"]
    assert sub["id"].tolist() == shapes.test["id"].tolist()
    assert set(sub["label"]) <= set(shapes.classes)
    s = score(csv_path, AnswerKey.from_prepared(shapes))
    assert 0 <= s.public <= 1 and 0 <= s.private <= 1
    assert png.is_file() and result.augmented_png == tmp_path / "tiny-augmented.png"
    with Image.open(result.augmented_png) as im:
        assert im.width > 200 and im.height > 100
    # same seed, same bytes
    again = train_baseline(shapes, cfg, progress=False).write(tmp_path / "again.csv", plot=False)
    assert again[0].read_bytes() == csv_path.read_bytes()


def test_an_mlp_on_pixels_trains_and_a_table_model_is_refused(shapes):
    result = train_baseline(shapes, BaselineConfig(model="mlp", hidden=(8,), epochs=1),
                            progress=False)
    assert len(result.history) == 1 and np.isfinite(result.val_loss)
    with pytest.raises(BaselineError, match="image competition.*--model cnn"):
        train_baseline(shapes, BaselineConfig(model="gbt"), progress=False)


def test_cutout_and_flip_are_refused_on_a_table(tmp_path):
    home = tmp_path / "home"
    prepare(find_spec_path("breast-cancer"), home)
    prepared = load_prepared(home, "breast-cancer")
    with pytest.raises(BaselineError, match="image competitions"):
        train_baseline(prepared, BaselineConfig(model="mlp", epochs=1, cutout=0.2),
                       progress=False)


def _images(n=16, c=3, side=12):
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, c, side, side, generator=gen)


@pytest.mark.parametrize("op", [lambda x, g: random_crop(x, 2, g),
                                lambda x, g: horizontal_flip(x, g),
                                lambda x, g: rotate(x, 15, g),
                                lambda x, g: colour_jitter(x, 0.4, g),
                                lambda x, g: cutout(x, 0.3, g)])
def test_each_augmentation_keeps_shape_and_range(op):
    x = _images()
    out = op(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.equal(out, x)


def test_random_crop_shifts_by_at_most_the_padding():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1
    for seed in range(10):
        out = random_crop(x, 2, torch.Generator().manual_seed(seed))
        (r, c), = torch.nonzero(out[0, 0]).tolist() or [(None, None)]
        assert abs(r - 4) <= 2 and abs(c - 4) <= 2


def test_random_crop_pads_with_the_edge_not_black():
    # zero padding would paint black borders no test image has (and batch norm learns them)
    x = torch.full((4, 3, 8, 8), 0.7)
    x[:, 1] = 0.2
    out = random_crop(x, 3, torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_networks_see_each_image_standardized_so_a_background_colour_changes_nothing():
    # shapes paints each image in a random colour: the network must not start from it
    x = _images(6) * 0.5
    tinted = x + torch.tensor([0.3, 0.1, 0.2])[None, :, None, None]
    assert torch.allclose(standardize(x), standardize(tinted), atol=1e-5)
    z = standardize(x)
    assert torch.allclose(z.mean(dim=(2, 3)), torch.zeros(6, 3), atol=1e-5)
    assert torch.allclose(z.std(dim=(1, 2, 3)), torch.ones(6), atol=1e-4)
    blank = standardize(torch.full((2, 3, 8, 8), 0.4))
    assert bool(blank.abs().max() < 1e-5)      # finite and flat: the spread is floored


def _mirrored(out, x):
    """Per image: True when it is x mirrored, False when it is x unchanged."""
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    mirror = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    assert bool((same | mirror).all())
    return mirror


def test_flips_follow_flip_safe_unless_forced():
    x = _images(64)
    base = BaselineConfig(**TINY)
    # only the flip is left on (augment 0), so each image is itself or its mirror
    assert not flips(base.replace(augment=0.5), flip_safe=False)
    assert flips(base.replace(augment=0.5), flip_safe=True)
    assert not flips(base, flip_safe=True)                 # no augmentation, no flips
    assert not flips(base.replace(augment=0.5, flip="off"), flip_safe=True)
    forced = augment_batch(x, base.replace(flip="on"), False, torch.Generator().manual_seed(0))
    mirrored = _mirrored(forced, x)
    assert 10 < int(mirrored.sum()) < 54
    kept = augment_batch(x, base, False, torch.Generator().manual_seed(0))
    assert torch.equal(kept, x)
    # label-safe augmentation on shapes (not flip-safe) never mirrors: no flip in the draw
    safe = base.replace(augment=0.5)
    a = augment_batch(x, safe, False, torch.Generator().manual_seed(3))
    b = augment_batch(x, safe.replace(flip="off"), False, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_shapes_has_image_presets_and_any_image_competition_gets_some():
    for presets in (presets_for("shapes"), presets_for("my-photos", image=True)):
        assert list(presets) == ["simple", "medium", "strong", "boss"]
        assert {c.model for c in presets.values()} <= {"mlp", "cnn"}
        assert presets["strong"].model == "cnn" and presets["strong"].augment > 0
        assert presets["strong"].flip == "auto"        # flips only where labels allow them
        assert presets["boss"].cutout > 0
    assert presets_for("my-photos", image=True)["boss"].mixup > 0
    assert presets_for("shapes")["simple"].model == "mlp"   # pixels, no convolutions


def test_cli_records_the_presets_into_grading(shapes_home, tmp_path, monkeypatch):
    import harness.baselines.presets as presets

    # the real presets train for a minute at n=300; two epochs each show the wiring
    fast = {n: c.replace(epochs=1, hidden=c.hidden[:2]) for n, c in presets_for("shapes").items()}
    monkeypatch.setitem(presets.PRESETS, "shapes", fast)
    out = tmp_path / "subs"
    r = CliRunner().invoke(main, ["baseline", "shapes", "--preset", "all", "--record", "--home",
                                  str(shapes_home), "--out-dir", str(out), "--format", "json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["name"] for row in rows] == ["simple", "medium", "strong", "boss"]
    for row in rows:
        assert Path(row["augmented_png"]).is_file()
        assert Path(row["augmented_png"]).name == f"{row['name']}-augmented.png"
    toml = shapes_home / "competitions" / "shapes" / "competition.toml"
    grading = tomllib.loads(toml.read_text())["grading"]
    key = AnswerKey.from_prepared(load_prepared(shapes_home, "shapes"))
    s = score(out / "shapes" / "boss.csv", key)
    assert grading["boss"] == {"public": round(s.public, 5), "private": round(s.private, 5)}
