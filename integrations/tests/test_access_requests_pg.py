"""Just-in-time access end to end against this machine's PostgreSQL, through the PostgreSQL connector.

A throwaway database and roles named ``gov_jit_<random>_…`` are created for each test and dropped at
the end, also after failures. The connector is scoped to that prefix.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone
from psycopg import sql

from governance.models import AuditEvent, User
from integrations.models import AccessTicket, Account, Integration, Permission, Role
from integrations.services import access_requests as ar
from integrations.services import integration_create, resource_update, role_update
from integrations.services.prerequisites import prerequisite_add
from integrations.services.sync import sync_integration
from integrations.services.workflows import workflow_create

ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres", "connect_timeout": 5}
PASSWORD = "svc-" + secrets.token_hex(8)
I = sql.Identifier  # noqa: E741


def pg():
    return psycopg.connect(**ADMIN, autocommit=True)


def one(query, *params):
    with pg() as conn:
        return conn.execute(query, params).fetchone()[0]


def _drop_everything(prefix: str) -> None:
    with pg() as conn:
        # DROP DATABASE waits for every backend of the server to acknowledge it; bound the wait.
        conn.execute("SET statement_timeout = '60s'")
        for (db,) in conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
        ).fetchall():
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(I(db)))
        roles = [
            r
            for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,))
        ]
        for role in roles:
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(I(role)))
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(I(role)))


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway database and its roles for the session (creating databases per test is slow)."""
    try:
        pg().close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {exc}")
    p = f"gov_jit_{secrets.token_hex(3)}_"
    names = {
        "p": p,
        "svc": p + "svc",
        "db": p + "db",
        "alice": p + "alice",
        "bob": p + "bob",
        "analysts": p + "analysts",
    }
    try:
        with pg() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                    I(names["svc"]), sql.Literal(PASSWORD)
                )
            )
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(I(names["db"]), I(names["svc"])))
            conn.execute(
                sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(I(names["db"]))
            )
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(I(names["analysts"])))
            conn.execute(
                sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(I(names["analysts"]), I(names["svc"]))
            )
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(I(names["alice"])))
        yield names
    finally:
        _drop_everything(p)


@pytest.fixture
def cluster(pg_cluster):
    """The session's cluster with alice holding nothing and no bob role."""
    c = pg_cluster
    with pg() as conn:
        conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(I(c["db"]), I(c["alice"])))
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(I(c["analysts"]), I(c["alice"])))
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (c["bob"],)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(I(c["bob"])))
            conn.execute(sql.SQL("DROP ROLE {}").format(I(c["bob"])))
    return c


@pytest.fixture
def people(db, cluster):
    def make(name, **kw):
        return User.objects.create_user(name, email=f"{name}@example.com", password="pw", **kw)

    boss = make("boss")
    return {
        "admin": User.objects.create_superuser("root", "root@example.com", "pw"),
        "owner": make("owner"),
        "boss": boss,
        # Portal users named like their PostgreSQL roles, so created accounts fall inside the connector's scope.
        "alice": make(cluster["alice"], manager=boss),
        "bob": make(cluster["bob"], manager=boss),
    }


@pytest.fixture
def two_step(people):
    return workflow_create(
        actor=people["admin"],
        name="Manager then owner",
        steps=[
            {"mode": "any", "approvers": [{"kind": "manager"}]},
            {"mode": "all", "approvers": [{"kind": "owner"}]},
        ],
    )


def connect_integration(cluster, people, workflow, **flags):
    integration = integration_create(
        actor=people["admin"],
        application="postgresql",
        name=f"PG {cluster['p']}{secrets.token_hex(2)}",
        owner=people["owner"],
        default_workflow=workflow,
        connection_config={
            "host": "127.0.0.1",
            "port": 5432,
            "database": "postgres",
            "username": cluster["svc"],
            "password": PASSWORD,
            "sslmode": "disable",
            "provisioning": True,
            "roleNamePattern": "^" + cluster["p"],
            "databaseNamePattern": "^" + cluster["p"],
            "disabledRole": cluster["p"] + "disabled",
        },
        **flags,
    )
    sync_integration(actor=people["admin"], integration=integration, full=True)
    Account.objects.filter(integration=integration, identity=cluster["alice"]).update(user=people["alice"])
    return integration


