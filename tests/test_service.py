"""The application layer (harness.service.Harness) on SQLite and on PostgreSQL.

Every test runs twice: on SQLite in the home and on PostgreSQL in a schema of its own
(skipped when HARNESS_TEST_POSTGRES_URL is absent).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from harness import rules
from harness.errors import (ForbiddenError, HarnessError, LimitError, NotFoundError,
                            SubmissionError, TooLargeError)
from harness.service import Harness
from harness.store import (SCHEMA_VERSION, CompetitionRow, StandingRow, competition_state,
                           insert_ignore)

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
FAR = "2099-12-31T23:59:59+00:00"
REFUSAL_WINDOW_SECONDS = 600


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """None (SQLite in the home) or a PostgreSQL URL on a fresh schema."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("fresh_postgres_url")()


def set_rules(home, slug="digits", **values):
    """Rewrite keys of a prepared competition's [rules] (before a Harness reads it)."""
    path = home / "competitions" / slug / "competition.toml"
    text = path.read_text()
    for key, value in values.items():
        line = f"{key} = {json.dumps(value)}"
        text, n = re.subn(rf"(?m)^{key} = .*$", line, text)
        if not n:
            text = text.replace("[rules]\n", f"[rules]\n{line}\n", 1)
    path.write_text(text)


@pytest.fixture
def make_harness(prepared_home, database_url):
    """Factory: ``make_harness(**rules) -> Harness`` on digits with those rules."""
    made = []

    def make(**values):
        set_rules(prepared_home, **{"deadline": FAR, **values})
        h = Harness(prepared_home, database_url)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close_connections()


@pytest.fixture
def h(make_harness):
    return make_harness()


def predictions(h, wrong_public=0, wrong_private=0, slug="digits", skip_public=0) -> bytes:
    """A digits submission wrong on the first ``wrong_*`` public / private rows (the
    public ones after the first ``skip_public``)."""
    key = h.answer_key(slug)
    y = key.y.astype(int)
    for idx in (key.public_index[skip_public:skip_public + wrong_public],
                key.private_index[:wrong_private]):
        y[idx] = (y[idx] + 1) % 10
    lines = [f"{key.id_column},{key.target}"] + [f"{i},{v}" for i, v in zip(key.ids, y)]
    return ("\n".join(lines) + "\n").encode()


def relabel(h, usage: str, n: int, slug: str = "digits") -> None:
    """Change the answer key: the first ``n`` rows of one part ("Public" or "Private") get
    another label (a teacher's fix, before a rescore)."""
    solution = h.prepared(slug).solution_path
    table = pd.read_csv(solution)
    rows = np.flatnonzero(table["Usage"].to_numpy() == usage)[:n]
    table.loc[rows, "label"] = (table.loc[rows, "label"] + 1) % 10
    table.to_csv(solution, index=False)


def n_public(h):
    return len(h.answer_key("digits").public_index)


def n_private(h):
    return len(h.answer_key("digits").private_index)


# ------------------------------------------------------------------ submit


def test_submit_scores_archives_and_hides_private(h):
    team, token = h.add_team("owls", ["Ada", "Alan"])
    assert h.authenticate(token) == team == {"id": team["id"], "name": "owls",
                                             "members": ["Ada", "Alan"]}
    data = predictions(h, wrong_public=3, wrong_private=7)
    sub = h.submit("digits", team, data, "first try", now=NOON)
    npub = n_public(h)
    assert sub["status"] == "scored" and sub["team"] == "owls"
    assert sub["public_score"] == round(1 - 3 / npub, 5)
    assert sub["private_score"] is None and sub["late"] is False and sub["baseline"] is False
    assert sub["submitted_at"] == NOON.isoformat()
    assert sub["remaining_today"] == 4
    archived = h.home / "uploads" / "digits" / f"{sub['id']}.csv"
    assert archived.read_bytes() == data
    assert not list(archived.parent.glob(".*tmp"))
    mine = h.submissions("digits", team)
    assert [s["id"] for s in mine] == [sub["id"]] and mine[0]["private_score"] is None
    teacher = h.all_submissions("digits")
    assert teacher[0]["private_score_full"] == pytest.approx(1 - 7 / n_private(h), abs=1e-12)
    assert teacher[0]["public_score_full"] == pytest.approx(1 - 3 / npub, abs=1e-12)


# An upload's statements run one after another, and on PostgreSQL each is a round trip
# (0.3-0.4 ms on the benchmark machine, README "Benchmarks"): a change that needs another
# raises these bounds knowingly. The check: one read. The write: the state, the quota,
# the submission, its path, its replicates and the standing (read, then written).
UPLOAD_CHECK_STATEMENTS, UPLOAD_WRITE_STATEMENTS = 1, 7


def test_an_upload_takes_a_bounded_number_of_statements(h):
    team, token = h.add_team("owls")
    h.submit("digits", team, predictions(h, wrong_public=5), now=NOON)   # a standing exists
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("BEGIN"):   # no round trip of its own
            statements.append(statement)

    engine = h.context.database.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        checked = h.check_upload("digits", token)
        checks = len(statements)
        sub = h.submit_checked(checked, predictions(h, wrong_public=2))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert sub["status"] == "scored"
    assert checks == UPLOAD_CHECK_STATEMENTS, statements
    assert len(statements) - checks <= UPLOAD_WRITE_STATEMENTS, statements[checks:]


def test_a_failed_transaction_leaves_no_archive_and_no_count(make_harness, monkeypatch):
    h = make_harness(daily_limit=1)
    team, _ = h.add_team("owls")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h.boards, "update_standing", broken)
    with pytest.raises(RuntimeError):
        h.submit("digits", team, predictions(h), now=NOON)
    assert not list((h.home / "uploads" / "digits").glob("*"))
    monkeypatch.undo()
    assert h.submissions("digits", team) == []
    assert h.submit("digits", team, predictions(h), now=NOON)["remaining_today"] == 0


