"""The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2) as an ordered pipeline of named checks.

Until the client and its redirect URI are known to be genuine, errors are an HTML page (never a redirect);
after that they go back to the relying party with `state` and `iss` (RFC 9207).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from idp.auth.tokens import hmac_hex, new_opaque, sha256_hex
from idp.errors import UnreadableInput
from idp.i18n import N_
from idp.oidc import pkce
from idp.oidc.errors import (
    AccessDenied,
    ConsentRequired,
    InteractionRequired,
    InvalidRequest,
    InvalidScope,
    LoginRequired,
    OAuthError,
    UnauthorizedClient,
    UnsupportedResponseType,
    redirect_error,
    redirect_with,
)
from idp.oidc.limits import AUTHORIZE_LIMITS as LIMITS
from idp.oidc.limits import MAX_CONTINUATION
from idp.oidc.policy import Reason, check_session
from idp.services.clients import OIDC_SCOPES, ClientInfo
from idp.services.login import amr_and_acr
from idp.services.sessions import ActiveSession
from idp.templating import render
from idp.web import messages
from idp.web.board import authorization_continuation, board_of
from idp.web.errors import csrf_failed, error_page
from idp.web.params import read_form, read_form_params, read_query_params
from idp.web.request import client_ip, services, session_cookie

PROMPTS = {"none", "login", "consent"}
ACR_VALUES = {"pwd", "mfa"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# How long a sign-in continuation marker is honoured: time enough to sign in (or reset a password) and come back.
MARKER_LIFETIME = timedelta(hours=1)
# What a marker is bound to: the request it was made for. `prompt` is bound without `consent`, which the consent
# page drops when it posts the request back; login_hint and ui_locales only shape the pages.
_MARKER_BOUND = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "max_age",
    "acr_values",
    "response_mode",
)


class PageError(Exception):
    """An error shown on idp's own page: the client or redirect URI cannot be trusted with a redirect."""


@dataclass
class AuthorizationRequest:
    """What the checks have established so far."""

    raw: dict[str, str]
    repeated: set[str]
    too_long: set[str] = field(default_factory=set)
    client: ClientInfo | None = None
    redirect_uri: str = ""
    state: str | None = None
    scopes: list[str] = field(default_factory=list)
    nonce: str | None = None
    code_challenge: str | None = None
    prompt: set[str] = field(default_factory=set)
    max_age: int | None = None
    required_acr: str = "pwd"
    signed_in_after: datetime | None = None
    marker: str | None = None


Check = Callable[[AuthorizationRequest, Request], Awaitable[None] | None]


# -- checks whose failure is shown as a page ---------------------------------------------------------


async def check_client(req: AuthorizationRequest, request: Request) -> None:
    """client_id is given once and names a registered client."""
    if "client_id" in req.repeated:
        raise PageError(N_("The request repeats client_id."))
    client_id = req.raw.get("client_id", "")
    if not client_id:
        raise PageError(N_("The request has no client_id."))
    req.client = await services(request).clients.find(client_id)
    if req.client is None:
        raise PageError(N_("The application that sent you here is not registered with this sign-in service."))


def check_redirect_uri(req: AuthorizationRequest, request: Request) -> None:
    """redirect_uri is given once and matches a registered URI exactly (OIDC Core §3.1.2.1), but for the port of
    a loopback IP (RFC 8252 §7.3)."""
    assert req.client is not None
    uri = req.raw.get("redirect_uri", "")
    if "redirect_uri" in req.repeated or not uri or not req.client.allows_redirect_uri(uri):
        raise PageError(N_("The address to return to is not registered for this application."))
    req.redirect_uri = uri
    state = req.raw.get("state")
    req.state = state if state and "state" not in req.repeated else None


# -- checks whose failure is redirected to the relying party ------------------------------------------


def check_no_repeats(req: AuthorizationRequest, request: Request) -> None:
    """RFC 6749 §3.1: parameters must not be included more than once."""
    if req.repeated:
        raise InvalidRequest("a parameter is repeated", detail=f"repeated: {sorted(req.repeated)[0]}")


def check_lengths(req: AuthorizationRequest, request: Request) -> None:
    """Every parameter within its size limit and free of NUL (such a state is not echoed back)."""
    if req.too_long:
        raise InvalidRequest(
            "a parameter is too long or malformed", detail=f"too long or malformed: {sorted(req.too_long)[0]}"
        )


def check_no_request_objects(req: AuthorizationRequest, request: Request) -> None:
    """Request objects (OIDC Core §6) are not supported; say so precisely rather than ignore them."""
    if req.raw.get("request") or req.raw.get("request_uri"):
        raise InvalidRequest("request and request_uri are not supported")


