"""What a maintainer and an integration's owner see in Chromium: no delete button, workflows they may not
change shown read-only, and a prerequisite picker that offers only the roles of the same integration."""

import pytest
from playwright.sync_api import Page, expect

from governance.models import User
from integrations import services
from integrations.models import Resource, Role

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "jobs"])


@pytest.fixture
def world(make_integration):
    owner = User.objects.create_user("owner", "owner@example.com", "pw")
    maintainer = User.objects.create_user("maint", "maint@example.com", "pw")
    mine = make_integration(name="Mine", owner=owner)
    theirs = make_integration(name="Theirs")
    services.maintainer_add(actor=None, integration=mine, user=maintainer)
    roles = {}
    for integ, key in ((mine, "mine"), (theirs, "theirs")):
        res = Resource.objects.create(integration=integ, external_id=f"{key}-db", name=f"{key} orders")
        roles[f"{key}_role"] = Role.objects.create(
            resource=res, external_id=f"{key}-read", name=f"{key} reader"
        )
        roles[f"{key}_res"] = res
    return {"mine": mine, "theirs": theirs, "owner": owner, "maintainer": maintainer, **roles}


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_be_visible()


def test_a_maintainer_sees_no_delete_and_no_workflow_change(live_server, page: Page, world):
    base = live_server.url
    sign_in(page, base, "maint")
    page.goto(f"{base}/integrations/{world['mine'].pk}/")
    expect(page.get_by_role("button", name="Sync now")).to_be_visible()
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
    expect(page.get_by_text("Only admins, and the owner of the integration")).to_have_count(1)
    expect(page.locator(f'form[action="/integrations/{world["mine"].pk}/workflow"]')).to_have_count(0)
    expect(page.locator("#id_owner")).to_be_disabled()
    # Saving the settings (the owner shown read-only, not posted) keeps the owner.
    page.locator('a[href="#settings-form"]').click()
    page.locator("#id_name").fill("Mine renamed")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings of Mine renamed saved.")).to_be_visible()
    world["mine"].refresh_from_db()
    assert world["mine"].name == "Mine renamed" and world["mine"].owner == world["owner"]

    # The prerequisite picker of a role offers the roles of its own integration only.
    page.goto(f"{base}/roles/{world['mine_role'].pk}/")
    search = page.locator("#prereq-search-role")
    search.fill("reader")
    options = page.locator("#prereq-options-role option")
    expect(options).to_contain_text(["mine reader"])
    expect(page.locator("#prereq-options-role")).not_to_contain_text("theirs reader")


def test_the_integration_owner_changes_the_workflow_of_its_resources(live_server, page: Page, world):
    base = live_server.url
    sign_in(page, base, "owner")
    page.goto(f"{base}/integrations/{world['mine'].pk}/")
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
    page.goto(f"{base}/resources/{world['mine_res'].pk}/")
    expect(page.locator(f'form[action="/resources/{world["mine_res"].pk}/workflow"]')).to_have_count(1)
    expect(page.locator("#id_owner")).to_be_enabled()
