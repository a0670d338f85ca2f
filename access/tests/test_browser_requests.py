"""Just-in-time access in a real headless Chromium, granted and revoked in this machine's PostgreSQL.

A requester asks for CONNECT on a database from the catalogue, her manager then the owner approve in
their own browsers, the grant really runs, and she sees the access in "My requests & access"; a
second request is denied and shows so; giving the access up early really revokes it. Also the
admin's approval workflow editor. Screenshots go to docs/screenshots/.
"""

import pytest
from playwright.sync_api import Browser, Page, expect

from access.models import AccessRequest
from access.tests import test_access_requests_pg as pg
from governance.models import User
from integrations.models import ApprovalWorkflow, Role
from integrations.services import integration_update
from integrations.services.workflows import workflow_create
from integrations.tests.test_browser_screens import shot

pg_cluster, cluster = pg.pg_cluster, pg.cluster  # the throwaway PostgreSQL roles and database
can_connect, connect_integration, connect_role = pg.can_connect, pg.connect_integration, pg.connect_role

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "jobs"])


@pytest.fixture
def people(transactional_db, cluster):
    def make(name, **kw):
        return User.objects.create_user(name, email=f"{name}@example.com", password="pw", **kw)

    boss = make("boss", first_name="Bea", last_name="Boss")
    return {
        "admin": User.objects.create_superuser("root", "root@example.com", "pw"),
        "owner": make("owner", first_name="Olga", last_name="Owner"),
        "boss": boss,
        "alice": make(cluster["alice"], first_name="Alice", last_name="Analyst", manager=boss),
    }


def sign_in(browser: Browser, base: str, username: str) -> Page:
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_be_visible()
    return page


def decide(page: Page, base: str, access: AccessRequest, verb: str, comment: str, name: str = "") -> None:
    page.goto(base + "/approvals/")
    row = page.get_by_test_id(f"approval-{access.pk}")
    expect(row).to_contain_text(str(access.role.name))
    if name:
        shot(page, name)
    row.get_by_role("link", name=f"#{access.pk}").click()
    page.get_by_label("Comment").fill(comment)
    page.get_by_role("button", name=verb).click()
    expect(
        page.locator(".toast", has_text="Approved." if verb == "Approve" else "Denied.")
    ).to_be_visible()  # other toasts may still show


def test_request_approve_in_two_steps_access_visible_deny_and_give_up(
    live_server, browser: Browser, cluster, people
):
    base = live_server.url
    two_step = workflow_create(
        actor=people["admin"],
        name="Manager, then owner",
        steps=[
            {"mode": "any", "approvers": [{"kind": "manager"}]},
            {"mode": "all", "approvers": [{"kind": "owner"}]},
        ],
    )
    integration = connect_integration(cluster, people, two_step)
    integration_update(actor=people["admin"], integration=integration, name="Analytics PostgreSQL")
    connect = connect_role(integration, cluster)
    temporary = Role.objects.get(integration=integration, external_id=f"database:{cluster['db']}:TEMPORARY")
    assert not can_connect(cluster["alice"], cluster["db"])

    # Alice finds the database in the catalogue and asks for a day of CONNECT.
    alice = sign_in(browser, base, cluster["alice"])
    alice.get_by_role("link", name="Request access").click()
    alice.get_by_label("Search").fill(cluster["db"])
    alice.get_by_role("button", name="Search").click()
    row = alice.get_by_test_id(f"catalogue-role-{connect.pk}")
    expect(row).to_be_visible()
    shot(alice, "request-catalogue")
    row.get_by_role("link", name="Request").click()
    expect(alice.get_by_test_id("request-workflow")).to_contain_text("Manager, then owner")
    alice.get_by_label("Duration").select_option(label="1 day")
    alice.get_by_label("Justification").fill("Month-end revenue report")
    shot(alice, "request-new")
    alice.get_by_role("button", name="Submit request").click()
    expect(alice.get_by_test_id("request-status")).to_have_text("Waiting for approval")
    access = AccessRequest.objects.get(role=connect)
    # She cannot approve it herself: no decision form on her page.
    expect(alice.get_by_role("button", name="Approve")).to_have_count(0)

    # Her manager approves step 1, the owner step 2 in their own browsers; the grant runs.
    boss = sign_in(browser, base, "boss")
    decide(boss, base, access, "Approve", "Fine for month end", name="approvals")
    expect(boss.get_by_test_id("request-status")).to_have_text("Waiting for approval")
    owner = sign_in(browser, base, "owner")
    decide(owner, base, access, "Approve", "ok")
    expect(owner.get_by_test_id("request-status")).to_have_text("Granted")
    assert can_connect(cluster["alice"], cluster["db"])  # really granted in PostgreSQL

    # Alice sees the access and the request's history.
    alice.goto(base + "/requests/")
    expect(alice.get_by_test_id(f"access-{connect.pk}")).to_contain_text("Granted by the portal")
    shot(alice, "my-access")
    alice.goto(f"{base}/requests/{access.pk}/")
    expect(alice.get_by_test_id("decision")).to_have_count(2)
    expect(alice.get_by_text("Fine for month end")).to_be_visible()
    shot(alice, "request-detail")

    # A second request is denied at step 1: the denial and its reason show on her request.
    alice.goto(f"{base}/request/{temporary.pk}/")
    alice.get_by_label("Duration").select_option(label="1 hour")
    alice.get_by_label("Justification").fill("Scratch tables")
    alice.get_by_role("button", name="Submit request").click()
    expect(alice.get_by_test_id("request-status")).to_have_text("Waiting for approval")  # it is stored
    denied = AccessRequest.objects.get(role=temporary)
    decide(boss, base, denied, "Deny", "Use the staging database")
    alice.goto(f"{base}/requests/{denied.pk}/")
    expect(alice.get_by_test_id("request-status")).to_have_text("Denied")
    expect(alice.get_by_text("Use the staging database")).to_be_visible()
    assert not AccessRequest.objects.get(pk=denied.pk).permissions.exists()

    # Giving the access up early really revokes it.
    alice.goto(f"{base}/requests/{access.pk}/")
    alice.get_by_role("button", name="End access now").click()
    alice.locator("#confirm-ok").click()
    expect(alice.get_by_test_id("request-status")).to_have_text("Revoked")
    assert not can_connect(cluster["alice"], cluster["db"])
    alice.goto(base + "/requests/")
    expect(alice.get_by_test_id(f"access-{connect.pk}")).to_have_count(0)


