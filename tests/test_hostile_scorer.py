"""Hostile files against the scorer: every one is refused with a SubmissionError (a clear
message naming its problem, never a crash), and scoring never takes more than a small
multiple of the upload. The same corpus goes through the HTTP server in the server's
hostile-input tests (tests/test_hostile_http.py).

tests/hostile/*.csv must all be refused; tests/hostile/accepted/*.csv look odd but are
valid submissions and must score like digits' sample_submission.csv. The files named
after one defect (duplicate_id, label_word, ...) are that sample with the one defect, so
only the defect can be what is refused.
"""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import SubmissionError
from harness.scoring import AnswerKey, score

HOSTILE = Path(__file__).parent / "hostile"
CORPUS = sorted(HOSTILE.glob("*.csv"))
ACCEPTED = sorted((HOSTILE / "accepted").glob("*.csv"))
CORPUS_MIN = 60
MEMORY_PER_BYTE = 12     # peak memory scoring may take, in bytes per byte of the upload

# what each refusal must say (a regular expression searched in the message): the problem
# the file was made to have, not a later symptom of it
BINARY = "contains NUL bytes: it is binary"
BAD_ID = "is not a valid test id"
NOT_A_NUMBER = "is not a number; expected one of the class labels"
EXPECTED = {
    "binary_junk": BINARY,
    "bom_crlf_header_only": "has a header but no rows",
    "bom_only": "the file is empty",
    "bz2": BINARY,
    "cr_only_ragged": "line 7 has 3 fields; expected 2",
    "crlf_mixed": r"1 id is not a test id \(e\.g\. 3\)",
    "ctrl_z_eof_marker": "line 541 has 1 fields",
    "deep_quotes": BAD_ID,
    "double_bom": r"unexpected column '\\ufeffid'",
    "duplicate_id": "1 id appears more than once",
    "emoji_id": BAD_ID,
    "empty_cells": "2 rows have an empty 'id'",
    "empty_header_cell": "unexpected column ''",
    "extra_column": "unexpected column 'notes'",
    "float_ids": r"id '12\.0' " + BAD_ID,
    "formula_cells": "id '=HYPERLINK\\(.*" + BAD_ID,
    "gzip": "gzip-compressed",
    "header_only": "has a header but no rows",
    "header_trailing_space": "unexpected column 'label '",
    "header_twice": "id 'id' " + BAD_ID,
    "header_uppercase": "missing columns 'id', 'label'; unexpected columns 'ID', 'Label'",
    "header_zero_width_space": r"unexpected column '\\u200blabel'",
    "html": "the header is '<html>",
    "huge_field": "line 4: prediction 'xxx.*" + NOT_A_NUMBER,
    "huge_ids": "id '99999999999999999999999999' " + BAD_ID,
    "huge_predictions": "4 predictions are not a class label",
    "id_column_missing": "missing column 'id'",
    "id_script_tag": "id '<script>.*" + BAD_ID,
    "int64_overflow_id": "id '9223372036854775808' " + BAD_ID,
    "invalid_utf8": BAD_ID,
    "invalid_utf8_header": "the header is not UTF-8 text",
    "json": r"the header is '\[\{",
    "label_arabic_indic_digit": NOT_A_NUMBER,
    "label_boolean": "prediction 'True' " + NOT_A_NUMBER,
    "label_dash": "prediction '-' " + NOT_A_NUMBER,
    "label_decimal_comma": "prediction '3,0' " + NOT_A_NUMBER,
    "label_excel_dde": "prediction \"=cmd.*" + NOT_A_NUMBER,
    "label_expression": r"prediction '1e308\*10' " + NOT_A_NUMBER,
    "label_fraction": r"1 prediction is not a class label \(e\.g\. 3\.5",
    "label_fullwidth_digit": NOT_A_NUMBER,
    "label_hex": "prediction '0x3' " + NOT_A_NUMBER,
    "label_negative": r"1 prediction is not a class label \(e\.g\. -1 ",
    "label_out_of_range": r"1 prediction is not a class label \(e\.g\. 10 ",
    "label_overflow_to_inf": "1 prediction is infinite",
    "label_percent": "prediction '30%' " + NOT_A_NUMBER,
    "label_quoted_empty": "prediction '' " + NOT_A_NUMBER,
    "label_quoted_thousands": "prediction '1,000' " + NOT_A_NUMBER,
    "label_smart_quotes_cp1252": NOT_A_NUMBER,
    "label_sql_injection": "prediction \"3'; DROP TABLE.*" + NOT_A_NUMBER,
    "label_word": "prediction 'three' " + NOT_A_NUMBER,
    "latin1_header": "the header is not UTF-8 text",
    "line_with_only_a_quote": "line 52 has 1 fields",
    "long_line_of_commas": "line 2 has 150001 fields; expected 2",
    "missing_ids": "39 test ids are missing",
    "nan_inf": "empty or NaN 'label'",
    "nan_inf_spellings": "empty or NaN 'label'",
    "negative_ids": r"1 id is not a test id \(e\.g\. -",
    "newline_in_quoted_label": r"prediction '3\\n' " + NOT_A_NUMBER,
    "nul_after_64k": r"line 70062: prediction '3\\x00' " + NOT_A_NUMBER,
    "nul_bytes": BINARY,
    "one_hot_columns": "missing column 'label'; unexpected columns '0', '1', '2'",
    "only_newlines": "the file is empty",
    "pandas_index_column": "the header is ',id,label'.*unexpected column ''",
    "parquet_magic": BINARY,
    "pdf": "the header is '%PDF-1.4'",
    "png": BINARY,
    "ragged": "line 3 has 3 fields",
    "ragged_huge_field": "line 3 has 3 fields",
    "rtl_override_id": r"id '\\u202e\d+' " + BAD_ID,
    "scientific_ids": "id '1.289e3' " + BAD_ID,
    "semicolon": "seems to use ';' between fields",
    "shell_script": "the header is '#!/bin/sh'",
    "spaces_in_header": "unexpected columns ' id ', ' label '",
    "tabs": r"seems to use '\\t' between fields",
    "tar_archive": BINARY,
    "target_column_missing": "missing column 'label'",
    "test_features_uploaded": "unexpected columns 'pixel0', 'pixel1', 'pixel2'",
    "thousands_separator_id": "id '1,289' " + BAD_ID,
    "trailing_comma_rows": "line 2 has 3 fields",
    "two_id_columns": "a column name repeats",
    "two_target_columns": "a column name repeats",
    "unicode_ids": BAD_ID,
    "unicode_minus_id": "id '\u2212\\d+' " + BAD_ID,
    "unknown_id_among_valid": r"1 id is not a test id \(e\.g\. 99999\)",
    "unterminated_quote": "line 2 has 1 fields",
    "utf16": "UTF-16 text; save it as UTF-8",
    "utf16_no_bom": BINARY,
    # the scorer knows no UTF-32 (rare): its BOM starts like UTF-16's, the advice holds
    "utf32": "save it as UTF-8",
    "utf32_be_no_bom": BINARY,
    "wide_header": "unexpected columns 'c0', 'c1', 'c2'",
    "xlsx": "a zip archive",
    "zero_width_space_id": r"id '\\u200b\d+' " + BAD_ID,
    "zip_bomb": "a zip archive",
}


