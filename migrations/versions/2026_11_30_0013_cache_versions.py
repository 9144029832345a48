"""cache_versions: a change counter per in-process cache (clients), read by every replica at most once a second.

Revision ID: 2026_11_30_0013
Revises: 2026_11_30_0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_11_30_0013"
down_revision: str | None = "2026_11_30_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cache_versions",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_cache_versions"),
    )


def downgrade() -> None:
    op.drop_table("cache_versions")
