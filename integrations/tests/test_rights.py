"""Least privilege for owners and maintainers: deleting integrations, prerequisites, owners and
workflows (separation of duties), on the screens, the API, /v3/sources, bulk actions and rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from access import services as ar
from access.models import AccessRequest
from governance.models import AuditEvent, User
from integrations import services
from integrations.models import ApprovalWorkflow, Integration, PrerequisitePermission, Resource, Role, Rule
from integrations.rights import can_change_policy, self_interested
from integrations.services.bulk import bulk_apply
from integrations.services.prerequisites import prerequisite_add
from integrations.services.rules import rule_create
from integrations.services.workflows import workflow_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    make = User.objects.create_user
    return {
        "admin": User.objects.create_superuser("root", "root@example.com", "pw"),
        "owner": make("owner", "owner@example.com", "pw"),
        "maintainer": make("maint", "maint@example.com", "pw"),
        "res_owner": make("res_owner", "res_owner@example.com", "pw"),
        "member": make("member", "member@example.com", "pw"),
    }


@pytest.fixture
def world(people, make_integration):
    """ "Mine" (owned by owner, maintained by maintainer, its resource owned by res_owner) and "Theirs"."""
    auto = workflow_create(
        actor=people["admin"], name="Automatic", steps=[{"approvers": [{"kind": "automatic"}]}]
    )
    mine = make_integration(name="Mine", owner=people["owner"], read_only=True, default_workflow=auto)
    theirs = make_integration(name="Theirs", read_only=True, default_workflow=auto)
    services.maintainer_add(actor=None, integration=mine, user=people["maintainer"])
    objs = {"mine": mine, "theirs": theirs, "auto": auto}
    for key, integ in (("mine", mine), ("theirs", theirs)):
        res = Resource.objects.create(
            integration=integ,
            external_id=f"{key}-db",
            name=f"{key} db",
            owner=people["res_owner"] if key == "mine" else None,
        )
        objs[f"{key}_resource"] = res
        objs[f"{key}_role"] = Role.objects.create(resource=res, external_id=f"{key}-read", name="read")
        objs[f"{key}_admin"] = Role.objects.create(resource=res, external_id=f"{key}-admin", name="admin")
    return objs


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# -- deleting an integration: admins only, on both surfaces -------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "maintainer"])
def test_owners_and_maintainers_cannot_delete_an_integration(people, world, who):
    mine = world["mine"]
    screen = browser(people[who])
    page = screen.get(f"/integrations/{mine.pk}/")
    assert page.status_code == 200 and f"/integrations/{mine.pk}/delete" not in page.content.decode()
    assert screen.get(f"/integrations/{mine.pk}/delete").status_code == 403
    assert screen.post(f"/integrations/{mine.pk}/delete", {"confirm": mine.name}).status_code == 403
    assert api(people[who]).delete(f"/api/integrations/{mine.pk}/").status_code == 403
    assert Integration.objects.filter(pk=mine.pk).exists()


def test_an_admin_deletes_an_integration(people, world):
    """The admin may: the API starts the deletion job (test_deletion.py runs such jobs)."""
    from governance.models import Job

    mine = world["mine"]
    page = browser(people["admin"]).get(f"/integrations/{mine.pk}/")
    assert f"/integrations/{mine.pk}/delete" in page.content.decode()
    assert api(people["admin"]).delete(f"/api/integrations/{mine.pk}/").status_code == 202
    assert Job.objects.filter(kind="delete", integration_id=mine.pk).exists()


# -- prerequisites: roles the actor manages, of the same integration ----------------------------------------


def test_the_prerequisite_picker_offers_only_roles_of_the_integration_the_user_manages(people, world):
    screen = browser(people["maintainer"])
    options = screen.get(f"/roles/options?integration={world['mine'].pk}").content.decode()
    assert f'value="{world["mine_admin"].pk}"' in options
    assert f'value="{world["theirs_admin"].pk}"' not in options
    # Even an admin's picker for a role of Mine lists only Mine's roles.
    options = browser(people["admin"]).get(f"/roles/options?integration={world['mine'].pk}").content.decode()
    assert f'value="{world["theirs_admin"].pk}"' not in options
    page = screen.get(f"/roles/{world['mine_role'].pk}/").content.decode()
    assert f"/roles/options?integration={world['mine'].pk}" in page


@pytest.mark.parametrize("who", ["maintainer", "admin"])
def test_a_role_of_another_integration_cannot_be_a_prerequisite(people, world, who):
    screen = browser(people[who])
    target = world["mine_role"]
    response = screen.post(
        f"/prerequisites/role/{target.pk}/add", {"alternatives": [world["theirs_admin"].pk]}
    )
    assert response.status_code == 302
    assert not PrerequisitePermission.objects.exists()
    with pytest.raises(ValidationError, match="another integration"):
        prerequisite_add(actor=people[who], alternatives=[world["theirs_admin"]], role=target)
    # A role of the same integration is fine.
    screen.post(f"/prerequisites/role/{target.pk}/add", {"alternatives": [world["mine_admin"].pk]})
    assert list(PrerequisitePermission.objects.get().alternatives.all()) == [world["mine_admin"]]


def test_a_resource_owner_cannot_choose_roles_they_do_not_manage(people, world):
    other = Resource.objects.create(integration=world["mine"], external_id="other", name="other")
    other_role = Role.objects.create(resource=other, external_id="other-admin", name="admin")
    with pytest.raises(ValidationError, match="roles you manage"):
        prerequisite_add(actor=people["res_owner"], alternatives=[other_role], role=world["mine_role"])
    browser(people["res_owner"]).post(
        f"/prerequisites/role/{world['mine_role'].pk}/add", {"alternatives": [other_role.pk]}
    )
    assert not PrerequisitePermission.objects.exists()


def test_a_cross_integration_prerequisite_made_earlier_is_neither_requested_nor_granted(people, world):
    role = world["mine_role"]
    role.requestable = True
    role.save()
    Resource.objects.filter(pk=role.resource_id).update(requestable=True)
    Integration.objects.filter(pk=world["mine"].pk).update(requestable=True)
    legacy = PrerequisitePermission.objects.create(role=role)
    legacy.alternatives.set([world["theirs_admin"]])
    with pytest.raises(ValidationError, match="another integration"):
        ar.access_request_create(actor=people["member"], role=role, duration="1d", justification="x")
    assert not AccessRequest.objects.exists()
    # A request filed before the rule existed is not granted through Mine's connector.
    request = AccessRequest.objects.create(
        requester=people["member"],
        beneficiary=people["member"],
        integration=world["mine"],
        role=role,
        duration="1d",
        justification="x",
        status=AccessRequest.Status.APPROVED,
        steps=[],
    )
    request.prerequisite_roles.set([world["theirs_admin"]])
    Integration.objects.filter(pk=world["mine"].pk).update(
        read_only=False, allow_changing_account_permissions=True, allow_creating_accounts=True
    )
    done = ar.access_request_grant(request_id=request.pk)
    assert done.status == AccessRequest.Status.FAILED and "another integration" in done.error
    assert not done.account_id


# -- who changes owners and workflows ------------------------------------------------------------------------


def test_the_policy_rule(people, world):
    mine, res, role = world["mine"], world["mine_resource"], world["mine_role"]
    assert can_change_policy(people["admin"], mine)
    assert not can_change_policy(people["owner"], mine)  # not the integration itself
    assert can_change_policy(people["owner"], res) and can_change_policy(people["owner"], role)
    for who in ("maintainer", "res_owner", "member"):
        assert not any(can_change_policy(people[who], obj) for obj in (mine, res, role)), who
    assert not can_change_policy(people["owner"], world["theirs_resource"])


@pytest.mark.parametrize("who", ["owner", "maintainer"])
def test_the_integration_owner_and_workflow_are_for_admins(people, world, who):
    mine, user = world["mine"], people[who]
    other = workflow_create(actor=people["admin"], name="Other", steps=[{"approvers": [{"kind": "owner"}]}])
    screen = browser(user)
    taker = people["member"] if who == "owner" else user  # away from the owner, or to themselves
    settings = {"name": mine.name, "owner": taker.pk, "read_only": "on"}
    screen.post(f"/integrations/{mine.pk}/settings", settings)  # the owner field is read-only: ignored
    assert screen.post(f"/integrations/{mine.pk}/workflow", {"workflow": other.pk}).status_code == 403
    client = api(user)
    assert (
        client.patch(f"/api/integrations/{mine.pk}/", {"owner": taker.pk}, format="json").status_code == 403
    )
    response = client.patch(f"/api/integrations/{mine.pk}/", {"default_workflow": other.pk}, format="json")
    assert response.status_code == 403
    patch = [{"op": "replace", "path": "/owner", "value": {"type": "IDENTITY", "id": str(taker.pk)}}]
    for url in (f"/v3/sources/{mine.pk}", f"/api/v3/sources/{mine.pk}"):
        response = client.patch(url, patch, content_type="application/json-patch+json")
        assert response.status_code == 403, response.content
    mine.refresh_from_db()
    assert mine.owner == people["owner"] and mine.default_workflow == world["auto"]
    assert not mine.auto_assign_recommended_owners
    # Nor may they let the syncs set owners from the application's recommendations.
    flags = {"name": mine.name, "owner": people["owner"].pk, "read_only": "on"}
    auto = {**flags, "auto_assign_recommended_owners": "on"}
    screen.post(f"/integrations/{mine.pk}/settings", auto)
    assert (
        client.patch(
            f"/api/integrations/{mine.pk}/", {"auto_assign_recommended_owners": True}, format="json"
        ).status_code
        == 403
    )
    # Other settings are still theirs to change (a browser posts no disabled owner field).
    same = {"name": "Mine renamed", "read_only": "on"}
    assert screen.post(f"/integrations/{mine.pk}/settings", same).status_code == 302
    mine.refresh_from_db()
    assert mine.name == "Mine renamed" and mine.owner == people["owner"]


def test_an_admin_sets_the_integration_owner_everywhere(people, world):
    mine = world["mine"]
    client = api(people["admin"])
    patch = [
        {"op": "replace", "path": "/owner", "value": {"type": "IDENTITY", "id": str(people["member"].pk)}}
    ]
    response = client.patch(f"/v3/sources/{mine.pk}", patch, content_type="application/json-patch+json")
    assert response.status_code == 200
    mine.refresh_from_db()
    assert mine.owner == people["member"]


def test_resource_policy_is_the_integration_owners_not_the_resource_owners(people, world):
    res, role = world["mine_resource"], world["mine_role"]
    other = workflow_create(actor=people["admin"], name="Other", steps=[{"approvers": [{"kind": "owner"}]}])
    for who in ("res_owner", "maintainer"):
        screen = browser(people[who])
        assert screen.post(f"/resources/{res.pk}/workflow", {"workflow": other.pk}).status_code == 403
        assert screen.post(f"/roles/{role.pk}/workflow", {"workflow": other.pk}).status_code == 403
        taker = people["member"] if who == "res_owner" else people[who]
        settings = {"name": res.name, "owner": taker.pk}
        screen.post(f"/resources/{res.pk}/settings", settings)  # read-only for them: ignored
        client = api(people[who])
        assert (
            client.patch(f"/api/resources/{res.pk}/", {"workflow": other.pk}, format="json").status_code
            == 403
        )
        assert (
            client.patch(f"/api/roles/{role.pk}/", {"workflow": other.pk}, format="json").status_code == 403
        )
    res.refresh_from_db()
    role.refresh_from_db()
    assert res.workflow is None and res.owner == people["res_owner"] and role.workflow is None
    # The integration's owner may.
    owner = browser(people["owner"])
    assert owner.post(f"/resources/{res.pk}/workflow", {"workflow": other.pk}).status_code == 302
    assert (
        api(people["owner"])
        .patch(f"/api/roles/{role.pk}/", {"workflow": other.pk}, format="json")
        .status_code
        == 200
    )
    res.refresh_from_db()
    role.refresh_from_db()
    assert res.workflow == other and role.workflow == other
    # The page shows no workflow form to who may not use it.
    page = browser(people["res_owner"]).get(f"/resources/{res.pk}/").content.decode()
    assert f'action="/resources/{res.pk}/workflow"' not in page


def test_bulk_actions_and_rules_follow_the_policy_rule(people, world):
    res = world["mine_resource"]
    for who in ("maintainer", "res_owner"):
        with pytest.raises(PermissionDenied):
            bulk_apply(actor=people[who], target="resources", ids=[res.pk], changes={"workflow": None})
        with pytest.raises(PermissionDenied):
            bulk_apply(actor=people[who], target="resources", ids=[res.pk], changes={"owner": people[who].pk})
    # Through the screen: refused with a message, nothing changed.
    screen = browser(people["maintainer"])
    response = screen.post(
        "/bulk/apply",
        {
            "target": "resources",
            "scope": "selected",
            "ids": [res.pk],
            "changes": f'{{"owner": {people["maintainer"].pk}}}',
        },
    )
    assert response.status_code == 302
    res.refresh_from_db()
    assert res.owner == people["res_owner"]
    # Tags stay theirs; the integration's owner sets a workflow on its resources, not on another's.
    assert (
        bulk_apply(actor=people["maintainer"], target="resources", ids=[res.pk], changes={"tags": ["x"]}) == 1
    )
    assert (
        bulk_apply(actor=people["owner"], target="resources", ids=[res.pk], changes={"workflow": None}) == 0
    )
    with pytest.raises(PermissionDenied):
        bulk_apply(
            actor=people["owner"],
            target="resources",
            ids=[res.pk, world["theirs_resource"].pk],
            changes={"owner": people["owner"].pk},
        )
    with pytest.raises(PermissionDenied):
        rule_create(
            actor=people["owner"], name="Mine", target="resources", actions={"owner": people["owner"].pk}
        )
    assert not Rule.objects.exists()
    rule_create(actor=people["admin"], name="Mine", target="resources", actions={"owner": people["owner"].pk})


# -- separation of duties when approving ----------------------------------------------------------------------


def _requestable(world):
    Integration.objects.filter(pk=world["mine"].pk).update(requestable=True)
    Resource.objects.filter(pk=world["mine_resource"].pk).update(requestable=True)
    return Role.objects.get(pk=world["mine_admin"].pk)


def test_automatic_approval_stays_automatic_for_someone_uninvolved(people, world):
    role = _requestable(world)
    request = ar.access_request_create(actor=people["member"], role=role, duration="1d", justification="x")
    assert request.status == AccessRequest.Status.APPROVED  # nobody involved: automatic stays automatic


@pytest.mark.parametrize("who", ["res_owner", "maintainer"])
def test_an_owner_or_maintainer_of_the_object_needs_the_integration_owner(people, world, who):
    role = _requestable(world)
    request = ar.access_request_create(actor=people[who], role=role, duration="1d", justification="mine")
    assert request.status == AccessRequest.Status.PENDING
    entry = request.steps[0]["approvers"][0]
    assert not entry["automatic"] and entry["users"] == [people["owner"].pk]
    assert "Integration owner" in entry["label"]
    with pytest.raises(PermissionDenied):
        ar.access_request_approve(actor=people[who], request=request)
    ar.access_request_approve(actor=people["owner"], request=request)
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.APPROVED


def test_the_integration_owner_needs_an_admin(people, world):
    role = _requestable(world)
    request = ar.access_request_create(actor=people["owner"], role=role, duration="1d", justification="me")
    assert request.status == AccessRequest.Status.PENDING
    users = request.steps[0]["approvers"][0]["users"]
    assert people["admin"].pk in users and people["owner"].pk not in users
    # Filed for them by someone else, the beneficiary is who counts.
    Integration.objects.filter(pk=world["mine"].pk).update(requestable=True)
    for_owner = ar.access_request_create(
        actor=people["member"],
        beneficiary=people["owner"],
        role=world["mine_role"],
        duration="1d",
        justification="for them",
    )
    assert for_owner.status == AccessRequest.Status.PENDING
    users = for_owner.steps[0]["approvers"][0]["users"]
    assert people["admin"].pk in users and people["owner"].pk not in users


def test_whoever_changed_the_workflow_in_the_last_30_days_needs_someone_else(people, world):
    role = _requestable(world)
    admin = people["admin"]
    services.role_update(actor=admin, role=role, workflow=world["auto"])
    assert self_interested(admin, role) == "changed its approval workflow in the last 30 days"
    other_admin = User.objects.create_superuser("root2", "root2@example.com", "pw")
    request = ar.access_request_create(actor=admin, role=role, duration="1d", justification="me")
    assert request.status == AccessRequest.Status.PENDING
    assert request.steps[0]["approvers"][0]["users"] == [people["owner"].pk]
    assert other_admin.pk not in request.steps[0]["approvers"][0]["users"]
    # What the audit log says about someone else, within the window or not.
    from django.contrib.contenttypes.models import ContentType

    former = people["member"]

    def changed(days_ago):
        AuditEvent.objects.create(
            actor=former,
            action="role.update",
            object_type=ContentType.objects.get_for_model(Role),
            object_id=str(role.pk),
            occurred_at=timezone.now() - timedelta(days=days_ago),
            details={"changes": {"workflow_id": {"from": None, "to": world["auto"].pk}}},
        )

    changed(31)
    assert self_interested(former, role) == ""
    changed(29)
    assert self_interested(former, role)


def test_a_workflow_changed_through_a_bulk_action_counts_too(people, world):
    role = _requestable(world)
    bulk_apply(actor=people["owner"], target="roles", ids=[role.pk], changes={"workflow": world["auto"].pk})
    assert self_interested(people["owner"], role)  # also the owner
    other = workflow_create(
        actor=people["admin"], name="Other", steps=[{"approvers": [{"kind": "automatic"}]}]
    )
    bulk_apply(
        actor=people["admin"],
        target="resources",
        ids=[world["mine_resource"].pk],
        changes={"workflow": other.pk},
    )
    assert self_interested(people["admin"], role) == "changed its approval workflow in the last 30 days"
    assert ApprovalWorkflow.objects.count() == 2


def test_editing_the_workflow_a_role_uses_counts_as_changing_it(people, world):
    from integrations.services.workflows import workflow_update

    role = _requestable(world)
    other_admin = User.objects.create_superuser("root2", "root2@example.com", "pw")
    assert self_interested(other_admin, role) == ""
    # The workflow Mine names (Automatic) edited by this admin: their own request waits for the owner.
    workflow_update(actor=other_admin, workflow=world["auto"], description="Approves at once")
    assert self_interested(other_admin, role) == "changed its approval workflow in the last 30 days"
    request = ar.access_request_create(actor=other_admin, role=role, duration="1d", justification="me")
    assert request.status == AccessRequest.Status.PENDING
    assert request.steps[0]["approvers"][0]["users"] == [people["owner"].pk]


def test_owning_a_prerequisite_granted_with_the_role_counts_too(people, world):
    """The owner of another resource of Mine requests a role whose prerequisite is a role of that resource."""
    role = _requestable(world)
    theirs_too = Resource.objects.create(
        integration=world["mine"], external_id="own", name="own", owner=people["member"], requestable=True
    )
    needed = Role.objects.create(resource=theirs_too, external_id="own-admin", name="admin")
    prerequisite_add(actor=people["admin"], alternatives=[needed], role=role)
    request = ar.access_request_create(actor=people["member"], role=role, duration="1d", justification="x")
    assert list(request.prerequisite_roles.all()) == [needed]
    assert request.status == AccessRequest.Status.PENDING
    assert request.steps[0]["approvers"][0]["users"] == [people["owner"].pk]


def test_a_prerequisite_is_approved_under_its_own_workflow(people, world):
    """A maintainer makes the admin role (approved by the owner) a prerequisite of the read role (approved
    automatically): a member asking for read would get admin with no approval. The admin role's own
    workflow is added after the read role's steps, so its approver still decides."""
    _requestable(world)
    read, admin = world["mine_role"], world["mine_admin"]
    strict = workflow_create(
        actor=people["admin"],
        name="The owner approves",
        steps=[{"approvers": [{"kind": "user", "user": people["owner"]}]}],
    )
    services.role_update(actor=people["admin"], role=admin, workflow=strict)
    prerequisite_add(actor=people["maintainer"], alternatives=[admin], role=read)

    request = ar.access_request_create(actor=people["member"], role=read, duration="1d", justification="x")
    assert list(request.prerequisite_roles.all()) == [admin]
    assert request.status == AccessRequest.Status.PENDING
    assert [e["users"] for s in request.steps for e in s["approvers"]] == [[], [people["owner"].pk]]
    assert "for the prerequisite" in request.steps[-1]["approvers"][0]["label"]
    with pytest.raises(PermissionDenied):
        ar.access_request_approve(actor=people["maintainer"], request=request)
    ar.access_request_approve(actor=people["owner"], request=request)
    request.refresh_from_db()
    assert request.status != AccessRequest.Status.PENDING