@pytest.fixture
def key(digits):
    return AnswerKey.from_prepared(digits)


def test_corpus_is_large_distinct_and_every_file_states_its_expectation():
    assert len(CORPUS) >= CORPUS_MIN
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in CORPUS + ACCEPTED}
    assert len(digests) == len(CORPUS) + len(ACCEPTED), "two corpus files are the same bytes"
    assert sorted(EXPECTED) == [p.stem for p in CORPUS], "a file without an expectation"
    assert not {p.stem for p in ACCEPTED} & set(EXPECTED)
    # committed files stay small; the big attacks are made by the tests themselves
    assert max(p.stat().st_size for p in CORPUS + ACCEPTED) < 200 * 2**10


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_is_refused_clearly(path, key):
    with pytest.raises(SubmissionError) as err:
        score(path.read_bytes(), key)
    msg = str(err.value)
    assert 10 < len(msg) < 400, msg                 # one line, not a dump of the file
    assert "\n" not in msg
    assert "Traceback" not in msg and "pyarrow" not in msg.lower()
    assert "public" not in msg.lower() and "private" not in msg.lower()
    assert re.search(EXPECTED[path.stem], msg), f"{path.name}: {msg}"


@pytest.mark.parametrize("path", ACCEPTED, ids=[p.stem for p in ACCEPTED])
def test_odd_but_valid_files_score_like_the_sample(path, key, digits):
    expected = score(digits.released_dir / "sample_submission.csv", key)
    got = score(path.read_bytes(), key)
    assert (got.public, got.private) == (expected.public, expected.private)


