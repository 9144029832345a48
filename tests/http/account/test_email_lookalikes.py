"""#10.17: sign-in finds an account by any look-alike of its address, and never by an invisible variant."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Running
from tests.support.pages import PASSWORD, make_user, submit_login


@pytest.mark.parametrize("typed", ["ＫＩＭ@example.com", "\u212aim@example.com", "kim@EXAMPLE.com"])
async def test_sign_in_with_a_look_alike_of_the_address(
    running: Running, client: httpx.AsyncClient, typed: str
) -> None:
    await make_user(running.idp, "kim@example.com")
    response = await submit_login(client, typed, PASSWORD)
    assert response.status_code == 303


@pytest.mark.parametrize("typed", ["k\u200bim@example.com", "ki\u00adm@example.com"])
async def test_an_invisible_variant_is_a_wrong_address(running: Running, client: httpx.AsyncClient, typed: str) -> None:
    await make_user(running.idp, "kim@example.com")
    response = await submit_login(client, typed, PASSWORD)
    assert response.status_code == 400
