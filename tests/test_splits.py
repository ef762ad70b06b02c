"""The split: deterministic, disjoint, covering, stratified, grouped; the release leaks nothing."""

import hashlib
import shutil

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


# ---------------------------------------------------------------- time-ordered splits


def timed_competition(tmp_path, dates, public_order="random"):
    """own_competition with a ``date`` column (rows shuffled) and ``order_column = "date"``."""
    rng = np.random.default_rng(1)
    n = len(dates)
    frame = pd.DataFrame({"date": dates, "x": rng.normal(size=n),
                          "y": (rng.random(n) < 0.3).astype(int)}).sample(frac=1, random_state=2)
    folder = own_competition(tmp_path, stratify="false", frame=frame)
    toml = folder / "competition.toml"
    toml.write_text(toml.read_text().replace(
        'group_column = ""',
        f'group_column = ""\norder_column = "date"\npublic_order = "{public_order}"'))
    return folder


def days(n, per_day=3):
    """ISO dates, ``per_day`` rows on each (ties), over ``n // per_day`` days."""
    start = np.datetime64("2024-01-01")
    return [str(start + np.timedelta64(i // per_day, "D")) for i in range(n)]


def parts_by_date(prepared):
    """(train, validation, public, private) date Series of a prepared competition."""
    sol = pd.read_csv(prepared.solution_path).merge(prepared.test, on="id")
    return (pd.to_datetime(prepared.train["date"]), pd.to_datetime(prepared.validation["date"]),
            pd.to_datetime(sol[sol.Usage == "Public"]["date"]),
            pd.to_datetime(sol[sol.Usage == "Private"]["date"]))


@pytest.mark.parametrize("public_order", ["random", "time"])
def test_order_column_puts_train_first_and_the_test_part_last(tmp_path, public_order):
    folder = timed_competition(tmp_path, days(600), public_order)
    prepared = prepare(folder, tmp_path / "home")
    train, validation, public, private = parts_by_date(prepared)
    # strictly earlier: a day's rows (ties) never straddle two parts
    assert train.max() < validation.min() <= validation.max() < min(public.min(), private.min())
    if public_order == "time":
        assert public.max() < private.min()
    else:                       # the latest rows, public and private drawn among them
        assert public.min() < private.max() and private.min() < public.max()
    shares = np.array([len(train), len(validation), len(public), len(private)]) / 600
    assert np.abs(shares - [0.5, 0.1, 0.2, 0.2]).max() < 0.02
    # the released files stay as shuffled as before: test order says nothing of the time
    assert not pd.to_datetime(prepared.test["date"]).is_monotonic_increasing


def test_time_ordered_prepare_is_reproducible_and_fingerprinted(tmp_path):
    folder = timed_competition(tmp_path, days(300), "random")
    first = digests(prepare(folder, tmp_path / "a"))
    assert digests(prepare(folder, tmp_path / "b")) == first
    assert digests(prepare(folder, tmp_path / "a")) == first      # same spec: allowed
    toml = folder / "competition.toml"
    toml.write_text(toml.read_text().replace('public_order = "random"', 'public_order = "time"'))
    with pytest.raises(PreparedError, match="different spec"):
        prepare(folder, tmp_path / "a")
    assert digests(prepare(folder, tmp_path / "a", force=True)) != first


def test_ties_are_cut_the_same_whatever_the_row_order(tmp_path):
    spec = load_spec(timed_competition(tmp_path, days(90, per_day=9), "time"))
    table = pd.read_csv(tmp_path / "table.csv")
    parts = assign_parts(table, spec)
    shuffled = table.sample(frac=1, random_state=5)
    again = pd.Series(assign_parts(shuffled, spec), index=shuffled.index).sort_index()
    assert (again.to_numpy() == parts).all()
    assert (pd.Series(parts).groupby(table["date"]).nunique() == 1).all()


@pytest.mark.parametrize("dates, error, words", [
    (["2024-01-01"] * 299 + ["soon"], DataError,
     ["order column 'date'", "'soon'", "numbers", "ISO 8601"]),
    (["2024-01-01", "01/02/2024"] * 150, DataError, ["'01/02/2024'", "ISO 8601"]),
    (["a", "b", "c"] * 100, DataError, ["'date' holds '", "cannot be ordered in time"]),
    (days(299) + [None], DataError, ["1 empty cell ", "fill them or drop"]),
    (["2023", "2024", "2025"] * 100, DataError,
     ["3 distinct values", "the public part", "finer column", "public_order = \"random\""]),
])
def test_unsortable_order_columns_are_refused(tmp_path, dates, error, words):
    folder = timed_competition(tmp_path, dates, "time")
    with pytest.raises(error) as err:
        prepare(folder, tmp_path / "home")
    for w in words:
        assert w in str(err.value)
    assert not (tmp_path / "home" / "competitions" / "own").exists()


def test_numbers_order_and_a_missing_order_column_is_named(tmp_path):
    folder = timed_competition(tmp_path, list(range(300)), "time")
    train, *_, private = parts_by_date(prepare(folder, tmp_path / "home"))
    assert train.max() < private.min()
    toml = folder / "competition.toml"
    toml.write_text(toml.read_text().replace('order_column = "date"', 'order_column = "when"'))
    with pytest.raises(SpecError, match=r"split\.order_column.*'when' is not a column.*'date'"):
        prepare(folder, tmp_path / "home", force=True)


def test_drift_validation_and_test_disagree(tmp_path):
    """The built-in `drift`: a model scores lower on the later test rows (public and
    private) than on validation; with a random split validation and test agree."""
    from sklearn.linear_model import LogisticRegression

    def gaps(prepared):
        features = prepared.feature_columns
        model = LogisticRegression(max_iter=1000).fit(prepared.train[features],
                                                      prepared.train["label"])
        sol = pd.read_csv(prepared.solution_path).merge(prepared.test, on="id")
        score = {"validation": model.score(prepared.validation[features],
                                           prepared.validation["label"])}
        for usage in ("Public", "Private"):
            rows = sol[sol.Usage == usage]
            score[usage] = model.score(rows[features], rows["label"])
        return score

    drift = gaps(prepare(find_spec_path("drift"), tmp_path / "home"))
    assert drift["validation"] - drift["Public"] > 0.04
    assert drift["validation"] - drift["Private"] > 0.04
    # the same table split at random: validation and test agree
    text = (find_spec_path("drift") / "competition.toml").read_text()
    folder = tmp_path / "shuffled"
    shutil.copytree(find_spec_path("drift"), folder)
    (folder / "competition.toml").write_text(
        text.replace('order_column = "day"', ""))
    shuffled = gaps(prepare(folder, tmp_path / "home2"))
    assert abs(shuffled["validation"] - (shuffled["Public"] + shuffled["Private"]) / 2) < 0.02
