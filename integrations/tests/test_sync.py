"""The sync engine on the real PostgreSQL: full and delta runs, removals, failures, jobs, notifications."""

import json
import shutil
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.utils import timezone

from conftest import DEMO_ADMIN_PASSWORD, DEMO_CONFIG, DEMO_PEOPLE_PASSWORD
from governance.jobs import job_cancel
from governance.models import AuditEvent, Job
from integrations import services
from integrations.models import Account, Integration, Permission, Resource, Role, RoleImplication
from integrations.sync import SyncCancelled, SyncError, sync_integration, sync_start
from integrations.sync.reader import _Reader
from integrations.tasks import due_integrations, tick

from .scripted import Script, install

pytestmark = pytest.mark.django_db
# Jobs commit their progress through a second connection: their tests commit too.
jobs_db = pytest.mark.django_db(transaction=True, databases="__all__")


def inventory(integration):
    """Everything a sync writes, as comparable sets."""
    return {
        "resources": set(
            Resource.objects.filter(integration=integration, removed_at=None).values_list(
                "external_id", "name"
            )
        ),
        "roles": set(
            Role.objects.filter(integration=integration, removed_at=None).values_list("external_id", "name")
        ),
        "accounts": set(
            Account.objects.filter(integration=integration, removed_at=None).values_list(
                "external_id", "identity"
            )
        ),
        "permissions": set(
            Permission.objects.filter(integration=integration, ended_at=None).values_list(
                "account__external_id", "role__external_id"
            )
        ),
    }


def rows_written() -> int:
    """Rows inserted, updated or deleted by this transaction in the inventory tables (PostgreSQL)."""
    with connection.cursor() as c:
        c.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables "
            "WHERE relname IN ('integrations_resource', 'integrations_role', 'integrations_account', "
            "'integrations_permission')"
        )
        return c.fetchone()[0]


@pytest.fixture
def script(monkeypatch):
    s = Script()
    install(monkeypatch, s)
    s.groups = [{"id": "g1"}, {"id": "g2"}, {"id": "g3"}]
    s.accounts = [
        {"id": "alice", "email": "alice@example.com", "groups": ["g1", "g2"]},
        {"id": "bob", "groups": ["g2"]},
        {"id": "carol", "groups": []},
    ]
    return s


@pytest.fixture
def scripted(make_integration, script, django_user_model):
    owner = django_user_model.objects.create(username="owner", email="owner@example.com")
    return make_integration(name="Scripted", application="scripted", connection_config={}, owner=owner)


def test_full_sync_builds_the_inventory(scripted, admin_user, django_user_model):
    alice = django_user_model.objects.create(username="alice", email="Alice@Example.com")
    result = sync_integration(actor=admin_user, integration=scripted, full=True)
    assert inventory(scripted) == {
        "resources": {("g1", "g1"), ("g2", "g2"), ("g3", "g3")},
        "roles": {("g1", "member"), ("g2", "member"), ("g3", "member")},
        "accounts": {("alice", "alice"), ("bob", "bob"), ("carol", "carol")},
        "permissions": {("alice", "g1"), ("alice", "g2"), ("bob", "g2")},
    }
    assert Account.objects.get(external_id="alice").user == alice  # linked by email, case-insensitively
    assert result.counts["permissions_created"] == 3 and result.counts["accounts_created"] == 3
    scripted.refresh_from_db()
    assert scripted.last_sync_status == "succeeded" and scripted.permissions_last_synced_at is not None
    assert AuditEvent.objects.filter(
        action="integration.sync", status="ok", integration_id=scripted.pk
    ).exists()


def test_a_second_identical_full_sync_writes_no_rows(scripted, admin_user):
    # A bigger, realistic neighbour in the same tables.
    call_command(
        "demo", scale=0.02, verbosity=0, password=DEMO_ADMIN_PASSWORD, people_password=DEMO_PEOPLE_PASSWORD
    )
    directory = Integration.objects.get(name="Corporate Directory")
    before = inventory(directory)
    written = rows_written()
    result = sync_integration(actor=admin_user, integration=directory, full=True)
    assert rows_written() == written
    assert inventory(directory) == before
    assert not {k: v for k, v in result.counts.items() if k not in ("read", "filtered")}


