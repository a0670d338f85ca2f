"""The access-request screens: catalogue → request → approve → ticket → access visible."""

import pytest

from governance.models import User
from integrations.models import AccessRequest, Permission
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
    assert access.status == "granted" and Permission.objects.filter(request=access, ended_at=None).exists()

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
    assert client.get(f"/requests/{access.pk}/").status_code == 403
