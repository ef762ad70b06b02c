"""Each scored submission's bootstrap replicates, for the board's tie test (schema_version 4).

A new table only: submissions stored before it get their replicates computed from the
archived file the first time a board needs them.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("replicates",
                    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"),
                              primary_key=True),
                    sa.Column("key", sa.String(16), nullable=False),
                    sa.Column("public", sa.Text, nullable=False),
                    sa.Column("private", sa.Text, nullable=False))
    op.execute(sa.text("UPDATE schema_version SET version = 4"))
