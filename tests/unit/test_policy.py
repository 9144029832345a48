"""oidc/policy.py and the amr/acr table (INTERFACE §3): when a session may be used, and how strong it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from idp.oidc.policy import Reason, check_session
from idp.services.login import ACR_RANK, amr_and_acr
from idp.services.sessions import ActiveSession
from idp.store.models import User

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def session(methods: tuple[str, ...] = ("pwd",), age: int = 60) -> ActiveSession:
    auth_time = NOW - timedelta(seconds=age)
    return ActiveSession(
        id_hash="h",
        sid="sid",
        user=User(id="u", email="ada@example.com", name="Ada"),
        auth_time=auth_time,
        methods=methods,
        created_at=auth_time,
        expires_at=NOW + timedelta(hours=8),
    )


def check(
    active: ActiveSession | None,
    *,
    prompt: set[str] | None = None,
    max_age: int | None = None,
    required_acr: str = "pwd",
    signed_in_after: datetime | None = None,
) -> Reason | None:
    return check_session(
        active,
        now=NOW,
        prompt=prompt or set(),
        max_age=max_age,
        required_acr=required_acr,
        signed_in_after=signed_in_after,
    )


@pytest.mark.parametrize(
    ("methods", "amr", "acr"),
    [
        (("pwd",), ["pwd"], "pwd"),
        (("pwd", "otp"), ["pwd", "otp", "mfa"], "mfa"),
        (("pwd", "backup"), ["pwd", "mfa"], "mfa"),
        (("pwd", "otp", "backup"), ["pwd", "otp", "mfa"], "mfa"),
        (("pwd", "hwk"), ["pwd", "hwk", "mfa"], "mfa"),
        (("pwd", "swk"), ["pwd", "swk", "mfa"], "mfa"),
        (("swk",), ["swk", "mfa"], "mfa"),
    ],
    ids=[
        "password",
        "password+app",
        "password+backup",
        "password+app+backup",
        "password+device-bound-passkey",
        "password+synced-passkey",
        "passkey-alone",
    ],
)
def test_amr_and_acr_table(methods: tuple[str, ...], amr: list[str], acr: str) -> None:
    assert amr_and_acr(methods) == (amr, acr)
    assert amr_and_acr(list(methods)) == (amr, acr)


def test_mfa_outranks_pwd() -> None:
    assert ACR_RANK["mfa"] > ACR_RANK["pwd"]


def test_nobody_signed_in() -> None:
    assert check(None) is Reason.NO_SESSION
    assert check(None, prompt={"none"}) is Reason.NO_SESSION


def test_a_plain_session_is_good_enough() -> None:
    assert check(session()) is None
    assert check(session(), prompt={"none"}) is None
    assert check(session(), prompt={"consent"}) is None


def test_prompt_login_wants_a_sign_in_after_the_request() -> None:
    active = session(age=60)
    assert check(active, prompt={"login"}) is Reason.PROMPT_LOGIN
    assert check(active, prompt={"login"}, signed_in_after=NOW - timedelta(seconds=120)) is None
    assert check(active, prompt={"login"}, signed_in_after=active.auth_time) is None  # same instant counts
    later = active.auth_time + timedelta(microseconds=1)
    assert check(active, prompt={"login"}, signed_in_after=later) is Reason.PROMPT_LOGIN


def test_max_age_counts_whole_seconds_and_a_fresh_sign_in_satisfies_it() -> None:
    assert check(session(age=300), max_age=300) is None  # exactly max_age is still fine
    assert check(session(age=301), max_age=300) is Reason.MAX_AGE
    assert check(session(age=1), max_age=0) is Reason.MAX_AGE
    assert check(session(age=1), max_age=0, signed_in_after=NOW - timedelta(seconds=5)) is None


def test_acr_mfa_wants_a_second_factor() -> None:
    assert check(session(("pwd",)), required_acr="mfa") is Reason.ACR
    assert check(session(("pwd", "otp")), required_acr="mfa") is None
    assert check(session(("pwd", "backup")), required_acr="mfa") is None
    assert check(session(("pwd", "otp")), required_acr="pwd") is None


def test_reasons_come_in_the_order_a_person_fixes_them() -> None:
    old_weak = session(("pwd",), age=1000)
    assert check(old_weak, prompt={"login"}, max_age=10, required_acr="mfa") is Reason.PROMPT_LOGIN
    assert check(old_weak, max_age=10, required_acr="mfa") is Reason.MAX_AGE
    assert check(old_weak, required_acr="mfa") is Reason.ACR
