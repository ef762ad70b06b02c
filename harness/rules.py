"""Leaderboard rules on plain submission records (DESIGN.md "Rules").

Pure: no database, no server, no grading. The store hands in :class:`Entry`
records (or, for speed, per-team bests it computed in SQL with the same rule)
and gets board rows back. Every rule is a small function here so that a test
can check it on hand-made records:

- public board: each team's best *shown* score (the public score rounded to
  ``public_decimals``, or the Ladder's shown score), ties to the earlier
  submission (:func:`best_public`, :func:`rank_bests`, :func:`public_board`);
- final selection: the team's selected submissions, filled up to
  ``final_selections`` from its best shown scores (:func:`final_selection`);
- nothing orders a team's submissions by more than the shown score
  (:func:`public_order`): an order that used hidden digits would leak them
  through the board's entry or the auto-filled ``final`` flag;
- private board: the best private score among the final selection only
  (:func:`private_board`);
- late submissions (after the reveal) and refused files never rank
  (:func:`rankable`); baseline rows are placed by score, marked, and take no
  rank number (``rank`` is None) so they never push a team down;
- the calendar day of the daily limit in ``reset_timezone`` (:func:`day_key`,
  :func:`next_reset`) and the submission window (:func:`submission_window`);
- the Ladder replayed over a team's submissions in order (:func:`ladder_replay`),
  through :func:`harness.ladder.ladder_update`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Iterable
from zoneinfo import ZoneInfo

from .errors import ForbiddenError

if TYPE_CHECKING:
    import numpy as np

    from .ladder import LadderDecision

OPEN, CLOSED, REVEALED = "open", "closed", "revealed"
STATES = (OPEN, CLOSED, REVEALED)
BOARDS = ("kaggle", "ladder")             # how public scores are shown: every score, or the Ladder's
# manual: the teacher runs `harness reveal` after closing; at_deadline: revealed by itself
REVEAL_MODES = ("manual", "at_deadline")


def round_public(value: float, decimals: int) -> float:
    """The public score as the board shows it: :func:`harness.scoring.round_public`,
    imported on the first call, which binds it here in this function's place.

    harness.scoring imports pandas; the student commands import this module (for
    :data:`STATES`, through :mod:`harness.schemas`) and start without it. A plain import
    inside the callers would cost microseconds per board row.
    """
    global round_public
    from .scoring import round_public

    return round_public(value, decimals)


@dataclass(frozen=True)
class Entry:
    """One submission as the rules see it.

    Parameters
    ----------
    id : int
        Submission id (a later id breaks a tie of equal times).
    team : str
        Team name, or the baseline's name when ``baseline``.
    submitted_at : datetime
        When it was received (UTC).
    public, private : float or None
        Full-precision scores (None when not scored).
    shown : float or None
        What the public board shows for it: the Ladder's shown score under
        ``leaderboard = "ladder"``; None means the public score rounded.
    status : str
        ``"scored"`` or ``"error"``.
    late : bool
        Received after the reveal: scored, never ranked.
    baseline : bool
        A teacher's baseline row, not a team.
    selected : bool
        Chosen by the team as a final selection.
    ladder_updated : bool
        This submission moved the team's Ladder score (the Ladder's own state; the
        board orders entries by ``shown`` alone, see :func:`public_order`).
    """

    id: int
    team: str
    submitted_at: datetime
    public: float | None
    private: float | None = None
    shown: float | None = None
    status: str = "scored"
    late: bool = False
    baseline: bool = False
    selected: bool = False
    ladder_updated: bool = False

    @property
    def entrant(self) -> tuple[bool, str]:
        """Who the entry belongs to on a board (a baseline never merges with a team)."""
        return (self.baseline, self.team)


@dataclass(frozen=True)
class TeamBest:
    """One entrant's row before ranking: its board score and the tie-break time."""

    team: str
    baseline: bool
    score: float
    submitted_at: datetime           # of the submission behind the score (ties: earlier wins)
    submission_id: int
    entries: int
    last_submission: datetime


def rankable(entry: Entry) -> bool:
    """Scored and on time: only these count on either board."""
    return entry.status == "scored" and not entry.late and entry.public is not None


def shown_score(entry: Entry, decimals: int) -> float:
    """The public score as the board shows it."""
    return entry.shown if entry.shown is not None else round_public(entry.public, decimals)


def _sign(greater_is_better: bool) -> int:
    return -1 if greater_is_better else 1


def public_order(entry: Entry, *, greater_is_better: bool, decimals: int) -> tuple:
    """Sort key of a team's entries by what the board shows: the smallest key is the best.

    The shown score (:func:`shown_score`: rounded, or the Ladder's), ties to the earlier
    submission, then the smaller id. Only what the team sees may order its entries: a
    later file that improves digits the board does not show (or that moves the Ladder to
    a score that shows the same) must not replace its entry, nor be picked by the
    final-selection fill, or either would reveal the hidden digits one bit per upload.
    """
    return (_sign(greater_is_better) * shown_score(entry, decimals), entry.submitted_at,
            entry.id)


