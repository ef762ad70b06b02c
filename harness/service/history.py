"""What happened before: rescoring with its score history, and the teacher's audit log.

A rescore touches no other part's cache: it reloads the answer key through
:meth:`Competitions.answer_key`, the Ladder's cached row losses carry the key they
were computed with, and the private-board cache is keyed by the standings it rebuilds.
"""

from __future__ import annotations

from sqlalchemy import select, update

from .. import rules
from ..errors import SubmissionError
from ..scoring import AnswerKey, score
from ..store import AuditRow, ScoreHistoryRow, SubmissionRow, utcnow
from .boards import Boards
from .competitions import Competition, Competitions
from .context import ServiceContext, record_audit

submissions_table = SubmissionRow.__table__


class History:
    """Rescoring, the score history it keeps, and the audit log of teacher actions.

    Parameters
    ----------
    context : ServiceContext
        The home (the archived uploads) and the database.
    competitions, boards : Competitions, Boards
        The answer keys, and the standings a rescore rebuilds.
    """

    def __init__(self, context: ServiceContext, competitions: Competitions, boards: Boards):
        self.context = context
        self.competitions = competitions
        self.boards = boards

    def rescore(self, slug: str) -> dict:
        """Score every archived submission again (after an answer-key fix), keeping history.

        Old scores go to the score history; the public board's shown scores (and the
        Ladder) are recomputed in submission order. Returns ``{"rescored", "changed"}``,
        plus ``"missing"`` (ids) when archived files have disappeared (their scores stay).
        """
        comp = self.competitions.get(slug)
        key = self.competitions.answer_key(slug, reload=True)
        with self.context.database.read() as s:
            rows = list(s.scalars(select(SubmissionRow).where(
                SubmissionRow.competition_id == comp.id, SubmissionRow.path.is_not(None))
                .order_by(SubmissionRow.submitted_at, SubmissionRow.id)))
        new, missing = self._score_again(comp, key, rows)
        changed = 0
        with self.context.database.write() as s:
            for row in rows:
                if row.id not in new:
                    continue
                n = new[row.id]
                old = (row.status, row.public_score, row.private_score, row.shown)
                if old != (n["status"], n["public_score"], n["private_score"], n["shown"]):
                    changed += 1
                s.add(ScoreHistoryRow(submission_id=row.id, status=row.status,
                                      public_score=row.public_score,
                                      private_score=row.private_score, shown=row.shown,
                                      replaced_at=utcnow(), reason="rescore"))
                s.execute(update(submissions_table)
                          .where(submissions_table.c.id == row.id).values(**n))
            self.boards.rebuild_standings(s, comp)
            record_audit(s, "rescore", slug, f"{len(new)} rescored, {changed} changed"
                         + (f", {len(missing)} archived files missing" if missing else ""))
        out = {"rescored": len(new), "changed": changed}
        if missing:
            out["missing"] = missing
        return out

    def _score_again(self, comp: Competition, key: AnswerKey,
                     rows: list[SubmissionRow]) -> tuple[dict[int, dict], list[int]]:
        """The new column values of each archived submission (by id), entrant by entrant
        with the Ladder replayed in submission order, and the ids whose file is gone."""
        spec = comp.spec
        new: dict[int, dict] = {}
        missing: list[int] = []
        groups: dict = {}
        for row in rows:
            groups.setdefault((row.team_id, row.baseline_name), []).append(row)
        ladder = spec.rules.leaderboard == "ladder"
        for group in groups.values():
            def scored(group=group):
                for row in group:
                    path = self.context.home / row.path
                    if not path.is_file():
                        missing.append(row.id)       # keep its scores; say so in the answer
                        continue
                    try:
                        sc = score(path, key)
                    except SubmissionError as exc:
                        new[row.id] = dict(status="error", error=str(exc), public_score=None,
                                           private_score=None, shown=None,
                                           ladder_updated=False)
                        continue
                    new[row.id] = dict(status="scored", error=None, public_score=sc.public,
                                       private_score=sc.private, shown=comp.rounded(sc.public),
                                       ladder_updated=False)
                    if ladder and not row.late:
                        losses = sc.public_row_loss(key) if not spec.rules.ladder_step else None
                        yield row.id, sc.public, losses
            if ladder:
                on_time = list(scored())
                decisions = rules.ladder_replay(
                    on_time, greater_is_better=spec.metric.greater_is_better,
                    step=spec.rules.ladder_step)
                for (submission_id, _, _), d in zip(on_time, decisions):
                    new[submission_id].update(shown=d.shown, ladder_updated=d.updated)
            else:
                for _ in scored():
                    pass
        return new, missing

    def audit_log(self, slug: str | None = None) -> list[dict]:
        """The teacher actions (close, reopen, reveal, rescore, teams, baselines), oldest
        first; only those of ``slug`` (and the server-wide team changes) when given."""
        with self.context.database.read() as s:
            q = select(AuditRow).order_by(AuditRow.id)
            if slug is not None:
                q = q.where((AuditRow.competition == slug) | AuditRow.competition.is_(None))
            return [{"at": rules.iso_utc(r.at), "action": r.action,
                     "competition": r.competition, "detail": r.detail,
                     "actor": r.actor or "home (server machine)"}
                    for r in s.scalars(q)]

    def score_history(self, slug: str, submission_id: int) -> list[dict]:
        """The scores a submission had before each rescore, oldest first (teacher view)."""
        comp = self.competitions.get(slug)
        with self.context.database.read() as s:
            hist = s.scalars(select(ScoreHistoryRow).join(
                SubmissionRow, SubmissionRow.id == ScoreHistoryRow.submission_id).where(
                SubmissionRow.competition_id == comp.id,
                ScoreHistoryRow.submission_id == submission_id).order_by(ScoreHistoryRow.id))
            return [{"submission_id": h.submission_id, "status": h.status,
                     "public_score": h.public_score, "private_score": h.private_score,
                     "shown": h.shown, "replaced_at": rules.iso_utc(h.replaced_at),
                     "reason": h.reason} for h in hist]
