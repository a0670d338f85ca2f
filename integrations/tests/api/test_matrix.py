"""Response shapes and statuses of the API's list endpoints by role, and rules written by admins.

The full permission matrix — every screen URL and every API endpoint, as every kind of user, the
screens compared with the API — is ``integrations/tests/test_permission_matrix.py``.

Inventory-like endpoints (workflows, rules, jobs, audit events) are for managers: 403 for
someone who manages nothing. Tokens, access requests and people are everyone's own: 200 for any
signed-in caller. Anonymous callers get 401 everywhere.
"""

from __future__ import annotations

import pytest

from governance.models import AuditEvent
from integrations.models import Rule

pytestmark = pytest.mark.django_db

MANAGERS = {"admin": 200, "owner": 200, "maintainer": 200, "other": 403, None: 401}
EVERYONE = {"admin": 200, "owner": 200, "maintainer": 200, "other": 200, None: 401}


@pytest.mark.parametrize(
    "endpoint, expected",
    [
        ("workflows", MANAGERS),
        ("rules", MANAGERS),
        ("jobs", MANAGERS),
        ("audit-events", MANAGERS),
        ("tokens", EVERYONE),
        ("access-requests", EVERYONE),
        ("access-tickets", EVERYONE),
        ("people", EVERYONE),  # themselves at least
    ],
)
@pytest.mark.parametrize("who", ["admin", "owner", "maintainer", "other", None])
def test_list_endpoints_by_role(client_for, world, endpoint, expected, who):
    response = client_for(who).get(f"/api/{endpoint}/")
    assert response.status_code == expected[who], response.content
    body = response.json()
    assert set(body) == ({"error"} if expected[who] != 200 else {"next", "previous", "results"})
    if expected[who] == 401:
        assert body["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
    if expected[who] == 403:
        assert body["error"]["code"] == "permission_denied"


RULE = {"name": "Tag PCI", "target": "resources", "actions": {"tags": ["pci"]}}


@pytest.mark.parametrize(
    "who, status", [("admin", 201), ("owner", 403), ("maintainer", 403), ("other", 403), (None, 401)]
)
def test_rule_writes_are_for_admins(client_for, world, who, status):
    response = client_for(who).post("/api/rules/", RULE, format="json")
    assert response.status_code == status, response.content
    assert Rule.objects.filter(name="Tag PCI").exists() == (status == 201)
    if status == 201:
        assert AuditEvent.objects.filter(action="rule.create", actor_repr="root").exists()


@pytest.mark.parametrize("who, status", [("owner", 403), ("maintainer", 403), ("other", 403), (None, 401)])
def test_rule_change_apply_delete_refused_to_non_admins(client_for, people, world, who, status):
    rule = Rule.objects.create(name="Existing", actions={"tags": ["x"]})
    client = client_for(who)
    assert client.patch(f"/api/rules/{rule.pk}/", {"enabled": False}, format="json").status_code == status
    assert client.post(f"/api/rules/{rule.pk}/apply/").status_code == status
    assert client.delete(f"/api/rules/{rule.pk}/").status_code == status
    rule.refresh_from_db()
    assert rule.enabled and rule.last_applied_at is None


def test_rules_and_workflows_filter(client_for, world):
    Rule.objects.create(name="Tag PCI", target="resources", enabled=True)
    Rule.objects.create(name="Roles off", target="roles", enabled=False)
    admin = client_for("admin")
    names = lambda url: [r["name"] for r in admin.get(url).json()["results"]]  # noqa: E731
    assert names("/api/rules/?target=roles") == ["Roles off"]
    assert names("/api/rules/?enabled=true&q=pci") == ["Tag PCI"]
    assert admin.get("/api/rules/?target=groups").status_code == 400
    admin.post("/api/workflows/", {"name": "Manager approval", "steps": [{"approvers": [{"kind": "manager"}]}]},
               format="json")  # fmt: skip
    assert names("/api/workflows/?q=manager") == ["Manager approval"]
    assert names("/api/workflows/?q=nothing") == []


def test_unknown_fields_in_list_responses_are_refused(client_for, world):
    for endpoint in (
        "workflows",
        "rules",
        "jobs",
        "audit-events",
        "tokens",
        "access-requests",
        "access-tickets",
    ):
        response = client_for("admin").get(f"/api/{endpoint}/?fields=id,colour")
        assert response.status_code == 400 and "colour" in response.json()["error"]["fields"]["fields"][0]
