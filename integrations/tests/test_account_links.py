"""Who holds each account: syncs link by correlation only what nobody else decided, on both writers.

Each sync test runs twice on the real PostgreSQL: with its COPY/merge writer, and with the ORM writer
(``_Ingest``, the embedded SQLite default's) put in its place.
"""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.http import HttpRequest
from django.test.utils import CaptureQueriesContext

from governance.models import AuditEvent, User
from integrations.models import Account, Integration, Resource, Role
from integrations.selectors import uncorrelated_accounts, uncorrelated_counts
from integrations.services.accounts import account_link, account_set_service
from integrations.sync import sync_integration
from integrations.sync.ingest import _Ingest

from .scripted import Script, install
from .test_sync import rows_written

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["postgres", "orm"])
def writer(request, monkeypatch):
    """The sync's writer: PostgreSQL's own, or the ORM writer on the same database."""
    if request.param == "orm":
        monkeypatch.setattr("integrations.sync.run._PgIngest", _Ingest)
    return request.param


@pytest.fixture
def script(monkeypatch):
    s = Script()
    install(monkeypatch, s)
    s.groups = [{"id": "g1"}]
    s.accounts = [
        {"id": "ann", "email": "Ann@Example.com", "groups": ["g1"]},
        {"id": "bob", "email": "bob@example.com", "groups": ["g1"]},
        {"id": "cat", "groups": []},
        {"id": "svc-backup", "email": "dan@example.com", "groups": ["g1"]},
        {"id": "eve", "email": "eve@example.com", "groups": []},
    ]
    return s


@pytest.fixture
def people(db):
    make = User.objects.create_user
    return {n: make(n, f"{n}@example.com", "pw") for n in ("ann", "bob", "cat", "dan", "eve", "fay")}


@pytest.fixture
def scripted(make_integration, script):
    return make_integration(name="Scripted", application="scripted", connection_config={})


def links(integration) -> dict[str, tuple]:
    """external id -> (username or None, link source, service account, owner's username or None)."""
    return {
        a.external_id: (
            a.user.username if a.user else None,
            a.link_source,
            a.service_account,
            a.owner.username if a.owner else None,
        )
        for a in Account.objects.filter(integration=integration).select_related("user", "owner")
    }


def account(external_id: str) -> Account:
    return Account.objects.get(external_id=external_id)


def test_a_sync_links_by_email_and_says_so(writer, scripted, people, admin_user):
    sync_integration(actor=admin_user, integration=scripted, full=True)  # a first sync: COPY on PostgreSQL
    assert links(scripted) == {
        "ann": ("ann", "correlation", False, None),  # case-insensitively
        "bob": ("bob", "correlation", False, None),
        "cat": (None, "", False, None),
        "svc-backup": ("dan", "correlation", False, None),
        "eve": ("eve", "correlation", False, None),
    }
    assert set(uncorrelated_accounts(scripted).values_list("external_id", flat=True)) == {"cat"}


def test_syncs_keep_grant_and_hand_links_and_service_accounts(writer, scripted, script, people, admin_user):
    sync_integration(actor=admin_user, integration=scripted, full=True)
    account_link(actor=admin_user, account=account("cat"), user=people["cat"])  # nobody's email: by hand
    account_link(actor=admin_user, account=account("bob"), user=None)  # not bob's after all
    account_link(actor=admin_user, account=account("eve"), user=people["fay"])  # eve's email, fay's account
    account_set_service(actor=admin_user, account=account("svc-backup"), owner=people["dan"])
    Account.objects.filter(external_id="ann").update(
        user=people["fay"], link_source="grant"
    )  # as a grant does
    decided = {
        "ann": ("fay", "grant", False, None),
        "bob": (None, "hand", False, None),
        "cat": ("cat", "hand", False, None),
        "svc-backup": (None, "hand", True, "dan"),
        "eve": ("fay", "hand", False, None),
    }
    assert links(scripted) == decided
    script.accounts[2]["email"] = "ann@example.com"  # their emails change, too
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert links(scripted) == decided
    if writer == "postgres":  # an unchanged account is not rewritten
        written = rows_written()
        sync_integration(actor=admin_user, integration=scripted, full=True)
        assert rows_written() == written
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert links(scripted) == decided


