"""Upgrading in place: a database of the last release (access requests still in ``integrations``), holding the
demo organisation and requests in every state, migrates forward keeping every request, decision, ticket,
permission and link between them, and the history the audit log keeps of each request."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from access import services as ar
from access.models import AccessDecision, AccessRequest, AccessTicket, RequestPermission
from access.selectors import access_request_events
from integrations.models import Permission, Role

pytestmark = pytest.mark.django_db(transaction=True)

# What the last release's database holds, read with SQL so the same query reads it before and after.
TABLES = {
    "requests": "SELECT id, requester_id, beneficiary_id, integration_id, role_id, status, duration, justification,"
    " workflow_id, account_id, created_account, expires_at FROM integrations_accessrequest ORDER BY id",
    "decisions": "SELECT id, request_id, step, approver_id, approved, comment FROM integrations_accessdecision"
    " ORDER BY id",
    "tickets": "SELECT id, request_id, kind, status, assignee_id, reason FROM integrations_accessticket ORDER BY id",
    "prerequisites": "SELECT accessrequest_id, role_id FROM integrations_accessrequest_prerequisite_roles"
    " ORDER BY 1, 2",
    "approvers": "SELECT accessrequest_id, user_id FROM integrations_accessrequest_pending_approvers ORDER BY 1, 2",
    "permissions": "SELECT id, integration_id, account_id, role_id, source, granted_at, expires_at, ended_at"
    " FROM integrations_permission ORDER BY id",
}
LINKS_BEFORE = "SELECT request_id, id FROM integrations_permission WHERE request_id IS NOT NULL ORDER BY 1, 2"
LINKS_AFTER = "SELECT request_id, permission_id FROM access_requestpermission ORDER BY 1, 2"
EVENT_TYPES = (
    "SELECT e.id, e.object_type_id, t.app_label, t.model FROM governance_auditevent e"
    " JOIN django_content_type t ON t.id = e.object_type_id"
    " WHERE t.model IN ('accessrequest', 'accessdecision', 'accessticket') ORDER BY e.id"
)


def _read(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _snapshot() -> dict[str, list[tuple]]:
    return {name: _read(sql) for name, sql in TABLES.items()}


@pytest.fixture
def organisation(settings, tmp_path):
    """The demo organisation with requests granted (a role and its permission), denied, pending with its
    approvers and prerequisites, and waiting for a ticket."""
    settings.VAR_DIR = tmp_path
    settings.CONNECTOR_FILES_DIR = tmp_path / "connector-files"
    settings.DEBUG = True
    call_command("demo", scale=0.05, verbosity=0)
    users = get_user_model().objects
    dorothy, annie, admin = (
        users.get(username="dorothy"),
        users.get(username="annie"),
        users.get(username="admin"),
    )
    roles = list(Role.objects.filter(removed_at=None).order_by("pk")[:6])
    requests = []
    for n, (role, status) in enumerate(
        zip(roles, ["granted", "denied", "pending", "approved", "expired", "granted"], strict=True)
    ):
        request = AccessRequest.objects.create(
            requester=dorothy, beneficiary=dorothy, integration=role.integration, role=role, duration="1d",
            justification=f"upgrade {n}", status=status, steps=[{"mode": "any", "approvers": []}],
            expires_at=timezone.now() if status in ("granted", "expired") else None,
        )  # fmt: skip
        requests.append(request)
        if status in ("granted", "denied", "expired"):
            AccessDecision.objects.create(
                request=request, step=0, approver=annie, approved=status != "denied"
            )
        if status == "pending":
            request.pending_approvers.set([annie, admin])
            request.prerequisite_roles.set(roles[4:6])
        if status == "approved":
            AccessTicket.objects.create(
                request=request, kind="grant", reason="changed by hand", assignee=admin
            )
    # A granted request holds its role's permission, and a permission the sync found is linked to another.
    held = list(Permission.objects.filter(ended_at=None).order_by("pk")[:3])
    assert len(held) == 3, "the demo organisation holds permissions"
    requests[0].permissions.add(held[0], held[1])
    requests[5].permissions.add(held[2])
    AccessTicket.objects.create(
        request=requests[5], kind="revoke", reason="ended", status="done", closed_by=admin
    )
    return requests


def test_the_last_release_database_upgrades_in_place_keeping_every_row(organisation):
    history = {r.pk: [e.pk for e in access_request_events(r)] for r in organisation}
    expected_links = sorted(RequestPermission.objects.values_list("request_id", "permission_id"))
    assert all(history.values()), "every request has a history in the audit log"
    try:
        call_command("migrate", "access", "zero", verbosity=0)  # the database of the last release
        before = _snapshot()
        links = _read(LINKS_BEFORE)
        event_types = _read(EVENT_TYPES)
        assert len(before["requests"]) == 6 and len(before["decisions"]) == 4 and len(before["tickets"]) == 2
        assert len(before["prerequisites"]) == 2 and len(before["approvers"]) == 2
        assert links == expected_links  # the permissions' own column, as the last release kept them
        assert len(links) == 3 and {r for r, _ in links} == {organisation[0].pk, organisation[5].pk}
        assert event_types and {app for _, _, app, _ in event_types} == {"integrations"}

        call_command("migrate", verbosity=0)  # the upgrade
    finally:
        call_command("migrate", verbosity=0)  # whatever happened, the next test gets today's schema

    assert _snapshot() == before  # every row of every table, unchanged
    assert _read(LINKS_AFTER) == links
    # The audit events keep their content types, which now name the access app.
    assert [(e, t) for e, t, _, _ in _read(EVENT_TYPES)] == [(e, t) for e, t, _, _ in event_types]
    assert {app for _, _, app, _ in _read(EVENT_TYPES)} == {"access"}
    # And the portal reads them back: each request with its permissions, decisions, tickets and history.
    for request in organisation:
        request.refresh_from_db()
        assert [e.pk for e in access_request_events(request)] == history[request.pk]
    granted = AccessRequest.objects.get(pk=organisation[0].pk)
    assert sorted(granted.permissions.values_list("pk", flat=True)) == sorted(
        p for r, p in links if r == granted.pk
    )
    assert ar.request_of(Permission.objects.get(pk=links[0][1])).pk == links[0][0]
    assert AccessTicket.objects.filter(request__in=organisation).count() == 2
