"""Reading a connector's config items in handlers: typed values with clear errors naming the item."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import ConfigError


def config_text(config: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    """A text item, stripped; ``default`` when absent or blank."""
    value = config.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str):
        raise ConfigError(f"config item {key!r} must be a string", item=key)
    return value.strip()


def config_int(config: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``; ``default`` when absent or blank."""
    value = config.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(
            f"config item {key!r} must be a whole number from {low} to {high}, got {value!r}", item=key
        )
    return value


@contextlib.contextmanager
def pem_file(value: str | None, *, item: str) -> Iterator[str | None]:
    """A CA certificate item as a file path for a TLS library: PEM text goes to a private temporary
    file (removed afterwards), a path is used as is, nothing gives ``None``."""
    if not value:
        yield None
        return
    if "-----BEGIN" not in value:
        if not os.path.isfile(value):
            raise ConfigError(
                f"config item {item!r} must be a PEM certificate or the path of a PEM file; no file {value!r}",
                item=item,
            )
        yield value
        return
    fd, path = tempfile.mkstemp(prefix="ca-", suffix=".pem")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value if value.endswith("\n") else value + "\n")
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
