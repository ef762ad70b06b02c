"""Validate a submission against the answer key, then score it on both boards.

:func:`score` is the only way a submission is scored, for the server, the
command line and the labs alike. Validation is strict and uses only what the
students already have (the test ids and the header), so no refusal tells
which ids are public or private; the one refusal that needs the answers (a
score that is not a finite number) is decided on all the rows at once. Matching is on the id column; any row order
is accepted, the released order taking a fast path.

Speed: parsing is pyarrow's multithreaded CSV reader with the column types
fixed up front; id matching is a direct index for integer ids (O(n), no sort).
Text ids never become Python objects: the released order is one Arrow
comparison, another order one sort of 64-bit hashes of the ids' bytes (checked
byte for byte), and a file that is not the test ids in some order goes to
Arrow's hash lookup to name its problem. ``make bench`` measures it against the
parse alone and against a pandas ``read_csv`` + ``merge`` script.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import SubmissionError
from .metrics import Metric

BOM = b"\xef\xbb\xbf"
_MAGIC = {
    b"\x1f\x8b": "gzip-compressed; upload the plain .csv file, not the .gz",
    b"PK\x03\x04": "a zip archive; upload the plain .csv file, not the .zip",
    b"\xff\xfe": "UTF-16 text; save it as UTF-8 (in Excel: 'CSV UTF-8')",
    b"\xfe\xff": "UTF-16 text; save it as UTF-8 (in Excel: 'CSV UTF-8')",
}
EXAMPLES = 3   # example ids/values quoted in a refusal
BLOCK_SIZE = 1 << 22   # pyarrow's parse block: also the longest line accepted


@dataclass
class AnswerKey:
    """The hidden truth for one competition, ready for fast scoring.

    Build it with :meth:`from_prepared`; the server keeps one per process.
    """

    id_column: str
    target: str
    ids: np.ndarray            # in the released test order
    y: np.ndarray
    public: np.ndarray         # bool mask over ids
    metric: Metric
    task: str
    classes: np.ndarray | None = None
    _index: object = field(default=None, repr=False)

    @classmethod
    def from_prepared(cls, prepared) -> "AnswerKey":
        """The answer key of a :class:`harness.home.Prepared` competition."""
        spec, man = prepared.spec, prepared.manifest
        id_type = pa.int64() if man["id_kind"] == "int" else pa.string()
        y_type = None
        classes = man.get("classes")
        if spec.data.task == "regression" or spec.metric.needs_proba:
            y_type = pa.float64()
        elif classes is not None and all(isinstance(c, str) for c in classes):
            y_type = pa.string()
        else:
            y_type = pa.float64()
        tbl = pacsv.read_csv(prepared.solution_path, convert_options=pacsv.ConvertOptions(
            column_types={spec.data.id_column: id_type, spec.data.target: y_type,
                          "Usage": pa.string()}))
        y = tbl[spec.data.target].to_numpy(zero_copy_only=False)
        return cls(
            id_column=spec.data.id_column, target=spec.data.target,
            ids=tbl[spec.data.id_column].to_numpy(zero_copy_only=False), y=y,
            public=(tbl["Usage"].to_numpy(zero_copy_only=False) == "Public"),
            metric=spec.metric, task=spec.data.task,
            classes=(np.asarray(classes, dtype=y.dtype) if classes is not None
                     and not spec.metric.needs_proba else None),
        )

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def int_ids(self) -> bool:
        return self.ids.dtype.kind in "iu"

    @cached_property
    def id_array(self) -> pa.Array:
        """The text ids as one Arrow array (built once), for matching without Python objects."""
        return pa.array(self.ids, type=pa.string())

    @cached_property
    def _lookup(self):
        """id -> position: a dense array for compact integer ids, else a hash index; text
        ids get their hashes sorted once (:class:`_TextIds`)."""
        if not self.int_ids:
            return ("text", _TextIds(self.id_array), None)
        if self.n:
            lo, hi = int(self.ids.min()), int(self.ids.max())
            if hi - lo < 8 * self.n + 1024:
                table = np.full(hi - lo + 1, -1, dtype=np.int64)
                table[self.ids - lo] = np.arange(self.n)
                return ("dense", lo, table)
        return ("hash", pd.Index(self.ids), None)

    def in_released_order(self, sub_ids: np.ndarray | pa.ChunkedArray) -> bool:
        """True when the submitted ids are the test ids in the released order (the usual case)."""
        if len(sub_ids) != self.n:
            return False
        if self.int_ids:
            return bool(np.array_equal(sub_ids, self.ids))
        return bool(pc.all(pc.equal(sub_ids, self.id_array)).as_py())

    def permutation(self, sub_ids: np.ndarray | pa.ChunkedArray) -> np.ndarray | None:
        """The key position of each submitted row, the fast way, if the ids are exactly
        the test ids in another order; None if not, or if the fast way cannot tell (text
        ids whose hashes collide): :meth:`positions` then places each row."""
        if len(sub_ids) != self.n:
            return None
        kind, a, _ = self._lookup
        if kind == "text":
            return a.permutation(sub_ids)
        pos = self.positions(sub_ids)
        if pos.min() < 0:
            return None
        seen = np.zeros(self.n, dtype=bool)
        seen[pos] = True
        return pos if seen.all() else None     # n known ids covering all n

    def positions(self, sub_ids: np.ndarray | pa.ChunkedArray) -> np.ndarray:
        """Position of each submitted id in the key, -1 where it is not a test id.

        ``sub_ids`` is a numpy array for integer ids, an Arrow array for text ids.
        """
        kind, a, b = self._lookup
        if kind == "text":
            return a.positions(sub_ids)
        if kind == "dense":
            rel = sub_ids - a
            # one unsigned compare catches both ends: negatives wrap to huge values
            ok = rel.view(np.uint64) < len(b)
            if ok.all():
                return b[rel]
            pos = np.full(len(sub_ids), -1, dtype=np.int64)
            pos[ok] = b[rel[ok]]
            return pos
        return a.get_indexer(sub_ids)

    @cached_property
    def public_index(self) -> np.ndarray:
        return np.flatnonzero(self.public)

    @cached_property
    def private_index(self) -> np.ndarray:
        return np.flatnonzero(~self.public)

    @cached_property
    def y_public(self) -> np.ndarray:
        return self.y[self.public_index]

    @cached_property
    def y_private(self) -> np.ndarray:
        return self.y[self.private_index]


class _TextIds:
    """Where each submitted text id is in the answer key, with no Python object per id.

    The key's ids are hashed once (64 bits of each id's bytes, read from Arrow's
    buffers) and sorted with each row's number in the hash's low bits. The test ids
    in another order sort to the same hashes, so one value sort of a submission's
    hashes (several times faster than an argsort) pairs each of its rows with a key
    row; the pairs are then compared byte for byte, so a hash collision cannot pass.
    A file that is not such a permutation (an unknown, repeated or missing id; or a
    collision, or key ids over ``8 * MAX_WORDS`` bytes) is placed row by row by
    Arrow's hash lookup, to name its problem.
    """

    MAX_WORDS = 8

    def __init__(self, key_ids: pa.Array):
        self.key_ids = key_ids
        n = len(key_ids)
        self.row_bits = max(1, (n - 1).bit_length())
        longest = pc.max(pc.binary_length(key_ids)).as_py() or 0
        self.k = max(1, -(-longest // _WORD))
        self.sorted_hashes = None
        if n and self.k <= self.MAX_WORDS:
            blocks = list(_id_word_blocks(key_ids, self.k))
            words = np.concatenate([words for _, words, _ in blocks], axis=1)
            lengths = np.concatenate([lengths for _, _, lengths in blocks])
            packed = self._with_rows(_hash_words(words, lengths))
            packed.sort()
            rows = self._rows(packed)
            packed >>= np.uint64(self.row_bits)
            # two ids sharing the 64 - row_bits kept bits (odds ~n^2 / 2^(65 - row_bits):
            # 1 key in 300 at 500,000 ids) leave this key to Arrow's lookup
            if not (packed[1:] == packed[:-1]).any():
                self.sorted_hashes, self.sorted_rows = packed, rows
                self.words, self.lengths = words, lengths

    def positions(self, ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Position of each id in the key, -1 where it is not a test id."""
        found = pc.fill_null(pc.index_in(ids, value_set=self.key_ids), -1)
        return found.to_numpy(zero_copy_only=False).astype(np.int64)

    def permutation(self, ids: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
        """The key row of each id if the ids are exactly the key's in some order; None if
        not, or if hashes collide or the key's ids are too long to hash."""
        if self.sorted_hashes is None or len(ids) != len(self.key_ids):
            return None
        packed = np.empty(len(ids), dtype=np.uint64)
        for row, words, lengths in _id_word_blocks(ids, self.k):
            packed[row:row + len(lengths)] = _hash_words(words, lengths)
        packed = self._with_rows(packed)
        packed.sort()
        rows = self._rows(packed)
        packed >>= np.uint64(self.row_bits)
        if not np.array_equal(packed, self.sorted_hashes):
            return None
        del packed
        pos = np.empty(len(ids), dtype=np.int64)
        pos[rows] = self.sorted_rows
        del rows
        # equal hashes, now equal bytes: the same length and the same first 8 k bytes (the
        # key's ids are no longer); block by block, read from Arrow's buffers again
        for row, words, lengths in _id_word_blocks(ids, self.k):
            at = pos[row:row + len(lengths)]
            if not np.array_equal(self.lengths[at], lengths) or not all(
                    np.array_equal(key_words[at], sub_words)
                    for key_words, sub_words in zip(self.words, words)):
                return None
        return pos

    def _with_rows(self, hashes: np.ndarray) -> np.ndarray:
        """The hashes with their low bits replaced by the row numbers (in place)."""
        shift = np.uint64(self.row_bits)
        hashes >>= shift
        hashes <<= shift
        hashes |= np.arange(len(hashes), dtype=np.uint64)
        return hashes

    def _rows(self, packed: np.ndarray) -> np.ndarray:
        """The row numbers kept in the low bits, as int64 (a view: they are < 2^63)."""
        return (packed & np.uint64((1 << self.row_bits) - 1)).view(np.int64)


_WORD = 8   # bytes per hashed word
_BLOCK = 1 << 16   # ids per block: the words of a block are temporary, a few MB at most
_LOW_BYTES = np.array([(1 << (8 * r)) - 1 for r in range(_WORD)] + [2**64 - 1], dtype=np.uint64)
_MIX = np.uint64(0x9E3779B97F4A7C15)   # odd, about 2^64 / golden ratio: spreads bits upwards


def _id_word_blocks(ids: pa.Array | pa.ChunkedArray, k: int):
    """Blocks of consecutive text ids: ``(first row, words, lengths)``, where ``words``
    holds the first ``8 k`` bytes of each id as ``k`` little-endian 64-bit words (zero
    past the id's end) and ``lengths`` each id's length in bytes.

    Read from Arrow's offsets and data buffers: no Python strings.
    """
    row = 0
    for chunk in ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]:
        for start in range(0, len(chunk), _BLOCK):
            block = chunk.slice(start, _BLOCK)
            yield row, *_block_words(block, k)
            row += len(block)


