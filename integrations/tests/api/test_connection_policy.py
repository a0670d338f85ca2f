"""Connection configs are checked when saved: the spec's types and bounds, files only under the connector
files folder, and no webhook or connection to link-local or cloud metadata addresses."""

from __future__ import annotations

import json

import pytest

from conftest import DEMO_CONFIG
from integrations import services
from integrations.models import Integration


@pytest.fixture
def demo(people):
    return services.integration_create(
        actor=people["admin"], application="demo", name="Demo", connection_config=dict(DEMO_CONFIG)
    )


def _patch(client, integration, **body):
    return client.patch(f"/api/integrations/{integration.pk}/", body, format="json")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"users": -1}, "must be from 0 to 10000000"),
        ({"users": 10**12}, "must be from 0 to 10000000"),
        ({"users": "1e9"}, "must be from 0 to 10000000"),
        ({"users": "1e999"}, "must be a finite number"),
        ({"mutation": 2}, "must be from 0 to 1"),
        ({"dataDir": "/etc"}, "must be under"),
        ({"dataDir": "../../../etc"}, "must be under"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "link-local or cloud metadata"),
        ({"url": "http://[fd00:ec2::254]/"}, "link-local or cloud metadata"),
        ({"url": "http://metadata.google.internal/"}, "link-local or cloud metadata"),
        ({"url": "http://2852039166/latest/meta-data/"}, "link-local or cloud metadata"),
        ({"url": "http://0xa9fea9fe/"}, "link-local or cloud metadata"),
    ],
)
def test_demo_config_out_of_bounds_is_refused_and_nothing_is_saved(demo, client_for, change, words):
    before = dict(demo.connection_config)
    r = _patch(client_for("admin"), demo, connection_config={**before, "apiToken": "demo", **change})
    assert r.status_code == 400, r.content
    assert words in json.dumps(r.json())
    demo.refresh_from_db()
    assert demo.connection_config == before


def test_files_under_the_connector_files_folder_are_accepted(demo, client_for, settings):
    target = settings.CONNECTOR_FILES_DIR / "demo-provisioning" / "demo"
    r = _patch(
        client_for("admin"),
        demo,
        connection_config={**demo.connection_config, "dataDir": str(target)},
    )
    assert r.status_code == 200, r.content
    r = _patch(
        client_for("admin"),
        demo,
        connection_config={**demo.connection_config, "dataDir": "demo-provisioning/x"},
    )
    assert r.status_code == 200, r.content


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../etc/passwd", "connector-files/../../hr.csv"])
def test_a_csv_file_outside_the_connector_files_folder_is_refused(
    people, client_for, settings, tmp_path, path
):
    settings.CONNECTOR_FILES_DIR = tmp_path / "connector-files"
    r = client_for("admin").post(
        "/api/integrations/",
        {"name": "HR", "application": "csv", "connection_config": {"path": path, "identityColumn": "id"}},
        format="json",
    )
    assert r.status_code == 400, r.content
    assert "files and folders of connectors must be under" in json.dumps(r.json())
    assert not Integration.objects.filter(name="HR").exists()


def test_a_csv_file_under_the_connector_files_folder_or_pasted_is_accepted(
    people, client_for, settings, tmp_path
):
    settings.CONNECTOR_FILES_DIR = tmp_path / "connector-files"
    configs = {
        "HR file": {"path": str(settings.CONNECTOR_FILES_DIR / "hr" / "people.csv"), "identityColumn": "id"},
        "HR pasted": {"connectionOption": "content", "content": "id,name\nu1,Ann\n", "identityColumn": "id"},
    }
    for name, config in configs.items():
        body = {"name": name, "application": "csv", "connection_config": config}
        r = client_for("admin").post("/api/integrations/", body, format="json")
        assert r.status_code == 201, r.content


@pytest.mark.parametrize(
    "change, words",
    [
        ({"timeout": -5}, "must be from 1 to 3600"),
        ({"pageSize": "1e999"}, "must be a finite number"),
        ({"pageSize": 0}, "must be from 1 to 1000"),
        ({"baseUrl": "http://169.254.169.254/scim/v2"}, "link-local or cloud metadata"),
    ],
)
def test_scim_config_out_of_bounds_is_refused(people, client_for, change, words):
    config = {"connectionOption": "bearer", "baseUrl": "https://idp.example.com/scim/v2", "token": "t"}
    r = client_for("admin").post(
        "/api/integrations/",
        {"name": "SCIM", "application": "scim", "connection_config": {**config, **change}},
        format="json",
    )
    assert r.status_code == 400, r.content
    assert words in json.dumps(r.json())
    assert not Integration.objects.filter(name="SCIM").exists()


def test_hosts_of_database_connections_are_checked_too(people):
    from django.core.exceptions import ValidationError

    config = {
        "host": "169.254.169.254",
        "port": 5432,
        "database": "postgres",
        "username": "u",
        "password": "p",
    }
    for host in ("169.254.169.254", "2852039166"):
        with pytest.raises(ValidationError, match="link-local"):
            services.integration_create(
                actor=people["admin"],
                application="postgresql",
                name="PG",
                connection_config={**config, "host": host},
            )
    # Loopback and private networks are where databases live: allowed.
    services.integration_create(
        actor=people["admin"],
        application="postgresql",
        name="PG",
        connection_config={**config, "host": "10.0.0.5"},
    )


def test_a_webhook_to_a_metadata_address_is_refused_unless_the_operator_allows_it(demo, client_for, settings):
    url = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    r = _patch(client_for("admin"), demo, notification_webhook_url=url)
    assert r.status_code == 400 and "link-local" in json.dumps(r.json())
    settings.ALLOW_LINK_LOCAL_TARGETS = True
    r = _patch(client_for("admin"), demo, notification_webhook_url=url)
    assert r.status_code == 200, r.content


def test_a_webhook_is_checked_again_when_sent(caplog):
    """A webhook saved before the rule (or a name that now resolves elsewhere) is not called."""
    from governance.notifications import notify

    with caplog.at_level("WARNING", logger="governance.notifications"):
        notify(subject="s", text="t", webhooks=["http://169.254.169.254/hook"])
    assert "webhook not sent" in caplog.text and "169.254.169.254" in caplog.text
