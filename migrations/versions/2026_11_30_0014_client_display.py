"""clients: display metadata (RFC 7591 §2) — client_name, logo_uri, client_uri — shown on the pages a person
reaches from that job board.

Revision ID: 2026_11_30_0014
Revises: 2026_11_30_0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_11_30_0014"
down_revision: str | None = "2026_11_30_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty means "not registered": existing clients keep showing their registration name and no logo.
    op.add_column("clients", sa.Column("client_name", sa.String(200), nullable=False, server_default=""))
    op.add_column("clients", sa.Column("logo_uri", sa.String(2000), nullable=False, server_default=""))
    op.add_column("clients", sa.Column("client_uri", sa.String(2000), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("client_uri")
        batch.drop_column("logo_uri")
        batch.drop_column("client_name")