def test_vanished_objects_are_removed_only_by_a_complete_full_run(scripted, script, admin_user):
    sync_integration(actor=admin_user, integration=scripted, full=True)
    script.groups = [{"id": "g1"}, {"id": "g2"}]  # g3 deleted in the application
    script.accounts = [{"id": "alice", "groups": ["g1"]}, {"id": "bob", "groups": ["g2"]}]  # carol left
    script.fail_after = 1
    with pytest.raises(SyncError):
        sync_integration(actor=admin_user, integration=scripted, full=True)
    assert Resource.objects.get(external_id="g3").removed_at is None  # the failed run removed nothing
    assert Account.objects.get(external_id="carol").removed_at is None
    script.fail_after = None
    result = sync_integration(actor=admin_user, integration=scripted, full=True)
    assert Resource.objects.get(external_id="g3").removed_at is not None
    assert Role.objects.get(external_id="g3").removed_at is not None
    assert Account.objects.get(external_id="carol").removed_at is not None
    assert inventory(scripted)["permissions"] == {("alice", "g1"), ("bob", "g2")}
    assert result.counts["permissions_ended"] == 1  # alice → g2
    ended = Permission.objects.get(account__external_id="alice", role__external_id="g2")
    assert ended.ended_at is not None  # history kept


def test_a_failure_halfway_leaves_inventory_and_state_as_they_were(scripted, script, admin_user, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    scripted.connector_attributes = {"stateful": True}
    scripted.save()
    script.state = {"cursor": 1}
    sync_integration(actor=admin_user, integration=scripted, full=True)
    before = inventory(scripted)
    script.accounts = [{"id": f"new{n}", "groups": ["g1"]} for n in range(50)]
    script.state = {"cursor": 2}
    script.fail_after = 40
    with pytest.raises(SyncError, match="the application went away halfway"):
        sync_integration(actor=admin_user, integration=scripted)
    scripted.refresh_from_db()
    assert inventory(scripted) == before
    assert scripted.sync_state == {"std:account:list": {"cursor": 1}}  # the next run repeats the window
    assert scripted.last_sync_status == "failed" and "went away halfway" in scripted.last_sync_error
    error = AuditEvent.objects.filter(action="integration.sync", status="error").latest("id")
    assert "went away halfway" in error.details["error"]
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert "Sync failed: Scripted" in mail.outbox[0].subject


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.accounts.append({"id": "alice", "groups": []}), "account 'alice' twice"),
        (lambda s: s.groups.append({"id": "g1"}), "entitlement 'g1' twice"),
        (lambda s: setattr(s, "state", ["not", "an", "object"]), "state"),
    ],
)
def test_bad_connector_output_fails_the_sync_naming_it(scripted, script, admin_user, change, message):
    scripted.connector_attributes = {"stateful": True}
    scripted.save()
    change(script)
    with pytest.raises(SyncError, match=message):
        sync_integration(actor=admin_user, integration=scripted, full=True)
    assert not Resource.objects.filter(integration=scripted).exists()
    assert scripted.sync_state == {}


def test_duplicates_across_batches_are_found(scripted, script, admin_user, monkeypatch):
    monkeypatch.setattr("integrations.sync.reader.BATCH_SIZE", 2)
    script.accounts = [{"id": f"a{n}", "groups": []} for n in range(5)] + [{"id": "a1", "groups": []}]
    with pytest.raises(SyncError, match="account 'a1' twice"):
        sync_integration(actor=admin_user, integration=scripted, full=True)
    assert not Account.objects.filter(integration=scripted).exists()


def test_a_connection_failure_names_the_setting(make_integration, admin_user):
    integration = make_integration(connection_config={**DEMO_CONFIG, "apiToken": "wrong"})
    with pytest.raises(SyncError, match="token"):
        sync_integration(actor=admin_user, integration=integration, full=True)