def test_a_correlation_link_follows_the_email(writer, scripted, script, people, admin_user, monkeypatch):
    monkeypatch.setattr("integrations.sync.ingest._Ingest.CORRELATE_CHUNK", 2)  # several UPDATEs per batch
    sync_integration(actor=admin_user, integration=scripted, full=True)
    script.accounts[0]["email"] = "bob@example.com"  # ann's account now has bob's email
    script.accounts[1]["email"] = "gone@example.com"  # bob's, an email nobody has
    script.accounts[2]["email"] = "CAT@example.com"  # cat's gets one
    script.accounts[4]["email"] = "fay@example.com"
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert links(scripted) == {
        "ann": ("bob", "correlation", False, None),
        "bob": (None, "", False, None),
        "cat": ("cat", "correlation", False, None),
        "svc-backup": ("dan", "correlation", False, None),
        "eve": ("fay", "correlation", False, None),
    }


def test_the_correlation_lowers_any_letter_and_skips_an_email_two_people_share(
    writer, scripted, script, people, admin_user
):
    User.objects.create_user("ines", "INES.MÜLLER@example.com", "pw")
    User.objects.create_user("ann2", "ann@EXAMPLE.com", "pw")  # ann's email, a second time
    script.accounts[2]["email"] = "ines.müller@example.com"
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert links(scripted)["cat"] == ("ines", "correlation", False, None)
    assert links(scripted)["ann"] == (None, "", False, None)  # whose? a person decides


def test_an_unlink_by_hand_sticks_and_a_service_account_given_back_correlates_again(
    writer, scripted, people, admin_user
):
    sync_integration(actor=admin_user, integration=scripted, full=True)
    account_link(actor=admin_user, account=account("ann"), user=None)
    account_set_service(actor=admin_user, account=account("svc-backup"), owner=people["dan"])
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert links(scripted)["ann"] == (None, "hand", False, None)
    assert links(scripted)["svc-backup"] == (None, "hand", True, "dan")
    assert set(uncorrelated_accounts(scripted).values_list("external_id", flat=True)) == {"ann", "cat"}
    account_set_service(actor=admin_user, account=account("svc-backup"), owner=None)
    assert links(scripted)["svc-backup"] == (None, "", False, None)
    sync_integration(actor=admin_user, integration=scripted, full=True)
    assert links(scripted)["svc-backup"] == ("dan", "correlation", False, None)


# -- the services and their rule ---------------------------------------------------------------------------


@pytest.fixture
def managed(scripted, people, admin_user):
    """Scripted after a sync, owned by ann and maintained by bob."""
    from integrations import services

    sync_integration(actor=admin_user, integration=scripted, full=True)
    services.integration_update(actor=admin_user, integration=scripted, owner=people["ann"])
    services.maintainer_add(actor=admin_user, integration=scripted, user=people["bob"])
    return scripted


def test_linking_is_audited_by_name_with_who_held_it(managed, people):
    ann, cat = people["ann"], people["cat"]
    account_link(actor=ann, account=account("cat"), user=cat)
    account_link(actor=ann, account=account("cat"), user=cat)  # no change: no event
    account_link(actor=ann, account=account("cat"), user=None)
    account_set_service(actor=ann, account=account("cat"), owner=people["dan"])
    events = list(AuditEvent.objects.filter(object_id=str(account("cat").pk)).order_by("id"))
    assert [(e.action, e.actor_id, e.integration_id) for e in events] == [
        ("account.linked", ann.pk, managed.pk),
        ("account.unlinked", ann.pk, managed.pk),
        ("account.service_account", ann.pk, managed.pk),
    ]
    nobody = {"user_id": None, "link_source": "", "service_account": False, "owner_id": None}
    assert events[0].details == {
        "before": nobody,
        "after": {**nobody, "user_id": cat.pk, "link_source": "hand"},
    }
    assert events[1].details["after"] == {**nobody, "link_source": "hand"}
    assert events[2].details["after"] == {
        "user_id": None,
        "link_source": "hand",
        "service_account": True,
        "owner_id": people["dan"].pk,
    }


