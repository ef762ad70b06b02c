"""Critical points by the Hessian: local minimum, local maximum or saddle point.

Near a critical point θ' (gradient zero) the loss is
``L(θ) ≈ L(θ') + ½ (θ-θ')ᵀ H (θ-θ')``, so the signs of the Hessian's
eigenvalues decide: all positive -> local minimum, all negative -> local
maximum, both -> saddle point, and an eigenvector of a negative eigenvalue is
a direction that lowers the loss (the escape from the saddle).

- :func:`toy`: the lecture's ``y = w1 w2 x`` with one example (x=1, ŷ=1).
- :func:`network_point`: a small network on real data, trained and then moved
  to a point of small gradient norm by minimizing ``‖∇L‖²``; the full Hessian
  (``torch.func.hessian``) or, for bigger models, its extreme eigenvalues by
  :func:`lanczos` on Hessian-vector products.
- :func:`classify`: the pure rule from eigenvalues (and the gradient norm) to
  a verdict, with stated tolerances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, grad, hessian, jvp

from .common import label_axes, pyplot, save_figure

LOCAL_MIN, LOCAL_MAX, SADDLE = "local minimum", "local maximum", "saddle point"
FLAT_MIN = "flat: no negative curvature, some directions flat (minimum or degenerate saddle)"
ALL_FLAT = "flat: every eigenvalue near zero"


# ---------------------------------------------------------------------------------------
# the rule

@dataclass(frozen=True)
class PointTolerances:
    """What counts as zero.

    An eigenvalue is flat (treated as zero) when
    ``|λ| <= max(eig_rel * max|λ|, sqrt(max|λ| * ‖∇L‖))``:

    - relative to the spectrum: the largest curvature sets the scale, so the
      rule reads the same for a loss measured in any unit;
    - relative to the gradient norm: the point is critical only up to the
      remaining gradient g. Along an eigenvector with curvature λ the nearest
      critical point is about ``g / |λ|`` away, and with third derivatives of
      the order of the largest curvature, ``max|λ|``, the curvature changes by
      about ``max|λ| * g / |λ|`` on the way: more than ``|λ|`` itself when
      ``λ² <= max|λ| * g``. Such an eigenvalue's sign says nothing about the
      critical point nearby.

    Parameters
    ----------
    eig_rel : float
        The spectrum-relative part of the flat tolerance.
    grad : float
        A gradient norm at most this is small enough to call the point critical.
    """

    eig_rel: float = 1e-3
    grad: float = 1e-4

    def flat_tol(self, scale: float, grad_norm: float) -> float:
        """The flat tolerance for a spectrum of largest magnitude ``scale``."""
        return max(self.eig_rel * scale, math.sqrt(scale * max(grad_norm, 0.0)))


@dataclass
class PointVerdict:
    """What the eigenvalues say about a point."""

    kind: str
    critical: bool
    grad_norm: float
    minimum_ratio: float   # positive share of the non-flat eigenvalues; NaN if none or partial
    positive: int          # eigenvalues above the flat tolerance
    negative: int          # eigenvalues below minus the tolerance
    flat: int
    min_eig: float
    max_eig: float
    flat_tol: float


def classify(eigenvalues, grad_norm: float, tol: PointTolerances = PointTolerances(),
             complete: bool = True) -> PointVerdict:
    """Local minimum / maximum / saddle / flat from Hessian eigenvalues.

    Pure. Eigenvalues within the flat tolerance (see :class:`PointTolerances`)
    count as zero: they neither make a saddle nor vote in the minimum ratio,
    the share of positive eigenvalues among the non-flat ones (the lecture's
    ratio, taken over the directions with measurable curvature; NaN when every
    eigenvalue is flat). ``complete=False`` means only extreme eigenvalues are
    known (Lanczos): the verdict still follows from the smallest and largest,
    but the minimum ratio is unknown (NaN) and the counts are of the values given.
    """
    e = np.asarray(eigenvalues, dtype=float)
    if e.size == 0:
        raise ValueError("classify needs at least one eigenvalue")
    flat_tol = tol.flat_tol(float(np.abs(e).max()), float(grad_norm))
    pos = int((e > flat_tol).sum())
    neg = int((e < -flat_tol).sum())
    flat = int(e.size - pos - neg)
    if pos and neg:
        kind = SADDLE
    elif pos and not flat:
        kind = LOCAL_MIN
    elif neg and not flat:
        kind = LOCAL_MAX
    elif pos:
        kind = FLAT_MIN
    elif neg:
        kind = "flat: no positive curvature, some directions flat (maximum or degenerate saddle)"
    else:
        kind = ALL_FLAT
    ratio = pos / (pos + neg) if complete and pos + neg else math.nan
    return PointVerdict(kind, bool(grad_norm <= tol.grad), float(grad_norm), ratio,
                        pos, neg, flat, float(e.min()), float(e.max()), flat_tol)


# ---------------------------------------------------------------------------------------
# Hessians of a loss over flattened parameters

def full_hessian(loss_fn, theta: torch.Tensor) -> torch.Tensor:
    """The full Hessian of ``loss_fn`` (flat parameters -> scalar) at ``theta``."""
    return hessian(loss_fn)(theta.detach())


def hvp(loss_fn, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hessian-vector product ``H v`` (forward-over-reverse; the Hessian is never built)."""
    return jvp(grad(loss_fn), (theta.detach(),), (v,))[1]


