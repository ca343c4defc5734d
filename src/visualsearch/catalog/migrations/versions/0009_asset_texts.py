"""Words read in pictures (OCR), and a word index to find the pictures that show a word.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "asset_texts",
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("reader", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_table(
        "asset_words",
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("word", sa.String(64), primary_key=True),
    )
    op.create_index("ix_asset_words_word", "asset_words", ["word"])
    if op.get_bind().dialect.name == "postgresql":
        # Prefix lookups compare words in code point order (COLLATE "C"); an index in the database's
        # own collation cannot serve them. SQLite's default (BINARY) already is code point order.
        op.execute('CREATE INDEX ix_asset_words_word_c ON asset_words (word COLLATE "C")')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_asset_words_word_c")
    op.drop_index("ix_asset_words_word", table_name="asset_words")
    op.drop_table("asset_words")
    op.drop_table("asset_texts")