def test_nobody_decides_who_holds_an_account_about_themselves(managed, people, admin_user):
    ann, bob = people["ann"], people["bob"]
    with pytest.raises(PermissionDenied, match="Nobody links an account to themselves"):
        account_link(actor=bob, account=account("cat"), user=bob)
    with pytest.raises(PermissionDenied, match="Nobody links an account to themselves"):
        account_link(actor=admin_user, account=account("cat"), user=admin_user)  # admins neither
    with pytest.raises(PermissionDenied, match="Nobody changes who holds their own account"):
        account_link(actor=bob, account=account("bob"), user=None)  # bob's own account, by correlation
    with pytest.raises(PermissionDenied, match="owner of a service account"):
        account_set_service(actor=bob, account=account("cat"), owner=bob)
    with pytest.raises(PermissionDenied, match="their own account a service account"):
        account_set_service(actor=bob, account=account("bob"), owner=ann)
    account_link(actor=ann, account=account("bob"), user=None)  # another manager does
    account_set_service(actor=ann, account=account("cat"), owner=bob)
    assert links(managed)["bob"] == (None, "hand", False, None)
    assert links(managed)["cat"] == (None, "hand", True, "bob")
    with pytest.raises(PermissionDenied, match="managers of its integration"):
        account_link(actor=people["eve"], account=account("cat"), user=ann)  # manages nothing


def test_the_person_chosen_is_an_active_user_and_a_service_account_has_no_holder(managed, people):
    ann, dan = people["ann"], people["dan"]
    dan.is_active = False
    dan.save()
    with pytest.raises(ValidationError, match="not an active portal user"):
        account_link(actor=ann, account=account("cat"), user=dan)
    with pytest.raises(ValidationError, match="not an active portal user"):
        account_set_service(actor=ann, account=account("cat"), owner=dan)
    account_set_service(actor=ann, account=account("cat"), owner=people["eve"])
    with pytest.raises(ValidationError, match="service account"):
        account_link(actor=ann, account=account("cat"), user=people["fay"])
    assert links(managed)["cat"] == (None, "hand", True, "eve")


def test_deleting_a_person_leaves_their_accounts_and_service_accounts(managed, people):
    account_set_service(actor=people["ann"], account=account("cat"), owner=people["dan"])
    people["dan"].delete()
    people["eve"].delete()
    assert links(managed)["cat"] == (None, "hand", True, None)  # still a service account: nobody answers
    assert links(managed)["eve"] == (None, "correlation", False, None)  # the next sync clears its link


def test_uncorrelated_counts_in_one_grouped_query_on_a_partial_index(managed, make_integration, people):
    other = make_integration(name="Other")
    Account.objects.create(integration=other, external_id="x", identity="x")
    Account.objects.create(integration=other, external_id="y", identity="y", removed_at="2024-01-01T00:00Z")
    Account.objects.create(integration=other, external_id="z", identity="z", service_account=True)
    empty = make_integration(name="Empty")
    with CaptureQueriesContext(connection) as queries:
        counts = uncorrelated_counts([managed.pk, other.pk, empty.pk])
    assert counts == {managed.pk: 1, other.pk: 1}
    assert len(queries) == 1 and "GROUP BY" in queries[0]["sql"]
    # The partial index holding exactly these (bench/screens_bench.py times it among a million accounts).
    with connection.cursor() as c:
        c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'account_uncorrelated_idx'")
        (definition,) = c.fetchone()
    assert "(integration_id, identity, id)" in definition
    assert "removed_at IS NULL" in definition and "user_id IS NULL" in definition
    assert "NOT service_account" in definition


# -- the demo: an access grant, then a sync ----------------------------------------------------------------


