"""Baselines on a teacher's own table: text columns, missing values, text ids, presets, --record.

The table has what a real course's CSV has and the built-ins lack: a categorical text
column with a category that first appears in test.csv, booleans, missing values in
numeric and text columns, and ids like ``row_0001``.
"""

from __future__ import annotations

import json
import re
import tomllib

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.baselines import (GENERIC_PRESETS, PRESET_NAMES, BaselineConfig, BaselineError,
                               preset_config, presets_for, train_baseline)
from harness.baselines.data import MIN_FREQUENCY, feature_encoder, load_arrays
from harness.cli import main
from harness.home import competitions_root, load_prepared
from harness.scoring import AnswerKey, score
from harness.splits import prepare

ROWS = 240
NEW_COLOUR = "violet"     # only in the latest rows, which the time-ordered split puts in test

TOML = """slug = "own-table"
title = "A teacher's own table"

[data]
path = "table.csv"
id_column = "row"
target = "{target}"
task = "{task}"

[split]
order_column = "day"

[scoring]
metric = "{metric}"
"""


def own_table(folder, task="binary", metric="accuracy"):
    """Write table.csv and competition.toml into ``folder``; returns the table."""
    rng = np.random.default_rng(5)
    colour = rng.choice(["red", "green", "blue"], ROWS).astype(object)
    colour[-6:] = NEW_COLOUR
    size = rng.normal(size=ROWS)
    member = (rng.random(ROWS) < 0.5).astype(object)     # booleans with gaps
    logit = 2.0 * size + np.select([colour == "red", colour == "green"], [1.5, -1.5], 0.0)
    frame = pd.DataFrame({
        "row": [f"row_{i:04d}" for i in range(ROWS)], "day": np.arange(ROWS),
        "colour": colour, "size": size, "member": member,
        # a probability metric needs 0/1 labels; accuracy takes any, so text ones here
        "label": np.where(logit + rng.normal(scale=0.5, size=ROWS) > 0, *(
            (1, 0) if metric in ("roc_auc", "log_loss") else ("yes", "no"))),
        "price": 10 + 3 * size + logit + rng.normal(scale=0.1, size=ROWS)})
    for column, every in (("colour", 7), ("size", 11)):
        frame.loc[frame.index % every == 3, column] = np.nan
    frame.loc[frame.index % 13 == 5, "member"] = np.nan
    target = "label" if task != "regression" else "price"
    frame.drop(columns="price" if target == "label" else "label").to_csv(
        folder / "table.csv", index=False)
    (folder / "competition.toml").write_text(TOML.format(target=target, task=task,
                                                         metric=metric))
    return frame


@pytest.fixture
def own(tmp_path):
    """A teacher's competition folder and a home with it prepared."""
    folder = tmp_path / "course"
    folder.mkdir()
    own_table(folder)
    home = tmp_path / "home"
    prepare(folder, home)
    return folder, home


def _run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_the_table_has_what_the_baselines_must_handle(own):
    _, home = own
    prepared = load_prepared(home, "own-table")
    train, test = prepared.train, prepared.test
    assert NEW_COLOUR in set(test["colour"]) and NEW_COLOUR not in set(train["colour"])
    assert train["colour"].isna().any() and train["size"].isna().any()
    assert test["colour"].isna().any() and test["size"].isna().any()
    assert test["row"].str.startswith("row_").all()
    assert "row" not in prepared.feature_columns


def test_categories_are_one_hot_and_missing_values_imputed(own):
    _, home = own
    prepared = load_prepared(home, "own-table")
    arrays = load_arrays(prepared)
    assert arrays.columns[:2] == ["day", "size"]          # numeric, then one-hot
    assert {"colour_red", "colour_green", "colour_blue", "member_True",
            "member_False"} <= set(arrays.columns)
    assert not any(NEW_COLOUR in c for c in arrays.columns)
    assert np.isfinite(arrays.x_train).all() and np.isfinite(arrays.x_val).all()
    x_test = arrays.encode(prepared.test)
    colour = [i for i, c in enumerate(arrays.columns) if c.startswith("colour_")]
    new = (prepared.test["colour"] == NEW_COLOUR).to_numpy()
    assert (x_test[np.ix_(new, colour)] == 0).all()        # unseen: no known category
    missing = prepared.train["colour"].isna().to_numpy()
    assert (arrays.x_train[np.ix_(missing, colour)].sum(axis=1) == 1).all()   # imputed
    size = arrays.columns.index("size")
    assert abs(float(arrays.x_train[:, size].mean())) < 1e-5    # standardized