def test_a_csv_export_syncs_and_a_duplicate_row_later_keeps_nothing(
    make_integration, admin_user, settings, tmp_path
):
    settings.CONNECTOR_FILES_DIR = tmp_path
    path = tmp_path / "hr" / "people.csv"
    path.parent.mkdir()
    integration = make_integration(
        name="HR",
        application="csv",
        read_only=True,
        connection_config={
            "path": str(path),
            "identityColumn": "employeeId",
            "nameColumn": "displayName",
            "groupsColumn": "groups",
        },
    )
    shutil.copy(integration.connector.folder / "sample" / "people.csv", path)
    sync_integration(actor=admin_user, integration=integration, full=True)
    before = inventory(integration)
    assert len(before["accounts"]) == 12 and ("E1007", "E1007") in before["accounts"]
    assert len(before["resources"]) == 9 and ("on-call", "on-call") in before["resources"]
    assert {r for a, r in before["permissions"] if a == "E1005"} == {
        "all-staff",
        "engineering",
        "prod-access",
        "on-call",
    }
    with path.open("a") as f:
        f.write(
            "E1099,new@example.com,New,Hire,New Hire,Sales,Intern,London,E1010,active,2025-06-02,,sales;interns\n"
        )
        f.write(
            "E1003,alan.turing@example.com,Alan,Turing,Alan Turing,Engineering,,London,,active,,,all-staff\n"
        )
    with pytest.raises(SyncError, match="employeeId 'E1003' is on line 4 and again on line 15"):
        sync_integration(actor=admin_user, integration=integration, full=True)
    assert inventory(integration) == before  # not even the new hire and the new group before the duplicate


def test_a_relative_file_path_is_read_under_the_connector_files_folder_not_the_workers_folder(
    make_integration, admin_user, settings, tmp_path, monkeypatch
):
    settings.CONNECTOR_FILES_DIR = tmp_path / "connector-files"
    (settings.CONNECTOR_FILES_DIR / "hr").mkdir(parents=True)
    integration = make_integration(
        name="HR",
        application="csv",
        read_only=True,
        connection_config={"path": "hr/people.csv", "identityColumn": "id"},
    )
    (settings.CONNECTOR_FILES_DIR / "hr" / "people.csv").write_text("id,name\nu1,Ann\n")
    # A file of the same name in the worker's folder is not the one read.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "people.csv").write_text("id,name\nintruder,Eve\n")
    sync_integration(actor=admin_user, integration=integration, full=True)
    assert [a for a, _ in inventory(integration)["accounts"]] == ["u1"]


def test_delta_runs_follow_the_application(make_integration, admin_user):
    config = {**DEMO_CONFIG, "users": 200, "groups": 20, "memberships": 3, "mutation": 0.1}
    integration = make_integration(connection_config=config, connector_attributes={"stateful": True})
    first = sync_integration(actor=admin_user, integration=integration)
    assert first.full
    integration.refresh_from_db()
    state_before = integration.sync_state
    delta = sync_integration(actor=admin_user, integration=integration)
    assert not delta.full
    integration.refresh_from_db()
    assert integration.sync_state != state_before
    changed = {k: v for k, v in delta.counts.items() if k not in ("read", "filtered")}
    assert changed, "a 10% mutation changes something"
    after_delta = inventory(integration)

    # The same inventory as a full read of the application at the new generation.
    generation = integration.sync_state["std:account:list"]["generation"]
    twin = make_integration(connection_config={**config, "generation": generation})
    sync_integration(actor=admin_user, integration=twin, full=True)
    assert inventory(twin) == after_delta

    # Running the same delta window again changes nothing.
    integration.sync_state = state_before
    integration.save()
    again = sync_integration(actor=admin_user, integration=integration)
    assert inventory(integration) == after_delta
    assert not {
        k: v for k, v in again.counts.items() if k not in ("read", "filtered") and "external" not in k
    }


def test_filters_exclude_objects_and_are_counted(make_integration, admin_user):
    integration = make_integration(
        connector_attributes={"account.filterString": 'employeeType == "contractor"'},
    )
    result = sync_integration(actor=admin_user, integration=integration, full=True)
    listed, _ = integration.connector.invoke("std:account:list", {**DEMO_CONFIG})
    contractors = {o["identity"] for o in listed if o["attributes"].get("employeeType") == "contractor"}
    assert contractors and result.counts["filtered"] == len(contractors)
    synced = set(Account.objects.filter(integration=integration).values_list("external_id", flat=True))
    assert synced == {o["identity"] for o in listed} - contractors


