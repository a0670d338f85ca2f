"""Identity sources on real syncs: the CSV connector's sample HR export makes and updates people; two
sources share them by precedence; bad manager references and cycles keep nothing; the mass-leaver guard
holds a run until an admin confirms or discards it; the mapping is checked against the account schema."""

from __future__ import annotations

import shutil

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from governance.models import AuditEvent, User
from identities import services
from identities.models import IdentitySource, Person
from integrations.models import Account
from integrations.sync import SyncError, sync_integration

HR_MAPPING = {
    "employee_id": "employeeId",
    "email": "email",
    "first_name": "givenName",
    "last_name": "surname",
    "display_name": "displayName",
    "department": "department",
    "title": "title",
    "location": "location",
    "manager": "managerId",
    "status": "status",
    "start_date": "startDate",
    "end_date": "endDate",
}


@pytest.fixture
def hr_file(settings, tmp_path):
    settings.CONNECTOR_FILES_DIR = tmp_path
    path = tmp_path / "hr" / "people.csv"
    path.parent.mkdir()
    return path


@pytest.fixture
def make_source(make_integration, admin_user, hr_file):
    def make(name="HR", path=None, position=100, **fields):
        path = path or hr_file
        integration = make_integration(
            name=name,
            application="csv",
            read_only=True,
            owner=admin_user,
            connection_config={"path": str(path), "identityColumn": "employeeId", "groupsColumn": "groups"},
        )
        fields.setdefault("mapping", dict(HR_MAPPING))
        return services.identity_source_save(
            actor=admin_user, source=IdentitySource(integration=integration, position=position, **fields)
        )

    return make


def sample(integration) -> str:
    return (integration.connector.folder / "sample" / "people.csv").read_text()


def write(path, rows: list[str], header: str | None = None) -> None:
    path.write_text("\n".join([header or HEADER, *rows]) + "\n")


HEADER = "employeeId,email,givenName,surname,displayName,department,title,location,managerId,status,startDate,endDate,groups"


def person(employee_id: str) -> Person:
    return Person.objects.select_related("user", "user__manager").get(employee_id=employee_id)


def test_a_csv_source_creates_the_people_then_follows_a_change(make_source, hr_file, admin_user):
    source = make_source()
    text = sample(source.integration)
    # The CEO's line moves to the end: her reports are read before her.
    lines = text.strip().splitlines()
    hr_file.write_text("\n".join([lines[0], *lines[2:], lines[1]]) + "\n")
    sync_integration(actor=admin_user, integration=source.integration, full=True)

    people = Person.objects.filter(source=source.integration)
    assert people.count() == 12
    source.refresh_from_db()
    assert (source.last_summary["created"], source.last_summary["updated"]) == (12, 0)  # managers included
    grace = person("E1002")
    assert (grace.user.email, grace.user.first_name, grace.user.department) == (
        "grace.hopper@example.com",
        "Grace",
        "Engineering",
    )
    assert grace.user.manager == person("E1001").user
    assert grace.user.username == "grace.hopper@example.com"
    assert not grace.user.has_usable_password()
    assert str(grace.start_date) == "2016-03-14" and grace.location == "New York"
    assert person("E1004").status == "leave" and person("E1007").status == "terminated"
    assert str(person("E1012").end_date) == "2025-12-31"
    assert person("E1001").user.manager is None
    assert set(
        Account.objects.filter(integration=source.integration).values_list(
            "user__person__employee_id", flat=True
        )
    ) == {f"E10{n:02d}" for n in range(1, 13)}
    assert AuditEvent.objects.filter(action="person.create").count() >= 12

    # A second run: one department changes, and nothing else.
    before = {
        p.pk: (p.user.__dict__.copy(), p.__dict__.copy()) for p in Person.objects.select_related("user")
    }
    hr_file.write_text(text.replace("IT,IT Administrator", "Security,IT Administrator"))
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    radia = person("E1008")
    assert radia.user.department == "Security"
    changed = []
    for p in Person.objects.select_related("user"):
        old_user, old_person = before[p.pk]
        for name, value in p.user.__dict__.items():
            if not name.startswith("_") and old_user.get(name) != value:
                changed.append((p.employee_id, name))
        for name, value in p.__dict__.items():
            if not name.startswith("_") and name != "updated_at" and old_person.get(name) != value:
                changed.append((p.employee_id, name))
    assert changed == [("E1008", "department")]
    update = AuditEvent.objects.filter(action="person.update").latest("pk")
    assert update.details["changes"] == {"department": {"before": "IT", "after": "Security"}}
    source.refresh_from_db()
    assert source.last_applied_at and source.last_summary["updated"] == 1


