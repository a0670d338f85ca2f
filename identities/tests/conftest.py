"""People of the identities tests: an admin, a manager with two reports, someone unrelated."""

import shutil

import pytest

from governance.models import User


@pytest.fixture
def org(db):
    def make(username, **fields):
        return User.objects.create_user(username, f"{username}@example.com", "pw", **fields)

    boss = make("boss", first_name="Bea", last_name="Boss", department="Finance", title="Controller")
    return {
        "admin": User.objects.create_superuser("root", "root@example.com", "pw"),
        "boss": boss,
        "alice": make("alice", first_name="Alice", last_name="Analyst", department="Finance", manager=boss),
        "bob": make("bob", first_name="Bob", last_name="Builder", department="Engineering", manager=boss),
        "eve": make("eve", first_name="Eve", last_name="Else", department="Legal"),
    }


@pytest.fixture
def hr(make_integration, settings, tmp_path):
    """A read-only csv integration reading the connector's sample HR export (12 people)."""
    settings.CONNECTOR_FILES_DIR = tmp_path
    path = tmp_path / "people.csv"
    integration = make_integration(
        name="HR",
        application="csv",
        read_only=True,
        connection_config={"path": str(path), "identityColumn": "employeeId"},
    )
    shutil.copy(integration.connector.folder / "sample" / "people.csv", path)
    return integration
