"""When an existing sign-in is good enough (OIDC Core §3.1.2.1 prompt, max_age, acr_values), as a named reason.

`None` means the session may be used as it is; otherwise the reason names what is missing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from idp.services.login import ACR_RANK, amr_and_acr
from idp.services.sessions import ActiveSession


class Reason(StrEnum):
    NO_SESSION = "no_session"  # nobody is signed in
    PROMPT_LOGIN = "prompt_login"  # the RP asked for a fresh sign-in
    MAX_AGE = "max_age"  # the sign-in is older than the RP allows
    ACR = "acr"  # the sign-in is weaker than the RP or client requires


def check_session(
    active: ActiveSession | None,
    *,
    now: datetime,
    prompt: set[str],
    max_age: int | None,
    required_acr: str,
    signed_in_after: datetime | None,
) -> Reason | None:
    """The first reason the session cannot be used, in the order a person would fix them.

    `signed_in_after` is set when this request comes back from a sign-in we asked for: a session whose
    auth_time is not older than that satisfies `prompt=login` and `max_age` (else both would loop forever).
    """
    if active is None:
        return Reason.NO_SESSION
    fresh = signed_in_after is not None and active.auth_time >= signed_in_after
    if "login" in prompt and not fresh:
        return Reason.PROMPT_LOGIN
    if max_age is not None and not fresh and (now - active.auth_time).total_seconds() > max_age:
        return Reason.MAX_AGE
    _, acr = amr_and_acr(active.methods)
    if ACR_RANK[acr] < ACR_RANK[required_acr]:
        return Reason.ACR
    return None
