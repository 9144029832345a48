"""The token endpoint's table of grant handlers agrees with what discovery advertises (RFC 8414 §2)."""

from __future__ import annotations

from types import ModuleType

import pytest

from idp.oidc import pkce
from idp.oidc.discovery import build_metadata
from idp.oidc.grants import HANDLERS, authorization_code, client_credentials, refresh_token

METADATA = build_metadata("https://idp.example")


def test_every_advertised_grant_type_has_a_handler_and_no_other() -> None:
    advertised = METADATA["grant_types_supported"]
    assert isinstance(advertised, list)
    assert set(HANDLERS) == set(advertised)


@pytest.mark.parametrize("module", [authorization_code, refresh_token, client_credentials], ids=lambda m: m.__name__)
def test_each_module_handles_the_grant_type_it_is_named_for(module: ModuleType) -> None:
    assert module.__name__.rsplit(".", 1)[1] == module.GRANT_TYPE
    assert HANDLERS[module.GRANT_TYPE] is module.handle


def test_pkce_methods_advertised_are_the_ones_checked() -> None:
    assert METADATA["code_challenge_methods_supported"] == [pkce.S256]