def connect_role(integration, cluster) -> Role:
    return Role.objects.get(integration=integration, external_id=f"database:{cluster['db']}:CONNECT")


def can_connect(role: str, db: str) -> bool:
    return one("SELECT has_database_privilege(%s, %s, 'CONNECT')", role, db)


def role_exists(role: str) -> bool:
    return one("SELECT count(*) FROM pg_roles WHERE rolname = %s", role) == 1


def run_grant(request, django_capture_on_commit_callbacks, fn, **kw):
    with django_capture_on_commit_callbacks(execute=True):
        return fn(request=request, **kw)


def test_request_two_step_approval_grant_and_expiry(
    cluster, people, two_step, django_capture_on_commit_callbacks
):
    integration = connect_integration(cluster, people, two_step)
    role = connect_role(integration, cluster)
    alice, boss, owner = people["alice"], people["boss"], people["owner"]
    assert not can_connect(cluster["alice"], cluster["db"])

    with django_capture_on_commit_callbacks(execute=True):
        request = ar.access_request_create(
            actor=alice, role=role, duration="1d", justification="month-end report"
        )
    assert request.status == "pending" and list(request.pending_approvers.all()) == [boss]
    assert any(boss.email in m.to for m in mail.outbox)

    with pytest.raises(ValidationError, match="not an approver"):
        ar.access_request_approve(actor=owner, request=request)  # step 2's approver, too early
    ar.access_request_approve(actor=boss, request=request, comment="ok")
    request.refresh_from_db()
    assert request.status == "pending" and request.current_step == 1
    assert list(request.pending_approvers.all()) == [owner]
    with pytest.raises(ValidationError, match="not an approver"):
        ar.access_request_approve(actor=boss, request=request)

    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        ar.access_request_approve(actor=owner, request=request)
    request.refresh_from_db()
    assert request.status == "granted", request.error
    assert can_connect(cluster["alice"], cluster["db"])  # really granted in PostgreSQL
    permission = Permission.objects.get(request=request, ended_at__isnull=True)
    assert permission.source == "portal" and permission.role == role
    assert permission.expires_at >= before + timedelta(days=1)  # time starts at the grant
    with pytest.raises(ValidationError, match="no longer be approved"):
        ar.access_request_approve(actor=owner, request=request)

    # Nothing happens before the end; past it the expiry pass revokes, twice without harm.
    assert ar.access_requests_expire(now=timezone.now() + timedelta(hours=23))["revoked"] == 0
    assert can_connect(cluster["alice"], cluster["db"])
    later = timezone.now() + timedelta(days=1, minutes=1)
    assert ar.access_requests_expire(now=later)["revoked"] == 1
    assert not can_connect(cluster["alice"], cluster["db"])  # really revoked
    request.refresh_from_db()
    permission.refresh_from_db()
    assert request.status == "expired" and permission.ended_at is not None
    assert ar.access_requests_expire(now=later)["revoked"] == 0
    assert ar._revoke(request.pk, later).status == "expired"  # a repeated revoke does no harm

    actions = set(AuditEvent.objects.filter(object_id=str(request.pk)).values_list("action", flat=True))
    assert {"accessrequest.create", "access_request.granted", "access_request.revoked"} <= actions
    assert AuditEvent.objects.filter(action="accessdecision.create").count() == 2