def test_rare_categories_share_one_column(tmp_path):
    folder = tmp_path / "course"
    folder.mkdir()
    frame = own_table(folder)
    frame.loc[:MIN_FREQUENCY - 2, "colour"] = "teal"     # too rare for a column of its own
    frame.drop(columns="price").to_csv(folder / "table.csv", index=False)
    arrays = load_arrays(prepare(folder, tmp_path / "home"))
    assert "colour_teal" not in arrays.columns and "colour_infrequent_sklearn" in arrays.columns


def test_a_column_with_text_only_in_test_is_categorical_everywhere(tmp_path):
    folder = tmp_path / "course"
    folder.mkdir()
    frame = own_table(folder)
    frame["grade"] = (frame.index % 3).astype(object)
    frame.loc[ROWS - 1, "grade"] = "unknown"           # the latest row: in test.csv only
    frame.drop(columns="price").to_csv(folder / "table.csv", index=False)
    prepared = prepare(folder, tmp_path / "home")
    assert pd.api.types.is_numeric_dtype(prepared.train["grade"])
    arrays = load_arrays(prepared)
    assert {"grade_0", "grade_1", "grade_2"} <= set(arrays.columns)
    assert np.isfinite(arrays.encode(prepared.test)).all()


def test_columns_empty_in_training_keep_their_place():
    train = pd.DataFrame({"note": [np.nan] * 6, "x": [np.nan] * 6, "k": list("aaaaab")})
    test = pd.DataFrame({"note": ["late", np.nan], "x": [1.0, np.nan], "k": ["b", "new"]})
    encoder = feature_encoder(train, ["note", "x", "k"], ["note", "k"]).fit(train)
    assert list(encoder.get_feature_names_out()) == ["x", "note_0", "k_a",
                                                     "k_infrequent_sklearn"]
    # b is rare in training: it and the unseen "new" share the infrequent column
    assert encoder.transform(test).tolist() == [[1, 0, 0, 1], [0, 1, 0, 1]]


def test_a_teachers_competition_gets_the_generic_presets():
    assert list(presets_for("own-table")) == list(PRESET_NAMES)
    assert presets_for("own-table") == GENERIC_PRESETS
    assert preset_config("own-table", "strong") is GENERIC_PRESETS["strong"]
    with pytest.raises(BaselineError, match="choose one of simple, medium, strong, boss"):
        preset_config("own-table", "expert")


@pytest.mark.parametrize("task,metric", [("binary", "roc_auc"), ("regression", "rmse")])
def test_generic_presets_beat_chance_on_both_tasks(tmp_path, task, metric):
    own_table(tmp_path, task=task, metric=metric)
    prepared = prepare(tmp_path, tmp_path / "home")
    for name in ("simple", "medium"):
        result = train_baseline(prepared, preset_config("own-table", name), progress=False)
        if task == "binary":
            assert result.validation_score > 0.75, (name, result.validation_score)
        else:
            spread = float(prepared.validation["price"].std())
            assert result.validation_score < 0.6 * spread, (name, result.validation_score)
        assert result.submission()["row"].tolist() == prepared.test["row"].tolist()


def test_mlp_gets_the_same_matrix(own):
    _, home = own
    prepared = load_prepared(home, "own-table")
    result = train_baseline(prepared, BaselineConfig(hidden=(8,), epochs=2), progress=False)
    assert result.model[0].in_features == len(result.arrays.columns)
    assert set(result.submission()["label"]) <= {"yes", "no"}


