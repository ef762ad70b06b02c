"""Presets are ordered on validation: boss > strong > medium > simple."""

import pytest

from harness.baselines import PRESETS, BaselineError, preset_config, train_baseline
from harness.home import load_prepared


@pytest.mark.slow
@pytest.mark.parametrize("slug", ["digits", "breast-cancer", "fertility"])
def test_presets_are_ordered_on_validation(prepared_home, slug):
    prepared = load_prepared(prepared_home, slug)
    metric = prepared.spec.metric
    scores = [train_baseline(prepared, PRESETS[slug][name], progress=False).validation_score
              for name in ("simple", "medium", "strong", "boss")]
    for weaker, stronger in zip(scores, scores[1:]):
        assert metric.better(stronger, weaker), scores


def test_every_builtin_has_presets():
    for slug in ("digits", "breast-cancer", "fertility", "synthetic"):
        assert list(PRESETS[slug]) == ["simple", "medium", "strong", "boss"]
    assert list(PRESETS["noise-binary"]) == ["simple"]


def test_unknown_presets_are_refused():
    with pytest.raises(BaselineError, match="presets exist for"):
        preset_config("nope", "simple")
    with pytest.raises(BaselineError, match="choose one of simple"):
        preset_config("noise-binary", "boss")