def lanczos(matvec, n: int, steps: int = 60, seed: int = 0, dtype=torch.float64) -> np.ndarray:
    """Ritz values of a symmetric operator after ``steps`` Lanczos iterations.

    Full reorthogonalization keeps the basis orthogonal in floating point, so
    the extreme Ritz values converge to the extreme eigenvalues quickly (the
    interior ones are only a rough picture).

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` for a symmetric ``A`` of size ``n``.
    n : int
    steps : int
        Krylov dimension (capped at ``n``).
    seed : int
        Seeds the random start vector.

    Returns
    -------
    ndarray
        The Ritz values, ascending.
    """
    steps = min(steps, n)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=g, dtype=dtype)
    q /= q.norm()
    basis = [q]
    alphas, betas = [], []
    for k in range(steps):
        w = matvec(basis[-1]).to(dtype)
        alpha = torch.dot(w, basis[-1])
        alphas.append(float(alpha))
        Q = torch.stack(basis)
        w = w - Q.T @ (Q @ w)          # full reorthogonalization (twice is enough)
        w = w - Q.T @ (Q @ w)
        beta = float(w.norm())
        if k == steps - 1 or beta < 1e-10 * max(1.0, abs(alphas[-1])):
            break                       # an invariant subspace: its Ritz values are exact
        betas.append(beta)
        basis.append(w / beta)
    T = np.diag(alphas) + np.diag(betas[:len(alphas) - 1], 1) + np.diag(betas[:len(alphas) - 1], -1)
    return np.linalg.eigvalsh(T)


# ---------------------------------------------------------------------------------------
# the lecture's toy

def toy_loss(w: torch.Tensor) -> torch.Tensor:
    """``(w1 * w2 * x - ŷ)²`` for the one example x = 1, ŷ = 1."""
    return (w[0] * w[1] * 1.0 - 1.0) ** 2


@dataclass
class ToyResult:
    """The toy at the origin and the escape along the negative-curvature direction."""

    gradient: np.ndarray
    hessian: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray     # columns, matching eigenvalues (ascending)
    escape_direction: np.ndarray  # the eigenvector of the negative eigenvalue, into w > 0
    verdict: PointVerdict
    escape_t: np.ndarray         # distances moved along the escape direction
    escape_loss: np.ndarray      # loss at each
    path: np.ndarray             # gradient descent from a nudge along the escape direction
    path_loss: np.ndarray


def toy(steps: int = 40, lr: float = 0.1, nudge: float = 1e-2) -> ToyResult:
    """The lecture's saddle at the origin, computed with autograd.

    Gradient and Hessian at w = (0, 0), their eigen-decomposition, the loss
    along the eigenvector u of the negative eigenvalue (``L(t u)`` for ``t``
    from 0 to 1.5), and a gradient-descent path started from ``nudge * u``.
    """
    w0 = torch.zeros(2, dtype=torch.float64)
    g = grad(toy_loss)(w0).numpy()
    H = full_hessian(toy_loss, w0).numpy()
    vals, vecs = np.linalg.eigh(H)
    u = vecs[:, 0] * np.sign(vecs[:, 0].sum() or 1.0)   # point into w1, w2 > 0
    ts = np.linspace(0.0, 1.5, 16)
    losses = np.array([float(toy_loss(torch.tensor(t * u))) for t in ts])
    w = torch.tensor(nudge * u)
    path, path_loss = [w.numpy().copy()], [float(toy_loss(w))]
    for _ in range(steps):
        w = w - lr * grad(toy_loss)(w)
        path.append(w.numpy().copy())
        path_loss.append(float(toy_loss(w)))
    return ToyResult(g, H, vals, vecs, u, classify(vals, float(np.linalg.norm(g))), ts, losses,
                     np.array(path), np.array(path_loss))


