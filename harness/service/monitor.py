"""What the teacher watches during a competition: uploads per day and probing teams.

Probing the public board means sending file after file that differ in a few rows and
keeping the changes that raise the public score (the lectures' "hacking the leaderboard").
A team whose consecutive uploads often differ in only a few rows is listed, for the teacher
to look at; nothing is done to it automatically, and students never see the list.
"""

from __future__ import annotations

import statistics

import pandas as pd
from sqlalchemy import func, select

from ..store import SubmissionRow, TeamRow
from .competitions import Competitions
from .context import ServiceContext

LOOKBACK = 30            # a team's newest scored uploads compared
MIN_CLOSE_PAIRS = 5      # this many near-copies in a row pattern make a team listed


def few_rows(n_rows: int) -> int:
    """How many changed rows still count as "few": 1% of the test rows, at least 3."""
    return max(3, n_rows // 100)


class Monitor:
    """Uploads per day and probing teams of one database's competitions.

    Parameters
    ----------
    context : ServiceContext
    competitions : Competitions
    """

    def __init__(self, context: ServiceContext, competitions: Competitions):
        self.context = context
        self.competitions = competitions

    def uploads_per_day(self, slug: str) -> list[dict]:
        """Per UTC day: files sent, scored and refused, oldest day first (baselines out)."""
        comp = self.competitions.get(slug)
        s_ = SubmissionRow
        with self.context.database.read() as s:
            rows = s.execute(select(s_.submitted_at, s_.status).where(
                s_.competition_id == comp.id, s_.team_id.is_not(None))).all()
        days: dict[str, dict] = {}
        for at, status in rows:
            day = days.setdefault(at.date().isoformat(), {"uploads": 0, "scored": 0,
                                                          "refused": 0})
            day["uploads"] += 1
            day["scored" if status == "scored" else "refused"] += 1
        return [{"day": d, **v} for d, v in sorted(days.items())]

    def probing_teams(self, slug: str) -> list[dict]:
        """Teams with at least MIN_CLOSE_PAIRS consecutive scored uploads (of their newest
        LOOKBACK) that differ in few rows (:func:`few_rows`), most such pairs first."""
        comp = self.competitions.get(slug)
        spec = comp.spec
        n_rows = sum(comp.prepared.manifest.get("rows", {}).get(p, 0)
                     for p in ("public", "private"))
        s_ = SubmissionRow
        with self.context.database.read() as s:
            busy = [team_id for team_id, n in s.execute(
                select(s_.team_id, func.count()).where(
                    s_.competition_id == comp.id, s_.team_id.is_not(None),
                    s_.status == "scored", s_.path.is_not(None))
                .group_by(s_.team_id)) if n > MIN_CLOSE_PAIRS]
            names = dict(s.execute(select(TeamRow.id, TeamRow.name).where(
                TeamRow.id.in_(busy), TeamRow.removed_at.is_(None))).all())
            paths = {team_id: list(reversed(s.scalars(select(s_.path).where(
                s_.competition_id == comp.id, s_.team_id == team_id,
                s_.status == "scored", s_.path.is_not(None))
                .order_by(s_.id.desc()).limit(LOOKBACK)).all())) for team_id in names}
        out = []
        for team_id, files in paths.items():
            changed = self._changes(files, spec.data.id_column, spec.data.target)
            close = sum(1 for c in changed if 0 < c <= few_rows(n_rows))
            if close >= MIN_CLOSE_PAIRS:
                out.append({"team": names[team_id], "uploads": len(files),
                            "close_pairs": close,
                            "median_rows_changed": float(statistics.median(changed))})
        return sorted(out, key=lambda r: (-r["close_pairs"], r["team"]))

    def _changes(self, files: list[str], id_column: str, target: str) -> list[int]:
        """Rows changed between each consecutive pair of archived files (as text, by id)."""
        predictions = []
        for path in files:
            try:
                table = pd.read_csv(self.context.home / path, dtype=str,
                                    usecols=[id_column, target], engine="pyarrow")
            except (OSError, ValueError):
                continue               # a vanished archive file: compare what is left
            predictions.append(table.set_index(id_column)[target].str.strip())
        return [int((b.reindex(a.index) != a).sum())
                for a, b in zip(predictions, predictions[1:])]
