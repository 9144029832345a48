"""Two-step verification: authenticator secrets, backup codes, pending sign-in sessions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp.store.models import BigId, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("fresh_codes", sa.Text(), nullable=True))
        batch.add_column(sa.Column("fresh_codes_at", UTCDateTime(), nullable=True))
    op.create_table(
        "totp_credentials",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_totp_credentials"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_totp_credentials_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "backup_codes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_backup_codes"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_backup_codes_user_id_users", ondelete="CASCADE"),
    )
    op.create_index("ix_backup_codes_user_id_code_hash", "backup_codes", ["user_id", "code_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_backup_codes_user_id_code_hash", table_name="backup_codes")
    op.drop_table("backup_codes")
    op.drop_table("totp_credentials")
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("fresh_codes_at")
        batch.drop_column("fresh_codes")
        batch.drop_column("pending")
