"""What access tells the apps beside it through ``integrations.hooks``: which request granted a permission and
who approved it, and a person's open requests; links only where the asking user may open the request."""

import pytest

from access.models import AccessDecision, AccessRequest, RequestPermission
from governance.models import User
from integrations import hooks
from integrations.models import Account, Permission

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(integration, role, admin_user):
    alice = User.objects.create_user("alice", first_name="Alice", last_name="Analyst")
    boss = User.objects.create_user("boss", first_name="Bea", last_name="Boss")
    account = Account.objects.create(
        integration=integration, external_id="alice", identity="alice", user=alice
    )

    def granted(*decisions, status="granted") -> tuple[AccessRequest, Permission]:
        request = AccessRequest.objects.create(
            requester=alice, beneficiary=alice, integration=integration, role=role, duration="1d",
            justification="x", status=status, account=account,
        )  # fmt: skip
        permission = Permission.objects.create(
            account=account, role=role, ended_at=None if status == "granted" else "2026-01-01T00:00Z"
        )
        RequestPermission.objects.create(request=request, permission=permission)
        for step, (approver, automatic) in enumerate(decisions):
            AccessDecision.objects.create(
                request=request, step=step, approver=approver, approved=True, automatic=automatic
            )
        return request, permission

    return alice, boss, granted


def test_provenance_names_the_request_and_its_approvers(held, admin_user):
    alice, boss, granted = held
    cases = [
        ((boss, False), (None, True)),  # a person, then an automatic step
        ((None, True),),
        (),
    ]
    expected = ["approved by Bea Boss (boss) and automatically", "approved automatically", ""]
    made = [granted(*decisions, status="revoked") for decisions in cases]
    answer = hooks.permission_provenance.merged([p for _, p in made], viewer=admin_user)
    for (request, permission), approved in zip(made, expected, strict=True):
        label = f"granted by access request #{request.pk}" + (f" ({approved})" if approved else "")
        assert answer[permission.pk] == [
            {"kind": "request", "label": label, "url": f"/requests/{request.pk}/"}
        ]
    # Someone who may not open the requests reads the same, without the links.
    stranger = User.objects.create_user("eve")
    assert {
        item["url"]
        for items in hooks.permission_provenance.merged([p for _, p in made], viewer=stranger).values()
        for item in items
    } == {""}


def test_open_requests_of_a_person_newest_first_within_a_limit(held, admin_user):
    alice, boss, granted = held
    first, _ = granted(status="revoked")
    AccessRequest.objects.filter(pk=first.pk).update(status="pending")
    second, _ = granted()
    granted(status="denied")
    (answer,) = hooks.open_requests_of(alice, viewer=alice, limit=1)
    assert answer["total"] == 2 and [row["id"] for row in answer["rows"]] == [second.pk]
    assert answer["rows"][0]["status"] == "Granted" and answer["rows"][0]["url"] == f"/requests/{second.pk}/"
    assert "Directory: orders · CONNECT" == answer["rows"][0]["label"]
    (none,) = hooks.open_requests_of(boss, viewer=boss, limit=10)
    assert none == {"total": 0, "rows": []}