def test_precedence_between_two_sources(make_source, hr_file, tmp_path, admin_user):
    write(hr_file, ["E1,ann@example.com,Ann,Able,,HR Dept,,,,active,,,"])
    other = tmp_path / "hr" / "directory.csv"
    write(other, ["E1,ann@corp.example.com,Ann,Able,,Directory Dept,Analyst,Paris,,active,,,"])
    hr = make_source(position=1)
    directory = make_source(name="Directory", path=other, position=2)
    sync_integration(actor=admin_user, integration=hr.integration, full=True)
    sync_integration(actor=admin_user, integration=directory.integration, full=True)
    ann = person("E1")
    # HR (position 1) wins where it gives a value; the directory fills what HR leaves empty.
    assert (ann.user.email, ann.user.department, ann.user.title, ann.location) == (
        "ann@example.com",
        "HR Dept",
        "Analyst",
        "Paris",
    )
    # The other order gives the same answer.
    sync_integration(actor=admin_user, integration=hr.integration, full=True)
    ann = person("E1")
    assert (ann.user.email, ann.user.department, ann.user.title) == ("ann@example.com", "HR Dept", "Analyst")
    assert Person.objects.count() == User.objects.count()


def test_a_manager_reference_to_nobody_keeps_nothing(make_source, hr_file, admin_user):
    source = make_source()
    write(hr_file, ["E1,a@example.com,Ann,Able,,,,,,active,,,", "E2,b@example.com,Bo,Bee,,,,,E9,active,,,"])
    with pytest.raises(SyncError, match=r"Managers that point to nobody: Bo Bee \(E2\) → employee id 'E9'"):
        sync_integration(actor=admin_user, integration=source.integration, full=True)
    assert not Person.objects.filter(employee_id__in=["E1", "E2"]).exists()
    assert not Account.objects.filter(integration=source.integration).exists()


def test_a_cycle_of_managers_keeps_nothing(make_source, hr_file, admin_user):
    source = make_source()
    write(
        hr_file,
        [
            "E1,a@example.com,Ann,Able,,,,,,active,,,",
            "E2,b@example.com,Bo,Bee,,,,,E3,active,,,",
            "E3,c@example.com,Cy,Sea,,,,,E2,active,,,",
        ],
    )
    with pytest.raises(
        SyncError, match=r"cycle of managers: Bo Bee \(E2\) → Cy Sea \(E3\) → Bo Bee \(E2\)\."
    ):
        sync_integration(actor=admin_user, integration=source.integration, full=True)
    assert not Person.objects.filter(employee_id__in=["E1", "E2", "E3"]).exists()


def test_the_mass_leaver_guard_holds_the_run_until_an_admin_decides(
    make_source, hr_file, admin_user, org_user, django_capture_on_commit_callbacks
):
    source = make_source()
    shutil.copy(source.integration.connector.folder / "sample" / "people.csv", hr_file)
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    active = Person.objects.filter(source=source.integration, status="active").count()
    assert active == 10
    text = sample(source.integration)
    # An export where most people are terminated.
    hr_file.write_text(
        "\n".join(
            line if i < 3 else line.replace(",active,", ",terminated,")
            for i, line in enumerate(text.strip().splitlines())
        )
        + "\n"
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sync_integration(actor=admin_user, integration=source.integration, full=True)
    assert Person.objects.filter(source=source.integration, status="active").count() == 10  # nothing applied
    source.refresh_from_db()
    assert source.pending_since is not None
    assert source.pending_summary["terminated"] == 8 and source.pending_summary["active"] == 10
    assert "Radia Perlman" in source.pending_summary["names"]
    assert [m.subject for m in mail.outbox] == ["Identity source held: HR"]
    assert mail.outbox[0].to == [admin_user.email]

    with pytest.raises(PermissionDenied):
        services.identity_source_confirm(actor=org_user, source=source)
    with pytest.raises(PermissionDenied):
        services.identity_source_discard(actor=org_user, source=source)

    services.identity_source_discard(actor=admin_user, source=source)
    source.refresh_from_db()
    assert source.pending_since is None
    assert Person.objects.filter(source=source.integration, status="active").count() == 10
    assert AuditEvent.objects.filter(action="identity_source.discard").exists()

    # The empty file: everybody would leave. Held again; this time an admin confirms.
    hr_file.write_text(HEADER + "\n")
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    source.refresh_from_db()
    assert source.pending_summary["terminated"] == 10
    services.identity_source_confirm(actor=admin_user, source=source)
    source.refresh_from_db()
    assert source.pending_since is None
    assert Person.objects.filter(source=source.integration, status="active").count() == 0
    assert AuditEvent.objects.filter(action="identity_source.confirm").exists()


@pytest.fixture
def org_user(db):
    return User.objects.create_user("plain", "plain@example.com", "pw")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"employee_id": "employeeId", "nickname": "displayName"}, r"Unknown person field\(s\): nickname"),
        ({"employee_id": "employeeId", "department": "dept"}, "have no attribute for: department → dept"),
        ({"email": "email"}, "Map employee_id or username"),
    ],
)
def test_the_mapping_is_checked(make_source, mapping, message):
    with pytest.raises(ValidationError, match=message):
        make_source(mapping=mapping)


def test_status_values_are_checked(make_source):
    with pytest.raises(ValidationError, match="status values"):
        make_source(status_values={"gone": ["T"]})


