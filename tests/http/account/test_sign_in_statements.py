"""A password sign-in costs a fixed number of statements, each compiled once per process: SQLAlchemy's compiled
cache must serve every one of them after the first sign-in (a statement it cannot cache is compiled on every
request, which showed up as CPU in the sign-in benchmark)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.engine.interfaces import CacheStats

from tests.conftest import Running
from tests.support.pages import PASSWORD, csrf_token, make_user

# Before the hash, outside a transaction: the account; the limiter's reservation (one multi-row INSERT); its count.
# After it, in one transaction: is there a second factor (TOTP or passkey, one SELECT); the session; the known
# device; the reservation taken back (one DELETE whose subquery locks in id order); the audit event. On PostgreSQL
# those last five are one statement through asyncpg (store.hot's finish_sign_in).
POST_LOGIN = {"sqlite": 8, "postgresql": 4}
THROUGH_SQLALCHEMY = 3  # on PostgreSQL, the ones before the hash


async def test_a_sign_in_costs_a_fixed_number_of_statements_all_from_the_compiled_cache(running: Running) -> None:
    await make_user(running.idp)
    seen: list[tuple[CacheStats, str]] = []
    expected = POST_LOGIN["sqlite" if running.idp.db.is_sqlite else "postgresql"]

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if isinstance(context, DefaultExecutionContext) and context.compiled is not None:
            seen.append((context.cache_hit, " ".join(statement.split())[:80]))

    engine = running.idp.db.engine.sync_engine
    async with running.client() as browser:
        for attempt in ("first", "warm"):
            token = await csrf_token(browser, "/login")
            seen.clear()
            before = running.idp.db.statements
            if attempt == "warm":
                event.listen(engine, "before_cursor_execute", record)
            try:
                answer = await browser.post(
                    "/login", data={"username": "person@example.com", "password": PASSWORD, "csrf_token": token}
                )
            finally:
                if attempt == "warm":
                    event.remove(engine, "before_cursor_execute", record)
            assert answer.status_code == 303
            assert running.idp.db.statements - before == expected
            browser.cookies.clear()

    assert len(seen) == (expected if running.idp.db.is_sqlite else THROUGH_SQLALCHEMY)
    assert [statement for hit, statement in seen if hit is not CacheStats.CACHE_HIT] == []
