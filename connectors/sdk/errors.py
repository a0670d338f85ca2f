"""Errors raised by the connector SDK.

Every error the SDK raises on purpose is a :class:`ConnectorError`, so a caller can catch one class.
Messages are one line and name what went wrong (the file, the config item, the object, the command).
"""

from __future__ import annotations

from typing import Any


def one_line(text: Any, *secrets: str | None) -> str:
    """``text`` (an exception or any value) on one line, white space folded, each secret of three
    characters or more replaced by ``***`` — how a connector quotes a library's message in its own."""
    text = " ".join(str(text).split())
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


class ConnectorError(Exception):
    """Base class. ``command`` and ``connector`` are filled in by ``Connector.execute`` when known."""

    def __init__(self, message: str = "", *, command: str | None = None, connector: str | None = None):
        super().__init__(message)
        self.message = message
        self.command = command
        self.connector = connector

    def __str__(self) -> str:
        return self.message


class SpecError(ConnectorError):
    """A ``connector-spec.json`` could not be read or does not have the expected structure."""

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, column: int | None = None
    ):
        where = ""
        if path:
            where = str(path)
            if line is not None:
                where += f", line {line}"
                if column is not None:
                    where += f", column {column}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.column = column


class ConfigError(ConnectorError, ValueError):
    """A connection config does not satisfy the spec's ``sourceConfig``. ``item`` is the offending key."""

    def __init__(self, message: str, *, item: str | None = None):
        super().__init__(message)
        self.item = item


class SecretError(ConfigError):
    """A secret reference (``{"$env": "NAME"}``) could not be resolved."""


class UnsupportedCommand(ConnectorError):
    """The command is unknown to the connector or has no registered handler."""


class InputError(ConnectorError, ValueError):
    """The command input is malformed (not an object, missing identity, bad ``changes``...)."""


class OutputError(ConnectorError):
    """A handler sent an object that does not match the output contract."""

    def __init__(self, message: str, *, object_ref: str | None = None, field: str | None = None):
        super().__init__(message)
        self.object_ref = object_ref
        self.field = field


class StateError(ConnectorError):
    """A handler saved a state that is not a JSON object."""


class ObjectNotFound(ConnectorError, LookupError):
    """A read/update/delete named an account or entitlement the source does not hold."""


class Cancelled(ConnectorError):
    """The caller asked to stop (``should_cancel()`` returned true)."""


class UnknownConnector(LookupError):
    """No installed connector has that slug."""

    def __init__(self, slug: str, known: list[str], reason: str | None = None):
        self.slug = slug
        self.known = sorted(known)
        self.reason = reason
        if reason:
            super().__init__(f"connector {slug!r} could not be loaded: {reason}")
        else:
            listed = ", ".join(self.known) if self.known else "none installed"
            super().__init__(f"unknown connector {slug!r} (known: {listed})")

    def __str__(self) -> str:
        return self.args[0]
