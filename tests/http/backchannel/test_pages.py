"""The sign-out and end_session pages say what will actually happen (INTERFACE §3): the job boards of this session
with a back-channel URI are signed out; the others are named as keeping the person signed in."""

from __future__ import annotations

import httpx

from tests.conftest import Running
from tests.support.admin import tokens_for
from tests.support.oidc import make_client
from tests.support.pages import csrf_from
from tests.support.receiver import Receiver


def job_board_lists(html: str) -> list[str]:
    return [part.split("</ul>")[0] for part in html.split('<ul class="job-boards">')[1:]]


async def test_the_pages_name_the_boards_that_will_be_signed_out_and_those_that_will_not(
    running: Running, browser: httpx.AsyncClient, board: Receiver
) -> None:
    told = await make_client(running.idp, "Nordic Jobs", backchannel_logout_uri=board.uri)
    not_told = await make_client(running.idp, "Fjord Careers")
    await make_client(running.idp, "Unused Board", backchannel_logout_uri=board.uri)
    await tokens_for(running, browser, told)
    await tokens_for(running, browser, not_told)

    for page in (await browser.get("/logout"), await browser.get("/end_session", params={"client_id": told.client_id})):
        assert "These job sites will be signed out too:" in page.text
        assert "These job sites keep you signed in until you sign out there:" in page.text
        will, wont = job_board_lists(page.text)
        assert "Nordic Jobs" in will
        assert "Fjord Careers" not in will
        assert "Fjord Careers" in wont
        assert "Unused Board" not in page.text
        assert "all job sites" not in page.text  # no promise beyond what is sent

    page = await browser.get("/logout", headers={"Accept-Language": "nb"})
    assert "Disse jobbnettstedene blir også logget ut:" in page.text
    done = await browser.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert "These job sites are told to sign you out too:" in done.text
    assert "Nordic Jobs" in job_board_lists(done.text)[0]


async def test_a_session_without_boards_promises_nothing(running: Running, browser: httpx.AsyncClient) -> None:
    page = await browser.get("/logout")
    assert "job-boards" not in page.text
    assert "will be signed out" not in page.text
