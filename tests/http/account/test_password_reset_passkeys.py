"""`/password/reset` with a passkey as the second factor (INTERFACE §4), with fido2's software authenticator: a
passkey-only person resets with it and everything ends as with a code; the challenge belongs to one reset link,
is single use and short-lived, and every refused or replayed answer leaves the old password in place."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.store.models import LoginSession
from tests.conftest import Running
from tests.http.account.conftest import deliver_mail
from tests.http.account.test_passkeys import add_passkey, events, rows, sign_out
from tests.http.account.test_password_reset import forgot
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login
from tests.support.passkeys import SoftAuthenticator, request_options_from, reset_options_from
from tests.support.smtp import SmtpServer, links_in, text_of

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
EMAIL = "person@example.com"
OTHER = "someone.else@example.com"
NEW_PASSWORD = "violet kettle drums at midnight"
_PROOF = re.compile(r'name="passkey_proof" value="([^"]+)"')


@pytest.fixture
async def running(start_app: StartApp, mail_settings: Callable[..., Settings]) -> Running:
    return await start_app(mail_settings())


async def person_with_passkey(running: Running, client: httpx.AsyncClient, email: str = EMAIL) -> SoftAuthenticator:
    """A person whose only second factor is a passkey (two-step verification on, no authenticator app)."""
    await make_user(running.idp, email)
    assert (await submit_login(client, email, PASSWORD)).status_code == 303
    key = SoftAuthenticator()
    assert (await add_passkey(client, key)).status_code == 200
    return key


async def reset_page(client: httpx.AsyncClient, link: str) -> str:
    page = await client.get(link)
    assert page.status_code == 200, page.text
    return page.text


def proof_from(page: str) -> str:
    match = _PROOF.search(page)
    assert match, "no passkey proof on the reset page"
    return match.group(1)


async def post_reset(
    client: httpx.AsyncClient,
    link: str,
    page: str,
    credential: str,
    *,
    proof: str | None = None,
    password: str = NEW_PASSWORD,
) -> httpx.Response:
    data = {
        "token": link.split("token=", 1)[1],
        "password": password,
        "credential": credential,
        "passkey_proof": proof_from(page) if proof is None else proof,
        "csrf_token": csrf_from(page),
    }
    return await client.post("/password/reset", data=data)


async def old_password_works(client: httpx.AsyncClient, email: str = EMAIL) -> bool:
    """The old password still gets to the second step (nothing was reset)."""
    answer = await submit_login(client, email, PASSWORD)
    return answer.status_code == 303 and answer.headers["location"].startswith("/login/verify")


def reset_links(smtp: SmtpServer) -> list[str]:
    found = [u for m in smtp.inbox.to(EMAIL) for u in links_in(m) if "/password/reset?token=" in u]
    return [u.removeprefix("http://testserver") for u in found]


async def new_link(running: Running, smtp: SmtpServer, client: httpx.AsyncClient) -> str:
    """Ask for a reset link and return it (other mail, such as notices, may be delivered in the same round)."""
    await deliver_mail(running)
    seen = reset_links(smtp)
    assert (await forgot(client, EMAIL)).status_code == 200
    await deliver_mail(running)
    [link] = [u for u in reset_links(smtp) if u not in seen]
    return link


def reasons(found: list[Any]) -> list[str]:
    return [json.loads(e.details)["reason"] for e in found]


async def test_a_passkey_only_person_resets_with_the_passkey_and_everything_ends(
    running: Running, smtp: SmtpServer, clock: FrozenClock
) -> None:
    async with running.client() as elsewhere, running.client(ip="203.0.113.9") as c:
        key = await person_with_passkey(running, elsewhere)
        clock.advance(60)
        link = await new_link(running, smtp, c)
        page = await reset_page(c, link)
        options = json.loads(reset_options_from(page))
        # Only this person's passkey is named; the script is our own file (CSP script-src 'self').
        assert [d["id"] for d in options["allowCredentials"]] == [key.credential_id_b64]
        assert '<script src="/static/passkeys.js' in page
        assert "Use a passkey" in page

        done = await post_reset(c, link, page, key.assertion(reset_options_from(page)))

        assert done.status_code == 200, done.text
        assert "Your password was changed" in done.text
        # As with a code: every session ends, a notice goes out, the old password is gone.
        assert (await elsewhere.get("/account")).status_code == 303
        async with running.idp.db.transaction() as session:
            assert (await session.execute(select(LoginSession))).scalars().all() == []
        assert await deliver_notice(running, smtp)
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 400
        assert (await submit_login(c, EMAIL, NEW_PASSWORD)).headers["location"].startswith("/login/verify")
    [row] = await rows(running)
    assert row.sign_count == key.counter
    assert row.last_used_at == clock.now()
    assert len(await events(running, "password.reset")) == 1
    assert len(await events(running, "passkey.used")) == 1


async def deliver_notice(running: Running, smtp: SmtpServer) -> bool:
    await deliver_mail(running)
    return any("was just changed" in text_of(m) for m in smtp.inbox.to(EMAIL))


async def test_the_passkey_of_another_person_is_refused(running: Running, smtp: SmtpServer) -> None:
    async with running.client() as a, running.client() as b, running.client() as c:
        await person_with_passkey(running, a)
        stranger = await person_with_passkey(running, b, OTHER)
        link = await new_link(running, smtp, c)
        page = await reset_page(c, link)
        before = await rows(running)

        refused = await post_reset(c, link, page, stranger.assertion(reset_options_from(page)))

        assert refused.status_code == 400
        assert "The passkey could not be checked" in refused.text
        assert await old_password_works(c)
        assert (await reset_page(c, link)).count("data-passkey-reset") == 1  # the link is still good
    assert [(r.sign_count, r.last_used_at) for r in await rows(running)] == [
        (r.sign_count, r.last_used_at) for r in before
    ]
    assert reasons(await events(running, "mfa.failure")) == ["passkey_of_another_person"]
    assert await events(running, "password.reset") == []


async def test_a_stale_challenge_is_refused_and_a_fresh_one_works(
    running: Running, smtp: SmtpServer, clock: FrozenClock
) -> None:
    async with running.client() as a, running.client() as c:
        key = await person_with_passkey(running, a)
        link = await new_link(running, smtp, c)
        page = await reset_page(c, link)
        clock.advance(5 * 60 + 1)

        refused = await post_reset(c, link, page, key.assertion(reset_options_from(page)))

        assert refused.status_code == 400
        assert await old_password_works(c)
        assert reasons(await events(running, "mfa.failure")) == ["no_challenge"]
        # Nothing was used up: the same link with a fresh page's challenge works.
        fresh = await reset_page(c, link)
        assert (await post_reset(c, link, fresh, key.assertion(reset_options_from(fresh)))).status_code == 200


async def test_a_challenge_from_another_reset_link_is_refused(running: Running, smtp: SmtpServer) -> None:
    async with running.client() as a, running.client() as c:
        key = await person_with_passkey(running, a)
        first = await new_link(running, smtp, c)
        second = await new_link(running, smtp, c)
        assert first != second
        page = await reset_page(c, first)
        answer = key.assertion(reset_options_from(page))

        # The first link's challenge and proof, sent with the second link.
        refused = await post_reset(c, second, page, answer)

        assert refused.status_code == 400
        assert await old_password_works(c)
        # Nor does a proof of a challenge never handed out, or no proof at all.
        other_page = await reset_page(c, second)
        forged = proof_from(other_page).split(".")
        forged[0] = json.loads(reset_options_from(page))["challenge"]
        assert (await post_reset(c, second, other_page, answer, proof=".".join(forged))).status_code == 400
        assert (await post_reset(c, second, other_page, answer, proof="")).status_code == 400
        assert await old_password_works(c)
    assert reasons(await events(running, "mfa.failure")) == ["no_challenge"] * 3
    assert await events(running, "password.reset") == []


async def test_a_replayed_answer_is_refused(running: Running, smtp: SmtpServer, clock: FrozenClock) -> None:
    async with running.client() as a, running.client() as c:
        key = await person_with_passkey(running, a)
        link = await new_link(running, smtp, c)
        page = await reset_page(c, link)
        answer = key.assertion(reset_options_from(page))
        assert (await post_reset(c, link, page, answer)).status_code == 200
        [used] = await rows(running)

        # The same answer again, on the same link (used up) and on a new one (another reset's challenge).
        assert (await post_reset(c, link, page, answer)).status_code == 400
        clock.advance(60)
        later = await new_link(running, smtp, c)
        later_page = await reset_page(c, later)
        data = {
            "token": later.split("token=", 1)[1],
            "password": "another quite different passphrase",
            "credential": answer,
            "passkey_proof": proof_from(page),
            "csrf_token": csrf_from(later_page),
        }
        replayed = await c.post("/password/reset", data=data)

        assert replayed.status_code == 400
        # The password is the one the first reset set, not the replay's.
        assert (await submit_login(c, EMAIL, NEW_PASSWORD)).headers["location"].startswith("/login/verify")
    [after] = await rows(running)
    assert (after.sign_count, after.last_used_at) == (used.sign_count, used.last_used_at)
    assert len(await events(running, "password.reset")) == 1


async def test_an_answer_to_a_sign_in_challenge_does_not_reset(
    running: Running, smtp: SmtpServer, clock: FrozenClock
) -> None:
    async with running.client() as a, running.client() as c:
        key = await person_with_passkey(running, a)
        await sign_out(a)
        login = await submit_login(a, EMAIL, PASSWORD)
        verify = (await a.get(login.headers["location"])).text
        answer = key.assertion(request_options_from(verify))
        link = await new_link(running, smtp, c)
        page = await reset_page(c, link)

        assert (await post_reset(c, link, page, answer)).status_code == 400
        assert await old_password_works(c)


@pytest.mark.parametrize("same_link", [True, False], ids=["one link", "two links"])
async def test_two_resets_at_once_on_two_replicas_let_exactly_one_through(
    running: Running,
    start_app: StartApp,
    mail_settings: Callable[..., Settings],
    smtp: SmtpServer,
    clock: FrozenClock,
    same_link: bool,
) -> None:
    # Both answers check out against the stored sign counter before either writes, so only the database's
    # conditional writes (the link consumed, the challenge spent, the counter moved) can tell them apart.
    replica = await start_app(mail_settings())
    passwords = ["violet kettle drums at midnight", "amber lanterns over the fjord"]
    async with running.client() as a, running.client() as c, replica.client() as d:
        key = await person_with_passkey(running, a)
        clock.advance(60)
        links = [await new_link(running, smtp, c)]
        clock.advance(60)
        links.append(links[0] if same_link else await new_link(running, smtp, c))
        pages = [await reset_page(c, links[0]), await reset_page(d, links[1])]
        answers = [key.assertion(reset_options_from(page)) for page in pages]

        done = await asyncio.gather(
            post_reset(c, links[0], pages[0], answers[0], password=passwords[0]),
            post_reset(d, links[1], pages[1], answers[1], password=passwords[1]),
        )

        assert sorted(r.status_code for r in done) == [200, 400], [r.text for r in done]
        winner, loser = (0, 1) if done[0].status_code == 200 else (1, 0)
        assert (await submit_login(c, EMAIL, passwords[loser])).status_code == 400
        assert (await submit_login(c, EMAIL, passwords[winner])).headers["location"].startswith("/login/verify")
    assert len(await events(running, "password.reset")) == 1
    assert len(await events(running, "passkey.used")) == 1
    [row] = await rows(running)
    assert row.sign_count == key_counter_of(winner)


def key_counter_of(answer: int) -> int:
    """The counter the software authenticator put in the n-th answer (from 0) after registering at 0."""
    return answer + 1
