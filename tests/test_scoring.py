"""The scorer: every refusal names what was expected and found; nothing reveals membership."""

from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from harness import scoring
from harness.errors import SubmissionError
from harness.home import load_prepared
from harness.metrics import METRICS
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


# --- text ids (Kaggle's usual image_0001234): matched in Arrow, no Python object per id ----

ID_MAKERS = {
    "one length": lambda i: f"image_{i:07d}",
    "lengths vary": lambda i: f"img{i}",
    "non-ASCII": lambda i: f"caf\u00e9-\U0001F600-{i}",
    "over 64 bytes": lambda i: "x" * 70 + str(i),        # Arrow's lookup, not the hash sort
}


def text_key(ids, seed=0) -> AnswerKey:
    """A roc_auc key over ``ids`` whose public and private parts both hold both classes."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    y = (np.arange(n) % 3 == 0).astype(np.float64)
    public = rng.random(n) < 0.3
    public[:3], public[3:6] = True, False
    return AnswerKey("id", "label", np.array(ids, dtype=object), y, public,
                     METRICS["roc_auc"], "binary")


def proba_csv(ids, p) -> bytes:
    return csv_bytes(pd.DataFrame({"id": ids, "label": p}))


@pytest.mark.parametrize("make_id", ID_MAKERS.values(), ids=ID_MAKERS.keys())
def test_text_ids_in_any_order_score_like_sklearn(make_id):
    ids = [make_id(i) for i in range(3000)]
    key = text_key(ids)
    rng = np.random.default_rng(1)
    p = np.round(np.clip(0.3 * key.y + rng.random(key.n) * 0.7, 0, 1), 2)   # ties too
    released = score(proba_csv(ids, p), key)
    assert released.public == pytest.approx(
        skm.roc_auc_score(key.y[key.public], p[key.public]), abs=1e-12)
    assert released.private == pytest.approx(
        skm.roc_auc_score(key.y[~key.public], p[~key.public]), abs=1e-12)
    order = rng.permutation(key.n)
    shuffled = score(proba_csv(np.array(ids)[order], p[order]), key)
    assert (shuffled.public, shuffled.private) == (released.public, released.private)
    assert np.array_equal(shuffled.predictions, p)


def test_text_id_refusals_name_the_ids():
    ids = [f"image_{i:07d}" for i in range(500)]
    key = text_key(ids)
    sub = pd.DataFrame({"id": ids, "label": 0.5})
    assert "1 id is not a test id (e.g. image_9999999); submit exactly the ids of test.csv " \
           "(500 rows)" in refusal(csv_bytes(sub.assign(id=ids[:-1] + ["image_9999999"])), key)
    assert "1 id is not a test id (e.g. image_00000001)" in \
        refusal(csv_bytes(sub.assign(id=["image_00000001"] + ids[1:])), key)
    msg = refusal(csv_bytes(pd.concat([sub, sub.iloc[[7, 3]]])), key)
    assert "2 ids appear more than once (e.g. image_0000003, image_0000007)" in msg
    msg = refusal(csv_bytes(sub.iloc[::-1].iloc[2:]), key)
    assert "2 test ids are missing (e.g. image_0000498, image_0000499); found 498 rows, " \
           "expected 500" in msg
    for data in (csv_bytes(sub.iloc[1:]), csv_bytes(pd.concat([sub, sub.iloc[:1]]))):
        msg = refusal(data, key).lower()
        assert "public" not in msg and "private" not in msg


@pytest.fixture
def weak_hash(monkeypatch):
    """Hash text ids by their first 8 bytes only, so that ids collide on purpose."""
    monkeypatch.setattr(scoring, "_hash_words", lambda words, lengths: words[0].copy())


def test_a_hash_collision_never_passes_for_a_test_id(weak_hash):
    # unique first 8 bytes: the key's hashes are distinct, and the hash sort is used
    ids = [f"{i:08d}-tail" for i in range(200)]
    key = text_key(ids)
    sub = pd.DataFrame({"id": ids, "label": 0.5}).iloc[::-1]
    assert key.permutation(pa.chunked_array([pa.array(sub.id)])) is not None
    for impostor in ("00000003-TAIL", "00000003-tail\x00", "00000003-tail-and-more"):
        forged = pa.chunked_array([pa.array([impostor if i == "00000003-tail" else i
                                             for i in sub.id])])
        assert key.permutation(forged) is None
    msg = refusal(csv_bytes(sub.replace({"id": {"00000003-tail": "00000003-TAIL"}})), key)
    assert "1 id is not a test id (e.g. 00000003-TAIL)" in msg


def test_test_ids_that_collide_are_matched_by_arrow(weak_hash):
    ids = [f"image_{i:07d}" for i in range(300)]      # all share "image_00": one hash
    key = text_key(ids)
    p = np.linspace(0, 1, key.n)
    order = np.random.default_rng(0).permutation(key.n)
    got = score(proba_csv(np.array(ids)[order], p[order]), key)
    assert np.array_equal(got.predictions, p)


text_ids = st.lists(st.text(max_size=20) | st.text(min_size=60, max_size=80), min_size=1,
                    max_size=40, unique=True)


@settings(max_examples=300, deadline=None)
@given(ids=text_ids, data=st.data())
def test_text_id_positions_match_a_dictionary(ids, data):
    key = text_key(ids)
    where = {s: i for i, s in enumerate(ids)}
    sub = data.draw(st.permutations(ids))
    edit = data.draw(st.sampled_from(["none", "drop", "repeat", "foreign", "swap"]))
    if edit == "drop":
        sub = sub[1:]
    elif edit == "repeat":
        sub = sub + sub[:1]
    elif edit in ("foreign", "swap"):
        foreign = data.draw(st.text(max_size=70).filter(lambda s: s not in where))
        sub = [foreign] + sub[1:] if edit == "swap" else sub + [foreign]
    # chunks of any size, some of them slices that start inside a buffer
    cuts = sorted(data.draw(st.lists(st.integers(0, len(sub)), max_size=4)))
    whole = pa.array(sub, type=pa.string())
    bounds = [0, *cuts, len(sub)]
    chunked = pa.chunked_array([whole.slice(a, b - a) for a, b in zip(bounds, bounds[1:])],
                               type=pa.string())
    expected = np.array([where.get(s, -1) for s in sub])
    assert np.array_equal(key.positions(chunked), expected)
    # blocks of a few ids too, so that blocks start inside chunks
    with mock.patch.object(scoring, "_BLOCK", data.draw(st.sampled_from([3, 1 << 16]))):
        perm = key.permutation(chunked)
    preds = np.arange(len(sub), dtype=np.float64)
    if sorted(sub) == sorted(ids):
        if max(len(s.encode()) for s in ids) <= 8 * scoring._TextIds.MAX_WORDS:
            assert np.array_equal(perm, expected)          # found by the hash sort
        assert np.array_equal(scoring._match(chunked, preds, key)[expected], preds)
    else:
        assert perm is None
        with pytest.raises(SubmissionError):
            scoring._match(chunked, preds, key)
