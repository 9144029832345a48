"""OpenID Connect: clients, signing keys, authorization codes, tokens, consents, and the session's sid.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp.store.models import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("sid", sa.String(43), nullable=False, server_default=""))
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("redirect_uris", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("post_logout_redirect_uris", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("grant_types", sa.String(200), nullable=False),
        sa.Column("require_mfa", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("require_consent", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("id_token_alg", sa.String(10), nullable=False, server_default="RS256"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_clients"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("alg", sa.String(10), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
    )
    op.create_index("ix_signing_keys_retired_at", "signing_keys", ["retired_at"])
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(43), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(500), nullable=False),
        sa.Column("nonce", sa.String(500), nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=True),
        sa.Column("sid", sa.String(43), nullable=False),
        sa.Column("auth_time", UTCDateTime(), nullable=False),
        sa.Column("amr", sa.String(100), nullable=False),
        sa.Column("acr", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("consumed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_authorization_codes"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_authorization_codes_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_authorization_codes_user_id", "authorization_codes", ["user_id"])
    op.create_index("ix_authorization_codes_expires_at", "authorization_codes", ["expires_at"])
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("grant_id", sa.String(43), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("scope", sa.String(500), nullable=False),
        sa.Column("sid", sa.String(43), nullable=True),
        sa.Column("auth_time", UTCDateTime(), nullable=True),
        sa.Column("amr", sa.String(100), nullable=False, server_default=""),
        sa.Column("acr", sa.String(20), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_tokens"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_tokens_user_id_users", ondelete="CASCADE"),
    )
    op.create_index("ix_tokens_grant_id", "tokens", ["grant_id"])
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_index("ix_tokens_expires_at", "tokens", ["expires_at"])
    op.create_table(
        "consents",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(500), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "client_id", name="pk_consents"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_consents_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name="fk_consents_client_id_clients", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("consents")
    op.drop_table("tokens")
    op.drop_table("authorization_codes")
    op.drop_table("signing_keys")
    op.drop_table("clients")
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("sid")
