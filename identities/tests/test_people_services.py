"""Writes of people: create (a user who cannot sign in, and their person), update (validated whole: no manager
cycle, known statuses, dates in order, bounded attributes, unique employee ids), every user a person."""

import datetime
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from governance.models import AuditEvent, User
from identities import services
from identities.models import Person
from identities.selectors import person_for

pytestmark = pytest.mark.django_db


def test_create_makes_a_user_who_cannot_sign_in_and_their_person(org):
    person = services.person_create(
        actor=org["admin"],
        username="carol",
        email="carol@example.com",
        first_name="Carol",
        last_name="Cruz",
        manager=org["boss"],
        department="Finance",
        employee_id="E-100",
        location="Lisbon",
        start_date=datetime.date(2026, 1, 5),
        attributes={"cost_center": "4711"},
    )
    user = User.objects.get(username="carol")
    assert person.pk == user.pk and person_for(user) == person
    assert not user.has_usable_password()
    assert (user.email, user.manager, user.department) == ("carol@example.com", org["boss"], "Finance")
    assert (person.employee_id, person.location, person.status) == ("E-100", "Lisbon", "active")
    assert person.attributes == {"cost_center": "4711"} and person.name == "Carol Cruz"
    # One creation of each, attributed to the admin: the person is created with its fields, not updated after.
    events = AuditEvent.objects.filter(object_id=str(user.pk), actor=org["admin"])
    assert sorted(events.values_list("action", flat=True)) == ["person.create", "user.create"]
    assert events.get(action="person.create").details["after"]["employee_id"] == "E-100"


def test_create_refuses_bad_input_before_writing_anything(org):
    before = User.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.person_create(actor=org["admin"], username="alice", email="not an email", status="retired")
    errors = refused.value.message_dict
    assert {"username", "email", "status"} <= set(errors)
    with pytest.raises(ValidationError) as unknown:
        services.person_create(actor=org["admin"], username="zed", is_superuser=True)
    assert unknown.value.message_dict == {"is_superuser": ["Unknown field."]}
    with pytest.raises(PermissionDenied):
        services.person_create(actor=org["boss"], username="zed")
    assert User.objects.count() == before


def test_update_changes_the_users_and_the_persons_fields_in_one_go(org):
    alice = person_for(org["alice"])
    services.person_update(
        actor=org["admin"],
        person=alice,
        title="Senior Analyst",
        manager=org["eve"],
        status="leave",
        display_name="Ally",
        end_date=datetime.date(2027, 1, 1),
    )
    alice.refresh_from_db()
    org["alice"].refresh_from_db()
    assert (org["alice"].title, org["alice"].manager) == ("Senior Analyst", org["eve"])
    assert (alice.status, alice.display_name, alice.name) == ("leave", "Ally", "Ally")
    update = AuditEvent.objects.get(action="person.update", object_id=str(alice.pk))
    assert set(update.details["changes"]) == {"status", "display_name", "end_date"}
    assert update.actor == org["admin"]
    assert AuditEvent.objects.filter(action="user.update", object_id=str(alice.pk)).exists()


def test_a_manager_cycle_is_refused_naming_the_cycle(org):
    boss = person_for(org["boss"])
    # boss → alice, who reports to boss: a cycle of two.
    with pytest.raises(ValidationError) as refused:
        services.person_update(actor=org["admin"], person=boss, manager=org["alice"])
    assert refused.value.message_dict["manager"] == [
        "This would make a cycle of managers: Bea Boss (boss) → Alice Analyst (alice) → Bea Boss (boss)."
    ]
    # A longer one: eve manages boss; then boss may not become eve's... through alice.
    services.person_update(actor=org["admin"], person=boss, manager=org["eve"])
    with pytest.raises(ValidationError) as longer:
        services.person_update(actor=org["admin"], person=person_for(org["eve"]), manager=org["alice"])
    assert "Eve Else (eve) → Alice Analyst (alice) → Bea Boss (boss) → Eve Else (eve)" in str(longer.value)
    with pytest.raises(ValidationError) as itself:
        services.person_update(actor=org["admin"], person=person_for(org["eve"]), manager=org["eve"])
    assert "cannot be their own manager" in str(itself.value)
    org["eve"].refresh_from_db()
    assert org["eve"].manager is None  # nothing written


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"status": "fired"}, "status"),
        ({"start_date": datetime.date(2026, 5, 1), "end_date": datetime.date(2026, 4, 30)}, "end_date"),
        ({"attributes": ["a", "list"]}, "attributes"),
        ({"attributes": {"deep": json.loads("[" * 40 + "]" * 40)}}, "attributes"),
        ({"attributes": {"nul": "a\x00b"}}, "attributes"),
        ({"attributes": {"big": "x" * 70_000}}, "attributes"),
        ({"employee_id": "E-1"}, "employee_id"),
        ({"no_such_field": 1}, "no_such_field"),
    ],
)
def test_update_refuses_what_breaks_a_persons_invariants(org, fields, field):
    services.person_update(actor=org["admin"], person=person_for(org["bob"]), employee_id="E-1")
    alice = person_for(org["alice"])
    with pytest.raises(ValidationError) as refused:
        services.person_update(actor=org["admin"], person=alice, **fields)
    assert field in refused.value.message_dict, refused.value.message_dict
    alice.refresh_from_db()
    assert alice.status == "active" and alice.attributes == {} and alice.employee_id == ""


def test_the_end_date_may_be_the_start_date_and_empty_employee_ids_are_not_unique(org):
    day = datetime.date(2026, 5, 1)
    for name in ("alice", "bob"):
        services.person_update(actor=org["admin"], person=person_for(org[name]), start_date=day, end_date=day)
    assert Person.objects.filter(employee_id="").count() == Person.objects.count()


def test_only_admins_change_people(org):
    with pytest.raises(PermissionDenied):
        services.person_update(actor=org["boss"], person=person_for(org["alice"]), title="Intern")
    with pytest.raises(PermissionDenied):
        services.person_update(actor=org["alice"], person=person_for(org["alice"]), title="CEO")
    # The portal itself (an identity source, later) changes people too.
    services.person_update(actor=None, person=person_for(org["alice"]), location="Porto")
    assert person_for(org["alice"]).location == "Porto"


def test_every_user_is_a_person_whoever_creates_them(org, admin_client):
    assert Person.objects.count() == User.objects.count()
    created = User.objects.create(username="made-elsewhere")
    assert person_for(created).status == "active"
    assert AuditEvent.objects.filter(action="person.create", object_id=str(created.pk)).exists()
    # Through the Django admin as well.
    response = admin_client.post(
        "/admin/governance/user/add/",
        {"username": "from-admin", "password1": "a-Long-pass-123", "password2": "a-Long-pass-123"},
    )
    assert response.status_code == 302, response.content[:500]
    assert person_for(User.objects.get(username="from-admin")) is not None
    # Saving a user again leaves their person alone; deleting the user deletes it.
    services.person_update(actor=org["admin"], person=person_for(created), location="Oslo")
    created.first_name = "Made"
    created.save()
    assert person_for(created).location == "Oslo"
    created.delete()
    assert not Person.objects.filter(pk=created.pk).exists()
    assert person_for(None) is None
