"""`harness demo`: the whole product in a few minutes, on a laptop, offline.

1. a home (temporary unless given) and the class's competition: the built-in
   ``synthetic`` table (20,000 rows with label noise) with the demo's split (public
   rows a tenth of the test set, as on Kaggle) and rules (one final selection, a
   daily limit that lets a tuner submit all its candidates), deadline a week ahead;
2. a real server (FastAPI + uvicorn, SQLite) on a free loopback port;
3. a generated roster imported; baseline presets trained and added as baseline rows;
4. a simulated class (:mod:`harness.classroom`): every team trains its own candidate
   models (:mod:`harness.class_models`) and every student is a real HTTP client with
   its own token and strategy;
5. the reveal, both boards side by side with rank changes, and the headline: how the
   public-board tuners fared against the validation users in private, in this class
   and over many re-drawn classes played from the teams' predictions
   (:mod:`harness.redraw`, no HTTP);
6. the overfitting labs at small settings, and a static HTML report.

Every number printed is computed in this run.
"""

from __future__ import annotations

import hashlib
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
import tomlkit

from .baselines import preset_config, train_baseline
from .class_models import EPOCHS, Candidates, train_candidates
from .classroom import (Classroom, TeamModels, assign_strategies, expected_uploads,
                        read_tokens, roster)
from .errors import HarnessError
from .grading import grade
from .home import find_spec_path
from .redraw import Played, play_class, redraw_classes
from .scoring import AnswerKey
from .service import Harness
from .shakeup import compute_shakeup
from .spec import set_toml_key, toml_document
from .splits import prepare

CLASS_COMPETITION = "synthetic"
# public = a tenth of the test set (600 of 6,000 rows at the default size); validation
# (4,000 rows) is what a careful team chooses with
DEMO_SPLIT = {"train": 0.5, "validation": 0.2, "public": 0.03, "private": 0.27}
DEMO_RULES = {"daily_limit": 40, "final_selections": 1}
DEMO_ROWS = 20000
TUNERS, VALIDATION = "public-tuner", "validation"


@dataclass
class DemoResult:
    home: Path
    url: str
    report: Path
    boards: dict = field(default_factory=dict)
    headline: dict = field(default_factory=dict)
    students: list = field(default_factory=list)
    teams: list = field(default_factory=list)       # each team's TeamModels
    prepared: object = None                         # the class's competition


def demo_spec(slug: str, folder: Path, now: datetime, *, rows: int = DEMO_ROWS,
              seed: int = 0) -> Path:
    """A copy of a built-in competition with the demo's settings.

    The deadline is a week from ``now`` (the demo never depends on today's date), the
    rules are DEMO_RULES, the split is DEMO_SPLIT seeded by ``seed``, and the data
    options ``rows`` and ``seed`` are set (every demo seed is a new table and split).
    """
    src = find_spec_path(slug)
    dst = folder / slug
    shutil.rmtree(dst, ignore_errors=True)        # this run's settings, not a past run's
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    doc = toml_document((dst / "competition.toml").read_text())
    deadline = (now + timedelta(days=7)).replace(microsecond=0)
    for table, values in (("rules", {"deadline": deadline, **DEMO_RULES}),
                          ("split", {**DEMO_SPLIT, "seed": seed})):
        if table not in doc:
            doc[table] = tomlkit.table()
        for key, value in values.items():
            set_toml_key(doc[table], key, value)
    options = doc["data"].setdefault("options", tomlkit.table())
    for key, value in (("rows", rows), ("seed", seed)):
        set_toml_key(options, key, value)
    (dst / "competition.toml").write_text(tomlkit.dumps(doc))
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


def class_teams(prepared, candidates: Candidates) -> list[TeamModels]:
    """Each team's models, with what a strategy needs to score on validation."""
    from .baselines.data import load_arrays

    arrays = load_arrays(prepared)
    y_val = arrays.decode(arrays.y_val)
    return [TeamModels.of(candidates, i, prepared.spec.metric, y_val)
            for i in range(candidates.teams)]


