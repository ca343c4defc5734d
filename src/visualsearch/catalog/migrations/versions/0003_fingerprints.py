"""Duplicates: pixel digest and perceptual hash per asset.

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
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("pixel_sha256", sa.String(64)))
        batch.add_column(sa.Column("phash", sa.String(16)))
    op.create_index("ix_assets_pixel_sha256", "assets", ["pixel_sha256"])


def downgrade() -> None:
    op.drop_index("ix_assets_pixel_sha256", "assets")
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("phash")
        batch.drop_column("pixel_sha256")
