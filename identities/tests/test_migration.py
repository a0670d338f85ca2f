"""Upgrading in place: the users of a database from before people (made without a person, as the last release
made them) each get a person, status active, and only once."""

import pytest
from django.core.management import call_command
from django.db import connection

from governance.models import User
from identities.models import Person

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_existing_user_becomes_a_person(django_user_model):
    try:
        call_command("migrate", "identities", "zero", verbosity=0)  # the database of the last release
        assert "identities_person" not in connection.introspection.table_names()
        # Users of the last release: no receiver makes their people (the table does not exist yet).
        User.objects.bulk_create([User(username=f"user{i}", email=f"user{i}@example.com") for i in range(12)])
        call_command("migrate", verbosity=0)  # the upgrade
    finally:
        call_command("migrate", verbosity=0)  # whatever happened, the next test gets today's schema
    users = set(User.objects.values_list("pk", flat=True))
    assert len(users) == 12
    assert set(Person.objects.values_list("pk", flat=True)) == users
    assert set(Person.objects.values_list("status", flat=True)) == {"active"}
    # Run again (e.g. after a migration back and forth of another app): nothing is added twice.
    from importlib import import_module

    from django.apps import apps

    migration = import_module("identities.migrations.0001_initial")
    migration.people_for_every_user(apps, connection.schema_editor())
    assert Person.objects.count() == 12
