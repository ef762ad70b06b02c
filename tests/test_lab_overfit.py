"""The overfitting lab: the attack's mechanics, the boards, Thresholdout, the selection study."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.errors import HarnessError
from harness.lab.attack import (KaggleBoard, LabelCsv, LadderBoard, boosting_attack,
                                majority_vote, resplit, score_batch, submission_csv)
from harness.lab.holdout import (Thresholdout, correlation_queries, holdout_reuse,
                                 reuse_verdict)
from harness.lab.overfit import (board_scores, board_standard_error, optimism, paired_gap,
                                 pick, public_sizes, selection_study, summarize)
from harness.metrics import METRICS
from harness.rules import Entry, best_public
from harness.scoring import AnswerKey, round_public, score


def binary_key(n: int, n_public: int, seed: int = 0) -> AnswerKey:
    """A random-label binary answer key with ``n_public`` public rows (ids shuffled)."""
    rng = np.random.default_rng(seed)
    public = np.zeros(n, dtype=bool)
    public[rng.choice(n, n_public, replace=False)] = True
    return AnswerKey("id", "label", rng.permutation(np.arange(n, dtype=np.int64) + 7),
                     rng.integers(0, 2, n).astype(np.float64), public, METRICS["accuracy"],
                     "binary", classes=np.array([0.0, 1.0]))


# --- the boosting attack -------------------------------------------------------------------

def test_majority_vote_by_hand():
    votes = np.array([[1, 0, 0, 1],
                      [1, 1, 0, 0],
                      [0, 1, 0, 1],
                      [0, 0, 0, 0]])
    assert majority_vote(votes, [True, True, True, False]).tolist() == [1, 1, 0, 1]
    # a tie (2 against 2) goes to 1
    assert majority_vote(votes, [True, True, True, True]).tolist() == [1, 1, 0, 1]
    assert majority_vote(votes, [True, False, False, True]).tolist() == [1, 0, 0, 1]
    assert majority_vote(votes, [False, False, False, True]).tolist() == [0, 0, 0, 0]
    # nothing kept: the constant 1
    assert majority_vote(votes, [False] * 4).tolist() == [1, 1, 1, 1]


def test_fixed_step_ladder_by_hand():
    board = LadderBoard(greater_is_better=True, step=0.01)
    shown, kept = [], []
    for public in (0.50, 0.505, 0.52, 0.525, 0.531, 0.5):
        before = board.shown
        after = board.submit(public, 0.5, np.zeros(4))
        shown.append(after)
        kept.append(board.keeps(before, after, after, 0.5))
    # a move needs a gain over 0.01; the shown score is rounded to the step
    assert shown == [0.5, 0.5, 0.52, 0.52, 0.53, 0.53]
    assert kept == [False, False, True, False, True, False]
    assert board.name == "ladder-step"


def test_parameter_free_ladder_by_hand():
    board = LadderBoard(greater_is_better=True)
    # per-row 0/1 losses on 4 public rows; accuracy = 1 - mean loss
    a = np.array([1.0, 0, 1, 0])     # acc 0.5: first submission, shown to ceil(log10 4) = 1 decimal
    b = np.array([0.0, 0, 1, 0])     # diff to a: [-1,0,0,0], mean -0.25, sd 0.5, margin 0.25: no
    c = np.array([0.0, 0, 0, 0])     # diff to a: [-1,0,-1,0], mean -0.5, margin 0.289: moves
    shown = [board.submit(1 - r.mean(), 0.5, r) for r in (a, b, c)]
    assert shown == [0.5, 0.5, 1.0]
    assert board.best_rows is c
    assert board.name == "ladder"


def test_kaggle_board_shows_the_best_rounded_and_keeps_above_chance():
    board = KaggleBoard(greater_is_better=True, decimals=2)
    out = []
    for public, private in ((0.4949, 0.51), (0.5151, 0.49), (0.512, 0.50), (0.5149, 0.5)):
        before = board.shown
        after = board.submit(public, private, np.zeros(2))
        out.append((after, board.last_own, board.keeps(before, after, board.last_own, 0.5)))
    assert out == [(0.49, 0.49, False), (0.52, 0.52, True), (0.52, 0.51, True),
                   (0.52, 0.51, True)]
    assert board.shown_private == 0.49        # the 0.52 submission's private score


def test_kaggle_board_entry_is_the_one_the_rules_pick():
    # 2 decimals: many submissions show the same score, so the tie rule decides
    rng = np.random.default_rng(4)
    board = KaggleBoard(greater_is_better=True, decimals=2)
    entries = []
    when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i, public in enumerate(rng.uniform(0.48, 0.53, 200)):
        board.submit(public, float(i), np.zeros(2))
        entries.append(Entry(id=i, team="t", submitted_at=when, public=public, private=float(i)))
        best = best_public(entries, greater_is_better=True, decimals=2)
        assert (board.shown, board.shown_private) == (round_public(best.public, 2), best.private)


def test_scores_through_the_scorer_equal_numpy():
    key = binary_key(600, 200)
    bits = np.random.default_rng(1).integers(0, 2, (5, key.n)).astype(np.int8)
    real, fast = score_batch(key, bits), score_batch(key, bits, fast=True)
    np.testing.assert_allclose(real.public, fast.public)
    np.testing.assert_allclose(real.private, fast.private)
    np.testing.assert_array_equal(real.public_rows, fast.public_rows)
    # the fast CSV template writes the same bytes as the general writer
    assert LabelCsv(key)(bits[0]) == submission_csv(key, bits[0].astype(np.int64))
    a = boosting_attack(key, 25, np.random.default_rng(3), every=5)
    b = boosting_attack(key, 25, np.random.default_rng(3), every=5, fast=True)
    pd.testing.assert_frame_equal(a, b)


def test_attack_fools_kaggle_not_the_ladder():
    key = binary_key(6000, 4000, seed=2)
    runs = boosting_attack(key, 200, np.random.default_rng(0), fast=True, every=50)
    last = runs[runs.queries == 200].set_index("board")
    assert last.loc["kaggle", "shown"] > 0.53            # error shown below 0.47
    assert abs(last.loc["kaggle", "attack_private"] - 0.5) < 0.03
    assert last.loc["ladder", "shown"] < last.loc["kaggle", "shown"] - 0.02
    assert last.loc["ladder", "kept"] < last.loc["kaggle", "kept"] / 10


def test_resplit_keeps_size_and_refuses_bad_sizes():
    key = binary_key(100, 30)
    new = resplit(key, 10, np.random.default_rng(0))
    assert new.public.sum() == 10 and key.public.sum() == 30
    assert np.array_equal(new.y, key.y)
    with pytest.raises(HarnessError, match="public-rows"):
        resplit(key, 100, np.random.default_rng(0))


def test_attack_needs_binary_accuracy():
    key = binary_key(50, 10)
    key.metric = METRICS["f1"]
    with pytest.raises(HarnessError, match="noise-binary"):
        boosting_attack(key, 5, np.random.default_rng(0))


# --- Thresholdout --------------------------------------------------------------------------

def test_thresholdout_answers_without_noise():
    mech = Thresholdout(threshold=0.05, noise=0.0, budget=2, rng=np.random.default_rng(0))
    assert mech.answer(0.60, 0.62) == 0.60          # close: the training value
    assert mech.answer(0.60, 0.50) == 0.50          # far: the holdout value, budget 1 spent
    assert mech.answer(0.70, 0.70) == 0.70
    assert not mech.exhausted
    assert mech.answer(0.30, 0.50) == 0.50          # budget 2 spent
    assert mech.exhausted
    assert mech.answer(0.60, 0.60) is None          # it stops answering at all
    assert mech.answered == 4 and mech.over_threshold == 2
    out = Thresholdout(0.05, 0.0, 1, np.random.default_rng(0)).answer_many(
        np.array([0.1, 0.1, 0.1]), np.array([0.1, 0.9, 0.9]))
    assert out[0] == 0.1 and out[1] == 0.9 and np.isnan(out[2])


def test_thresholdout_noise_is_laplace_around_the_holdout():
    mech = Thresholdout(0.0, 0.01, 10_000, np.random.default_rng(0))
    answers = mech.answer_many(np.zeros(4000), np.ones(4000))
    assert abs(answers.mean() - 1) < 0.002 and 0.008 < answers.std() / np.sqrt(2) < 0.012


class RecordingRng:
    """Stands in for numpy's Generator: records each Laplace scale asked for, draws 0."""

    def __init__(self):
        self.scales = []

    def laplace(self, loc, scale):
        self.scales.append(scale)
        return 0.0


