"""The admin screens through the Django test client: each screen, its forms, bad input and who may see what."""

import json

import pytest

from conftest import DEMO_CONFIG
from governance.models import AuditEvent, Job
from integrations import services
from integrations.models import (
    Integration,
    Maintainer,
    PrerequisitePermission,
    Resource,
    Role,
    RoleImplication,
    Rule,
)
from integrations.services import rules as rule_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def inventory(integration):
    resources = [
        Resource.objects.create(integration=integration, external_id=f"r{i}", name=f"db-{i}")
        for i in range(3)
    ]
    roles = [
        Role.objects.create(resource=r, external_id=f"{r.external_id}-{n}", name=n)
        for r in resources
        for n in ("read", "write")
    ]
    return resources, roles


# -- access control ------------------------------------------------------------------------------
def test_anonymous_is_sent_to_the_styled_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/login/")
    page = client.get(response.url)
    assert b"Sign in to your account" in page.content and b"tabler.min.css" in page.content


def test_login_and_logout(client, django_user_model):
    django_user_model.objects.create_user("ana", password="pw-12345", is_staff=True)
    response = client.post("/login/", {"username": "ana", "password": "wrong"})
    assert response.status_code == 200 and b"Please enter a correct username" in response.content
    response = client.post("/login/", {"username": "ana", "password": "pw-12345"})
    assert response.status_code == 302 and response.url == "/"
    out = client.post("/logout/")
    # The portal's own page (not the Django admin's), whose link signs in on the portal's screen.
    assert (
        out.status_code == 200 and b"You are signed out" in out.content and b'href="/login/"' in out.content
    )
    assert client.get("/").status_code == 302


def test_someone_who_manages_nothing_gets_the_styled_403(client, django_user_model, integration, inventory):
    client.force_login(django_user_model.objects.create_user("nobody"))
    home = client.get("/")
    assert home.status_code == 302 and home.url == "/request/"  # they come to request access
    catalogue = client.get("/request/")
    assert b"Request access" in catalogue.content and b"/integrations/" not in catalogue.content
    for url in [
        "/integrations/",
        f"/integrations/{integration.pk}/",
        "/resources/",
        "/audit/",
        "/rules/",
        "/bulk/",
    ]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"You are not allowed to see this page" in response.content


def test_owner_sees_and_edits_only_their_integration(client, django_user_model, make_integration):
    owner = django_user_model.objects.create_user("olga")
    mine = make_integration(name="Mine", owner=owner)
    other = make_integration(name="Other")
    client.force_login(owner)
    listing = client.get("/integrations/")
    assert b"Mine" in listing.content and b"Other" not in listing.content
    assert client.get(f"/integrations/{mine.pk}/").status_code == 200
    assert client.get(f"/integrations/{other.pk}/").status_code == 404  # as in the API
    assert client.get("/rules/").status_code == 403  # rules span integrations: admins only
    assert client.get("/integrations/add/").status_code == 403
    r_other = Resource.objects.create(integration=other, external_id="x", name="x")
    assert client.post(f"/resources/{r_other.pk}/settings", {"name": "hacked"}).status_code == 404
    assert Resource.objects.get(pk=r_other.pk).name == "x"


def test_resource_maintainer_lands_on_resources(client, django_user_model, integration, inventory):
    user = django_user_model.objects.create_user("mia")
    resource = inventory[0][0]
    services.maintainer_add(actor=None, resource=resource, user=user)
    client.force_login(user)
    assert client.get("/").url == "/resources/"
    listing = client.get("/resources/")
    assert listing.status_code == 200 and b"db-0" in listing.content and b"db-1" not in listing.content
    assert client.get(f"/resources/{resource.pk}/").status_code == 200
    assert client.get(f"/resources/{inventory[0][1].pk}/").status_code == 404  # as in the API


def test_unknown_and_deleted_objects_are_styled_404s(admin_client, integration, inventory):
    resource = inventory[0][0]
    services.integration_delete(actor=None, integration=integration)
    for url in [
        f"/integrations/{integration.pk}/",
        f"/resources/{resource.pk}/",
        "/roles/999999/",
        "/rules/999/",
        "/nowhere/",
    ]:
        response = admin_client.get(url)
        assert response.status_code == 404, url
        assert b"This page does not exist" in response.content


