"""The store: SQLAlchemy models and the database they live in.

Only :mod:`harness.service` uses this package; everything above calls the service.
:mod:`harness.store.queries` holds the queries the service runs in several places.
"""

from .db import Database, default_url, to_store_time, utcnow
from .models import (SCHEMA_VERSION, AuditRow, CompetitionRow, MemberRow, QuotaRow, ScoreHistoryRow,
                     SelectionRow, StandingRow, SubmissionRow, TeacherTokenRow, TeamRow,
                     TokenRow)
from .queries import competition_state, insert_ignore

__all__ = ["Database", "default_url", "to_store_time", "utcnow", "SCHEMA_VERSION", "AuditRow",
           "CompetitionRow", "MemberRow", "QuotaRow", "ScoreHistoryRow", "SelectionRow",
           "StandingRow", "SubmissionRow", "TeacherTokenRow", "TeamRow", "TokenRow", "competition_state",
           "insert_ignore"]
