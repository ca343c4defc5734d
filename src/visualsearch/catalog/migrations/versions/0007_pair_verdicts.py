"""Pixel-check verdicts of candidate copy pairs, so a duplicates run only checks new pairs.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pair_verdicts",
        sa.Column("first_sha256", sa.String(64), primary_key=True),
        sa.Column("second_sha256", sa.String(64), primary_key=True),
        sa.Column("method", sa.String(32), primary_key=True),
        sa.Column("same", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pair_verdicts")