# -- integrations list ---------------------------------------------------------------------------
def test_integrations_list_search_filter_sort(admin_client, make_integration, admin_user):
    a = make_integration(name="Alpha", owner=admin_user)
    make_integration(name="Beta")
    Resource.objects.create(integration=a, external_id="1", name="one")
    Resource.objects.create(integration=a, external_id="2", name="two", removed_at="2020-01-01T00:00Z")
    page = admin_client.get("/")
    content = page.content.decode()
    assert (
        "Alpha" in content
        and "Beta" in content
        and "Add integration" in content
        and "Manage Rules" in content
    )
    assert page.context["table"].rows[0].get_cell("resources_count") == "1"  # removed resources do not count
    assert "Beta" not in admin_client.get("/integrations/?q=alp").content.decode()
    assert "Beta" not in admin_client.get(f"/integrations/?owner={admin_user.pk}").content.decode()
    rows = admin_client.get("/integrations/?sort=-name").context["table"].rows
    assert [r.record.name for r in rows] == ["Beta", "Alpha"]
    for sort, names in (("resources_count", ["Beta", "Alpha"]), ("-resources_count", ["Alpha", "Beta"])):
        rows = admin_client.get(f"/integrations/?sort={sort}").context["table"].rows
        assert [r.record.name for r in rows] == names, sort
    empty = admin_client.get("/integrations/?q=zzz").content.decode()
    assert "No integration matches" in empty


def test_list_badges_follow_the_last_sync_status(admin_client, make_integration):
    for name, status in (("Ok", "succeeded"), ("Broken", "failed"), ("Busy", "running")):
        Integration.objects.filter(pk=make_integration(name=name).pk).update(last_sync_status=status)
    rows = {
        r.record.name: r.get_cell("last_sync_status") for r in admin_client.get("/").context["table"].rows
    }
    assert 'class="badge bg-green-lt">Succeeded<' in rows["Ok"]
    assert 'class="badge bg-red-lt">Failed<' in rows["Broken"]
    assert 'class="badge bg-blue-lt">Running<' in rows["Busy"]


@pytest.mark.parametrize("url", ["/", "/resources/", "/roles/", "/bulk/?target=roles", "/audit/"])
def test_unset_filters_read_any(admin_client, integration, inventory, url):
    form = admin_client.get(url).context["filter"].form
    html = str(form)
    assert "---------" not in html and "Unknown" not in html
    for field in form.visible_fields():
        if field.field.widget.__class__.__name__ in ("Select", "NullBooleanSelect", "OneOfMany"):
            first = next(iter(field.field.widget.choices))
            assert first[1] in ("Any", "Any integration"), (field.name, first)
    if url in ("/resources/", "/roles/"):
        assert '<option value="true">Yes</option>' in html and '<option value="false">No</option>' in html


def test_an_invalid_filter_value_shows_nothing_and_says_why(admin_client, integration, inventory):
    page = admin_client.get("/resources/?integration=999999&requestable=true")
    assert page.status_code == 200 and page.context["table"].paginator.count == 0
    assert "Select a valid choice" in page.content.decode()
    assert admin_client.get("/resources/?requestable=true").context["table"].paginator.count == 3


def test_one_of_many_filters_keep_several_values_from_a_link(admin_client, make_integration):
    one, two, three = (make_integration(name=n) for n in ("One", "Two", "Three"))
    for i, integration in enumerate((one, two, three)):
        Resource.objects.create(integration=integration, external_id=f"x{i}", name=f"x{i}")
    both = admin_client.get(f"/resources/?integration={one.pk}&integration={two.pk}")
    assert {r.record.name for r in both.context["table"].rows} == {"x0", "x1"}
    picked = admin_client.get(f"/resources/?integration={three.pk}&integration=")
    assert [r.record.name for r in picked.context["table"].rows] == ["x2"]


