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
from harness.lab.batch import batch_verdict  # noqa: E402
from harness.lab.diagnose import (FINE, MODEL_BIAS, OPTIMIZATION, OVERFITTING,  # noqa: E402
                                  flowchart)
from harness.lab.hessian import (LOCAL_MAX, LOCAL_MIN, SADDLE, FLAT_MIN, FlatLoss,  # noqa: E402
                                 classify, full_hessian, hvp, lanczos, toy)
from harness.lab.nets import LabData, fit, load_data, make_mlp  # noqa: E402
from harness.lab.optimizers import BumpyValley, toy_trajectories  # noqa: E402


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


@pytest.mark.parametrize("eigs, grad, kind, critical", [
    ([1.0, 2.0, 3.0], 0.0, LOCAL_MIN, True),
    ([-1.0, -2.0], 1e-6, LOCAL_MAX, True),
    ([-1.0, 2.0], 0.0, SADDLE, True),
    ([1e-9, 2.0], 0.0, FLAT_MIN, True),
    ([1.0, 2.0], 0.5, LOCAL_MIN, False),
])
def test_classify(eigs, grad, kind, critical):
    v = classify(eigs, grad)
    assert (v.kind, v.critical) == (kind, critical)
    assert v.minimum_ratio == pytest.approx(np.mean(np.asarray(eigs) > 0))


# ---------------------------------------------------------------------------------------
# the flowchart rule, on constructed loss tables

def _table(*rows):
    return pd.DataFrame(rows, columns=["model", "params", "train_loss", "val_loss"])


@pytest.mark.parametrize("table, kind", [
    (_table(("linear", 10, 0.30, 0.35), ("20-layer", 100, 0.10, 0.15),
            ("56-layer", 300, 0.60, 0.65)), OPTIMIZATION),
    (_table(("linear", 10, 0.30, 0.35), ("deep", 300, math.nan, math.nan)), OPTIMIZATION),
    (_table(("linear", 10, 1.9, 1.95), ("mlp", 100, 1.5, 1.6), ("big", 300, 1.2, 1.3)),
     MODEL_BIAS),
    (_table(("linear", 10, 0.20, 0.40), ("mlp", 100, 0.01, 0.25), ("big", 300, 0.001, 0.9)),
     OVERFITTING),
    (_table(("linear", 10, 0.20, 0.25), ("mlp", 100, 0.05, 0.10)), FINE),
])
def test_flowchart_verdicts(table, kind):
    d = flowchart(table, null_loss=2.3)
    assert d.kind == kind
    assert d.lines and all(isinstance(line, str) for line in d.lines)


def test_flowchart_names_the_offending_pair_and_the_better_validator():
    d = flowchart(_table(("20-layer", 100, 0.10, 0.15), ("56-layer", 300, 0.60, 0.65)), 2.3)
    assert "56-layer" in d.lines[0] and "20-layer" in d.lines[0]
    d = flowchart(_table(("small", 10, 0.2, 0.3), ("big", 300, 0.001, 0.9)), 2.3)
    assert any("small" in line for line in d.lines)
    bias = flowchart(_table(("a", 10, 0.69, 0.7), ("b", 100, 0.69, 0.7)), 0.69)
    assert bias.kind == MODEL_BIAS and "do not lower" in bias.lines[1]
    with pytest.raises(ValueError):
        flowchart(_table(), 1.0)


def test_batch_verdict_states_what_the_numbers_show():
    def table(acc_small, acc_full):
        return pd.DataFrame([
            {"batch_size": 1, "updates_per_epoch": 100, "sec_per_epoch": 1.0,
             "ms_per_update": 10.0, "train_acc": acc_small, "val_acc": acc_small,
             "train_loss": 0.1, "val_loss": 0.2},
            {"batch_size": 100, "updates_per_epoch": 1, "sec_per_epoch": 0.02,
             "ms_per_update": 20.0, "train_acc": acc_full, "val_acc": acc_full,
             "train_loss": 0.1, "val_loss": 0.2}])
    assert "smaller batches did better" in batch_verdict(table(0.9, 0.5), 3)[2]
    assert "smaller batches did worse" in batch_verdict(table(0.5, 0.9), 3)[2]
    assert "no clear difference" in batch_verdict(table(0.9, 0.9), 3)[2]
    assert "100x the rows for 2.0x the time" in batch_verdict(table(0.9, 0.9), 3)[0]


def test_toy_trajectories_momentum_rolls_past_the_bump_plain_sgd_does_not():
    valley = BumpyValley()
    assert any(m < valley.c for m in valley.local_minima_x())
    table, paths = toy_trajectories(valley, names=("sgd", "momentum", "adam"), steps=300)
    crossed = dict(zip(table["optimizer"], table["crossed_bump"]))
    assert crossed == {"SGD": False, "SGD + momentum": True, "Adam": True}
    assert all(p.shape == (301, 2) for p in paths.values())


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
                 "--train-rows", "80"])
    report = _report(out, "diagnose-default")
    assert report["numbers"]["verdict"] in (MODEL_BIAS, OPTIMIZATION, OVERFITTING, FINE)
    assert len(report["numbers"]["per_seed"]) == 2
    assert f"Verdict: {report['numbers']['verdict'].upper()}" in text
    assert (out / "diagnose-default.png").stat().st_size > 0
    assert "report:" in text


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
    assert len(report["numbers"]["points"]) == 2
    assert f"[{method} Hessian]" in text
    assert (out / "hessian-toy.png").is_file() and (out / "hessian-network.png").is_file()


def test_batch_command(prepared_home, tmp_path):
    out = tmp_path / "lab"
    text = _run(["lab", "batch", "digits", "--home", str(prepared_home), "--out", str(out),
                 "--batch-sizes", "1,16,full", "--epochs", "1", "--train-rows", "48"])
    rows = _report(out, "batch")["numbers"]["rows"]
    assert [r["batch_size"] for r in rows] == [1, 16, 48]
    assert [r["updates_per_epoch"] for r in rows] == [48, 3, 1]
    assert "smaller batches" in text or "no clear difference" in text
    assert (out / "batch.png").is_file()


def test_optimizers_command(prepared_home, tmp_path):
    out = tmp_path / "lab"
    text = _run(["lab", "optimizers", "digits", "--home", str(prepared_home), "--out", str(out),
                 "--epochs", "1", "--depth", "1", "--width", "8", "--toy-steps", "300",
                 "--train-rows", "64"])
    numbers = _report(out, "optimizers")["numbers"]
    assert len(numbers["rows"]) == 6 and len(numbers["toy"]) == 6
    assert "Rolled past the bump" in text
    assert (out / "optimizers.png").is_file() and (out / "optimizers-toy.png").is_file()


def test_help_has_examples():
    for cmd in ("diagnose", "hessian", "batch", "optimizers"):
        assert "Example" in _run(["lab", cmd, "--help"])
