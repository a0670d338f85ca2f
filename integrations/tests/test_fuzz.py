"""Malformed input on every API operation and every screen form: never a 500, errors in the right shape.

Two walkers. The API one reads the OpenAPI schema (every path and method, and the ISC alias
``/v3/sources/{id}``) and sends, to each operation: a body nested 5,000 levels, every body field set
to each malformed shape (nested 500 levels, a NUL, a list, an object, ``²``, a negative or a 30-digit
number...), each query parameter set to malformed values, crafted cursors, malformed ids and
``Authorization`` headers. Every answer is below 500, and every 4xx is the API's JSON error shape.

The screen one walks the URL resolver (every screen but the admin's and the API's), opens each page
with malformed paging, sorting and search parameters, reads the forms of each page from its HTML and
posts each form once per field and shape, with ``next`` pointing off the site. Every answer is below
500, and no redirect leaves the site.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.http import url_has_allowed_host_and_scheme
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from access import services as ar
from governance.models import AuditEvent, Job
from governance.tokens import api_token_create
from identities.models import IdentitySource
from integrations import services
from integrations.models import Account, Permission, Resource, Role, Rule
from integrations.services.prerequisites import prerequisite_add
from integrations.services.workflows import workflow_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def deep(levels: int):
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


SHAPES = [deep(500), "a\x00b", [1], {}, "²", -1, 10**30, None, True, "x" * 5000]
TEXT_SHAPES = [
    "²",
    "99999999999999999999999",
    json.dumps(deep(900)),
    json.dumps({"a": "\x00", "owner": [1], "maintainers": 5, "workflow": {}}),
    "x" * 5000,
]
QUERY_SHAPES = ["²", "-1", "99999999999999999999999", "x" * 3000, "[1]"]
PAGING = {
    "per_page": ["-1", "0", "x", "1000000"],
    "page": ["-1", "x", "99999999999999999999"],
    "sort": ["x", "-"],
}
NEXT = ["https://evil.example", "//evil.example", "javascript:alert(1)", "foo"]


@pytest.fixture
def world(admin_user, make_integration, django_user_model):
    """One of everything, so every path id points at a real object."""
    integration = make_integration(name="Fuzzed")
    resource = Resource.objects.create(integration=integration, external_id="r", name="r", requestable=True)
    role = Role.objects.create(resource=resource, external_id="r-m", name="member", requestable=True)
    other_role = Role.objects.create(resource=resource, external_id="r-o", name="owner", requestable=True)
    account = Account.objects.create(integration=integration, external_id="a", identity="a")
    permission = Permission.objects.create(account=account, role=role)
    workflow = workflow_create(
        actor=admin_user, name="Fuzz approval", steps=[{"approvers": [{"kind": "user", "user": admin_user}]}]
    )
    services.integration_update(
        actor=admin_user, integration=integration, read_only=True, default_workflow=workflow
    )
    requester = django_user_model.objects.create_user("fuzz-requester")
    maintainer = services.maintainer_add(actor=admin_user, integration=integration, user=requester)
    prerequisite = prerequisite_add(actor=admin_user, alternatives=[other_role], role=role)
    waiting = ar.access_request_create(actor=requester, role=role, duration="1d", justification="fuzz")
    approved = ar.access_request_create(actor=requester, role=other_role, duration="1d", justification="fuzz")
    ar.access_request_approve(actor=admin_user, request=approved)
    ticket = ar.access_request_grant(request_id=approved.pk).tickets.get()
    token, secret = api_token_create(actor=admin_user, name="fuzz")
    rule = Rule.objects.create(name="Fuzz rule", actions={"requestable": True})
    job = Job.objects.create(kind="sync", integration_id=integration.pk, created_by=admin_user)
    return {
        "integration": integration,
        "resource": resource,
        "role": role,
        "account": account,
        "permission": permission,
        "workflow": workflow,
        "maintainer": maintainer,
        "prerequisite": prerequisite,
        "request": waiting,
        "ticket": ticket,
        "token": token,
        "secret": secret,
        "rule": rule,
        "job": job,
        "event": AuditEvent.objects.order_by("-id").first(),
        "person": requester,  # a person's id is their user's
        "identity_source": IdentitySource.objects.create(
            integration=integration, mapping={"username": "userName"}
        ),
    }


# -- the API --------------------------------------------------------------------------------------------------

API_IDS = {  # the first path segment after /api/ → the object its {id} is
    "integrations": "integration",
    "sources": "integration",
    "resources": "resource",
    "roles": "role",
    "accounts": "account",
    "permissions": "permission",
    "workflows": "workflow",
    "rules": "rule",
    "jobs": "job",
    "tokens": "token",
    "access-requests": "request",
    "access-tickets": "ticket",
    "audit-events": "event",
    "people": "person",
    "identity-sources": "identity_source",
}


def _api_client(secret, **headers) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)
    return client


def _api_failure(response, what) -> tuple | None:
    """What is wrong with an answer to malformed input: a 5xx, or a 4xx outside the API's error shape."""
    if response.status_code >= 500:
        return (response.status_code, what, response.content[:200])
    if response.status_code >= 400 and response.status_code != 405:
        if not response["Content-Type"].startswith("application/json"):
            return (response.status_code, what, response["Content-Type"])
        if not {"code", "message", "fields"} <= set(response.json().get("error", {})):
            return (response.status_code, what, response.content[:200])
    return None