def better_public(candidate: Entry, incumbent: Entry, *, greater_is_better: bool,
                  decimals: int) -> bool:
    """Whether ``candidate`` replaces ``incumbent`` as the team's public board entry."""
    kw = dict(greater_is_better=greater_is_better, decimals=decimals)
    return public_order(candidate, **kw) < public_order(incumbent, **kw)


def best_public(entries: Iterable[Entry], *, greater_is_better: bool,
                decimals: int) -> Entry | None:
    """The entry behind one team's public board score (see :func:`public_order`)."""
    es = [e for e in entries if rankable(e)]
    if not es:
        return None
    return min(es, key=lambda e: public_order(e, greater_is_better=greater_is_better,
                                              decimals=decimals))


def top_public(entries: Iterable[Entry], k: int, *, greater_is_better: bool,
               decimals: int) -> list[Entry]:
    """The ``k`` rankable entries with the best shown scores, best first (:func:`public_order`).

    The final-selection fill draws from these, so a team's selected entries plus its
    ``top_public`` are all its private board needs.
    """
    return sorted((e for e in entries if rankable(e)),
                  key=lambda e: public_order(e, greater_is_better=greater_is_better,
                                             decimals=decimals))[:k]


def rank_bests(bests: Iterable[TeamBest], *, greater_is_better: bool) -> list[dict]:
    """Board rows from per-entrant bests: sorted by score, ties to the earlier submission.

    Teams get ranks 1, 2, ...; baselines are placed by score with ``rank`` None.
    """
    s = _sign(greater_is_better)
    ordered = sorted(bests, key=lambda b: (s * b.score, b.submitted_at, b.submission_id))
    rows, rank = [], 0
    for b in ordered:
        if not b.baseline:
            rank += 1
        rows.append({"rank": None if b.baseline else rank, "team": b.team, "score": b.score,
                     "entries": b.entries, "last_submission": _iso(b.last_submission),
                     "baseline": b.baseline, "submission_id": b.submission_id})
    return rows


# the row fields harness.uncertainty adds on top of these rules (service/boards.py)
UNCERTAINTY_FIELDS = ("interval", "tied")


def ranking_only(rows: Iterable[dict]) -> list[dict]:
    """Board rows without the fields :mod:`harness.uncertainty` adds
    (:data:`UNCERTAINTY_FIELDS`): what these rules decide, so that a served board can be
    compared with one computed here."""
    return [{k: v for k, v in r.items() if k not in UNCERTAINTY_FIELDS} for r in rows]


def _by_entrant(entries: Iterable[Entry]) -> dict[tuple[bool, str], list[Entry]]:
    groups: dict[tuple[bool, str], list[Entry]] = {}
    for e in entries:
        if rankable(e):
            groups.setdefault(e.entrant, []).append(e)
    return groups


def public_board(entries: Iterable[Entry], *, greater_is_better: bool,
                 decimals: int) -> list[dict]:
    """The public leaderboard rows (``rank, team, score, entries, last_submission, baseline``)."""
    bests = []
    for (baseline, team), es in _by_entrant(entries).items():
        b = best_public(es, greater_is_better=greater_is_better, decimals=decimals)
        bests.append(TeamBest(team, baseline, shown_score(b, decimals), b.submitted_at, b.id,
                              len(es), max(e.submitted_at for e in es)))
    return rank_bests(bests, greater_is_better=greater_is_better)


def final_selection(entries: Iterable[Entry], *, final_selections: int,
                    greater_is_better: bool, decimals: int) -> list[Entry]:
    """One team's final selection: what it selected, filled from its best shown scores.

    Only scored, on-time entries qualify. The fill takes the best shown scores (as the
    board shows them, ties to the earlier submission: :func:`top_public`) not already
    selected, never the full precision, which the ``final`` flag would reveal.
    """
    es = [e for e in entries if rankable(e)]
    chosen = sorted((e for e in es if e.selected), key=lambda e: (e.submitted_at, e.id))
    chosen = chosen[:final_selections]
    if len(chosen) < final_selections:
        ids = {e.id for e in chosen}
        chosen += top_public((e for e in es if e.id not in ids),
                             final_selections - len(chosen), greater_is_better=greater_is_better,
                             decimals=decimals)
    return chosen


def private_best(entries: Iterable[Entry], *, final_selections: int, greater_is_better: bool,
                 decimals: int) -> Entry | None:
    """The entry behind one team's private board score: its best private among the final
    selection (rounded to ``decimals``, ties to the earlier submission)."""
    chosen = [e for e in final_selection(entries, final_selections=final_selections,
                                         greater_is_better=greater_is_better, decimals=decimals)
              if e.private is not None]
    if not chosen:
        return None
    s = _sign(greater_is_better)
    return min(chosen, key=lambda e: (s * round_public(e.private, decimals), e.submitted_at,
                                      e.id))


