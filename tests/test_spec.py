"""competition.toml validation: every error names the key, the value and what is allowed."""

import copy

import pytest

from harness.errors import SpecError
from harness.home import competitions_root
from harness.spec import load_spec, parse_spec

BASE = {
    "slug": "demo",
    "title": "Demo",
    "data": {"source": "sklearn:digits", "target": "label", "task": "multiclass"},
    "split": {"train": 0.6, "validation": 0.1, "public": 0.15, "private": 0.15, "seed": 1},
    "scoring": {"metric": "accuracy"},
    "rules": {"deadline": "2026-12-31T23:59:59+08:00"},
}


def spec_with(**changes):
    doc = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        table, _, key = dotted.rpartition("__")
        target = doc[table] if table else doc
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return doc


def test_builtins_load():
    for folder in competitions_root().iterdir():
        spec = load_spec(folder)
        assert spec.slug == folder.name
        assert spec.metric.name == spec.scoring.metric


def test_defaults():
    spec = parse_spec(BASE)
    assert spec.rules.daily_limit == 5 and spec.rules.final_selections == 2
    assert spec.rules.leaderboard == "kaggle" and spec.split.stratify
    assert spec.rules.deadline.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize("changes, key, words", [
    ({"scoring__metric": "acuracy"}, "scoring.metric", ["unknown metric 'acuracy'", "accuracy"]),
    ({"scoring__metric": "mse"}, "scoring.metric", ["does not fit task 'multiclass'"]),
    ({"split__train": 0.7}, "split", ["must sum to 1", "1.1"]),
    ({"split__public": 0.0, "split__train": 0.75}, "split.public", ["must be above 0"]),
    ({"split__train": -0.1}, "split.train", ["[0, 1]"]),
    ({"data__task": "regression", "scoring__metric": "mse", "split__stratify": True},
     "split.stratify", ["cannot stratify a regression target"]),
    ({"data__task": "ranking"}, "data.task", ["'ranking'", "binary, multiclass, regression"]),
    ({"data__target": None}, "data.target", ["is missing"]),
    ({"data__path": "x.csv"}, "data", ["exactly one of source"]),
    ({"rules__deadline": "next friday"}, "rules.deadline", ["not an ISO 8601", "+08:00"]),
    ({"rules__deadline": "2026-12-31T23:59:59"}, "rules.deadline", ["no time zone"]),
    ({"rules__reset_timezone": "Mars/Olympus"}, "rules.reset_timezone", ["not a time zone"]),
    ({"rules__leaderboard": "elo"}, "rules.leaderboard", ["kaggle, ladder"]),
    ({"rules__daily_limit": -1}, "rules.daily_limit", ["0 or more"]),
    ({"rules__final_selections": True}, "rules.final_selections", ["an integer", "True"]),
    ({"slug": "My Comp"}, "slug", ["not a valid slug"]),
    ({"colour": "red"}, "colour", ["not a known key"]),
    ({"split__group_column": "g"}, "split.group_column", ["stratify = false"]),
])
def test_errors_name_key_and_value(changes, key, words):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(**changes))
    assert err.value.key == key
    for w in words:
        assert w in str(err.value)


def test_ladder_needs_row_loss_or_step():
    doc = spec_with(**{"data__task": "binary", "scoring__metric": "roc_auc",
                       "rules__leaderboard": "ladder"})
    with pytest.raises(SpecError, match="ladder_step"):
        parse_spec(doc)
    doc["rules"]["ladder_step"] = 0.01
    assert parse_spec(doc).rules.ladder_step == 0.01


def test_custom_metric(tmp_path):
    (tmp_path / "metric.py").write_text(
        "def neg_max_error(y, p):\n    return -max(abs(a - b) for a, b in zip(y, p))\n")
    doc = spec_with(**{"data__task": "regression", "split__stratify": False,
                       "scoring__metric": "metric.py:neg_max_error"})
    with pytest.raises(SpecError, match="greater_is_better"):
        parse_spec(doc, folder=tmp_path)
    doc["scoring"]["greater_is_better"] = True
    spec = parse_spec(doc, folder=tmp_path)
    assert spec.metric([1.0, 2.0], [1.5, 2.0]) == -0.5
    assert spec.metric.greater_is_better


def test_grading_thresholds():
    doc = spec_with(grading={"simple": {"public": 0.8, "private": 0.79},
                             "strong": {"public": 0.95, "points_public": 2}})
    simple, strong = parse_spec(doc).grading
    assert (simple.public, simple.private) == (0.8, 0.79)
    assert strong.private is None and strong.points_public == 2
    with pytest.raises(SpecError, match=r"\[grading.x\] needs a public or a private"):
        parse_spec(spec_with(grading={"x": {}}))


def test_invalid_toml(tmp_path):
    (tmp_path / "competition.toml").write_text("slug = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(tmp_path)


def test_set_rules_replaces_or_adds_keys():
    from harness.spec import set_rules

    text = (competitions_root() / "digits" / "competition.toml").read_text()
    out = set_rules(text, deadline="2099-01-01T00:00:00+00:00", daily_limit=9)
    doc = __import__("tomllib").loads(out)
    assert doc["rules"]["deadline"] == "2099-01-01T00:00:00+00:00"
    assert doc["rules"]["daily_limit"] == 9
    assert out.replace("daily_limit = 9", "daily_limit = 5").count("\n") == text.count("\n") + 1
    assert set_rules("slug = \"x\"\n", final_selections=1).endswith("[rules]\nfinal_selections = 1\n")
