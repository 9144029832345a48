"""Authenticator secrets being set up belong to the sign-in session that opened the enrollment page.

Revision ID: 2026_11_30_0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp.store.models import UTCDateTime

revision: str = "2026_11_30_0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "totp_enrollments",
        sa.Column("session_id_hash", sa.String(64), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("session_id_hash", name="pk_totp_enrollments"),
        sa.ForeignKeyConstraint(
            ["session_id_hash"],
            ["login_sessions.id_hash"],
            name="fk_totp_enrollments_session_id_hash_login_sessions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_totp_enrollments_created_at", "totp_enrollments", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_totp_enrollments_created_at", table_name="totp_enrollments")
    op.drop_table("totp_enrollments")
