"""The approval workflow screens: list, create and edit rules and steps, delete with what uses it."""

import pytest
from django.contrib.auth.models import Group

from governance.models import AuditEvent, User
from integrations.models import ApprovalWorkflow, Approver, Integration, Resource, Role
from integrations.services import integration_update, role_update
from integrations.services.workflows import workflow_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return admin_user


def rules_of(workflow):
    """The saved rules, as plain data: [(max_duration, groups, [(mode, [(kind, user, group)])])]."""
    return [
        (
            r.max_duration,
            sorted(g.name for g in r.requester_groups.all()),
            [
                (
                    s.mode,
                    [
                        (a.kind, a.user.username if a.user else None, a.group.name if a.group else None)
                        for a in s.approvers.order_by("pk")
                    ],
                )
                for s in r.steps.order_by("position")
            ],
        )
        for r in workflow.rules.order_by("position")
    ]


def test_only_admins(client, db):
    user = User.objects.create_user("eve", "eve@example.com", "pw")
    wf = ApprovalWorkflow.objects.create(name="W")
    client.force_login(user)
    for url in ["/workflows/", "/workflows/add/", f"/workflows/{wf.pk}/", f"/workflows/{wf.pk}/delete"]:
        assert client.get(url).status_code == 403, url
    assert client.post("/workflows/add/", {"name": "X", "rules-0-steps-0-mode": "any"}).status_code == 403
    assert client.post(f"/workflows/{wf.pk}/delete").status_code == 403
    assert ApprovalWorkflow.objects.filter(pk=wf.pk).exists() and not ApprovalWorkflow.objects.filter(
        name="X"
    )
    client.logout()
    assert client.get("/workflows/").status_code == 302  # to the login page


def test_create_with_rules_and_steps(client, admin):
    sre = Group.objects.create(name="sre")
    approvers = Group.objects.create(name="db-approvers")
    User.objects.create_user("carol", "carol@example.com", "pw")
    page = client.get("/workflows/add/")
    assert page.status_code == 200 and "rules-0-steps-0-approvers-0-kind" in page.content.decode()
    post = {
        "name": "Databases",
        "description": "Short access for SRE is automatic",
        "rules-0-max_duration": "1h",
        "rules-0-groups": [str(sre.pk)],
        "rules-0-steps-0-mode": "any",
        "rules-0-steps-0-approvers-0-kind": "automatic",
        "rules-1-max_duration": "",
        "rules-1-steps-0-mode": "any",
        "rules-1-steps-0-approvers-0-kind": "manager",
        "rules-1-steps-1-mode": "all",
        "rules-1-steps-1-approvers-0-kind": "",  # an empty row is ignored
        "rules-1-steps-1-approvers-1-kind": "user",
        "rules-1-steps-1-approvers-1-user": "carol",
        "rules-1-steps-1-approvers-2-kind": "group",
        "rules-1-steps-1-approvers-2-group": str(approvers.pk),
        "rules-1-steps-1-approvers-3-kind": "owner",
    }
    response = client.post("/workflows/add/", post)
    assert response.status_code == 302 and response["Location"] == "/workflows/"
    wf = ApprovalWorkflow.objects.get(name="Databases")
    assert rules_of(wf) == [
        ("1h", ["sre"], [("any", [("automatic", None, None)])]),
        (
            "",
            [],
            [
                ("any", [("manager", None, None)]),
                ("all", [("user", "carol", None), ("group", None, "db-approvers"), ("owner", None, None)]),
            ],
        ),
    ]
    assert AuditEvent.objects.filter(action="approvalworkflow.create", actor=admin).exists()
    assert AuditEvent.objects.filter(action="approver.create", actor=admin).count() == 5
    listing = client.get("/workflows/").content.decode()
    assert f"workflow-{wf.pk}" in listing and "duration at most 1 hour and requester in sre" in listing
    assert "All of A user: carol, A group: db-approvers" in listing


def test_bad_input_is_shown_on_its_row_and_nothing_is_saved(client, admin):
    ApprovalWorkflow.objects.create(name="Taken")
    post = {
        "name": "Taken",
        "rules-0-max_duration": "",
        "rules-0-steps-0-mode": "any",
        "rules-0-steps-0-approvers-0-kind": "",
        "rules-0-steps-0-approvers-1-kind": "user",
        "rules-0-steps-0-approvers-1-user": "nobody-by-that-name",
        "rules-0-steps-1-mode": "any",
        "rules-0-steps-1-approvers-0-kind": "group",  # no group chosen
    }
    response = client.post("/workflows/add/", post)
    html = response.content.decode()
    assert response.status_code == 400
    assert "already exists" in html  # the name
    post["name"] = "Fresh"
    response = client.post("/workflows/add/", post)
    html = response.content.decode()
    assert response.status_code == 400
    assert "No active user named &#x27;nobody-by-that-name&#x27;." in html
    assert "Choose the approving group." in html
    assert 'value="nobody-by-that-name"' in html  # what was typed is shown again
    assert not ApprovalWorkflow.objects.filter(name="Fresh").exists()
    # A step left without approvers, and a workflow without rules.
    response = client.post(
        "/workflows/add/",
        {"name": "Fresh", "rules-0-steps-0-mode": "any", "rules-0-steps-0-approvers-0-kind": ""},
    )
    assert response.status_code == 400 and "A step needs at least one approver." in response.content.decode()
    response = client.post("/workflows/add/", {"name": "Fresh"})
    assert response.status_code == 400 and "Add at least one rule" in response.content.decode()
    assert not ApprovalWorkflow.objects.filter(name="Fresh").exists()


