"""The API tests' people, tokens and clients (shared with the inventory's API tests)."""

from integrations.tests.api.conftest import _fresh_throttle, client_for, people, tokens, world  # noqa: F401