@pytest.mark.parametrize("url", ["/integrations/", "/resources/", "/roles/"])
def test_list_query_count_does_not_grow_with_page_size(
    admin_client, integration, django_assert_max_num_queries, url, django_db_blocker
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tag = services.tags_for(["pii"])[0]
    for i in range(30):
        r = Resource.objects.create(integration=integration, external_id=f"q{i}", name=f"q{i}")
        r.tags.add(tag)
        Role.objects.create(resource=r, external_id=f"q{i}-r", name="read").tags.add(tag)
    counts = []
    for size in (5, 30):
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(f"{url}?per_page={size}").status_code == 200
        counts.append(len(ctx))
    assert counts[0] == counts[1], counts


INTEGRATIONS_QUERIES, RESOURCES_QUERIES, ROLES_QUERIES = 8, 10, 9


def test_list_query_counts_are_pinned(admin_client, integration, django_assert_num_queries):
    for i in range(30):
        r = Resource.objects.create(integration=integration, external_id=f"p{i}", name=f"p{i}")
        Role.objects.create(resource=r, external_id=f"p{i}-r", name="read")
    admin_client.get("/resources/")  # warm the session and content types
    # session, user, access check, filter-form choices, count, the page's ids, its rows, their tags
    for url, expected in (
        ("/integrations/", INTEGRATIONS_QUERIES),
        ("/resources/", RESOURCES_QUERIES),
        ("/roles/", ROLES_QUERIES),
    ):
        for size in (5, 25):
            with django_assert_num_queries(expected):
                assert admin_client.get(f"{url}?per_page={size}").status_code == 200


def test_roles_search_spans_the_resource_name_and_the_role_fields(admin_client, integration, inventory):
    resources, roles = inventory
    by_resource = admin_client.get("/roles/?q=DB-1").context["table"].rows
    assert {(r.record.resource.name, r.record.name) for r in by_resource} == {
        ("db-1", "read"),
        ("db-1", "write"),
    }
    by_name = admin_client.get(f"/roles/?q=writ&integration={integration.pk}").context["table"].rows
    assert sorted(r.record.pk for r in by_name) == sorted(r.pk for r in roles if r.name == "write")
    by_external_id = admin_client.get("/roles/?q=r2-read").context["table"].rows
    assert [r.record.external_id for r in by_external_id] == ["r2-read"]
    assert admin_client.get("/roles/?q=nothing-like-it").context["table"].paginator.count == 0


@pytest.mark.parametrize("sort", ["name", "-name"])
def test_pages_sorted_on_ties_never_repeat_or_skip_a_row(admin_client, integration, sort):
    resource = Resource.objects.create(integration=integration, external_id="same", name="same")
    Role.objects.bulk_create(
        Role(resource=resource, integration=integration, external_id=f"t{i}", name="read") for i in range(20)
    )
    seen = []
    for page in (1, 2, 3):
        rows = (
            admin_client.get(f"/roles/?sort={sort}&per_page=7&page={page}").context["table"].page.object_list
        )
        seen += [r.record.pk for r in rows]
    assert len(seen) == len(set(seen)) == 20


def test_search_and_sort_indexes_exist_on_postgresql():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm' OR indexname LIKE '%%name_idx'"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert {
        "integrations_resource_name_trgm",
        "integrations_resource_description_trgm",
        "integrations_resource_external_id_trgm",
        "integrations_role_name_trgm",
        "integrations_role_external_id_trgm",
        "resource_name_idx",
        "role_name_idx",
        "role_resource_name_idx",
    } <= names


# -- integration page ----------------------------------------------------------------------------
def test_integration_page_shows_every_section_and_never_a_secret(admin_client, integration, inventory):
    services.integration_update(
        actor=None,
        integration=integration,
        connection_config={**DEMO_CONFIG, "apiToken": "tok-screens-secret"},
    )
    content = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    for section in [
        "Settings",
        "Connection",
        "Sync",
        "Approval workflow",
        "Maintainers",
        "Prerequisite permissions",
        "Resources",
        "Audit log",
    ]:
        assert section in content, section
    assert "apiToken: set" in content and "password: not set" in content
    assert "tok-screens-secret" not in content
    assert "db-0" in content
    # Its resources: searchable in place, each row expandable into its roles (htmx).
    searched = admin_client.get(f"/integrations/{integration.pk}/?q=db-2").context["resource_table"]
    assert [r.record.name for r in searched.rows] == ["db-2"]
    assert f'hx-get="/resources/{inventory[0][2].pk}/roles"' in content