def file_digests(students) -> dict[int, str]:
    """submission id -> SHA-256 of the file the student uploaded."""
    return {r["id"]: hashlib.sha256(Path(r["path"]).read_bytes()).hexdigest()
            for s in students for r in s.submitted}


def headline(shake, strategies: dict[str, str], greater_is_better: bool,
             files: dict[str, str] | None = None) -> dict:
    """Mean public and private score, optimism and private rank per strategy.

    ``shake`` is a :class:`harness.shakeup.Shakeup`; optimism is how much better the
    public board looked than the private one (in the metric's good direction).
    ``files`` (team -> identity of its final entry's file) makes the standard error
    count distinct files, not teams: teams that selected the same file are one
    observation (``files`` per strategy says how many).
    """
    sign = 1 if greater_is_better else -1
    frame = pd.DataFrame([{"team": m.team, "public": m.public_score, "private": m.private_score,
                           "private_rank": m.private_rank, "rank_change": m.change}
                          for m in shake.moves])
    frame["strategy"] = frame.team.map(strategies)
    frame["file"] = [(files or {}).get(t) or t for t in frame.team]
    frame = frame.dropna(subset=["strategy", "public", "private"])
    frame["optimism"] = sign * (frame.public - frame.private)
    out = {}
    for name, g in frame.groupby("strategy"):
        distinct = g.drop_duplicates("file")
        out[name] = {"teams": float(len(g)), "files": float(len(distinct)),
                     "public": float(g.public.mean()), "private": float(g.private.mean()),
                     "optimism": float(g.optimism.mean()),
                     "optimism_se": _se(distinct.optimism),
                     "private_se": _se(distinct.private),
                     "private_rank": float(g.private_rank.mean()),
                     "rank_change": float(g.rank_change.mean())}
    return out


def _se(values) -> float:
    """Standard error of a mean (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def compare(head: dict, a: str = TUNERS, b: str = VALIDATION) -> dict | None:
    """How much more the public board flattered group ``a`` than group ``b``, with a 95% CI.

    The public and private parts differ by chance in difficulty, which moves every
    team's optimism alike; the difference between two groups cancels that out. The
    interval's standard errors count distinct selected files (see :func:`headline`).
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
                   "re-drawn classes below measure it over many classes")
    return {"difference": diff, "ci": half, "verdict": verdict,
            "private_gap": head[b]["private"] - head[a]["private"]}