def check_response_type(req: AuthorizationRequest, request: Request) -> None:
    """Only the authorization code flow: response_type=code, response_mode query."""
    assert req.client is not None
    response_type = req.raw.get("response_type", "")
    if not response_type:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    if req.raw.get("response_mode", "query") != "query":
        raise InvalidRequest("only response_mode=query is supported")
    if "authorization_code" not in req.client.grant_types:
        raise UnauthorizedClient("this client is not registered for the authorization code flow")


def check_scope(req: AuthorizationRequest, request: Request) -> None:
    """scope must include openid; every scope must be one we know."""
    scopes = list(dict.fromkeys(req.raw.get("scope", "").split()))
    if "openid" not in scopes:
        raise InvalidScope("scope must include openid")
    unknown = [s for s in scopes if s not in OIDC_SCOPES]
    if unknown:
        raise InvalidScope("the request holds a scope this server does not know", detail=f"scope {unknown[0][:40]!r}")
    req.scopes = scopes


def check_pkce(req: AuthorizationRequest, request: Request) -> None:
    """RFC 7636 with S256 only; required for public clients. A challenge without a method means plain."""
    assert req.client is not None
    challenge = req.raw.get("code_challenge")
    method = req.raw.get("code_challenge_method")
    if not challenge:
        if method:
            raise InvalidRequest("code_challenge_method without code_challenge")
        if req.client.public:
            raise InvalidRequest("PKCE is required for this client: send code_challenge with S256")
        return
    if method != pkce.S256:
        raise InvalidRequest("code_challenge_method must be S256; plain is not allowed")
    if not pkce.is_valid_challenge(challenge):
        raise InvalidRequest("code_challenge must be a base64url SHA-256 (43 characters)")
    req.code_challenge = challenge


def check_prompt(req: AuthorizationRequest, request: Request) -> None:
    """prompt values are none, login, consent; none stands alone (OIDC Core §3.1.2.1)."""
    prompt = set(req.raw.get("prompt", "").split())
    if not prompt <= PROMPTS:
        raise InvalidRequest("prompt may only hold none, login and consent")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")
    req.prompt = prompt


def check_max_age(req: AuthorizationRequest, request: Request) -> None:
    """max_age is a non-negative number of seconds."""
    value = req.raw.get("max_age")
    if value is None or value == "":
        return
    # str.isdigit() alone accepts "²" (int() then fails: a 500) and other scripts' digits.
    if not (value.isascii() and value.isdigit()):
        raise InvalidRequest("max_age must be a non-negative integer")
    req.max_age = int(value)


def check_acr(req: AuthorizationRequest, request: Request) -> None:
    """acr_values=mfa, or a client registered with require_mfa, demands two factors."""
    assert req.client is not None
    values = req.raw.get("acr_values", "").split()
    known = [v for v in values if v in ACR_VALUES]
    if values and not known:
        raise InvalidRequest("acr_values must name pwd or mfa")
    wants_mfa = bool(known) and "pwd" not in known
    req.required_acr = "mfa" if wants_mfa or req.client.require_mfa else "pwd"


def check_nonce(req: AuthorizationRequest, request: Request) -> None:
    """nonce is carried into the ID token as given."""
    req.nonce = req.raw.get("nonce") or None


def check_return_marker(req: AuthorizationRequest, request: Request) -> None:
    """idp's own signed note that this request comes back from a sign-in it asked for: made for exactly this
    request, within the last hour. Anything else is ignored (the person is asked to sign in again). It is spent
    when it earns a code (`_spend_marker`), so neither a replay nor a second replica can use it again."""
    marker = req.raw.get("idp_auth_after")
    if not marker:
        return
    stamp, nonce, signature = [*marker.split("."), "", ""][:3]
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 17 and nonce):
        return
    # As bytes: compare_digest refuses str with non-ASCII characters, and the marker is whatever the URL says.
    if not hmac.compare_digest(signature.encode(), _marker_signature(request, stamp, nonce, req.raw).encode()):
        return
    minted = _EPOCH + timedelta(microseconds=int(stamp))
    if minted <= services(request).clock.now() < minted + MARKER_LIFETIME:
        req.signed_in_after = minted
        req.marker = marker


PAGE_CHECKS: list[Check] = [check_client, check_redirect_uri]
REDIRECT_CHECKS: list[Check] = [
    check_no_repeats,
    check_lengths,
    check_no_request_objects,
    check_response_type,
    check_scope,
    check_pkce,
    check_prompt,
    check_max_age,
    check_acr,
    check_nonce,
    check_return_marker,
]


# -- the endpoint --------------------------------------------------------------------------------------