def test_the_archive_is_synced_before_any_lock_and_in_place_before_the_commit(h, monkeypatch):
    """Durability: the upload's bytes are fsynced before its row commits, and before its
    write transaction even begins (no other upload waits on this disk sync); when the row
    commits, its archived file is already in place."""
    team, _ = h.add_team("owls")
    data = predictions(h, wrong_public=2)
    events, real_fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    engine = h.context.database.engine
    archived = h.home / "uploads" / "digits"

    def on_begin(conn):
        events.append("begin")

    def on_commit(conn):
        files = sorted(p.name for p in archived.iterdir()) if archived.is_dir() else []
        events.append(("commit", files))

    sa.event.listen(engine, "begin", on_begin)
    sa.event.listen(engine, "commit", on_commit)
    try:
        sub = h.submit("digits", team, data, now=NOON)
    finally:
        sa.event.remove(engine, "begin", on_begin)
        sa.event.remove(engine, "commit", on_commit)
    writes = events[events.index("fsync"):]
    assert writes[:2] == ["fsync", "begin"], events
    assert writes[-1] == ("commit", [f"{sub['id']}.csv"]), events     # no temporary file left
    assert (archived / f"{sub['id']}.csv").read_bytes() == data


def test_full_precision_is_stored(h):
    team, _ = h.add_team("owls")
    h.submit("digits", team, predictions(h, wrong_public=1), now=NOON)
    full = h.all_submissions("digits")[0]["public_score_full"]
    assert full == 1 - 1 / n_public(h)           # not the rounded value
    assert full != round(full, 5)


def test_refused_files_are_recorded_and_not_counted(make_harness):
    h = make_harness(daily_limit=2)
    team, _ = h.add_team("owls")
    for bad in (b"", b"id,label\n1,3\n", b"hello"):
        with pytest.raises(SubmissionError):
            h.submit("digits", team, bad, now=NOON)
    assert h.submit("digits", team, predictions(h), now=NOON)["remaining_today"] == 1
    assert h.submit("digits", team, predictions(h), now=NOON)["remaining_today"] == 0
    with pytest.raises(LimitError, match="limit of 2"):
        h.submit("digits", team, predictions(h), now=NOON)
    statuses = [s["status"] for s in h.submissions("digits", team)]
    assert statuses.count("error") == 3 and statuses.count("scored") == 2
    errors = [s for s in h.submissions("digits", team) if s["status"] == "error"]
    assert all(s["public_score"] is None and s["error"] for s in errors)
    assert h.leaderboard("digits")["rows"][0]["entries"] == 2


def test_upload_size_cap(make_harness):
    h = make_harness(max_upload_mb=0.01)
    team, _ = h.add_team("owls")
    with pytest.raises(TooLargeError, match="0.01 MB"):
        h.submit("digits", team, b"x" * 20000, now=NOON)
    assert h.submissions("digits", team) == []


def test_unknown_competition_team_and_files(h):
    team, _ = h.add_team("owls")
    with pytest.raises(NotFoundError):
        h.submit("nope", team, predictions(h))
    with pytest.raises(NotFoundError, match="no team 'ghost'"):
        h.team_named("ghost")
    for name in ("solution.csv", "../hidden/solution.csv", "/etc/passwd", "..%2Fsolution.csv",
                 "manifest.json", "competition.toml"):
        with pytest.raises(NotFoundError):
            h.released_file("digits", name)
    for slug in ("../digits", "..", "", "digits/../digits"):
        with pytest.raises(NotFoundError):
            h.get_competition(slug)
    assert h.released_file("digits", "test.csv").name == "test.csv"


def test_daily_limit_turns_over_at_midnight_in_reset_timezone(make_harness):
    h = make_harness(daily_limit=2, reset_timezone="Asia/Taipei")
    team, _ = h.add_team("owls")
    evening = datetime(2026, 3, 1, 15, 0, tzinfo=timezone.utc)       # 23:00 in Taipei
    h.submit("digits", team, predictions(h), now=evening)
    h.submit("digits", team, predictions(h), now=evening + timedelta(minutes=30))
    with pytest.raises(LimitError, match=r"resets at 2026-03-01T16:00:00\+00:00"):
        h.submit("digits", team, predictions(h), now=evening + timedelta(minutes=59))
    # 16:00 UTC is midnight in Taipei, still March 1st in UTC: a new day there
    after = h.submit("digits", team, predictions(h), now=evening + timedelta(hours=1))
    assert after["remaining_today"] == 1
    # an upload checked before midnight and stored after it counts against the new day
    late = evening + timedelta(days=1, minutes=59)                    # 23:59 the next day
    checked = h.uploads.check("digits", team=team, now=late)         # 1 of 2 used that day
    stored = h.uploads.submit_checked(checked, predictions(h), now=late + timedelta(minutes=2))
    assert stored["remaining_today"] == 1                            # 1 of 2 the day after


def test_a_reveal_waits_until_the_competition_is_closed_or_past_its_deadline(make_harness):
    h = make_harness(deadline="2099-01-01T00:00:00+00:00")
    with pytest.raises(ForbiddenError, match="still open .* close it first: `harness close"):
        h.reveal("digits")
    assert h.state("digits") == "open"              # nothing changed
    assert h.close("digits")["state"] == "closed"
    assert h.reveal("digits")["state"] == "revealed"
    assert [a["action"] for a in h.audit_log("digits")] == ["close", "reveal"]


def test_reveal_at_deadline_reveals_by_itself_once(make_harness):
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    h = make_harness(deadline=past.isoformat(), reveal="at_deadline")
    team, _ = h.add_team("owls")
    assert h.state("digits") == "revealed"
    assert h.leaderboard("digits", "private")["revealed"] is True      # students may see it
    late = h.submit("digits", team, predictions(h))
    assert late["late"] is True and late["private_score"] is not None
    other = type(h)(h.home, h.database_url)          # another process finds it done
    assert other.state("digits") == "revealed"
    reveals = [a for a in other.audit_log("digits") if a["action"] == "reveal"]
    assert len(reveals) == 1 and "at_deadline" in reveals[0]["actor"]


