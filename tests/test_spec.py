"""competition.toml validation: every error names the key, the value and what is allowed."""

import copy
import hashlib
import json
from dataclasses import asdict

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
    ({"rules__reveal": "soon"}, "rules.reveal", ["'soon'", "'manual' or 'at_deadline'"]),
    ({"rules__reveal": "at_deadline", "rules__deadline": None}, "rules.reveal",
     ["needs a deadline"]),
    ({"rules__final_selections": True}, "rules.final_selections", ["an integer", "True"]),
    ({"slug": "My Comp"}, "slug", ["not a valid slug"]),
    ({"colour": "red"}, "colour", ["not a known key"]),
    ({"split__group_column": "g"}, "split.group_column", ["stratify = false"]),
    ({"split__public_order": "weekly"}, "split.public_order", ["'weekly'", "random, time"]),
    ({"split__public_order": "time"}, "split.public_order", ["needs", "order_column = \"COL\""]),
    ({"split__order_column": "day", "split__stratify": True}, "split.order_column",
     ["'day'", "stratify = false"]),
    ({"split__order_column": "day", "split__stratify": False, "split__group_column": "g"},
     "split.order_column", ["group_column = 'g'", "keep one"]),
    ({"split__order_column": 3}, "split.order_column", ["a string", "3"]),
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


COUNTING_METRIC = '''from pathlib import Path
with open(Path(__file__).with_name("runs.txt"), "a") as f:   # one line per execution
    f.write("run\\n")

def neg_max_error(y, p):
    return -max(abs(a - b) for a, b in zip(y, p))
'''


def test_custom_metric_file_runs_once_and_reloads_when_edited(tmp_path):
    (tmp_path / "metric.py").write_text(COUNTING_METRIC)
    doc = spec_with(**{"data__task": "regression", "split__stratify": False,
                       "scoring__metric": "metric.py:neg_max_error",
                       "scoring__greater_is_better": True})
    runs = tmp_path / "runs.txt"
    spec = parse_spec(doc, folder=tmp_path)
    for _ in range(5):
        assert spec.metric([1.0, 2.0], [1.5, 2.0]) == -0.5
    # a new Competition of the same folder (the service reloads the spec) reuses it too
    assert parse_spec(doc, folder=tmp_path).metric.greater_is_better
    assert runs.read_text().count("run") == 1
    # the teacher edits the file: the next access runs the new version, once
    (tmp_path / "metric.py").write_text(COUNTING_METRIC.replace("-max(", "-2 * max("))
    for _ in range(3):
        assert spec.metric([1.0, 2.0], [1.5, 2.0]) == -1.0
    assert runs.read_text().count("run") == 2


@pytest.mark.parametrize("ref, content, words", [
    ("metric.py:score", "def score(y, p):\n    return (\n", ["SyntaxError at metric.py line 2"]),
    ("metric.py:score", "x = 1\nimport not_a_module_xyz\n",
     ["ModuleNotFoundError at metric.py line 2", "not_a_module_xyz"]),
    ("metric.py:score", "x = 1\ny = 1 / 0\n", ["ZeroDivisionError at metric.py line 2"]),
    ("metric.py:score", "def other(y, p):\n    return 0.0\n",
     ["has no function 'score'", "it defines other", "f(y_true, y_pred) -> float"]),
    ("metric.py:score", "score = 3\n", ["'score' is a int, not a function"]),
    ("missing.py:score", "", ["'missing.py' not found", "beside competition.toml"]),
    ("metric.txt:score", "", ["'metric.txt' is not a Python file", "FILE.py:FUNCTION"]),
    ("metric.py:", "", ["is not 'FILE.py:FUNCTION'"]),
])
def test_custom_metric_errors_name_file_line_and_expectation(tmp_path, ref, content, words):
    (tmp_path / "metric.py").write_text(content)
    doc = spec_with(**{"data__task": "regression", "split__stratify": False,
                       "scoring__metric": ref, "scoring__greater_is_better": False})
    with pytest.raises(SpecError) as err:
        parse_spec(doc, folder=tmp_path)
    assert err.value.key == "scoring.metric"
    for w in words:
        assert w in str(err.value)
    if content:
        assert str(tmp_path) not in str(err.value)   # no server path, no stack trace


def test_data_source_uses_the_same_loader(tmp_path):
    from harness.datasets import load_table

    (tmp_path / "prepare.py").write_text("import numpy as np\nimport pandas as pd\n\n"
                                         "def load(rows=30):\n    return pd.DataFrame("
                                         "{'x': np.arange(rows), 'y': np.arange(rows) % 2})\n")
    doc = spec_with(**{"data__source": "prepare.py:load", "data__target": "y",
                       "data__task": "binary", "data__options": {"rows": 40}})
    assert len(load_table(parse_spec(doc, folder=tmp_path))) == 40
    doc["data"]["source"] = "prepare.py:lod"
    with pytest.raises(SpecError) as err:
        load_table(parse_spec(doc, folder=tmp_path))
    assert err.value.key == "data.source"
    assert "has no function 'lod' (it defines load)" in str(err.value)
    assert "pandas.DataFrame" in str(err.value)
    (tmp_path / "prepare.py").write_text("def load(:\n")
    doc["data"]["source"] = "prepare.py:load"
    with pytest.raises(SpecError, match="SyntaxError at prepare.py line 1"):
        load_table(parse_spec(doc, folder=tmp_path))


COMMENTED = '''# a course competition
slug = "x"   # the URL name
description = """Two lines, the second looks like a table:
[rules]
daily_limit = 1"""

[rules]   # class rules
daily_limit = 5   # per UTC day
final_selections = 2

# grading follows
[grading]
simple = { public = 0.8 }
'''


def test_set_rules_keeps_comments_order_and_other_lines():
    from harness.spec import set_rules

    out = set_rules(COMMENTED, daily_limit=9, total_limit=20)
    assert out == COMMENTED.replace(
        "daily_limit = 5   # per UTC day\nfinal_selections = 2\n",
        "daily_limit = 9   # per UTC day\nfinal_selections = 2\ntotal_limit = 20\n")
    doc = __import__("tomllib").loads(out)
    assert doc["rules"] == {"daily_limit": 9, "final_selections": 2, "total_limit": 20}
    assert doc["description"].endswith("daily_limit = 1")
    with pytest.raises(SpecError, match="not valid TOML"):
        set_rules("slug = \n", daily_limit=1)


def test_order_column_defaults_and_fingerprint():
    plain = parse_spec(BASE)
    assert (plain.split.order_column, plain.split.public_order) == ("", "random")
    # unset, the new keys stay out of the hash: competitions prepared before keep theirs
    old = {k: v for k, v in asdict(plain.split).items()
           if k not in ("order_column", "public_order")}
    canon = json.dumps([asdict(plain.data), old], sort_keys=True, default=str)
    assert plain.fingerprint() == hashlib.sha256(canon.encode()).hexdigest()[:16]
    timed = parse_spec(spec_with(split__order_column="day"))
    assert not timed.split.stratify               # cut by time, so not stratified by default
    forecast = parse_spec(spec_with(split__order_column="day", split__public_order="time"))
    assert len({plain.fingerprint(), timed.fingerprint(), forecast.fingerprint()}) == 3