async def authorize(request: Request) -> Response:
    """GET or POST /authorize."""
    try:
        raw, repeated, too_long = await _read_params(request)
    except PageError as exc:
        return _error_page(request, str(exc))
    req = AuthorizationRequest(raw=raw, repeated=repeated, too_long=too_long)
    try:
        await run_checks(req, request)
    except PageError as exc:
        return _error_page(request, str(exc))
    except OAuthError as exc:
        return _redirect_error(request, req, exc)
    try:
        return await _decide(request, req, consent_given=False)
    except OAuthError as exc:
        return _redirect_error(request, req, exc)


async def consent_submit(request: Request) -> Response:
    """POST /authorize/consent: the person allowed or denied; the request is checked again from scratch."""
    idp = services(request)
    try:
        form = await read_form(request, {**LIMITS, "csrf_token": 128, "decision": 10})
    except UnreadableInput as exc:
        return _error_page(request, str(exc))
    if not idp.csrf.check(request, form.pop("csrf_token")):
        return csrf_failed(request)
    decision = form.pop("decision")
    req = AuthorizationRequest(raw={k: v for k, v in form.items() if v}, repeated=set())
    try:
        await run_checks(req, request)
        if decision != "allow":
            raise AccessDenied("the person declined to share their information")
        return await _decide(request, req, consent_given=True)
    except PageError as exc:
        return _error_page(request, str(exc))
    except OAuthError as exc:
        return _redirect_error(request, req, exc)


async def cancel_submit(request: Request) -> Response:
    """POST /authorize/cancel: "Cancel" on sign-in, enrollment or consent. Back to the job board with
    `access_denied`, `state` and `iss` (INTERFACE §3) — only ever to a redirect URI registered for its client, as
    checked by the same page checks as /authorize; anything else is idp's own error page, never a redirect."""
    idp = services(request)
    try:
        form = await read_form(request, {"csrf_token": 128, "next": MAX_CONTINUATION})
    except UnreadableInput as exc:
        return _error_page(request, str(exc))
    if not idp.csrf.check(request, form["csrf_token"]):
        return csrf_failed(request)
    found = authorization_continuation(form["next"])
    if found is None:
        return _error_page(request, N_("There is no sign-in request to cancel."))
    _, query = found
    raw = {k: v[0] for k, v in query.items() if k in LIMITS and len(v[0]) <= LIMITS[k]}
    repeated = {k for k, v in query.items() if len(v) > 1}
    req = AuthorizationRequest(raw=raw, repeated=repeated)
    try:
        for check in PAGE_CHECKS:
            result = check(req, request)
            if result is not None:
                await result
    except PageError as exc:
        return _error_page(request, str(exc))
    return _redirect_error(request, req, AccessDenied("the person cancelled"))


async def run_checks(req: AuthorizationRequest, request: Request) -> None:
    for check in [*PAGE_CHECKS, *REDIRECT_CHECKS]:
        result = check(req, request)
        if result is not None:
            await result


async def _decide(request: Request, req: AuthorizationRequest, *, consent_given: bool) -> Response:
    """Use the session if policy allows, else send the person to sign in; then consent; then the code."""
    idp = services(request)
    assert req.client is not None
    active = await idp.sessions.current(session_cookie(request))

    def policy(signed_in_after: datetime | None) -> Reason | None:
        return check_session(
            active,
            now=idp.clock.now(),
            prompt=req.prompt,
            max_age=req.max_age,
            required_acr=req.required_acr,
            signed_in_after=signed_in_after,
        )

    reason = policy(req.signed_in_after)
    if reason is not None:
        return _session_not_usable(request, req, reason)
    assert active is not None

    if req.client.require_consent or "consent" in req.prompt:
        known = await idp.grants.codes.has_consent(active.user.id, req.client.client_id, req.scopes)
        if consent_given:
            await idp.grants.codes.save_consent(
                active.user.id, req.client.client_id, req.scopes, client_ip=client_ip(request)
            )
        elif "consent" in req.prompt or not known:
            if "none" in req.prompt:
                raise ConsentRequired("the person has not allowed this application yet")
            return _consent_page(request, req, active)

    # A marker is spent by the code it earns, needed or not: unspent, it would still be good for a replay later,
    # when the sign-in has aged past max_age. Spent before, it counts for nothing.
    if req.marker is not None and not await _spend_marker(request, req):
        reason = policy(None)
        if reason is not None:
            return _session_not_usable(request, req, reason)
    amr, acr = amr_and_acr(active.methods)
    code = await idp.grants.codes.issue_code(
        req.client,
        active,
        redirect_uri=req.redirect_uri,
        scope=" ".join(req.scopes),
        nonce=req.nonce,
        code_challenge=req.code_challenge,
        amr=amr,
        acr=acr,
    )
    return redirect_with(req.redirect_uri, {"code": code, "state": req.state, "iss": idp.settings.issuer})