def _properties(schema: dict, body: dict) -> list[str]:
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    return list(body.get("properties", {}))


def _operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            if method in ("get", "post", "patch", "put", "delete"):
                yield path, method, op
                if path == "/api/v3/sources/{id}":
                    yield "/v3/sources/{id}", method, op  # the ISC alias, outside the schema


def test_every_api_operation_answers_malformed_input_without_a_500(world, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "1000000/min", "user": "1000000/min", "anon": "1000000/min"},
    }
    schema = SchemaGenerator().get_schema(request=None, public=True)
    client = _api_client(world["secret"])
    deletes, seen, failures = [], set(), []

    def _check_api(response, what):
        if failure := _api_failure(response, what):
            failures.append(failure)

    def url_of(path):
        segment = path.strip("/").split("/")[2 if path.startswith(("/api/v3/", "/v3/")) else 1]
        segment = "sources" if "/sources/" in path else segment
        return path.replace("{id}", str(world[API_IDS[segment]].pk)) if "{id}" in path else path

    # First, while every object is there: a body nested 5,000 levels is refused before anything else.
    for path, method, op in _operations(schema):
        if method in ("post", "patch", "put"):
            content = op.get("requestBody", {}).get("content", {})
            media = next(iter(content), "application/json")
            response = getattr(client, method)(url_of(path), "[" * 5000 + "]" * 5000, content_type=media)
            _check_api(response, (method, path, "deep"))
            # An operation reading a body refuses it; a token may not create tokens at all (403 first).
            refused_first = (method, path) == ("post", "/api/tokens/") and response.status_code == 403
            if content and response.status_code != 400 and not refused_first:
                failures.append((response.status_code, method, path, "nested 5,000 levels"))
    for path, method, op in _operations(schema):
        url = url_of(path)
        seen.add((method, path))
        if method == "delete":
            deletes.append(url)
            continue
        send = getattr(client, method)
        # Malformed ids and Authorization headers.
        if "{id}" in path:
            for bad in ("²", "-1", "99999999999999999999", "abc", "%00"):
                _check_api(send(path.replace("{id}", bad)), (method, path, bad))
        for header in ("\x1c", "\xa0", "Bearer \x00", "Bearer gov_\x00_x", "Basic ²"):
            _check_api(getattr(APIClient(raise_request_exception=False), method)(url, HTTP_AUTHORIZATION=header),
                       (method, path, header))  # fmt: skip
        # Query parameters, cursors and page sizes.
        for param in op.get("parameters", []):
            if param["in"] != "query":
                continue
            for value in QUERY_SHAPES:
                _check_api(send(url, {param["name"]: value}), (method, path, param["name"], value))
        if any(p["name"] == "cursor" for p in op.get("parameters", [])):
            for raw in (b"p=abc", b"p=\x00", b"p=2026-99-99T00:00", b"o=-1", b"r=x", b"\xff"):
                _check_api(send(url, {"cursor": base64.b64encode(raw).decode()}), (path, raw))
        _check_api(send(url, {"q": "a\x00"}), (path, "NUL"))
        # Bodies.
        if method not in ("post", "patch", "put"):
            continue
        content = op.get("requestBody", {}).get("content", {})
        media = next(iter(content), "application/json")
        body_schema = content.get(media, {}).get("schema", {})
        if media == "application/json-patch+json":
            for target in ("/name", "/owner", "/connectorAttributes/filterString", "", "/a\x00", "²"):
                for value in SHAPES:
                    body = [{"op": "replace", "path": target, "value": value}]
                    _check_api(send(url, json.dumps(body), content_type=media), (path, target, value))
            continue
        for prop in _properties(schema, body_schema):
            for value in SHAPES:
                if path.endswith("/sync/") and value in (None, True):
                    continue  # a valid request: a sync would mark the world's objects removed
                _check_api(send(url, {prop: value}, format="json"), (method, path, prop, str(value)[:40]))
    for url in deletes:  # last: they remove what the others use
        for bad in ("²", "99999999999999999999"):
            _check_api(client.delete(re.sub(r"/\d+/?$", f"/{bad}/", url)), ("delete", url, bad))
        _check_api(client.delete(url), ("delete", url))
    assert not failures, "\n".join(map(repr, failures))
    assert ("patch", "/api/v3/sources/{id}") in seen and len(seen) > 40


# -- the screens ----------------------------------------------------------------------------------------------


