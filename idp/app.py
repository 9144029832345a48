"""`create_app(settings)`: the Starlette application; its lifespan builds the engine and services once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from idp.account import login, messages, password, profile, second_step, security, sessions, signup
from idp.account.web import error_page
from idp.admin import admin_openapi, admin_routes
from idp.auth.crypto import Sealer
from idp.auth.passwords import PasswordPool
from idp.auth.tokens import derive_key
from idp.clock import Clock
from idp.config import Settings
from idp.oidc import authorize, discovery, end_session, introspection, jwks, revocation, token, userinfo
from idp.oidc.cors import PublicCorsMiddleware
from idp.ops import health
from idp.ops.access import AccessMiddleware
from idp.ops.listeners import Listener
from idp.ops.metrics import Metrics, metrics_endpoint
from idp.security import BodyLimitMiddleware, CookiePolicy, Csrf, SecurityHeadersMiddleware
from idp.services.accounts import AccountService
from idp.services.admin_tokens import AdminTokenService
from idp.services.audit import AuditLog
from idp.services.backchannel import KIND as BACKCHANNEL_KIND
from idp.services.backchannel import BackchannelLogout
from idp.services.backchannel import describe as describe_backchannel
from idp.services.clients import ClientService
from idp.services.grants import GrantService
from idp.services.instance import InstanceKeys, load_instance_keys
from idp.services.keys import KeyRing
from idp.services.login import LoginService
from idp.services.mail import KIND as EMAIL_KIND
from idp.services.mail import Mailer
from idp.services.mail import describe as describe_email
from idp.services.mfa import MfaService
from idp.services.outbox import Outbox
from idp.services.ratelimit import RateLimiter
from idp.services.sessions import SessionService
from idp.services.users import UserService
from idp.store.db import Database
from idp.templating import build_templates

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# Forms are small; nothing a person submits comes near this, and it keeps a 1 MB field from being parsed.
MAX_BODY_BYTES = 64 * 1024
HOUSEKEEPING_SECONDS = 600


@dataclass
class Idp:
    """Everything a request needs, built once per process by the lifespan."""

    settings: Settings
    clock: Clock
    db: Database
    keys: InstanceKeys
    passwords: PasswordPool
    audit: AuditLog
    limiter: RateLimiter
    sessions: SessionService
    users: UserService
    login: LoginService
    mfa: MfaService
    clients: ClientService
    admin_tokens: AdminTokenService
    admin_openapi: bytes
    key_ring: KeyRing
    grants: GrantService
    discovery_bytes: bytes
    cookies: CookiePolicy
    csrf: Csrf
    templates: dict[str, Jinja2Templates]
    metrics: Metrics
    outbox: Outbox
    http: httpx.AsyncClient
    mail: Mailer
    accounts: AccountService

    async def close(self) -> None:
        """Release the connection pools and the outgoing HTTP client."""
        await self.http.aclose()
        await self.outbox.db.dispose()
        await self.db.dispose()


async def build_services(settings: Settings, clock: Clock, metrics: Metrics, pool: PasswordPool) -> Idp:
    """Connect to the database and assemble the services (the schema must already be migrated)."""
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    keys = await load_instance_keys(db, settings, clock)
    cookies = CookiePolicy(secure=settings.secure_cookies)
    audit = AuditLog(clock, db)
    limiter = RateLimiter(
        clock,
        window_seconds=settings.login_failure_window_seconds,
        per_account=settings.login_max_failures_per_account,
        per_address=settings.login_max_failures_per_address,
        admin_per_address=settings.admin_max_failures_per_address,
        device_key=derive_key(keys.secret_key, "known-devices"),
    )
    key_ring = KeyRing(db, Sealer(keys.encryption_key, "signing-keys"), clock)
    await key_ring.start()
    # Outgoing calls (logout tokens to job boards): bounded per POST, never following a redirect elsewhere.
    http = httpx.AsyncClient(timeout=settings.backchannel_logout_timeout_seconds, follow_redirects=False)
    # The outbox worker has its own small pool: a slow delivery round never holds connections requests need, and
    # its statements are not counted against any request's round trips.
    outbox_db = Database(settings.database_url, pool_size=2)
    outbox = Outbox(
        outbox_db,
        clock,
        audit,
        metrics,
        give_up_after=timedelta(seconds=settings.outbox_give_up_seconds),
        # One try of either kind: a logout POST or an SMTP conversation.
        attempt_timeout=timedelta(
            seconds=max(settings.backchannel_logout_timeout_seconds, 3 * settings.smtp_timeout_seconds)
        ),
    )
    backchannel = BackchannelLogout(outbox_db, key_ring, clock, settings.issuer, http)
    outbox.register(BACKCHANNEL_KIND, backchannel.deliver, describe_backchannel)
    mail = Mailer(
        smtp_url=settings.smtp_url.get_secret_value(),
        mail_from=settings.mail_from,
        site_name=settings.site_name,
        issuer=settings.issuer,
        sealer=Sealer(keys.encryption_key, "outbox-email"),
        timeout=settings.smtp_timeout_seconds,
    )
    outbox.register(EMAIL_KIND, mail.deliver, describe_email)
    sessions = SessionService(
        db,
        clock,
        idle_seconds=settings.session_idle_seconds,
        absolute_seconds=settings.session_absolute_seconds,
    )
    mfa = MfaService(
        db,
        clock,
        sealer=Sealer(keys.encryption_key, "totp"),
        backup_key=derive_key(keys.encryption_key, "backup-codes"),
        limiter=limiter,
        audit=audit,
        sessions=sessions,
        issuer_name=settings.totp_issuer,
    )
    return Idp(
        settings=settings,
        clock=clock,
        db=db,
        keys=keys,
        passwords=pool,
        audit=audit,
        limiter=limiter,
        sessions=sessions,
        users=UserService(db, pool, clock, audit),
        login=LoginService(db, pool, limiter, sessions, audit, clock),
        mfa=mfa,
        clients=ClientService(db, clock, audit, http_issuer=settings.issuer.startswith("http:")),
        admin_tokens=AdminTokenService(db, clock, audit),
        admin_openapi=json.dumps(admin_openapi(), separators=(",", ":")).encode(),
        key_ring=key_ring,
        grants=GrantService(db, key_ring, audit, clock, settings),
        discovery_bytes=discovery.encode_metadata(settings.issuer),
        cookies=cookies,
        csrf=Csrf(derive_key(keys.secret_key, "csrf"), cookies),
        templates=build_templates(settings.site_name, settings.support_url, self_service=settings.email_enabled),
        metrics=metrics,
        outbox=outbox,
        http=http,
        mail=mail,
        accounts=AccountService(db, pool, clock, audit, limiter, mfa, mail, settings),
    )


async def _housekeeping(idp: Idp) -> None:
    """Drop expired sessions, codes and tokens, aged-out rate-limit rows and audit events past retention.

    Every replica may do it: the deletes are idempotent."""
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            async with idp.db.transaction() as session:
                await idp.sessions.purge_expired(session)
                await idp.limiter.purge(session)
                await idp.accounts.purge_expired(session)
            await idp.grants.purge_expired()
            await idp.audit.purge_older_than(idp.settings.audit_retention_days)
        except Exception:
            log.exception("housekeeping failed; will retry")


async def _refresh_keys(idp: Idp) -> None:
    """Pick up keys rotated or retired by another replica within `key_refresh_seconds`."""
    while True:
        await asyncio.sleep(idp.settings.key_refresh_seconds)
        try:
            await idp.key_ring.refresh_if_rotated()
        except Exception:
            log.exception("signing key refresh failed; will retry")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    title, message = {
        404: (messages.NOT_FOUND, messages.NOT_FOUND_TEXT),
        405: (messages.NOT_ALLOWED, messages.NOT_ALLOWED_TEXT),
    }.get(exc.status_code, (messages.ERROR, messages.BAD_REQUEST))
    return error_page(request, exc.status_code, title, message, exc.headers)


def create_app(settings: Settings, *, clock: Clock | None = None) -> Starlette:
    """Build the ASGI app for `settings`; `clock` lets tests move time."""
    clock = clock or Clock()
    pool = PasswordPool(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        workers=settings.password_pool_size,
        queue=settings.password_queue,
    )
    metrics = Metrics(lambda: pool.queued)
    cookies = CookiePolicy(secure=settings.secure_cookies)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        idp = await build_services(settings, clock, metrics, pool)
        app.state.idp = idp
        if not settings.email_enabled:
            log.warning(
                "IDP_SMTP_URL is empty: no email is sent, and sign-up, email verification and password reset are off"
            )
        tasks = [
            asyncio.create_task(_housekeeping(idp)),
            asyncio.create_task(_refresh_keys(idp)),
            asyncio.create_task(idp.outbox.run_forever(settings.outbox_poll_seconds)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # Let a cancelled task give its connection back before the pool is disposed: a connection left checked
            # out is never closed, and aiosqlite's thread for it later calls into the closed event loop.
            # A try cut short here is claimed again by any replica once its lease passes.
            await asyncio.gather(*tasks, return_exceptions=True)
            pool.shutdown()
            await idp.close()

    probes = [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
    ]
    public = [
        Route("/", lambda request: RedirectResponse("/account", status_code=303), methods=["GET"]),
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout_page, methods=["GET"]),
        Route("/logout", login.logout_submit, methods=["POST"]),
        Route("/login/verify", second_step.verify_page, methods=["GET"]),
        Route("/login/verify", second_step.verify_submit, methods=["POST"]),
        Route("/login/recovery", second_step.recovery_page, methods=["GET"]),
        Route("/login/recovery", second_step.recovery_submit, methods=["POST"]),
        Route("/password/forgot", password.forgot_page, methods=["GET"]),
        Route("/password/forgot", password.forgot_submit, methods=["POST"]),
        Route("/password/reset", password.reset_page, methods=["GET"]),
        Route("/password/reset", password.reset_submit, methods=["POST"]),
        Route("/signup", signup.signup_page, methods=["GET"]),
        Route("/signup", signup.signup_submit, methods=["POST"]),
        Route("/signup/resend", signup.resend_page, methods=["GET"]),
        Route("/signup/resend", signup.resend_submit, methods=["POST"]),
        Route("/verify-email", signup.verify_email, methods=["GET"]),
        Route("/account", profile.account_page, methods=["GET"]),
        Route("/account/password", password.change_page, methods=["GET"]),
        Route("/account/password", password.change_submit, methods=["POST"]),
        Route("/account/security", security.security_page, methods=["GET"]),
        Route("/account/sessions", sessions.sessions_page, methods=["GET"]),
        Route("/account/sessions/sign-out", sessions.sign_out_submit, methods=["POST"]),
        Route("/account/sessions/sign-out-others", sessions.sign_out_others_submit, methods=["POST"]),
        Route("/account/security/totp", security.totp_page, methods=["GET"]),
        Route("/account/security/totp", security.totp_submit, methods=["POST"]),
        Route("/account/security/disable", security.disable_submit, methods=["POST"]),
        Route("/account/security/backup-codes", security.regenerate_submit, methods=["POST"]),
        Route("/account/security/backup-codes/download", security.download_codes, methods=["GET"]),
        Route("/account/security/backup-codes/print", security.print_codes, methods=["GET"]),
        Route("/.well-known/openid-configuration", discovery.discovery, methods=["GET"]),
        Route("/jwks", jwks.jwks, methods=["GET"]),
        Route("/authorize", authorize.authorize, methods=["GET", "POST"]),
        Route("/authorize/consent", authorize.consent_submit, methods=["POST"]),
        Route("/token", token.token, methods=["POST"]),
        Route("/userinfo", userinfo.userinfo, methods=["GET", "POST"]),
        Route("/introspect", introspection.introspect, methods=["POST"]),
        Route("/revoke", revocation.revoke, methods=["POST"]),
        Route("/end_session", end_session.end_session, methods=["GET", "POST"]),
        Route("/end_session/confirm", end_session.end_session_confirm, methods=["POST"]),
        *probes,
        *admin_routes(),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    # /metrics only on the management port, which deployments do not publish (INTERFACE §6).
    management = [*probes, Route("/metrics", metrics_endpoint, methods=["GET"])]
    routes = [
        Listener(management, management_port=settings.management_port, management=True),
        Listener(public, management_port=settings.management_port, management=False),
    ]
    middleware = []
    if settings.trusted_proxy_networks:
        middleware.append(Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_networks))
    middleware += [
        Middleware(AccessMiddleware, metrics=metrics),
        Middleware(SecurityHeadersMiddleware, hsts=settings.secure_cookies, cookies=cookies),
        Middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES),
        Middleware(PublicCorsMiddleware),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    return app


def create_app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` and worker processes: settings from the environment."""
    from idp.config import load_settings
    from idp.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
