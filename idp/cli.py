"""The `idp` console script (INTERFACE §2): serve, migrate, demo, users, clients, admin-tokens, audit, keys."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from idp.config import Settings, SettingsError, load_settings
from idp.errors import DomainError

if TYPE_CHECKING:
    # Imported where used: `idp --help` and `idp migrate` start without building every service.
    from idp.container import Idp

CLI_ACTOR = "cli"  # the audit log's actor for operations done from the command line
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "correct horse battery staple"  # noqa: S105 - published on purpose: a local demo account


class CliError(Exception):
    """A one-line message for stderr, then exit status 1."""


def _fail(message: str, status: int = 1) -> NoReturn:
    print(f"idp: {message}", file=sys.stderr)
    raise SystemExit(status)


def _output(result: Any) -> None:
    """Print `result` as one JSON line; a reader that went away (`idp clients list | head`) ends us quietly."""
    try:
        print(json.dumps(result, default=str), flush=True)
    except BrokenPipeError:
        _stdout_closed()


def _stdout_closed() -> NoReturn:
    """Exit as a Unix tool whose output pipe closed does: no message, the status of SIGPIPE."""
    # Point stdout at /dev/null so that Python's own flush at exit does not fail a second time.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise SystemExit(128 + signal.SIGPIPE)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc), 2)
    _check_sqlite_directory(settings)
    return settings


def _check_sqlite_directory(settings: Settings) -> None:
    """Say plainly when an SQLite file cannot be created, before a driver thread fails noisily trying."""
    if not settings.is_sqlite:
        return
    from sqlalchemy.engine import make_url

    database = make_url(settings.database_url).database
    if database and database != ":memory:" and not Path(database).expanduser().resolve().parent.is_dir():
        _fail(f"cannot use the database: the folder for IDP_DATABASE_URL's SQLite file does not exist ({database})")


def _describe_db_error(exc: BaseException) -> str:
    text = str(exc).lower()
    if "no such table" in text or ("does not exist" in text and "relation" in text):
        return "the database has no idp schema yet; run `idp migrate` first"
    return f"cannot use the database ({type(exc).__name__}); check IDP_DATABASE_URL and that it is reachable"


def _run(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    try:
        asyncio.run(coro_fn())
    except CliError as exc:
        _fail(str(exc))
    except DomainError as exc:
        _fail(str(exc))
    except (OperationalError, ProgrammingError, DBAPIError, OSError) as exc:
        _fail(_describe_db_error(exc))


@asynccontextmanager
async def _services(settings: Settings) -> AsyncIterator[Idp]:
    from idp.auth.passwords import PasswordPool
    from idp.clock import Clock
    from idp.container import build_services
    from idp.ops.metrics import Metrics

    pool = PasswordPool(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        workers=1,
        queue=4,
    )
    idp = await build_services(settings, Clock(), Metrics(lambda: 0), pool)
    try:
        yield idp
    finally:
        pool.shutdown()
        await idp.close()


def _migrate(settings: Settings) -> None:
    from sqlalchemy.exc import DBAPIError, OperationalError

    from idp.store.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except (OperationalError, DBAPIError, OSError) as exc:
        _fail(_describe_db_error(exc))


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = _settings()
    _migrate(settings)
    _output({"migrated": True})


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _settings()
    _serve(args, settings, _listen(args, settings))


def _listen(args: argparse.Namespace, settings: Settings) -> list[socket.socket]:
    """Bind the public port and the management port (IDP_MANAGEMENT_PORT, unless 0), or fail in one line."""
    from idp.ops.server import listen

    ports = [args.port]
    if settings.management_port:
        if settings.management_port == args.port:
            _fail(f"--port {args.port} is also IDP_MANAGEMENT_PORT; give the management listener another port", 2)
        ports.append(settings.management_port)
    sockets: list[socket.socket] = []
    for port in ports:
        try:
            sockets.append(listen(args.host, port))
        except OSError as exc:
            for sock in sockets:
                sock.close()
            what = "choose another with --port" if port == args.port else "set IDP_MANAGEMENT_PORT to another (or 0)"
            if exc.errno == errno.EADDRINUSE:
                _fail(f"port {port} is in use; {what}")
            _fail(f"cannot listen on {args.host}:{port}: {exc.strerror or type(exc).__name__}; {what}")
    return sockets


def _serve(args: argparse.Namespace, settings: Settings, sockets: list[socket.socket]) -> None:
    """Check or migrate the database, then serve on the bound `sockets` until a signal."""
    from idp.logging import UVICORN_LOG_CONFIG, configure_logging
    from idp.ops.server import KEEP_ALIVE_SECONDS, MAX_HEADER_BYTES, IdpConfig, event_loop, http_protocol, serve

    if not settings.is_sqlite:
        _check_schema(settings)  # before logging is set up: the refusal is one line, not alembic's chatter
    configure_logging(settings.log_level)
    if settings.is_sqlite:
        # The embedded default creates and migrates its database by itself (INTERFACE §2).
        _migrate(settings)
    log_config = json.loads(json.dumps(UVICORN_LOG_CONFIG))
    for logger in log_config["loggers"].values():
        logger["level"] = max(logger["level"], settings.log_level, key=_level_number)
    log_config["root"]["level"] = settings.log_level
    config = IdpConfig(
        "idp.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=log_config,
        access_log=False,
        server_header=False,
        # X-Forwarded-* are applied inside the app, and only from IDP_TRUSTED_PROXIES.
        proxy_headers=False,
        timeout_graceful_shutdown=20,
        http=http_protocol(),
        loop=event_loop(),
        ws="none",
        timeout_keep_alive=min(KEEP_ALIVE_SECONDS, settings.request_timeout_seconds),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        request_timeout=settings.request_timeout_seconds,
    )
    with shared_metrics(args.workers):
        started = serve(config, sockets)
    if not started:
        raise SystemExit(3)  # uvicorn's start-up failure status; the reason is in the log


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh directory for their shared metrics files (prometheus-client's multiprocess
    mode), set in the environment the workers inherit and removed afterwards; nothing for one worker."""
    from idp.ops.metrics import MULTIPROC_ENV

    if workers <= 1:
        yield
        return
    directory = tempfile.mkdtemp(prefix="idp-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def _check_schema(settings: Settings) -> None:
    """Refuse to serve a database that `idp migrate` has not brought up to this version, in one line."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from idp.store.migrate import schema_state

    try:
        state = schema_state(settings.database_url)
    except (OperationalError, DBAPIError, OSError) as exc:
        _fail(_describe_db_error(exc))
    if state == "missing":
        _fail("the database has no idp schema yet; run `idp migrate` first")
    if state == "behind":
        _fail("the database schema is older than this idp; run `idp migrate` first")


def _level_number(name: str) -> int:
    import logging

    # Given a level's name, getLevelName returns its number; typeshed types the result Any.
    return logging.getLevelName(name)  # type: ignore[no-any-return]


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def _user_json(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }


def cmd_users_create(args: argparse.Namespace) -> None:
    settings = _settings()
    password = _read_password_stdin() if args.password_stdin else None

    async def go() -> None:
        async with _services(settings) as idp:
            user = await idp.users.create(args.email, name=args.name or "", password=password, actor=CLI_ACTOR)
            _output(_user_json(user))

    _run(go)


def cmd_clients_create(args: argparse.Namespace) -> None:
    settings = _settings()

    async def go() -> None:
        async with _services(settings) as idp:
            client, secret = await idp.clients.create(
                args.name,
                redirect_uris=args.redirect_uri or [],
                post_logout_redirect_uris=args.post_logout_redirect_uri or [],
                public=args.public,
                require_mfa=args.require_mfa,
                require_consent=args.require_consent,
                grant_types=args.grant_type or None,
                id_token_alg=args.id_token_alg,
                scopes=args.scope or [],
                backchannel_logout_uri=args.backchannel_logout_uri or "",
                allow_signup=args.allow_signup,
                client_name=args.display_name or "",
                logo_uri=args.logo_uri or "",
                client_uri=args.client_uri or "",
                actor=CLI_ACTOR,
            )
            output = client.public_view()
            if secret is not None:
                output["client_secret"] = secret
            _output(output)

    _run(go)


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    settings = _settings()

    async def go() -> None:
        async with _services(settings) as idp:
            kids = await idp.key_ring.rotate()
            _output({"signing": kids, "keys": idp.key_ring.describe()})

    _run(go)


def _operate(fn: Callable[[Idp], Coroutine[Any, Any, Any]]) -> None:
    """Run `fn(idp)` against the configured database and print what it returns as JSON."""
    settings = _settings()

    async def go() -> None:
        async with _services(settings) as idp:
            result = await fn(idp)
            _output(result)

    _run(go)


async def _user_with_mfa(idp: Idp, user: Any) -> dict[str, Any]:
    status = await idp.mfa.status(user.id)
    return {
        **_user_json(user),
        "mfa": {
            "enabled": status.enabled,
            "since": status.since.isoformat() if status.since else None,
            "backup_codes_left": status.backup_codes_left,
        },
    }


def cmd_users_list(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        users = await idp.users.list(email=args.email, after=args.after, limit=args.limit)
        return [await _user_with_mfa(idp, u) for u in users]

    _operate(go)


def cmd_users_show(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        from idp.services.login import amr_and_acr

        user = await _find_user(idp, args.user)
        sessions = await idp.sessions.list_of_user(user.id)
        # The same fields as GET /admin/api/users/{id}/sessions; the id is the opaque sid, never the cookie's hash.
        return {
            **await _user_with_mfa(idp, user),
            "sessions": [
                {
                    "id": v.sid,
                    "created_at": v.created_at.isoformat(),
                    "last_seen_at": v.last_seen_at.isoformat(),
                    "ip": v.client_ip,
                    "user_agent": v.user_agent,
                    "amr": amr_and_acr(v.methods)[0],
                    "clients": [{"client_id": c, "client_name": n} for c, n in v.clients],
                }
                for v in sessions
            ],
            # The same fields as GET /admin/api/users/{id}: what each is called and when used, never key material.
            "passkeys": [
                {
                    "id": k.id,
                    "name": k.name,
                    "created_at": k.created_at.isoformat(),
                    "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                    "synced": k.synced,
                    "backed_up": k.backed_up,
                }
                for k in await idp.passkeys.list_passkeys(user.id)
            ],
        }

    _operate(go)


def cmd_users_disable(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        user = await _find_user(idp, args.user)
        updated = await idp.users.update(user.id, name=None, disabled=not args.enable, actor=CLI_ACTOR, client_ip="")
        return _user_json(updated)

    _operate(go)


def cmd_users_reset_mfa(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        user = await _find_user(idp, args.user)
        await idp.users.reset_mfa(user.id, reason=args.reason, actor=CLI_ACTOR, client_ip="")
        return await _user_with_mfa(idp, user)

    _operate(go)


def cmd_users_unlock(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        user = await _find_user(idp, args.email if args.email else args.user or "")
        await idp.login.unlock(user.id, actor=CLI_ACTOR)
        return {**_user_json(user), "unlocked": True}

    _operate(go)


def cmd_users_reset_link(args: argparse.Namespace) -> None:
    async def go(idp: Any) -> Any:
        user = await _find_user(idp, args.email if args.email else args.user or "")
        url = await idp.accounts.reset_link_for_support(user.id, actor=CLI_ACTOR, send=False)
        # Valid for 30 minutes, once; the person still needs their second factor when it is on.
        return {**_user_json(user), "reset_url": url}

    _operate(go)


def cmd_users_role(args: argparse.Namespace) -> None:
    """grant-role / revoke-role: the person as JSON with the roles they hold afterwards."""

    async def go(idp: Idp) -> Any:
        user = await _find_user(idp, args.email)
        roles = await idp.users.set_role(user.id, args.role, args.held, actor=CLI_ACTOR)
        return {**_user_json(user), "roles": roles}

    _operate(go)


async def _find_user(idp: Idp, key: str) -> Any:
    """A user by id, or by email when `key` contains an @."""
    from idp.errors import NotFound

    if "@" in key:
        found = await idp.users.list(email=key, after=None, limit=1)
        if not found:
            raise NotFound("no user with this email")
        return found[0]
    return await idp.users.load(key)


def cmd_clients_list(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        return [c.public_view() for c in await idp.clients.list(after=args.after, limit=args.limit)]

    _operate(go)


def cmd_clients_show(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        return (await idp.clients.load(args.client_id)).public_view()

    _operate(go)


def cmd_clients_rotate_secret(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        secret = await idp.clients.rotate_secret(args.client_id, actor=CLI_ACTOR, client_ip="")
        return {"client_id": args.client_id, "client_secret": secret}

    _operate(go)


def cmd_clients_delete(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        await idp.clients.delete(args.client_id, actor=CLI_ACTOR, client_ip="")
        return {"deleted": args.client_id}

    _operate(go)


def cmd_admin_tokens_create(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        row, token = await idp.admin_tokens.create(args.name, actor=CLI_ACTOR)
        return {"id": row.id, "name": row.name, "token": token}

    _operate(go)


def cmd_admin_tokens_list(args: argparse.Namespace) -> None:
    from idp.services.admin_tokens import describe

    async def go(idp: Idp) -> Any:
        return [describe(t) for t in await idp.admin_tokens.list()]

    _operate(go)


def cmd_admin_tokens_revoke(args: argparse.Namespace) -> None:
    async def go(idp: Idp) -> Any:
        await idp.admin_tokens.revoke(args.id, actor=CLI_ACTOR)
        return {"revoked": args.id}

    _operate(go)


def cmd_audit_list(args: argparse.Namespace) -> None:
    from datetime import datetime

    try:
        since = datetime.fromisoformat(args.since) if args.since else None
    except ValueError:
        _fail("--since must be an ISO 8601 time such as 2026-11-23T09:00:00+00:00", 2)
    if since is not None and since.tzinfo is None:
        _fail("--since needs a time zone, such as +00:00", 2)

    async def go(idp: Idp) -> Any:
        events = await idp.audit.list(user_id=args.user_id, type_=args.type, since=since, limit=args.limit)
        return [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "type": e.type,
                "outcome": e.outcome,
                "actor": e.actor,
                "user_id": e.user_id,
                "client_ip": e.client_ip,
                "details": json.loads(e.details),
            }
            for e in events
        ]

    _operate(go)


def cmd_demo(args: argparse.Namespace) -> None:
    """Migrate the SQLite database, make sure the demo user and job board exist, print how to sign in, then serve.

    The job board (examples/jobboard) runs beside idp as a subprocess and stops when idp stops.
    """
    from idp import demo

    settings = _settings()
    if not settings.is_sqlite:
        _fail("`idp demo` only runs on the embedded SQLite database; use `idp serve` in production")
    try:
        demo.check_dependencies()
    except demo.JobBoardError as exc:
        _fail(str(exc))
    base = f"http://{args.host}:{args.port}"
    if "IDP_ISSUER" not in os.environ and settings.issuer == Settings.model_fields["issuer"].default:
        # Unless told otherwise the demo's issuer follows --host/--port; the serving process reads it from here.
        os.environ["IDP_ISSUER"] = base
        settings = _settings()
    board_url = f"http://{args.host}:{args.jobboard_port}"
    # Claim idp's ports first: a busy one is said in one line, before any banner promises a running demo.
    sockets = _listen(args, settings)
    _migrate(settings)
    saved_at = demo.client_file(settings)
    saved = demo.read_saved_client(saved_at)
    registered: list[tuple[str, str, bool]] = []

    async def seed() -> None:
        from idp.errors import Conflict

        async with _services(settings) as idp:
            with suppress(Conflict):
                await idp.users.create(DEMO_EMAIL, name="Demo Person", password=DEMO_PASSWORD)
            registered.append(await demo.ensure_client(idp.clients, saved, board_url))
            # People may create their own account from the demo board (IDP_SIGNUP defaults to `clients`).
            board_client = await idp.clients.find(registered[0][0])
            if board_client is not None and not board_client.allow_signup:
                await idp.clients.update(board_client.client_id, {"allow_signup": True}, actor=CLI_ACTOR, client_ip="")

    _run(seed)
    client_id, client_secret, is_new = registered[0]
    if is_new:
        demo.save_client(saved_at, client_id, client_secret)
    catcher = None
    if not settings.email_enabled:
        # No mail server configured: catch the demo's emails in-process and print their links here.
        from idp.demo_mail import MailCatcher

        catcher = MailCatcher()
        catcher.start()
        os.environ["IDP_SMTP_URL"] = catcher.url
        settings = _settings()
    try:
        board = demo.start_jobboard(
            host=args.host,
            port=args.jobboard_port,
            issuer=settings.issuer,
            client_id=client_id,
            client_secret=client_secret,
        )
    except demo.JobBoardError as exc:
        if catcher is not None:
            catcher.stop()
        _fail(str(exc))
    mail_line = (
        f"  Emails       printed here by a local mail catcher ({catcher.url}): sign up on the board, then open the link"
        if catcher is not None
        else "  Emails       sent through IDP_SMTP_URL"
    )
    print(
        "\n".join(
            [
                "",
                "idp demo is starting.",
                f"  Job board    {board_url}  (a relying party: Sign in there and you come here)",
                f"  Sign in at   {base}/login",
                f"  Email        {DEMO_EMAIL}",
                f"  Password     {DEMO_PASSWORD}",
                mail_line,
                "",
                f"Job board: {board_url}",
                "",
            ]
        ),
        file=sys.stderr,
        flush=True,
    )
    # uvicorn re-raises the SIGTERM it shut down for; as an exception it lets the job board be stopped too.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        _serve(args, settings, sockets)
    except KeyboardInterrupt:
        raise SystemExit(128 + signal.SIGINT) from None
    finally:
        demo.stop_jobboard(board)
        if catcher is not None:
            catcher.stop()


async def _read_chunks(stream: Any) -> AsyncIterator[bytes]:
    """A binary file's contents in pieces, read off the event loop."""
    while chunk := await asyncio.to_thread(stream.read, 65536):
        yield chunk


def cmd_users_import(args: argparse.Namespace) -> None:
    """`idp users import FILE|- [--dry-run]`: one JSON result per input line, then the summary (INTERFACE §7)."""
    settings = _settings()
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        _fail(f"cannot read {args.file}: {exc.strerror}")
    errors = 0

    async def go() -> None:
        nonlocal errors
        async with _services(settings) as idp:
            async for result in idp.importer.run(_read_chunks(stream), dry_run=args.dry_run, actor=CLI_ACTOR):
                _output(result)
                if "summary" in result:
                    errors = result["summary"]["error"]

    try:
        _run(go)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if errors:
        _fail(f"{errors} line(s) not imported; their results say why")


def cmd_users_subjects(args: argparse.Namespace) -> None:
    """`idp users subjects --client ID`: CSV `external_id,sub` for the people that job board brought."""
    import csv

    settings = _settings()

    async def go() -> None:
        async with _services(settings) as idp:
            rows = await idp.importer.subjects(args.client)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        try:
            writer.writerow(["external_id", "sub"])
            writer.writerows(rows)
            sys.stdout.flush()
        except BrokenPipeError:
            _stdout_closed()

    _run(go)


def _add_import_commands(users: Any) -> None:
    importing = users.add_parser("import", help="import a job board's accounts from JSON Lines (FILE or -)")
    importing.add_argument("file", help="JSON Lines, one account a line; - reads stdin")
    importing.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    importing.set_defaults(func=cmd_users_import)
    subjects = users.add_parser("subjects", help="CSV external_id,sub of the accounts a client brought")
    subjects.add_argument("--client", required=True, help="the job board's client_id")
    subjects.add_argument("--external-ids", action="store_true", help="the external_id column (always printed)")
    subjects.set_defaults(func=cmd_users_subjects)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idp", description="OpenID Connect identity provider")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_serve_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--workers", type=int, default=1)

    serve = commands.add_parser("serve", help="serve HTTP")
    add_serve_options(serve)
    serve.set_defaults(func=cmd_serve)

    demo = commands.add_parser("demo", help="SQLite demo: migrate, create a demo user, serve idp and a job board")
    add_serve_options(demo)
    demo.add_argument("--jobboard-port", type=int, default=8001, help="port of the demo job board (same host)")
    demo.set_defaults(func=cmd_demo)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    users = commands.add_parser("users", help="manage users").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="create a user and print it as JSON")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--password-stdin", action="store_true", help="read the password from one stdin line")
    create.set_defaults(func=cmd_users_create)
    _add_import_commands(users)

    clients = commands.add_parser("clients", help="manage relying-party clients").add_subparsers(
        dest="clients_command", required=True
    )
    new_client = clients.add_parser("create", help="register a client and print it (with its secret) as JSON")
    new_client.add_argument("--name", required=True)
    new_client.add_argument("--redirect-uri", action="append", help="repeatable; exact match")
    new_client.add_argument("--post-logout-redirect-uri", action="append", help="repeatable")
    new_client.add_argument("--public", action="store_true", help="no secret; PKCE required")
    new_client.add_argument("--require-mfa", action="store_true", help="tokens only after two-step verification")
    new_client.add_argument("--require-consent", action="store_true", help="ask the person before sharing")
    new_client.add_argument("--grant-type", action="append", help="repeatable; replaces the defaults")
    new_client.add_argument("--id-token-alg", default="RS256", choices=["RS256", "ES256"])
    new_client.add_argument(
        "--scope", action="append", help="repeatable; the scopes a client_credentials token may carry"
    )
    new_client.add_argument(
        "--backchannel-logout-uri", help="where logout tokens are POSTed when a session ends (Back-Channel Logout)"
    )
    new_client.add_argument(
        "--allow-signup", action="store_true", help="people arriving from it may create an account (IDP_SIGNUP=clients)"
    )
    new_client.add_argument("--display-name", help="the name people see on the sign-in pages (client_name)")
    new_client.add_argument("--logo-uri", help="https URL of the job board's logo, shown on the sign-in pages")
    new_client.add_argument("--client-uri", help="the job board's home page")
    new_client.set_defaults(func=cmd_clients_create)

    listing = users.add_parser("list", help="list users (optionally one email)")
    listing.add_argument("--email")
    listing.add_argument("--after", help="continue after this user id")
    listing.add_argument("--limit", type=_limit, default=50)
    listing.set_defaults(func=cmd_users_list)
    show = users.add_parser("show", help="one user, with two-step status, signed-in sessions and passkeys")
    show.add_argument("user", help="user id or email")
    show.set_defaults(func=cmd_users_show)
    disable = users.add_parser("disable", help="disable a user: sessions and tokens end")
    disable.add_argument("user", help="user id or email")
    disable.add_argument("--enable", action="store_true", help="enable instead")
    disable.set_defaults(func=cmd_users_disable)
    reset = users.add_parser("reset-mfa", help="remove the authenticator and backup codes after proof of identity")
    reset.add_argument("user", help="user id or email")
    reset.add_argument("--reason", required=True, help="why, and what proof of identity was seen (audited)")
    reset.set_defaults(func=cmd_users_reset_mfa)
    unlock = users.add_parser("unlock", help="clear the sign-in attempt limits on an account (audited)")
    unlock_who = unlock.add_mutually_exclusive_group(required=True)
    unlock_who.add_argument("--email", help="the account's email")
    unlock_who.add_argument("user", nargs="?", help="or the user id")
    unlock.set_defaults(func=cmd_users_unlock)
    reset_link = users.add_parser(
        "reset-link", help="print a single-use password-reset URL (30 minutes) for support staff to hand over (audited)"
    )
    reset_link_who = reset_link.add_mutually_exclusive_group(required=True)
    reset_link_who.add_argument("--email", help="the account's email")
    reset_link_who.add_argument("user", nargs="?", help="or the user id")
    reset_link.set_defaults(func=cmd_users_reset_link)
    for name, held, text in (
        ("grant-role", True, "give an account a staff role for the support console at /admin (audited)"),
        ("revoke-role", False, "take a staff role away (audited)"),
    ):
        role = users.add_parser(name, help=text)
        role.add_argument("--email", required=True, help="the account's email")
        role.add_argument("--role", required=True, help="support (people) or admin (also clients, keys, tokens)")
        role.set_defaults(func=cmd_users_role, held=held)

    clients_list = clients.add_parser("list", help="list clients")
    clients_list.add_argument("--after", help="continue after this client id")
    clients_list.add_argument("--limit", type=_limit, default=50)
    clients_list.set_defaults(func=cmd_clients_list)
    for name, func, text in (
        ("show", cmd_clients_show, "one client"),
        ("rotate-secret", cmd_clients_rotate_secret, "a new secret (shown once); the old one stops working"),
        ("delete", cmd_clients_delete, "delete a client and revoke its tokens"),
    ):
        sub = clients.add_parser(name, help=text)
        sub.add_argument("client_id")
        sub.set_defaults(func=func)

    tokens = commands.add_parser("admin-tokens", help="manage admin API tokens").add_subparsers(
        dest="admin_tokens_command", required=True
    )
    token_create = tokens.add_parser("create", help="a new admin token, printed once")
    token_create.add_argument("--name", required=True)
    token_create.set_defaults(func=cmd_admin_tokens_create)
    tokens.add_parser("list", help="list admin tokens (never the tokens themselves)").set_defaults(
        func=cmd_admin_tokens_list
    )
    token_revoke = tokens.add_parser("revoke", help="revoke an admin token")
    token_revoke.add_argument("id")
    token_revoke.set_defaults(func=cmd_admin_tokens_revoke)

    audit = commands.add_parser("audit", help="read the audit log").add_subparsers(dest="audit_command", required=True)
    audit_list = audit.add_parser("list", help="audit events, newest first")
    audit_list.add_argument("--user-id")
    audit_list.add_argument("--type")
    audit_list.add_argument("--since", help="ISO 8601 time with zone")
    audit_list.add_argument("--limit", type=_limit, default=50)
    audit_list.set_defaults(func=cmd_audit_list)

    keys = commands.add_parser("keys", help="manage signing keys").add_subparsers(dest="keys_command", required=True)
    rotate = keys.add_parser("rotate", help="a new key signs from now on; old keys stay in the JWKS until retired")
    rotate.set_defaults(func=cmd_keys_rotate)
    return parser


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise argparse.ArgumentTypeError("must be a number from 1 to 1000")
    return int(value)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        _fail("--workers must be at least 1", 2)
    args.func(args)


if __name__ == "__main__":
    main()