def test_buttons_add_move_and_remove_without_saving(client, admin):
    base = {
        "name": "Draft",
        "rules-0-max_duration": "1d",
        "rules-0-steps-0-mode": "all",
        "rules-0-steps-0-approvers-0-kind": "owner",
    }
    page = client.post("/workflows/add/", {**base, "op": "add-step-0"}).content.decode()
    assert "rules-0-steps-1-mode" in page and 'value="Draft"' in page
    page = client.post("/workflows/add/", {**base, "op": "add-approver-0-0"}).content.decode()
    assert "rules-0-steps-0-approvers-1-kind" in page
    page = client.post("/workflows/add/", {**base, "op": "add-rule"}).content.decode()
    assert "rules-1-max_duration" in page
    moved = client.post(
        "/workflows/add/",
        {**base, "rules-1-max_duration": "", "rules-1-steps-0-mode": "any", "op": "up-rule-1"},
    ).content.decode()
    # The second rule (any duration) is now first: its empty duration is rule 0's selection.
    first = moved[moved.index('name="rules-0-max_duration"') : moved.index('name="rules-1-max_duration"')]
    assert 'value="1d" selected' not in first
    page = client.post("/workflows/add/", {**base, "op": "remove-rule-0"}).content.decode()
    assert "rules-0-max_duration" not in page
    assert not ApprovalWorkflow.objects.exists()


def test_edit_shows_the_rules_and_what_uses_it(client, admin, integration, resource, role):
    carol = User.objects.create_user("carol", "carol@example.com", "pw")
    wf = workflow_create(
        actor=admin,
        name="Owner then Carol",
        rules=[
            {
                "steps": [
                    {"approvers": [{"kind": "owner"}]},
                    {"approvers": [{"kind": "user", "user": carol}]},
                ]
            }
        ],
    )
    integration_update(actor=admin, integration=integration, default_workflow=wf)
    page = client.get(f"/workflows/{wf.pk}/").content.decode()
    assert 'value="carol"' in page and "Directory" in page and 'data-testid="workflow-used-by"' in page
    response = client.post(
        f"/workflows/{wf.pk}/",
        {
            "name": "Owner only",
            "rules-0-max_duration": "1w",
            "rules-0-steps-0-mode": "any",
            "rules-0-steps-0-approvers-0-kind": "owner",
        },
    )
    assert response.status_code == 302
    wf.refresh_from_db()
    assert wf.name == "Owner only" and rules_of(wf) == [("1w", [], [("any", [("owner", None, None)])])]
    assert not Approver.objects.filter(user=carol).exists()


def test_delete_names_what_uses_it_and_moves_it(client, admin, integration, resource, role):
    wf = workflow_create(actor=admin, name="Old", steps=[{"approvers": [{"kind": "owner"}]}])
    new = workflow_create(actor=admin, name="New", steps=[{"approvers": [{"kind": "manager"}]}])
    integration_update(actor=admin, integration=integration, default_workflow=wf)
    role_update(actor=admin, role=role, workflow=wf)
    page = client.get(f"/workflows/{wf.pk}/delete").content.decode()
    assert "1</strong> integration as default workflow" in page and "Directory" in page
    assert "1</strong> role:" in page and "CONNECT" in page
    # In use: a choice is required.
    response = client.post(f"/workflows/{wf.pk}/delete", {"move_to": ""})
    assert response.status_code == 400 and "choose where" in response.content.decode()
    assert ApprovalWorkflow.objects.filter(pk=wf.pk).exists()
    response = client.post(f"/workflows/{wf.pk}/delete", {"move_to": str(new.pk)})
    assert response.status_code == 302
    assert not ApprovalWorkflow.objects.filter(pk=wf.pk).exists()
    assert Integration.objects.get(pk=integration.pk).default_workflow == new
    assert Role.objects.get(pk=role.pk).workflow == new
    assert AuditEvent.objects.filter(
        action="role.update", actor=admin, details__via="deleting workflow Old"
    ).exists()
    assert AuditEvent.objects.filter(action="approvalworkflow.delete", object_repr="Old").exists()
    # Moving to "inherit" clears the field; an unused workflow just goes.
    Resource.objects.filter(pk=resource.pk).update(workflow=new)
    client.post(f"/workflows/{new.pk}/delete", {"move_to": "inherit"})
    assert not ApprovalWorkflow.objects.exists()
    assert Resource.objects.get(pk=resource.pk).workflow is None
    assert Integration.objects.get(pk=integration.pk).default_workflow is None