def test_status_values_map_the_applications_words(make_source, hr_file, admin_user):
    write(
        hr_file,
        [
            "E1,a@example.com,Ann,Able,,,,,,T,,,",
            "E2,b@example.com,Bo,Bee,,,,,,L,,,",
            "E3,c@example.com,Cy,Sea,,,,,,X,,,",
            "E4,d@example.com,Di,Dee,,,,,,,,,",  # no status: active, and kept so
        ],
    )
    source = make_source(status_values={"terminated": ["T"], "leave": ["L"]})
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    assert [person(e).status for e in ("E1", "E2", "E3", "E4")] == ["terminated", "leave", "active", "active"]
    Person.objects.filter(employee_id="E4").update(status="leave")
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    assert person("E4").status == "leave"


def test_a_disabled_source_changes_nobody(make_source, hr_file, admin_user):
    source = make_source(enabled=False)
    shutil.copy(source.integration.connector.folder / "sample" / "people.csv", hr_file)
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    assert not Person.objects.filter(source=source.integration).exists()


def _apply_queries(make_source, path, n: int, admin_user, name: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = [
        f"{name}{i},p{i}@{name}.example.com,P{i},Q{i},,Dept {i % 3},,,{name}0,active,,," for i in range(1, n)
    ]
    write(path, [f"{name}0,boss@{name}.example.com,Boss,Top,,Dept,,,,active,,,", *rows])
    source = make_source(name=name, path=path)
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    Person.objects.filter(source=source.integration).update(location="elsewhere")  # changes to write
    with CaptureQueriesContext(connection) as created:
        services.identity_source_apply(source=source, actor=admin_user)
    IdentitySource.objects.filter(pk=source.pk).update(enabled=False)  # the next one is alone too
    return len(created)


def test_applying_costs_the_same_queries_for_ten_or_a_hundred_people(  # set-based, never one per person
    make_source, tmp_path, hr_file, admin_user
):
    few = _apply_queries(make_source, hr_file, 10, admin_user, "A")
    many = _apply_queries(make_source, tmp_path / "hr" / "many.csv", 100, admin_user, "B")
    assert few == many


def test_a_source_links_its_accounts_but_never_over_a_person_decision(make_source, hr_file, admin_user):
    source = make_source()
    hr_file.write_text(sample(source.integration))
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    grace = Account.objects.get(integration=source.integration, external_id="E1002")
    assert grace.user == person("E1002").user and grace.link_source == "correlation"
    # A person links one account elsewhere by hand and makes another a service account.
    someone = User.objects.create(username="someone")
    Account.objects.filter(pk=grace.pk).update(user=someone, link_source="hand")
    robot = Account.objects.get(integration=source.integration, external_id="E1003")
    Account.objects.filter(pk=robot.pk).update(
        user=None, link_source="hand", service_account=True, owner=someone
    )
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    grace.refresh_from_db()
    robot.refresh_from_db()
    assert (grace.user, grace.link_source) == (someone, "hand")
    assert (robot.user, robot.service_account, robot.owner) == (None, True, someone)
    # The others stay linked to their people.
    assert (
        Account.objects.get(integration=source.integration, external_id="E1005").user == person("E1005").user
    )


def test_an_invalid_email_is_left_out_and_reported_and_status_words_match_in_any_case(
    make_source, hr_file, admin_user
):
    from identities.services.sources import _status, _text

    source = make_source(status_values={"terminated": ["false"]})
    header = (
        "employeeId,email,givenName,surname,displayName,department,title,location,managerId,status,groups"
    )
    write(
        hr_file,
        [
            "E1,ann@example.com,Ann,A,Ann A,Sales,,,,true,",
            "E2,not an address,Bob,B,Bob B,Sales,,,E1,FALSE,",
            "E3,cy@example.com,Cy,C,Cy C,Sales,,,E1,true,",
            "E4,di@example.com,Di,D,Di D,Sales,,,E1,true,",
            "E5,ed@example.com,Ed,E,Ed E,Sales,,,E1,true,",
            "E6,fa@example.com,Fa,F,Fa F,Sales,,,E1,true,",
            "E7,gu@example.com,Gu,G,Gu G,Sales,,,E1,true,",
            "E8,ha@example.com,Ha,H,Ha H,Sales,,,E1,true,",
            "E9,io@example.com,Io,I,Io I,Sales,,,E1,true,",
            "E10,jo@example.com,Jo,J,Jo J,Sales,,,E1,true,",
            "E11,ka@example.com,Ka,K,Ka K,Sales,,,E1,true,",
        ],
        header=header,
    )
    sync_integration(actor=admin_user, integration=source.integration, full=True)
    bob = person("E2")
    # The rest of his record is applied, the FALSE of the export is the configured "false".
    assert bob.user.email == "" and bob.user.department == "Sales" and bob.status == "terminated"
    assert person("E1").user.email == "ann@example.com" and person("E1").status == "active"
    source.refresh_from_db()
    assert source.last_summary["bad_emails"] == 1
    assert source.last_summary["bad_email_accounts"] == ["account 'E2'"]
    # A connector's JSON false (LDAP, SCIM, the demo's "enabled") is the word "false".
    assert _status(source, _text(False)) == "terminated" and _status(source, _text(True)) == "active"
