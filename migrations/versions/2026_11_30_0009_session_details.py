"""Online and offline refresh tokens; session lookups by `sid` for the sessions page (issue #11).

Revision ID: 2026_11_30_0009
Revises: 2026_11_30_0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_11_30_0009"
down_revision: str | None = "2026_11_30_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An offline refresh token (granted offline_access) survives the end of its IdP session; others die with it.
    op.add_column("tokens", sa.Column("offline", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Tokens issued before this revision were all long-lived: those granted offline_access stay offline.
    op.execute(
        "UPDATE tokens SET offline = true WHERE kind = 'refresh' AND (' ' || scope || ' ') LIKE '% offline_access %'"
    )
    # The refresh's liveness join, and the sessions page's "job boards" lookup, go by sid.
    op.create_index("ix_login_sessions_sid", "login_sessions", ["sid"])
    op.create_index("ix_tokens_sid", "tokens", ["sid"])
    op.create_index("ix_authorization_codes_sid", "authorization_codes", ["sid"])


def downgrade() -> None:
    op.drop_index("ix_authorization_codes_sid", table_name="authorization_codes")
    op.drop_index("ix_tokens_sid", table_name="tokens")
    op.drop_index("ix_login_sessions_sid", table_name="login_sessions")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("offline")
