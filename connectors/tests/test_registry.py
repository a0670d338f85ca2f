"""Discovery of built-in connectors and of ``governance.connectors`` entry points."""

from __future__ import annotations

import sys
import textwrap

import pytest

import connectors
from connectors import registry
from connectors.sdk import Connector, UnknownConnector


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.clear_cache()
    yield
    registry.clear_cache()


def test_builtin_demo_is_discovered_and_cached():
    found = registry.discover()
    assert isinstance(found["demo"], Connector) and found["demo"].slug == "demo"
    assert "sdk" not in found and "testing" not in found
    assert registry.get("demo") is found["demo"]
    assert registry.discover()["demo"] is found["demo"]


def test_unknown_slug_lists_the_known_ones():
    with pytest.raises(UnknownConnector) as caught:
        registry.get("nope")
    assert isinstance(caught.value, LookupError)
    assert "unknown connector 'nope'" in str(caught.value) and "demo" in str(caught.value)


def _install(tmp_path, monkeypatch, name: str, module: str, entry_points: str) -> None:
    """A fake installed distribution: a module and a dist-info with entry_points.txt on sys.path."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(module))
    dist = tmp_path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_entry_point_connectors_object_or_factory_and_broken_ones_reported(tmp_path, monkeypatch):
    folder = tmp_path / "spec"
    folder.mkdir()
    (folder / "connector-spec.json").write_text('{"name": "Acme HR", "commands": ["std:test-connection"]}')
    module = f"""
        from connectors.sdk import Connector
        connector = Connector({str(folder)!r})

        @connector.command("std:test-connection")
        def test_connection(context, input, res):
            res.send({{}})

        def make():
            return Connector({str(folder)!r})

        def broken():
            raise RuntimeError("missing licence key")
    """
    entry_points = """
        [governance.connectors]
        acme-hr = acme_plugin:connector
        acme-factory = acme_plugin:make
        acme-broken = acme_plugin:broken
        acme-missing = acme_plugin_nowhere:connector
    """
    _install(tmp_path, monkeypatch, "acme_plugin", module, entry_points)
    found = registry.discover(refresh=True)
    assert found["acme-hr"].name == "Acme HR" and found["acme-hr"].slug == "acme-hr"
    assert found["acme-factory"].slug == "acme-factory"
    assert "demo" in found
    errors = registry.errors()
    assert errors["acme-broken"] == "RuntimeError: missing licence key"
    assert errors["acme-missing"].startswith("ModuleNotFoundError")
    outputs, _ = registry.get("acme-hr").invoke("std:test-connection", {})
    assert outputs == [{}]
    sys.modules.pop("acme_plugin", None)


def test_broken_builtin_connector_is_reported_not_fatal(tmp_path, monkeypatch):
    # A second folder on the package path, as if more built-in connectors were installed there.
    monkeypatch.setattr(connectors, "__path__", [*connectors.__path__, str(tmp_path)])
    for slug, spec in (
        ("zz_broken", "{"),
        ("zz_good", '{"name": "Good", "commands": ["std:test-connection"]}'),
    ):
        folder = tmp_path / slug
        folder.mkdir()
        (folder / "connector-spec.json").write_text(spec)
        (folder / "__init__.py").write_text("")
        (folder / "connector.py").write_text(
            "from pathlib import Path\n"
            "from connectors.sdk import Connector\n"
            "connector = Connector(Path(__file__).parent)\n"
        )
    (tmp_path / "zz_no_module").mkdir()
    (tmp_path / "zz_no_module" / "connector-spec.json").write_text("{}")
    try:
        found = registry.discover(refresh=True)
        assert "demo" in found and found["zz_good"].name == "Good"
        assert "zz_broken" not in found
        errors = registry.errors()
        assert errors["zz_broken"].startswith("SpecError: ") and "line 1" in errors["zz_broken"]
        assert "no connector.py" in errors["zz_no_module"]
        with pytest.raises(UnknownConnector, match=r"connector 'zz_broken' could not be loaded: SpecError"):
            registry.get("zz_broken")
    finally:
        for name in [m for m in sys.modules if m.startswith("connectors.zz_")]:
            del sys.modules[name]
