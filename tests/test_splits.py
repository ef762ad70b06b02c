"""The split: deterministic, disjoint, covering, stratified, grouped; the release leaks nothing."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from harness.errors import DataError, PreparedError, SpecError
from harness.home import find_spec_path, load_prepared
from harness.spec import load_spec
from harness.splits import _counts, assign_parts, prepare

TOML = """
slug = "own"
title = "Bring your own CSV"
[data]
path = "table.csv"
id_column = "{id_column}"
target = "y"
task = "{task}"
[split]
train = 0.5
validation = 0.1
public = 0.2
private = 0.2
seed = 3
stratify = {stratify}
group_column = "{group}"
[scoring]
metric = "{metric}"
"""


def own_competition(tmp_path, n=400, task="binary", metric="accuracy", stratify="true",
                    group="", id_column="id", frame=None):
    rng = np.random.default_rng(0)
    if frame is None:
        frame = pd.DataFrame({"x": rng.normal(size=n), "g": rng.integers(0, 40, n),
                              "y": (rng.random(n) < 0.2).astype(int)})
    frame.to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "competition.toml").write_text(TOML.format(
        task=task, metric=metric, stratify=stratify, group=group, id_column=id_column))
    return tmp_path


def digests(prepared):
    d = prepared.directory
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*.csv"))}


def test_counts_sum_and_follow_fractions():
    assert list(_counts(10, [0.6, 0.1, 0.15, 0.15])) in ([6, 1, 2, 1], [6, 1, 1, 2])
    for n in (20, 97, 1797, 10**6 + 3):
        c = _counts(n, [0.6, 0.1, 0.15, 0.15])
        assert c.sum() == n and np.all(np.abs(c - np.array([0.6, 0.1, 0.15, 0.15]) * n) <= 1)


def test_prepare_is_byte_for_byte_reproducible(tmp_path):
    a = prepare(find_spec_path("digits"), tmp_path / "a")
    b = prepare(find_spec_path("digits"), tmp_path / "b")
    assert digests(a) == digests(b)
    again = prepare(find_spec_path("digits"), tmp_path / "a")   # same spec: allowed, same bytes
    assert digests(again) == digests(a)


def test_parts_disjoint_and_cover(digits):
    ids = {name: set(getattr(digits, name)["id"]) for name in ("train", "validation", "test")}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert sum(map(len, ids.values())) == 1797
    sol = pd.read_csv(digits.solution_path)
    assert list(sol["id"]) == list(digits.test["id"])        # one order for both
    rows = digits.manifest["rows"]
    assert (rows["public"], rows["private"]) == ((sol.Usage == "Public").sum(),
                                                 (sol.Usage == "Private").sum())


def test_stratified_class_shares(digits):
    overall = pd.concat([digits.train, digits.validation])["label"].value_counts(normalize=True)
    sol = pd.read_csv(digits.solution_path)
    for part in (digits.train["label"], sol[sol.Usage == "Public"]["label"],
                 sol[sol.Usage == "Private"]["label"]):
        share = part.value_counts(normalize=True)
        assert np.abs(share - overall).max() < 0.02


def test_released_files_leak_nothing(digits):
    for name in ("test", "sample_submission"):
        frame = digits.released(name)
        assert "Usage" not in frame.columns
    assert "label" not in digits.test.columns
    assert list(digits.released("sample_submission").columns) == ["id", "label"]
    for path in digits.released_dir.iterdir():
        assert "Public" not in path.read_text() and "Private" not in path.read_text()
    # the test order is a shuffle: neither sorted by id nor grouped by part
    sol = pd.read_csv(digits.solution_path)
    assert not sol["id"].is_monotonic_increasing
    first_half_public = (sol.Usage.iloc[: len(sol) // 2] == "Public").mean()
    assert 0.25 < first_half_public < 0.55   # public share is 0.4 of the test rows


def test_group_column_keeps_groups_whole(tmp_path):
    folder = own_competition(tmp_path, stratify="false", group="g")
    spec = load_spec(folder)
    table = pd.read_csv(folder / "table.csv")
    parts = assign_parts(table, spec)
    per_group = pd.Series(parts).groupby(table["g"]).nunique()
    assert (per_group == 1).all()
    shares = np.bincount(parts, minlength=4) / len(parts)
    assert np.abs(shares - [0.5, 0.1, 0.2, 0.2]).max() < 0.1


def test_bring_your_own_csv_creates_ids(tmp_path):
    folder = own_competition(tmp_path, id_column="row_id")
    prepared = prepare(folder, tmp_path / "home")
    assert prepared.test.columns[0] == "row_id"
    assert prepared.manifest["id_kind"] == "int"


def test_changed_spec_refuses_without_force(tmp_path):
    folder = own_competition(tmp_path)
    prepare(folder, tmp_path / "home")
    text = (folder / "competition.toml").read_text().replace("seed = 3", "seed = 4")
    (folder / "competition.toml").write_text(text)
    with pytest.raises(PreparedError, match="different spec.*--force"):
        prepare(folder, tmp_path / "home")
    before = digests(load_prepared(tmp_path / "home", "own"))
    after = digests(prepare(folder, tmp_path / "home", force=True))
    assert before != after


def test_options_override_and_are_remembered(tmp_path):
    prepared = prepare(find_spec_path("synthetic"), tmp_path, options={"rows": 2000})
    assert sum(prepared.manifest["rows"].values()) == 2000
    assert load_prepared(tmp_path, "synthetic").spec.data.options["rows"] == 2000


@pytest.mark.parametrize("frame, words", [
    (pd.DataFrame({"x": range(30), "z": [0, 1] * 15}), "no target column 'y'"),
    (pd.DataFrame({"x": range(30), "y": [0, 1, None] * 10}), "rows have no 'y'"),
    (pd.DataFrame({"id": [1, 1] + list(range(2, 30)), "y": [0, 1] * 15}), "duplicates"),
    (pd.DataFrame({"x": range(30), "y": [0, 1, 2] * 10}), "needs 2 classes"),
    (pd.DataFrame({"x": range(10), "y": [0, 1] * 5}), "at least 20"),
])
def test_bad_tables(tmp_path, frame, words):
    folder = own_competition(tmp_path, frame=frame)
    with pytest.raises(DataError, match=words):
        prepare(folder, tmp_path / "home")
    assert not (tmp_path / "home" / "competitions" / "own").exists()   # nothing half-written


def test_missing_group_column(tmp_path):
    folder = own_competition(tmp_path, stratify="false", group="nope")
    with pytest.raises(SpecError, match="'nope' is not a column"):
        prepare(folder, tmp_path / "home")


def test_fertility_drops_missing_cells(prepared_home):
    f = load_prepared(prepared_home, "fertility")
    assert not f.train.isna().any().any()
    assert {"lag_1", "lag_5", "year"} <= set(f.feature_columns)
    assert any(c.startswith("country_") for c in f.feature_columns)


def test_rules_change_needs_no_force(tmp_path):
    folder = own_competition(tmp_path)
    first = digests(prepare(folder, tmp_path / "home"))
    text = (folder / "competition.toml").read_text() + "\n[rules]\ndaily_limit = 9\n"
    (folder / "competition.toml").write_text(text)
    again = prepare(folder, tmp_path / "home")       # same data and split: allowed
    assert digests(again) == first and again.spec.rules.daily_limit == 9