def test_account_created_for_the_request_and_deleted_at_the_end(
    cluster, people, two_step, django_capture_on_commit_callbacks
):
    auto = workflow_create(actor=people["admin"], name="Auto", steps=[{"approvers": [{"kind": "automatic"}]}])
    integration = connect_integration(cluster, people, auto)
    role = connect_role(integration, cluster)
    analysts = Role.objects.get(integration=integration, external_id=f"role:{cluster['analysts']}")
    prerequisite_add(actor=people["admin"], alternatives=[analysts], role=role)
    bob = people["bob"]
    assert not role_exists(cluster["bob"])

    with django_capture_on_commit_callbacks(execute=True):
        request = ar.access_request_create(actor=bob, role=role, duration="1h", justification="debugging")
    request.refresh_from_db()
    assert request.status == "granted", request.error
    assert list(request.prerequisite_roles.all()) == [analysts]
    assert request.created_account and request.account.identity == cluster["bob"]
    assert role_exists(cluster["bob"]) and can_connect(cluster["bob"], cluster["db"])
    assert one("SELECT pg_has_role(%s, %s, 'MEMBER')", cluster["bob"], cluster["analysts"])
    assert Permission.objects.filter(request=request, ended_at__isnull=True).count() == 2

    # Giving it up early deletes the account made for it.
    ar.access_request_revoke(actor=bob, request=request)
    request.refresh_from_db()
    assert request.status == "revoked" and not role_exists(cluster["bob"])
    assert not Permission.objects.filter(request=request, ended_at__isnull=True).exists()
    assert Account.objects.get(pk=request.account_id).removed_at is not None


