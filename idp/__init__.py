"""idp: a standalone OpenID Connect identity provider with two-step verification."""

__version__ = "0.1.0"