def add_public_ranks(private_rows: list[dict], public_rows: list[dict]) -> list[dict]:
    """Give each private board row its entrant's ``public_rank`` and ``public_score``."""
    public = {(r["baseline"], r["team"]): r for r in public_rows}
    for r in private_rows:
        pub = public.get((r["baseline"], r["team"]))
        r["public_rank"] = pub["rank"] if pub else None
        r["public_score"] = pub["score"] if pub else None
    return private_rows


def private_board(entries: Iterable[Entry], *, greater_is_better: bool, decimals: int,
                  final_selections: int) -> list[dict]:
    """The private leaderboard: the best private score among each team's final selection.

    Scores are rounded to ``decimals`` like the public board and ranked on the
    rounded value, ties to the earlier submission. Each row also carries the
    entrant's ``public_rank`` and ``public_score`` so a page can show the shake-up.
    """
    entries = list(entries)
    bests = []
    for (baseline, team), es in _by_entrant(entries).items():
        b = private_best(es, final_selections=final_selections,
                         greater_is_better=greater_is_better, decimals=decimals)
        if b is not None:
            bests.append(TeamBest(team, baseline, round_public(b.private, decimals),
                                  b.submitted_at, b.id, len(es),
                                  max(e.submitted_at for e in es)))
    rows = rank_bests(bests, greater_is_better=greater_is_better)
    return add_public_ranks(rows, public_board(entries, greater_is_better=greater_is_better,
                                               decimals=decimals))


def day_key(now: datetime, reset_timezone: str) -> str:
    """The calendar day (``YYYY-MM-DD``) of ``now`` in ``reset_timezone``: the daily-limit bucket."""
    return as_utc(now).astimezone(ZoneInfo(reset_timezone)).date().isoformat()


def next_reset(now: datetime, reset_timezone: str) -> datetime:
    """When the daily limit next resets: the coming midnight in ``reset_timezone`` (as UTC)."""
    tz = ZoneInfo(reset_timezone)
    today = as_utc(now).astimezone(tz).date()
    midnight = datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz)
    return midnight.astimezone(timezone.utc)


def submission_window(state: str, deadline: datetime | None, now: datetime,
                      slug: str = "") -> bool:
    """Whether an upload at ``now`` is accepted, and if so whether it is late.

    Returns
    -------
    bool
        True for a late upload (after the reveal: scored, never ranked).

    Raises
    ------
    ForbiddenError
        Closed by the teacher, or past the deadline and not yet revealed.
    """
    name = f"competition {slug!r}" if slug else "the competition"
    if state == REVEALED:
        return True
    if state == CLOSED:
        raise ForbiddenError(f"{name} is closed: uploads are refused until the teacher "
                             "reveals the private leaderboard")
    if deadline is not None and as_utc(now) > as_utc(deadline):
        raise ForbiddenError(f"{name} ended at {_iso(deadline)}: uploads are refused until "
                             "the teacher reveals the private leaderboard")
    return False


def effective_state(state: str, deadline: datetime | None, now: datetime) -> str:
    """The state students see: an open competition past its deadline is closed."""
    if state == OPEN and deadline is not None and as_utc(now) > as_utc(deadline):
        return CLOSED
    return state


def ladder_replay(entries: Iterable[tuple[object, float, np.ndarray | None]], *,
                  greater_is_better: bool, step: float) -> list[LadderDecision]:
    """Run one team's submissions, in order, through the Ladder.

    Parameters
    ----------
    entries : iterable of (key, public score, per-row public losses or None)
        In submission order; ``key`` is returned untouched alongside.
    greater_is_better : bool
    step : float
        ``ladder_step`` (0 = parameter-free, which needs the per-row losses).

    Returns
    -------
    list of LadderDecision
        One per entry: the shown score after it and whether it moved.
    """
    from .ladder import ladder_update      # numpy, which the student commands do without

    shown, best_rows, out = None, None, []
    for _key, public, rows in entries:
        d = ladder_update(shown, public, greater_is_better=greater_is_better, step=step,
                          new_rows=rows, best_rows=best_rows)
        if d.updated:
            shown, best_rows = d.shown, rows
        out.append(d)
    return out


def as_utc(dt: datetime) -> datetime:
    """``dt`` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _iso(dt: datetime | date | None) -> str | None:
    if dt is None:
        return None
    if isinstance(dt, datetime):
        # naive means UTC here; skip the conversion on the hot path of the board
        return dt.isoformat() + "+00:00" if dt.tzinfo is None else as_utc(dt).isoformat()
    return dt.isoformat()


iso_utc = _iso

__all__ = ["Entry", "TeamBest", "rankable", "shown_score", "public_order", "better_public",
           "best_public", "top_public", "private_best", "add_public_ranks", "rank_bests",
           "UNCERTAINTY_FIELDS", "ranking_only",
           "public_board", "final_selection", "private_board", "day_key", "next_reset",
           "submission_window", "effective_state", "ladder_replay", "as_utc", "iso_utc",
           "OPEN", "CLOSED", "REVEALED", "STATES"]
