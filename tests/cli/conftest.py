"""The `fresh_database` and `migrated` fixtures of test_cli.py, for every CLI test module."""

from tests.cli.test_cli import fresh_database, migrated

__all__ = ["fresh_database", "migrated"]
