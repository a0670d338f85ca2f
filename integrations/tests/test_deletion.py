"""Deleting an integration: a job with progress, set-based in batches, one summary audit event."""

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from access.models import AccessDecision, AccessRequest, AccessTicket, RequestPermission
from governance.models import AuditEvent, Job
from integrations import cascade, services
from integrations.models import (
    Account,
    Integration,
    Maintainer,
    Permission,
    PrerequisitePermission,
    Resource,
    Role,
    RoleImplication,
)
from integrations.services import deletion
from integrations.sync import sync_start

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "jobs"])


def inventory(integration, key: str):
    resource = Resource.objects.create(integration=integration, external_id=f"{key}-db", name=f"{key} db")
    resource.tags.set(services.tags_for(["pii"]))
    read = Role.objects.create(resource=resource, external_id=f"{key}-read", name="read")
    write = Role.objects.create(resource=resource, external_id=f"{key}-write", name="write")
    write.tags.set(services.tags_for(["sensitive"]))
    RoleImplication.objects.create(role=write, implied_role=read)
    account = Account.objects.create(
        integration=integration, external_id=f"{key}-a", identity=f"{key} account"
    )
    Permission.objects.create(account=account, role=read)
    Permission.objects.create(account=account, role=write)
    return resource, read, write, account


@pytest.fixture
def doomed(make_integration, django_user_model, admin_user):
    """An integration with everything that refers to it, and another that refers to it too."""
    bob = django_user_model.objects.create(username="bob")
    doomed, kept = make_integration(name="Doomed"), make_integration(name="Kept")
    resource, read, write, account = inventory(doomed, "d")
    _, kept_read, _, kept_account = inventory(kept, "k")
    services.maintainer_add(
        actor=admin_user, integration=doomed, user=bob
    )  # Maintainer.__str__ read it: a 500
    services.maintainer_add(actor=admin_user, resource=resource, group=Group.objects.create(name="dbas"))
    prerequisite = PrerequisitePermission.objects.create(integration=doomed)
    prerequisite.alternatives.set([write])
    request = AccessRequest.objects.create(
        requester=bob, beneficiary=bob, integration=doomed, role=read, duration="1h", justification="work",
        account=account,
    )  # fmt: skip
    request.prerequisite_roles.set([write])
    request.pending_approvers.set([admin_user])
    AccessDecision.objects.create(request=request, step=0, approver=admin_user, approved=True)
    AccessTicket.objects.create(request=request, kind="grant", reason="read-only")
    # Kept refers to Doomed: a prerequisite alternative and a permission granted for Doomed's request.
    cross = PrerequisitePermission.objects.create(role=kept_read)
    cross.alternatives.set([read, kept_read])
    RequestPermission.objects.create(
        request=request, permission=Permission.objects.get(account=kept_account, role=kept_read)
    )
    return doomed, kept, cross


def test_deleting_runs_as_a_job_in_batches_and_writes_one_summary(doomed, admin_user, monkeypatch):
    doomed, kept, cross = doomed
    monkeypatch.setattr(cascade, "BATCH_SIZE", 1)  # every row its own batch
    before = AuditEvent.objects.count()
    job = services.integration_delete_start(actor=admin_user, integration=doomed)  # in-process: no broker
    job.refresh_from_db()
    assert job.kind == "delete" and job.status == Job.Status.SUCCEEDED, job.error
    assert not Integration.objects.filter(pk=doomed.pk).exists()
    for model in (Resource, Role, Account, Permission, AccessRequest, PrerequisitePermission):
        assert not model.objects.filter(integration_id=doomed.pk).exists(), model
    assert not Maintainer.objects.exists()
    assert not RoleImplication.objects.filter(role__integration=doomed).exists()
    assert not AccessDecision.objects.exists() and not AccessTicket.objects.exists()
    # What refers to it from elsewhere is cleared, the rest of Kept is untouched.
    assert [r.name for r in cross.alternatives.all()] == [
        "read"
    ] and cross.alternatives.get().integration == kept
    assert Permission.objects.filter(integration=kept).count() == 2
    assert not Permission.objects.filter(integration=kept, access_requests__isnull=False).exists()
    assert RoleImplication.objects.filter(role__integration=kept).count() == 1

    events = AuditEvent.objects.order_by("id")[before:]
    deletes = [e for e in events if e.action.endswith(".delete")]
    assert [e.action for e in deletes] == ["integration.delete"]  # one summary, not one per row
    counts = deletes[0].details["counts"]
    assert counts["integrations.Permission"] == 2 and counts["integrations.Role"] == 2
    assert counts["integrations.Maintainer"] == 2 and counts["integrations.Integration"] == 1
    assert counts["access.RequestPermission"] == 1
    assert deletes[0].details["total"] == sum(counts.values()) and deletes[0].actor_id == admin_user.pk
    assert job.done == job.total == deletes[0].details["total"]
    assert job.counts["Permissions"] == 2 and job.counts["Links of permissions to their requests"] == 1