def test_thresholdout_draws_its_noise_as_in_the_paper():
    # Dwork et al.: T^ = T + Lap(2σ) at the start; Lap(4σ) on every comparison; an
    # over-threshold answer gets Lap(σ) and a fresh T^ = T + Lap(2σ)
    rng = RecordingRng()
    mech = Thresholdout(threshold=0.1, noise=0.01, budget=5, rng=rng)
    assert rng.scales == [0.02]
    assert mech.answer(0.5, 0.55) == 0.5              # within T: the training value
    assert rng.scales == [0.02, 0.04]                 # no answer noise, T^ kept
    assert mech.answer(0.5, 0.7) == pytest.approx(0.7)
    assert rng.scales == [0.02, 0.04, 0.04, 0.01, 0.02]
    assert mech.over_threshold == 1


def test_thresholdout_keeps_its_noisy_threshold_until_it_answers_from_the_holdout():
    rng = np.random.default_rng(5)
    mech = Thresholdout(threshold=0.1, noise=0.001, budget=10, rng=rng)
    first = mech._noisy_threshold
    for _ in range(50):
        mech.answer(0.5, 0.5)
    assert mech._noisy_threshold == first and mech.over_threshold == 0
    mech.answer(0.0, 1.0)
    assert mech._noisy_threshold != first and mech.over_threshold == 1


