"""Onboarding job boards (INTERFACE §7): external ids per client and imported legacy password hashes.

Revision ID: 2026_11_30_0012
Revises: 2026_11_30_0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp.store.models import BigId, UTCDateTime

revision: str = "2026_11_30_0012"
down_revision: str | None = "2026_11_30_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "external_ids",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "external_id", name="pk_external_ids"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name="fk_external_ids_client_id_clients", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_external_ids_user_id_users", ondelete="CASCADE"),
    )
    op.create_index("ix_external_ids_user_id", "external_ids", ["user_id"])
    op.create_table(
        "legacy_password_hashes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("password_hash", sa.String(1024), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_legacy_password_hashes"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_legacy_password_hashes_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("user_id", "password_hash", name="uq_legacy_password_hashes_user_id_password_hash"),
    )


def downgrade() -> None:
    op.drop_table("legacy_password_hashes")
    op.drop_index("ix_external_ids_user_id", table_name="external_ids")
    op.drop_table("external_ids")
