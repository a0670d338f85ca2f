"""Set-based change sets (what bulk actions and rules apply): one UPDATE per batch, one audit event per object
that changed, naming only what changed on it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.models import AuditEvent
from integrations.models import Resource, Role
from integrations.services.bulk import bulk_apply

pytestmark = pytest.mark.django_db


@pytest.fixture
def roles(resource, workflow):
    same = Role.objects.create(
        resource=resource, external_id="a", name="a", workflow=workflow, requestable=False
    )
    half = Role.objects.create(resource=resource, external_id="b", name="b", workflow=workflow)
    other = Role.objects.create(resource=resource, external_id="c", name="c")
    return same, half, other


def test_only_what_differs_is_audited_per_object(roles, workflow, admin_user):
    same, half, other = roles
    changed = bulk_apply(
        actor=admin_user,
        target="roles",
        ids=[r.pk for r in roles],
        changes={"workflow": workflow.pk, "requestable": False},
    )
    assert changed == 2
    assert Role.objects.filter(workflow=workflow, requestable=False).count() == 3
    events = {e.object_id: e for e in AuditEvent.objects.filter(action="role.update", details__via="bulk")}
    assert set(events) == {str(half.pk), str(other.pk)}
    assert events[str(half.pk)].details["changes"] == {"requestable": {"from": True, "to": False}}
    assert events[str(other.pk)].details["changes"] == {
        "workflow_id": {"from": None, "to": workflow.pk},
        "requestable": {"from": True, "to": False},
    }
    event = events[str(other.pk)]
    assert event.actor_id == admin_user.pk and event.actor_repr == admin_user.username
    assert event.object_repr == f"{other.resource.name} · c" and event.integration_id == other.integration_id
    assert event.correlation_id == events[str(half.pk)].correlation_id != ""
    # The untouched role kept its updated_at: it was not rewritten.
    assert Role.objects.get(pk=same.pk).updated_at == same.updated_at


def test_one_update_statement_per_batch_for_all_scalar_changes(resource, workflow, admin_user):
    Role.objects.bulk_create(
        Role(resource=resource, integration=resource.integration, external_id=f"r{i}", name=f"r{i}")
        for i in range(30)
    )
    ids = list(Role.objects.values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as ctx:
        changed = bulk_apply(
            actor=admin_user,
            target="roles",
            ids=ids,
            changes={"workflow": workflow.pk, "requestable": False, "allowed_durations": ["1h", "1d"]},
        )
    assert changed == 30
    updates = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('UPDATE "integrations_role"')]
    assert len(updates) == 1, updates
    role = Role.objects.get(pk=ids[0])
    assert role.override_allowed_durations and role.allowed_durations == ["1h", "1d"]
    event = AuditEvent.objects.get(action="role.update", object_id=str(ids[0]))
    assert event.details["changes"]["allowed_durations"] == {"from": None, "to": ["1h", "1d"]}


def test_tags_only_change_writes_no_update_and_audits_the_added_tags(resource, admin_user):
    other = Resource.objects.create(integration=resource.integration, external_id="db-2", name="billing")
    with CaptureQueriesContext(connection) as ctx:
        changed = bulk_apply(
            actor=admin_user, target="resources", ids=[resource.pk, other.pk], changes={"tags": ["pii"]}
        )
    assert changed == 2
    assert not [q for q in ctx.captured_queries if q["sql"].startswith('UPDATE "integrations_resource"')]
    assert set(Resource.objects.filter(tags__name="pii").values_list("pk", flat=True)) == {
        resource.pk,
        other.pk,
    }
    event = AuditEvent.objects.get(action="resource.update", object_id=str(other.pk))
    assert event.details["changes"] == {"tags": {"added": ["pii"]}}
    assert bulk_apply(actor=admin_user, target="resources", ids=[resource.pk], changes={"tags": ["pii"]}) == 0
