"""Running a course (schema_version 5): teacher tokens, case-insensitive team names, team
removal, member sections and who acted in the audit log.

Existing team names get their key (the name case-folded); where two names differ only in
case, the later team's key carries its id, so both stay usable and the teacher can rename
one. New columns only, added in place: no table is rebuilt.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("teacher_tokens",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
                    sa.Column("label", sa.String(200), nullable=False),
                    sa.Column("created_at", sa.DateTime, nullable=False),
                    sa.Column("revoked", sa.Boolean, nullable=False),
                    sqlite_autoincrement=True)
    op.add_column("teams", sa.Column("name_key", sa.String(220)))
    op.add_column("teams", sa.Column("removed_at", sa.DateTime))
    op.add_column("members", sa.Column("section", sa.String(200)))
    op.add_column("audit", sa.Column("actor", sa.String(200)))
    conn = op.get_bind()
    seen: set[str] = set()
    for team_id, name in conn.execute(sa.text("SELECT id, name FROM teams ORDER BY id")):
        key = name.strip().casefold()
        if key in seen:
            key = f"{key}#{team_id}"
        seen.add(key)
        conn.execute(sa.text("UPDATE teams SET name_key = :key WHERE id = :id"),
                     {"key": key, "id": team_id})
    op.create_index("ux_teams_name_key", "teams", ["name_key"], unique=True)
    op.execute(sa.text("UPDATE schema_version SET version = 5"))