def plot_toy(result: ToyResult, path: Path) -> Path:
    """Contour of the toy's loss with the saddle, the eigenvectors and the escape path."""
    plt = pyplot()
    a = np.linspace(-2, 2, 201)
    W1, W2 = np.meshgrid(a, a)
    Z = (W1 * W2 - 1.0) ** 2
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    ax = axes[0]
    cs = ax.contourf(W1, W2, np.log1p(Z), levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="log(1 + loss)")
    ax.plot(*result.path.T, "w.-", ms=3, label="gradient descent from a nudge along u")
    for val, vec, color in zip(result.eigenvalues, result.eigenvectors.T, ("red", "orange")):
        ax.annotate("", xy=vec, xytext=(0, 0), arrowprops=dict(color=color, width=1.5))
        ax.text(*(vec * 1.1), f"λ={val:+.0f}", color=color)
    ax.plot(0, 0, "rx", ms=10, label="saddle at the origin")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.set_title("loss = (w1·w2·1 − 1)²")
    ax.legend(fontsize=7, loc="lower left")
    axes[1].plot(result.escape_t, result.escape_loss, "o-")
    label_axes(axes[1], "t (distance moved along u, the eigenvector of λ=−2)", "loss",
               "escaping the saddle along u lowers the loss", legend=False)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------
# a small network on real data

