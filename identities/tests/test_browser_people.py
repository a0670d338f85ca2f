"""People in a real headless Chromium: the admin opens People, filters by department, opens a person and
reads how each of her permissions was granted — one through an access request the demo application granted
for real. Screenshots go to docs/screenshots/ (people.png, person.png)."""

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from access import services as ar
from access.selectors import requestable_roles
from conftest import DEMO_ADMIN_PASSWORD, DEMO_PEOPLE_PASSWORD
from governance.models import User
from integrations.models import Permission
from integrations.selectors import effective_settings
from integrations.tests.test_browser_screens import shot

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "jobs"])


@pytest.fixture
def granted(live_server, settings, tmp_path):
    """The demo organisation; dorothy asked for a role of Corporate Directory and annie, her manager, approved:
    the demo application granted it (the grant task runs as the approval commits)."""
    settings.VAR_DIR = tmp_path  # the demo application keeps what the portal provisions under it
    settings.CONNECTOR_FILES_DIR = tmp_path / "connector-files"
    call_command(
        "demo", scale=0.05, verbosity=0, password=DEMO_ADMIN_PASSWORD, people_password=DEMO_PEOPLE_PASSWORD
    )
    dorothy, annie = User.objects.get(username="dorothy"), User.objects.get(username="annie")
    held = Permission.objects.filter(account__user=dorothy, ended_at=None).values("role_id")
    role = requestable_roles().filter(integration__name="Corporate Directory").exclude(pk__in=held).first()
    access = ar.access_request_create(
        actor=dorothy,
        role=role,
        duration=effective_settings(role).allowed_durations[0],
        justification="on call",
    )
    ar.access_request_approve(actor=annie, request=access, comment="ok")
    access.refresh_from_db()
    assert access.status == "granted", access.error
    return access


def test_admin_finds_a_person_and_sees_how_her_access_was_granted(live_server, page: Page, granted):
    base = live_server.url
    dorothy = User.objects.get(username="dorothy")
    permission = Permission.objects.get(access_requests=granted, role=granted.role, ended_at=None)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(base + "/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_be_visible()

    page.get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    expect(page.get_by_test_id(f"person-{dorothy.pk}")).to_be_visible()
    page.get_by_label("Department").select_option(label="Support")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table tbody tr")).to_have_count(2)  # annie and dorothy
    expect(page.get_by_test_id("table-count")).to_contain_text("of 2")
    shot(page, "people")

    page.get_by_test_id(f"person-{dorothy.pk}").get_by_role("link", name="Dorothy").click()
    expect(page.get_by_test_id("person-name")).to_have_text(dorothy.get_full_name())
    expect(page.get_by_test_id("person-manager")).to_contain_text("annie")
    row = page.get_by_test_id(f"permission-{permission.pk}")
    expect(row.get_by_test_id("provenance")).to_contain_text(f"granted by access request #{granted.pk}")
    expect(row.get_by_test_id("provenance")).to_contain_text("approved by")
    expect(page.get_by_test_id("person-requests")).to_contain_text(f"#{granted.pk}")
    shot(page, "person")
    # The request's own page is a link away.
    row.get_by_role("link", name=f"access request #{granted.pk}").click()
    expect(page.get_by_test_id("request-status")).to_have_text("Granted")
