"""Each simulated team's own candidate models, trained together as one batched network.

A team in the demo tunes one model as students do: a small MLP (one hidden layer) tried
at each learning rate of a grid, every candidate with its own initialisation, batch
order and bootstrap sample of train.csv. Candidates of one team are close in quality
(the best few are near-equal), and no two teams (nor two candidates) share a file.
Training all of them as one batched network (``torch.bmm`` over the candidates, Adam
written out so that each candidate has its own learning rate) takes seconds.

The class's predictions are kept as arrays (:class:`Candidates`): the HTTP students
submit them, and :mod:`harness.redraw` re-draws the class from them without the server.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import HarnessError

HIDDEN = 32          # one hidden layer: trains in seconds, still beats the linear baseline
EPOCHS = 5
BATCH_SIZE = 256
LR = (0.005, 0.1)    # the grid's ends (log-spaced): the best rates are near-equal
GROUP = 1000         # candidates trained together at most (each holds a bootstrap sample)
PREDICT = 50         # candidates predicting together (each holds its hidden activations)


@dataclass
class Candidates:
    """Every team's candidate predictions (class labels), as the class's models made them.

    Attributes
    ----------
    test : ndarray of shape (teams, per_team, n_test)
        Predictions for test.csv, in its row order.
    validation : ndarray of shape (teams, per_team, n_validation)
        Predictions for validation.csv (students have its labels).
    val_score : ndarray of shape (teams, per_team)
        Each candidate's validation score under the competition's metric.
    names : list of list of str
        A short description of each team's candidates.
    """

    test: np.ndarray
    validation: np.ndarray
    val_score: np.ndarray
    names: list[list[str]]

    @property
    def teams(self) -> int:
        return self.test.shape[0]

    @property
    def per_team(self) -> int:
        return self.test.shape[1]


def train_candidates(prepared, teams: int, per_team: int, *, seed: int = 0,
                     hidden: int = HIDDEN, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE,
                     lr: float | tuple[float, float] = LR, tick=None) -> Candidates:
    """Train ``per_team`` candidates for each of ``teams`` teams at once.

    Every candidate is the same configuration (``hidden`` units, ``epochs`` epochs of
    Adam, batches of ``batch_size``) with its own seed and bootstrap sample of the
    training rows; candidate ``i`` of every team uses the ``i``-th of ``per_team``
    learning rates log-spaced over ``lr`` (one rate for all when ``lr`` is a number).

    Parameters
    ----------
    prepared : harness.home.Prepared
        A classification competition with numeric features.
    teams, per_team : int
        How many teams, and candidates per team.
    seed : int
        Seeds the initialisations, bootstrap samples and batch orders.
    hidden, epochs, batch_size :
        The configuration every candidate shares.
    lr : float or (float, float)
        The learning rate, or the ends of the team's grid of rates.
    tick : callable, optional
        ``tick(k)`` after each epoch of ``k`` candidates (a progress bar of
        ``teams * per_team * epochs`` steps).

    Raises
    ------
    HarnessError
        For a regression competition, or non-positive sizes.
    """
    import torch

    from .baselines.data import load_arrays

    if not prepared.spec.is_classification:
        raise HarnessError(f"the simulated class needs a classification competition; "
                           f"{prepared.spec.slug!r} is {prepared.spec.data.task}")
    if min(teams, per_team, hidden, epochs, batch_size) < 1:
        raise HarnessError("teams, candidates per team, hidden units, epochs and batch size "
                           f"must be >= 1; got {teams}, {per_team}, {hidden}, {epochs}, "
                           f"{batch_size}")
    arrays = load_arrays(prepared)
    x_test = arrays.encode(prepared.test)
    m = teams * per_team
    k = arrays.n_outputs
    rng = np.random.default_rng([seed, 17])
    low, high = (lr, lr) if np.isscalar(lr) else lr
    lrs = np.tile(np.geomspace(low, high, per_team), teams)     # every team the same grid
    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # small matrices: a second thread only contends (2x the CPU)
    try:
        gen = torch.Generator().manual_seed(int(rng.integers(1 << 62)))
        x = torch.from_numpy(np.ascontiguousarray(arrays.x_train))
        y = torch.from_numpy(np.array(arrays.y_train))
        parts = [_train_group(torch, x, y, (x_test, arrays.x_val), lrs[i:i + GROUP], rng, gen,
                              hidden=hidden, epochs=epochs, batch_size=batch_size, classes=k,
                              tick=tick)
                 for i in range(0, m, GROUP)]
    finally:
        torch.set_num_threads(threads)
    test = np.concatenate([t for t, _ in parts])
    val = np.concatenate([v for _, v in parts])
    metric = prepared.spec.metric
    y_val = arrays.decode(arrays.y_val)
    val_labels = arrays.decode(val)
    scores = np.array([metric(y_val, p) for p in val_labels])
    rates = lrs.reshape(teams, per_team)
    names = [[f"mlp {hidden}, {epochs} ep, lr {r:.2g}, seed {i + 1}" for i, r in enumerate(row)]
             for row in rates]
    return Candidates(arrays.decode(test).reshape(teams, per_team, -1),
                      val_labels.reshape(teams, per_team, -1),
                      scores.reshape(teams, per_team), names)


def _train_group(torch, x, y, predict_on, lrs: np.ndarray, rng, gen, *, hidden: int,
                 epochs: int, batch_size: int, classes: int, tick) -> list[np.ndarray]:
    """Train ``len(lrs)`` candidates as one batched network; their class indices for each
    array of ``predict_on``. ``tick(candidates)`` after each epoch."""
    m = len(lrs)
    n, d = x.shape
    w1 = (torch.randn(m, d, hidden, generator=gen) * (2 / d) ** 0.5).requires_grad_()
    b1 = torch.zeros(m, 1, hidden, requires_grad=True)
    w2 = (torch.randn(m, hidden, classes, generator=gen) * (1 / hidden) ** 0.5).requires_grad_()
    b2 = torch.zeros(m, 1, classes, requires_grad=True)
    params = [w1, b1, w2, b2]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    rates = torch.from_numpy(lrs.astype(np.float32)).view(m, 1, 1)
    samples = rng.integers(0, n, size=(m, n), dtype=np.int32)   # one bootstrap sample each
    steps = max(1, n // batch_size)

    def forward(inputs, part=slice(None)):
        hid = torch.relu(torch.baddbmm(b1[part], inputs, w1[part]))
        return torch.baddbmm(b2[part], hid, w2[part])

    t = 0
    for _ in range(epochs):
        order = rng.permuted(samples, axis=1)           # each its own batch order
        for s in range(steps):
            batch = torch.from_numpy(order[:, s * batch_size:(s + 1) * batch_size]).long()
            # summed over candidates: each one's gradient is its own batch mean
            loss = torch.nn.functional.cross_entropy(
                forward(x[batch]).reshape(-1, classes), y[batch].reshape(-1),
                reduction="sum") / batch.shape[1]
            loss.backward()
            t += 1
            with torch.no_grad():       # Adam, with each candidate's own learning rate
                for p, (m1, m2) in zip(params, moments):
                    m1.mul_(0.9).add_(p.grad, alpha=0.1)
                    m2.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                    p.sub_(rates * (m1 / (1 - 0.9 ** t))
                           / ((m2 / (1 - 0.999 ** t)).sqrt() + 1e-8))
                    p.grad = None
        if tick:
            tick(m)
    out = []
    with torch.no_grad():
        for features in predict_on:
            inputs = torch.from_numpy(features)
            # a few candidates at a time: all 600 at once would hold 600 copies of the rows
            out.append(np.concatenate([
                forward(inputs.expand(min(PREDICT, m - i), -1, -1),
                        slice(i, i + PREDICT)).argmax(-1).numpy()
                for i in range(0, m, PREDICT)]))
    return out