def make_home(home: str | Path | None) -> Path:
    if home is not None:
        return Path(home).resolve()
    return Path(tempfile.mkdtemp(prefix="harness-demo-")) / "home"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def run_demo(students: int = 30, minutes: float = 0.0, home: str | Path | None = None,
             serve: bool = False, seed: int = 0, candidates: int = 20,
             rows: int = DEMO_ROWS, classes: int = 500, labs: bool = True,
             presets: tuple[str, ...] = ("simple", "strong"), console=None) -> DemoResult:
    """Run the simulated class end to end. See the module docstring.

    Parameters
    ----------
    students : int
        Teams in the generated roster (at least 5, so that every strategy is there).
    minutes : float
        Spread the class's submissions over this many minutes of wall time (0 = as
        fast as the server answers), e.g. to watch the board fill up with ``serve``.
    home : path, optional
        Keep everything here instead of a temporary folder.
    serve : bool
        Keep the server running at the end (until Ctrl-C).
    seed : int
        Seeds the table, the split, the roster, the strategies and the models.
    candidates : int
        Candidate models each team trains (a public-board tuner submits them all).
    rows : int
        Rows of the class's table.
    classes : int
        Re-drawn classes played from the teams' predictions for the distribution.
    labs : bool
        Also run the overfitting labs at small settings.
    presets : tuple of str
        The baseline presets trained and added as baseline rows.

    Raises
    ------
    HarnessError
        For fewer than 5 students, fewer than 2 candidates, more candidates than the
        daily limit lets a tuner submit, or an unknown preset.
    """
    from rich.console import Console
    from rich.progress import Progress

    from .demo_report import print_boards, write_demo_report

    if students < 5:
        raise HarnessError(f"--students must be at least 5 (one team per strategy); got "
                           f"{students}")
    if not 2 <= candidates <= DEMO_RULES["daily_limit"]:
        raise HarnessError(f"--candidates must be between 2 and the demo's daily limit "
                           f"({DEMO_RULES['daily_limit']}): a tuner submits them all; got "
                           f"{candidates}")
    configs = {name: preset_config(CLASS_COMPETITION, name) for name in presets}   # fail early
    clock = time.perf_counter()
    # a projector-wide table even when the output is a pipe or a CI log
    console = console or Console(width=max(Console().width, 110))
    home = make_home(home)
    specs_dir = home.parent / "demo-specs" if home.parent != home else home / "specs"
    specs_dir.mkdir(parents=True, exist_ok=True)
    start = now_utc()
    slug = CLASS_COMPETITION
    console.print(f"[bold]harness demo[/] — {students} simulated teams, seed {seed}, home {home}")

    harness = Harness(home)
    prepared = prepare(demo_spec(slug, specs_dir, start, rows=rows, seed=seed), home, force=True)
    parts = prepared.manifest["rows"]
    console.print(f"prepared {slug}: {rows:,} rows; train {parts['train']:,}, validation "
                  f"{parts['validation']:,}, test {parts['public'] + parts['private']:,} "
                  f"(public {parts['public']:,}, private {parts['private']:,}); demo rules: "
                  f"{DEMO_RULES}")

    tokens_csv = home / "roster.csv"
    roster(students, seed).to_csv(tokens_csv, index=False)
    tokens = read_tokens(harness.import_roster_file(tokens_csv)[0])
    strategies = dict(zip(tokens, assign_strategies(list(tokens), seed)))

    baseline_results = {}
    with BackgroundServer(harness) as server:
        console.print(f"server on {server.url} (SQLite at {home / 'harness.db'})")
        with Progress(console=console, transient=False) as bar:
            task = bar.add_task("baselines", total=len(presets))
            for name in presets:
                res = train_baseline(prepared, configs[name], progress=False)
                out = home / "baselines" / slug / f"{name}.csv"
                res.write(out)
                harness.add_baseline(slug, name, out.read_bytes(), message=f"{name} preset")
                baseline_results[(slug, name)] = (res, out.with_suffix(".png"))
                bar.advance(task)
            task = bar.add_task(f"{students} teams x {candidates} candidate models",
                                total=students * candidates * EPOCHS)
            trained_at = time.perf_counter()
            models = train_candidates(prepared, students, candidates, seed=seed,
                                      tick=lambda k: bar.advance(task, k))
            train_seconds = time.perf_counter() - trained_at
            teams = class_teams(prepared, models)
            classroom = Classroom(server.url, slug, lambda i: teams[i],
                                  prepared.test[prepared.spec.data.id_column].to_numpy(),
                                  prepared.spec.data.id_column, prepared.spec.data.target,
                                  home / "students")
            roster_students = classroom.enrol(tokens, [strategies[t] for t in tokens], seed)
            expected = sum(expected_uploads(s.strategy, candidates) for s in roster_students)
            task = bar.add_task("class submitting", total=expected)
            pace = (minutes * 60 / max(expected, 1)) if minutes else 0.0

            def tick():
                bar.advance(task)
                if pace:
                    time.sleep(pace)

            classroom.run(roster_students, on_submit=tick)
            bar.update(task, completed=expected)

        for s in roster_students:
            console.print(f"  {s.team:22} {s.strategy:13} {s.note}"
                          + (f"  ({s.refused} refused by the daily limit)" if s.refused else ""))
        public_before = harness.leaderboard(slug, "public")
        harness.close(slug)
        harness.reveal(slug)
        boards = {"public": harness.leaderboard(slug, "public"),
                  "private": harness.leaderboard(slug, "private")}
        shake = compute_shakeup(boards["public"], boards["private"])
        print_boards(console, shake, strategies, title=f"{slug} after the reveal "
                     "(sorted by private rank)")
        spec = prepared.spec
        gib = spec.metric.greater_is_better
        digests = file_digests(roster_students)
        entry_files = {r["team"]: digests.get(r.get("submission_id"))
                       for r in boards["private"]["rows"] if not r.get("baseline")}
        head = headline(shake, strategies, gib, entry_files)
        graded = grade(boards["public"], boards["private"], spec.grading, gib,
                       decimals=spec.scoring.public_decimals, files=entry_files)
        key = AnswerKey.from_prepared(prepared)
        order = [strategies[s.team] for s in roster_students]
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{classes} re-drawn classes", total=classes)
            redrawn = redraw_classes(teams, order, key.y, int(key.public.sum()),
                                     classes=classes, seed=seed,
                                     decimals=spec.scoring.public_decimals,
                                     progress=lambda: bar.advance(task))
        summary = class_summary(shake, strategies, head, redrawn, graded, entry_files, gib)
        summary.update(competition=slug, seed=seed, teams=students,
                       candidates_per_team=candidates, rows=parts, rules=DEMO_RULES,
                       training_seconds=round(train_seconds, 1))
        _print_headline(console, summary, spec.metric.name)

        lab_numbers = _run_labs(home, prepared, teams, roster_students, strategies,
                                train_seconds / max(students * candidates, 1), console) \
            if labs else {}
        summary["seconds"] = round(time.perf_counter() - clock, 1)
        report = write_demo_report(home / "report", shake=shake, summary=summary,
                                   strategies=strategies, students=roster_students,
                                   public_before=public_before, redrawn=redrawn,
                                   baselines=baseline_results, labs=lab_numbers,
                                   seed=seed, started=start, metric=spec.metric.name,
                                   greater_is_better=gib)
        summary["report"] = str(report)
        console.print(f"\nreport: [bold]{report}[/]  ({summary['seconds']:.0f} s)")
        result = DemoResult(home, server.url, report, boards, summary, roster_students,
                            teams, prepared)
        if serve:
            console.print(f"board: [bold]{server.url}/competitions/{slug}[/]  (Ctrl-C to stop)")
            try:
                while server.thread.is_alive():
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    return result


