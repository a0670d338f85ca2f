"""Bad input and other people's things in a real headless Chromium: a malformed page size shows the table's
default page, a NUL in a search the 400 page, a request action posted with ``next`` pointing at another site
comes back to the request, and a request or a role to request that is not the user's is a 404 page."""

import pytest
from playwright.sync_api import Browser, expect

from access import services as ar
from access.tests.test_browser_requests import sign_in
from governance.models import User
from integrations import services
from integrations.models import Resource, Role
from integrations.services.workflows import workflow_create

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "jobs"])


def test_bad_input_and_other_peoples_requests_in_the_browser(live_server, browser: Browser, make_integration):
    base = live_server.url
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    alice = User.objects.create_user("alice", password="pw")
    User.objects.create_user("bob", password="pw")
    workflow = workflow_create(
        actor=admin, name="Root", steps=[{"approvers": [{"kind": "user", "user": admin}]}]
    )
    integration = make_integration(name="Directory", default_workflow=workflow)
    resource = Resource.objects.create(integration=integration, external_id="db", name="orders")
    roles = [
        Role.objects.create(resource=resource, external_id=f"db-{i}", name=f"role-{i:02}") for i in range(30)
    ]
    hidden = roles[1]
    Role.objects.filter(pk=hidden.pk).update(requestable=False, description="Secret plans")
    access = ar.access_request_create(actor=alice, role=roles[0], duration="1d", justification="reports")
    services.integration_update(actor=admin, integration=integration)

    page = sign_in(browser, base, "root")
    for size in ("-1", "0", "abc", "1000000"):
        page.goto(f"{base}/roles/?per_page={size}")
        expect(page.locator("table tbody tr")).to_have_count(25)  # the default page, not all, not a 500
    page.goto(f"{base}/roles/?per_page=5")
    expect(page.locator("table tbody tr")).to_have_count(5)
    page.goto(f"{base}/request/?q=a%00b")
    expect(page.get_by_text("The portal could not use what was sent")).to_be_visible()
    expect(page.get_by_text("contains a NUL character")).to_be_visible()

    # A deny posted with next pointing at another site comes back to the request, with its toast.
    page.goto(f"{base}/requests/{access.pk}/")
    page.evaluate(
        """() => { const form = document.querySelector('textarea[name=comment]').form;
                   const next = document.createElement('input');
                   next.type = 'hidden'; next.name = 'next'; next.value = 'https://evil.example/';
                   form.appendChild(next); }"""
    )
    page.get_by_label("Comment").fill("no")
    page.get_by_role("button", name="Deny").click()
    expect(page.locator(".toast", has_text="Denied.")).to_be_visible()
    assert page.url == f"{base}/requests/{access.pk}/"

    # Bob may not see alice's request, nor the page of a role he cannot request.
    bob = sign_in(browser, base, "bob")
    for url in (f"/requests/{access.pk}/", f"/request/{hidden.pk}/"):
        response = bob.goto(base + url)
        assert response.status == 404, url
        expect(bob.get_by_text("This page does not exist")).to_be_visible()
        expect(bob.get_by_text("Secret plans")).to_have_count(0)
    bob.goto(f"{base}/request/{roles[2].pk}/")  # a requestable one: the request form
    expect(bob.get_by_label("Justification")).to_be_visible()
