"""PostgreSQL: a pgvector column beside each stored vector, so search can run in the database.

SQLite: nothing to do (vectors stay as float32 blobs and are indexed on disk).

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # Unsized: every model and space has its own width; HNSW indexes are partial
    # expression indexes per (model, space) with a cast to the fixed width.
    op.execute("ALTER TABLE embeddings ADD COLUMN IF NOT EXISTS vec vector")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE embeddings DROP COLUMN IF EXISTS vec")