def test_a_prerequisite_under_the_same_workflow_adds_no_step(people, world):
    _requestable(world)
    read, admin = world["mine_role"], world["mine_admin"]
    prerequisite_add(actor=people["maintainer"], alternatives=[admin], role=read)
    request = ar.access_request_create(actor=people["member"], role=read, duration="1d", justification="x")
    assert len(request.steps) == 1 and request.status == AccessRequest.Status.APPROVED


# -- stopping jobs: a deletion only by admins ----------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "maintainer"])
def test_owners_and_maintainers_cannot_stop_an_admins_deletion(people, world, who):
    from governance.models import Job

    job = services.integration_delete_start(actor=people["admin"], integration=world["mine"])
    assert job.status == Job.Status.QUEUED
    r = api(people[who]).post(f"/api/jobs/{job.pk}/cancel/")
    assert r.status_code == 403, r.content
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and not job.cancel_requested
    r = api(people["admin"]).post(f"/api/jobs/{job.pk}/cancel/")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


@pytest.mark.parametrize("who", ["owner", "maintainer"])
def test_managers_stop_their_integrations_syncs(people, world, who):
    from governance.models import Job
    from integrations.sync import sync_start

    job = sync_start(actor=people["admin"], integration=world["mine"], full=True)
    assert job.status == Job.Status.QUEUED
    r = api(people[who]).post(f"/api/jobs/{job.pk}/cancel/")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


@pytest.mark.parametrize("who", ["res_owner", "maintainer", "admin"])
def test_a_resources_name_is_the_applications_on_the_screens_as_in_the_api(people, world, who):
    """The API refuses renaming a resource (it is what the application calls it, and what approvers read):
    the settings screen ignores a posted name too."""
    res = world["mine_resource"]
    r = api(people[who]).patch(f"/api/resources/{res.pk}/", {"name": "sandbox"}, format="json")
    assert r.status_code == 400
    r = browser(people[who]).post(
        f"/resources/{res.pk}/settings", {"name": "sandbox", "description": "Renamed?", "requestable": "on"}
    )
    assert r.status_code == 302
    res.refresh_from_db()
    assert res.name == "mine db" and res.description == "Renamed?"