def test_total_limit(make_harness):
    h = make_harness(daily_limit=0, total_limit=3)
    team, _ = h.add_team("owls")
    for day in range(3):
        out = h.submit("digits", team, predictions(h), now=NOON + timedelta(days=day))
        assert out["remaining_today"] is None
    with pytest.raises(LimitError, match="3 submissions"):
        h.submit("digits", team, predictions(h), now=NOON + timedelta(days=5))


def test_deadline_close_reopen_reveal_and_late(make_harness):
    deadline = datetime(2026, 6, 1, tzinfo=timezone.utc)
    h = make_harness(deadline=deadline.isoformat(), daily_limit=3)
    team, _ = h.add_team("owls")
    before = deadline - timedelta(hours=1)
    on_time = h.submit("digits", team, predictions(h, 2, 2), now=before)
    with pytest.raises(ForbiddenError, match="ended"):
        h.submit("digits", team, predictions(h), now=deadline + timedelta(seconds=1))
    assert h.state("digits", now=deadline + timedelta(seconds=1)) == "closed"
    assert h.state("digits", now=before) == "open"
    h.close("digits")
    with pytest.raises(ForbiddenError, match="closed"):
        h.submit("digits", team, predictions(h), now=before)
    assert h.reopen("digits")["state"] in ("open", "closed")   # closed when the clock passed
    h.submit("digits", team, predictions(h, 1, 1), now=before)
    with pytest.raises(ForbiddenError):
        h.leaderboard("digits", "private")
    assert h.leaderboard("digits", "private", teacher=True)["revealed"] is False
    assert h.reveal("digits")["state"] == "revealed"        # past its deadline: allowed
    with pytest.raises(ForbiddenError, match="revealed"):
        h.reopen("digits")
    late_day = deadline + timedelta(days=2)
    late = h.submit("digits", team, predictions(h), now=late_day)     # perfect, but late
    assert late["late"] is True and late["private_score"] == 1.0
    assert late["remaining_today"] == 2                               # counts as usual
    for board in ("public", "private"):
        rows = h.leaderboard("digits", board)["rows"]
        assert len(rows) == 1 and rows[0]["score"] < 1.0 and rows[0]["entries"] == 2
    mine = h.submissions("digits", team)
    assert all(s["private_score"] is not None for s in mine)
    assert {s["id"] for s in mine} >= {on_time["id"], late["id"]}
    with pytest.raises(ForbiddenError):
        h.select("digits", team, [on_time["id"]])


# ------------------------------------------------------------------ boards


def test_public_board_best_per_team_ties_to_earlier(h):
    a, _ = h.add_team("alpha")
    b, _ = h.add_team("beta")
    c, _ = h.add_team("gamma")
    h.submit("digits", a, predictions(h, 10), now=NOON)
    h.submit("digits", a, predictions(h, 4), now=NOON + timedelta(minutes=1))
    h.submit("digits", a, predictions(h, 30), now=NOON + timedelta(minutes=2))
    h.submit("digits", b, predictions(h, 4), now=NOON - timedelta(minutes=5))   # earlier tie
    h.submit("digits", c, predictions(h, 0), now=NOON + timedelta(minutes=9))
    board = h.leaderboard("digits")
    assert board["board"] == "public" and board["revealed"] is False
    got = [(r["rank"], r["team"], r["entries"]) for r in board["rows"]]
    assert got == [(1, "gamma", 1), (2, "beta", 1), (3, "alpha", 3)]
    assert board["rows"][1]["score"] == board["rows"][2]["score"]
    assert "private" not in json.dumps(board)


def test_sql_board_matches_the_pure_rules(make_harness):
    """The SQL best-per-team query agrees with rules.public_board on random entries."""
    h = make_harness(daily_limit=0)
    rng = np.random.default_rng(1)
    teams = [h.add_team(f"t{i}")[0] for i in range(6)]
    for k in range(40):
        team = teams[rng.integers(len(teams))]
        h.submit("digits", team, predictions(h, int(rng.integers(0, 6))),
                 now=NOON + timedelta(seconds=int(rng.integers(0, 5))), message=str(k))
    h.add_baseline("digits", "logreg", predictions(h, 2, 2))
    entries = [rules.Entry(s["id"], s["team"], datetime.fromisoformat(s["submitted_at"]),
                           s["public_score_full"], s["private_score_full"],
                           baseline=s["baseline"], selected=s["selected"])
               for s in h.all_submissions("digits")]
    want = rules.public_board(entries, greater_is_better=True, decimals=5)
    assert rules.ranking_only(h.leaderboard("digits")["rows"]) == want


def test_selection_and_private_board(make_harness):
    h = make_harness(final_selections=1)
    a, _ = h.add_team("alpha")
    b, _ = h.add_team("beta")
    best_public = h.submit("digits", a, predictions(h, 0, 40), now=NOON)
    best_private = h.submit("digits", a, predictions(h, 5, 0), now=NOON + timedelta(1))
    h.submit("digits", b, predictions(h, 2, 10), now=NOON)
    # no selection: auto-filled from the best public score
    rows = h.leaderboard("digits", "private", teacher=True)["rows"]
    assert [(r["team"], r["public_rank"]) for r in rows] == [("beta", 2), ("alpha", 1)]
    assert rows[1]["submission_id"] == best_public["id"]
    chosen = h.select("digits", a, [best_private["id"]])
    assert [s["id"] for s in chosen] == [best_private["id"]] and chosen[0]["selected"]
    mine = {s["id"]: s for s in h.submissions("digits", a)}
    assert mine[best_private["id"]]["final"] and not mine[best_public["id"]]["final"]
    rows = h.leaderboard("digits", "private", teacher=True)["rows"]
    assert [(r["rank"], r["team"], r["score"]) for r in rows] == [(1, "alpha", 1.0),
                                                                 (2, "beta", rows[1]["score"])]
    # the selection is replaced, and only the team's own scored on-time entries qualify
    with pytest.raises(HarnessError, match="at most 1"):
        h.select("digits", a, [best_public["id"], best_private["id"]])
    other = h.submissions("digits", b)[0]["id"]
    with pytest.raises(NotFoundError):
        h.select("digits", a, [other])
    with pytest.raises(SubmissionError):
        h.submit("digits", a, b"id,label\n", now=NOON)
    error_id = next(s["id"] for s in h.submissions("digits", a) if s["status"] == "error")
    with pytest.raises(HarnessError, match="only scored"):
        h.select("digits", a, [error_id])
    assert h.select("digits", a, []) == []
    rows = h.leaderboard("digits", "private", teacher=True)["rows"]
    assert rows[0]["team"] == "beta"                 # back to the auto-fill


