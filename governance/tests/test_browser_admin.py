"""The Django admin, driven in a real headless Chromium: sign in, browse the demo inventory, edit, audit."""

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from conftest import DEMO_ADMIN_PASSWORD, DEMO_CONFIG, DEMO_PEOPLE_PASSWORD
from governance.models import AuditEvent, User
from integrations import services
from integrations.models import Integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def signed_in(live_server, page: Page, transactional_db):
    call_command(
        "demo", scale=0.05, verbosity=0, password=DEMO_ADMIN_PASSWORD, people_password=DEMO_PEOPLE_PASSWORD
    )
    page.goto(live_server.url + "/admin/")
    expect(page).to_have_url(live_server.url + "/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_ADMIN_PASSWORD)
    page.click("input[type=submit]")
    expect(page.get_by_role("heading", name="Power edits")).to_be_visible()
    return page


def test_admin_journey_in_chromium(live_server, signed_in: Page):
    page = signed_in
    admin = User.objects.get(username="admin")
    services.integration_create(
        actor=admin,
        application="demo",
        name="Browser Directory",
        connection_config={**DEMO_CONFIG, "apiToken": "tok-browser-secret"},
    )

    page.locator("#integrations-integration").get_by_role("link", name="Integrations").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(6)
    icon = page.locator("#result_list tbody tr img").first
    expect(icon).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=icon.element_handle()
    )  # it loads
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-integrations.png"), full_page=True)

    page.get_by_role("link", name="Browser Directory").click()
    expect(page.get_by_text("apiToken: set")).to_be_visible()
    assert "tok-browser-secret" not in page.content()
    page.get_by_label("Requestable", exact=True).uncheck()
    page.screenshot(path=str(SCREENSHOTS / "admin-integration.png"), full_page=True)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    assert Integration.objects.get(name="Browser Directory").requestable is False

    page.goto(live_server.url + "/admin/integrations/resource/?q=prod")
    expect(page.locator("#result_list tbody tr").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "admin-resources.png"), full_page=True)

    page.goto(live_server.url + "/admin/governance/auditevent/")
    expect(page.locator("#result_list")).to_contain_text("integration.update")
    page.screenshot(path=str(SCREENSHOTS / "admin-audit-log.png"), full_page=True)
    event = AuditEvent.objects.filter(action="integration.update").latest("id")
    assert event.actor_id == admin.pk and event.details["changes"]["requestable"]["to"] is False
