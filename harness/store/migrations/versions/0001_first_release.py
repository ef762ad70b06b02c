"""The first release's schema (schema_version 1): competitions, teams, tokens,
submissions, selections, quotas, standings, score history.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AUTO = {"sqlite_autoincrement": True}
SCORE = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table("schema_version",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("version", sa.Integer, nullable=False))
    op.create_table("competitions",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("slug", sa.String(200), nullable=False, unique=True),
                    sa.Column("state", sa.String(16), nullable=False),
                    sa.Column("created_at", sa.DateTime, nullable=False),
                    sa.Column("closed_at", sa.DateTime),
                    sa.Column("revealed_at", sa.DateTime), **AUTO)
    op.create_table("teams",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(200), nullable=False, unique=True),
                    sa.Column("created_at", sa.DateTime, nullable=False), **AUTO)
    op.create_table("members",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("team_id", sa.Integer,
                              sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
                    sa.Column("name", sa.String(200), nullable=False),
                    sa.UniqueConstraint("team_id", "name"), **AUTO)
    op.create_index("ix_members_team_id", "members", ["team_id"])
    op.create_table("tokens",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("team_id", sa.Integer,
                              sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
                    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
                    sa.Column("created_at", sa.DateTime, nullable=False),
                    sa.Column("revoked", sa.Boolean, nullable=False), **AUTO)
    op.create_index("ix_tokens_team_id", "tokens", ["team_id"])
    op.create_table("submissions",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("competition_id", sa.Integer, sa.ForeignKey("competitions.id"),
                              nullable=False),
                    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id")),
                    sa.Column("baseline_name", sa.String(200)),
                    sa.Column("filename", sa.String(300), nullable=False),
                    sa.Column("path", sa.String(500)),
                    sa.Column("message", sa.Text, nullable=False),
                    sa.Column("submitted_at", sa.DateTime, nullable=False),
                    sa.Column("day", sa.String(10)),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("error", sa.Text),
                    sa.Column("public_score", SCORE),
                    sa.Column("private_score", SCORE),
                    sa.Column("shown", SCORE),
                    sa.Column("ladder_updated", sa.Boolean, nullable=False),
                    sa.Column("late", sa.Boolean, nullable=False),
                    sa.Column("baseline", sa.Boolean, nullable=False), **AUTO)
    op.create_index("ix_submissions_board", "submissions",
                    ["competition_id", "status", "late", "team_id"])
    op.create_index("ix_submissions_team", "submissions", ["team_id", "competition_id"])
    op.create_table("score_history",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"),
                              nullable=False),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("public_score", SCORE),
                    sa.Column("private_score", SCORE),
                    sa.Column("shown", SCORE),
                    sa.Column("replaced_at", sa.DateTime, nullable=False),
                    sa.Column("reason", sa.String(200), nullable=False), **AUTO)
    op.create_index("ix_score_history_submission_id", "score_history", ["submission_id"])
    op.create_table("selections",
                    sa.Column("competition_id", sa.Integer, sa.ForeignKey("competitions.id"),
                              primary_key=True),
                    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"),
                              primary_key=True),
                    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"),
                              primary_key=True))
    op.create_table("quotas",
                    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"),
                              primary_key=True),
                    sa.Column("competition_id", sa.Integer, sa.ForeignKey("competitions.id"),
                              primary_key=True),
                    sa.Column("period", sa.String(16), primary_key=True),
                    sa.Column("used", sa.Integer, nullable=False))
    op.create_table("standings",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("competition_id", sa.Integer, sa.ForeignKey("competitions.id"),
                              nullable=False),
                    sa.Column("entrant", sa.String(220), nullable=False),
                    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id")),
                    sa.Column("baseline_name", sa.String(200)),
                    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"),
                              nullable=False),
                    sa.Column("score", SCORE, nullable=False),
                    sa.Column("best_at", sa.DateTime, nullable=False),
                    sa.Column("entries", sa.Integer, nullable=False),
                    sa.Column("last_submission", sa.DateTime, nullable=False),
                    sa.Column("top_entries", sa.Text, nullable=False),
                    sa.Column("top_size", sa.Integer, nullable=False),
                    sa.UniqueConstraint("competition_id", "entrant"), **AUTO)
    op.execute(sa.text("INSERT INTO schema_version (id, version) VALUES (1, 1)"))