def class_summary(shake, strategies: dict[str, str], head: dict, redrawn, graded,
                  entry_files: dict[str, str | None], greater_is_better: bool) -> dict:
    """The headline as one JSON-ready dict: this class and the re-drawn classes.

    ``tuners_behind_share`` is the fraction of re-drawn classes in which the tuners'
    mean private score is worse than the validation users'.
    """
    probers = [m for m in shake.moves if strategies.get(m.team) == "prober"]
    return {
        "classes": redrawn.classes,
        "tuners_behind_share": redrawn.tuners_behind_share,
        "this_class": {
            "by_strategy": head,
            "comparison": compare(head),
            "tuners_behind": (TUNERS in head and VALIDATION in head
                              and (head[VALIDATION]["private"] - head[TUNERS]["private"])
                              * (1 if greater_is_better else -1) > 0),
            "probers": [{"team": m.team, "public_rank": m.public_rank,
                         "private_rank": m.private_rank} for m in probers],
            "copy_flags": sum(g.copy_flag for g in graded),
            # flagged teams whose final entry is the very file of a team it was flagged with
            "copy_flags_same_file": sum(
                g.copy_flag and any(entry_files.get(t) == entry_files.get(g.team)
                                    for t in g.same_scores_as) for g in graded),
            "distinct_entry_files": len({f for f in entry_files.values() if f}),
            "entries": len(entry_files),
        },
        "redrawn": redrawn.summary(),
    }