def _session_not_usable(request: Request, req: AuthorizationRequest, reason: Reason) -> Response:
    """Sign in (or add the second factor) and come back; with prompt=none, say why not instead (OIDC Core §3.1.2.6)."""
    if "none" in req.prompt:
        if reason is Reason.ACR:
            raise InteractionRequired("two-step verification is required")
        raise LoginRequired("the person must sign in")
    if reason is Reason.ACR:
        # Ask for the second factor only (or, without one, for enrollment: that counts as the factor).
        return redirect_with("/login/verify", {"next": "/authorize?" + urlencode(req.raw)})
    return _to_login(request, req)


async def _spend_marker(request: Request, req: AuthorizationRequest) -> bool:
    """Use the request's marker once: a replayed continuation (browser history, a second tab, another replica)
    finds it spent and must sign in again."""
    assert req.marker is not None
    assert req.signed_in_after is not None
    return await services(request).grants.codes.use_marker(req.marker, expires_at=req.signed_in_after + MARKER_LIFETIME)


def _to_login(request: Request, req: AuthorizationRequest) -> Response:
    """Send the person to /login; the continuation is this request, marked as coming back from sign-in."""
    assert req.client is not None
    # prompt=login stays in the continuation: only a sign-in after the stamp below satisfies it (check_session),
    # so following the continuation without signing in again cannot skip the fresh sign-in.
    params = {k: v for k, v in req.raw.items() if k != "idp_auth_after"}
    # In microseconds: a whole-second stamp would let a sign-in from earlier in that second count as fresh.
    stamp = str((services(request).clock.now() - _EPOCH) // _MICROSECOND)
    # The nonce makes every marker distinct, so spending one (by its hash) spends no other.
    nonce = new_opaque(12)
    params["idp_auth_after"] = f"{stamp}.{nonce}.{_marker_signature(request, stamp, nonce, req.raw)}"
    continuation = "/authorize?" + urlencode(params)
    login_params: dict[str, str | None] = {"next": continuation}
    if req.raw.get("login_hint"):
        login_params["login_hint"] = req.raw["login_hint"]
    if req.raw.get("ui_locales"):
        login_params["ui_locales"] = req.raw["ui_locales"]
    if "login" in req.prompt or req.max_age is not None:
        login_params["reauth"] = "1"
    return redirect_with("/login", login_params)


def _consent_page(request: Request, req: AuthorizationRequest, active: ActiveSession) -> Response:
    assert req.client is not None
    hidden = {k: v for k, v in req.raw.items() if k in LIMITS}
    hidden["prompt"] = " ".join(sorted(req.prompt - {"consent"}))
    continuation = "/authorize?" + urlencode(req.raw)
    board = board_of(req.client, continuation, requires_mfa=req.required_acr == "mfa")
    return render(
        request,
        "authorize/consent.html",
        {"client": req.client, "scopes": req.scopes, "user": active.user, "hidden": hidden, "board": board},
    )


def _marker_signature(request: Request, stamp: str, nonce: str, raw: dict[str, str]) -> str:
    """HMAC of the stamp and nonce with the request the marker was made for."""
    prompt = " ".join(sorted(set(raw.get("prompt", "").split()) - {"consent"}))
    bound = json.dumps([*(raw.get(name, "") for name in _MARKER_BOUND), prompt])
    key = services(request).keys.secret_key.encode()
    return hmac_hex(key, "auth-after", stamp, nonce, sha256_hex(bound))[:32]


def _redirect_error(request: Request, req: AuthorizationRequest, exc: OAuthError) -> Response:
    return redirect_error(exc, req.redirect_uri, state=req.state, issuer=services(request).settings.issuer)


def _error_page(request: Request, message: str) -> Response:
    return error_page(request, 400, messages.BAD_SIGN_IN_LINK, message)


async def _read_params(request: Request) -> tuple[dict[str, str], set[str], set[str]]:
    """Query (GET) or form (POST) parameters, noting repeats and refused values; unreadable input is a page error.

    A refused value (too long, NUL: PostgreSQL cannot store the nonce) is redirected as invalid_request, except
    client_id and redirect_uri, without which nothing can be redirected.
    """
    try:
        if request.method == "POST":
            params = await read_form_params(request, LIMITS)
        else:
            params = read_query_params(request, LIMITS)
    except UnreadableInput as exc:
        if exc.kind == "content_type":
            raise PageError(N_("The request must be a form post (application/x-www-form-urlencoded).")) from None
        raise PageError(N_("The request is not valid UTF-8 URL-encoded data.")) from None
    for name in ("client_id", "redirect_uri"):
        if name in params.invalid:
            raise PageError(f"The parameter {name} is too long or malformed.")
    return params.values, params.repeated, params.invalid
