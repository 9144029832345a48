"""`create_app(settings)`: the Starlette application; its lifespan builds the engine and services once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from idp.account import (
    delete,
    email,
    export,
    login,
    passkeys,
    password,
    profile,
    second_step,
    security,
    sessions,
    signup,
)
from idp.admin import admin_routes
from idp.admin.imports import IMPORT_BODY_LIMIT
from idp.auth.passwords import PasswordPool
from idp.clock import Clock
from idp.config import Settings
from idp.console import console_routes
from idp.container import Idp, build_services
from idp.oidc import authorize, discovery, end_session, introspection, jwks, revocation, token, userinfo
from idp.ops import health
from idp.ops.listeners import Listener
from idp.ops.metrics import Metrics, metrics_endpoint
from idp.security import CookiePolicy
from idp.web import brand
from idp.web.edge import EdgeOptions, IdpStarlette
from idp.web.errors import http_error

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# Forms are small; nothing a person submits comes near this, and it keeps a 1 MB field from being parsed.
MAX_BODY_BYTES = 64 * 1024
HOUSEKEEPING_SECONDS = 600


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
    metrics = Metrics(lambda: pool.queued, password_queue_limit=settings.password_queue)
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
        Route("/login/verify/passkey", second_step.passkey_submit, methods=["POST"]),
        Route("/login/passkey", passkeys.signin_submit, methods=["POST"]),
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
        Route("/account/email", email.change_page, methods=["GET"]),
        Route("/account/email", email.change_submit, methods=["POST"]),
        Route("/account/email/confirm", email.confirm_page, methods=["GET"]),
        Route("/account/email/confirm", email.confirm_submit, methods=["POST"]),
        Route("/account/delete", delete.delete_page, methods=["GET"]),
        Route("/account/delete", delete.delete_submit, methods=["POST"]),
        Route("/account/export", export.export_data, methods=["GET"]),
        Route("/account/security", security.security_page, methods=["GET"]),
        Route("/account/sessions", sessions.sessions_page, methods=["GET"]),
        Route("/account/sessions/sign-out", sessions.sign_out_submit, methods=["POST"]),
        Route("/account/sessions/sign-out-others", sessions.sign_out_others_submit, methods=["POST"]),
        Route("/account/security/totp", security.totp_page, methods=["GET"]),
        Route("/account/security/totp", security.totp_submit, methods=["POST"]),
        Route("/account/security/disable", security.disable_submit, methods=["POST"]),
        Route("/account/security/passkeys", passkeys.passkeys_page, methods=["GET"]),
        Route("/account/security/passkeys/add", passkeys.add_submit, methods=["POST"]),
        Route("/account/security/passkeys/rename", passkeys.rename_submit, methods=["POST"]),
        Route("/account/security/passkeys/remove", passkeys.remove_submit, methods=["POST"]),
        Route("/account/security/backup-codes", security.regenerate_submit, methods=["POST"]),
        Route("/account/security/backup-codes", security.codes_page, methods=["GET"]),
        Route("/account/security/backup-codes/saved", security.codes_saved_submit, methods=["POST"]),
        Route("/account/security/backup-codes/download", security.download_codes, methods=["GET"]),
        Route("/account/security/backup-codes/print", security.print_codes, methods=["GET"]),
        Route("/.well-known/openid-configuration", discovery.discovery, methods=["GET"]),
        Route("/jwks", jwks.jwks, methods=["GET"]),
        Route("/authorize", authorize.authorize, methods=["GET", "POST"]),
        Route("/authorize/consent", authorize.consent_submit, methods=["POST"]),
        Route("/authorize/cancel", authorize.cancel_submit, methods=["POST"]),
        Route("/token", token.token, methods=["POST"]),
        Route("/userinfo", userinfo.userinfo, methods=["GET", "POST"]),
        Route("/introspect", introspection.introspect, methods=["POST"]),
        Route("/revoke", revocation.revoke, methods=["POST"]),
        Route("/end_session", end_session.end_session, methods=["GET", "POST"]),
        Route("/end_session/confirm", end_session.end_session_confirm, methods=["POST"]),
        Route("/brand/logo", brand.logo, methods=["GET"]),
        Route("/brand/theme.css", brand.theme, methods=["GET"]),
        *probes,
        *admin_routes(),
        *console_routes(),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    # /metrics only on the management port, which deployments do not publish (INTERFACE §6).
    management = [*probes, Route("/metrics", metrics_endpoint, methods=["GET"])]
    routes = [
        Listener(management, management_port=settings.management_port, management=True),
        Listener(public, management_port=settings.management_port, management=False),
    ]
    # One pure-ASGI edge does the work of the former middleware stack (proxy headers, access line and metrics,
    # security headers, body limit, CORS) and dispatches the hot protocol endpoints ahead of the router.
    edge = EdgeOptions(
        metrics=metrics,
        cookies=cookies,
        hsts=settings.secure_cookies,
        management_port=settings.management_port,
        max_body_bytes=MAX_BODY_BYTES,
        larger_bodies=IMPORT_BODY_LIMIT,
        trusted_proxies=settings.trusted_proxy_networks,
    )
    app = IdpStarlette(
        edge=edge,
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    return app


def create_app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` and worker processes: settings from the environment."""
    from idp.config import load_settings
    from idp.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