def test_baselines_are_marked_unranked_and_unlimited(make_harness):
    h = make_harness(daily_limit=1)
    team, _ = h.add_team("owls")
    h.submit("digits", team, predictions(h, 20, 20), now=NOON)
    for k in range(3):
        out = h.add_baseline("digits", "perfect" if k == 0 else f"b{k}", predictions(h, 10 * k))
        assert out["baseline"] is True
    rows = h.leaderboard("digits")["rows"]
    assert [(r["rank"], r["team"], r["baseline"]) for r in rows] == [
        (None, "perfect", True), (None, "b1", True), (1, "owls", False), (None, "b2", True)]
    with pytest.raises(SubmissionError):
        h.add_baseline("digits", "broken", b"id,label\n")
    assert h.get_competition("digits")["teams"] == 1     # baselines are not teams


def test_ladder_fixed_step_shows_only_real_gains(make_harness):
    h = make_harness(leaderboard="ladder", ladder_step=0.05)
    team, _ = h.add_team("owls")
    npub = n_public(h)

    def wrong_for(acc):
        return round(npub * (1 - acc))

    shown = []
    for k, acc in enumerate((0.70, 0.73, 0.74, 0.80, 0.78)):
        out = h.submit("digits", team, predictions(h, wrong_for(acc)),
                       now=NOON + timedelta(minutes=k))
        shown.append(out["public_score"])
    first = rules.ladder_replay([(0, 1 - wrong_for(0.70) / npub, None)],
                                greater_is_better=True, step=0.05)[0].shown
    assert shown[:3] == [first] * 3 and shown[3] > first and shown[4] == shown[3]
    assert h.leaderboard("digits")["rows"][0]["score"] == shown[3]


def test_ladder_parameter_free_matches_a_replay(make_harness):
    h = make_harness(leaderboard="ladder", ladder_step=0, daily_limit=0)
    team, _ = h.add_team("owls")
    key = h.answer_key("digits")
    files = [predictions(h, w) for w in (40, 38, 41, 20, 19, 5)]
    outs = [h.submit("digits", team, f, now=NOON + timedelta(minutes=k))
            for k, f in enumerate(files)]
    from harness.scoring import score
    seq = []
    for k, f in enumerate(files):
        sc = score(f, key)
        seq.append((k, sc.public, sc.public_row_loss(key)))
    want = rules.ladder_replay(seq, greater_is_better=True, step=0)
    assert [o["public_score"] for o in outs] == [d.shown for d in want]
    assert [d.updated for d in want] != [True] * len(want)      # some were held back
    assert h.leaderboard("digits")["rows"][0]["score"] == want[-1].shown
    # a rescore replays the same Ladder
    assert h.rescore("digits")["changed"] == 0


# ------------------------------------------------------------------ rescore


def test_rescore_keeps_history(h):
    team, _ = h.add_team("owls")
    sub = h.submit("digits", team, predictions(h, 0, 0), now=NOON)
    relabel(h, "Public", 5)
    assert h.rescore("digits") == {"rescored": 1, "changed": 1}
    now = h.all_submissions("digits")[0]
    assert now["public_score_full"] == pytest.approx(1 - 5 / n_public(h))
    history = h.score_history("digits", sub["id"])
    assert len(history) == 1 and history[0]["public_score"] == 1.0
    assert h.leaderboard("digits")["rows"][0]["score"] == now["public_score"]
    # an archive that disappeared keeps its scores and is named in the answer
    gone = h.submit("digits", team, predictions(h, 9), now=NOON)
    (h.home / "uploads" / "digits" / f"{gone['id']}.csv").unlink()
    assert h.rescore("digits") == {"rescored": 1, "changed": 0, "missing": [gone["id"]]}
    assert len(h.score_history("digits", sub["id"])) == 2


def test_private_board_after_the_reveal_follows_a_rescore_in_another_process(make_harness):
    server, teacher = make_harness(), make_harness()      # two processes' worth of state
    team, _ = server.add_team("owls")
    server.submit("digits", team, predictions(server, 0, 0), now=NOON)
    teacher.close("digits")
    teacher.reveal("digits")
    first = server.leaderboard("digits", "private")
    assert first == server.leaderboard("digits", "private")          # served from the cache
    assert first["rows"][0]["score"] == 1.0
    relabel(teacher, "Private", 4)
    teacher.rescore("digits")
    again = server.leaderboard("digits", "private")
    assert again["rows"][0]["score"] == pytest.approx(round(1 - 4 / n_private(server), 5))
    again["rows"][0]["score"] = -1                                     # callers cannot
    assert server.leaderboard("digits", "private")["rows"][0]["score"] > 0   # spoil it


# ------------------------------------------------------------------ teams and tokens


