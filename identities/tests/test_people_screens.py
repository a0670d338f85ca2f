"""The People list (search and filters) and a person's page: attributes, manager and reports, accounts, every
live permission with how it was granted (a real access request granted through the demo application, found in
the application, implied by another role), open requests and the audit log, in queries that do not grow with
what the person holds."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access import services as ar
from access.models import AccessDecision, AccessRequest, RequestPermission
from governance.models import User
from identities import services
from identities.models import Person
from identities.selectors import person_for
from integrations.models import Account, Permission, Resource, Role
from integrations.selectors import effective_settings
from integrations.services import role_set_implied_roles

pytestmark = pytest.mark.django_db


def _people(client, query: str = "") -> list[str]:
    response = client.get(f"/people/{query}")
    assert response.status_code == 200, response.content[:300]
    return [p.user.username for p in response.context["table"].page.object_list.data]


@pytest.fixture
def hr(org, make_integration):
    """Departments, statuses and identity sources on the org's people; alice is terminated and still holds a
    live permission, eve is terminated and holds nothing live any more."""
    source = make_integration(name="HR export")
    admin = org["admin"]
    services.person_update(
        actor=admin, person=person_for(org["alice"]), status="terminated", employee_id="E-7"
    )
    services.person_update(actor=admin, person=person_for(org["eve"]), status="terminated", source=source)
    services.person_update(actor=admin, person=person_for(org["bob"]), status="leave", source=source)
    resource = Resource.objects.create(integration=source, external_id="app", name="app")
    role = Role.objects.create(resource=resource, external_id="app-user", name="user")
    for name, ended in (("alice", None), ("eve", timezone.now())):
        account = Account.objects.create(integration=source, external_id=name, identity=name, user=org[name])
        Permission.objects.create(account=account, role=role, ended_at=ended)
    return source


def test_the_people_list_searches_and_filters(client, org, hr):
    client.force_login(org["admin"])
    assert _people(client) == ["admin", "alice", "bob", "boss", "eve", "root"]
    assert _people(client, "?q=analyst") == ["alice"]  # last name
    assert _people(client, "?q=E-7") == ["alice"]  # employee id
    assert _people(client, "?q=bob@example") == ["bob"]  # email
    assert _people(client, "?department=finance") == ["alice", "boss"]
    assert _people(client, f"?manager={org['boss'].pk}") == ["alice", "bob"]
    assert _people(client, "?status=terminated") == ["alice", "eve"]
    assert _people(client, "?status=leave&status=active") == ["admin", "bob", "boss", "root"]
    assert _people(client, f"?source={hr.pk}") == ["bob", "eve"]
    assert _people(client, "?terminated_with_access=true") == ["alice"]
    assert _people(client, "?terminated_with_access=false") == ["admin", "bob", "boss", "eve", "root"]
    page = client.get("/people/?department=Finance").content.decode()
    assert '<option value="Finance" selected>Finance</option>' in page  # the departments to pick from
    assert 'data-testid="person-status">Terminated</span>' in page
    # A value that is not one: the filter bar says so and nothing is listed (no 500).
    bad = client.get("/people/?terminated_with_access=perhaps")
    assert bad.status_code == 200 and "Enter true or false." in bad.content.decode()
    assert _people(client, "?manager=999999") == []


def test_a_manager_lists_themselves_and_their_reports_and_filters_only_among_them(client, org, hr):
    client.force_login(org["boss"])
    assert _people(client) == ["alice", "bob", "boss"]
    assert _people(client, "?status=terminated") == ["alice"]
    page = client.get("/people/").content.decode()
    assert "Legal" not in page  # eve's department is not among the choices
    assert _people(client, f"?manager={org['eve'].pk}") == []  # refused like an id that does not exist
    client.force_login(org["eve"])
    assert _people(client) == ["eve"]


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the demo application keeps what the portal provisions under it
    settings.CONNECTOR_FILES_DIR = tmp_path / "connector-files"
    settings.DEBUG = True
    call_command("demo", scale=0.05, verbosity=0)


def granted_request(role_filter: dict, capture) -> AccessRequest:
    """dorothy asks for a role of Corporate Directory; annie, her manager, approves; the demo grants it."""
    from access.selectors import requestable_roles

    dorothy, annie = User.objects.get(username="dorothy"), User.objects.get(username="annie")
    held = Permission.objects.filter(account__user=dorothy, ended_at=None).values("role_id")
    role = requestable_roles().filter(**role_filter).exclude(pk__in=held).first()
    duration = effective_settings(role).allowed_durations[0]
    access = ar.access_request_create(actor=dorothy, role=role, duration=duration, justification="on call")
    with capture(execute=True):
        ar.access_request_approve(actor=annie, request=access, comment="ok")
    access.refresh_from_db()
    assert access.status == "granted", access.error
    return access


def test_the_person_page_says_how_each_permission_was_granted(
    client, demo, django_capture_on_commit_callbacks
):
    dorothy, annie = User.objects.get(username="dorothy"), User.objects.get(username="annie")
    access = granted_request({"integration__name": "Corporate Directory"}, django_capture_on_commit_callbacks)
    by_request = Permission.objects.get(access_requests=access, role=access.role, ended_at=None)
    # Two roles her account holds as found in the application; one of them gives the other.
    account = by_request.account
    resource = Resource.objects.create(integration=account.integration, external_id="wh", name="warehouse")
    analyst, reader = (
        Role.objects.create(resource=resource, external_id=f"wh-{n}", name=n) for n in ("analyst", "reader")
    )
    role_set_implied_roles(actor=User.objects.get(username="admin"), role=analyst, implied=[reader])
    found = Permission.objects.create(account=account, role=analyst, source="external")
    implied = Permission.objects.create(account=account, role=reader, source="external")
    pending = (
        ar.access_request_create(actor=dorothy, role=analyst, duration="1d", justification="later")
        if False
        else None
    )  # noqa: SIM108 - (a pending request is filed below, on a requestable role)
    assert pending is None

    client.force_login(User.objects.get(username="admin"))
    page = client.get(f"/people/{dorothy.pk}/")
    assert page.status_code == 200
    held = dict((p.pk, how) for p, how in page.context["held"])
    assert held[by_request.pk] == [
        {
            "kind": "request",
            "label": f"granted by access request #{access.pk} (approved by {annie})",
            "url": f"/requests/{access.pk}/",
        }
    ]
    assert held[found.pk] == [{"kind": "external", "label": "found in the application", "url": ""}]
    assert held[implied.pk] == [
        {"kind": "external", "label": "found in the application", "url": ""},
        {"kind": "implied", "label": "implied by warehouse · analyst", "url": f"/roles/{analyst.pk}/"},
    ]
    html = page.content.decode()
    assert f"granted by access request #{access.pk} (approved by Annie" in html
    assert page.context["accounts"].total == Account.objects.filter(user=dorothy).count() > 0
    assert (
        page.context["permissions"].total
        == Permission.objects.filter(account__user=dorothy, ended_at=None).count()
    )
    # Her manager and the manager's page; her open request; her history.
    assert page.context["manager"] == annie and annie.pk in page.context["openable"]
    assert [r["id"] for r in page.context["requests"].rows] == [access.pk]
    assert "Granted" in html and f'href="/requests/{access.pk}/"' in html
    assert page.context["events"].total >= 2  # her user and her person were created
    annies = client.get(f"/people/{annie.pk}/")
    assert dorothy.pk in {r.pk for r in annies.context["reports"].rows}


def test_a_manager_sees_the_provenance_but_links_only_what_they_may_open(
    client, demo, django_capture_on_commit_callbacks
):
    dorothy, annie = User.objects.get(username="dorothy"), User.objects.get(username="annie")
    access = granted_request({"integration__name": "Corporate Directory"}, django_capture_on_commit_callbacks)
    client.force_login(annie)  # she decided the request: she may open it
    page = client.get(f"/people/{dorothy.pk}/")
    assert f'href="/requests/{access.pk}/"' in page.content.decode()
    AccessDecision.objects.filter(request=access).update(approver=User.objects.get(username="admin"))
    page = client.get(f"/people/{dorothy.pk}/")
    how = dict((p.pk, h) for p, h in page.context["held"])
    request_item = next(h for items in how.values() for h in items if h["kind"] == "request")
    assert request_item["url"] == "" and f"#{access.pk}" in request_item["label"]
    assert f'href="/requests/{access.pk}/"' not in page.content.decode()
    assert page.context["manager"] is not None  # dorothy's manager is annie herself


def test_the_person_pages_queries_do_not_grow_with_what_the_person_holds(client, org, make_integration):
    alice = org["alice"]
    integration = make_integration(name="Big")
    resource = Resource.objects.create(integration=integration, external_id="r", name="r")
    account = Account.objects.create(
        integration=integration, external_id="alice", identity="alice", user=alice
    )
    roles = [
        Role.objects.create(resource=resource, external_id=f"r{i}", name=f"role {i:02}") for i in range(50)
    ]
    role_set_implied_roles(actor=org["admin"], role=roles[0], implied=roles[1:])  # one graph for both counts
    order = roles[1:] + roles[:1]  # the first permission is on a role that another one gives

    def hold(n: int) -> None:
        """alice holds ``order[:n]``: a third by approved requests, a third found, a third birthright (and
        all but one implied by the last); as many reports, further accounts and open requests."""
        for i in range(Permission.objects.filter(account=account).count(), n):
            source = ("portal", "external", "birthright")[i % 3]
            permission = Permission.objects.create(account=account, role=order[i], source=source)
            if source == "portal":
                request = AccessRequest.objects.create(
                    requester=alice, beneficiary=alice, integration=integration, role=order[i], duration="1d",
                    justification="x", status="granted", account=account,
                )  # fmt: skip
                RequestPermission.objects.create(request=request, permission=permission)
                AccessDecision.objects.create(request=request, step=0, approver=org["boss"], approved=True)
            Account.objects.create(
                integration=integration, external_id=f"extra{i}", identity=f"x{i}", user=alice
            )
            User.objects.create_user(f"report{i}", manager=alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/people/{alice.pk}/")
        assert response.status_code == 200
        return len(captured)

    client.force_login(org["admin"])
    hold(1)
    queries()  # warm: content types, the session
    few = queries()
    hold(50)
    page = client.get(f"/people/{alice.pk}/")
    assert page.context["permissions"].total == 50 and len(page.context["held"]) == 50
    assert page.context["reports"].total == 50 and page.context["requests"].total == 17
    kinds = {h["kind"] for _, how in page.context["held"] for h in how}
    assert kinds == {"request", "external", "birthright", "implied"}
    assert queries() == few


def test_a_person_page_lists_are_bounded_with_their_totals(client, org, make_integration, monkeypatch):
    from identities import selectors

    monkeypatch.setattr(selectors, "SHOWN", 3)
    for i in range(5):
        User.objects.create_user(f"report{i}", manager=org["alice"])
    client.force_login(org["admin"])
    page = client.get(f"/people/{org['alice'].pk}/")
    reports = page.context["reports"]
    assert (len(reports.rows), reports.total, reports.more) == (3, 5, True)
    assert "The first 3 of 5." in page.content.decode()


def test_every_user_has_a_person_to_show(client, org):
    assert Person.objects.count() == User.objects.count()
    client.force_login(org["eve"])
    page = client.get(f"/people/{org['eve'].pk}/")
    assert page.status_code == 200 and "Eve Else" in page.content.decode()
    assert "holds nothing in any integration" in page.content.decode()


def test_an_admin_changes_a_person_from_their_page_and_a_refusal_names_the_field(client, org):
    boss = org["boss"]
    form = {"email": "boss@example.com", "first_name": "Bea", "last_name": "Boss", "status": "active"}
    client.force_login(org["admin"])
    page = client.get(f"/people/{boss.pk}/").content.decode()
    assert 'id="person-form"' in page and f'action="/people/{boss.pk}/edit"' in page
    refused = client.post(f"/people/{boss.pk}/edit", {**form, "manager": "alice"})
    assert refused.status_code == 400
    assert (
        "This would make a cycle of managers: Bea Boss (boss) → Alice Analyst (alice) → Bea Boss (boss)."
        in (refused.content.decode())
    )
    assert "collapse show" in refused.content.decode()  # the form stays open with its errors
    assert client.post(f"/people/{boss.pk}/edit", {**form, "manager": "nobody"}).status_code == 400
    saved = client.post(
        f"/people/{boss.pk}/edit",
        {
            **form,
            "manager": "eve",
            "status": "leave",
            "attributes": '{"floor": 3}',
            "start_date": "2026-02-01",
        },
    )
    assert saved.status_code == 302 and saved.url == f"/people/{boss.pk}/#person"
    person = person_for(boss)
    boss.refresh_from_db()
    assert (boss.manager, person.status, person.attributes) == (org["eve"], "leave", {"floor": 3})
    assert str(person.start_date) == "2026-02-01"


def test_nobody_but_admins_sees_the_form_or_changes_a_person(client, org):
    alice = org["alice"]
    for who, status in (("boss", 403), ("alice", 403), ("eve", 404)):
        client.force_login(org[who])
        if status == 403:
            assert 'id="person-form"' not in client.get(f"/people/{alice.pk}/").content.decode()
        response = client.post(
            f"/people/{alice.pk}/edit", {"status": "terminated", "email": "alice@example.com"}
        )
        assert response.status_code == status, who
    assert person_for(alice).status == "active"