def _print_headline(console, summary: dict, metric: str) -> None:
    this = summary["this_class"]
    head = this["by_strategy"]
    console.print(f"\n[bold]Headline, this class[/] ({metric}; optimism = public - private):")
    for name, row in sorted(head.items(), key=lambda kv: kv[1]["private_rank"]):
        console.print(f"  {name:13} {int(row['teams']):>3} teams  public {row['public']:.4f}  "
                      f"private {row['private']:.4f}  optimism {row['optimism']:+.4f}  "
                      f"mean private rank {row['private_rank']:.1f} "
                      f"(moved {row['rank_change']:+.1f})")
    c = this["comparison"]
    if c:
        console.print(f"  => public-board tuners vs validation users: optimism "
                      f"{c['difference']:+.4f} ± {c['ci']:.4f} (95%, over distinct selected "
                      f"files), private score {-c['private_gap']:+.4f}; {c['verdict']}.")
    for p in this["probers"]:
        console.print(f"  prober {p['team']}: public rank {p['public_rank']}, private rank "
                      f"{p['private_rank']}")
    flags = this["copy_flags"]
    chance = flags - this["copy_flags_same_file"]
    console.print(f"  {this['distinct_entry_files']} distinct files among {this['entries']} "
                  f"final entries; {flags} teams flagged by the copy check"
                  + (f" ({chance} with files of their own: equal scores on both boards by "
                     "chance)" if chance else ""))
    r = summary["redrawn"]
    gap = r["private_gap"]
    console.print(f"\n[bold]Over {r['classes']} re-drawn classes[/] (public rows and strategies "
                  "dealt anew, played from the teams' predictions, no HTTP):")
    console.print(f"  the tuners' mean private {metric} was below the validation users' in "
                  f"[bold]{r['tuners_behind_share']:.0%}[/] of the classes; validation minus "
                  f"tuners: mean {gap['mean']:+.4f}, 90% of classes between {gap['q05']:+.4f} "
                  f"and {gap['q95']:+.4f}")
    for name, row in sorted(r["by_strategy"].items(), key=lambda kv: -kv[1]["private"]):
        console.print(f"  {name:13} public {row['public']:.4f}  private {row['private']:.4f}  "
                      f"optimism {row['optimism']:+.4f}")
    if r["prober"]:
        p = r["prober"]
        console.print(f"  the prober ranked lower in private than in public in "
                      f"{p['fell_share']:.0%} of the classes (mean public rank "
                      f"{p['mean_public_rank']:.1f}, private {p['mean_private_rank']:.1f})")


def _run_labs(home: Path, prepared, teams, students, strategies, seconds_each: float,
              console) -> dict:
    """The overfitting labs at small settings; their headline lines and plots.

    The overfit lab studies one tuner team's own candidates (no training again).
    """
    from .lab.attack import attack_lab
    from .lab.overfit import Trained, overfit_lab

    tuner = next((s for s in students if strategies[s.team] == TUNERS), students[0])
    team = teams[tuner.index]
    spec = prepared.spec
    ids = prepared.test[spec.data.id_column].to_numpy()
    trained = [Trained(f"{tuner.team}: {name}", float(v),
                       pd.DataFrame({spec.data.id_column: ids, spec.data.target: preds})
                       .to_csv(index=False).encode(), seconds_each)
               for name, v, preds in zip(team.names, team.val_score, team.test)]
    console.print(f"\nThe overfit lab below studies one team's candidates ({tuner.team}, the "
                  f"first tuner): one team's picks are noisy; the re-drawn classes above are "
                  "the whole class.")
    out = {}
    runs = (("overfit", lambda d: overfit_lab(prepared, d, repeats=100, trained=trained)),
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


def replay(prepared, teams: list[TeamModels], students) -> Played:
    """The real class played again in numpy: its own public rows, strategies and seeds.

    For the teacher after the reveal (it reads the answer key): the numpy board must
    give every team the entry and scores the server gave (tests hold the two equal).
    """
    key = AnswerKey.from_prepared(prepared)
    return play_class([teams[s.index] for s in students], [s.strategy for s in students],
                      key.y, key.public, [s.seed for s in students],
                      prepared.spec.scoring.public_decimals)