def test_a_team_is_its_dict_and_a_name_is_looked_up_first(h):
    """The team methods take the team dict; a name (or a bare id) is refused with the
    fix, and team_named() turns a name into the dict."""
    team, _ = h.add_team("owls", ["Ada"])
    assert h.team_named("owls") == team == {"id": team["id"], "name": "owls",
                                             "members": ["Ada"]}
    for wrong in ("owls", team["id"], {"name": "owls"}, None):
        with pytest.raises(TypeError, match=r"team_named\(name\)"):
            h.submit("digits", wrong, predictions(h), now=NOON)
        with pytest.raises(TypeError, match="team_named"):
            h.submissions("digits", wrong)
    with pytest.raises(TypeError, match="team_named"):
        h.new_token("owls")
    assert h.submissions("digits", team) == []
    stale = {**team, "id": team["id"] + 1000}
    with pytest.raises(NotFoundError, match="no team"):
        h.select("digits", stale, [])


def test_insert_ignore_keeps_the_first_row_and_the_state_is_read_in_one_place(h):
    db = h.context.database
    with db.write() as s:
        for state in ("closed", "open"):
            insert_ignore(s, CompetitionRow, {"slug": "extra", "state": state,
                                              "created_at": datetime(2026, 1, 1)}, ["slug"])
    with db.read() as s:
        ids = s.scalars(sa.select(CompetitionRow.id).where(CompetitionRow.slug == "extra"))
        [extra] = list(ids)
        assert competition_state(s, extra) == "closed"      # the second insert was ignored
        assert competition_state(s, extra + 1000) is None
    digits = h.get_competition("digits")
    h.close("digits")
    with db.read() as s:
        cid = s.scalar(sa.select(CompetitionRow.id).where(CompetitionRow.slug == "digits"))
        assert digits["state"] == "open" and competition_state(s, cid) == "closed"


def test_a_rescore_keeps_the_ladder_cache_of_other_competitions(make_harness):
    """Rescoring one competition leaves the other parts' caches alone: the parameter-free
    Ladder of another competition still compares a new file row by row with the cached
    losses of the best one, even when that file's archive is gone."""
    h = make_harness(leaderboard="ladder", ladder_step=0, daily_limit=0)
    team, _ = h.add_team("owls")
    first = h.submit("digits", team, predictions(h, 20), now=NOON)
    (h.home / "uploads" / "digits" / f"{first['id']}.csv").unlink()
    assert h.rescore("breast-cancer") == {"rescored": 0, "changed": 0}
    # three rows right that were wrong, two wrong that were right: no real gain, so the
    # Ladder holds it back (without the first file's row losses it would move)
    second = h.submit("digits", team, predictions(h, 19, skip_public=3),
                      now=NOON + timedelta(minutes=1))
    assert second["public_score"] == first["public_score"]


def test_tokens_are_random_hashed_and_revocable(h):
    team, token = h.add_team("owls")
    _, other = h.add_team("bats")
    assert len(token) >= 22 and token != other
    with h.context.database.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.text("SELECT token_hash FROM tokens"))]
    assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored
    for bad in (None, "", token[:-1], token + "x", "x" * 10000, token.upper()):
        assert h.authenticate(bad) is None
        # the upload's own check refuses what authenticate refuses, whatever the slug
        assert h.check_upload("digits", bad) is None and h.check_upload("nope", bad) is None
    assert h.check_upload("digits", token).team_name == "owls"
    with pytest.raises(NotFoundError):
        h.check_upload("nope", token)            # a valid token learns the slug is wrong
    fresh = h.new_token(team)
    assert h.authenticate(token) is None and h.authenticate(fresh)["name"] == "owls"
    assert h.check_upload("digits", token) is None
    h.remove_team("owls")
    assert h.authenticate(fresh) is None and h.check_upload("digits", fresh) is None
    h.restore_team("owls")
    assert h.check_upload("digits", fresh).team_id == team["id"]
    with pytest.raises(HarnessError, match="already exists"):
        h.add_team("owls")