def test_settings_edit_and_errors(admin_client, integration):
    url = f"/integrations/{integration.pk}/settings"
    data = {
        "name": "Renamed",
        "requestable": "",
        "read_only": "on",
        "override_allowed_durations": "on",
        "allowed_durations": ["1h", "1d"],
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.name == "Renamed" and integration.read_only and not integration.requestable
    assert integration.allowed_durations == ["1h", "1d"]
    event = AuditEvent.objects.filter(action="integration.update").latest("id")
    assert event.details["changes"]["name"]["to"] == "Renamed"
    bad = admin_client.post(url, {"name": "", "override_allowed_durations": "on"})
    assert bad.status_code == 400
    assert "This field is required" in bad.content.decode()
    bad = admin_client.post(url, {"name": "X", "override_allowed_durations": "on"})
    assert bad.status_code == 400 and "Choose at least one duration" in bad.content.decode()


def test_connection_json_errors_name_line_and_column(admin_client, integration):
    url = f"/integrations/{integration.pk}/connection"
    response = admin_client.post(url, {"config": '{\n  "url": "https://x",\n  oops\n}'})
    assert response.status_code == 400
    assert "line 3, column 3" in response.content.decode()


def test_connection_sets_a_secret_and_refuses_unknown_filter_attribute(admin_client, integration):
    url = f"/integrations/{integration.pk}/connection"
    config = {k: v for k, v in DEMO_CONFIG.items() if k != "apiToken"}
    response = admin_client.post(url, {"config": json.dumps(config), "secret__password": "s3cret"})
    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.connection_secrets == {"apiToken": "demo", "password": "s3cret"}
    bad = admin_client.post(
        url, {"config": json.dumps(config), "connector_attributes": '{"account.filterString": "nosuch == 1"}'}
    )
    assert bad.status_code == 400 and "nosuch" in bad.content.decode()
    bad = admin_client.post(url, {"config": json.dumps(config), "connector_attributes": '{"colour": "x"}'})
    assert "Unknown connector attribute" in bad.content.decode()


def test_connection_screen_needs_the_secrets_again_for_a_new_address(client, integration, django_user_model):
    """A maintainer on the screen: a new URL without the token is refused, with the reason; with the token
    typed again it is saved."""
    maintainer = django_user_model.objects.create_user("maint", password="pw")
    services.maintainer_add(actor=None, integration=integration, user=maintainer)
    client.force_login(maintainer)
    url = f"/integrations/{integration.pk}/connection"
    config = {k: v for k, v in DEMO_CONFIG.items() if k != "apiToken"}
    moved = {**config, "url": "https://demo.example.com:443"}
    bad = client.post(url, {"config": json.dumps(moved)})
    html = bad.content.decode()
    assert bad.status_code == 400 and "give them again in the same change" in html
    assert html.index("The connection now goes elsewhere") < html.index("missing required config item")
    integration.refresh_from_db()
    assert integration.connection_config["url"] == DEMO_CONFIG["url"]
    assert integration.connection_secrets == {"apiToken": "demo"}
    assert client.post(url, {"config": json.dumps(moved), "secret__apiToken": "demo"}).status_code == 302
    integration.refresh_from_db()
    assert integration.connection_config["url"] == "https://demo.example.com:443"


def test_test_connection_reports_and_audits(admin_client, integration):
    response = admin_client.post(f"/integrations/{integration.pk}/test", HTTP_HX_REQUEST="true")
    assert "Connection succeeded" in response.content.decode()
    services.integration_update(
        actor=None, integration=integration, connection_config={**DEMO_CONFIG, "apiToken": "wrong"}
    )
    response = admin_client.post(f"/integrations/{integration.pk}/test", HTTP_HX_REQUEST="true")
    assert "Connection failed" in response.content.decode()
    assert AuditEvent.objects.filter(action="integration.test_connection", status="error").exists()


@pytest.mark.django_db(transaction=True, databases=["default", "jobs"])
def test_sync_now_and_progress_partial(admin_client, integration):
    response = admin_client.post(f"/integrations/{integration.pk}/sync")
    assert response.status_code == 302
    job = Job.objects.filter(kind="sync", integration_id=integration.pk).latest("created_at")
    assert job.status == "succeeded" and job.counts["resources_created"] == 10
    partial = admin_client.get(f"/integrations/{integration.pk}/sync/status").content.decode()
    assert "Succeeded" in partial and "Resources created" in partial and "hx-trigger" not in partial
    page = admin_client.get(f"/integrations/{integration.pk}/")
    assert list(page.context["syncs"]) == [job]
    assert "Last syncs" in page.content.decode() and "10 res" in page.content.decode()


def test_workflow_maintainers_prerequisites(
    admin_client, integration, inventory, workflow, django_user_model
):
    pk = integration.pk
    assert admin_client.post(f"/integrations/{pk}/workflow", {"workflow": workflow.pk}).status_code == 302
    integration.refresh_from_db()
    assert integration.default_workflow == workflow
    user = django_user_model.objects.create_user("maint")
    assert admin_client.post(f"/integrations/{pk}/maintainers", {"user": user.pk}).status_code == 302
    m = Maintainer.objects.get(integration=integration, user=user)
    bad = admin_client.post(f"/integrations/{pk}/maintainers", {})
    assert bad.status_code == 400 and "Choose one user or one group" in bad.content.decode()
    assert admin_client.post(f"/maintainers/{m.pk}/remove").status_code == 302
    assert not Maintainer.objects.filter(pk=m.pk).exists()
    role = inventory[1][0]
    assert (
        admin_client.post(f"/prerequisites/integration/{pk}/add", {"alternatives": [role.pk]}).status_code
        == 302
    )
    prerequisite = PrerequisitePermission.objects.get(integration=integration)
    assert list(prerequisite.alternatives.all()) == [role]
    assert (
        "Prerequisite not added"
        in admin_client.post(f"/prerequisites/integration/{pk}/add", {}, follow=True).content.decode()
    )
    options = admin_client.get("/roles/options?q=write").content.decode()
    assert "write" in options and ">read<" not in options


@pytest.mark.django_db(transaction=True, databases=["default", "jobs"])
def test_delete_names_counts_and_wants_the_name(
    admin_client, integration, inventory, django_capture_on_commit_callbacks
):
    url = f"/integrations/{integration.pk}/delete"
    page = admin_client.get(url).content.decode()
    assert "<strong>3</strong> resources" in page and "<strong>6</strong> roles" in page
    wrong = admin_client.post(url, {"confirm": "nope"})
    assert wrong.status_code == 400 and Integration.objects.filter(pk=integration.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"confirm": integration.name})
    job = Job.objects.get(kind="delete", integration_id=integration.pk)
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    assert job.status == Job.Status.SUCCEEDED
    assert not Integration.objects.filter(pk=integration.pk).exists()
    progress = admin_client.get(response.url).content.decode()
    assert f"Deleting {integration.name}" in progress and "Succeeded" in progress