def test_only_admins_start_a_deletion_whoever_calls_the_service(doomed, django_user_model):
    from django.core.exceptions import PermissionDenied

    doomed, _, _ = doomed
    owner = django_user_model.objects.create(username="owner")
    Integration.objects.filter(pk=doomed.pk).update(owner=owner)
    doomed.refresh_from_db()
    with pytest.raises(PermissionDenied):
        services.integration_delete_start(actor=owner, integration=doomed)
    assert not Job.objects.filter(kind="delete").exists()


def test_a_cancelled_deletion_stops_between_batches_and_deleting_again_finishes(
    doomed, admin_user, monkeypatch
):
    from governance.jobs import job_start

    doomed, _, _ = doomed
    monkeypatch.setattr(cascade, "BATCH_SIZE", 1)
    job = job_start(actor=admin_user, kind="delete", integration_id=doomed.pk, subject=doomed)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)  # asked to stop before its first batch ends
    job = deletion.integration_delete_run(job_id=job.pk)
    assert job.status == Job.Status.CANCELLED and "delete it again to finish" in job.log[-1]["message"], (
        job.error
    )
    doomed.refresh_from_db()
    assert doomed.deletion_started_at is not None  # marked: nothing syncs into it
    assert Resource.objects.filter(integration_id=doomed.pk).exists()  # stopped after one row
    event = AuditEvent.objects.get(action="integration.delete", object_id=str(doomed.pk))
    assert (
        event.status == "error"
        and event.details["cancelled"] is True
        and sum(event.details["counts"].values()) == 1
    )
    job = services.integration_delete_start(actor=admin_user, integration=doomed)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and not Integration.objects.filter(pk=doomed.pk).exists()


def test_an_integration_being_deleted_is_held_by_no_sync_and_deleting_again_finishes(
    doomed, admin_user, client
):
    doomed, kept, _ = doomed
    # A deletion that stopped half-way (its worker lost): the integration stays marked.
    Integration.objects.filter(pk=doomed.pk).update(deletion_started_at="2026-01-01T00:00:00Z")
    client.force_login(admin_user)
    page = client.get(f"/integrations/{doomed.pk}/").content.decode()
    assert "Being deleted since 2026-01-01" in page and "Delete it again to finish" in page
    assert not Integration.objects.hold(doomed.pk) and Integration.objects.hold(kept.pk)
    job = sync_start(actor=None, integration=doomed)
    assert job.status == Job.Status.FAILED and job.error == "The integration was deleted."
    counts = services.integration_delete(actor=admin_user, integration=doomed)
    assert counts["integrations.Integration"] == 1 and not Integration.objects.filter(pk=doomed.pk).exists()


def test_a_second_deletion_while_one_runs_is_skipped(doomed, admin_user):
    doomed, _, _ = doomed
    first = Job.objects.create(
        kind="delete", integration_id=doomed.pk, status=Job.Status.RUNNING, task_id="x"
    )
    Job.objects.filter(pk=first.pk).update(heartbeat_at=timezone.now())
    job = services.integration_delete_start(actor=admin_user, integration=doomed)
    assert job.status == Job.Status.SKIPPED and Integration.objects.filter(pk=doomed.pk).exists()


def test_the_django_admin_and_the_orm_delete_the_same_way(doomed, admin_user, client):
    doomed, kept, _ = doomed
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    url = f"/admin/integrations/integration/{doomed.pk}/delete/"
    confirm = client.get(url).content.decode()
    assert "Rows of their inventory (deleted by a background job)" in confirm
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert Job.objects.get(kind="delete", integration_id=doomed.pk).status == Job.Status.SUCCEEDED
    assert not Integration.objects.filter(pk=doomed.pk).exists()
    total, counts = Integration.objects.filter(pk=kept.pk).delete()  # the ORM: no cascade of signals
    assert counts["integrations.Integration"] == 1 and total == sum(counts.values())
    assert AuditEvent.objects.filter(action="integration.delete").count() == 2
    assert not AuditEvent.objects.filter(action__in=["maintainer.delete", "permission.delete"]).exists()