def test_recommended_owners_and_maintainers_apply_when_enabled(
    scripted, script, admin_user, django_user_model
):
    dana = django_user_model.objects.create(username="dana", email="dana@example.com")
    script.groups = [
        {"id": "g1", "owner": "dana", "maintainers": ["owner@example.com"]},
        {"id": "g2", "owner": "ghost"},
    ]
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert Resource.objects.get(external_id="g1").owner is None  # flags off
    scripted.auto_assign_recommended_owners = scripted.auto_assign_recommended_maintainers = True
    scripted.save()
    sync_integration(actor=admin_user, integration=scripted, full=True)
    g1 = Resource.objects.get(external_id="g1")
    assert g1.owner == dana
    assert [m.user.username for m in g1.maintainers.all()] == ["owner"]
    assert Resource.objects.get(external_id="g2").owner is None  # no such user


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()


def test_external_permission_changes_are_audited_and_notified(
    scripted, script, admin_user, settings, webhook
):
    url, received = webhook
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert not AuditEvent.objects.filter(
        action__startswith="permission.external"
    ).exists()  # first sync: baseline
    script.accounts[1]["groups"] = ["g2", "g3"]  # bob gets g3 in the application
    script.accounts[0]["groups"] = ["g1"]  # alice loses g2
    sync_integration(actor=admin_user, integration=scripted, full=True)
    actions = sorted(
        AuditEvent.objects.filter(action__startswith="permission.external").values_list(
            "action", "object_repr"
        )
    )
    assert actions == [
        ("permission.external_grant", "bob → g3 · member"),
        ("permission.external_revoke", "alice → g2 · member"),
    ]
    assert mail.outbox == [] and received == []  # not notified: the flag is off

    services.integration_update(
        actor=admin_user,
        integration=scripted,
        notify_external_permission_changes=True,
        notification_webhook_url=url,
    )
    script.accounts[2]["groups"] = ["g1"]
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {"owner@example.com", admin_user.email}
    assert "carol → g1 · member" in mail.outbox[0].body
    assert len(received) == 1
    content_type, payload = received[0]
    assert content_type == "application/json" and "carol → g1 · member" in payload["text"]


