"""The audit log of teacher actions (schema_version 2).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("audit",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("at", sa.DateTime, nullable=False),
                    sa.Column("action", sa.String(40), nullable=False),
                    sa.Column("competition", sa.String(200)),
                    sa.Column("detail", sa.Text, nullable=False),
                    sqlite_autoincrement=True)
    op.execute(sa.text("UPDATE schema_version SET version = 2"))
