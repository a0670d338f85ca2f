"""The admin screens in a real headless Chromium: the journeys an admin walks, with screenshots."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from conftest import DEMO_ADMIN_PASSWORD, DEMO_CONFIG, DEMO_PEOPLE_PASSWORD
from governance.models import AuditEvent, User
from integrations.models import Account, Integration, Resource, Role, Rule
from integrations.selectors import uncorrelated_accounts

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "jobs"])


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def assert_clear_of_header(page: Page, toast) -> None:
    """A toast never covers the header: the signed-in user's menu and the page's action buttons."""
    box = toast.bounding_box()
    for element in [page.get_by_test_id("signed-in-user"), *page.locator(".page-header .btn").all()]:
        other = element.bounding_box()
        overlaps = not (
            box["x"] + box["width"] <= other["x"]
            or other["x"] + other["width"] <= box["x"]
            or box["y"] + box["height"] <= other["y"]
            or other["y"] + other["height"] <= box["y"]
        )
        assert not overlaps, (box, other)


@pytest.fixture
def admin_page(live_server, page: Page):
    call_command(
        "demo", scale=0.05, verbosity=0, password=DEMO_ADMIN_PASSWORD, people_password=DEMO_PEOPLE_PASSWORD
    )
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/login/?next=/")
    shot(page, "login")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()
    return page


def test_admin_journeys(live_server, admin_page: Page):
    page, base = admin_page, live_server.url
    admin = User.objects.get(username="admin")
    expect(page.get_by_test_id("signed-in-user")).to_be_visible()
    expect(page.locator("table tbody tr")).to_have_count(5)
    icon = page.locator("table tbody tr img").first
    expect(icon).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=icon.element_handle())
    shot(page, "integrations")

    # Add an integration: a bad connection is refused with the connector's error, a good one syncs.
    page.get_by_role("link", name="Add integration").click()
    page.get_by_test_id("catalogue-demo").click()
    expect(page.get_by_test_id("connector-docs")).to_be_visible()
    expect(page.get_by_test_id("example-config")).to_contain_text("demo.example.com")
    config = {k: v for k, v in DEMO_CONFIG.items() if k not in ("connectionOption", "memberships", "seed")}
    page.locator("#id_name").fill("Browser Directory")
    page.get_by_role("radio", name="API token").check()
    page.locator("#id_config").fill(json.dumps({**config, "apiToken": "wrong"}))
    page.get_by_role("button", name="Test connection and save").click()
    expect(page.get_by_test_id("connection-error")).to_be_visible()
    shot(page, "add-integration")
    assert not Integration.objects.filter(name="Browser Directory").exists()
    page.locator("#id_config").fill(json.dumps(config))
    page.get_by_role("button", name="Test connection and save").click()
    expect(page.get_by_test_id("sync-job-status")).to_have_text("Succeeded", timeout=30_000)
    integration = Integration.objects.get(name="Browser Directory")
    expect(page.get_by_test_id("count-resources")).to_have_text("10")
    # A resource row of the page's table expands into its roles (loaded by htmx on first open).
    row = page.locator("details.resource-row").first
    row.locator("summary").click(position={"x": 4, "y": 8})
    expect(row.locator(".resource-roles")).to_contain_text("Viewer")
    shot(page, "integration")

    # Sync again from the page: the progress partial polls until the job has finished.
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_test_id("sync-job-status")).to_have_text("Succeeded", timeout=30_000)
    # Its toast shows on this page, at once, and not again on the next one.
    expect(page.locator(".toast", has_text="Sync started.")).to_be_visible()

    # Edit a resource's owner and tags.
    resource = Resource.objects.filter(integration=integration).order_by("name").first()
    page.goto(f"{base}/resources/{resource.pk}/")
    expect(page.locator(".page-title")).to_be_visible()
    expect(page.locator(".toast", has_text="Sync started.")).to_have_count(0)
    page.locator("#id_owner").select_option(label=str(admin))
    page.locator("#id_tags").fill("pii, production")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".toast", has_text="saved").first).to_be_visible()  # other toasts may still show
    assert_clear_of_header(page, page.locator(".toast").first)
    expect(page.locator(".page-title")).to_contain_text("production")
    resource.refresh_from_db()
    assert resource.owner == admin and sorted(t.name for t in resource.tags.all()) == ["pii", "production"]
    shot(page, "resource")
    role = Role.objects.filter(resource=resource).first()
    page.goto(f"{base}/roles/{role.pk}/")
    expect(page.get_by_role("heading", name="Who holds it")).to_be_visible()
    shot(page, "role")

    # A rule: viewer roles of the new integration are not requestable; preview, then apply.
    page.goto(f"{base}/rules/")
    page.get_by_role("link", name="New rule").click()
    page.locator("#id_name").fill("Viewers are not requestable")
    page.get_by_label("Roles").check()
    rows = page.locator(".condition-row")
    rows.nth(0).get_by_label("Condition field").select_option("name")
    rows.nth(0).get_by_label("Condition operator").select_option("equals")
    rows.nth(0).get_by_label("Condition value").fill("viewer")
    rows.nth(1).get_by_label("Condition field").select_option("integration")
    rows.nth(1).get_by_label("Condition operator").select_option("is")
    rows.nth(1).get_by_label("Condition value").fill("Browser Directory")
    page.get_by_label("Set requestable").check()
    page.locator("#id_c-requestable").select_option("false")
    shot(page, "rule-form")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_test_id("rule-preview")).to_contain_text("10 existing roles match; 10 would change")
    page.get_by_role("button", name="Apply to 10 existing roles").click()
    expect(
        page.locator(".toast", has_text="10 roles changed").first
    ).to_be_visible()  # other toasts may still show
    assert (
        Role.objects.filter(integration=integration, name__iexact="viewer", requestable=False).count() == 10
    )
    assert Rule.objects.get().last_applied_at is not None
    shot(page, "rules")

    # A bulk action over every matching role, beyond the first page.
    page.goto(f"{base}/bulk/?target=roles&integration={integration.pk}&per_page=5")
    expect(page.get_by_test_id("table-count")).to_contain_text("of 30")
    page.get_by_test_id("scope-all").check()
    page.get_by_label("Add tags").check()
    page.locator("#id_c-tags").fill("browser-bulk")
    shot(page, "bulk")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("bulk-preview")).to_contain_text("30 roles selected")
    page.get_by_role("button", name="Apply to 30 roles").click()
    expect(
        page.locator(".toast", has_text="30 of 30 roles changed")
    ).to_be_visible()  # other toasts may still show
    assert Role.objects.filter(integration=integration, tags__name="browser-bulk").count() == 30

    # The audit log tells all of it.
    page.goto(f"{base}/audit/?integration={integration.pk}")
    for action in ["integration.create", "integration.sync", "resource.update", "role.update"]:
        page.goto(f"{base}/audit/?integration={integration.pk}&action={action}")
        expect(page.locator("table tbody tr").first).to_contain_text(action)
    page.goto(f"{base}/audit/?integration={integration.pk}")
    shot(page, "audit-log")
    assert AuditEvent.objects.filter(action="role.update", details__via="bulk", actor=admin).count() == 30
    assert AuditEvent.objects.filter(action="rule.create", actor=admin).exists()

    # Delete: the confirmation names what goes, and wants the name typed.
    page.goto(f"{base}/integrations/{integration.pk}/delete")
    expect(page.get_by_test_id("delete-counts")).to_contain_text("10 resources")
    shot(page, "delete-integration")
    page.get_by_label("Type the integration's name to confirm").fill("Browser Directory")
    page.get_by_role("button", name="Delete Browser Directory").click()
    # Deleting is a job: the screen follows its progress.
    expect(page.get_by_role("heading", name="Deleting Browser Directory")).to_be_visible()
    expect(
        page.locator(".toast", has_text="Deleting Browser Directory").first
    ).to_be_visible()  # other toasts may still show
    expect(page.get_by_test_id("job-status")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator("#job")).to_contain_text("Permissions")
    assert AuditEvent.objects.filter(action="integration.delete", object_id=str(integration.pk)).count() == 1
    page.goto(f"{base}/integrations/{integration.pk}/")
    expect(page.get_by_text("This page does not exist")).to_be_visible()


def test_admin_links_an_uncorrelated_account(live_server, admin_page: Page):
    """From an integration to its uncorrelated accounts, one of them linked to its person: counted no more."""
    page, base = admin_page, live_server.url
    directory = Integration.objects.get(name="Corporate Directory")
    dorothy = User.objects.get(username="dorothy")
    page.get_by_role("link", name="Corporate Directory").click()
    count = page.get_by_test_id("uncorrelated-accounts")
    expect(count).to_contain_text("uncorrelated account")
    before = int(count.inner_text().split()[0].replace(",", ""))
    assert before == uncorrelated_accounts(directory).count() > 0
    count.click()
    expect(page).to_have_url(f"{base}/accounts/?integration={directory.pk}&correlated=false&removed=false")
    expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
    first = page.locator("table tbody tr td a").first
    identity = first.inner_text()
    first.click()
    expect(page.get_by_test_id("account-holder")).to_contain_text("Not linked")
    page.locator("#id_user").select_option(label=str(dorothy))
    page.get_by_role("button", name="Save who holds it").click()
    expect(page.locator(".toast", has_text=f"{identity} is now held by").first).to_be_visible()
    expect(page.get_by_test_id("account-holder")).to_contain_text("dorothy")
    expect(page.get_by_test_id("link-source")).to_contain_text("Set by hand")
    expect(page.locator("#history")).to_contain_text("account.linked")
    account = Account.objects.get(integration=directory, identity=identity)
    assert (account.user, account.link_source) == (dorothy, "hand")
    shot(page, "account")
    page.get_by_role("link", name="Corporate Directory").first.click()
    expect(page.get_by_test_id("uncorrelated-accounts")).to_contain_text(f"{before - 1:,} uncorrelated")
    page.goto(f"{base}/")
    expect(page.get_by_test_id(f"uncorrelated-{directory.pk}")).to_have_text(f"{before - 1:,}")