@jobs_db
def test_sync_start_runs_a_job_with_progress_and_refuses_a_second(
    scripted, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(actor=admin_user, integration=scripted, full=True)  # no broker: runs in-process
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.counts["accounts_created"] == 3 and job.done == 6
    assert job.started_at and job.finished_at and "Full sync done" in job.log[-1]["message"]

    running = Job.objects.create(kind="sync", integration_id=scripted.pk, status=Job.Status.RUNNING)
    second = sync_start(actor=admin_user, integration=scripted)
    assert second.status == Job.Status.SKIPPED and str(running.pk) in second.log[-1]["message"]
    assert Job.objects.filter(integration_id=scripted.pk, status__in=["queued", "running"]).count() == 1


def test_cancel_stops_the_sync_and_writes_nothing(scripted, script, admin_user):
    calls = []
    script.accounts = [{"id": f"u{n}", "groups": ["g1"]} for n in range(3000)]
    with pytest.raises(SyncCancelled):
        sync_integration(
            actor=admin_user,
            integration=scripted,
            full=True,
            should_cancel=lambda: calls.append(1) or len(calls) > 1,
        )
    assert not Account.objects.filter(integration=scripted).exists()
    assert AuditEvent.objects.filter(action="integration.sync_cancelled").exists()


def test_cancelling_a_queued_job(scripted, admin_user):
    job = Job.objects.create(kind="sync", integration_id=scripted.pk, status=Job.Status.QUEUED)
    job_cancel(actor=admin_user, job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.cancel_requested


@jobs_db
def test_due_integrations_and_the_beat_tick(make_integration, admin_user, django_capture_on_commit_callbacks):
    never = make_integration(name="Never synced")
    fresh = make_integration(name="Fresh")
    stale = make_integration(name="Stale")
    now = timezone.now()
    Integration.objects.filter(pk=fresh.pk).update(
        resources_last_synced_at=now, permissions_last_synced_at=now, last_synced_at=now
    )
    Integration.objects.filter(pk=stale.pk).update(
        resources_last_synced_at=now - timedelta(hours=2), permissions_last_synced_at=now - timedelta(hours=3)
    )
    due = {i.name: full for i, full in due_integrations(now)}
    assert due == {"Never synced": True, "Stale": None}  # stale: discovery due, the daily full sync not yet
    with django_capture_on_commit_callbacks(execute=True):
        assert tick() == 2
    assert set(Job.objects.filter(kind="sync").values_list("integration_id", "status")) == {
        (never.pk, "succeeded"),
        (stale.pk, "succeeded"),
    }


@jobs_db
def test_manage_py_sync_waits_with_progress(make_integration, capsys):
    integration = make_integration(name="CLI")
    call_command("sync", "CLI", "--full", "--wait")
    out = capsys.readouterr().out
    assert "queued for CLI" in out and "Full sync done" in out
    assert Account.objects.filter(integration=integration).count() == DEMO_CONFIG["users"]


# -- the PostgreSQL write paths: a first sync COPies straight in, later ones merge -------------------------


def implications(integration):
    return set(
        RoleImplication.objects.filter(role__integration=integration).values_list(
            "role__external_id", "implied_role__external_id"
        )
    )


def test_a_first_sync_and_a_merge_into_existing_rows_build_the_same_inventory(make_integration, admin_user):
    config = {**DEMO_CONFIG, "users": 300, "groups": 25, "memberships": 3}
    fresh = make_integration(connection_config=config)
    sync_integration(actor=admin_user, integration=fresh, full=True)

    merged = make_integration(connection_config=config)  # not empty: the merge path, which also removes
    stale = Resource.objects.create(integration=merged, external_id="gone", name="gone")
    result = sync_integration(actor=admin_user, integration=merged, full=True)

    assert inventory(merged) == inventory(fresh)
    assert inventory(fresh)["permissions"], "the demo organisation holds permissions"
    stale.refresh_from_db()
    assert stale.removed_at is not None and result.counts["resources_removed"] == 1
    listed, _ = fresh.connector.invoke("std:entitlement:list", config)
    wanted = {(e["identity"], i) for e in listed for i in e["attributes"].get("implies", [])}
    assert wanted and implications(fresh) == wanted == implications(merged)


def test_implied_roles_follow_the_application(scripted, script, admin_user):
    sync_integration(actor=admin_user, integration=scripted, full=True)
    g1, g2, g3 = (Role.objects.get(integration=scripted, external_id=g) for g in ("g1", "g2", "g3"))
    RoleImplication.objects.create(role=g1, implied_role=g2)  # as if an earlier run had found it
    script.groups = [{"id": "g1", "implies": ["g3"]}, {"id": "g2"}, {"id": "g3"}]
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert implications(scripted) == {("g1", "g3")}


def test_a_first_sync_links_implied_roles_listed_before_with_or_after_them(
    scripted, script, admin_user, monkeypatch
):
    monkeypatch.setattr("integrations.sync.reader.BATCH_SIZE", 2)
    script.groups = [
        {"id": "viewer"},
        {"id": "admin", "implies": ["viewer", "member", "member", "admin", "owner", "missing"]},
        {"id": "member", "implies": ["viewer"]},  # same batch as admin
        {"id": "owner"},  # a later batch
    ]
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert implications(scripted) == {
        ("admin", "viewer"),
        ("admin", "member"),
        ("admin", "owner"),
        ("member", "viewer"),
    }


def test_a_key_sent_twice_to_an_integration_that_has_data_is_named(scripted, script, admin_user):
    sync_integration(actor=admin_user, integration=scripted, full=True)
    before = inventory(scripted)
    script.accounts.append({"id": "bob", "groups": []})
    with pytest.raises(SyncError, match="account 'bob' twice"):
        sync_integration(actor=admin_user, integration=scripted, full=True)
    assert inventory(scripted) == before


def test_a_failed_write_stops_the_reading_thread(scripted, script, admin_user, monkeypatch):
    script.accounts = [{"id": f"u{n}", "groups": ["g1"]} for n in range(50)]
    monkeypatch.setattr("integrations.sync.reader.BATCH_SIZE", 5)

    def broken(self, rows):
        raise DatabaseError("disk full")

    monkeypatch.setattr("integrations.sync.postgres._PgIngest.accounts", broken)
    with pytest.raises(SyncError, match="disk full"):
        sync_integration(actor=admin_user, integration=scripted, full=True)
    assert not [t for t in threading.enumerate() if t.name.startswith("sync ")]
    assert not Account.objects.filter(integration=scripted).exists()


def test_statistics_follow_a_bulk_load(make_integration, admin_user):
    config = {**DEMO_CONFIG, "users": 3000, "groups": 100, "memberships": 4}
    integration = make_integration(connection_config=config)
    result = sync_integration(actor=admin_user, integration=integration, full=True)
    with connection.cursor() as c:
        c.execute("SELECT reltuples FROM pg_class WHERE relname = 'integrations_permission'")
        estimate = c.fetchone()[0]
    # The planner sees the rows this sync wrote (ANALYZE in the sync's own transaction).
    assert estimate >= 0.8 * result.counts["permissions_created"] >= 0.8 * 3000 * 3


def test_a_first_sync_stores_text_exactly(scripted, script, admin_user):
    """A first sync formats its rows as COPY text: tabs, newlines and backslashes arrive as sent."""
    odd = "tab\there, line\nbreak, back\\slash, cr\r, \\N"
    script.groups = [{"id": f"g\\{odd}", "owner": odd}]
    script.accounts = [{"id": f"a\t{odd}", "email": "x\\y@example.com", "groups": [f"g\\{odd}"], "note": odd}]
    sync_integration(actor=admin_user, integration=scripted, full=True)
    role = Role.objects.get(integration=scripted)
    account = Account.objects.get(integration=scripted)
    assert role.external_id == f"g\\{odd}" and role.attributes["owner"] == odd
    assert (account.external_id, account.email, account.attributes["note"]) == (
        f"a\t{odd}",
        "x\\y@example.com",
        odd,
    )
    assert Permission.objects.get(account=account).role == role


def test_a_failure_of_the_sync_itself_while_reading_is_not_blamed_on_the_connector(
    scripted, script, admin_user, monkeypatch
):
    def broken(self, rows):
        raise DatabaseError("no ids left")

    monkeypatch.setattr("integrations.sync.postgres._PgIngest._format_accounts", broken)
    with pytest.raises(SyncError) as failure:
        sync_integration(actor=admin_user, integration=scripted, full=True)
    assert str(failure.value) == "Sync of Scripted failed: DatabaseError: no ids left"
    assert not Account.objects.filter(integration=scripted).exists()


@jobs_db
def test_deleting_an_integration_waits_for_its_sync_and_takes_what_it_wrote(scripted, script, admin_user):
    """The inventory has no foreign-key constraints in the database: a sync holds its integration instead."""
    script.groups = [{"id": "g1", "implies": ["g2"]}, {"id": "g2"}]
    paused, release = threading.Event(), threading.Event()

    def on_account(n):
        if n == 1:
            paused.set()
            release.wait(20)

    script.on_account = on_account
    outcome = {}

    def in_thread(name, work):
        try:
            outcome[name] = work()
        except Exception as exc:
            outcome[name] = exc
        finally:
            connection.close()

    sync = threading.Thread(
        target=in_thread, args=("sync", lambda: sync_integration(actor=admin_user, integration=scripted))
    )
    sync.start()
    assert paused.wait(20)  # resources and roles written, accounts on their way, nothing committed
    deleter = threading.Thread(
        target=in_thread,
        args=("delete", lambda: services.integration_delete(actor=admin_user, integration=scripted)),
    )
    deleter.start()
    deleter.join(1.0)
    assert deleter.is_alive()  # waiting for the sync
    release.set()
    sync.join(30)
    deleter.join(30)
    assert outcome["sync"].counts["permissions_created"] == 3
    assert outcome["delete"]["integrations.Permission"] == 3
    with connection.cursor() as c:
        for table in ("resource", "role", "account", "permission"):
            c.execute(f"SELECT count(*) FROM integrations_{table} WHERE integration_id = %s", [scripted.pk])
            assert c.fetchone()[0] == 0, table
        c.execute("SELECT count(*) FROM integrations_roleimplication")
        assert c.fetchone()[0] == 0
    with pytest.raises(SyncError, match="the integration was deleted"):
        sync_integration(actor=admin_user, integration=scripted)


def test_the_gil_is_handed_over_promptly_only_while_a_sync_reads(scripted, script, admin_user):
    before, during = sys.getswitchinterval(), []
    script.on_account = lambda n: during.append(sys.getswitchinterval())
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert during and set(during) == {min(before, _Reader.SWITCH_INTERVAL)}
    assert sys.getswitchinterval() == before