def test_baseline_command_on_a_teachers_table(own, tmp_path):
    _, home = own
    out = tmp_path / "subs"
    key = AnswerKey.from_prepared(load_prepared(home, "own-table"))
    for preset in ("simple", "strong"):
        r = _run(["baseline", "own-table", "--preset", preset, "--home", str(home),
                  "--out-dir", str(out), "--no-progress"])
        assert r.exit_code == 0, r.output
        assert "validation accuracy" in r.output
        written = pd.read_csv(out / "own-table" / f"{preset}.csv")
        assert written["row"].str.startswith("row_").all()
        assert score(out / "own-table" / f"{preset}.csv", key).public > 0.7


def test_grades_advice_records_into_the_home_copy_only(own, tmp_path):
    """`harness grades` on a competition without thresholds names a command; it works, and
    it writes the home's copy of competition.toml, never the teacher's or the package's."""
    folder, home = own
    installed = {p: p.read_bytes() for p in competitions_root().glob("*/competition.toml")}
    source = (folder / "competition.toml").read_bytes()
    home_toml = home / "competitions" / "own-table" / "competition.toml"
    before = home_toml.read_text()
    r = _run(["grades", "own-table", "-o", str(tmp_path / "grades.csv"), "--home", str(home)])
    assert r.exit_code == 0, r.output
    advice = re.search(r"`harness (baseline [^`]+)`", r.output.replace("\n", " "))
    assert advice, r.output
    r = _run(advice.group(1).split() + ["--home", str(home), "--out-dir",
                                        str(tmp_path / "subs"), "--no-progress",
                                        "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert list(rows) == list(PRESET_NAMES)
    after = home_toml.read_text()
    assert after.startswith(before.rstrip("\n"))
    grading = tomllib.loads(after)["grading"]
    assert grading["boss"] == {"public": rows["boss"]["public_score"],
                               "private": rows["boss"]["private_score"]}
    # harness grades reads the home's copy: the thresholds are in force
    thresholds = load_prepared(home, "own-table").spec.grading
    assert [t.name for t in thresholds] == list(PRESET_NAMES)
    assert {p: p.read_bytes() for p in installed} == installed
    assert (folder / "competition.toml").read_bytes() == source
    from harness.splits import prepare

    prepare(folder, home)              # again (say, after a rules change): they stay
    again = load_prepared(home, "own-table").spec.grading
    assert [(t.name, t.public) for t in again] == [(t.name, t.public) for t in thresholds]
    assert (folder / "competition.toml").read_bytes() == source


def test_record_never_touches_the_installed_builtin(tmp_path):
    installed = competitions_root() / "noise-binary" / "competition.toml"
    before = installed.read_bytes()
    home = tmp_path / "home"
    try:
        r = _run(["baseline", "noise-binary", "--preset", "all", "--record", "--home",
                  str(home), "--out-dir", str(tmp_path / "subs"), "--no-progress"])
        assert installed.read_bytes() == before
    finally:
        installed.write_bytes(before)      # a regression must not leave the package edited
    assert r.exit_code == 0, r.output
    assert "prepared 'noise-binary'" in r.output          # on demand, as the labs do
    copy = home / "competitions" / "noise-binary" / "competition.toml"
    assert f"into [grading] of {copy}" in r.output.replace("\n", " ")
    key = AnswerKey.from_prepared(load_prepared(home, "noise-binary"))
    s = score(tmp_path / "subs" / "noise-binary" / "simple.csv", key)
    assert tomllib.loads(copy.read_text())["grading"]["simple"] == {
        "public": round(s.public, 5), "private": round(s.private, 5)}


def test_unprepared_unknown_competition_is_a_clear_error(tmp_path):
    r = CliRunner().invoke(main, ["baseline", "nope", "--preset", "simple",
                                  "--home", str(tmp_path / "home")])
    assert r.exit_code != 0 and "neither a path nor a built-in competition" in r.output