def test_correlation_queries_are_bounded_and_map_back_to_the_correlation():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((500, 40)), rng.choice([-1.0, 1.0], 500)
    q = correlation_queries(x, y, clip=3.0)
    assert q.min() >= 0 and q.max() <= 1
    np.testing.assert_allclose(q * 6 - 3, x.T @ y / 500, atol=0.01)   # clipping is rare
    np.testing.assert_allclose(correlation_queries(x, y, clip=100.0) * 200 - 100,
                               x.T @ y / 500, atol=1e-12)


def test_thresholdout_beats_the_reused_holdout_at_every_k():
    result = holdout_reuse(600, 600, ks=[0, 10, 30], repeats=6, seed=0)
    comp = result.comparison
    assert comp.k.tolist() == [10, 30]        # every k > 0 shown
    assert comp.beats.all(), comp
    assert (comp.thresholdout_error < comp.standard_error).all()
    guarded = result.curves[result.curves.mechanism == "thresholdout"]
    assert (abs(guarded.holdout - 0.5) < 0.04).all()
    assert result.unanswered == 0 and result.budget_spent < 1000


def test_reuse_verdict_says_where_thresholdout_did_not_win_and_why():
    def table(*rows):
        return pd.DataFrame(rows, columns=["k", "standard_error", "thresholdout_error", "gain",
                                           "gain_ci", "beats", "answered"])

    won = reuse_verdict(table((5, 0.04, 0.01, 0.03, 0.01, True, 20),
                              (10, 0.06, 0.01, 0.05, 0.01, True, 20)), 0.03, 0.003)
    assert "beat the reused holdout at every k shown (k = 5..10)" in won
    # the paper code's T = 4/sqrt(n) at k = 5: the plain holdout is off by less than T
    lost = reuse_verdict(table((5, 0.042, 0.078, -0.036, 0.01, False, 20),
                               (10, 0.2, 0.19, 0.01, 0.02, False, 20),
                               (20, 0.09, 0.12, -0.03, 0.01, False, 20),
                               (30, 0.1, 0.01, 0.09, 0.01, True, 20)), 0.126, 0.03)
    assert lost.startswith("Thresholdout did NOT beat the reused holdout at every k shown")
    assert "at k = 5, the reused holdout is off by only 0.042" in lost
    assert "at k = 10" in lost and "more --repeats" in lost
    assert "at k = 20, the reused holdout is off by only 0.090" in lost   # below T + noise
    assert "k = 30" not in lost.split("shown")[1]
    leaked = reuse_verdict(table((20, 0.09, 0.12, -0.03, 0.01, False, 20)), 0.03, 0.003)
    assert "at k = 20, Thresholdout was further off (0.120 vs 0.090)" in leaked


def test_thresholdout_refuses_negative_settings():
    with pytest.raises(HarnessError, match="threshold"):
        Thresholdout(-0.1, 0.0, 1, np.random.default_rng(0))


def test_reused_holdout_overfits_and_fresh_does_not():
    result = holdout_reuse(400, 400, repeats=3, seed=0)
    std = result.curves[result.curves.mechanism == "standard"]
    top = std[std.k == std.k.max()].iloc[0]
    assert top.holdout > 0.55
    assert abs(top.fresh - 0.5) < 0.05
    assert set(result.curves.mechanism) == {"standard", "thresholdout"}


# --- the selection study -------------------------------------------------------------------

def test_pick_by_public_and_by_validation_by_hand():
    public = [0.80, 0.90, 0.90, 0.70]
    validation = [0.85, 0.80, 0.95, 0.95]
    assert pick(public, validation, True) == (1, 2)          # ties: the earlier one
    assert pick(public, validation, False) == (3, 1)         # lower is better
    assert optimism(0.9, 0.85, True) == pytest.approx(0.05)
    assert optimism(0.2, 0.25, False) == pytest.approx(0.05)


