"""Scoring speed: the pyarrow parse alone (the floor), the harness scorer (validation
included) and a typical hand-written script (pandas read_csv + merge on id + sklearn metric
per split), in the released order and shuffled, for a 1,000,000-row submission with integer
ids (multiclass, regression) and a 500,000-row one with text ids like image_0001234
(probabilities scored by roc_auc). Peak extra memory is the resident-set growth of one
scoring in a fresh process (the key's one-time indexes built first; median of 3). Writes
benchmarks/results/scoring.json.

    python -m benchmarks.bench_scoring [--rows N] [--text-rows N]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sklearn import metrics as skm

from harness.metrics import METRICS
from harness.scoring import AnswerKey, score

from .common import best_of, peak_rss, reset_peak_rss, write_result


TASKS = {"multiclass": "int", "regression": "int", "binary": "text"}
TARGETS = {"in_order_over_floor": 2.0, "shuffled_over_floor": 4.0,
           "hand_written_over_harness": 4.0, "text_peak_extra_over_file": 3.0}


def make_case(task: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(n, dtype=np.int64) * 3 + 100)   # test ids, released order
    public = rng.random(n) < 0.3
    if task == "binary":
        ids = np.array([f"image_{i:07d}" for i in ids // 3], dtype=object)
        y = (rng.random(n) < 0.4).astype(np.float64)
        pred = np.clip(0.4 * y + rng.normal(0.3, 0.2, n), 0, 1)   # ties at 0 and 1
        key = AnswerKey("id", "label", ids, y, public, METRICS["roc_auc"], task)
        sk = skm.roc_auc_score
    elif task == "multiclass":
        y = rng.integers(0, 10, n).astype(np.float64)
        pred = np.where(rng.random(n) < 0.8, y, rng.integers(0, 10, n)).astype(np.int64)
        key = AnswerKey("id", "label", ids, y, public, METRICS["accuracy"], task,
                        classes=np.arange(10, dtype=np.float64))
        sk = skm.accuracy_score
    else:
        y = rng.normal(size=n)
        pred = np.round(y + rng.normal(0, 0.5, n), 6)
        key = AnswerKey("id", "label", ids, y, public, METRICS["mse"], task)
        sk = skm.mean_squared_error
    solution = pd.DataFrame({"id": ids, "label": y, "Usage": np.where(public, "Public",
                                                                        "Private")})
    sub = pd.DataFrame({"id": ids, "label": pred})
    return key, solution, sub, sk


def to_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def hand_written(data: bytes, solution: pd.DataFrame, sk) -> tuple[float, float]:
    sub = pd.read_csv(io.BytesIO(data))
    merged = solution.merge(sub, on="id", suffixes=("_true", "_pred"))
    pub = merged[merged.Usage == "Public"]
    priv = merged[merged.Usage == "Private"]
    return sk(pub.label_true, pub.label_pred), sk(priv.label_true, priv.label_pred)


def submission(task: str, order: str, n: int):
    """The key, the solution table, the submission's bytes and sklearn's metric."""
    key, solution, sub, sk = make_case(task, n)
    if order == "shuffled":
        sub = sub.sample(frac=1, random_state=1)
    return key, solution, to_bytes(sub), sk


def measure(task: str, order: str, n: int) -> dict:
    key, solution, data, sk = submission(task, order, n)
    ours = score(data, key)
    theirs = hand_written(data, solution, sk)
    assert np.allclose([ours.public, ours.private], theirs, rtol=0, atol=1e-12), (ours, theirs)

    floor = best_of(lambda: pacsv.read_csv(pa.py_buffer(data)))
    harness_s = best_of(lambda: score(data, key))
    hand_s = best_of(lambda: hand_written(data, solution, sk), repeats=3)
    peak = peak_in_fresh_process(task, order, n)
    over_floor = harness_s / floor
    target = TARGETS["in_order_over_floor" if order == "released" else "shuffled_over_floor"]
    row = {"task": task, "ids": TASKS[task], "metric": key.metric.name, "order": order,
           "rows": n, "file_mb": round(len(data) / 2**20, 2),
           "floor_s": round(floor, 4), "harness_s": round(harness_s, 4),
           "hand_written_s": round(hand_s, 4),
           "harness_over_floor": round(over_floor, 2),
           "hand_written_over_harness": round(hand_s / harness_s, 2),
           "harness_peak_extra_mb": round(peak / 2**20, 1),
           "peak_extra_over_file": round(peak / len(data), 2)}
    row["meets_target"] = bool(over_floor <= target and (
        TASKS[task] == "int" or peak / len(data) < TARGETS["text_peak_extra_over_file"]))
    return row


def peak_in_fresh_process(task: str, order: str, n: int, runs: int = 3) -> int:
    """Peak resident-set growth (bytes) of one scoring in a new process, the median of
    ``runs``: the allocators hold nothing from earlier runs there, so memory they would
    reuse is counted; it varies by some MB from run to run with the parser's threads."""
    peaks = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_scoring", "--peak-of",
                              task, order, str(n)], check=True, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
        peaks.append(json.loads(out.stdout.splitlines()[-1])["peak_bytes"])
    return int(np.median(peaks))


def _peak_of(task: str, order: str, n: int) -> None:
    key, _, data, _ = submission(task, order, n)
    # the key's one-time work (indexes, parts) is done once per server process, not per upload
    _ = key._lookup, key.public_index, key.private_index, key.y_public, key.y_private
    gc.collect()
    base = reset_peak_rss()
    score(data, key)
    print(json.dumps({"peak_bytes": peak_rss() - base}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the int-id cases")
    parser.add_argument("--text-rows", type=int, default=500_000,
                        help="rows of the text-id (roc_auc) case")
    parser.add_argument("--peak-of", nargs=3, metavar=("TASK", "ORDER", "ROWS"),
                        help=argparse.SUPPRESS)       # the fresh process of one memory probe
    args = parser.parse_args(argv)
    if args.peak_of:
        task, order, n = args.peak_of
        return _peak_of(task, order, int(n))
    rows = []
    for task, ids in TASKS.items():
        for order in ("released", "shuffled"):
            r = measure(task, order, args.text_rows if ids == "text" else args.rows)
            rows.append(r)
            print(f"{task:10} {ids:4} ids {order:8} floor {r['floor_s']:.3f}s  harness "
                  f"{r['harness_s']:.3f}s ({r['harness_over_floor']}x floor)  hand-written "
                  f"{r['hand_written_s']:.3f}s ({r['hand_written_over_harness']}x slower)  "
                  f"peak +{r['harness_peak_extra_mb']} MB ({r['peak_extra_over_file']}x the "
                  f"file)  {'meets' if r['meets_target'] else 'MISSES'} target", flush=True)
    path = write_result("scoring", {"targets": TARGETS, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