# -- add integration -----------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True, databases=["default", "jobs"])
def test_add_integration_bad_then_good(admin_client):
    catalogue = admin_client.get("/integrations/add/").content.decode()
    assert "Demo organisation" in catalogue
    form = admin_client.get("/integrations/add/demo/").content.decode()
    assert "demo.example.com" in form and "How to connect" in form and "Requestable by default" in form
    assert "Demo connector" in form or "demo" in form.lower()
    config = {k: v for k, v in DEMO_CONFIG.items() if k != "connectionOption"}
    data = {
        "name": "Directory",
        "connection_option": "token",
        "config": json.dumps({**config, "apiToken": "wrong"}),
        "requestable": "on",
    }
    bad = admin_client.post("/integrations/add/demo/", data)
    assert bad.status_code == 400 and "The connection test failed" in bad.content.decode()
    assert not Integration.objects.filter(name="Directory").exists()
    broken = admin_client.post("/integrations/add/demo/", {**data, "config": "{"})
    assert "line 1, column 2" in broken.content.decode()
    good = admin_client.post("/integrations/add/demo/", {**data, "config": json.dumps(config)})
    integration = Integration.objects.get(name="Directory")
    assert good.status_code == 302 and good.url == f"/integrations/{integration.pk}/#sync"
    assert integration.requestable and not integration.read_only
    assert Job.objects.get(kind="sync", integration_id=integration.pk).status == "succeeded"
    assert Resource.objects.filter(integration=integration).count() == 10
    dup = admin_client.post("/integrations/add/demo/", {**data, "config": json.dumps(config)})
    assert "already exists" in dup.content.decode()
    assert admin_client.get("/integrations/add/nosuch/").status_code == 404


@pytest.mark.django_db(transaction=True, databases=["default", "jobs"])
def test_add_a_csv_integration_from_the_catalogue(admin_client):
    catalogue = admin_client.get("/integrations/add/").content.decode()
    assert 'data-testid="catalogue-csv"' in catalogue and "Delimited file (CSV)" in catalogue
    assert 'src="/catalogue/csv/icon"' in catalogue
    icon = admin_client.get("/catalogue/csv/icon")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    form = admin_client.get("/integrations/add/csv/").content.decode()
    assert "A file on the server" in form and "Pasted CSV" in form  # the two ways to connect
    assert "people.csv" in form and "# Delimited file (CSV) connector" in form  # example and docs
    config = {"content": "employeeId,displayName,groups\nE1,Ann,admins\nE2,Bob,\n", "identityColumn": "id"}
    data = {"name": "HR", "connection_option": "content", "config": json.dumps(config), "read_only": "on"}
    bad = admin_client.post("/integrations/add/csv/", data).content.decode()
    assert "The connection test failed" in bad and "no column &#x27;id&#x27; (identityColumn)" in bad
    config["identityColumn"] = "employeeId"
    good = admin_client.post("/integrations/add/csv/", {**data, "config": json.dumps(config)})
    integration = Integration.objects.get(name="HR")
    assert good.status_code == 302 and integration.read_only
    assert Job.objects.get(kind="sync", integration_id=integration.pk).status == "succeeded"
    assert Resource.objects.filter(integration=integration).count() == 1


