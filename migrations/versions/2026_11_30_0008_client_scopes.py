"""Client scopes for client_credentials; single-use sign-in continuation markers.

Revision ID: 2026_11_30_0008
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp.store.models import UTCDateTime

revision: str = "2026_11_30_0008"
down_revision: str | None = "2026_11_30_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing clients registered no scopes: their client_credentials tokens carry none (issue #10.12).
    op.add_column("clients", sa.Column("scope", sa.String(500), nullable=False, server_default=""))
    op.create_table(
        "used_markers",
        sa.Column("marker_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("marker_hash", name="pk_used_markers"),
    )
    op.create_index("ix_used_markers_expires_at", "used_markers", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_used_markers_expires_at", table_name="used_markers")
    op.drop_table("used_markers")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("scope")
