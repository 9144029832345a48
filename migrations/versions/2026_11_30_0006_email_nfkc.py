"""Recompute users.email_norm with the Unicode normaliser (NFKC, case-folded) instead of lower().

Rows are taken oldest first (created_at, then id); each gets its new form unless an older row already holds it.
Then it keeps its current form; if that too is held, it gets `legacy:<id>`, which holds no @ and so no sign-in
ever finds it (an operator still reaches the account by id). The migration never fails on such a collision.

Revision ID: 2026_11_30_0006
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from idp.services.users import normalize_email

revision: str = "2026_11_30_0006"
down_revision: str | None = "2026_11_30_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _renormalise(normalize_email)


def downgrade() -> None:
    _renormalise(lambda email: email.strip().lower())


def plan(rows: Sequence[tuple[str, str, str]], normalise: Callable[[str], str]) -> dict[str, str]:
    """The new email_norm of each (id, email, email_norm) row, oldest first; only rows that change."""
    taken: set[str] = set()
    changes: dict[str, str] = {}
    for user_id, email, current in rows:
        wanted = normalise(email)[:320]
        for candidate in (wanted, current, f"legacy:{user_id}"):
            if candidate not in taken:
                break
        taken.add(candidate)
        if candidate != current:
            changes[user_id] = candidate
    return changes


def _renormalise(normalise: Callable[[str], str]) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, email, email_norm FROM users ORDER BY created_at, id")).all()
    changes = plan([(r[0], r[1], r[2]) for r in rows], normalise)
    update = sa.text("UPDATE users SET email_norm = :norm WHERE id = :id")
    # Two steps, so that no row briefly takes a form another row still holds (the unique index checks each one).
    for user_id in changes:
        connection.execute(update, {"norm": f"migrating:{user_id}", "id": user_id})
    for user_id, norm in changes.items():
        connection.execute(update, {"norm": norm, "id": user_id})
