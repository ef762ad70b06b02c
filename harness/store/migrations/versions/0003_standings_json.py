"""Standings keep their top entries as a JSON column, not JSON in a text column
(schema_version 3).

The stored text already is JSON, so the values carry over as they are: PostgreSQL casts
each one (``USING top_entries::json``); SQLite copies the table (batch mode).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("standings") as table:
        table.alter_column("top_entries", type_=sa.JSON(), existing_type=sa.Text(),
                           existing_nullable=False, postgresql_using="top_entries::json")
    op.execute(sa.text("UPDATE schema_version SET version = 3"))
