"""user_roles: staff roles (`support`, `admin`) on idp accounts, for the support console at /admin.

Revision ID: 2026_11_30_0016
Revises: 2026_11_30_0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp.store.models import UTCDateTime

revision: str = "2026_11_30_0016"
down_revision: str | None = "2026_11_30_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_roles_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "role", name="pk_user_roles"),
    )


def downgrade() -> None:
    op.drop_table("user_roles")
