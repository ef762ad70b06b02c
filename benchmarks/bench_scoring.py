"""Scoring speed on a 1,000,000-row submission: the pyarrow parse alone (the floor), the
harness scorer (validation included) and a typical hand-written script (pandas read_csv +
merge on id + sklearn metric per split), for multiclass and regression, in the released
order and shuffled. Writes benchmarks/results/scoring.json.

    python -m benchmarks.bench_scoring [--rows N]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sklearn import metrics as skm

from harness.metrics import METRICS
from harness.scoring import AnswerKey, score

from .common import best_of, peak_rss, reset_peak_rss, write_result


def make_case(task: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(n, dtype=np.int64) * 3 + 100)   # test ids, released order
    public = rng.random(n) < 0.3
    if task == "multiclass":
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


def measure(task: str, order: str, n: int) -> dict:
    key, solution, sub, sk = make_case(task, n)
    if order == "shuffled":
        sub = sub.sample(frac=1, random_state=1)
    data = to_bytes(sub)
    ours = score(data, key)
    theirs = hand_written(data, solution, sk)
    assert np.allclose([ours.public, ours.private], theirs), (ours, theirs)

    floor = best_of(lambda: pacsv.read_csv(pa.py_buffer(data)))
    harness_s = best_of(lambda: score(data, key))
    hand_s = best_of(lambda: hand_written(data, solution, sk), repeats=3)
    base = reset_peak_rss()
    score(data, key)
    peak = peak_rss() - base
    return {"task": task, "order": order, "rows": n, "file_mb": round(len(data) / 2**20, 2),
            "floor_s": round(floor, 4), "harness_s": round(harness_s, 4),
            "hand_written_s": round(hand_s, 4),
            "harness_over_floor": round(harness_s / floor, 2),
            "hand_written_over_harness": round(hand_s / harness_s, 2),
            "harness_peak_extra_mb": round(peak / 2**20, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    rows = []
    for task in ("multiclass", "regression"):
        for order in ("released", "shuffled"):
            r = measure(task, order, args.rows)
            rows.append(r)
            print(f"{task:10} {order:8} floor {r['floor_s']:.3f}s  harness {r['harness_s']:.3f}s "
                  f"({r['harness_over_floor']}x floor)  hand-written {r['hand_written_s']:.3f}s "
                  f"({r['hand_written_over_harness']}x slower)  peak +{r['harness_peak_extra_mb']} MB")
    path = write_result("scoring", {"targets": {"in_order_over_floor": 2.0,
                                                "shuffled_over_floor": 4.0,
                                                "hand_written_over_harness": 4.0},
                                    "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
