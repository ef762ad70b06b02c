"""Hostile files against the scorer: every one is refused with a SubmissionError (a clear
message, never a crash), and scoring never takes more than a small multiple of the upload.
The same corpus goes through the HTTP server in the server's hostile-input tests."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import SubmissionError
from harness.scoring import AnswerKey, score

CORPUS = sorted((Path(__file__).parent / "hostile").glob("*.csv"))


@pytest.fixture
def key(digits):
    return AnswerKey.from_prepared(digits)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_is_refused_clearly(path, key):
    with pytest.raises(SubmissionError) as err:
        score(path.read_bytes(), key)
    msg = str(err.value)
    assert 10 < len(msg) < 400, msg                 # one line, not a dump of the file
    assert "\n" not in msg
    assert "Traceback" not in msg and "pyarrow" not in msg.lower()
    assert "public" not in msg.lower() and "private" not in msg.lower()


def test_ten_megabyte_single_line(key):
    data = b"id,label\n" + b"1" * (10 * 2**20)
    with pytest.raises(SubmissionError, match="a line is longer than 4 MiB"):
        score(data, key)


def test_ten_megabyte_header(key):
    with pytest.raises(SubmissionError, match="longer than 64 KiB"):
        score(b"x" * (10 * 2**20), key)


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
    assert grew < 12 * len(data), f"peak grew {grew / 2**20:.1f} MB for a {len(data) / 2**20:.1f} MB file"


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