def test_admin_edits_an_approval_workflow(live_server, browser: Browser, cluster, people):
    from django.contrib.auth.models import Group

    base = live_server.url
    Group.objects.create(name="sre")
    Group.objects.create(name="db-approvers")
    integration = connect_integration(cluster, people, None)
    admin = sign_in(browser, base, "root")
    admin.get_by_role("link", name="Approval workflows").click()
    expect(admin.get_by_role("heading", name="Approval workflows")).to_be_visible()
    admin.get_by_role("link", name="New workflow").click()

    admin.get_by_label("Name").fill("Databases")
    admin.get_by_label("Description").fill("Short access for SRE is automatic; the rest needs two approvals.")
    rule = admin.get_by_test_id("rule-0")
    rule.get_by_label("When the duration is at most").select_option(label="1 hour")
    rule.get_by_label("and the requester is in any of").select_option(label="sre")
    admin.get_by_label("Rule 1 step 1 approver 1", exact=True).select_option(label="Automatic approval")
    # Buttons add rows without saving; what was typed stays.
    admin.get_by_role("button", name="Add rule").click()
    expect(admin.get_by_test_id("rule-1")).to_be_visible()
    expect(admin.get_by_label("Name")).to_have_value("Databases")
    admin.get_by_role("button", name="Add step to rule 2").click()
    expect(admin.get_by_test_id("rule-1-step-1")).to_be_visible()
    admin.get_by_label("Rule 2 step 1 approver 1", exact=True).select_option(label="Requester's manager")
    admin.get_by_label("Rule 2 step 2 needs").select_option(label="all of")
    admin.get_by_label("Rule 2 step 2 approver 1", exact=True).select_option(label="A user")
    user_field = admin.get_by_label("Rule 2 step 2 approver 1 user")
    expect(user_field).to_be_visible()  # shown for a user approver only
    user_field.fill("nobody")
    admin.get_by_test_id("rule-1-step-1").get_by_role("button", name="Add approver").click()
    expect(admin.get_by_label("Rule 2 step 2 approver 2", exact=True)).to_be_visible()
    admin.get_by_label("Rule 2 step 2 approver 2", exact=True).select_option(label="A group")
    admin.get_by_label("Rule 2 step 2 approver 2 group").select_option(label="db-approvers")

    # A bad user name is shown on its row, and nothing is saved.
    admin.get_by_role("button", name="Save workflow").click()
    expect(admin.get_by_text("No active user named 'nobody'.")).to_be_visible()
    assert not ApprovalWorkflow.objects.exists()
    admin.get_by_label("Rule 2 step 2 approver 1 user").fill("owner")
    shot(admin, "workflow-editor")
    admin.get_by_role("button", name="Save workflow").click()
    expect(
        admin.locator(".toast", has_text="Workflow Databases saved.")
    ).to_be_visible()  # other toasts may still show
    workflow = ApprovalWorkflow.objects.get(name="Databases")
    row = admin.get_by_test_id(f"workflow-{workflow.pk}")
    expect(row).to_contain_text("duration at most 1 hour and requester in sre")
    expect(row).to_contain_text(
        "Any of Requester's manager → All of A user: Olga Owner (owner), A group: db-approvers"
    )
    rules = list(workflow.rules.order_by("position"))
    assert [r.steps.count() for r in rules] == [1, 2]

    # Used by an integration: the delete confirmation names it and asks where it goes.
    integration_update(actor=people["admin"], integration=integration, default_workflow=workflow)
    admin.goto(base + "/workflows/")
    shot(admin, "workflows")
    row.get_by_role("link", name="Delete Databases").click()
    expect(admin.get_by_test_id("workflow-usage")).to_contain_text(integration.name)
    admin.get_by_role("button", name="Delete Databases").click()
    expect(admin.get_by_text("choose where what uses it goes")).to_be_visible()
    admin.get_by_label("Move what uses it to").select_option(
        label="No workflow of their own (inherit; integrations get none)"
    )
    admin.get_by_role("button", name="Delete Databases").click()
    expect(
        admin.locator(".toast", has_text="Workflow Databases deleted; 1 object(s) moved.")
    ).to_be_visible()  # other toasts may still show
    assert not ApprovalWorkflow.objects.exists()

    # Not for everyone else.
    alice = sign_in(browser, base, cluster["alice"])
    expect(alice.get_by_role("link", name="Approval workflows")).to_have_count(0)
    assert alice.goto(base + "/workflows/").status == 403
