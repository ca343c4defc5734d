"""Embedding row ids are never handed out twice (SQLite AUTOINCREMENT).

An index catches up by asking for rows written after the last one it saw, and tells a
rewritten vector from the old one by its row id. Without AUTOINCREMENT, SQLite gives a
new row the largest id plus one, so deleting the newest rows made the next ones reuse
their ids: a rewritten vector could keep its old id and the index would never re-read it.
PostgreSQL's sequences never reuse a number, so only SQLite's table is rebuilt.

Revision ID: 0008
Revises: 0007
"""

import warnings

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # The batch rebuild copies the rows with their ids; SQLite then starts its sequence after the largest.
    # Reflecting the tables it refers to warns about the assets table's expression index, which it
    # does not touch.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection")
        with op.batch_alter_table("embeddings", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("embeddings", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
