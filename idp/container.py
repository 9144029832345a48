"""The `Idp` container: every service a request needs, and `build_services`, which assembles them once."""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from datetime import timedelta

import httpx
from starlette.templating import Jinja2Templates

from idp.admin import admin_openapi_bytes
from idp.auth.crypto import Sealer
from idp.auth.passwords import PasswordPool
from idp.auth.tokens import derive_key
from idp.clock import Clock
from idp.config import Settings
from idp.oidc import discovery
from idp.ops.metrics import Metrics
from idp.security import CookiePolicy, Csrf
from idp.services.accounts import AccountService
from idp.services.admin_tokens import AdminTokenService
from idp.services.audit import AuditLog
from idp.services.backchannel import KIND as BACKCHANNEL_KIND
from idp.services.backchannel import BackchannelLogout
from idp.services.backchannel import describe as describe_backchannel
from idp.services.clients import ClientService
from idp.services.export import DataExport
from idp.services.grants import GrantService
from idp.services.importer import ImportService
from idp.services.instance import InstanceKeys, load_instance_keys
from idp.services.keys import KeyRing
from idp.services.login import LoginService
from idp.services.mail import KIND as EMAIL_KIND
from idp.services.mail import Mailer
from idp.services.mail import describe as describe_email
from idp.services.mfa import MfaService
from idp.services.notices import Notices
from idp.services.outbox import Outbox
from idp.services.passkeys import PasskeyService
from idp.services.ratelimit import RateLimiter
from idp.services.sessions import SessionService
from idp.services.users import UserService
from idp.store.db import Database
from idp.templating import build_templates


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
    passkeys: PasskeyService
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
    importer: ImportService
    notices: Notices
    export: DataExport

    async def close(self) -> None:
        """Release the connection pools and the outgoing HTTP client."""
        await self.http.aclose()
        await self.outbox.db.dispose()
        await self.db.dispose()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CAs), built once per process: loading the CA bundle takes
    longer than the rest of a client's set-up, and a context is meant to be shared."""
    return httpx.create_ssl_context()


async def build_services(settings: Settings, clock: Clock, metrics: Metrics, pool: PasswordPool) -> Idp:
    """Connect to the database and assemble the services (the schema must already be migrated)."""
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    metrics.watch_database("main", db)
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
    http = httpx.AsyncClient(
        timeout=settings.backchannel_logout_timeout_seconds, follow_redirects=False, verify=_tls_context()
    )
    # The outbox worker has its own small pool: a slow delivery round never holds connections requests need, and
    # its statements are not counted against any request's round trips.
    outbox_db = Database(settings.database_url, pool_size=2, hot=False)
    metrics.watch_database("outbox", outbox_db)
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
    notices = Notices(mail, issuer=settings.issuer, support_url=settings.support_url)
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
        issuer_name=settings.authenticator_issuer,
        notices=notices,
    )
    passkeys = PasskeyService(
        db,
        clock,
        issuer=settings.issuer,
        site_name=settings.site_name,
        mfa=mfa,
        sessions=sessions,
        audit=audit,
        notices=notices,
        backup_key=derive_key(keys.encryption_key, "backup-codes"),
        signin_key=derive_key(keys.secret_key, "passkey-signin"),
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
        users=UserService(db, pool, clock, audit, notices=notices, limiter=limiter),
        login=LoginService(db, pool, limiter, sessions, audit, clock),
        mfa=mfa,
        passkeys=passkeys,
        clients=ClientService(db, clock, audit, http_issuer=settings.issuer.startswith("http:")),
        admin_tokens=AdminTokenService(db, clock, audit),
        admin_openapi=admin_openapi_bytes(),
        key_ring=key_ring,
        grants=GrantService(db, key_ring, audit, clock, settings),
        discovery_bytes=discovery.encode_metadata(settings.issuer),
        cookies=cookies,
        csrf=Csrf(derive_key(keys.secret_key, "csrf"), cookies),
        templates=build_templates(
            settings.site_name,
            settings.support_url,
            self_service=settings.email_enabled,
            logo=bool(settings.logo_file),
            theme=bool(settings.accent_color),
        ),
        metrics=metrics,
        outbox=outbox,
        http=http,
        mail=mail,
        accounts=AccountService(db, pool, clock, audit, limiter, mfa, mail, settings, notices, passkeys=passkeys),
        importer=ImportService(db, clock, audit, sealer=Sealer(keys.encryption_key, "totp")),
        notices=notices,
        export=DataExport(db, clock, sessions=sessions, mfa=mfa, audit=audit),
    )