class FlatLoss:
    """A model's training loss as a function of one flat parameter vector."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str):
        from .nets import loss_and_accuracy

        self.model, self.x, self.y, self.task = model, x, y, task
        self._loss = loss_and_accuracy
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def unflatten(self, theta: torch.Tensor) -> dict:
        out, i = {}, 0
        for name, shape in zip(self.names, self.shapes):
            k = shape.numel()
            out[name] = theta[i:i + k].view(shape)
            i += k
        return out

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        logits = functional_call(self.model, self.unflatten(theta), (self.x,))
        return self._loss(logits, self.y, self.task)[0]


@dataclass
class NetworkPoint:
    """One run: where training and gradient-norm minimization ended, and its Hessian."""

    seed: int
    params: int
    pretrain_steps: int
    loss_after_training: float
    grad_after_training: float
    train_loss: float
    grad_norm: float
    eigenvalues: np.ndarray
    method: str                 # "full" or "lanczos"
    verdict: PointVerdict
    flat_gradient_share: float  # share of the gradient inside the flat eigen-directions
    grad_norms: list = field(default_factory=list)


def network_point(data, hidden: int = 8, seed: int = 0, pretrain_steps: int = 100,
                  gradnorm_iters: int = 150, lr: float = 0.01, max_full: int = 3000,
                  lanczos_steps: int = 80, tol: PointTolerances = PointTolerances(),
                  activation: str = "tanh") -> NetworkPoint:
    """Train a one-hidden-layer net, then minimize ‖∇L‖², then read its Hessian.

    Parameters
    ----------
    data : LabData
    hidden : int
        Hidden units (a smooth ``activation``: tanh has a Hessian everywhere).
    seed : int
        The initialization.
    pretrain_steps : int
        Full-batch Adam steps on the loss before the gradient-norm phase; more
        steps end in lower-loss regions.
    gradnorm_iters : int
        L-BFGS iterations on ``‖∇L‖²`` (the lecture's way to find a critical
        point: gradient descent on the loss alone slows down near one but
        seldom reaches it).
    max_full : int
        Up to this many parameters the full Hessian is computed
        (``torch.func.hessian``); beyond, Lanczos gives the extreme eigenvalues.
    """
    from .nets import seeded_mlp

    model = seeded_mlp(data, 1, hidden, seed, activation=activation).double()
    f = FlatLoss(model, data.x_train.double(), data.y_train if data.is_classification
                 else data.y_train.double(), data.task)
    theta = f.theta0.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    for _ in range(pretrain_steps):
        opt.zero_grad()
        f(theta).backward()
        opt.step()
    gfun = grad(f)
    loss_trained = float(f(theta.detach()))
    grad_trained = float(gfun(theta.detach()).norm())

    theta = theta.detach().clone().requires_grad_(True)
    lbfgs = torch.optim.LBFGS([theta], lr=1, max_iter=gradnorm_iters, history_size=50,
                              line_search_fn="strong_wolfe", tolerance_grad=1e-15,
                              tolerance_change=1e-20)
    norms = []

    def closure():
        lbfgs.zero_grad()
        sq = (gfun(theta) ** 2).sum()
        sq.backward()
        norms.append(float(sq.detach().sqrt()))
        return sq

    lbfgs.step(closure)
    theta = theta.detach()
    g = gfun(theta)
    gnorm = float(g.norm())
    n = theta.numel()
    if n <= max_full:
        H = full_hessian(f, theta)
        vals, vecs = torch.linalg.eigh(H)
        vals = vals.numpy()
        verdict = classify(vals, gnorm, tol)
        flat_dirs = vecs[:, torch.from_numpy(np.abs(vals) <= verdict.flat_tol)]
        share = float((flat_dirs.T @ g).norm() / g.norm()) if gnorm > 0 else 0.0
        method = "full"
    else:
        vals = lanczos(lambda v: hvp(f, theta, v), n, lanczos_steps, seed)
        verdict = classify(vals, gnorm, tol, complete=False)
        share, method = math.nan, "lanczos"
    return NetworkPoint(seed, n, pretrain_steps, loss_trained, grad_trained, float(f(theta)),
                        gnorm, vals, method, verdict, share, norms)


def describe_point(p: NetworkPoint, tol: PointTolerances) -> str:
    """One honest sentence: what kind of point, and whether it is critical at all."""
    v = p.verdict
    head = (f"seed {p.seed}: training loss {p.train_loss:.4g}, gradient norm {p.grad_norm:.2g} "
            f"(from {p.grad_after_training:.2g} after training)")
    curv = (f"eigenvalues {v.min_eig:+.3g} .. {v.max_eig:+.3g}; {v.positive} positive, "
            f"{v.negative} negative, {v.flat} flat (|λ| <= {v.flat_tol:.2g})")
    if not v.critical:
        what = (f"NOT a critical point (gradient norm above {tol.grad:g}); the curvature "
                f"looks like a {v.kind}")
        if not math.isnan(p.flat_gradient_share) and p.flat_gradient_share > 0.5:
            what += (f", and {p.flat_gradient_share:.0%} of the remaining gradient lies in "
                     "the flat directions: a gradient-flat point, not a critical one")
    else:
        what = f"a critical point: {v.kind}"
    ratio = "" if math.isnan(v.minimum_ratio) else (
        f"; minimum ratio {v.minimum_ratio:.2f} (positive among the {v.positive + v.negative} "
        "non-flat)")
    return f"{head}: {what}; {curv}{ratio} [{p.method} Hessian]."


def plot_points(points: list[NetworkPoint], path: Path,
                tol: PointTolerances = PointTolerances()) -> Path:
    """The lecture's scatter: minimum ratio against training loss, one dot per run."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for p in points:
        if math.isnan(p.verdict.minimum_ratio):   # no non-flat eigenvalue, or Lanczos
            continue
        marker = "o" if p.verdict.critical else "x"
        axes[0].scatter(p.verdict.minimum_ratio, p.train_loss, marker=marker,
                        color="C3" if p.verdict.kind == SADDLE else "C0")
    label_axes(axes[0], "minimum ratio (positive share of the non-flat eigenvalues)",
               "training loss", "o critical (gradient small), x not; red = saddle",
               legend=False)
    for p in points:
        axes[1].semilogy(p.grad_norms, label=f"seed {p.seed}")
    axes[1].axhline(tol.grad, color="grey", ls=":", lw=1)
    label_axes(axes[1], "L-BFGS evaluation on ‖∇L‖²", "gradient norm",
               "reaching a point of small gradient")
    return save_figure(fig, path)

