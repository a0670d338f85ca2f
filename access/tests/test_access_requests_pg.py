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
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from psycopg import sql

from access import services as ar
from access.models import AccessRequest, AccessTicket, RequestPermission
from access.services import grants
from governance.models import AuditEvent, User
from integrations.models import Account, Integration, Permission, Role
from integrations.services import integration_create, resource_update, role_update
from integrations.services.prerequisites import prerequisite_add
from integrations.services.workflows import workflow_create
from integrations.sync import sync_integration
from integrations.tests.test_tasks import broker, make_worker  # noqa: F401 - fixtures

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

    with pytest.raises(PermissionDenied, match="not an approver"):
        ar.access_request_approve(actor=owner, request=request)  # step 2's approver, too early
    ar.access_request_approve(actor=boss, request=request, comment="ok")
    request.refresh_from_db()
    assert request.status == "pending" and request.current_step == 1
    assert list(request.pending_approvers.all()) == [owner]
    with pytest.raises(PermissionDenied, match="not an approver"):
        ar.access_request_approve(actor=boss, request=request)

    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        ar.access_request_approve(actor=owner, request=request)
    request.refresh_from_db()
    assert request.status == "granted", request.error
    assert can_connect(cluster["alice"], cluster["db"])  # really granted in PostgreSQL
    permission = Permission.objects.get(access_requests=request, ended_at__isnull=True)
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
    assert grants._revoke(request.pk, later).status == "expired"  # a repeated revoke does no harm

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
    assert Permission.objects.filter(access_requests=request, ended_at__isnull=True).count() == 2

    # Giving it up early deletes the account made for it.
    ar.access_request_revoke(actor=bob, request=request)
    request.refresh_from_db()
    assert request.status == "revoked" and not role_exists(cluster["bob"])
    assert not Permission.objects.filter(access_requests=request, ended_at__isnull=True).exists()
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
    assert live.count() == 1 and live.get().access_requests.get() == second
    # The permission's move to the later request is in the audit log, from the first to the second.
    moved = AuditEvent.objects.filter(
        action="requestpermission.update",
        object_id=str(RequestPermission.objects.get(permission=live.get()).pk),
    ).get()
    assert moved.details["changes"]["request_id"] == {"from": first.pk, "to": second.pk}
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
    assert not Permission.objects.filter(access_requests=request).exists()
    ar.access_requests_expire(now=timezone.now() + timedelta(hours=1))  # no retry of a ticketed grant
    assert AccessTicket.objects.filter(request=request).count() == 1

    with pytest.raises(PermissionDenied, match="assignee"):
        ar.access_ticket_close(actor=people["bob"], ticket=ticket)
    ar.access_ticket_close(actor=people["owner"], ticket=ticket, note="done by hand")
    request.refresh_from_db()
    assert (
        request.status == "granted"
        and Permission.objects.filter(access_requests=request, ended_at=None).count() == 1
    )
    # At the end, a revoke ticket; closing it ends the permission.
    ar.access_requests_expire(now=timezone.now() + timedelta(hours=2))
    revoke = AccessTicket.objects.get(request=request, kind="revoke", status="open")
    ar.access_ticket_close(actor=people["owner"], ticket=revoke)
    request.refresh_from_db()
    assert (
        request.status == "expired"
        and not Permission.objects.filter(access_requests=request, ended_at=None).exists()
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
    with pytest.raises(PermissionDenied, match="cannot approve"):
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
    assert not Permission.objects.filter(access_requests=request, ended_at=None).exists()
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


def is_member(role: str, group: str) -> bool:
    return one("SELECT pg_has_role(%s, %s, 'MEMBER')", role, group)


def auto_workflow(people):
    return workflow_create(actor=people["admin"], name="Auto", steps=[{"approvers": [{"kind": "automatic"}]}])


def shared_prerequisite(cluster, people, **integration_fields):
    """CONNECT and TEMPORARY on the test database, both needing membership of analysts first."""
    integration = connect_integration(cluster, people, auto_workflow(people), **integration_fields)
    connect = connect_role(integration, cluster)
    temporary = Role.objects.get(integration=integration, external_id=f"database:{cluster['db']}:TEMPORARY")
    analysts = Role.objects.get(integration=integration, external_id=f"role:{cluster['analysts']}")
    prerequisite_add(actor=people["admin"], alternatives=[analysts], resource=connect.resource)
    return connect, temporary, analysts


def test_a_prerequisite_shared_by_two_requests_stays_until_neither_needs_it(
    cluster, people, django_capture_on_commit_callbacks
):
    connect, temporary, analysts = shared_prerequisite(cluster, people)
    alice, name = people["alice"], cluster["alice"]

    with django_capture_on_commit_callbacks(execute=True):
        short = ar.access_request_create(actor=alice, role=connect, duration="1h", justification="a")
    with django_capture_on_commit_callbacks(execute=True):
        long = ar.access_request_create(actor=alice, role=temporary, duration="1d", justification="b")
    short.refresh_from_db()
    long.refresh_from_db()
    assert short.status == long.status == "granted", (short.error, long.error)
    # Held only through the short request, the prerequisite is listed on the long one too.
    assert list(short.prerequisite_roles.all()) == list(long.prerequisite_roles.all()) == [analysts]
    assert is_member(name, cluster["analysts"])
    assert Permission.objects.filter(account__identity=name, role=analysts, ended_at=None).count() == 1

    # The short request ends: its own role goes, the shared prerequisite stays for the long one.
    assert ar.access_requests_expire(now=timezone.now() + timedelta(hours=1, minutes=1))["revoked"] == 1
    assert not can_connect(name, cluster["db"])
    assert is_member(name, cluster["analysts"])
    kept = Permission.objects.get(account__identity=name, role=analysts, ended_at=None)
    assert kept.access_requests.get() == long
    assert AuditEvent.objects.filter(
        action="access_request.permission_kept", object_id=str(short.pk)
    ).exists()

    # Only when no live request needs it any more is it revoked.
    ar.access_request_revoke(actor=alice, request=long)
    assert not is_member(name, cluster["analysts"])
    assert not one("SELECT has_database_privilege(%s, %s, 'TEMPORARY')", name, cluster["db"])
    assert not Permission.objects.filter(account__identity=name, ended_at=None, source="portal").exists()


def test_a_reuser_of_a_shared_prerequisite_ending_first_takes_nothing_shared(
    cluster, people, django_capture_on_commit_callbacks
):
    """The other order: the request that granted the prerequisite outlives the one that reused it."""
    connect, temporary, analysts = shared_prerequisite(cluster, people)
    alice, name = people["alice"], cluster["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        first = ar.access_request_create(actor=alice, role=connect, duration="1d", justification="a")
    with django_capture_on_commit_callbacks(execute=True):
        second = ar.access_request_create(actor=alice, role=temporary, duration="1h", justification="b")
    ar.access_request_revoke(actor=alice, request=second)  # the reuser gives up first: nothing shared goes
    assert is_member(name, cluster["analysts"]) and can_connect(name, cluster["db"])
    ar.access_request_revoke(actor=alice, request=first)
    assert not is_member(name, cluster["analysts"]) and not can_connect(name, cluster["db"])


def test_an_account_created_for_one_request_and_used_by_another_lives_until_both_end(
    cluster, people, django_capture_on_commit_callbacks
):
    integration = connect_integration(cluster, people, auto_workflow(people))
    connect = connect_role(integration, cluster)
    temporary = Role.objects.get(integration=integration, external_id=f"database:{cluster['db']}:TEMPORARY")
    bob, name = people["bob"], cluster["bob"]
    with django_capture_on_commit_callbacks(execute=True):
        first = ar.access_request_create(actor=bob, role=connect, duration="1h", justification="a")
    with django_capture_on_commit_callbacks(execute=True):
        second = ar.access_request_create(actor=bob, role=temporary, duration="1d", justification="b")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.created_account and second.account == first.account and role_exists(name)

    ar.access_requests_expire(now=timezone.now() + timedelta(hours=2))
    first.refresh_from_db()
    assert first.status == "expired" and role_exists(name) and not can_connect(name, cluster["db"])
    assert one("SELECT has_database_privilege(%s, %s, 'TEMPORARY')", name, cluster["db"])
    ar.access_requests_expire(now=timezone.now() + timedelta(days=2))
    assert not role_exists(name)  # the last request using it deleted the account made for the first
    assert Account.objects.get(pk=first.account_id).removed_at is not None


def test_requesting_again_a_role_held_on_an_account_made_for_it_keeps_deleting_it_at_the_end(
    cluster, people, django_capture_on_commit_callbacks
):
    integration = connect_integration(cluster, people, auto_workflow(people))
    connect = connect_role(integration, cluster)
    bob, name = people["bob"], cluster["bob"]
    with django_capture_on_commit_callbacks(execute=True):
        first = ar.access_request_create(actor=bob, role=connect, duration="1h", justification="a")
    with django_capture_on_commit_callbacks(execute=True):
        again = ar.access_request_create(actor=bob, role=connect, duration="1d", justification="b")
    first.refresh_from_db()
    again.refresh_from_db()
    assert first.status == "extended" and again.status == "granted" and again.created_account
    ar.access_requests_expire(now=timezone.now() + timedelta(hours=2))
    assert role_exists(name) and can_connect(name, cluster["db"])  # extended: still there
    ar.access_requests_expire(now=timezone.now() + timedelta(days=2))
    assert not role_exists(name)


CHILD = """
import django
django.setup()
from governance.models import User
from access.models import AccessRequest
from access import services as ar
ar.access_request_approve(actor=User.objects.get(pk={owner}), request=AccessRequest.objects.get(pk={request}))
"""


@pytest.mark.django_db(transaction=True)
def test_a_grant_that_dies_after_the_connector_created_the_account_is_recovered(cluster, people, tmp_path):
    """The process granting access is killed after PostgreSQL created the account, before the portal
    recorded it: the next attempt finds the account, marks it as created for the request, and the
    end of the access deletes it."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from django.db import connection

    owner_only = workflow_create(
        actor=people["admin"],
        name="Owner",
        steps=[{"approvers": [{"kind": "user", "user": people["owner"]}]}],
    )
    integration = connect_integration(cluster, people, owner_only)
    role = connect_role(integration, cluster)
    bob, name = people["bob"], cluster["bob"]
    request = ar.access_request_create(actor=bob, role=role, duration="1h", justification="on call")

    s = connection.settings_dict
    dsn = {"host": s["HOST"], "port": s["PORT"], "user": s["USER"], "dbname": s["NAME"]}
    lock = psycopg.connect(**dsn)  # holds the portal's account table: recording the account blocks
    lock.execute("LOCK TABLE integrations_account IN SHARE MODE")
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env |= {
        "DJANGO_SETTINGS_MODULE": "governance.test_settings",
        "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
    }
    log = tmp_path / "child.log"
    with open(log, "w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(owner=people["owner"].pk, request=request.pk)],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        waiting = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        waiting += "WHERE c.relname = 'integrations_account' AND NOT l.granted"
        while not (role_exists(name) and lock.execute(waiting).fetchone()[0]):
            assert child.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the grant never reached the connector"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # dies after the connector created the account
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        lock.rollback()
        lock.close()

    request.refresh_from_db()
    assert role_exists(name)  # PostgreSQL has the account...
    assert not Account.objects.filter(integration=integration, identity=name).exists()  # ...the portal not
    assert request.status == "approved" and request.created_account and request.account is None

    # The retry (the beat's expiry pass) finds it, records it as made for this request, and grants.
    ar.access_requests_expire(now=request.next_attempt_at + timedelta(seconds=1))
    request.refresh_from_db()
    assert request.status == "granted", request.error
    assert request.created_account and request.account.identity == name and request.account.user == bob
    assert can_connect(name, cluster["db"])
    assert Permission.objects.filter(access_requests=request, role=role, ended_at=None).count() == 1
    event = AuditEvent.objects.get(action="access_request.account_created", object_id=str(request.pk))
    assert event.details["recovered"] is True

    # The end of the access deletes the account made for it.
    ar.access_requests_expire(now=timezone.now() + timedelta(hours=2))
    request.refresh_from_db()
    assert request.status == "expired" and not role_exists(name)
    assert Account.objects.get(pk=request.account_id).removed_at is not None


def inbox(person) -> list[str]:
    """Subjects mailed to ``person`` so far, without the request number."""
    return [m.subject.split("] ", 1)[1] for m in mail.outbox if person.email in m.to]


def test_on_behalf_request_mails_everyone_at_each_change(cluster, people, django_capture_on_commit_callbacks):
    """bob asks for alice: alice gets the access; both hear of every change; the approver is asked."""
    by_boss = workflow_create(
        actor=people["admin"], name="Boss", steps=[{"approvers": [{"kind": "user", "user": people["boss"]}]}]
    )
    integration = connect_integration(cluster, people, by_boss)
    role = connect_role(integration, cluster)
    alice, bob, boss = people["alice"], people["bob"], people["boss"]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request = ar.access_request_create(
            actor=bob, beneficiary=alice, role=role, duration="1h", justification="for her report"
        )
    assert inbox(boss) == ["Your approval is needed"]
    assert inbox(bob) == inbox(alice) == ["Access requested"]
    with pytest.raises(PermissionDenied, match="cannot approve"):
        ar.access_request_approve(actor=alice, request=request)  # the beneficiary may not approve either
    with django_capture_on_commit_callbacks(execute=True):
        ar.access_request_approve(actor=boss, request=request)
    request.refresh_from_db()
    assert request.status == "granted" and request.account.user == alice
    assert can_connect(cluster["alice"], cluster["db"])  # the beneficiary's account, not the requester's
    assert inbox(alice) == inbox(bob) == ["Access requested", "Access approved", "Access granted"]
    with django_capture_on_commit_callbacks(execute=True):
        ar.access_requests_expire(now=timezone.now() + timedelta(hours=2))
    assert inbox(alice)[-1] == inbox(bob)[-1] == "Access expired"
    assert not can_connect(cluster["alice"], cluster["db"])

    # Denied, and cancelled: each told too.
    with django_capture_on_commit_callbacks(execute=True):
        denied = ar.access_request_create(
            actor=bob, beneficiary=alice, role=role, duration="1h", justification="x"
        )
        ar.access_request_deny(actor=boss, request=denied, comment="not now")
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = ar.access_request_create(actor=alice, role=role, duration="1h", justification="y")
        ar.access_request_cancel(actor=alice, request=cancelled)
    assert inbox(bob)[-2:] == ["Access requested", "Access denied"]
    assert inbox(alice)[-2:] == ["Access requested", "Request cancelled"]
    assert not Permission.objects.filter(access_requests__in=[denied, cancelled]).exists()


def test_approving_twice_is_refused_and_all_steps_need_everyone(cluster, people):
    both = workflow_create(
        actor=people["admin"],
        name="Boss and owner",
        steps=[
            {
                "mode": "all",
                "approvers": [{"kind": "user", "user": people["boss"]}, {"kind": "owner"}],
            }
        ],
    )
    integration = connect_integration(cluster, people, both)
    request = ar.access_request_create(
        actor=people["alice"], role=connect_role(integration, cluster), duration="1h", justification="x"
    )
    ar.access_request_approve(actor=people["boss"], request=request)
    with pytest.raises(ValidationError, match="already decided step 1"):
        ar.access_request_approve(actor=people["boss"], request=request)
    request.refresh_from_db()
    assert request.status == "pending" and list(request.pending_approvers.all()) == [people["owner"]]
    assert request.decisions.count() == 1


def test_access_time_starts_at_the_grant_and_failures_are_visible_until_given_up(
    cluster, people, client, django_capture_on_commit_callbacks
):
    integration = connect_integration(cluster, people, auto_workflow(people))
    role = connect_role(integration, cluster)
    analysts = Role.objects.get(integration=integration, external_id=f"role:{cluster['analysts']}")
    prerequisite_add(actor=people["admin"], alternatives=[analysts], role=role)
    broken = {**integration.connection_config, "databaseNamePattern": "^nothing$"}
    Integration.objects.filter(pk=integration.pk).update(connection_config=broken)
    alice = people["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        request = ar.access_request_create(actor=alice, role=role, duration="1h", justification="x")
    request.refresh_from_db()
    # The prerequisite went through, the database grant did not: visible on the request, with the error.
    assert request.status == "failed" and "no database" in request.error and request.attempts == 1
    assert is_member(cluster["alice"], cluster["analysts"]) and not can_connect(
        cluster["alice"], cluster["db"]
    )
    client.force_login(alice)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert 'data-testid="request-error"' in page and "no database" in page and "Next attempt" in page

    # Retried by the beat with growing pauses until no attempt is left; then nothing it granted
    # stays behind: the prerequisite is revoked, the request ends and keeps the error.
    pauses = []
    while request.next_attempt_at:
        pauses.append(request.next_attempt_at)
        with django_capture_on_commit_callbacks(execute=True):
            counts = ar.access_requests_expire(now=request.next_attempt_at + timedelta(seconds=1))
        request.refresh_from_db()
    assert request.attempts == ar.MAX_GRANT_ATTEMPTS and len(pauses) == ar.MAX_GRANT_ATTEMPTS - 1
    assert pauses[2] - pauses[1] > pauses[1] - pauses[0]
    assert counts["abandoned"] == 1 and request.status == "expired" and "no database" in request.error
    assert not is_member(cluster["alice"], cluster["analysts"])
    assert not Permission.objects.filter(access_requests=request, ended_at=None).exists()
    assert any(people["owner"].email in m.to and "will not be retried" in m.body for m in mail.outbox)

    # A manager retries a failed grant by hand; the time starts when it is finally granted.
    Integration.objects.filter(pk=integration.pk).update(connection_config=broken)
    with django_capture_on_commit_callbacks(execute=True):
        again = ar.access_request_create(actor=alice, role=role, duration="1h", justification="y")
    again.refresh_from_db()
    assert again.status == "failed"
    with pytest.raises(PermissionDenied, match="Only a manager"):
        ar.access_request_retry(actor=alice, request=again)
    Integration.objects.filter(pk=integration.pk).update(
        connection_config={**broken, "databaseNamePattern": "^" + cluster["p"]}
    )
    later = timezone.now() + timedelta(hours=3)
    ar.access_requests_expire(now=later)  # the beat's retry, three hours after the request was filed
    again.refresh_from_db()
    assert again.status == "granted" and again.granted_at == later
    assert again.expires_at == later + timedelta(hours=1)
    assert Permission.objects.get(
        access_requests=again, role=role, ended_at=None
    ).expires_at == later + timedelta(hours=1)
    assert can_connect(cluster["alice"], cluster["db"])
    ar.access_request_revoke(actor=alice, request=again)


def test_a_manual_retry_by_the_owner(cluster, people, client, django_capture_on_commit_callbacks):
    integration = connect_integration(cluster, people, auto_workflow(people))
    role = connect_role(integration, cluster)
    good = dict(integration.connection_config)
    Integration.objects.filter(pk=integration.pk).update(
        connection_config={**good, "databaseNamePattern": "^nothing$"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        request = ar.access_request_create(actor=people["alice"], role=role, duration="1h", justification="x")
    Integration.objects.filter(pk=integration.pk).update(connection_config=good)
    client.force_login(people["owner"])
    assert "Retry now" in client.get(f"/requests/{request.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/requests/{request.pk}/retry")
    request.refresh_from_db()
    assert request.status == "granted" and can_connect(cluster["alice"], cluster["db"])
    assert AuditEvent.objects.filter(action="access_request.retried", actor=people["owner"]).exists()
    ar.access_request_revoke(actor=people["alice"], request=request)


def test_reminders_seven_days_and_one_day_before_the_end(cluster, people, django_capture_on_commit_callbacks):
    integration = connect_integration(cluster, people, auto_workflow(people))
    role = connect_role(integration, cluster)
    alice = people["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        month = ar.access_request_create(actor=alice, role=role, duration="1mo", justification="quarter")
    month.refresh_from_db()
    end = month.expires_at
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert ar.access_requests_expire(now=end - timedelta(days=8))["reminded"] == 0
        assert ar.access_requests_expire(now=end - timedelta(days=7) + timedelta(minutes=1))["reminded"] == 1
        assert ar.access_requests_expire(now=end - timedelta(days=6))["reminded"] == 0  # not twice
        assert ar.access_requests_expire(now=end - timedelta(hours=23))["reminded"] == 1
        assert ar.access_requests_expire(now=end - timedelta(hours=1))["reminded"] == 0
    assert inbox(alice) == ["Access expires soon", "Access expires soon"]
    assert f"{end:%Y-%m-%d %H:%M}" in mail.outbox[0].body
    month.refresh_from_db()
    assert month.reminders_sent == ["7d", "1d"]
    ar.access_request_revoke(actor=alice, request=month)

    # An access shorter than a reminder's window gets no reminder right after its grant.
    with django_capture_on_commit_callbacks(execute=True):
        day = ar.access_request_create(actor=alice, role=role, duration="1d", justification="today")
    day.refresh_from_db()
    assert ar.access_requests_expire(now=day.granted_at + timedelta(minutes=1))["reminded"] == 0
    ar.access_request_revoke(actor=alice, request=day)


def test_pending_requests_expire_after_the_configured_age(cluster, people, settings):
    settings.ACCESS_REQUEST_PENDING_MAX_AGE_HOURS = 2
    by_boss = workflow_create(
        actor=people["admin"], name="Boss", steps=[{"approvers": [{"kind": "user", "user": people["boss"]}]}]
    )
    integration = connect_integration(cluster, people, by_boss)
    request = ar.access_request_create(
        actor=people["alice"], role=connect_role(integration, cluster), duration="1h", justification="x"
    )
    assert ar.access_requests_expire(now=request.created_at + timedelta(hours=1))["stale"] == 0
    assert ar.access_requests_expire(now=request.created_at + timedelta(hours=2, minutes=1))["stale"] == 1
    request.refresh_from_db()
    assert request.status == "expired" and not request.pending_approvers.exists()
    with pytest.raises(ValidationError, match="no longer be approved"):
        ar.access_request_approve(actor=people["boss"], request=request)


def test_existing_accounts_get_a_ticket_when_their_permissions_may_not_change(
    cluster, people, django_capture_on_commit_callbacks
):
    integration = connect_integration(
        cluster, people, auto_workflow(people), allow_changing_account_permissions=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        request = ar.access_request_create(
            actor=people["alice"], role=connect_role(integration, cluster), duration="1h", justification="x"
        )
    request.refresh_from_db()
    ticket = AccessTicket.objects.get(request=request)
    assert request.status == "approved" and ticket.kind == "grant" and "existing accounts" in ticket.reason
    assert not can_connect(cluster["alice"], cluster["db"])  # nothing changed in PostgreSQL


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_grant_runs_as_a_celery_task_on_the_integrations_agent(
    cluster, people, monkeypatch, request, tmp_path
):
    """Approval queues the grant through the real Redis broker to a real worker on the agent's queue."""
    import time

    from governance.celery import app
    from integrations.models import Agent
    from integrations.tests.test_tasks import REDIS_URL

    worker = request.getfixturevalue("make_worker")
    agent, proc = worker()
    owner_only = workflow_create(
        actor=people["admin"],
        name="Owner",
        steps=[{"approvers": [{"kind": "user", "user": people["owner"]}]}],
    )
    integration = connect_integration(cluster, people, owner_only)
    integration.agent = Agent.objects.create(name=agent)
    integration.save()
    access = ar.access_request_create(
        actor=people["alice"], role=connect_role(integration, cluster), duration="1h", justification="x"
    )
    monkeypatch.setitem(app.conf, "task_always_eager", False)  # this process sends, the worker runs
    monkeypatch.setitem(app.conf, "broker_url", REDIS_URL)
    # The producer pools are made on first use (eager tasks use one too) for the broker of the time:
    # made again for this one, and put back after the test.
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    ar.access_request_approve(actor=people["owner"], request=access)
    deadline = time.monotonic() + 60
    while AccessRequest.objects.get(pk=access.pk).status == "approved":
        assert proc.poll() is None and time.monotonic() < deadline, (
            "the worker never granted it:\n" + (tmp_path / f"{agent}.log").read_text()[-3000:]
        )
        time.sleep(0.2)
    access.refresh_from_db()
    assert access.status == "granted", access.error
    assert can_connect(cluster["alice"], cluster["db"])
    log = tmp_path / f"{agent}.log"
    while "succeeded" not in log.read_text() and time.monotonic() < deadline:  # logged once the task returns
        time.sleep(0.2)
    assert (
        "integrations.grant_access" in log.read_text() and "succeeded" in log.read_text()
    )  # the worker did it
    ar.access_request_revoke(actor=people["alice"], request=access)
    assert not can_connect(cluster["alice"], cluster["db"])


def test_by_hand_a_shared_prerequisite_is_not_on_the_revoke_ticket(
    cluster, people, django_capture_on_commit_callbacks
):
    connect, temporary, analysts = shared_prerequisite(cluster, people, read_only=True)
    alice, owner = people["alice"], people["owner"]
    requests = []
    for role, duration in ((connect, "1h"), (temporary, "1d")):
        with django_capture_on_commit_callbacks(execute=True):
            r = ar.access_request_create(actor=alice, role=role, duration=duration, justification="x")
        ar.access_ticket_close(actor=owner, ticket=AccessTicket.objects.get(request=r, kind="grant"))
        requests.append(r)
    short, long = requests
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ar.access_requests_expire(now=timezone.now() + timedelta(hours=2))
    ticket = AccessTicket.objects.get(request=short, kind="revoke", status="open")
    body = next(m.body for m in mail.outbox if "Ticket" in m.subject)
    assert connect.external_id in body and analysts.external_id not in body  # only what goes
    ar.access_ticket_close(actor=owner, ticket=ticket)
    short.refresh_from_db()
    assert short.status == "expired"
    assert (
        Permission.objects.get(
            account__identity=cluster["alice"], role=analysts, ended_at=None
        ).access_requests.get()
        == long
    )


def test_a_shared_prerequisite_handed_to_a_request_not_granted_yet_keeps_an_end(
    cluster, people, django_capture_on_commit_callbacks
):
    """The heir is approved but waits for its ticket: the prerequisite ends when the heir's access
    would, counted from now at the earliest, never 'unlimited' just because the heir has no end yet."""
    connect, temporary, analysts = shared_prerequisite(cluster, people, read_only=True)
    alice, owner = people["alice"], people["owner"]
    with django_capture_on_commit_callbacks(execute=True):
        short = ar.access_request_create(actor=alice, role=connect, duration="1h", justification="x")
    ar.access_ticket_close(actor=owner, ticket=AccessTicket.objects.get(request=short, kind="grant"))
    with django_capture_on_commit_callbacks(execute=True):
        waiting = ar.access_request_create(actor=alice, role=temporary, duration="1d", justification="y")
    waiting.refresh_from_db()
    assert waiting.status == "approved" and waiting.expires_at is None  # its grant ticket is still open
    later = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        ar.access_requests_expire(now=later)
    revoke = AccessTicket.objects.get(request=short, kind="revoke", status="open")
    ar.access_ticket_close(actor=owner, ticket=revoke, now=later)
    kept = Permission.objects.get(account__identity=cluster["alice"], role=analysts, ended_at=None)
    assert kept.access_requests.get() == waiting
    assert kept.expires_at == later + timedelta(days=1)