@pytest.fixture
def demo(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the demo application keeps what the portal provisions under it
    settings.CONNECTOR_FILES_DIR = tmp_path / "connector-files"
    settings.DEBUG = True
    call_command("demo", scale=0.05, verbosity=0)


def test_an_access_grant_then_a_sync_keeps_the_link(
    writer, demo, client, admin_user, django_capture_on_commit_callbacks
):
    """The demo's journey: dorothy's request granted (the portal creates her account), then "Sync now"."""
    from access.models import AccessRequest
    from access.selectors import requestable_roles
    from integrations.selectors import effective_settings

    directory = Integration.objects.get(name="Corporate Directory")
    dorothy = User.objects.get(username="dorothy")
    assert not Account.objects.filter(integration=directory, user=dorothy).exists()
    assert client.login(request=HttpRequest(), username="dorothy", password="demo")
    role = requestable_roles().filter(integration=directory).first()
    duration = effective_settings(role).allowed_durations[0]
    client.post(f"/request/{role.pk}/", {"duration": duration, "justification": "on call"})
    access = AccessRequest.objects.get(role=role, beneficiary=dorothy)
    assert client.login(request=HttpRequest(), username="annie", password="demo")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/requests/{access.pk}/approve", {"comment": "ok"})
    access.refresh_from_db()
    assert access.status == "granted", access.error
    held = Account.objects.get(pk=access.account_id)
    assert (held.user, held.link_source) == (dorothy, "grant")
    sync_integration(actor=User.objects.get(username="admin"), integration=directory, full=True)
    held.refresh_from_db()
    assert (held.user, held.link_source, held.removed_at) == (dorothy, "grant", None)
    client.force_login(User.objects.get(username="admin"))
    page = client.get(f"/accounts/{held.pk}/").content.decode()
    assert "dorothy" in page.lower() and "Linked by an access grant" in page


# -- upgrading in place ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_upgrading_keeps_every_account_and_says_how_each_was_linked(make_integration, people):
    """A database of the last release (no link sources): linked accounts were linked by correlation, and
    those an access request used for its beneficiary, still linked to them, by a grant."""
    from access.models import AccessRequest

    ann, bob = people["ann"], people["bob"]
    integration = make_integration(name="Upgraded")
    resource = Resource.objects.create(integration=integration, external_id="db", name="db")
    role = Role.objects.create(resource=resource, external_id="db-read", name="read")
    columns = "SELECT external_id, identity, email, user_id, enabled FROM integrations_account ORDER BY id"
    try:
        call_command("migrate", "integrations", "0012", verbosity=0)  # the last release's schema
        with connection.cursor() as c:
            for external_id, user in (("a", ann), ("b", bob), ("c", None), ("d", bob)):
                c.execute(
                    "INSERT INTO integrations_account (integration_id, external_id, identity, email, user_id,"
                    " enabled, attributes, first_seen_at, last_seen_at, created_at, updated_at)"
                    " VALUES (%s, %s, %s, '', %s, true, '{}', now(), now(), now(), now()) RETURNING id",
                    [integration.pk, external_id, external_id, user.pk if user else None],
                )
                if external_id in ("a", "d"):  # a: granted to ann, linked to her; d: to ann, linked to bob
                    AccessRequest.objects.create(
                        requester=ann, beneficiary=ann, integration=integration, role=role, duration="1d",
                        justification="upgrade", status="granted", account_id=c.fetchone()[0],
                    )  # fmt: skip
            c.execute(columns)
            before = c.fetchall()
        call_command("migrate", verbosity=0)  # the upgrade
    finally:
        call_command("migrate", verbosity=0)  # whatever happened, the next test gets today's schema
    with connection.cursor() as c:
        c.execute(columns)
        assert c.fetchall() == before  # every row, unchanged
    assert links(integration) == {
        "a": ("ann", "grant", False, None),
        "b": ("bob", "correlation", False, None),
        "c": (None, "", False, None),
        "d": ("bob", "correlation", False, None),
    }
