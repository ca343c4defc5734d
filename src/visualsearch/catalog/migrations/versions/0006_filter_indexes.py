"""Indexes for filtered search on large libraries.

Every filter also asks for ``status = 'indexed'``, which nearly every row has; with only the
single-column status index, SQLite walked that index over the whole table for a folder, format
or date filter (about half a second at a million assets). Composite indexes that start with the
status let the folder (a range on the source), the format and the date be looked up directly.

PostgreSQL compares the source byte-wise (``COLLATE "C"``) so that a prefix is a range of the
index whatever the database's locale; SQLite's default collation already is byte-wise.

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    source = 'source COLLATE "C"' if op.get_bind().dialect.name == "postgresql" else "source"
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_assets_status_source ON assets (status, {source})")
    op.execute("CREATE INDEX IF NOT EXISTS ix_assets_status_format ON assets (status, upper(format))")
    op.execute("CREATE INDEX IF NOT EXISTS ix_assets_status_added_at ON assets (status, added_at)")


def downgrade() -> None:
    for name in ("ix_assets_status_source", "ix_assets_status_format", "ix_assets_status_added_at"):
        op.execute(f"DROP INDEX IF EXISTS {name}")
