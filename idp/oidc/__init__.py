"""OpenID Connect endpoints (INTERFACE §3), one module per endpoint."""