def test_import_roster_writes_a_private_tokens_file(h, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("team,member\nowls,Ada\nowls,Alan\nbats,Grace\n\n")
    out, result = h.import_roster_file(roster)
    assert out == tmp_path / "roster-tokens.csv"
    assert result["teams_added"] == 2 and result["members_added"] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["team", "members", "token"]
    assert sorted(rows.team) == ["bats", "owls"]
    assert dict(zip(rows.team, rows.members)) == {"owls": "Ada; Alan", "bats": "Grace"}
    for name, token in zip(rows.team, rows.token):
        assert h.authenticate(token)["name"] == name
    assert {t["name"]: t["members"] for t in h.list_teams()} == {"bats": ["Grace"],
                                                                 "owls": ["Ada", "Alan"]}
    with pytest.raises(HarnessError, match="already exists"):
        h.import_roster_file(roster)
    roster.write_text("team,member\nOWLS ,Edsger\nnewts,Barbara\n")
    more, again = h.import_roster_file(roster, tmp_path / "more.csv")
    assert list(pd.read_csv(more).team) == ["newts"]       # owls keeps its token
    assert again["members_added"] == 1 and again["teams_existing"] == 1
    assert {t["name"]: t["members"] for t in h.list_teams()}["owls"] == ["Ada", "Alan",
                                                                         "Edsger"]


def test_competitions_listing(h):
    comps = {c["slug"]: c for c in h.list_competitions()}
    assert set(comps) == {"digits", "breast-cancer", "fertility", "noise-binary"}
    d = h.get_competition("digits")
    assert d["state"] == "open" and d["rules"]["daily_limit"] == 5
    assert d["public_decimals"] == 5 and d["files"] == ["train.csv", "validation.csv",
                                                         "test.csv", "sample_submission.csv"]
    assert h.answer_key("digits") is h.answer_key("digits")      # cached per process


def test_schema_is_versioned(h, database_url):
    with h.context.database.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT version FROM schema_version")).scalar() \
            == SCHEMA_VERSION
    Harness(h.home, database_url).close_connections()        # a second opener is fine
    with h.context.database.engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    with pytest.raises(HarnessError, match="newer"):
        Harness(h.home, database_url)


# ------------------------------------------------------------------ concurrency


def test_50_concurrent_uploads_of_one_team_yield_exactly_the_limit(make_harness):
    h = make_harness(daily_limit=5)
    team, _ = h.add_team("owls")
    data = predictions(h, 3)
    barrier = threading.Barrier(50)

    def one(_):
        barrier.wait()
        try:
            return h.submit("digits", team, data, now=NOON)["status"]
        except LimitError:
            return "limited"

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    assert results.count("scored") == 5 and results.count("limited") == 45
    assert len(h.submissions("digits", team)) == 5
    assert len(list((h.home / "uploads" / "digits").glob("*.csv"))) == 5


def test_200_teams_upload_at_once_and_all_rank(h, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("team,member\n" + "".join(f"team{i:03d},student{i}\n"
                                                 for i in range(200)))
    h.import_roster_file(roster)               # one transaction for the whole class
    teams = h.list_teams()
    files = [predictions(h, i % 20) for i in range(20)]

    def one(i):
        return h.submit("digits", teams[i], files[i % 20], now=NOON)["status"]

    with ThreadPoolExecutor(32) as pool:
        assert set(pool.map(one, range(200))) == {"scored"}
    rows = h.leaderboard("digits")["rows"]
    assert len(rows) == 200 and [r["rank"] for r in rows] == list(range(1, 201))
    # each archive holds its own upload's bytes, though they were staged side by side
    sent = {team["name"]: files[i % 20] for i, team in enumerate(teams)}
    archive = h.home / "uploads" / "digits"
    assert all((archive / f"{s['id']}.csv").read_bytes() == sent[s["team"]]
               for s in h.all_submissions("digits"))
    assert not list(archive.glob(".*.tmp"))


WORKER = """
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from harness.errors import LimitError
from harness.service import Harness
h = Harness(sys.argv[1], sys.argv[2] or None)
data = open(sys.argv[3], "rb").read()
owls = h.team_named("owls")
def one(_):
    try:
        return h.submit("digits", owls, data, now=datetime(2026, 3, 2, 12, tzinfo=timezone.utc))
    except LimitError:
        return None
with ThreadPoolExecutor(4) as pool:
    print(sum(r is not None for r in pool.map(one, range(8))))
"""


@pytest.mark.slow
def test_several_processes_share_one_limit(make_harness, tmp_path):
    h = make_harness(daily_limit=5)
    h.add_team("owls")
    f = tmp_path / "sub.csv"
    f.write_bytes(predictions(h, 1))
    url = "" if h.database_url.startswith("sqlite") else h.database_url
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(h.home), url, str(f)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "HARNESS_DATABASE_URL": ""})
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert sum(int(o[0]) for o in outs) == 5
    assert len(h.submissions("digits", h.team_named("owls"))) == 5


# ------------------------------------------------------------------ refusals are bounded


def test_refused_files_are_rate_limited_per_team(make_harness):
    """A script sending bad files gets 429 with a retry time after [rules] refusal_limit in
    the window; nothing of the throttled upload is stored; other teams are unaffected."""
    h = make_harness(refusal_limit=4)
    team, _ = h.add_team("spammer")
    other, _ = h.add_team("owls")
    for k in range(4):
        with pytest.raises(SubmissionError):
            h.submit("digits", team, b"id,label\n1,3\n", message=f"bad {k}",
                     now=NOON + timedelta(seconds=k))
    with pytest.raises(LimitError, match="4 files were refused in the last 10 minutes") as caught:
        h.submit("digits", team, predictions(h), now=NOON + timedelta(seconds=5))
    # the oldest refusal (at NOON) leaves the window at NOON + 600 s
    assert 594 <= caught.value.retry_after <= 596
    assert len(h.submissions("digits", team)) == 4
    assert h.submit("digits", other, predictions(h), now=NOON + timedelta(seconds=5))
    # once the window has passed, the team may upload again
    later = NOON + timedelta(seconds=REFUSAL_WINDOW_SECONDS + 1)
    assert h.submit("digits", team, predictions(h), now=later)["status"] == "scored"


def test_only_the_newest_refusals_are_stored(make_harness, monkeypatch):
    from harness.service import submissions

    h = make_harness(refusal_limit=0)          # no rate limit: only the bound acts
    monkeypatch.setattr(submissions, "STORED_REFUSALS", 3)
    team, _ = h.add_team("spammer")
    for k in range(6):
        with pytest.raises(SubmissionError):
            h.submit("digits", team, b"id,label\n1,3\n", message=f"bad {k}",
                     now=NOON + timedelta(seconds=k))
    assert [r["message"] for r in h.submissions("digits", team)] == ["bad 5", "bad 4", "bad 3"]


def test_a_scored_submission_is_never_pruned_with_the_refusals(make_harness, monkeypatch):
    """Only refusals at upload (no archived file) are pruned, never a stored submission."""
    from harness.service import submissions

    h = make_harness(refusal_limit=0)
    monkeypatch.setattr(submissions, "STORED_REFUSALS", 1)
    team, _ = h.add_team("owls")
    h.submit("digits", team, predictions(h), now=NOON)
    for k in range(3):
        with pytest.raises(SubmissionError):
            h.submit("digits", team, b"nonsense", now=NOON + timedelta(seconds=k + 1))
    statuses = [r["status"] for r in h.submissions("digits", team)]
    assert statuses == ["error", "scored"]


def test_submissions_come_in_pages(h):
    team, _ = h.add_team("owls")
    for k in range(5):
        h.submit("digits", team, predictions(h, wrong_public=k), message=str(k),
                 now=NOON + timedelta(seconds=k))
    page, total = h.submissions_page("digits", team, limit=2, offset=1)
    assert total == 5 and [r["message"] for r in page] == ["3", "2"]
    assert h.submissions_page("digits", team, limit=2, offset=4)[0][0]["message"] == "0"
    assert h.submissions_page("digits", team, limit=2, offset=9) == ([], 5)


