"""account_tokens.new_email: a link that changes the sign-in address carries the new address (issue #13).

Revision ID: 2026_11_30_0015
Revises: 2026_11_30_0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_11_30_0015"
down_revision: str | None = "2026_11_30_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and unread by the previous release: additive, so replicas of both releases run side by side.
    with op.batch_alter_table("account_tokens") as batch:
        batch.add_column(sa.Column("new_email", sa.String(320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_tokens") as batch:
        batch.drop_column("new_email")
