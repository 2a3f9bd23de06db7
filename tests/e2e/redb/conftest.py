"""The REDB tests' REC is the shared one of tests/e2e/conftest.py (`redb_env`); RedbEnv stays
importable from here."""

from tests.e2e.conftest import RedbEnv

__all__ = ["RedbEnv"]