# -- resource and role pages ---------------------------------------------------------------------
def test_resource_page_and_edit(admin_client, integration, inventory, admin_user):
    resource = inventory[0][0]
    read, write = inventory[1][0], inventory[1][1]
    services.role_set_implied_roles(actor=None, role=write, implied=[read])
    page = admin_client.get(f"/resources/{resource.pk}/").content.decode()
    assert "Granted automatically by" in page and "Permissions granted" in page
    data = {
        "name": "orders",
        "description": "Orders DB",
        "owner": admin_user.pk,
        "tags": "pii, prod",
        "requestable": "on",
    }
    assert admin_client.post(f"/resources/{resource.pk}/settings", data).status_code == 302
    resource.refresh_from_db()
    assert resource.owner == admin_user and sorted(t.name for t in resource.tags.all()) == ["pii", "prod"]
    bad = admin_client.post(f"/resources/{resource.pk}/settings", {"override_allowed_durations": "on"})
    assert bad.status_code == 400
    role_page = admin_client.get(f"/roles/{read.pk}/")
    assert role_page.context["grants"]["granted_by"] == [write]
    assert (
        admin_client.post(
            f"/roles/{read.pk}/settings", {"tags": "x", "override_allowed_durations": "on"}
        ).status_code
        == 400
    )
    assert (
        admin_client.post(
            f"/roles/{read.pk}/settings", {"override_allowed_durations": "on", "allowed_durations": ["1h"]}
        ).status_code
        == 302
    )
    read.refresh_from_db()
    assert read.allowed_durations == ["1h"] and not read.requestable
    partial = admin_client.get(f"/resources/{resource.pk}/roles").content.decode()
    assert "read" in partial and "write" in partial


def test_resource_and_role_pages_count_and_list_the_holders(
    admin_client, integration, inventory, django_user_model
):
    from django.utils import timezone

    from integrations.models import Account, Permission

    resource, (read, write) = inventory[0][0], inventory[1][:2]
    ada, bob = (django_user_model.objects.create_user(n) for n in ("ada", "bob"))
    accounts = [
        Account.objects.create(integration=integration, external_id=f"a{i}", identity=f"acct-{i}", user=user)
        for i, user in enumerate((ada, bob, None))
    ]
    expiry = timezone.now() + timezone.timedelta(days=3)
    Permission.objects.create(account=accounts[0], role=read, source="portal", expires_at=expiry)
    Permission.objects.create(account=accounts[1], role=read, source="external")
    Permission.objects.create(account=accounts[2], role=write, source="external")
    Permission.objects.create(account=accounts[0], role=write, source="external", ended_at=timezone.now())
    page = admin_client.get(f"/resources/{resource.pk}/")
    assert page.context["stats"] == {"permissions": 3, "accounts": 3, "users": 2}
    html = page.content.decode()
    assert f"/bulk/?target=roles&resource={resource.pk}" in html  # its bulk actions
    assert {role.name: role.holders for role, _ in page.context["roles"]} == {"read": 2, "write": 1}
    holders = admin_client.get(f"/roles/{read.pk}/").context["holders"]
    rows = {r.record.account.identity: r for r in holders.rows}
    assert set(rows) == {"acct-0", "acct-1"}
    assert rows["acct-0"].get_cell("user") == ada and "Granted by the portal" in rows["acct-0"].get_cell(
        "source"
    )
    assert rows["acct-0"].get_cell("expires_at") == expiry.strftime("%Y-%m-%d %H:%M")
    assert (
        "outside the portal" in rows["acct-1"].get_cell("source")
        and rows["acct-1"].get_cell("expires_at") == "never"
    )
    assert rows["acct-0"].get_cell("through") == "directly"
    # Holding write gives read automatically: its holder holds read too, through write.
    RoleImplication.objects.create(role=write, implied_role=read)
    rows = {
        r.record.account.identity: r for r in admin_client.get(f"/roles/{read.pk}/").context["holders"].rows
    }
    assert set(rows) == {"acct-0", "acct-1", "acct-2"}
    assert "through" in rows["acct-2"].get_cell("through") and f"/roles/{write.pk}/" in rows[
        "acct-2"
    ].get_cell("through")


