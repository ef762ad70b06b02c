"""Presets are ordered on validation: boss > strong > medium > simple."""

import pytest

from harness.baselines import (GENERIC_PRESETS, PRESETS, BaselineError, preset_config,
                               presets_for, train_baseline)
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
        assert presets_for(slug) == PRESETS[slug]
    # noise-binary tunes one; the generic presets fill the others, and drift's
    assert presets_for("noise-binary")["simple"] is PRESETS["noise-binary"]["simple"]
    assert presets_for("noise-binary")["boss"] is GENERIC_PRESETS["boss"]
    assert presets_for("drift") == GENERIC_PRESETS


def test_unknown_presets_are_refused():
    with pytest.raises(BaselineError, match="choose one of simple, medium, strong, boss"):
        preset_config("noise-binary", "expert")
