"""deploy/compose.yaml: valid by the Compose Specification's JSON schema, and the production shape the README
describes — migrations first, two replicas, Caddy in front, forwarded headers trusted only from its network."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from idp.config import Settings
from tests.deploy.conftest import DEPLOY, SECRET, interpolate, load_yaml, settings_fields

COMPOSE = DEPLOY / "compose.yaml"
SCHEMA = Path(__file__).with_name("compose-spec.json")
# What an operator puts into deploy/.env (see deploy/.env.example).
OPERATOR_ENV = {"POSTGRES_PASSWORD": "a-database-password", "IDP_SECRET_KEY": SECRET, "IDP_ENCRYPTION_KEY": SECRET}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


def environment(service: dict[str, Any], env: dict[str, str] = OPERATOR_ENV) -> dict[str, str]:
    return {name: interpolate(str(value), env) for name, value in service["environment"].items()}


def test_valid_by_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_catches_a_mistake(compose: dict[str, Any]) -> None:
    broken = {**compose, "services": {**compose["services"], "idp": {**compose["services"]["idp"], "replica": 2}}}
    assert not jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).is_valid(broken)


def test_replicas_start_after_a_successful_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    # What runs in production: every service without a profile (the trial's mail catcher has one).
    assert {name for name, service in services.items() if "profiles" not in service} == {
        "postgres",
        "migrate",
        "idp",
        "proxy",
    }
    migrate, idp = services["migrate"], services["idp"]
    assert migrate["entrypoint"] == ["idp", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert idp["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert idp["deploy"]["replicas"] == 2
    assert migrate["image"] == idp["image"]
    assert migrate["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (COMPOSE.parent / migrate["build"]["context"] / migrate["build"]["dockerfile"]).is_file()
    assert environment(migrate) == environment(idp)


def test_the_replicas_are_hardened_and_stop_gracefully(compose: dict[str, Any]) -> None:
    for name in ("migrate", "idp"):
        service = compose["services"][name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
    idp = compose["services"]["idp"]
    assert "/tmp" in idp["tmpfs"]  # noqa: S108 - the container's own /tmp, a tmpfs
    assert int(idp["stop_grace_period"].removesuffix("s")) > 20  # uvicorn's graceful shutdown takes up to 20 s


def test_secrets_must_be_supplied_not_written_here(compose: dict[str, Any]) -> None:
    env = compose["services"]["idp"]["environment"]
    for name in ("IDP_SECRET_KEY", "IDP_ENCRYPTION_KEY"):
        assert env[name].startswith(f"${{{name}:?"), env[name]
    with pytest.raises(AssertionError, match="required"):
        environment(compose["services"]["idp"], {})


def test_the_environment_is_valid_idp_settings(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["idp"])
    assert set(env) <= settings_fields(), set(env) - settings_fields()
    settings = Settings(_env_file=None, **{k.removeprefix("IDP_").lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    assert settings.database_url.startswith("postgresql+asyncpg://idp:a-database-password@postgres:5432/")
    assert settings.database_pool_size >= 1


def test_forwarded_headers_are_trusted_from_the_proxy_network_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    proxy, idp, postgres = services["proxy"], services["idp"], services["postgres"]
    assert proxy["depends_on"]["idp"]["condition"] == "service_healthy"
    subnets = [ipaddress.ip_network(c["subnet"]) for c in compose["networks"]["edge"]["ipam"]["config"]]
    trusted = [ipaddress.ip_network(n) for n in environment(idp)["IDP_TRUSTED_PROXIES"].split(",")]
    assert trusted == subnets
    assert proxy["networks"] == ["edge"]
    assert "edge" in idp["networks"]
    assert "edge" not in postgres["networks"]
    assert "ports" not in postgres  # only the proxy is published
    assert "ports" not in idp
    assert compose["networks"]["data"]["internal"] is True


def test_the_proxy_config_is_mounted_and_forwards_to_the_replicas(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in proxy["volumes"]}
    caddyfile = COMPOSE.parent / mounts["/etc/caddy/Caddyfile"]
    text = caddyfile.read_text()
    assert "reverse_proxy" in text
    assert "name idp" in text
    assert "port 8000" in text
    # Caddy replaces a client's X-Forwarded-For unless told to trust it: nothing here may tell it so.
    assert "trusted_proxies" not in text
    assert "header_up X-Forwarded-For" not in text
    assert "9000" not in text  # the management port (/metrics) is not forwarded


def test_the_replicas_are_healthy_by_the_management_port(compose: dict[str, Any]) -> None:
    idp = compose["services"]["idp"]
    port = environment(idp)["IDP_MANAGEMENT_PORT"]
    command = " ".join(idp["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/readyz" in command


# What Caddy's regexp filter does to each logged URI (Go's RE2 here is also Python's re: no look-arounds).
_URI_FILTER = re.compile(r'request>uri regexp "(?P<pattern>[^"]+)" "(?P<replacement>[^"]+)"')


@pytest.mark.parametrize(
    ("uri", "logged"),
    [
        ("/authorize?client_id=c&state=s3cret&nonce=n0nce&login_hint=a%40b.c", "/authorize?[redacted]"),
        ("/end_session?id_token_hint=eyJ.x.y&state=s", "/end_session?[redacted]"),
        ("/password/reset?token=reset-token-123", "/password/reset?[redacted]"),
        ("/verify-email?token=verify-token-123", "/verify-email?[redacted]"),
        ("/login?next=%2Fauthorize%3Fstate%3Ds3cret", "/login?[redacted]"),
        ("/login/verify?next=%2Fauthorize%3Fnonce%3Dn", "/login/verify?[redacted]"),
        ("/authorize", "/authorize"),
        ("/account?lang=nb", "/account?lang=nb"),
        ("/static/idp.css?v=1", "/static/idp.css?v=1"),
    ],
)
def test_caddy_logs_no_private_query_strings(uri: str, logged: str) -> None:
    text = (COMPOSE.parent / "Caddyfile").read_text()
    found = _URI_FILTER.search(text)
    assert found, "no request>uri filter in the Caddyfile"
    pattern = found["pattern"].replace("\\\\", "\\")
    replacement = re.sub(r"\$\{(\d+)\}", r"\\g<\1>", found["replacement"])
    assert re.sub(pattern, replacement, uri) == logged
    # Both logs use it: the access log and Caddy's own (which names the request when proxying fails).
    assert text.count("import private_uris") == 2


def test_the_trial_mail_catcher_is_opt_in_and_kept_apart(compose: dict[str, Any]) -> None:
    """Mailpit runs only with `--profile trial`, reachable by the replicas on the mail network, its UI on loopback."""
    mailpit, idp = compose["services"]["mailpit"], compose["services"]["idp"]
    assert mailpit["profiles"] == ["trial"]
    assert mailpit["networks"] == ["mail"]
    assert "mail" in idp["networks"]
    assert all(port.startswith("127.0.0.1:") for port in mailpit["ports"])
    # Without the operator saying so, no email is sent (and sign-up and reset are off).
    assert environment(idp)["IDP_SMTP_URL"] == ""
    trial = environment(idp, {**OPERATOR_ENV, "IDP_SMTP_URL": "smtp://mailpit:1025"})
    assert Settings(_env_file=None, smtp_url=trial["IDP_SMTP_URL"]).email_enabled  # type: ignore[call-arg]