def test_resource_and_role_workflow_sections(admin_client, integration, inventory, workflow):
    resource, role = inventory[0][0], inventory[1][0]
    response = admin_client.post(f"/resources/{resource.pk}/workflow", {"workflow": workflow.pk})
    assert response.status_code == 302 and response.url.endswith("#workflow")
    assert admin_client.post(f"/roles/{role.pk}/workflow", {"workflow": workflow.pk}).status_code == 302
    resource.refresh_from_db(), role.refresh_from_db()
    assert resource.workflow == role.workflow == workflow
    page = admin_client.get(f"/roles/{role.pk}/")
    assert (
        page.context["effective"].workflow_from == "role"
        and "Approval workflow saved." in page.content.decode()
    )
    bad = admin_client.post(f"/roles/{role.pk}/workflow", {"workflow": 999999})
    assert bad.status_code == 400 and bad.context["section"] == "workflow"
    assert "Select a valid choice" in bad.content.decode()
    assert AuditEvent.objects.filter(action="role.update", object_id=str(role.pk)).count() == 1


# -- rules ---------------------------------------------------------------------------------------
def test_rule_create_preview_apply_toggle_delete(admin_client, integration, inventory, admin_user):
    data = {
        "name": "Own databases",
        "target": "resources",
        "match": "all",
        "scope": "existing_and_new",
        "enabled": "on",
        "position": 10,
        "cond_field": ["name", "integration", ""],
        "cond_op": ["starts_with", "is", "is"],
        "cond_key": ["", "", ""],
        "cond_value": ["db-", integration.name, ""],
        "c-set_owner": "on",
        "c-owner": admin_user.pk,
        "c-set_tags": "on",
        "c-tags": "db",
    }
    response = admin_client.post("/rules/add/", data)
    rule = Rule.objects.get(name="Own databases")
    assert response.status_code == 302 and response.url == f"/rules/{rule.pk}/preview"
    assert rule.conditions[1]["value"] == integration.pk
    preview = admin_client.get(response.url).context["preview"]
    assert (preview.matching, preview.changing) == (3, 3)
    assert admin_client.post(f"/rules/{rule.pk}/apply").status_code == 302
    assert Resource.objects.filter(owner=admin_user).count() == 3
    assert AuditEvent.objects.filter(action="resource.update", details__via=f"rule:{rule.pk}").count() == 3
    assert admin_client.get(f"/rules/{rule.pk}/preview").context["preview"].changing == 0
    assert "Own databases" in admin_client.get("/rules/").content.decode()
    admin_client.post(f"/rules/{rule.pk}/toggle")
    rule.refresh_from_db()
    assert not rule.enabled
    admin_client.post(f"/rules/{rule.pk}/delete")
    assert not Rule.objects.filter(pk=rule.pk).exists()


def test_rule_form_errors(admin_client):
    data = {
        "name": "",
        "target": "roles",
        "match": "all",
        "scope": "new_only",
        "position": 1,
        "cond_field": ["attribute"],
        "cond_op": ["equals"],
        "cond_key": ["bad key"],
        "cond_value": ["x"],
    }
    assert admin_client.post("/rules/add/", data).status_code == 400
    data["name"] = "R"
    response = admin_client.post("/rules/add/", data)
    content = response.content.decode()
    assert (
        response.status_code == 400
        and "name the attribute" in content
        and "Choose at least one change" in content
    )
    data.update({"cond_key": ["department"], "c-set_owner": "on", "c-owner": ""})
    content = admin_client.post("/rules/add/", data).content.decode()
    assert "Roles do not support: Set owner" in content
    assert not Rule.objects.exists()


def test_rules_apply_to_new_objects_only_in_scope(integration, inventory, admin_user):
    rule_services.rule_create(
        actor=admin_user,
        name="Not requestable writes",
        target="roles",
        scope="new_only",
        conditions=[{"field": "name", "op": "equals", "value": "write"}],
        actions={"requestable": False},
    )
    roles = inventory[1]
    changed = rule_services.rules_apply_to_new(
        integration=integration, resource_ids=[], role_ids=[r.pk for r in roles[:2]]
    )
    assert changed == 1
    assert [r.name for r in Role.objects.filter(requestable=False)] == ["write"]
    assert Role.objects.get(pk=roles[3].pk).requestable  # not new: untouched


