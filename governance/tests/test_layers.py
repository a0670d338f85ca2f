"""Dependencies run one way: access, identities, reviews → integrations → governance; any app → connectors.

Every module of an app (its tests and migrations aside: tests exercise the whole portal, migrations
name apps by label) is read with ``ast``; an import of an app it may not use fails the test, and so
does a string naming a model or a URL of such an app (``"access.AccessRequest"``,
``"access:approvals"``), the way Django refers lazily across apps. ``connectors`` imports no Django
at all. The project's wiring (``governance/settings.py``, ``governance/urls.py``) names every app
and is exempt.

Within an app, ``models.py`` imports no service or selector: models validate through ``validators.py``,
which the services and forms use too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What each app may import, besides itself, the standard library and third-party packages.
MAY_USE = {
    "connectors": set(),
    "governance": {"connectors"},
    "integrations": {"governance", "connectors"},
    "access": {"integrations", "governance", "connectors"},
    "identities": {"integrations", "governance", "connectors"},
    "reviews": {"access", "identities", "integrations", "governance", "connectors"},
}
APPS = set(MAY_USE)
NO_DJANGO = {"connectors": ("django", "rest_framework", "celery", "django_filters", "drf_spectacular")}
WIRING = {Path("governance/settings.py"), Path("governance/test_settings.py"), Path("governance/urls.py")}
# "access.AccessRequest" (a model), "access:approvals" (a URL): a lazy reference to another app.
REFERENCE = re.compile(r"^(?P<app>[a-z_]+)(?:\.[A-Z]\w*|:[\w-]+)$")


def _imported(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the module, at any depth, relative ones resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: within the module's own package
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                found.append((node.lineno, (base or [package])[0]))
            elif node.module:
                found.append((node.lineno, node.module.split(".")[0]))
    return found


def _references(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, app) of string constants that name another app's model, module or URL."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = REFERENCE.match(node.value)
            if match and match["app"] in APPS:
                found.append((node.lineno, match["app"]))
    return found


def violations(app: str, source: str, package: str, name: str = "<module>") -> list[str]:
    """What in ``source`` (a module of ``app``'s package ``package``) breaks the layering."""
    tree = ast.parse(source, filename=name)
    out = []
    for line, top in _imported(tree, package):
        if top in APPS and top != app and top not in MAY_USE[app]:
            out.append(f"{name}:{line} imports {top}")
        if top in NO_DJANGO.get(app, ()):
            out.append(f"{name}:{line} imports {top}")
    for line, other in _references(tree):
        if other != app and other not in MAY_USE[app]:
            out.append(f"{name}:{line} names {other}")
    return out


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        relative = path.relative_to(ROOT)
        if {"tests", "migrations", "testing"} & set(relative.parts[1:-1]) or relative in WIRING:
            continue
        package = ".".join(relative.with_suffix("").parts[:-1]) or app
        if path.name == "__init__.py":
            package = ".".join(relative.parts[:-1])
        yield relative, package


@pytest.mark.parametrize("app", sorted(a for a in APPS if (ROOT / a).is_dir()))
def test_no_module_uses_an_app_above_it(app):
    found = []
    modules = list(_modules(app))
    assert modules, f"no module found in {app}/"
    for relative, package in modules:
        found += violations(app, (ROOT / relative).read_text(), package, str(relative))
    assert not found, "imports against the layering:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "app, package, source, bad",
    [
        ("integrations", "integrations.services", "from access.models import AccessRequest\n", True),
        ("integrations", "integrations.services", "def f():\n    import access.tasks\n", True),
        ("integrations", "integrations", 'FK = "access.AccessRequest"\n', True),
        ("integrations", "integrations.screens", 'URL = "access:approvals"\n', True),
        ("governance", "governance", "from integrations import rights\n", True),
        ("connectors", "connectors.sdk", "from django.db import models\n", True),
        ("access", "access.identities", "from identities.models import Person\n", True),
        (
            "integrations",
            "integrations.screens",
            "from ..models import Role\nfrom governance import audit\n",
            False,
        ),
        ("access", "access.services", "from integrations.models import Role\n", False),
        ("reviews", "reviews", "from access.models import AccessRequest\nimport identities\n", False),
        ("integrations", "integrations", 'TEXT = "Request access."\n', False),
        ("connectors", "connectors", 'GROUP = "governance.connectors"\n', False),
    ],
)
def test_the_check_finds_what_breaks_the_layering(app, package, source, bad):
    assert bool(violations(app, source, package)) is bad


def model_imports_of_services(source: str) -> list[str]:
    """The services and selectors a models module imports (it validates through ``validators.py`` instead)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] + [f"{module}.{a.name}".lstrip(".") for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        if any(part in ("services", "selectors") for name in names for part in name.split(".")):
            found.append(f"line {node.lineno}")
    return found


@pytest.mark.parametrize("app", sorted(a for a in APPS if (ROOT / a / "models.py").is_file()))
def test_models_import_no_service_or_selector(app):
    assert not model_imports_of_services((ROOT / app / "models.py").read_text())


@pytest.mark.parametrize(
    "source, bad",
    [
        ("def clean(self):\n    from .services.rules import validate_rule\n", True),
        ("def clean(self):\n    from .selectors import implication_cycle\n", True),
        ("from . import services\n", True),
        ("def clean(self):\n    from .validators import validate_rule\n", False),
    ],
)
def test_the_models_check_finds_a_service_import(source, bad):
    assert bool(model_imports_of_services(source)) is bad
