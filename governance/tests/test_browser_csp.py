"""Security headers of production (DEBUG off): HSTS, and a Content-Security-Policy without inline
scripts that every screen passes in Chromium — no violation reported, and the screens' JavaScript
(htmx, the confirmation modal, Swagger UI) still works."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from access.models import AccessRequest
from access.selectors import requestable_roles
from access.services import access_request_create
from conftest import DEMO_ADMIN_PASSWORD, DEMO_PEOPLE_PASSWORD
from governance.models import User
from integrations.models import Integration, Resource, Role, Rule
from integrations.selectors import effective_settings

# Every violation the page sees, whatever reports it first (the event, or the console line).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.mark.django_db
def test_production_sends_hsts_and_a_csp_without_inline_scripts(client):
    response = client.get("/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000"
    csp = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert directives["script-src"] == "'self'" and "unsafe" not in directives["script-src"]
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    # The API's JSON carries the policy too (harmless), and the docs page is the split Swagger view.
    assert "Content-Security-Policy" in client.get("/api/schema/", secure=True)


def test_every_screen_passes_the_csp_in_chromium(live_server, page: Page):
    call_command(
        "demo", scale=0.05, verbosity=0, password=DEMO_ADMIN_PASSWORD, people_password=DEMO_PEOPLE_PASSWORD
    )
    admin = User.objects.get(username="admin")
    role = requestable_roles().filter(integration__name="Corporate Directory").first()
    dorothy = User.objects.get(username="dorothy")
    access = access_request_create(
        actor=dorothy,
        role=role,
        duration=effective_settings(role).allowed_durations[0],
        justification="on call",
    )
    assert AccessRequest.objects.filter(pk=access.pk).exists()
    integration = Integration.objects.get(name="Corporate Directory")
    resource = Resource.objects.filter(integration=integration).first()
    some_role = Role.objects.filter(resource=resource).first()
    rule = Rule.objects.first()

    console: list[str] = []
    page.on(
        "console",
        lambda msg: console.append(msg.text)
        if "Content Security Policy" in msg.text or "Refused to" in msg.text
        else None,
    )
    page.add_init_script(RECORD_VIOLATIONS)
    policies: dict[str, str | None] = {}
    page.on(
        "response",
        lambda r: policies.__setitem__(r.url, r.headers.get("content-security-policy"))
        if r.request.resource_type == "document"
        else None,
    )

    base = live_server.url
    page.goto(base + "/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()

    screens = [
        "/",
        "/integrations/",
        f"/integrations/{integration.pk}/",
        f"/resources/{resource.pk}/",
        "/resources/",
        f"/roles/{some_role.pk}/",
        "/roles/",
        "/integrations/add/",
        "/integrations/add/demo/",
        "/rules/",
        "/rules/add/",
        *([f"/rules/{rule.pk}/"] if rule else []),
        "/bulk/",
        "/workflows/",
        "/workflows/add/",
        "/request/",
        f"/request/{role.pk}/",
        "/requests/",
        "/approvals/",
        f"/requests/{access.pk}/",
        "/audit/",
        "/account/tokens/",
        "/admin/",
        "/admin/integrations/integration/",
        f"/admin/integrations/integration/{integration.pk}/change/",
        "/admin/governance/auditevent/",
        "/api/docs/",
    ]
    for path in screens:
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        assert policies.get(page.url), f"{path}: no Content-Security-Policy header"
        assert page.evaluate("window.__cspViolations") == [], path
        assert console == [], (path, console)

    # The screens' JavaScript works under the policy:
    # htmx posts "Test connection" and swaps in its result,
    page.goto(f"{base}/integrations/{integration.pk}/")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).not_to_be_empty()
    # a new token's value is selected by a click (the former inline onclick), and a destructive
    # action asks in the confirmation modal (app.js with Tabler's Bootstrap),
    page.goto(f"{base}/account/tokens/")
    page.fill("#id_name", "csp check")
    page.get_by_role("button", name="Create token").click()
    value = page.get_by_test_id("new-token-value")
    value.click()
    assert page.evaluate("el => el.selectionEnd - el.selectionStart", value.element_handle()) == len(
        value.input_value()
    )
    page.get_by_role("button", name="Revoke csp check").click()
    expect(page.locator("#confirm-modal")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("stop working at once")
    assert page.evaluate("window.__cspViolations") == [] and console == [], console
    # and Swagger UI renders the schema.
    page.goto(f"{base}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Access governance API")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__cspViolations") == [] and console == [], console
    assert admin.is_superuser
