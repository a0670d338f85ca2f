"""Access requests over the API: who sees which request, filing, deciding, cancelling, ending, tickets.

Both integrations of the ``world`` fixture are read-only here, so grants and revokes become
tickets: the whole life of a request runs without an application behind it.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from access.models import AccessDecision, AccessRequest, AccessTicket
from governance.models import AuditEvent, User
from governance.tokens import api_token_create
from integrations.models import Permission, Role
from integrations.services import integration_update, role_update
from integrations.services.prerequisites import prerequisite_add
from integrations.services.workflows import workflow_create

pytestmark = pytest.mark.django_db


def client_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(actor=user, name='t')[1]}")
    return client


@pytest.fixture
def jit(people, world):
    """``approver`` decides every request (one step); ``bystander`` has nothing to do with any."""
    approver = User.objects.create(username="approver")
    bystander = User.objects.create(username="bystander")
    workflow = workflow_create(
        actor=people["admin"], name="Approver", steps=[{"approvers": [{"kind": "user", "user": approver}]}]
    )
    for key in ("mine", "theirs"):
        integration_update(
            actor=people["admin"], integration=world[key], read_only=True, default_workflow=workflow
        )
    return {"approver": approver, "bystander": bystander, "workflow": workflow}


def file(client, target, **extra):
    body = {"role": target.pk, "duration": "1d", "justification": "quarterly report", **extra}
    return client.post("/api/access-requests/", body, format="json")


@pytest.fixture
def filed(client_for, world, jit):
    """ "other" asked for a role of each integration; both wait for ``approver``."""
    other = client_for("other")
    mine, theirs = file(other, world["mine_role"]), file(other, world["theirs_role"])
    assert mine.status_code == theirs.status_code == 201, (mine.content, theirs.content)
    return {
        "mine": AccessRequest.objects.get(pk=mine.json()["id"]),
        "theirs": AccessRequest.objects.get(pk=theirs.json()["id"]),
    }


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# -- who sees which request -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, sees",
    [
        ("admin", {"mine", "theirs"}),  # everything
        ("owner", {"mine"}),  # manages "mine"
        ("maintainer", {"mine"}),
        ("other", {"mine", "theirs"}),  # filed both
        ("approver", {"mine", "theirs"}),  # both wait for them
        ("bystander", set()),  # nothing of theirs: an empty list, not a 403
    ],
)
def test_list_and_detail_by_role(client_for, people, jit, filed, who, sees):
    client = client_as(jit[who]) if who in jit else client_for(who)
    assert _ids(client.get("/api/access-requests/")) == {filed[k].pk for k in sees}
    missing = client.get("/api/access-requests/999999/")
    assert missing.status_code == 404
    for key in ("mine", "theirs"):
        response = client.get(f"/api/access-requests/{filed[key].pk}/")
        if key in sees:
            assert response.status_code == 200
        else:  # the same answer as an id that does not exist: existence does not leak
            assert response.status_code == 404 and response.json() == missing.json()


def test_anonymous_is_401(client_for, filed):
    anonymous = client_for(None)
    assert anonymous.get("/api/access-requests/").status_code == 401
    assert anonymous.get(f"/api/access-requests/{filed['mine'].pk}/").status_code == 401
    response = anonymous.post(f"/api/access-requests/{filed['mine'].pk}/approve/", {}, format="json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
    assert anonymous.get("/api/access-tickets/").status_code == 401


@pytest.mark.parametrize("verb", ["approve", "deny", "cancel", "end"])
def test_actions_on_a_request_the_caller_may_not_see_are_404(client_for, jit, filed, verb):
    owner = client_for("owner")  # manages "mine", not "theirs"
    response = owner.post(f"/api/access-requests/{filed['theirs'].pk}/{verb}/", {}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = client_as(jit["bystander"]).post(
        f"/api/access-requests/{filed['mine'].pk}/{verb}/", {}, format="json"
    )
    assert response.status_code == 404
    assert set(AccessRequest.objects.values_list("status", flat=True)) == {"pending"}
    assert not AccessDecision.objects.exists()


def test_screen_and_api_agree_on_who_sees_a_request(client, client_for, people, jit, filed):
    """One selector: the detail screen answers 404 to exactly the people the API answers 404."""
    for user in [*people.values(), jit["approver"], jit["bystander"]]:
        client.force_login(user)
        screen = client.get(f"/requests/{filed['theirs'].pk}/").status_code
        api = client_as(user).get(f"/api/access-requests/{filed['theirs'].pk}/").status_code
        assert (screen, api) in ((200, 200), (404, 404)), user.username


# -- filing -----------------------------------------------------------------------------------------------


def test_file_a_request_audited_with_steps(client_for, people, world, jit):
    response = file(client_for("other"), world["mine_role"])
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "pending" and data["requester"] == data["beneficiary"] == people["other"].pk
    assert data["role"] == world["mine_role"].pk and data["resource"] == world["mine_resource"].pk
    assert data["pending_approvers"] == [jit["approver"].pk]
    assert data["steps"][0]["approvers"][0]["users"] == [jit["approver"].pk]
    assert data["decisions"] == [] and data["prerequisite_roles"] == []
    access = AccessRequest.objects.get(pk=data["id"])
    event = AuditEvent.objects.get(action="accessrequest.create", object_id=str(access.pk))
    assert event.actor == people["other"] and event.integration_id == world["mine"].pk
    assert event.id in {e["id"] for e in data["history"]}


def test_file_on_behalf_of_someone_with_the_prerequisites(client_for, people, world, jit):
    connect = Role.objects.create(resource=world["mine_resource"], external_id="mine-connect", name="connect")
    prerequisite_add(actor=people["admin"], alternatives=[connect], role=world["mine_role"])
    response = file(client_for("owner"), world["mine_role"], beneficiary=people["other"].pk)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["requester"] == people["owner"].pk and data["beneficiary"] == people["other"].pk
    assert data["prerequisite_roles"] == [connect.pk]
    # The beneficiary sees it among their requests.
    assert data["id"] in _ids(client_for("other").get("/api/access-requests/"))


@pytest.mark.parametrize(
    "body, field",
    [
        ({"duration": "forever"}, "duration"),
        ({"role": "abc"}, "role"),
        ({"role": 10**9}, "role"),
        ({"justification": ""}, "justification"),
        ({"justification": 42.5, "colour": "red"}, "colour"),
        ({"beneficiary": 10**9}, "beneficiary"),
        ({"status": "granted"}, "status"),
    ],
)
def test_bad_input_is_400_naming_the_field(client_for, world, jit, body, field):
    response = file(client_for("other"), world["mine_role"], **body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "fields"} and error["code"] == "invalid"
    assert field in error["fields"]
    assert not AccessRequest.objects.exists()


def test_malformed_json_and_a_list_body_are_400(client_for, world, jit):
    other = client_for("other")
    response = other.generic("POST", "/api/access-requests/", b'{"role": ', content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"
    response = other.post("/api/access-requests/", [world["mine_role"].pk], format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert not AccessRequest.objects.exists()


def test_service_refusals_are_400_and_nothing_is_filed(client_for, people, world, jit):
    owner = client_for("owner")
    # A duration the role does not allow.
    integration_update(
        actor=people["admin"],
        integration=world["mine"],
        override_allowed_durations=True,
        allowed_durations=["1h"],
    )
    response = file(owner, world["mine_role"], beneficiary=people["other"].pk)
    assert response.status_code == 400
    assert "not an allowed duration" in response.json()["error"]["fields"]["duration"][0]
    # Not requestable: the owner, who manages the role, is told why.
    role_update(actor=people["admin"], role=world["mine_role"], requestable=False)
    response = file(owner, world["mine_role"], duration="1h", beneficiary=people["other"].pk)
    assert response.status_code == 400
    assert "cannot be requested" in response.json()["error"]["fields"]["role"][0]
    assert not AccessRequest.objects.exists()


def test_a_role_outside_the_catalogue_is_refused_like_a_missing_one(client_for, people, world, jit):
    """Someone who manages nothing may only name catalogue roles: a hidden role does not leak."""
    role_update(actor=people["admin"], role=world["theirs_role"], requestable=False)
    hidden = file(client_for("other"), world["theirs_role"]).json()["error"]
    missing = file(client_for("other"), world["theirs_role"], role=10**9).json()["error"]
    assert hidden["code"] == missing["code"] == "invalid"
    assert hidden["fields"]["role"][0].replace(str(world["theirs_role"].pk), "N") == missing["fields"][
        "role"
    ][0].replace(str(10**9), "N")
    assert str(world["theirs_role"]) not in str(hidden)
    assert not AccessRequest.objects.exists()


def test_a_second_pending_request_for_the_same_role_is_400(client_for, world, filed):
    response = file(client_for("other"), world["mine_role"])
    assert response.status_code == 400 and "already has a request" in response.json()["error"][
        "message"
    ] + str(response.json()["error"]["fields"])
    assert AccessRequest.objects.count() == 2


# -- deciding ---------------------------------------------------------------------------------------------


def test_approve_then_ticket_then_end(
    client_for, people, world, jit, filed, django_capture_on_commit_callbacks
):
    access = filed["mine"]
    approver = client_as(jit["approver"])
    awaiting = approver.get("/api/access-requests/?awaiting_me=true")
    assert _ids(awaiting) == {filed["mine"].pk, filed["theirs"].pk}
    with django_capture_on_commit_callbacks(execute=True):  # the grant task runs after the commit
        response = approver.post(
            f"/api/access-requests/{access.pk}/approve/", {"comment": "ok"}, format="json"
        )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "approved" and data["pending_approvers"] == []
    assert [(d["approver"], d["approved"], d["comment"]) for d in data["decisions"]] == [
        (jit["approver"].pk, True, "ok")
    ]
    # No longer waiting for them, still visible to them (they decided it).
    assert _ids(approver.get("/api/access-requests/?awaiting_me=true")) == {filed["theirs"].pk}
    assert access.pk in _ids(approver.get("/api/access-requests/?status=approved"))

    # Read-only: a grant ticket for the owner.
    ticket = AccessTicket.objects.get(request=access)
    assert (ticket.kind, ticket.status, ticket.assignee) == ("grant", "open", people["owner"])
    owner = client_for("owner")
    assert _ids(owner.get("/api/access-tickets/?assigned_to_me=true&status=open")) == {ticket.pk}
    other = client_for("other")
    assert _ids(other.get("/api/access-tickets/")) == {ticket.pk}  # the requester sees their ticket
    assert _ids(other.get("/api/access-tickets/?assigned_to_me=true")) == set()
    refused = other.post(f"/api/access-tickets/{ticket.pk}/close/", {"note": "done?"}, format="json")
    assert refused.status_code == 403 and "assignee" in refused.json()["error"]["message"]
    assert client_as(jit["bystander"]).post(f"/api/access-tickets/{ticket.pk}/close/").status_code == 404
    strict = owner.post(f"/api/access-tickets/{ticket.pk}/close/", {"note": "x", "done": True}, format="json")
    assert strict.status_code == 400 and strict.json()["error"]["fields"] == {"done": ["Unknown field."]}
    assert AccessTicket.objects.get(pk=ticket.pk).status == "open"
    closed = owner.post(f"/api/access-tickets/{ticket.pk}/close/", {"note": "added by hand"}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "done", closed.content
    detail = other.get(f"/api/access-requests/{access.pk}/").json()
    assert detail["status"] == "granted" and len(detail["permissions"]) == 1
    assert "access_request.ticket_closed" in {e["action"] for e in detail["history"]}
    again = owner.post(f"/api/access-tickets/{ticket.pk}/close/", {}, format="json")
    assert again.status_code == 400 and "already" in again.json()["error"]["message"]

    # The beneficiary gives the access up: read-only, so a revoke ticket; closing it ends the access.
    response = other.post(f"/api/access-requests/{access.pk}/end/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "granted" and response.json()["revoked_by"] == people["other"].pk
    revoke = AccessTicket.objects.get(request=access, kind="revoke", status="open")
    assert owner.post(f"/api/access-tickets/{revoke.pk}/close/", {}, format="json").status_code == 200
    detail = other.get(f"/api/access-requests/{access.pk}/").json()
    assert detail["status"] == "revoked" and detail["permissions"][0]["ended_at"] is not None
    response = other.post(f"/api/access-requests/{access.pk}/end/")
    assert response.status_code == 400 and "no access to end" in response.json()["error"]["message"]


def test_nobody_closes_a_ticket_of_their_own_access(
    client_for, people, world, jit, filed, django_capture_on_commit_callbacks
):
    """The owner fulfils read-only tickets, but not one about their own access: an admin does."""
    access = filed["mine"]
    with django_capture_on_commit_callbacks(execute=True):
        client_as(jit["approver"]).post(f"/api/access-requests/{access.pk}/approve/", {}, format="json")
    ticket = AccessTicket.objects.get(request=access)
    AccessRequest.objects.filter(pk=access.pk).update(beneficiary=people["owner"])
    refused = client_for("owner").post(f"/api/access-tickets/{ticket.pk}/close/", {}, format="json")
    assert refused.status_code == 403 and "own access" in refused.json()["error"]["message"]
    assert AccessTicket.objects.get(pk=ticket.pk).status == "open"
    closed = client_for("admin").post(f"/api/access-tickets/{ticket.pk}/close/", {}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "done", closed.content


def test_nobody_approves_their_own_request(client_for, people, world, jit, filed):
    # Even an approver of the workflow cannot approve what they filed.
    own = file(client_as(jit["approver"]), world["mine_role"]).json()
    for verb in ("approve", "deny"):
        response = client_as(jit["approver"]).post(f"/api/access-requests/{own['id']}/{verb}/")
        assert response.status_code == 403 and "you filed" in response.json()["error"]["message"]
    response = client_for("other").post(f"/api/access-requests/{filed['mine'].pk}/approve/")
    assert response.status_code == 403
    assert not AccessDecision.objects.exists()
    assert set(AccessRequest.objects.values_list("status", flat=True)) == {"pending"}


def test_approving_twice_is_400_and_a_non_approver_403(client_for, people, world, jit):
    workflow_both = workflow_create(
        actor=people["admin"],
        name="Both",
        steps=[
            {
                "mode": "all",
                "approvers": [{"kind": "user", "user": jit["approver"]}, {"kind": "owner"}],
            }
        ],
    )
    integration_update(actor=people["admin"], integration=world["mine"], default_workflow=workflow_both)
    access = file(client_for("other"), world["mine_role"]).json()
    url = f"/api/access-requests/{access['id']}/approve/"
    approver = client_as(jit["approver"])
    first = approver.post(url, {}, format="json")
    assert first.status_code == 200 and first.json()["status"] == "pending"
    assert first.json()["pending_approvers"] == [people["owner"].pk]
    second = approver.post(url, {}, format="json")
    assert second.status_code == 400 and "already decided" in second.json()["error"]["message"]
    # The maintainer manages the integration (sees the request) but is no approver of it.
    response = client_for("maintainer").post(url, {}, format="json")
    assert response.status_code == 403 and "not an approver" in response.json()["error"]["message"]
    assert AccessDecision.objects.count() == 1


def test_deny_with_a_comment_then_nothing_more(client_for, people, jit, filed):
    approver = client_as(jit["approver"])
    url = f"/api/access-requests/{filed['mine'].pk}"
    response = approver.post(f"{url}/deny/", {"comment": "not for this quarter"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "denied"
    assert response.json()["decisions"][0]["comment"] == "not for this quarter"
    response = approver.post(f"{url}/approve/", {}, format="json")
    assert response.status_code == 400 and "can no longer be approved" in response.json()["error"]["message"]
    assert client_for("other").post(f"{url}/cancel/").status_code == 400
    assert AccessRequest.objects.get(pk=filed["mine"].pk).status == "denied"


def test_decision_bodies_are_strict(jit, filed):
    approver = client_as(jit["approver"])
    url = f"/api/access-requests/{filed['mine'].pk}"
    response = approver.post(f"{url}/approve/", {"comment": "ok", "approved": False}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {
        "approved": ["Unknown field."]
    }
    response = approver.post(f"{url}/deny/", {"comment": ["a", "list"]}, format="json")
    assert response.status_code == 400 and "comment" in response.json()["error"]["fields"]
    response = client_as(jit["approver"]).post(f"{url}/cancel/", {"reason": "x"}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["error"]["fields"]
    assert not AccessDecision.objects.exists()
    assert AccessRequest.objects.get(pk=filed["mine"].pk).status == "pending"


def test_cancel_by_the_requester_only(client_for, jit, filed):
    url = f"/api/access-requests/{filed['mine'].pk}/cancel/"
    response = client_as(jit["approver"]).post(url)
    assert response.status_code == 403 and "Only the requester" in response.json()["error"]["message"]
    response = client_for("other").post(url)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["pending_approvers"] == []
    assert client_for("other").post(url).status_code == 400  # only a pending request can be cancelled
    event = AuditEvent.objects.filter(action="accessrequest.update", object_id=str(filed["mine"].pk)).first()
    assert event.actor_repr == "other"


def test_end_an_approved_request_before_its_grant(client_for, jit, filed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client_as(jit["approver"]).post(f"/api/access-requests/{filed['mine'].pk}/approve/")
    assert AccessTicket.objects.get(request=filed["mine"]).status == "open"
    response = client_for("other").post(f"/api/access-requests/{filed['mine'].pk}/end/")
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert AccessTicket.objects.get(request=filed["mine"]).status == "cancelled"
    assert not Permission.objects.filter(access_requests=filed["mine"]).exists()


# -- lists ------------------------------------------------------------------------------------------------


def test_filters_and_pages(client_for, people, world, jit, filed):
    admin = client_for("admin")
    assert _ids(admin.get(f"/api/access-requests/?integration={world['mine'].pk}")) == {filed["mine"].pk}
    assert _ids(admin.get(f"/api/access-requests/?role={world['theirs_role'].pk}")) == {filed["theirs"].pk}
    assert _ids(admin.get(f"/api/access-requests/?requester={people['other'].pk}&open=true")) == {
        filed["mine"].pk,
        filed["theirs"].pk,
    }
    assert _ids(admin.get(f"/api/access-requests/?beneficiary={people['owner'].pk}")) == set()
    assert _ids(admin.get("/api/access-requests/?status=pending&status=denied&q=quarterly")) == {
        filed["mine"].pk,
        filed["theirs"].pk,
    }
    assert _ids(admin.get("/api/access-requests/?open=false")) == set()
    assert admin.get("/api/access-requests/?status=sometimes").status_code == 400
    assert admin.get("/api/access-requests/?awaiting_me=perhaps").status_code == 400
    first = admin.get("/api/access-requests/?page_size=1&fields=id,status").json()
    assert [set(r) for r in first["results"]] == [{"id", "status"}]
    second = admin.get(first["next"]).json()
    assert {first["results"][0]["id"], second["results"][0]["id"]} == {filed["mine"].pk, filed["theirs"].pk}
    assert first["results"][0]["id"] == filed["theirs"].pk  # newest first
    assert admin.get("/api/access-requests/?fields=id,colour").status_code == 400


def test_a_hidden_integration_filter_is_refused_like_a_missing_one(client_for, world, jit, filed):
    owner = client_for("owner")  # neither manages "theirs" nor has a request on it
    hidden = owner.get(f"/api/access-requests/?integration={world['theirs'].pk}")
    missing = owner.get("/api/access-requests/?integration=999999")
    assert hidden.status_code == missing.status_code == 400
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"]
    # The requester may filter by the integrations of their own requests.
    assert _ids(client_for("other").get(f"/api/access-requests/?integration={world['theirs'].pk}")) == {
        filed["theirs"].pk
    }


def test_browser_session_writes_need_the_csrf_token(people, world, jit):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(people["other"])
    body = {"role": world["mine_role"].pk, "duration": "1d", "justification": "from the browser"}
    response = browser.post("/api/access-requests/", body, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"]
    assert not AccessRequest.objects.exists()
    assert browser.get("/api/access-requests/").status_code == 200  # reads need no token
    browser.get("/requests/")  # a screen sets the CSRF cookie
    response = browser.post(
        "/api/access-requests/", body, format="json", HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value
    )
    assert response.status_code == 201, response.content
