"""The training-diagnostics lab: Hessian maths, the flowchart rule, and each command on tiny settings."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from harness.cli import main  # noqa: E402
from harness.baselines.diagnosis import BIAS, FINE as LINE_FINE, OVERFIT, diagnose  # noqa: E402
from harness.lab.batch import (HELD, NO_DIFFERENCE, OPPOSITE, UNTESTED,  # noqa: E402
                               BatchBudget, batch_verdict, judge_claim)
from harness.lab.diagnose import (FINE, MISMATCH, MODEL_BIAS, OPTIMIZATION,  # noqa: E402
                                  OVERFITTING, ModelSpec, Remedy, flowchart, model_verdicts,
                                  run_diagnose, shifted_inputs)
from harness.lab.hessian import (LOCAL_MAX, LOCAL_MIN, SADDLE, FLAT_MIN, FlatLoss,  # noqa: E402
                                 classify, full_hessian, hvp, lanczos, toy)
from harness.lab.nets import LabData, fit, load_data, make_mlp  # noqa: E402
from harness.lab.optimizers import (TOY_LRS, BumpyValley, OptimizerStudy,  # noqa: E402
                                    choose_lr, optimizers_verdict, toy_sweep, toy_verdict)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one torch thread is faster, and fair to the other tests on 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------
# Hessian maths

def test_toy_saddle_matches_the_lecture_exactly():
    t = toy()
    np.testing.assert_allclose(t.gradient, [0.0, 0.0], atol=0)
    np.testing.assert_allclose(t.hessian, [[0.0, -2.0], [-2.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(t.eigenvalues, [-2.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(np.abs(t.escape_direction), [2 ** -0.5] * 2, atol=1e-12)
    assert t.verdict.kind == SADDLE and t.verdict.critical
    assert t.verdict.minimum_ratio == 0.5
    # moving along the eigenvector of -2 lowers the loss: L(t u) = (t^2/2 - 1)^2
    np.testing.assert_allclose(t.escape_loss, (t.escape_t ** 2 / 2 - 1) ** 2, atol=1e-12)
    assert np.all(np.diff(t.escape_loss[t.escape_t <= 2 ** 0.5]) < 0)
    assert t.path_loss[-1] < 1e-3 < t.path_loss[0]


def _tiny_net_loss(hidden=3, n=20, features=4, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    torch.manual_seed(seed)
    model = make_mlp(features, classes, 1, hidden, activation="tanh").double()
    return FlatLoss(model, x, y, "multiclass")


def test_full_hessian_matches_finite_differences_of_the_gradient():
    f = _tiny_net_loss()
    theta = f.theta0
    H = full_hessian(f, theta)
    n = theta.numel()
    assert H.shape == (n, n)
    torch.testing.assert_close(H, H.T, atol=1e-12, rtol=0)
    h = 1e-5
    grad = torch.func.grad(f)
    fd = torch.stack([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h)
                      for e in torch.eye(n, dtype=theta.dtype)], 1)
    torch.testing.assert_close(H, fd, atol=1e-7, rtol=1e-5)
    v = torch.randn(n, dtype=theta.dtype)
    torch.testing.assert_close(hvp(f, theta, v), H @ v, atol=1e-10, rtol=1e-8)


def test_lanczos_extremes_match_the_full_eigendecomposition():
    f = _tiny_net_loss(hidden=5, n=30)
    H = full_hessian(f, f.theta0)
    exact = np.linalg.eigvalsh(H.numpy())
    every = lanczos(lambda v: hvp(f, f.theta0, v), H.shape[0], steps=H.shape[0])
    # one start vector sees each repeated eigenvalue once: every Ritz value is exact
    assert np.abs(every[:, None] - exact[None, :]).min(1).max() < 1e-8
    assert (every[0], every[-1]) == pytest.approx((exact[0], exact[-1]), abs=1e-10)
    few = lanczos(lambda v: hvp(f, f.theta0, v), H.shape[0], steps=25)
    assert len(few) <= 25
    assert few[0] == pytest.approx(exact[0], abs=1e-6 * abs(exact).max())
    assert few[-1] == pytest.approx(exact[-1], rel=1e-6)


@pytest.mark.parametrize("eigs, grad, kind, critical, ratio", [
    ([1.0, 2.0, 3.0], 0.0, LOCAL_MIN, True, 1.0),
    ([-1.0, -2.0], 1e-6, LOCAL_MAX, True, 0.0),
    ([-1.0, 2.0], 0.0, SADDLE, True, 0.5),
    ([1e-9, 2.0], 0.0, FLAT_MIN, True, 1.0),
    ([1.0, 2.0], 0.01, LOCAL_MIN, False, 1.0),
])
def test_hessian_classify(eigs, grad, kind, critical, ratio):
    v = classify(eigs, grad)
    assert (v.kind, v.critical) == (kind, critical)
    assert v.minimum_ratio == pytest.approx(ratio)
    assert v.positive + v.negative + v.flat == len(eigs)


def test_hessian_flat_eigenvalues_do_not_vote_in_the_minimum_ratio():
    # 9 positive, 5 negative curvatures and 252 near-zero ones (as a trained tanh net has)
    eigs = np.r_[np.linspace(0.05, 1.4, 9), -np.linspace(0.004, 0.037, 5),
                 np.linspace(-1e-7, 1e-6, 252)]
    v = classify(eigs, 1e-5)
    assert (v.positive, v.negative, v.flat) == (9, 5, 252)
    assert v.kind == SADDLE and v.minimum_ratio == pytest.approx(9 / 14)


def test_hessian_flat_tolerance_follows_the_spectrum_and_the_gradient():
    # a separated-data region: everything tiny, -1.3e-6 next to a top curvature of 3.9e-5
    # at a gradient norm of 3.2e-7 is too small for its sign to mean anything
    eigs = np.r_[3.94e-5, 1.1e-5, 7.4e-6, -1.3e-6, -6.7e-7, np.full(20, 1e-9)]
    v = classify(eigs, 3.2e-7)
    assert v.negative == 0 and v.kind == FLAT_MIN
    assert v.flat_tol == pytest.approx(np.sqrt(3.94e-5 * 3.2e-7))
    # the same shape of spectrum at a true critical point (gradient 0): a saddle
    assert classify(eigs, 0.0).kind == SADDLE
    # units do not matter: the spectrum and the gradient scaled together give the same verdict
    big = classify(eigs * 1e6, 3.2e-7 * 1e6)
    assert (big.positive, big.negative, big.flat) == (v.positive, v.negative, v.flat)
    # and a clear negative curvature at a small gradient stays a saddle
    assert classify([-0.037, 0.2, 1.43, 1e-9], 1.1e-5).kind == SADDLE
    every_flat = classify([0.0, 0.0], 0.0)
    assert math.isnan(every_flat.minimum_ratio) and every_flat.flat == 2


# ---------------------------------------------------------------------------------------
# the flowchart rule, on constructed loss tables

def _table(*rows):
    columns = ["model", "params", "train_loss", "val_loss", "shifted_loss"]
    return pd.DataFrame(rows, columns=columns[:max(4, max(map(len, rows), default=4))])


@pytest.mark.parametrize("table, kind", [
    (_table(("linear", 10, 0.30, 0.35), ("20-layer", 100, 0.10, 0.15),
            ("56-layer", 300, 0.60, 0.65)), OPTIMIZATION),
    (_table(("linear", 10, 0.30, 0.35), ("deep", 300, math.nan, math.nan)), OPTIMIZATION),
    (_table(("linear", 10, 1.9, 1.95), ("mlp", 100, 1.5, 1.6), ("big", 300, 1.2, 1.3)),
     MODEL_BIAS),
    (_table(("linear", 10, 0.20, 0.40), ("mlp", 100, 0.01, 0.25), ("big", 300, 0.001, 0.9)),
     OVERFITTING),
    (_table(("linear", 10, 0.20, 0.25), ("mlp", 100, 0.05, 0.09)), FINE),
    # training loss first: a bigger net training worse (0.15 vs 0.01) but still low is not
    # an optimization issue; its validation loss 0.9 is overfitting
    (_table(("small", 100, 0.01, 0.3), ("big", 300, 0.15, 0.9)), OVERFITTING),
    # the 256x256 MLP on digits: a gap of 5% of ln 10, but 60x the training loss
    (_table(("linear", 650, 0.3, 0.35), ("2x256", 85002, 0.002, 0.12)), OVERFITTING),
    # validation fine, the shifted rows far worse: mismatch
    (_table(("linear", 10, 0.3, 0.33, 0.5), ("mlp", 100, 0.05, 0.08, 1.5)), MISMATCH),
    (_table(("linear", 10, 0.3, 0.33, 0.35), ("mlp", 100, 0.05, 0.08, 0.1)), FINE),
    (_table(("mlp", 100, 0.01, 0.9, 2.0)), OVERFITTING),     # overfitting decides first
])
def test_flowchart_verdicts(table, kind):
    d = flowchart(table, null_loss=2.3)
    assert d.kind == kind
    assert d.lines and all(isinstance(line, str) for line in d.lines)


@pytest.mark.parametrize("train, val", [(2.0, 2.1), (0.6, 0.62), (0.4, 0.45), (0.01, 0.9),
                                        (0.002, 0.12), (0.05, 0.09), (0.3, 0.5),
                                        (0.001, 0.03)])
def test_flowchart_and_the_baselines_line_share_one_set_of_thresholds(train, val):
    lab = flowchart(_table(("net", 100, train, val)), null_loss=math.log(10)).kind
    line = diagnose(train, val, math.log(10))
    assert line.startswith({MODEL_BIAS: BIAS, OVERFITTING: OVERFIT, FINE: LINE_FINE}[lab])


def test_model_verdicts_judge_each_model_against_the_smaller_ones():
    table = _table(("linear", 10, 1.5, 1.6), ("mlp", 100, 0.05, 0.09), ("big", 300, 0.001, 0.5),
                   ("deep", 400, 2.2, 2.2))
    assert model_verdicts(table, 2.3) == [MODEL_BIAS, FINE, OVERFITTING, OPTIMIZATION]
    assert flowchart(table, 2.3).kind == OPTIMIZATION      # the biggest is the one diagnosed


def test_flowchart_names_the_offending_pair_and_the_better_validator():
    d = flowchart(_table(("20-layer", 100, 0.10, 0.15), ("56-layer", 300, 0.60, 0.65)), 2.3)
    assert "56-layer" in d.lines[0] and "20-layer" in d.lines[0]
    d = flowchart(_table(("small", 10, 0.2, 0.3), ("big", 300, 0.001, 0.9)), 2.3)
    assert any("small" in line for line in d.lines)
    assert "the floor, 2%" in d.lines[0]
    d = flowchart(_table(("mlp", 100, 0.05, 0.08, 1.5)), 2.3)
    assert "shifted rows" in d.lines[0] and "1.5" in d.lines[0]
    bias = flowchart(_table(("a", 10, 0.69, 0.7), ("b", 100, 0.69, 0.7)), 0.69)
    assert bias.kind == MODEL_BIAS and "do not lower" in bias.lines[1]
    with pytest.raises(ValueError):
        flowchart(_table(), 1.0)


def _batch_tables(val_small, val_large, train=(1.0, 1.0, 1.0), seeds=((0.0, 0.0),),
                  losses=(0.01, 0.01, 0.01)):
    """Per-seed and mean tables for batch sizes 1, 10, 100: ``seeds`` holds per-seed offsets
    of the (small, large) validation accuracies."""
    rows = []
    for k, (ds, dl) in enumerate(seeds):
        for b, tr, loss, va in zip((1, 10, 100), train, losses,
                                   (val_small + ds, (val_small + val_large) / 2, val_large + dl)):
            rows.append({"batch_size": b, "seed": k, "updates": 50, "epochs": 0.5 * b,
                         "updates_per_epoch": 100 // b, "ms_per_update": 1.0 + b / 100,
                         "sec_per_epoch": (1.0 + b / 100) / b, "training_loss": loss,
                         "validation_loss": 0.2, "training_accuracy": tr,
                         "validation_accuracy": va})
    per_seed = pd.DataFrame(rows)
    table = per_seed.drop(columns="seed").groupby("batch_size").mean().reset_index()
    table["validation_accuracy_sd"] = per_seed.groupby("batch_size")["validation_accuracy"].std(
        ).to_numpy()
    table[["updates", "updates_per_epoch"]] = table[["updates", "updates_per_epoch"]].astype(int)
    return table, per_seed


@pytest.mark.parametrize("val_small, val_large, seeds, outcome", [
    (0.95, 0.85, ((0.0, 0.0),), HELD),
    (0.85, 0.95, ((0.0, 0.0),), OPPOSITE),
    (0.95, 0.94, ((0.0, 0.0),), NO_DIFFERENCE),      # within twice the SE on 1,000 rows
    # 0.05 apart on average, but the seeds disagree wildly: within the noise
    (0.95, 0.90, ((0.2, -0.2), (-0.2, 0.2)), NO_DIFFERENCE),
])
def test_judge_claim_against_the_noise(val_small, val_large, seeds, outcome):
    table, per_seed = _batch_tables(val_small, val_large, seeds=seeds)
    claim = judge_claim(table, per_seed, n_validation=1000, null_loss=2.3)
    assert claim["outcome"] == outcome
    assert (claim["small"], claim["large"]) == (1, 100)
    assert claim["difference"] == pytest.approx(val_small - val_large)


def test_judge_claim_leaves_out_what_did_not_converge():
    # batch 1 trained less well, batch 100 kept a high training loss: neither is compared
    table, per_seed = _batch_tables(0.95, 0.5, train=(0.9, 1.0, 1.0), losses=(0.3, 0.01, 1.5))
    claim = judge_claim(table, per_seed, n_validation=1000, null_loss=2.3)
    assert claim["converged"] == [10] and claim["not_converged"] == [1, 100]
    assert claim["outcome"] == UNTESTED


def test_batch_verdict_states_budget_convergence_claim_and_the_sizes_used():
    table, per_seed = _batch_tables(0.95, 0.95, train=(0.9, 1.0, 1.0))
    claim = judge_claim(table, per_seed, n_validation=180, null_loss=2.3)
    lines = batch_verdict(table, claim, BatchBudget("updates", 50), n_train=100,
                          n_validation=180, optimizer="sgd", lr=0.1, seeds=1, network="1x8")
    text = "\n".join(lines)
    assert "100x the rows for 2.0x the time" in lines[0]
    assert "50 updates for every batch size" in text and "batch 1 sees 0.5 epochs" in text
    assert "Not converged" in text and "batch 1;" in text
    assert "did not show here" in text and "batch 10 vs" in text and "batch 100" in text
    assert lines[-1].startswith("Caveat: batch sizes 1, 10 and 100 (the full training set) only")
    lines = batch_verdict(table, claim, BatchBudget("epochs", 3), n_train=100, n_validation=180,
                          optimizer="sgd", lr=0.1, seeds=1, network="1x8")
    assert any("3 epochs for every batch size, so batch 1 makes 50 updates" in x for x in lines)
    with pytest.raises(ValueError, match="updates, epochs"):
        BatchBudget("steps", 3)


def test_optimizers_toy_story_holds_over_the_whole_rate_grid_not_one_hand_set_rate():
    valley = BumpyValley()
    assert any(m < valley.c for m in valley.local_minima_x())
    grid, table, paths = toy_sweep(valley, names=("sgd", "momentum", "adam"), steps=300)
    assert sorted(grid.lr.unique()) == sorted(TOY_LRS) and len(grid) == 3 * len(TOY_LRS)
    sgd = grid[grid.optimizer == "SGD"]
    # plain gradient descent: stable exactly below 2/b, and over the bump at no stable rate
    assert (sgd.diverged == (sgd.lr > 2 / valley.b)).all()
    assert not sgd.crossed_bump.any()
    momentum = grid[(grid.optimizer == "SGD + momentum") & ~grid.diverged]
    assert momentum.crossed_bump.sum() >= 3
    # one rate per optimizer, chosen by the same rule, and the story at those rates
    assert table.optimizer.tolist() == ["SGD", "SGD + momentum", "Adam"]
    assert set(table.lr) <= set(TOY_LRS) and grid.chosen.sum() == 3
    crossed = dict(zip(table["optimizer"], table["crossed_bump"]))
    assert crossed == {"SGD": False, "SGD + momentum": True, "Adam": True}
    assert all(p.shape == (301, 2) for p in paths.values())
    lines = toy_verdict(table, grid, valley)
    assert any("SGD at 0 of" in line for line in lines)


def test_optimizers_choose_lr_takes_the_best_mean_validation_and_never_a_diverged_rate():
    grid = pd.DataFrame({
        "optimizer": ["SGD"] * 3 + ["Adam"] * 3,
        "lr": [0.01, 0.1, 1.0, 1e-4, 1e-3, 1e-2],
        "val_acc": [0.80, 0.90, np.nan, 0.90, 0.90, 0.70],
        "val_loss": [0.6, 0.3, np.nan, 0.35, 0.30, 0.9],
    })
    assert grid.lr[choose_lr(grid, True)].tolist() == [0.1, 1e-3]   # Adam: tie -> lower loss
    assert grid.lr[choose_lr(grid, False)].tolist() == [0.1, 1e-3]


def test_optimizers_verdict_reports_mean_and_sd_and_the_grid_edge():
    table = pd.DataFrame([
        {"optimizer": "SGD", "lr": 0.3, "at_grid_edge": True, "train_loss": 0.2,
         "train_loss_sd": 0.01, "val_loss": 0.3, "val_loss_sd": 0.02, "train_acc": 0.9,
         "train_acc_sd": 0.01, "val_acc": 0.90, "val_acc_sd": 0.01},
        {"optimizer": "Adam", "lr": 0.003, "at_grid_edge": False, "train_loss": 0.05,
         "train_loss_sd": 0.005, "val_loss": 0.2, "val_loss_sd": 0.01, "train_acc": 0.99,
         "train_acc_sd": 0.002, "val_acc": 0.95, "val_acc_sd": 0.01}])
    study = OptimizerStudy(table, pd.DataFrame(), {}, (0, 1, 2))
    lines = optimizers_verdict(study, (0.3, 1, 3))
    assert "by the mean final validation accuracy over 3 seeds" in lines[0]
    assert "SGD 0.3" in lines[0] and "Adam 0.003" in lines[0]
    assert lines[1].startswith("At the edge of its grid") and "SGD" in lines[1]
    assert "Adam 0.05 ± 0.005" in lines[2]
    assert "best Adam 0.95 ± 0.01, worst SGD 0.9 ± 0.01" in lines[3]
    assert "larger than twice the seeds' spread" in lines[3]


# ---------------------------------------------------------------------------------------
# data and the training loop

def test_load_data_encodes_like_the_baselines_and_fit_records_every_epoch(digits, prepared_home):
    from harness.home import load_prepared

    data = load_data(digits)
    assert data.x_train.shape == (len(digits.train), 64) and data.n_outputs == 10
    assert data.x_train.min() == 0 and data.x_train.max() == 1   # an image: scaled as a whole
    cancer = load_data(load_prepared(prepared_home, "breast-cancer"))
    assert cancer.x_train.mean(0).abs().max() < 1e-4          # a table: standardized
    assert data.null_loss() == pytest.approx(math.log(10), rel=0.01)
    small = data.subset(60)
    torch.manual_seed(0)
    hist = fit(make_mlp(64, 10, 1, 8), small, epochs=3, batch_size=16, optimizer="adam")
    assert len(hist.train_loss) == 4 and hist.updates == 3 * 4
    assert hist.train_loss[-1] < hist.train_loss[0]


def test_regression_data_has_one_output(prepared_home):
    from harness.home import load_prepared

    data = load_data(load_prepared(prepared_home, "fertility"))
    assert isinstance(data, LabData) and data.n_outputs == 1 and not data.is_classification
    assert data.null_loss() == pytest.approx(1.0, rel=1e-6)   # the target is standardized


# ---------------------------------------------------------------------------------------
# the commands, on tiny settings

def _run(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _report(out, name):
    assert (out / f"{name}.html").is_file() and (out / f"{name}.md").is_file()
    return json.loads((out / f"{name}.json").read_text())


def test_diagnose_command(prepared_home, tmp_path):
    out = tmp_path / "lab"
    text = _run(["lab", "diagnose", "digits", "--home", str(prepared_home), "--out", str(out),
                 "--model", "0", "--model", "1x4", "--epochs", "2", "--seeds", "2",
                 "--train-rows", "80", "--shift", "2"])
    report = _report(out, "diagnose-default")
    numbers = report["numbers"]
    assert numbers["verdict"] in (MODEL_BIAS, OPTIMIZATION, OVERFITTING, MISMATCH, FINE)
    assert len(numbers["per_seed"]) == 2
    assert f"Verdict: {numbers['verdict'].upper()}" in text
    assert numbers["thresholds"]["high_train"] == 0.2 and report["settings"]["shift"] == 2
    assert all(m["shifted_loss"] > 0 and "verdict" in m for m in numbers["models"])
    assert (out / "diagnose-default.png").stat().st_size > 0
    assert "report:" in text
    bad = CliRunner().invoke(main, ["lab", "diagnose", "digits", "--home", str(prepared_home),
                                    "--out", str(out), "--model", "0", "--shift", "8"])
    assert bad.exit_code == 2 and "1 to 7 pixels" in bad.output


def test_shifted_inputs_move_images_by_pixels_and_tables_by_standard_deviations(
        prepared_home, digits):
    from harness.home import load_prepared

    data = load_data(digits)
    moved = shifted_inputs(data, 2).reshape(-1, 8, 8)
    images = data.x_val.reshape(-1, 8, 8)
    assert torch.equal(moved[:, 2:, 2:], images[:, :6, :6])
    assert moved[:, :2, :].abs().sum() == 0 and moved[:, :, :2].abs().sum() == 0
    cancer = load_data(load_prepared(prepared_home, "breast-cancer"))
    assert torch.allclose(shifted_inputs(cancer, 1.5), cancer.x_val + 1.5)
    with pytest.raises(ValueError, match="1 to 7 pixels"):
        shifted_inputs(data, 0.4)


def test_run_diagnose_retries_an_overfitting_net_with_dropout_and_weight_decay(digits):
    from harness.lab.diagnose import Budget

    data = load_data(digits).subset(150)
    budget = Budget(epochs=30, batch_size=32, lr=1e-2)
    result = run_diagnose(data, [ModelSpec(0, 0), ModelSpec(1, 128)], budget, seeds=(0,))
    assert result.diagnosis.kind == OVERFITTING
    before, after = result.table.iloc[-1], result.remedy.iloc[0]
    assert after["model"] == "1x128 relu +dropout 0.5 +wd 0.001"
    assert after["params"] == before["params"]
    assert after["gap"] < 0.9 * before["gap"]            # regularization closes the gap
    assert "the gap shrinks" in result.diagnosis.lines[-1]
    assert set(result.per_seed["model"]) == {"linear (reference)", "1x128 relu", after["model"]}
    assert after["model"] in result.curves
    skipped = run_diagnose(data, [ModelSpec(1, 128)], budget, seeds=(0,), remedy=Remedy(0, 0))
    assert skipped.diagnosis.kind == OVERFITTING and skipped.remedy is None


def test_dropout_is_active_in_training_only_and_fit_stops_at_max_updates(digits):
    torch.manual_seed(0)
    net = make_mlp(64, 10, 2, 16, dropout=0.5)
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 2
    x = torch.rand(4, 64)
    assert not torch.equal(net(x), net(x))          # training mode: a new mask each call
    net.eval()
    assert torch.equal(net(x), net(x))
    with pytest.raises(ValueError, match="dropout"):
        make_mlp(64, 10, 1, 8, dropout=1.0)
    small = load_data(digits).subset(48)
    hist = fit(make_mlp(64, 10, 1, 8), small, epochs=10, batch_size=16, max_updates=7)
    assert hist.updates == 7 and hist.at_update == [0, 3, 6, 7]
    hist = fit(make_mlp(64, 10, 1, 8), small, epochs=10, batch_size=16, eval_every=4)
    assert hist.at_update == [0, 12, 24, 30] and len(hist.epoch_seconds) == 4


def test_diagnose_optimization_preset_reproduces_on_tiny_settings(prepared_home, tmp_path):
    out = tmp_path / "lab"
    text = _run(["lab", "diagnose", "breast-cancer", "--preset", "optimization", "--home",
                 str(prepared_home), "--out", str(out), "--epochs", "8", "--seeds", "2"])
    report = _report(out, "diagnose-optimization")
    assert report["numbers"]["verdict"] == OPTIMIZATION, text
    assert report["numbers"]["per_seed"] == [OPTIMIZATION, OPTIMIZATION]
    assert (out / "diagnose-optimization.png").is_file()


def test_diagnose_prepares_a_missing_competition_and_refuses_a_bad_model(home, tmp_path):
    out = tmp_path / "lab"
    text = _run(["lab", "diagnose", "breast-cancer", "--home", str(home), "--out", str(out),
                 "--model", "0", "--epochs", "1", "--seeds", "1"])
    assert "prepared 'breast-cancer'" in text
    bad = CliRunner().invoke(main, ["lab", "diagnose", "breast-cancer", "--home", str(home),
                                    "--model", "4xx", "--out", str(out)])
    assert bad.exit_code == 2 and "DEPTHxWIDTH" in bad.output


@pytest.mark.parametrize("max_full, method", [(3000, "full"), (10, "lanczos")])
def test_hessian_command(prepared_home, tmp_path, max_full, method):
    out = tmp_path / "lab"
    text = _run(["lab", "hessian", "--home", str(prepared_home), "--out", str(out),
                 "--hidden", "2", "--seeds", "2", "--pretrain-max", "5", "--gradnorm-iters", "5",
                 "--train-rows", "60", "--max-full", str(max_full)])
    report = _report(out, "hessian")
    assert report["numbers"]["toy"]["eigenvalues"] == pytest.approx([-2.0, 2.0])
    assert report["numbers"]["toy"]["kind"] == SADDLE
    points = report["numbers"]["points"]
    assert len(points) == 2
    assert f"[{method} Hessian]" in text
    assert "neither make a saddle nor vote in the minimum ratio" in text
    for p in points:
        assert f"{p['positive']} positive, {p['negative']} negative, {p['flat']} flat" in text
        if method == "full":    # every eigenvalue is counted once
            assert p["positive"] + p["negative"] + p["flat"] == p["params"]
    assert (out / "hessian-toy.png").is_file() and (out / "hessian-network.png").is_file()


def test_batch_command_gives_every_batch_size_the_same_updates(prepared_home, tmp_path):
    out = tmp_path / "lab"
    result = CliRunner().invoke(main, [
        "lab", "batch", "digits", "--home", str(prepared_home), "--out", str(out),
        "--batch-sizes", "1,16,full", "--updates", "12", "--train-rows", "48", "--seeds", "2",
        "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)      # the progress bar is on stderr
    assert numbers["budget"] == "updates" and numbers["updates"] == 12
    rows = numbers["rows"]
    assert [r["batch_size"] for r in rows] == [1, 16, 48]
    assert [r["updates"] for r in rows] == [12, 12, 12]       # not 48, 3 and 1
    assert [r["epochs"] for r in rows] == [0.25, 4, 12]
    assert all(0 <= r["validation_accuracy"] <= 1 and r["validation_accuracy_sd"] is not None
               for r in rows)
    assert numbers["claim"]["outcome"] in (HELD, OPPOSITE, NO_DIFFERENCE, UNTESTED)
    report = _report(out, "batch")
    assert report["verdicts"][-1].startswith("Caveat: batch sizes 1, 16 and 48 (the full")
    assert (out / "batch.png").is_file()


def test_batch_command_epochs_budget_as_before(prepared_home, tmp_path):
    out = tmp_path / "lab"
    text = _run(["lab", "batch", "digits", "--home", str(prepared_home), "--out", str(out),
                 "--batch-sizes", "1,16,full", "--budget", "epochs", "--epochs", "1",
                 "--train-rows", "48", "--seeds", "1"])
    rows = _report(out, "batch")["numbers"]["rows"]
    assert [r["batch_size"] for r in rows] == [1, 16, 48]
    assert [r["updates"] for r in rows] == [48, 3, 1]
    assert "1 epoch for every batch size, so batch 1 makes 48 updates" in text
    assert "The lecture's claim" in text


def test_optimizers_command(prepared_home, tmp_path):
    out = tmp_path / "lab"
    text = _run(["lab", "optimizers", "digits", "--home", str(prepared_home), "--out", str(out),
                 "--epochs", "1", "--depth", "1", "--width", "8", "--toy-steps", "300",
                 "--train-rows", "64", "--seeds", "2", "--lr-factors", "1,10"])
    numbers = _report(out, "optimizers")["numbers"]
    assert len(numbers["rows"]) == 6 and len(numbers["toy"]) == 6
    assert len(numbers["grid"]) == 12 and len(numbers["toy_grid"]) == 6 * len(TOY_LRS)
    for row in numbers["rows"]:
        rates = [g for g in numbers["grid"] if g["optimizer"] == row["optimizer"]]
        best = max(r["val_acc"] for r in rates)
        assert row["val_acc"] == best and row["val_acc_sd"] >= 0
        assert row["at_grid_edge"]          # a 2-rate grid: every pick is at an edge
    assert "mean ± sd over the 2 seeds" in text
    assert "rolled past the bump" in text and "SGD at 0 of" in text
    for name in ("optimizers.png", "optimizers-grid.png", "optimizers-toy.png"):
        assert (out / name).is_file()
    bad = CliRunner().invoke(main, ["lab", "optimizers", "digits", "--home", str(prepared_home),
                                    "--lr-factors", "1,-3", "--out", str(out)])
    assert bad.exit_code == 2 and "--lr-factors" in bad.output


def test_help_has_examples():
    for cmd in ("diagnose", "hessian", "batch", "optimizers"):
        assert "Example" in _run(["lab", cmd, "--help"])


# ---------------------------------------------------------------------------------------
# image competitions: diagnose on pixel features, the augmentation lab

@pytest.fixture(scope="module")
def shapes_home(tmp_path_factory):
    from harness.home import find_spec_path
    from harness.splits import prepare

    home = tmp_path_factory.mktemp("shapes") / "home"
    prepare(find_spec_path("shapes"), home, options={"n": 300})
    return home


def test_diagnose_reads_an_image_competition_as_pixels(shapes_home, tmp_path):
    from harness.home import load_prepared
    from harness.lab.diagnose import shifted_inputs

    data = load_data(load_prepared(shapes_home, "shapes"))
    assert data.x_train.shape == (180, 3 * 32 * 32) and data.channels == 3
    assert data.image_side == 32 and float(data.x_train.max()) <= 1
    moved = shifted_inputs(data, 2).reshape(-1, 3, 32, 32)
    original = data.x_val.reshape(-1, 3, 32, 32)
    assert torch.equal(moved[:, :, 2:, 2:], original[:, :, :30, :30])
    assert float(moved[:, :, :2].abs().sum()) == 0
    r = CliRunner().invoke(main, ["lab", "diagnose", "shapes", "--home", str(shapes_home),
                                  "--model", "0", "--model", "1x16", "--epochs", "2",
                                  "--seeds", "1", "--shift", "2", "--out", str(tmp_path)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    numbers = json.loads((tmp_path / "diagnose-default.json").read_text())
    assert numbers["numbers"]["verdict"] in {MODEL_BIAS, OPTIMIZATION, "overfitting", MISMATCH,
                                             FINE}


def test_augment_lab_runs_three_augmentations_and_scores_both_boards(shapes_home, tmp_path):
    from harness.baselines import BaselineConfig
    from harness.home import load_prepared
    from harness.lab.augment import augment_lab, lab_configs

    base = BaselineConfig(model="cnn", hidden=(4, 8), epochs=1, batch_size=32)
    configs = lab_configs(base)
    assert [c.augment for c in configs.values()] == [0.0, 0.5, 0.5]
    assert [c.flip for c in configs.values()] == ["off", "auto", "on"]
    # a base with augmentation of its own (shapes' strong preset) keeps its strength
    own = lab_configs(base.replace(augment=0.25))
    assert [c.augment for c in own.values()] == [0.0, 0.25, 0.25]
    report = augment_lab(load_prepared(shapes_home, "shapes"), tmp_path, base=base)
    runs = report.numbers["runs"]
    assert [r["run"] for r in runs] == ["none", "label-safe", "label-breaking"]
    assert [r["flips"] for r in runs] == ["no", "no", "yes"]       # shapes is not flip-safe
    for r in runs:
        assert 0 <= r["public"] <= 1 and 0 <= r["private"] <= 1
    assert all(p.is_file() for p in report.plots) and len(report.plots) == 3
    assert any("flip" in line.lower() for line in report.verdicts)
    with pytest.raises(Exception, match="table competition"):
        from harness.splits import prepare
        from harness.home import find_spec_path

        augment_lab(prepare(find_spec_path("breast-cancer"), tmp_path / "h"), tmp_path)


def test_augment_verdicts_call_a_difference_inside_its_interval_a_tie():
    # the measured shapes run: 0.963 vs 0.968 on 1,002 images is noise, 0.968 vs 0.78 is not
    import numpy as np
    import pandas as pd

    from harness.lab.augment import _verdicts
    from harness.metrics import get_metric
    from harness.uncertainty import paired_difference, replicates

    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 1002)

    def predictions(wrong):
        p = y.copy()
        p[wrong] = (p[wrong] + 1) % 6
        return p

    # 20 rows only "none" gets wrong, 15 only "label-safe" does: 5 rows apart, 35 disagreeing
    runs = {"none": predictions(np.arange(37)), "label-safe": predictions(np.arange(20, 52)),
            "label-breaking": predictions(np.arange(220))}
    metric = get_metric("accuracy")
    reps = {name: replicates(metric, y, p) for name, p in runs.items()}
    diff, half = paired_difference(reps["label-safe"], reps["none"])
    assert diff == pytest.approx(5 / 1002) and 0 < half and diff < half
    table = pd.DataFrame([{"run": name, "validation": float(reps[name][0]), "public": 0.5,
                           "private": 0.5, "train_loss": loss, "val_loss": 0.56}
                          for name, loss in zip(runs, (0.14, 0.36, 0.58))])
    lines = _verdicts(table, reps, False, "accuracy", True)
    assert "tied" in lines[1] and "helps" not in lines[1]
    assert "none 0.420, label-safe 0.200" in lines[2] and "harder to memorize" in lines[2]
    assert lines[3].startswith("Flipping breaks labels")
    runs["none"] = predictions(np.arange(120))
    reps["none"] = replicates(metric, y, runs["none"])
    table.loc[0, "validation"] = float(reps["none"][0])
    assert "helps" in _verdicts(table, reps, False, "accuracy", True)[1]


def test_lab_augment_command_prints_json(shapes_home, tmp_path):
    r = CliRunner().invoke(main, ["lab", "augment", "shapes", "--home", str(shapes_home),
                                  "--epochs", "1", "--out", str(tmp_path), "--format", "json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{"):])
    assert [run["run"] for run in out["runs"]] == ["none", "label-safe", "label-breaking"]
    assert (tmp_path / "augment.png").is_file()
    assert (tmp_path / "augment-label-breaking-augmented.png").is_file()