@pytest.mark.parametrize("board_rules", [{"public_decimals": 2},
                                         {"leaderboard": "ladder", "ladder_step": 0.05}],
                         ids=["rounded", "ladder"])
def test_the_auto_filled_selection_follows_the_board(make_harness, board_rules):
    """Red-team break 2: A (16 public rows wrong) then B (15 wrong) show the same score
    (0.93 rounded; 0.95 on the Ladder, which B does not move); the board keeps A, so the
    fill (and its ``final`` flag) must too, or ``final`` tells the team which file is
    better in digits the board hides."""
    standings = StandingRow.__table__
    h = make_harness(final_selections=1, daily_limit=0, **board_rules)
    team, _ = h.add_team("owls")
    a = h.submit("digits", team, predictions(h, 16, 30), now=NOON)
    b = h.submit("digits", team, predictions(h, 15, 0), now=NOON + timedelta(minutes=1))
    assert a["public_score"] == b["public_score"]           # what the team sees: a tie

    def check():
        for listing in (h.submissions("digits", team), h.all_submissions("digits")):
            final = {s["id"] for s in listing if s["final"]}
            assert final == {a["id"]}
        assert h.leaderboard("digits")["rows"][0]["submission_id"] == a["id"]
        private = h.leaderboard("digits", "private", teacher=True)["rows"]
        assert private[0]["submission_id"] == a["id"]
        decimals = h.prepared("digits").spec.scoring.public_decimals
        assert private[0]["score"] == round(1 - 30 / n_private(h), decimals)

    check()
    # standings stored before their top entries carried the shown score read the same
    def store_legacy(as_text):
        with h.context.database.write() as s:
            for st in s.execute(sa.select(standings.c.id, standings.c.top_entries)).all():
                top = json.loads(st.top_entries) if isinstance(st.top_entries, str) \
                    else st.top_entries
                legacy = [entry[:4] for entry in top]
                s.execute(sa.update(standings).where(standings.c.id == st.id).values(
                    top_entries=json.dumps(legacy) if as_text else legacy))

    store_legacy(as_text=False)
    check()
    store_legacy(as_text=True)              # rows written when the column was text
    check()
    # a worse file (still shown 0.95 by the Ladder, above A's rounded 0.92627) meets them
    h.submit("digits", team, predictions(h, 60, 0), now=NOON + timedelta(minutes=2))
    check()
    h.rescore("digits")
    check()


def test_a_non_finite_score_is_refused_and_not_counted(make_harness, prepared_home):
    """Red-team break 3: predictions of 1e200 make the mean squared error infinite; the
    upload was counted, then its answer failed (500) and the board showed null."""
    set_rules(prepared_home, "fertility", deadline=FAR, daily_limit=2)
    h = make_harness()
    team, _ = h.add_team("owls")
    key = h.answer_key("fertility")
    huge = "id,fertility\n" + "".join(f"{i},1e200\n" for i in key.ids)
    with pytest.raises(SubmissionError, match="the score is not a finite number"):
        h.submit("fertility", team, huge.encode(), now=NOON)
    rows = h.submissions("fertility", team)
    assert [(r["status"], r["public_score"]) for r in rows] == [("error", None)]
    assert "finite" in rows[0]["error"]
    assert h.leaderboard("fertility")["rows"] == []
    assert not list((h.home / "uploads").glob("fertility/*"))
    good = "id,fertility\n" + "".join(f"{i},{y}\n" for i, y in zip(key.ids, key.y))
    assert h.submit("fertility", team, good.encode(), now=NOON)["remaining_today"] == 1


def test_refusal_limit_zero_means_none(make_harness):
    h = make_harness(refusal_limit=0)
    team, _ = h.add_team("owls")
    for k in range(30):
        with pytest.raises(SubmissionError):
            h.submit("digits", team, b"bad", now=NOON + timedelta(seconds=k))
    assert h.submit("digits", team, predictions(h), now=NOON + timedelta(seconds=31))


# ------------------------------------------------------------------ uncertainty on the board


def _interval(h, slug, score, board="public"):
    from harness import uncertainty
    from harness.metrics import METRICS

    n = h.prepared(slug).manifest["rows"][board]
    return uncertainty.intervals(METRICS["accuracy"], [score], n, 5)[0]


def test_board_rows_carry_intervals_and_the_teams_tied_with_the_leader(make_harness):
    h = make_harness(daily_limit=0)
    for name, wrong in (("ace", 0), ("close", 1), ("far", 15), ("farther", 30)):
        team, _ = h.add_team(name)
        h.submit("digits", team, predictions(h, wrong), now=NOON)
    h.add_baseline("digits", "logreg", predictions(h, 2))
    board = h.leaderboard("digits")
    rows = {r["team"]: r for r in board["rows"]}
    assert board["scored_rows"] == n_public(h)
    for r in board["rows"]:                   # exact binomial at the shown score, 5 decimals
        assert r["interval"] == _interval(h, "digits", r["score"])
        assert r["interval"][0] <= r["score"] <= r["interval"][1]
    # one wrong row apart: tied; fifteen: not; the baseline is not in the race
    assert [rows[t]["tied"] for t in ("ace", "close", "far", "farther")] == \
        [True, True, False, False]
    assert rows["logreg"]["tied"] is None and board["tied_with_leader"] == 2
    # the private board after the reveal: the same, from the private rows
    h.close("digits")
    h.reveal("digits")
    private = h.leaderboard("digits", "private")
    assert private["scored_rows"] == n_private(h)
    assert all(r["interval"] == _interval(h, "digits", r["score"], "private")
               for r in private["rows"])
    assert private["tied_with_leader"] == 4                 # all perfect on private rows