def test_ten_megabyte_single_line(key):
    data = b"id,label\n" + b"1" * (10 * 2**20)
    with pytest.raises(SubmissionError, match="a line is longer than 4 MiB"):
        score(data, key)


def test_ten_megabyte_header(key):
    with pytest.raises(SubmissionError, match="longer than 64 KiB"):
        score(b"x" * (10 * 2**20), key)


def million_wrong_ids() -> bytes:
    """10^6 well-formed rows whose ids are none of the test ids (about 10 MB)."""
    return b"id,label\n" + b"".join(b"%d,3\n" % i for i in range(10**6, 2 * 10**6))


def hundred_thousand_columns() -> bytes:
    """A header of 10^5 columns (about 0.6 MB on one line), then one row."""
    return ("id,label," + ",".join(f"c{k}" for k in range(10**5)) + "\n1,2\n").encode()


def test_a_million_rows_of_wrong_ids(key):
    with pytest.raises(SubmissionError, match=r"^1000000 ids are not a test id \(e\.g\. "
                                              r"1000000, 1000001, 1000002\); submit"):
        score(million_wrong_ids(), key)


def test_a_hundred_thousand_columns(key):
    with pytest.raises(SubmissionError, match="the first line is longer than 64 KiB"):
        score(hundred_thousand_columns(), key)


def test_scientific_notation_and_negative_zero_are_numbers(key, digits):
    import pandas as pd

    truth = pd.read_csv(digits.solution_path)
    lines = ["id,label"] + [f"{i},{y}e0" if y else f"{i},-0.0" for i, y in
                            zip(truth.id, truth.label)]
    assert score("\n".join(lines).encode(), key).public == 1.0


def _rss(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def test_memory_stays_a_small_multiple_of_the_upload(key):
    try:
        Path("/proc/self/clear_refs").write_text("5")   # reset the peak-RSS mark
    except OSError:
        pytest.skip("cannot reset the peak-RSS mark here (/proc/self/clear_refs)")
    rng = np.random.default_rng(0)
    n = 400_000                                          # ~5 MB of well-formed junk rows
    body = "id,label\n" + "\n".join(f"{i},{v}" for i, v in zip(
        rng.integers(0, 10**9, n), rng.integers(0, 10, n)))
    data = body.encode()
    base = _rss("VmRSS")
    with pytest.raises(SubmissionError):
        score(data, key)
    grew = _rss("VmHWM") - base
    assert grew < MEMORY_PER_BYTE * len(data), f"peak grew {grew / 2**20:.1f} MB for a {len(data) / 2**20:.1f} MB file"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(key, data):
    try:
        score(data, key)
    except SubmissionError:
        pass


cell = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(str),
                 st.text(max_size=8), st.sampled_from(["", "1e400", "-0", "0x1F", "１", "٣"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(cell, min_size=1, max_size=3), max_size=30),
       st.sampled_from(["id,label", "label,id", "id", "id,label,x"]))
def test_random_tables_never_crash(key, rows, header):
    body = header + "\n" + "\n".join(",".join(r) for r in rows)
    try:
        score(body.encode("utf-8", "surrogatepass"), key)
    except SubmissionError:
        pass