def stand_in(n: int = 1000, k: int = 20, seed: int = 0, accuracy: float = 0.75):
    """A key and ``k`` fixed prediction vectors of equal quality (errors independent)."""
    key = binary_key(n, n // 4, seed)
    rng = np.random.default_rng(seed + 1)
    preds = np.where(rng.random((k, n)) < accuracy, key.y, 1 - key.y).astype(np.int64)
    subs = [submission_csv(key, p) for p in preds]
    validation = rng.normal(accuracy, 0.02, k)
    return key, subs, validation


def test_selection_bookkeeping_matches_the_scorer():
    key, subs, validation = stand_in(n=300, k=6)
    study = selection_study(subs, validation, key, sizes=[60], repeats=4, decimals=5, seed=9)
    rng = np.random.default_rng(9)        # the study's draws, in its order
    for r in range(4):
        public, private = board_scores(subs, resplit(key, 60, rng))
        rows = study[study.repeat == r].set_index("way")
        shown = [round_public(p, 5) for p in public]
        i_pub, i_val = int(np.argmax(shown)), int(np.argmax(validation))
        assert rows.loc["public", "pick"] == i_pub
        assert rows.loc["validation", "pick"] == i_val
        for way, i in (("public", i_pub), ("validation", i_val)):
            assert rows.loc[way, "public"] == public[i]
            assert rows.loc[way, "private"] == private[i]
            assert rows.loc[way, "optimism"] == pytest.approx(public[i] - private[i])
        assert rows.loc["public", "best_private"] == private.max()
    summary = summarize(study)
    assert set(summary.pick_by) == {"public", "validation"}
    mean, half = paired_gap(study, 60, True)
    assert np.isfinite(mean) and half >= 0


def test_larger_public_set_gives_smaller_optimism():
    key, subs, validation = stand_in()
    study = selection_study(subs, validation, key, sizes=[50, 800], repeats=20, seed=0)
    s = summarize(study).set_index(["public_rows", "pick_by"])
    small, large = s.loc[(50, "public"), "optimism"], s.loc[(800, "public"), "optimism"]
    assert small > 0.04 and large < small / 2
    # picking by validation (independent of the split) is not flattered
    assert abs(s.loc[(50, "validation"), "optimism"]) < 2.5 * s.loc[(50, "validation"),
                                                                     "optimism_ci"] + 0.01


def test_board_standard_error_is_the_binomial_one_for_accuracy():
    key, subs, _ = stand_in(n=2000, k=1)
    prediction = score(subs[0], key).predictions
    acc = float(np.mean(prediction == key.y))
    for size in (100, 400):
        se = board_standard_error(prediction, key, size, draws=1000, seed=1)
        assert se == pytest.approx(np.sqrt(acc * (1 - acc) / size), rel=0.1)
    # unlike the spread over re-draws of one test set, it does not vanish as the
    # public part approaches the whole test set
    assert board_standard_error(prediction, key, 1990, draws=300) > 0.008


def test_public_sizes_adds_the_own_and_checks_fractions():
    key = binary_key(1000, 400)
    assert public_sizes(key, (0.1, 0.405, 0.8)) == [100, 400, 800]
    with pytest.raises(HarnessError, match="between 0 and 1"):
        public_sizes(key, (1.5,))


def test_selection_study_needs_two_repeats():
    key, subs, validation = stand_in(n=100, k=3)
    with pytest.raises(HarnessError, match="repeats"):
        selection_study(subs, validation, key, sizes=[20], repeats=1)


def test_overfit_stand_in_scores_equal_the_scorer():
    key, subs, _ = stand_in(n=200, k=2)
    public, private = board_scores(subs, key)
    assert public[0] == score(subs[0], key).public and private[1] == score(subs[1], key).private


# --- the commands --------------------------------------------------------------------------

def test_attack_command_json(prepared_home, tmp_path):
    out = tmp_path / "lab"
    res = CliRunner().invoke(main, ["lab", "attack", "noise-binary", "--home", str(prepared_home),
                                    "--queries", "30", "--repeats", "2", "--fast",
                                    "--public-rows", "1000", "--out", str(out),
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data["boards"]) == {"kaggle", "ladder", "ladder-step"}
    assert data["public_rows"] == 1000
    for board in data["boards"].values():
        assert 0 < board["shown_public"] < 1 and 0 < board["private"] < 1
    assert (out / "attack.html").is_file() and (out / "attack.png").is_file()


def test_attack_command_refuses_a_multiclass_competition(prepared_home, tmp_path):
    res = CliRunner().invoke(main, ["lab", "attack", "digits", "--home", str(prepared_home),
                                    "--out", str(tmp_path)])
    assert res.exit_code == 2 and "noise-binary" in res.output


def test_holdout_reuse_command(tmp_path):
    res = CliRunner().invoke(main, ["lab", "holdout-reuse", "--n", "200", "--d", "200",
                                    "--repeats", "2", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "Standard holdout" in res.output and "report:" in res.output
    assert "the reused holdout at every k shown" in res.output     # won, or where not and why
    numbers = json.loads((tmp_path / "holdout_reuse.json").read_text())["numbers"]
    assert numbers["n"] == 200 and "thresholdout" in numbers
    assert [r["k"] for r in numbers["comparison"]] == list(range(1, 11))
    assert numbers["beats_every_k"] == all(r["beats"] for r in numbers["comparison"])


def test_overfit_command_small(prepared_home, tmp_path):
    res = CliRunner().invoke(main, ["lab", "overfit", "digits", "--home", str(prepared_home),
                                    "--configs", "2", "--repeats", "3", "--fractions", "0.2",
                                    "--out", str(tmp_path), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["configurations"] == 2
    assert {"public", "private", "optimism"} <= set(data["by_public"])
    assert 0 < data["board_se"] < 0.1 and "re-draws" in data["interval"]
    assert all(row["board_se"] > 0 for row in data["optimism_curve"])
    verdicts = json.loads((tmp_path / "overfit.json").read_text())["verdicts"]
    # the ± is labelled for what it is, and one board score's standard error sits beside it
    assert any("re-draws of which rows of this one test set are public" in v for v in verdicts)
    assert any(v.startswith("Picked by the public board") and "standard error" in v
               for v in verdicts)
    assert (tmp_path / "overfit_scatter.png").is_file()
    assert (tmp_path / "overfit_optimism.png").is_file()


@pytest.mark.parametrize("command", ["overfit", "attack", "holdout-reuse"])
def test_help_has_an_example(command):
    res = CliRunner().invoke(main, ["lab", command, "--help"])
    assert res.exit_code == 0 and "Example" in res.output


def test_numpy_labs_and_their_commands_run_without_torch(prepared_home, tmp_path):
    # a finder first on sys.meta_path makes every `import torch` fail as on a machine
    # without the [train] extra (sys.modules["torch"] = None would also trip scipy, which
    # looks torch up in sys.modules)
    code = textwrap.dedent(f"""
        import importlib.abc, sys

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoTorch())
        import harness.lab.attack, harness.lab.common, harness.lab.holdout, harness.lab.overfit
        from click.testing import CliRunner
        from harness.cli import main

        runs = [["lab", "attack", "--help"], ["lab", "holdout-reuse", "--help"],
                ["lab", "overfit", "--help"],
                ["lab", "attack", "noise-binary", "--home", {str(prepared_home)!r},
                 "--queries", "4", "--repeats", "1", "--every", "2",
                 "--out", {str(tmp_path / "attack")!r}],
                ["lab", "holdout-reuse", "--n", "10", "--d", "10", "--repeats", "1",
                 "--out", {str(tmp_path / "holdout")!r}]]
        for args in runs:
            res = CliRunner().invoke(main, args, catch_exceptions=False)
            assert res.exit_code == 0, (args, res.output)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "attack" / "attack.json").is_file()
    assert (tmp_path / "holdout" / "holdout_reuse.json").is_file()


def test_overfit_lab_sweeps_an_image_competition(tmp_path):
    """`shapes` (a folder of images): the sweep trains MLPs on the pixels with image
    augmentation, each predicts test.csv's images once, and the study runs as for a table."""
    pytest.importorskip("torch")
    from harness.home import find_spec_path
    from harness.lab.overfit import overfit_lab, sweep_configs, train_sweep
    from harness.splits import prepare

    prepared = prepare(find_spec_path("shapes"), tmp_path / "home", options={"n": 300})
    configs = [c.replace(epochs=2) for c in sweep_configs(3, image=True, seed=1)]
    assert any(c.augment > 0 for c in sweep_configs(30, image=True))
    trained = train_sweep(prepared, configs)
    for t in trained:
        sub = pd.read_csv(io.BytesIO(t.submission))
        assert sub["id"].tolist() == prepared.test["id"].tolist()
    report = overfit_lab(prepared, tmp_path, repeats=3, trained=trained)
    assert {"by_public", "by_validation"} <= set(report.numbers)