def test_equal_shown_scores_get_equal_intervals_whatever_the_files(make_harness):
    """Secrecy: a file's own spread never reaches its interval. Two mse files with the same
    public score, one with equal errors on every row and one with all its error on few
    rows, show the same interval (their replicates, which only the tie test reads, differ)."""
    from harness.store.models import ReplicateRow
    from harness.uncertainty import unpack

    h = make_harness(daily_limit=0)
    key = h.answer_key("fertility")
    pub = key.public_index
    flat, spiky = key.y.astype(float).copy(), key.y.astype(float).copy()
    flat[pub] += 0.1                                    # mse 0.01 on every public row
    spiky[pub[:4]] += 0.1 * np.sqrt(len(pub) / 4)       # the same mse from four rows
    ids = []
    for name, y in (("flat", flat), ("spiky", spiky)):
        team, _ = h.add_team(name)
        data = "id,fertility\n" + "".join(f"{i},{float(v)!r}\n" for i, v in zip(key.ids, y))
        ids.append(h.submit("fertility", team, data.encode(), now=NOON)["id"])
    rows = h.leaderboard("fertility")["rows"]
    assert rows[0]["score"] == rows[1]["score"] == 0.01
    assert rows[0]["interval"] == rows[1]["interval"] and rows[0]["interval"][0] < 0.01
    with h.context.database.read() as s:
        spreads = [unpack(s.get(ReplicateRow, i).public)[1:].std() for i in ids]
    assert spreads[1] > 2 * spreads[0]


def test_nothing_private_reaches_the_public_board_before_the_reveal(prepared_home, tmp_path):
    """Two classes alike but for the private labels show the same public board, intervals
    and ties included."""
    import shutil

    set_rules(prepared_home, deadline=FAR, daily_limit=0)
    other_home = tmp_path / "other"
    shutil.copytree(prepared_home, other_home)
    from harness.home import load_prepared

    solution = load_prepared(other_home, "digits").solution_path
    table = pd.read_csv(solution)
    private = table["Usage"].to_numpy() == "Private"
    table.loc[private, "label"] = (table.loc[private, "label"] + 3) % 10
    table.to_csv(solution, index=False)
    boards = []
    for home in (prepared_home, other_home):
        h = Harness(home)
        for name, wrong in (("a", 0), ("b", 2), ("c", 9)):
            team, _ = h.add_team(name)
            h.submit("digits", team, predictions(h, wrong, wrong), now=NOON)
        board = h.leaderboard("digits")
        boards.append({**board, "rows": [{k: v for k, v in r.items() if k != "last_submission"}
                                         for r in board["rows"]]})
        h.close_connections()
    assert boards[0] == boards[1] and boards[0]["tied_with_leader"] is not None


def test_replicates_lost_or_stale_are_computed_again_from_the_archive(make_harness):
    """A database from before the replicates (or a rescore with new labels) gets them from
    the archived files the first time a board needs them; a lost archive leaves its entry
    untested, and the leader untested means no count."""
    from harness.store.models import ReplicateRow

    h = make_harness(daily_limit=0)
    subs = {}
    for name, wrong in (("a", 0), ("b", 1), ("c", 20)):
        team, _ = h.add_team(name)
        subs[name] = h.submit("digits", team, predictions(h, wrong), now=NOON)["id"]
    want = h.leaderboard("digits")
    with h.context.database.write() as s:
        s.execute(sa.delete(ReplicateRow))
    fresh = make_harness(daily_limit=0)           # another process: nothing cached
    assert fresh.leaderboard("digits") == want
    with fresh.context.database.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ReplicateRow)) == 3
    # a rescore with other public labels: the stored replicates are stale, redone
    comp = fresh.competitions.get("digits")
    before = fresh.boards.fingerprint(comp)
    relabel(fresh, "Public", 25)
    fresh.rescore("digits")
    after = fresh.leaderboard("digits")
    with fresh.context.database.read() as s:
        keys = set(s.scalars(sa.select(ReplicateRow.key)))
    now = fresh.boards.fingerprint(comp)
    assert keys == {now} and now != before
    # c's wrong rows were the relabelled ones: it now leads, 19 rows clear of b
    assert [r["team"] for r in after["rows"]] == ["c", "b", "a"]
    assert after["tied_with_leader"] == 1 and [r["tied"] for r in after["rows"]] == \
        [True, False, False]
    # the leader's archive is gone and its replicates with it: untested
    (fresh.home / "uploads" / "digits" / f"{subs['c']}.csv").unlink()
    with fresh.context.database.write() as s:
        s.execute(sa.delete(ReplicateRow).where(ReplicateRow.submission_id == subs["c"]))
    last = make_harness(daily_limit=0).leaderboard("digits")
    assert last["tied_with_leader"] is None and {r["tied"] for r in last["rows"]} == {None}
    assert all(r["interval"] for r in last["rows"])          # intervals need no replicates


def test_ladder_intervals_come_from_the_ladders_shown_score(make_harness):
    h = make_harness(leaderboard="ladder", ladder_step=0.05, daily_limit=0)
    team, _ = h.add_team("owls")
    for k, wrong in enumerate((40, 38, 36)):            # the Ladder holds the first score
        h.submit("digits", team, predictions(h, wrong), now=NOON + timedelta(minutes=k))
    row = h.leaderboard("digits")["rows"][0]
    assert row["score"] == round(round((1 - 40 / n_public(h)) / 0.05) * 0.05, 12)
    assert row["interval"] == _interval(h, "digits", row["score"])
    assert row["tied"] is True


def test_a_missing_answer_key_leaves_the_board_without_its_tie_test(h):
    """The board needs no answer key: an accuracy interval needs only the shown score and
    the row count; the tie test cannot tell which replicates are current, so it is off."""
    team, _ = h.add_team("owls")
    h.submit("digits", team, predictions(h, 3), now=NOON)
    rows = n_public(h)
    h.prepared("digits").solution_path.unlink()
    board = h.leaderboard("digits")
    assert [r["team"] for r in board["rows"]] == ["owls"]
    assert (board["scored_rows"], board["tied_with_leader"]) == (rows, None)
    row = board["rows"][0]
    assert row["interval"] == _interval(h, "digits", row["score"]) and row["tied"] is None
