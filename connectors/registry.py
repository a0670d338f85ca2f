"""Finding the installed connectors.

Two sources:

* built-in connectors: every folder ``connectors/<slug>/`` holding a ``connector-spec.json`` and a module
  ``connectors/<slug>/connector.py`` that exposes ``connector`` (a :class:`~connectors.sdk.Connector`);
* third-party packages: entry points of the group ``governance.connectors``; the entry point's name is the
  slug and its value a ``Connector`` object or a callable returning one.

:func:`discover` imports them once and caches the result. A connector that fails to load is logged and
listed by :func:`errors`; the others still load.
"""

from __future__ import annotations

import importlib
import logging
import threading
from importlib.metadata import entry_points
from pathlib import Path

from .sdk.connector import Connector
from .sdk.errors import UnknownConnector
from .sdk.spec import SPEC_FILENAME

ENTRY_POINT_GROUP = "governance.connectors"
PACKAGE_DIR = Path(__file__).resolve().parent
# Folders of this package that are not connectors.
_NOT_CONNECTORS = {"sdk", "testing", "tests", "__pycache__"}

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_cache: dict[str, Connector] | None = None
_errors: dict[str, str] = {}


def discover(*, refresh: bool = False) -> dict[str, Connector]:
    """All installed connectors by slug (built-in first, then entry points), cached after the first call."""
    global _cache
    with _lock:
        if _cache is None or refresh:
            found: dict[str, Connector] = {}
            errors: dict[str, str] = {}
            _discover_builtin(found, errors)
            _discover_entry_points(found, errors)
            for slug, message in errors.items():
                logger.error("connector %s could not be loaded: %s", slug, message)
            _errors.clear()
            _errors.update(errors)
            _cache = found
        return dict(_cache)


def get(slug: str) -> Connector:
    """The connector with that slug. Raises :class:`UnknownConnector` (a ``LookupError``), whose message
    gives the reason when the connector exists but failed to load."""
    connectors = discover()
    try:
        return connectors[slug]
    except KeyError:
        raise UnknownConnector(slug, list(connectors), _errors.get(slug)) from None


def errors() -> dict[str, str]:
    """Connectors that failed to load at the last discovery: slug → one-line reason."""
    discover()
    return dict(_errors)


def clear_cache() -> None:
    global _cache
    with _lock:
        _cache = None
        _errors.clear()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _package_dirs() -> list[Path]:
    package = importlib.import_module(__package__)
    return [Path(p) for p in getattr(package, "__path__", [PACKAGE_DIR])]


def _discover_builtin(found: dict[str, Connector], errors: dict[str, str]) -> None:
    folders = sorted((f for d in _package_dirs() if d.is_dir() for f in d.iterdir()), key=lambda f: f.name)
    for folder in folders:
        slug = folder.name
        if slug in found or slug in errors:
            continue
        if slug in _NOT_CONNECTORS or slug.startswith((".", "_")) or not folder.is_dir():
            continue
        if not (folder / SPEC_FILENAME).is_file():
            continue
        if not (folder / "connector.py").is_file():
            errors[slug] = f"{folder} has a {SPEC_FILENAME} but no connector.py"
            continue
        try:
            module = importlib.import_module(f"{__package__}.{slug}.connector")
            connector = getattr(module, "connector", None)
            if not isinstance(connector, Connector):
                raise TypeError(f"{module.__name__}.connector is not a Connector")
        except Exception as exc:
            errors[slug] = _describe(exc)
            continue
        found[slug] = connector


def _discover_entry_points(found: dict[str, Connector], errors: dict[str, str]) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        slug = ep.name
        if slug in found:
            errors[f"{slug} ({ep.value})"] = f"slug {slug!r} is already used by {found[slug].folder}"
            continue
        try:
            value = ep.load()
            connector = value if isinstance(value, Connector) else value()
            if not isinstance(connector, Connector):
                raise TypeError(f"entry point {ep.value} did not give a Connector")
        except Exception as exc:
            errors[slug] = _describe(exc)
            continue
        connector.slug = slug
        found[slug] = connector