def test_requesting_a_held_role_extends_it(cluster, people, django_capture_on_commit_callbacks):
    auto = workflow_create(actor=people["admin"], name="Auto", steps=[{"approvers": [{"kind": "automatic"}]}])
    integration = connect_integration(cluster, people, auto)
    role = connect_role(integration, cluster)
    alice = people["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        first = ar.access_request_create(actor=alice, role=role, duration="1h", justification="a")
    with django_capture_on_commit_callbacks(execute=True):
        second = ar.access_request_create(actor=alice, role=role, duration="1d", justification="b")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "extended" and second.status == "granted"
    live = Permission.objects.filter(account__identity=cluster["alice"], role=role, ended_at__isnull=True)
    assert live.count() == 1 and live.get().request == second
    assert ar.access_requests_expire(now=timezone.now() + timedelta(hours=2))["revoked"] == 0
    assert can_connect(cluster["alice"], cluster["db"])
    ar.access_requests_expire(now=timezone.now() + timedelta(days=2))
    assert not can_connect(cluster["alice"], cluster["db"])


def test_read_only_integration_opens_a_ticket_and_changes_nothing(
    cluster, people, two_step, django_capture_on_commit_callbacks
):
    auto = workflow_create(actor=people["admin"], name="Auto", steps=[{"approvers": [{"kind": "automatic"}]}])
    integration = connect_integration(cluster, people, auto, read_only=True)
    role = connect_role(integration, cluster)
    with django_capture_on_commit_callbacks(execute=True):
        request = ar.access_request_create(actor=people["alice"], role=role, duration="1h", justification="x")
    request.refresh_from_db()
    ticket = AccessTicket.objects.get(request=request)
    assert request.status == "approved" and ticket.kind == "grant" and ticket.assignee == people["owner"]
    assert not can_connect(cluster["alice"], cluster["db"])  # nothing changed in PostgreSQL
    assert not Permission.objects.filter(request=request).exists()
    ar.access_requests_expire(now=timezone.now() + timedelta(hours=1))  # no retry of a ticketed grant
    assert AccessTicket.objects.filter(request=request).count() == 1

    with pytest.raises(ValidationError, match="assignee"):
        ar.access_ticket_close(actor=people["bob"], ticket=ticket)
    ar.access_ticket_close(actor=people["owner"], ticket=ticket, note="done by hand")
    request.refresh_from_db()
    assert (
        request.status == "granted" and Permission.objects.filter(request=request, ended_at=None).count() == 1
    )
    # At the end, a revoke ticket; closing it ends the permission.
    ar.access_requests_expire(now=timezone.now() + timedelta(hours=2))
    revoke = AccessTicket.objects.get(request=request, kind="revoke", status="open")
    ar.access_ticket_close(actor=people["owner"], ticket=revoke)
    request.refresh_from_db()
    assert (
        request.status == "expired" and not Permission.objects.filter(request=request, ended_at=None).exists()
    )
    assert not can_connect(cluster["alice"], cluster["db"])
    assert (
        AuditEvent.objects.filter(action="access_request.ticket_opened", object_id=str(request.pk)).count()
        == 2
    )


def test_bad_input_and_failed_grants(cluster, people, two_step, django_capture_on_commit_callbacks):
    integration = connect_integration(cluster, people, two_step)
    role = connect_role(integration, cluster)
    alice, boss = people["alice"], people["boss"]
    role_update(
        actor=people["admin"], role=role, override_allowed_durations=True, allowed_durations=["1h", "1d"]
    )
    with pytest.raises(ValidationError, match="not an allowed duration"):
        ar.access_request_create(actor=alice, role=role, duration="1w", justification="x")
    resource_update(actor=people["admin"], resource=role.resource, requestable=False)
    with pytest.raises(ValidationError, match="cannot be requested"):
        ar.access_request_create(actor=alice, role=role, duration="1h", justification="x")
    resource_update(actor=people["admin"], resource=role.resource, requestable=True)

    # Approving your own request: refused, even as the step's approver.
    request = ar.access_request_create(
        actor=boss, beneficiary=alice, role=role, duration="1h", justification="x"
    )
    with pytest.raises(ValidationError, match="cannot approve"):
        ar.access_request_approve(actor=boss, request=request)
    ar.access_request_cancel(actor=boss, request=request)
    with pytest.raises(ValidationError, match="only a pending request"):
        ar.access_request_cancel(actor=boss, request=request)

    # A connector that fails: the error is on the request, the owner is alerted, a retry succeeds.
    request = ar.access_request_create(actor=alice, role=role, duration="1h", justification="y")
    ar.access_request_approve(actor=boss, request=request)
    Integration.objects.filter(pk=integration.pk).update(
        connection_config={**integration.connection_config, "databaseNamePattern": "^nothing$"}
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ar.access_request_approve(actor=people["owner"], request=request)
    request.refresh_from_db()
    assert request.status == "failed" and "no database" in request.error and request.next_attempt_at
    assert not Permission.objects.filter(request=request, ended_at=None).exists()
    assert any(people["owner"].email in m.to and "failed" in m.subject for m in mail.outbox)
    assert AuditEvent.objects.filter(action="access_request.grant_failed", status="error").exists()
    Integration.objects.filter(pk=integration.pk).update(
        connection_config={**integration.connection_config, "databaseNamePattern": "^" + cluster["p"]}
    )
    ar.access_requests_expire(now=request.next_attempt_at + timedelta(seconds=1))
    request.refresh_from_db()
    assert request.status == "granted" and can_connect(cluster["alice"], cluster["db"])
    ar.access_request_revoke(actor=alice, request=request)
    assert not can_connect(cluster["alice"], cluster["db"])


def test_rules_pick_the_steps_and_pending_requests_expire(
    cluster, people, django_capture_on_commit_callbacks
):
    staff = Group.objects.create(name="sre")
    people["alice"].groups.add(staff)
    workflow = workflow_create(
        actor=people["admin"],
        name="Short for SRE is automatic",
        rules=[
            {
                "max_duration": "1h",
                "requester_groups": [staff],
                "steps": [{"approvers": [{"kind": "automatic"}]}],
            },
            {"steps": [{"approvers": [{"kind": "user", "user": people["owner"]}]}]},
        ],
    )
    integration = connect_integration(cluster, people, workflow)
    role = connect_role(integration, cluster)
    with django_capture_on_commit_callbacks(execute=True):
        fast = ar.access_request_create(actor=people["alice"], role=role, duration="1h", justification="x")
    fast.refresh_from_db()
    assert fast.status == "granted" and fast.rule_position == 1
    slow = ar.access_request_create(actor=people["bob"], role=role, duration="1h", justification="x")
    assert slow.status == "pending" and slow.rule_position == 2
    counts = ar.access_requests_expire(now=timezone.now() + timedelta(days=15))
    slow.refresh_from_db()
    fast.refresh_from_db()
    assert slow.status == "expired" and counts["stale"] == 1 and fast.status == "expired"