class Forms(HTMLParser):
    """The forms of a page as a browser submits them: action, method, fields (name → value, the first option
    of a select) and the values of its named submit buttons (only the one clicked is sent)."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            method = (a.get("method") or "get").lower()
            self._form = {"action": a.get("action") or "", "method": method, "fields": {}, "buttons": []}
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        fields, name = self._form["fields"], a.get("name")
        if tag == "option" and self._select and not fields.get(self._select):
            fields[self._select] = a.get("value") or ""
        elif not name:
            return
        elif tag == "button" or (tag == "input" and a.get("type") == "submit"):
            if a.get("value"):
                self._form["buttons"].append((name, a["value"]))
        elif tag == "input" and a.get("type") != "file":
            checked = a.get("type") not in ("checkbox", "radio") or "checked" in a
            if checked or name not in fields:
                fields[name] = (
                    (a.get("value") or ("on" if a.get("type") == "checkbox" else "")) if checked else ""
                )
        elif tag == "select":
            self._select = name
            fields.setdefault(name, "")
        elif tag == "textarea":
            self._textarea = name
            fields[name] = ""

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


def _screen_urls(world) -> list[str]:
    """Every screen URL of the resolver (not the admin's, the API's, sign-in or assets), with real ids."""
    ids = {
        "integrations": world["integration"].pk,
        "resources": world["resource"].pk,
        "roles": world["role"].pk,
        "rules": world["rule"].pk,
        "requests": world["request"].pk,
        "request": world["role"].pk,
        "tickets": world["ticket"].pk,
        "workflows": world["workflow"].pk,
        "maintainers": world["maintainer"].pk,
        "prerequisites": world["prerequisite"].pk,
        "jobs": world["job"].pk,
        "account": world["token"].pk,
        "identity-sources": world["integration"].pk,  # a source's screens are named by its integration
    }
    urls = []

    def walk(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                if route.startswith(("admin/", "api/", "v3/", "^api/", "login/", "logout/", "catalogue/")):
                    continue
                first = route.split("/")[0]
                url = "/" + route
                url = url.replace("<slug:slug>", "demo").replace("<str:kind>", "role")
                url = re.sub(r"<(int|uuid):\w+>", str(ids.get(first, 1)), url)
                if "/prerequisites/role/" in url:
                    url = url.replace(f"/role/{ids['prerequisites']}/", f"/role/{world['role'].pk}/")
                urls.append(url)

    walk(get_resolver().url_patterns)
    return urls


def _off_site(response) -> bool:
    location = response.get("Location", "")
    return response.status_code in (301, 302, 303, 307, 308) and not url_has_allowed_host_and_scheme(
        location, allowed_hosts={"testserver"}
    )


def test_every_screen_and_form_answers_malformed_input_without_a_500(world, admin_user):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    urls = _screen_urls(world)
    assert len(urls) > 50 and "/requests/{}/approve".format(world["request"].pk) in urls
    failures: list = []

    def check(response, *what, status=None):
        if response.status_code >= 500 or (status is not None and response.status_code != status):
            failures.append((response.status_code, *what))
        elif _off_site(response):
            failures.append(("off-site", response["Location"], *what))

    forms: dict[str, dict] = {}
    for url in urls:
        page = client.get(url)
        check(page, url)
        for name, values in PAGING.items():
            for value in values:
                check(client.get(url, {name: value}), url, name, value)
        check(client.get(url, {"q": "a\x00"}), url, "NUL", status=400)
        if page.status_code != 200 or not page["Content-Type"].startswith("text/html"):
            forms.setdefault(url, {"fields": {"next": "", "comment": "", "note": ""}, "buttons": []})
            continue  # a POST-only action: the fields the screens send to it
        parser = Forms()
        parser.feed(page.content.decode())
        for form in parser.forms:
            action = form["action"] or url
            if form["method"] == "get":
                for field in form["fields"]:
                    for value in QUERY_SHAPES:
                        check(client.get(action, {**form["fields"], field: value}), action, field, value)
            elif action != "/logout/":  # signing out would end the walk
                forms.setdefault(action, form)
    # Destructive forms last, so the others still find their objects.
    destructive = ("delete", "remove", "revoke", "cancel", "end", "deny", "approve", "close", "retry")
    ordered = sorted(forms.items(), key=lambda item: any(w in item[0] for w in destructive))
    assert len(ordered) > 35, [action for action, _ in ordered]
    for action, form in ordered:
        fields = form["fields"]
        for field in fields:
            for value in TEXT_SHAPES:
                check(client.post(action, {**fields, field: value}), action, field, value[:40])
        for name, value in form["buttons"]:  # each button once, the fields malformed
            check(client.post(action, {**fields, **dict.fromkeys(fields, "²"), name: value}), action, name)
        check(client.post(action, {**fields, "x": "a\x00"}), action, "NUL", status=400)
        for target in NEXT:
            check(client.post(action, {**fields, "next": target}), action, "next", target)
    assert not failures, "\n".join(map(repr, failures))
    assert AuditEvent.objects.exists()
