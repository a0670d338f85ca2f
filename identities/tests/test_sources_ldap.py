"""An LDAP directory as an identity source, against the real slapd of the connector's tests: each person's
``manager`` is the DN of their manager's entry (``manager_key = account``), listed before or after them."""

from __future__ import annotations

import ldap3
import pytest

from connectors.tests.test_ldap import SUFFIX, base_config, slapd  # noqa: F401  (the session's slapd)
from identities import services
from identities.models import IdentitySource, Person
from integrations.sync import sync_integration

STAFF = f"ou=staff,{SUFFIX}"


def dn(uid: str) -> str:
    return f"uid={uid},{STAFF}"


@pytest.fixture
def staff(slapd):  # noqa: F811
    """A branch of its own (the connector's tests count the people under ou=people)."""
    entries = [
        # The report comes first: the manager is found in the second pass.
        ("ivy", "Ivy", "Ito", "2002", {"manager": dn("hank"), "departmentNumber": "Research"}),
        ("hank", "Hank", "Hill", "2001", {"departmentNumber": "Research"}),
        ("gus", "Gus", "Grey", "2003", {"manager": dn("ivy")}),
    ]
    with slapd.admin() as conn:
        conn.add(STAFF, ["organizationalUnit"], {"ou": "staff"})
        for uid, given, sn, number, extra in entries:
            conn.add(
                dn(uid),
                ["inetOrgPerson"],
                {"uid": uid, "cn": f"{given} {sn}", "givenName": given, "sn": sn, "mail": f"{uid}@example.org",
                 "employeeNumber": number, **extra},
            )  # fmt: skip
    try:
        yield slapd
    finally:
        with slapd.admin() as conn:
            for uid, *_ in entries:
                conn.delete(dn(uid))
            conn.delete(STAFF)


def test_an_ldap_source_resolves_managers_by_their_dn(staff, make_integration, admin_user):
    integration = make_integration(
        name="Directory",
        application="ldap",
        connection_config=base_config(staff, userBaseDn=STAFF, groupBaseDn=STAFF, provisioning=False),
    )
    services.identity_source_save(
        actor=admin_user,
        source=IdentitySource(
            integration=integration,
            mapping={
                "username": "id",
                "employee_id": "employeeNumber",
                "email": "mail",
                "first_name": "givenName",
                "last_name": "sn",
                "department": "departmentNumber",
                "manager": "manager",
            },
            manager_key=IdentitySource.ManagerKey.ACCOUNT,
        ),
    )
    sync_integration(actor=admin_user, integration=integration, full=True)
    people = {
        p.user.username: p for p in Person.objects.select_related("user__manager").filter(source=integration)
    }
    assert set(people) == {"hank", "ivy", "gus"}
    assert people["ivy"].user.manager.username == "hank"
    assert people["gus"].user.manager.username == "ivy"
    assert people["hank"].user.manager is None
    assert people["ivy"].user.department == "Research" and people["ivy"].employee_id == "2002"

    # The manager moves in the directory: the next sync follows.
    with staff.admin() as conn:
        conn.modify(dn("gus"), {"manager": [(ldap3.MODIFY_REPLACE, [dn("hank")])]})
    sync_integration(actor=admin_user, integration=integration, full=True)
    assert Person.objects.get(employee_id="2003").user.manager.username == "hank"
