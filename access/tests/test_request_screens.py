"""The access-request screens: catalogue → request → approve → ticket → access visible."""

import pytest

from access.models import AccessRequest
from governance.models import User
from integrations.models import Permission
from integrations.services import integration_update
from integrations.services.workflows import workflow_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(integration, role, admin_user, django_capture_on_commit_callbacks):
    boss = User.objects.create_user("boss", "boss@example.com", "pw")
    alice = User.objects.create_user("alice", "alice@example.com", "pw", manager=boss)
    workflow = workflow_create(actor=admin_user, name="Manager", steps=[{"approvers": [{"kind": "manager"}]}])
    integration_update(
        actor=admin_user, integration=integration, read_only=True, default_workflow=workflow, owner=admin_user
    )
    return alice, boss


def test_request_approve_and_fulfil_through_the_screens(
    client, setup, role, admin_user, django_capture_on_commit_callbacks
):
    alice, boss = setup
    client.force_login(alice)
    page = client.get("/request/?q=orders")
    assert page.status_code == 200 and f"catalogue-role-{role.pk}" in page.content.decode()
    both = client.get("/request/?q=directory+ORDERS").content.decode()  # each word, anywhere
    assert f"catalogue-role-{role.pk}" in both
    assert f"catalogue-role-{role.pk}" not in client.get("/request/?q=directory+invoices").content.decode()
    bad = client.post(f"/request/{role.pk}/", {"duration": "1d", "justification": ""})
    assert bad.status_code == 200 and "Say why" in bad.content.decode() or "required" in bad.content.decode()
    response = client.post(f"/request/{role.pk}/", {"duration": "1d", "justification": "reporting"})
    access = AccessRequest.objects.get()
    assert response.status_code == 302 and access.status == "pending"
    # Alice cannot approve her own request: no decision form, and a post is refused.
    assert "Approve</button>" not in client.get(f"/requests/{access.pk}/").content.decode()
    client.post(f"/requests/{access.pk}/approve")
    access.refresh_from_db()
    assert access.status == "pending"

    client.force_login(boss)
    assert f"approval-{access.pk}" in client.get("/approvals/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/requests/{access.pk}/approve", {"comment": "fine"})
    access.refresh_from_db()
    assert access.status == "approved" and access.tickets.get().status == "open"

    client.force_login(admin_user)
    ticket = access.tickets.get()
    client.post(f"/tickets/{ticket.pk}/close", {"note": "granted by hand"})
    access.refresh_from_db()
    assert (
        access.status == "granted"
        and Permission.objects.filter(access_requests=access, ended_at=None).exists()
    )

    client.force_login(alice)
    mine = client.get("/requests/").content.decode()
    assert f"access-{role.pk}" in mine and "Granted" in mine
    detail = client.get(f"/requests/{access.pk}/").content.decode()
    assert "fine" in detail and "granted the access" in detail
    history = detail[detail.index('data-testid="request-history"') :]
    assert "filed the request" in history and "approved step 1" in history and "closed a ticket" in history
    # Someone unrelated cannot see it.
    User.objects.create_user("eve", "eve@example.com", "pw")
    client.force_login(User.objects.get(username="eve"))
    assert client.get(f"/requests/{access.pk}/").status_code == 404  # as in the API


def test_requestable_by_default_decides_whether_discovered_resources_appear(
    client, make_integration, admin_user
):
    from integrations.models import Role
    from integrations.sync import sync_integration

    workflow = workflow_create(
        actor=admin_user, name="Automatic", steps=[{"approvers": [{"kind": "automatic"}]}]
    )
    hidden = make_integration(
        name="Hidden by default", requestable_by_default=False, default_workflow=workflow
    )
    shown = make_integration(name="Shown by default", requestable_by_default=True, default_workflow=workflow)
    undecidable = make_integration(name="Nobody decides", requestable_by_default=True)
    for integration in (hidden, shown, undecidable):
        sync_integration(actor=admin_user, integration=integration, full=True)
    assert Role.objects.filter(integration=hidden).exists()
    user = User.objects.create_user("carol", "carol@example.com", "pw")
    client.force_login(user)
    page = client.get("/request/").content.decode()
    assert "Shown by default" in page and "Hidden by default" not in page
    assert "Nobody decides" not in page  # requestable, but without a workflow nobody could decide it
    role = Role.objects.filter(integration=hidden).first()
    response = client.post(f"/request/{role.pk}/", {"duration": "1h", "justification": "x"})
    assert response.status_code == 404  # not requestable, not theirs: its page is not theirs to read
    assert not AccessRequest.objects.exists()


def test_a_duration_not_allowed_is_refused_with_the_allowed_ones(client, setup, role, admin_user):
    from integrations.services import role_update

    role_update(actor=admin_user, role=role, override_allowed_durations=True, allowed_durations=["1h", "1d"])
    alice, _ = setup
    client.force_login(alice)
    page = client.get(f"/request/{role.pk}/").content.decode()
    assert '<option value="1h"' in page and '<option value="1w"' not in page
    response = client.post(f"/request/{role.pk}/", {"duration": "1w", "justification": "x"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not AccessRequest.objects.exists()


def test_cancel_a_pending_request_from_its_page(client, setup, role):
    alice, boss = setup
    client.force_login(alice)
    client.post(f"/request/{role.pk}/", {"duration": "1d", "justification": "reporting"})
    access = AccessRequest.objects.get()
    assert "Cancel request" in client.get(f"/requests/{access.pk}/").content.decode()
    client.force_login(boss)  # the approver cannot cancel it
    client.post(f"/requests/{access.pk}/cancel")
    access.refresh_from_db()
    assert access.status == "pending"
    client.force_login(alice)
    response = client.post(f"/requests/{access.pk}/cancel", follow=True)
    access.refresh_from_db()
    assert access.status == "cancelled" and "Cancelled." in response.content.decode()
    assert not access.pending_approvers.exists()
    assert f"approval-{access.pk}" not in client.get("/approvals/").content.decode()


def test_the_request_form_reads_its_workflow_in_queries_that_do_not_grow_with_it(
    client, integration, role, admin_user
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    people = [User.objects.create_user(f"approver{n}", f"a{n}@example.com", "pw") for n in range(4)]
    step = {"approvers": [{"kind": "user", "user": p} for p in people[:2]]}

    def queries(rules: int) -> int:
        workflow = workflow_create(
            actor=admin_user,
            name=f"{rules} rules",
            rules=[{"max_duration": "1w", "steps": [step, step]}] * rules,
        )
        integration_update(actor=admin_user, integration=integration, default_workflow=workflow)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/request/{role.pk}/").status_code == 200
        return len(captured)

    client.force_login(User.objects.create_user("dana", "dana@example.com", "pw"))
    assert queries(1) == queries(4)