# -- bulk actions ------------------------------------------------------------------------------------
def test_bulk_all_matching_beyond_the_page(admin_client, integration, inventory, workflow):
    page = admin_client.get("/bulk/?target=roles&per_page=2&q=write")
    assert page.status_code == 200 and page.context["table"].paginator.count == 3
    post = {
        "target": "roles",
        "query": "q=write",
        "scope": "all",
        "c-set_workflow": "on",
        "c-workflow": workflow.pk,
    }
    preview = admin_client.post("/bulk/preview", post)
    assert preview.status_code == 200 and preview.context["count"] == 3
    # The filter form submits every field, the ones left at "Any" empty: the same selection.
    form_query = admin_client.get("/bulk/?target=roles&q=write&integration=&tags=&requestable=unknown")
    assert form_query.status_code == 200 and form_query.context["table"].paginator.count == 3
    submitted = {**post, "query": "q=write&integration=&tags=&resource=&requestable="}
    again = admin_client.post("/bulk/preview", submitted)
    assert again.status_code == 200 and again.context["count"] == 3, again.context.get("errors")
    applied = admin_client.post("/bulk/apply", {**post, "changes": preview.context["changes_json"]})
    assert applied.status_code == 302
    assert set(Role.objects.filter(workflow=workflow).values_list("name", flat=True)) == {"write"}
    assert AuditEvent.objects.filter(action="role.update", details__via="bulk").count() == 3


def test_bulk_selected_rows_and_zero_objects(admin_client, integration, inventory):
    roles = inventory[1]
    post = {
        "target": "roles",
        "query": "",
        "scope": "selected",
        "ids": [roles[0].pk],
        "c-set_requestable": "on",
        "c-requestable": "false",
    }
    preview = admin_client.post("/bulk/preview", post)
    assert preview.context["count"] == 1 and "<strong>1 role</strong> selected" in preview.content.decode()
    admin_client.post("/bulk/apply", {**post, "changes": preview.context["changes_json"]})
    assert list(Role.objects.filter(requestable=False)) == [roles[0]]
    none = admin_client.post("/bulk/preview", {**post, "ids": []})
    assert none.status_code == 400 and "No objects are selected" in none.content.decode()
    nothing = admin_client.post("/bulk/preview", {**post, "query": "q=zzz", "scope": "all"})
    assert "nothing to change" in nothing.content.decode()
    no_change = admin_client.post("/bulk/preview", {"target": "roles", "scope": "all", "query": ""})
    assert "Choose at least one change" in no_change.content.decode()


@pytest.mark.django_db(transaction=True, databases=["default", "jobs"])
def test_bulk_large_selection_runs_as_a_job(admin_client, integration, monkeypatch):
    from integrations.services import bulk as bulk_services

    monkeypatch.setattr(bulk_services, "BACKGROUND_THRESHOLD", 2)
    monkeypatch.setattr("integrations.screens.bulk.BACKGROUND_THRESHOLD", 2)
    for i in range(4):
        Resource.objects.create(integration=integration, external_id=f"b{i}", name=f"b{i}")
    post = {"target": "resources", "query": "", "scope": "all", "changes": json.dumps({"tags": ["bulk"]})}
    response = admin_client.post("/bulk/apply", post)
    job = Job.objects.get(kind="bulk")
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    assert job.status == "succeeded" and job.counts == {"selected": 4, "changed": 4}
    assert "Succeeded" in admin_client.get(response.url).content.decode()


# -- audit log -----------------------------------------------------------------------------------
def test_audit_log_filters_errors_and_csv(admin_client, integration, admin_user):
    services.integration_update(actor=admin_user, integration=integration, requestable=False)
    from governance import audit

    audit.record("integration.sync", obj=integration, status="error", details={"error": "boom"})
    page = admin_client.get(f"/audit/?integration={integration.pk}&status=error")
    assert page.status_code == 200
    rows = list(page.context["table"].rows)
    assert [r.record.action for r in rows] == ["integration.sync"]
    assert 'class="table-danger' in page.content.decode()
    csv_response = admin_client.get(f"/audit/export.csv?action=integration.update&actor={admin_user.pk}")
    body = b"".join(csv_response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("occurred_at,actor,action")
    assert len(lines) == 2 and "integration.update" in lines[1] and integration.name in lines[1]
    bad_date = admin_client.get("/audit/?date_from=notadate")
    assert bad_date.status_code == 200 and "Enter a valid date." in bad_date.content.decode()
    assert not list(bad_date.context["table"].rows)  # an invalid filter shows nothing, like the lists
    bad_csv = b"".join(admin_client.get("/audit/export.csv?date_from=notadate").streaming_content).decode()
    assert bad_csv.strip().splitlines() == [lines[0]]  # and exports nothing: only the header
