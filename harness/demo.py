"""`harness demo`: the whole product in a few minutes, on a laptop, offline.

1. a home (temporary unless given), ``digits`` and ``fertility`` prepared with a
   deadline a week from now (so the demo never depends on today's date);
2. a real server (FastAPI + uvicorn, SQLite) on a free loopback port;
3. a generated roster imported; the baseline presets trained and added as
   baseline rows;
4. a simulated class (:mod:`harness.classroom`): every student a real HTTP
   client with its own token and strategy;
5. the reveal, both boards side by side with rank changes, and the headline:
   how the public-board tuners fared against the validation users in private;
6. the overfitting labs at small settings, and a static HTML report.

Every number printed is computed in this run.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .baselines import preset_config, train_baseline
from .classroom import Classroom, Pool, assign_strategies, read_tokens, roster
from .home import find_spec_path
from .service import Harness
from .shakeup import compute_shakeup
from .spec import set_rules
from .splits import prepare

DEMO_RULES = {"daily_limit": 40, "final_selections": 2}


@dataclass
class DemoResult:
    home: Path
    url: str
    report: Path
    boards: dict = field(default_factory=dict)
    headline: dict = field(default_factory=dict)
    students: list = field(default_factory=list)


def demo_spec(slug: str, folder: Path, now: datetime) -> Path:
    """A copy of a built-in competition whose deadline is a week from ``now``.

    The demo's class also gets a larger daily limit (DEMO_RULES), so the
    public-board tuners can show their habit within one simulated day.
    """
    src = find_spec_path(slug)
    dst = folder / slug
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    text = (dst / "competition.toml").read_text()
    deadline = (now + timedelta(days=7)).replace(microsecond=0)
    (dst / "competition.toml").write_text(set_rules(text, deadline=deadline, **DEMO_RULES))
    return dst


def free_port() -> int:
    """A TCP port nobody listens on right now (for a server started just after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BackgroundServer:
    """``harness serve`` in a thread of this process, on a free loopback port."""

    def __init__(self, harness: Harness, port: int | None = None):
        import uvicorn

        from .server.app import create_app
        from .server.protocol import guarded_protocol

        self.port = port or free_port()
        config = uvicorn.Config(create_app(harness), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False, http=guarded_protocol())
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the demo server did not start on {self.url}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def build_pool(prepared, k: int, seed: int, tick=None) -> tuple[Pool, list]:
    """Train the class's candidate models once; students draw from them.

    The candidates are the overfitting lab's sweep (small MLPs with varied size,
    dropout, weight decay, augmentation and epochs): close in quality, as the
    models a class tries are. Returns the pool and the trained sweep (which the
    overfitting lab then studies without training again).
    """
    import io

    from .baselines.data import image_side
    from .lab.overfit import sweep_configs, train_sweep

    image = image_side(prepared.feature_columns) is not None

    def progress(configs, desc=None):     # the labs' protocol: progress(iterable, desc)
        for cfg in configs:
            yield cfg
            if tick:
                tick()

    trained = train_sweep(prepared, sweep_configs(k, image=image, seed=seed), progress=progress)
    target = prepared.spec.data.target
    test = np.stack([pd.read_csv(io.BytesIO(t.submission))[target].to_numpy() for t in trained],
                    axis=1)
    pool = Pool([t.name for t in trained], test, np.array([t.validation for t in trained]),
                prepared.spec.metric.greater_is_better,
                prepared.test[prepared.spec.data.id_column].to_numpy(),
                prepared.spec.data.id_column, target)
    return pool, trained


def headline(shake, strategies: dict[str, str], greater_is_better: bool) -> dict:
    """Mean public and private score, optimism and private rank per strategy.

    ``shake`` is a :class:`harness.shakeup.Shakeup`; optimism is how much better the
    public board looked than the private one (in the metric's good direction).
    """
    sign = 1 if greater_is_better else -1
    frame = pd.DataFrame([{"team": m.team, "public": m.public_score, "private": m.private_score,
                           "private_rank": m.private_rank, "rank_change": m.change}
                          for m in shake.moves])
    frame["strategy"] = frame.team.map(strategies)
    frame = frame.dropna(subset=["strategy", "public", "private"])
    frame["optimism"] = sign * (frame.public - frame.private)
    g = frame.groupby("strategy").agg(teams=("team", "size"), public=("public", "mean"),
                                      private=("private", "mean"),
                                      optimism=("optimism", "mean"),
                                      optimism_se=("optimism", _se),
                                      private_rank=("private_rank", "mean"),
                                      rank_change=("rank_change", "mean"))
    return {k: {c: float(v) for c, v in row.items()} for k, row in g.iterrows()}


def _se(values) -> float:
    """Standard error of a mean (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def compare(head: dict, a: str = "public-tuner", b: str = "validation") -> dict | None:
    """How much more the public board flattered group ``a`` than group ``b``, with a 95% CI.

    The public and private parts differ by chance in difficulty, which moves every
    team's optimism alike; the difference between two groups cancels that out.
    """
    if a not in head or b not in head:
        return None
    diff = head[a]["optimism"] - head[b]["optimism"]
    half = 1.96 * float(np.hypot(head[a]["optimism_se"], head[b]["optimism_se"]))
    if diff - half > 0:
        verdict = (f"the public board flattered the {a}s more: choosing by it overfits the "
                   "public rows")
    elif diff + half < 0:
        verdict = f"the {b} users were flattered more this time (by chance)"
    else:
        verdict = ("the difference is within the noise of one class this size; the "
                   "overfitting lab below measures it over many re-drawn splits")
    return {"difference": diff, "ci": half, "verdict": verdict,
            "private_gap": head[b]["private"] - head[a]["private"]}


def make_home(home: str | Path | None) -> Path:
    if home is not None:
        return Path(home).resolve()
    return Path(tempfile.mkdtemp(prefix="harness-demo-")) / "home"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def run_demo(students: int = 30, minutes: float = 0.0, home: str | Path | None = None,
             serve: bool = False, seed: int = 0, candidates: int = 24, labs: bool = True,
             presets: tuple[str, ...] = ("simple", "strong"), console=None) -> DemoResult:
    """Run the simulated class end to end. See the module docstring.

    Parameters
    ----------
    students : int
        Teams in the generated roster.
    minutes : float
        Spread the class's submissions over this many minutes of wall time (0 = as
        fast as the server answers), e.g. to watch the board fill up with ``serve``.
    home : path, optional
        Keep everything here instead of a temporary folder.
    serve : bool
        Keep the server running at the end (until Ctrl-C).
    seed : int
        Seeds the roster, the strategies and the candidates.
    candidates : int
        Candidate models trained for the class to draw from.
    labs : bool
        Also run the overfitting labs at small settings.
    presets : tuple of str
        The baseline presets trained and added as baseline rows (both competitions).
    """
    from rich.console import Console
    from rich.progress import Progress

    from .demo_report import print_boards, write_demo_report

    # a projector-wide table even when the output is a pipe or a CI log
    console = console or Console(width=max(Console().width, 110))
    home = make_home(home)
    specs_dir = home.parent / "demo-specs" if home.parent != home else home / "specs"
    specs_dir.mkdir(parents=True, exist_ok=True)
    start = now_utc()
    console.print(f"[bold]harness demo[/] — {students} simulated teams, seed {seed}, home {home}")

    harness = Harness(home)
    prepared = {}
    for slug in ("digits", "fertility"):
        folder = specs_dir / slug
        if not folder.exists():
            demo_spec(slug, specs_dir, start)
        prepared[slug] = prepare(folder, home, force=True)
    digits = prepared["digits"]
    console.print(f"prepared digits ({digits.manifest['rows']}) and fertility; "
                  f"demo rules: {DEMO_RULES}")

    tokens_csv = home / "roster.csv"
    roster(students, seed).to_csv(tokens_csv, index=False)
    tokens = read_tokens(harness.import_roster(tokens_csv))
    strategies = dict(zip(tokens, assign_strategies(list(tokens), seed)))

    baseline_results = {}
    with BackgroundServer(harness) as server:
        console.print(f"server on {server.url} (SQLite at {home / 'harness.db'})")
        with Progress(console=console, transient=False) as bar:
            task = bar.add_task("baselines", total=2 * len(presets))
            for slug in ("digits", "fertility"):
                for name in presets:
                    res = train_baseline(prepared[slug], preset_config(slug, name),
                                         progress=False)
                    out = home / "baselines" / slug / f"{name}.csv"
                    res.write(out)
                    harness.add_baseline(slug, name, out.read_bytes(),
                                         message=f"{name} preset")
                    baseline_results[(slug, name)] = (res, out.with_suffix(".png"))
                    bar.advance(task)
            task = bar.add_task("candidate models", total=candidates)
            pool, trained = build_pool(digits, candidates, seed,
                                       tick=lambda: bar.advance(task))
            classroom = Classroom(server.url, "digits", pool, home / "students",
                                  classification=True, per_student=min(8, candidates))
            roster_students = classroom.enrol(tokens, [strategies[t] for t in tokens], seed)
            expected = sum(_expected_uploads(s.strategy, classroom) for s in roster_students)
            task = bar.add_task("class submitting", total=expected)
            pace = (minutes * 60 / max(expected, 1)) if minutes else 0.0

            def tick():
                bar.advance(task)
                if pace:
                    time.sleep(pace)

            classroom.run(roster_students, on_submit=tick)
            bar.update(task, completed=expected)

        for s in roster_students:
            console.print(f"  {s.team:22} {s.strategy:13} seed {s.seed:>10}  {s.note}"
                          + (f"  ({s.refused} refused by the daily limit)" if s.refused else ""))
        public_before = harness.leaderboard("digits", "public")
        harness.reveal("digits")
        boards = {"public": harness.leaderboard("digits", "public"),
                  "private": harness.leaderboard("digits", "private")}
        shake = compute_shakeup(boards["public"], boards["private"])
        print_boards(console, shake, strategies)
        head = headline(shake, strategies, digits.spec.metric.greater_is_better)
        _print_headline(console, head)

        lab_numbers = _run_labs(home, digits, trained, console) if labs else {}
        report = write_demo_report(home / "report", shake=shake, headline=head,
                                   strategies=strategies, students=roster_students,
                                   public_before=public_before,
                                   baselines=baseline_results, labs=lab_numbers,
                                   seed=seed, started=start, comparison=compare(head))
        console.print(f"\nreport: [bold]{report}[/]")
        result = DemoResult(home, server.url, report, boards, head, roster_students)
        if serve:
            console.print(f"board: [bold]{server.url}/competitions/digits[/]  (Ctrl-C to stop)")
            try:
                while server.thread.is_alive():
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    return result


def _expected_uploads(strategy: str, classroom: Classroom) -> int:
    return {"public-tuner": classroom.per_student, "validation": 3, "forgetful": 3,
            "ensemble": 2, "prober": classroom.probe_queries + 2}[strategy]


def _print_headline(console, head: dict) -> None:
    console.print("\n[bold]Headline[/] (digits, accuracy; optimism = public - private):")
    for name, row in sorted(head.items(), key=lambda kv: kv[1]["private_rank"]):
        console.print(f"  {name:13} {int(row['teams']):>3} teams  public {row['public']:.4f}  "
                      f"private {row['private']:.4f}  optimism {row['optimism']:+.4f}  "
                      f"mean private rank {row['private_rank']:.1f} "
                      f"(moved {row['rank_change']:+.1f})")
    c = compare(head)
    if c:
        console.print(f"  => public-board tuners vs validation users: optimism "
                      f"{c['difference']:+.4f} ± {c['ci']:.4f} (95%), private score "
                      f"{-c['private_gap']:+.4f}; {c['verdict']}.")


def _run_labs(home: Path, digits, trained, console) -> dict:
    """The overfitting labs at small settings; their headline lines and plots."""
    from .lab.attack import attack_lab
    from .lab.overfit import overfit_lab

    out = {}
    runs = (("overfit", lambda d: overfit_lab(digits, d, repeats=100, trained=trained)),
            ("attack", lambda d: attack_lab(prepare(find_spec_path("noise-binary"), home,
                                                    force=True), d, queries=200, repeats=2,
                                            fast=True)))
    for name, run in runs:
        t = time.perf_counter()
        directory = home / "lab" / name
        directory.mkdir(parents=True, exist_ok=True)
        report = run(directory)
        seconds = time.perf_counter() - t
        console.print(f"\n[bold]Lab: {report.title}[/] ({seconds:.0f}s, small settings)")
        for line in report.verdicts:
            console.print(f"  - {line}")
        out[name] = {"lines": report.verdicts, "plots": [str(p) for p in report.plots]}
    return out
