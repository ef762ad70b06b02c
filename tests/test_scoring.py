"""The scorer: every refusal names what was expected and found; nothing reveals membership."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from harness.errors import SubmissionError
from harness.home import load_prepared
from harness.scoring import AnswerKey, score


@pytest.fixture
def key(digits):
    return AnswerKey.from_prepared(digits)


@pytest.fixture
def truth(digits):
    return pd.read_csv(digits.solution_path)


def csv_bytes(frame, **kw):
    return frame.to_csv(index=False, **kw).encode()


def perfect(truth):
    return truth[["id", "label"]].copy()


def test_perfect_and_sample_scores(digits, key, truth):
    s = score(csv_bytes(perfect(truth)), key)
    assert s.public == 1.0 and s.private == 1.0
    sample = score(digits.released_dir / "sample_submission.csv", key)
    pub = truth.Usage == "Public"
    expected = skm.accuracy_score(truth.label[pub], np.full(pub.sum(), 3))
    assert sample.public == pytest.approx(expected)


def test_row_order_does_not_matter(key, truth):
    sub = perfect(truth)
    sub.loc[::3, "label"] = (sub.loc[::3, "label"] + 1) % 10
    shuffled = sub.sample(frac=1, random_state=0)
    a, b = score(csv_bytes(sub), key), score(csv_bytes(shuffled), key)
    assert (a.public, a.private) == (b.public, b.private)
    assert a.public < 1


def test_formats_accepted(key, truth):
    body = csv_bytes(perfect(truth))
    for variant in (b"\xef\xbb\xbf" + body, body.replace(b"\n", b"\r\n"),
                    csv_bytes(perfect(truth), quoting=1),         # every field quoted
                    body + b"\n\n",                                 # trailing blank lines
                    csv_bytes(perfect(truth)[["label", "id"]]),    # columns swapped
                    csv_bytes(perfect(truth).assign(label=lambda f: f.label.astype(float)))):
        assert score(variant, key).public == 1.0


def refusal(data, key):
    with pytest.raises(SubmissionError) as err:
        score(data, key)
    return str(err.value)


def test_empty_and_header_only(key):
    assert "the file is empty; expected a header line 'id,label'" in refusal(b"", key)
    assert "the file is empty" in refusal(b"  \n\n", key)
    assert "header but no rows; expected 539 rows" in refusal(b"id,label\n", key)


@pytest.mark.parametrize("header, words", [
    ("id,prediction", ["missing column 'label'", "unexpected column 'prediction'"]),
    ("id", ["missing column 'label'"]),
    ("id,label,extra", ["unexpected column 'extra'"]),
    ("ID,Label", ["missing columns 'id', 'label'"]),
    ("id;label", ["seems to use ';'", "expected commas"]),
])
def test_header_refusals(key, truth, header, words):
    body = header + "\n" + "\n".join(f"{i},1" for i in truth.id)
    msg = refusal(body.encode(), key)
    assert "expected exactly 'id,label'" in msg or "expected commas" in msg
    for w in words:
        assert w in msg


def test_missing_extra_duplicate_ids(key, truth, digits):
    sub = perfect(truth)
    msg = refusal(csv_bytes(sub.iloc[5:]), key)
    assert "5 test ids are missing (e.g." in msg and "found 534 rows, expected 539" in msg
    train_id = int(digits.train.id.iloc[0])
    msg = refusal(csv_bytes(pd.concat([sub, pd.DataFrame({"id": [train_id], "label": [1]})])), key)
    assert "1 id is not a test id (e.g. " + str(train_id) in msg
    msg = refusal(csv_bytes(pd.concat([sub, sub.iloc[:2]])), key)
    assert "2 ids appear more than once" in msg
    wrong = sub.assign(id=sub.id.astype(str) + "x")
    msg = refusal(csv_bytes(wrong), key)
    assert "line 2: id '1289x' is not a valid test id (ids are a whole number" in msg


def test_prediction_refusals(key, truth):
    sub = perfect(truth).astype({"label": object})
    bad = sub.copy()
    bad.loc[bad.index[3], "label"] = "seven"
    assert "line 5: prediction 'seven' is not a number; expected one of the class labels" in \
        refusal(csv_bytes(bad), key)
    bad = sub.copy()
    bad.loc[bad.index[[2, 4]], "label"] = np.nan
    msg = refusal(csv_bytes(bad), key)
    assert "2 rows have an empty or NaN 'label' (e.g. lines 4, 6)" in msg
    bad = sub.copy()
    bad.loc[bad.index[0], "label"] = "inf"
    assert "1 prediction is infinite (e.g. line 2)" in refusal(csv_bytes(bad), key)
    bad = sub.copy()
    bad.loc[bad.index[1], "label"] = 11
    msg = refusal(csv_bytes(bad), key)
    assert "1 prediction is not a class label (e.g. 11 on line 3)" in msg
    assert "expected one of 0, 1, 2" in msg


def test_probabilities_checked(prepared_home):
    bc = load_prepared(prepared_home, "breast-cancer")
    key = AnswerKey.from_prepared(bc)
    sol = pd.read_csv(bc.solution_path)
    sub = sol[["id", "malignant"]].astype({"malignant": float})
    assert score(csv_bytes(sub), key).public == 1.0      # AUC of the truth itself
    sub.loc[sub.index[0], "malignant"] = 1.5
    msg = refusal(csv_bytes(sub), key)
    assert "outside [0, 1] (e.g. 1.5 on line 2)" in msg and "probabilities of class 1" in msg


def test_ragged_binary_and_encodings(key, truth):
    body = csv_bytes(perfect(truth))
    lines = body.split(b"\n")
    lines[3] = lines[3] + b",9"
    assert "line 4 has 3 fields; expected 2 (id,label)" in refusal(b"\n".join(lines), key)
    assert "NUL bytes" in refusal(b"id,label\n1\x00,2\n", key)
    assert "gzip" in refusal(b"\x1f\x8b\x08\x00rest", key)
    assert "zip archive" in refusal(b"PK\x03\x04rest", key)
    assert "UTF-16" in refusal("id,label\n1,2\n".encode("utf-16"), key)
    assert "header is not UTF-8" in refusal(b"\xff\xfeid,label"[2:].replace(b"i", b"\xe9", 1)
                                            + b"\n1,2\n", key)


def test_refusals_never_name_a_part(key, truth):
    sub = perfect(truth)
    cases = [csv_bytes(sub.iloc[1:]), csv_bytes(pd.concat([sub, sub.iloc[:1]])),
             csv_bytes(sub.assign(label=-1)), b"id,label\n"]
    for data in cases:
        msg = refusal(data, key).lower()
        assert "public" not in msg and "private" not in msg


def test_regression_scores_match_sklearn(prepared_home):
    f = load_prepared(prepared_home, "fertility")
    key = AnswerKey.from_prepared(f)
    sol = pd.read_csv(f.solution_path)
    rng = np.random.default_rng(0)
    pred = sol.fertility + rng.normal(0, 0.3, len(sol))
    s = score(csv_bytes(pd.DataFrame({"id": sol.id, "fertility": pred})), key)
    pub = sol.Usage == "Public"
    assert s.public == pytest.approx(skm.mean_squared_error(sol.fertility[pub], pred[pub]))
    assert s.private == pytest.approx(skm.mean_squared_error(sol.fertility[~pub], pred[~pub]))
    rows = s.public_row_loss(key)
    assert rows.mean() == pytest.approx(s.public)


# --- red-team breaks 3 and 4: non-finite scores, fields over the csv module's limit -------


@pytest.fixture
def fertility(prepared_home):
    f = load_prepared(prepared_home, "fertility")
    return AnswerKey.from_prepared(f), pd.read_csv(f.solution_path)


def regression_csv(sol, values) -> bytes:
    return csv_bytes(pd.DataFrame({"id": sol.id, "fertility": values}))


def test_a_score_that_overflows_is_refused_without_naming_a_part(fertility):
    key, sol = fertility
    msg = refusal(regression_csv(sol, np.full(len(sol), 1e200)), key)
    assert "the score is not a finite number" in msg and "predictions must be finite" in msg
    assert "1e+200" in msg and "'mse'" in msg and "public" not in msg.lower() \
        and "private" not in msg.lower()
    one = sol.fertility.to_numpy(dtype=float).copy()
    one[7] = -1e200
    msg = refusal(regression_csv(sol, one), key)
    assert f"-1e+200 (id {sol.id[7]})" in msg
    kept = score(regression_csv(sol, one.clip(-1e150)), key)      # huge but finite: scored
    assert max(kept.public, kept.private) > 1e250


def test_the_overflow_refusal_does_not_depend_on_the_split(fertility):
    # 1e154 squared is 1e308: two such rows overflow a sum only together. A refusal that
    # depended on the part's own score would tell (for free: refusals are not counted)
    # whether two rows are in the same part; the check is on every row at once instead.
    key, sol = fertility
    assert (sol.id.to_numpy() == key.ids).all()        # the key keeps the file's order
    pub, priv = np.flatnonzero(key.public)[:2], np.flatnonzero(~key.public)[:1]
    for rows in ([pub[0], pub[1]], [pub[0], priv[0]]):
        values = sol.fertility.to_numpy(dtype=float).copy()
        values[rows] = 1e154
        assert "the score is not a finite number" in refusal(regression_csv(sol, values), key)


@pytest.mark.parametrize("spelling", ["inf", "-inf", "+inf", "Infinity", "-Infinity", "INF",
                                      "1e400"])
def test_infinite_predictions_are_refused_up_front(fertility, spelling):
    key, sol = fertility
    values = sol.fertility.astype(object)
    values[4] = spelling
    msg = refusal(regression_csv(sol, values), key)
    assert "1 prediction is infinite (e.g. line 6); expected a finite number" in msg


@pytest.mark.parametrize("spelling", ["nan", "NaN", "NAN", "-nan", "+nan", "-NaN"])
def test_nan_predictions_are_refused_as_nan(fertility, spelling):
    key, sol = fertility
    values = sol.fertility.astype(object)
    values[4] = spelling
    msg = refusal(regression_csv(sol, values), key)
    assert "NaN" in msg and "line 6" in msg and "infinite" not in msg


BIG = "9" * 200_000


@pytest.mark.parametrize("line, want", [
    (f"{{id}},{BIG},5", "line 4 has 3 fields; expected 2 (id,label)"),
    (f"{{id}},\"{BIG}\",5", "line 4 has 3 fields; expected 2 (id,label)"),
    ("{id}," + "x" * 200_000, "line 4: prediction 'xxx"),
    ("{id},\"" + "x" * 200_000 + "\"", "line 4: prediction 'xxx"),
    ("7" * 200_000 + ",1", "line 4: id '777"),
])
def test_a_field_over_128_kib_is_refused_naming_its_line(key, truth, line, want):
    # Python's csv module refuses fields over 128 KiB; the error path must not use it
    rows = [f"{i},{y}" for i, y in zip(truth.id, truth.label)]
    rows[1] = line.format(id=truth.id[1])
    body = "id,label\n" + "\n\n".join(rows[:2]) + "\n" + "\n".join(rows[2:]) + "\n"
    msg = refusal(body.encode(), key)
    assert want in msg and len(msg) < 400


def test_line_numbers_count_blank_and_cr_only_lines(key, truth):
    rows = [f"{i},{y}" for i, y in zip(truth.id, truth.label)]
    rows[3] += ",9"
    body = "id,label\r\n" + rows[0] + "\r\r\n" + "\r".join(rows[1:]) + "\r"
    assert "line 6 has 3 fields" in refusal(body.encode(), key)
    rows[3] = f"{truth.id[3]},seven"
    body = "id,label\n\n" + "\n".join(rows) + "\n"
    assert "line 6: prediction 'seven' is not a number" in refusal(body.encode(), key)
