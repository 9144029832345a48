"""Health, readiness, metrics and the access log."""