def _block_words(ids: pa.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    m = len(ids)
    offset_type = np.dtype(np.int64 if pa.types.is_large_string(ids.type) else np.int32)
    _, offsets, data = ids.buffers()
    off = np.frombuffer(offsets, dtype=offset_type, count=m + 1,
                        offset=ids.offset * offset_type.itemsize)
    first, end = int(off[0]), int(off[-1])
    # the block's bytes, then room for a whole word read from the last id's last word
    raw = np.zeros(end - first + _WORD * k, dtype=np.uint8)
    if end > first:
        raw[:end - first] = np.frombuffer(data, dtype=np.uint8, count=end - first,
                                          offset=first)
    lengths = np.diff(off)
    words = np.empty((k, m), dtype=np.uint64)
    width = int(lengths[0])
    if (lengths == width).all():
        # ids of one length (the usual: zero-padded numbers, hex digests): word j of id r
        # starts at byte r * width + 8 j, a strided view with nothing to gather
        for j in range(k):
            view = np.ndarray((m,), dtype="<u8", buffer=raw, offset=_WORD * j,
                              strides=(width,))
            np.bitwise_and(view, _LOW_BYTES[min(max(width - _WORD * j, 0), _WORD)],
                           out=words[j])
    else:
        starts = off[:-1] - first
        # window i: the 8 bytes from byte i on (unaligned reads, numpy copes)
        windows = np.ndarray((len(raw) - _WORD + 1,), dtype="<u8", buffer=raw, strides=(1,))
        for j in range(k):
            np.bitwise_and(windows[starts + _WORD * j],
                           _LOW_BYTES[np.clip(lengths - _WORD * j, 0, _WORD)], out=words[j])
    return words, lengths


def _hash_words(words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each id from its words and length (multiply-xorshift per word)."""
    hashes = lengths.astype(np.uint64)
    for w in words:
        hashes ^= w
        hashes *= _MIX
        hashes ^= hashes >> np.uint64(29)
    return hashes


@dataclass(frozen=True)
class Score:
    """Both boards' scores (full precision) and the predictions in key order."""

    public: float
    private: float
    predictions: np.ndarray = field(repr=False)

    def public_row_loss(self, key: AnswerKey) -> np.ndarray | None:
        """Per-row losses on the public rows (for the Ladder), or None if not decomposable."""
        if key.metric.row_loss is None:
            return None
        return key.metric.row_loss(key.y[key.public], self.predictions[key.public])


def score(data: bytes | bytearray | memoryview | str | Path, key: AnswerKey) -> Score:
    """Validate a submission and score it on the public and the private rows.

    Parameters
    ----------
    data : bytes or path
        The uploaded CSV (bytes) or a path to it.
    key : AnswerKey

    Returns
    -------
    Score

    Raises
    ------
    SubmissionError
        With a message naming what was expected and what was found; also when a
        score would not be a finite number (huge predictions overflow the metric).
    """
    preds = parse_submission(data, key)
    # huge finite predictions (1e200) overflow a metric to inf or nan, which no board can
    # rank and JSON cannot carry; refused, never counted
    with np.errstate(over="ignore", invalid="ignore"):
        if key.task == "regression" and not np.isfinite(key.metric(key.y, preds)):
            # decided on every row at once: a refusal costs nothing, so one that depended
            # on a part's score would tell whether rows are in the same part
            raise SubmissionError(_not_finite(preds, key))
        public = float(key.metric(key.y_public, preds[key.public_index]))
        private = float(key.metric(key.y_private, preds[key.private_index]))
    if not (np.isfinite(public) and np.isfinite(private)):
        # only a custom metric gets here (the built-ins are finite on every part when
        # they are on the whole); the message names no part
        raise SubmissionError(_not_finite(preds, key))
    return Score(public, private, preds)


def _not_finite(preds: np.ndarray, key: AnswerKey) -> str:
    """Why a score is not finite, naming the prediction largest in size (not a part)."""
    where = ""
    if preds.dtype.kind == "f" and len(preds):
        i = int(np.argmax(np.abs(preds)))
        where = (f"; the largest here is {preds[i]:g} (id {_clip(str(key.ids[i]), 40)}), "
                 f"which makes metric {key.metric.name!r} overflow")
    return (f"the score is not a finite number: predictions must be finite numbers of a "
            f"sensible size{where}; predict {_what_predictions(key)} on the scale of the "
            f"'{key.target}' column of train.csv")


def parse_submission(data, key: AnswerKey) -> np.ndarray:
    """Validate a submission; its predictions in the answer key's order."""
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    buf = memoryview(data) if not isinstance(data, memoryview) else data
    expected = f"{key.id_column},{key.target}"
    if len(buf) == 0 or not bytes(buf[:4096]).strip():
        raise SubmissionError(f"the file is empty; expected a header line '{expected}' and "
                              f"one row per test id ({key.n} rows), like sample_submission.csv")
    head = bytes(buf[:4])
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise SubmissionError(f"the file is {what}")
    if head.startswith(BOM):
        buf = buf[3:]
        if not bytes(buf[:4096]).strip():
            raise SubmissionError(f"the file is empty; expected a header line '{expected}' "
                                  f"and one row per test id ({key.n} rows)")
    header = _read_header(bytes(buf[:65536]), expected)
    _check_header(header, key, expected)

    try:
        tbl = _read_csv(buf, key)
    except _ARROW_ERRORS as exc:
        raise SubmissionError(_explain_arrow(str(exc), key, header, buf)) from None
    if tbl.num_rows == 0:
        raise SubmissionError(f"the file has a header but no rows; expected {key.n} rows, one "
                              f"per test id")
    ids = tbl[key.id_column]
    preds_col = tbl[key.target]
    if ids.null_count:
        raise SubmissionError(f"{_count(ids.null_count, 'row', 'has')} an empty {key.id_column!r}; every "
                              "row needs a test id")
    if key.int_ids:
        ids = ids.to_numpy(zero_copy_only=False)
    preds = _predictions(preds_col, key)
    if key.in_released_order(ids):
        return preds                     # nothing to match
    return _match(ids, preds, key)


_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError)


def _read_csv(buf: memoryview, key: AnswerKey, *, locate: bool = False) -> pa.Table:
    """Parse the rows with the column types fixed up front.

    ``locate`` reads again on one thread, keeping empty lines as rows: pyarrow then
    names the first problem's physical line ("Row #N", header = 1, blank and
    CR-only lines counted) in its error; the fast read numbers no rows.
    """
    id_type = pa.int64() if key.int_ids else pa.string()
    y_type = pa.string() if (key.classes is not None and key.classes.dtype.kind in "OUT") \
        else pa.float64()
    return pacsv.read_csv(
        pa.py_buffer(buf),
        read_options=pacsv.ReadOptions(use_threads=not locate, block_size=BLOCK_SIZE),
        parse_options=pacsv.ParseOptions(newlines_in_values=False,
                                         ignore_empty_lines=not locate),
        convert_options=pacsv.ConvertOptions(
            column_types={key.id_column: id_type, key.target: y_type},
            strings_can_be_null=False, quoted_strings_can_be_null=False,
            null_values=["", "NaN", "nan", "NA", "N/A", "null", "NULL", "None"]))


def _located(msg: str, buf: memoryview, key: AnswerKey) -> str:
    """The parse error again, from a read that names its line (the first problem's)."""
    try:
        _read_csv(buf, key, locate=True)
    except _ARROW_ERRORS as exc:
        return str(exc)
    return msg           # not reproduced: explain the first message, without a line


def _read_header(head: bytes, expected: str) -> list[str]:
    if b"\x00" in head:
        raise SubmissionError("the file contains NUL bytes: it is binary, not a CSV; expected "
                              f"text starting with the header '{expected}'")
    line = re.split(rb"\r\n|\n|\r", head, maxsplit=1)[0]     # old Macs end lines with \r
    if len(line) >= 65535:
        raise SubmissionError(f"the first line is longer than 64 KiB; expected the header "
                              f"'{expected}'")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError("the header is not UTF-8 text; save the file as UTF-8 CSV "
                              f"with the header '{expected}'") from None
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise SubmissionError(f"the header could not be read ({exc}); expected the header "
                              f"'{expected}'") from None


def _check_header(header: list[str], key: AnswerKey, expected: str) -> None:
    want = [key.id_column, key.target]
    if sorted(header) == sorted(want):
        return
    shown = _clip(",".join(header))
    if len(header) == 1 and any(d in header[0] for d in ";\t|"):
        delim = next(d for d in ";\t|" if d in header[0])
        raise SubmissionError(f"the header is {shown!r}: the file seems to use {delim!r} "
                              f"between fields; expected commas, as in '{expected}'")
    missing = [c for c in want if c not in header]
    extra = [c for c in header if c not in want]
    parts = []
    if missing:
        parts.append(f"missing column{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}")
    if extra:
        parts.append(f"unexpected column{'s' * (len(extra) > 1)} "
                     f"{', '.join(repr(_clip(c, 40)) for c in extra[:EXAMPLES])}")
    if len(header) != len(set(header)):
        parts.append("a column name repeats")
    raise SubmissionError(f"the header is {shown!r}; expected exactly '{expected}' "
                          f"({'; '.join(parts)})")


_ARROW_ROW = re.compile(r"Row #(\d+)")
_ARROW_VALUE = re.compile(r"invalid value '(.*)'", re.S)
_ARROW_COLS = re.compile(r"Expected (\d+) columns, got (\d+)")


def _explain_arrow(msg: str, key: AnswerKey, header: list[str], buf: memoryview) -> str:
    """Turn a pyarrow parse error into one line a student can act on, naming the line."""
    if "straddl" in msg:     # a record longer than the parser's block
        return (f"a line is longer than {BLOCK_SIZE // 2**20} MiB; each line should hold one "
                f"id and one prediction ({key.id_column},{key.target})")
    if not _ARROW_ROW.search(msg):
        msg = _located(msg, buf, key)
    row = _ARROW_ROW.search(msg)
    where = f"line {int(row.group(1))}" if row else "a line"
    m = _ARROW_COLS.search(msg)
    if m:
        return (f"{where} has {m.group(2)} fields; expected {m.group(1)} "
                f"({key.id_column},{key.target}) on every line")
    value = _ARROW_VALUE.search(msg)
    shown = repr(_clip(value.group(1))) if value else "a value"
    col_i = re.search(r"column #(\d+)", msg)
    col = header[int(col_i.group(1))] if col_i and int(col_i.group(1)) < len(header) else None
    if col == key.id_column:
        kind = "a whole number" if key.int_ids else "text"
        return f"{where}: id {shown} is not a valid test id (ids are {kind}, as in test.csv)"
    if col == key.target:
        return (f"{where}: prediction {shown} is not a number; expected "
                f"{_what_predictions(key)}")
    if "UTF8" in msg or "utf-8" in msg.lower() or "utf8" in msg.lower():
        return "the file is not valid UTF-8 text; save it as UTF-8 CSV"
    return f"the file could not be read as a CSV ({_clip(msg, 160)})"


def _what_predictions(key: AnswerKey) -> str:
    if key.metric.needs_proba:
        return "a probability of class 1 between 0 and 1"
    if key.classes is not None:
        return f"one of the class labels {_few(key.classes.tolist(), 12)}"
    return "a finite number"


def _predictions(col: pa.ChunkedArray, key: AnswerKey) -> np.ndarray:
    if col.null_count:
        bad = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
        raise SubmissionError(f"{_count(col.null_count, 'row', 'has')} an empty or NaN {key.target!r} "
                              f"(e.g. {_lines(bad)}); expected "
                              f"{_what_predictions(key)} on every row")
    p = col.to_numpy(zero_copy_only=False)
    # the sum is finite only if every value is (NaN and inf propagate); an overflow of huge
    # finite values only sends us to the exact check
    with np.errstate(over="ignore", invalid="ignore"):
        total = p.sum() if p.dtype.kind == "f" else 0.0
    if not np.isfinite(total):
        finite = np.isfinite(p)
        if not finite.all():
            # "nan" and "NaN" are read as empty (above); pyarrow reads "NAN", "-nan" as NaN
            bad = np.flatnonzero(~finite)
            nan = np.isnan(p[bad]).any()
            what = ("NaN or infinite" if nan and np.isinf(p[bad]).any() else
                    "NaN" if nan else "infinite")
            raise SubmissionError(f"{_count(len(bad), 'prediction', 'is')} {what} (e.g. "
                                  f"{_lines(bad)}); expected "
                                  f"{_what_predictions(key)}")
    if key.metric.needs_proba:
        if p.min() < 0 or p.max() > 1:     # two reductions first: no mask in the usual case
            bad = np.flatnonzero((p < 0) | (p > 1))
            raise SubmissionError(f"{_count(len(bad), 'prediction', 'is')} outside [0, 1] (e.g. "
                                  f"{_few(p[bad[:EXAMPLES]].tolist())} on {_lines(bad)}); metric "
                                  f"{key.metric.name!r} scores probabilities of class 1")
    elif key.classes is not None:
        ok = _in_classes(p, key.classes)
        if not ok.all():
            bad = np.flatnonzero(~ok)
            raise SubmissionError(f"{_count(len(bad), 'prediction', 'is')} not a class label (e.g. "
                                  f"{_few(p[bad[:EXAMPLES]].tolist())} on {_lines(bad)}); expected one of "
                                  f"{_few(key.classes.tolist(), 12)}")
    return p


def _in_classes(p: np.ndarray, classes: np.ndarray) -> np.ndarray:
    if p.dtype.kind == "f" and classes.dtype.kind in "iuf" and len(classes):
        lo, hi = classes.min(), classes.max()
        if np.array_equal(classes, np.arange(lo, hi + 1)):
            # labels lo..hi: in range and whole, checked by reductions first (the common case)
            if p.min() >= lo and p.max() <= hi and np.array_equal(np.floor(p), p):
                return np.ones(len(p), dtype=bool)
            return (p >= lo) & (p <= hi) & (np.floor(p) == p)
    if p.dtype.kind == "f" and classes.dtype.kind in "iuf" and len(classes) <= 64:
        ok = np.zeros(len(p), dtype=bool)
        for c in classes:      # a few classes: K vectorised compares beat a sort
            ok |= p == c
        return ok
    return np.isin(p, classes)


def _match(ids: np.ndarray | pa.ChunkedArray, preds: np.ndarray, key: AnswerKey) -> np.ndarray:
    """Reorder predictions into the key's order, refusing missing, extra or repeated ids."""
    pos = key.permutation(ids)
    if pos is None:
        pos = key.positions(ids)
        _refuse_unmatched(ids, pos, key)
    out = np.empty_like(preds)
    out[pos] = preds
    return out


def _refuse_unmatched(ids: np.ndarray | pa.ChunkedArray, pos: np.ndarray, key: AnswerKey):
    """Refuse unknown, repeated or missing ids, given each row's position in the key."""
    unknown = pos < 0
    if unknown.any():
        raise SubmissionError(f"{_count(int(unknown.sum()), 'id', 'is')} not a test id (e.g. "
                              f"{_few(_first(ids, unknown))}); submit exactly the "
                              f"ids of test.csv ({key.n} rows)")
    counts = np.bincount(pos, minlength=key.n)
    if (counts > 1).any():
        rep = key.ids[counts > 1]
        raise SubmissionError(f"{_count(len(rep), 'id', 'appears')} more than once (e.g. "
                              f"{_few(rep[:EXAMPLES].tolist())}); each test id needs exactly "
                              "one row")
    if (counts == 0).any():
        miss = key.ids[counts == 0]
        raise SubmissionError(f"{_count(len(miss), 'test id', 'is')} missing (e.g. "
                              f"{_few(miss[:EXAMPLES].tolist())}); found {len(ids)} rows, "
                              f"expected {key.n}, one per id of test.csv")


def _first(ids: np.ndarray | pa.ChunkedArray, where: np.ndarray) -> list:
    """The first few ids where ``where`` holds, as Python values (for a refusal)."""
    rows = np.flatnonzero(where)[:EXAMPLES]
    if isinstance(ids, np.ndarray):
        return ids[rows].tolist()
    return ids.take(rows).to_pylist()


def _count(n: int, noun: str, verb: str = "") -> str:
    """'1 row has' / '2 rows have' (verb given as 'has'/'is'/'appears')."""
    plural = {"has": "have", "is": "are", "appears": "appear"}
    if n == 1:
        return f"1 {noun} {verb}".rstrip()
    return f"{n} {noun}s {plural.get(verb, verb)}".rstrip()


def _lines(rows: np.ndarray) -> str:
    """'line 4' or 'lines 4, 6, 9': data row i is on line i + 2 (after the header)."""
    lines = (np.asarray(rows[:EXAMPLES]) + 2).tolist()
    return f"line{'s' * (len(rows) > 1)} {_few(lines)}" + (", ..." if len(rows) > EXAMPLES else "")


def _clip(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _few(values, k: int = EXAMPLES) -> str:
    # whole floats print as ints (7.0 -> 7), but not huge ones (1e200 has 201 digits)
    values = [int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 1e15 else v
              for v in values[:k + 1]]
    shown = ", ".join(_clip(str(v), 40) for v in values[:k])
    return shown + (", ..." if len(values) > k else "")


def round_public(value: float, decimals: int) -> float:
    """The public score as the board shows it."""
    return round(float(value), decimals)


__all__ = ["AnswerKey", "Score", "score", "parse_submission", "round_public", "SubmissionError"]
