"""Attempt limits: reservations told apart from failures; browsers known to an account, counted apart.

Revision ID: 2026_11_30_0007
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp.store.models import UTCDateTime

revision: str = "2026_11_30_0007"
# The lead re-chains the revisions of issue #10 when merging; this one follows the admin tokens.
down_revision: str | None = "2026_11_30_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ratelimit_hits") as batch:
        batch.add_column(sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "known_devices",
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_known_devices_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_hash", name="pk_known_devices"),
    )
    op.create_index("ix_known_devices_user_id", "known_devices", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_known_devices_user_id", table_name="known_devices")
    op.drop_table("known_devices")
    with op.batch_alter_table("ratelimit_hits") as batch:
        batch.drop_column("settled")
