"""Audit by construction: every write is an event; the log is append-only."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from conftest import DEMO_CONFIG
from governance import audit
from governance.models import AuditEvent
from integrations import services
from integrations.models import Integration, Resource, Tag

pytestmark = pytest.mark.django_db


def admin_form_data(response) -> dict:
    """The POST data an admin change form would submit unchanged: its fields and inline formsets."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.disabled or value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list):
            data[name] = value
        else:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        fs = inline.formset
        for key, value in fs.management_form.initial.items():
            data[f"{fs.prefix}-{key}"] = value
    return data


def test_service_write_is_audited_with_actor_changes_and_correlation_id(admin_user):
    with audit.audit_context(correlation_id="req-123"):
        integration = services.integration_create(
            actor=admin_user, application="demo", name="Directory", connection_config=dict(DEMO_CONFIG)
        )
        services.integration_update(actor=admin_user, integration=integration, read_only=True)
    created, updated = AuditEvent.objects.filter(
        object_id=str(integration.pk), action__startswith="integration."
    ).order_by("id")
    assert created.action == "integration.create" and updated.action == "integration.update"
    assert created.actor_id == admin_user.pk and created.actor_repr == admin_user.username
    assert created.integration_id == integration.pk
    assert {created.correlation_id, updated.correlation_id} == {"req-123"}
    assert updated.details["changes"]["read_only"] == {"from": False, "to": True}
    # Secrets: names at most, never values.
    assert "demo" not in str(created.details["after"]["connection_secrets"])


def test_admin_edit_is_audited_with_before_and_after(admin_client, admin_user):
    integration = services.integration_create(
        actor=admin_user, application="demo", name="Directory", connection_config=dict(DEMO_CONFIG)
    )
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    data = admin_form_data(page)
    data["requestable"] = ""  # untick
    data["connection_config"] = page.context["adminform"].form["connection_config"].value()
    response = admin_client.post(url, data, HTTP_X_REQUEST_ID="admin-edit-1")
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    integration.refresh_from_db()
    assert integration.requestable is False
    event = AuditEvent.objects.get(action="integration.update", correlation_id="admin-edit-1")
    assert event.actor_id == admin_user.pk
    assert event.details["changes"]["requestable"] == {"from": True, "to": False}


def test_admin_never_displays_secrets(admin_client, admin_user):
    config = {**DEMO_CONFIG, "apiToken": "very-secret-token-xyz"}
    integration = services.integration_create(
        actor=admin_user, application="demo", name="Directory", connection_config=config
    )
    page = admin_client.get(reverse("admin:integrations_integration_change", args=[integration.pk]))
    html = page.content.decode()
    assert "very-secret-token-xyz" not in html
    assert "apiToken: set" in html and "password: not set" in html


def test_admin_can_set_a_secret_without_seeing_it(admin_client, admin_user):
    integration = services.integration_create(
        actor=admin_user, application="demo", name="Directory", connection_config=dict(DEMO_CONFIG)
    )
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    page = admin_client.get(url)
    data = admin_form_data(page)
    data["new_secrets"] = '{"password": "n3w-pass"}'
    assert admin_client.post(url, data).status_code == 302
    assert Integration.objects.get(pk=integration.pk).connection_secrets["password"] == "n3w-pass"
    event = AuditEvent.objects.filter(action="integration.update").latest("id")
    assert "n3w-pass" not in str(event.details)
    assert event.details["changes"]["connection_secrets"]["to"] == {
        "apiToken": "<secret>",
        "password": "<secret>",
    }


def test_admin_follows_the_address_rule_of_secrets(admin_client, admin_user):
    """The Django admin merges a connection like the services: a new URL without the secrets again is
    refused; with them, the ones not given are cleared and the clearing is audited."""
    import json

    config = {**DEMO_CONFIG, "password": "old-pass"}
    integration = services.integration_create(
        actor=admin_user, application="demo", name="Directory", connection_config=config
    )
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    data = admin_form_data(admin_client.get(url))
    moved = {**json.loads(data["connection_config"]), "url": "https://demo.example.com:443"}
    data["connection_config"] = json.dumps(moved)
    page = admin_client.post(url, data)
    assert page.status_code == 200 and "give them again" in page.content.decode()
    assert Integration.objects.get(pk=integration.pk).connection_secrets["password"] == "old-pass"

    data["new_secrets"] = '{"apiToken": "demo"}'
    assert admin_client.post(url, data).status_code == 302
    assert Integration.objects.get(pk=integration.pk).connection_secrets == {"apiToken": "demo"}
    update = AuditEvent.objects.filter(action="integration.update").latest("id")
    assert update.details["secrets"] == {"password": "cleared"}  # apiToken given again with its value
    assert update.details["changes"]["connection_config"]["to"]["url"] == "https://demo.example.com:443"


def test_admin_refuses_a_config_that_is_not_an_object(admin_client, admin_user):
    integration = services.integration_create(
        actor=admin_user, application="demo", name="Directory", connection_config=dict(DEMO_CONFIG)
    )
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    data = admin_form_data(admin_client.get(url))
    data["connection_config"] = '["not", "an", "object"]'
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "must be a JSON object" in str(response.context["adminform"].form.errors["connection_config"])
    assert Integration.objects.get(pk=integration.pk).connection_config["users"] == DEMO_CONFIG["users"]


def test_admin_add_and_delete_are_audited(admin_client):
    assert admin_client.post(reverse("admin:integrations_tag_add"), {"name": "pii"}).status_code == 302
    tag = Tag.objects.get(name="pii")
    admin_client.post(reverse("admin:integrations_tag_delete", args=[tag.pk]), {"post": "yes"})
    actions = list(
        AuditEvent.objects.filter(object_id=str(tag.pk)).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["tag.create", "tag.delete"]


def test_m2m_changes_are_audited(integration, admin_user):
    resource = Resource.objects.create(integration=integration, external_id="r", name="r")
    services.resource_update(actor=admin_user, resource=resource, tags=["pii", "prod"])
    event = AuditEvent.objects.filter(action="resource.update", object_id=str(resource.pk)).latest("id")
    added = event.details["m2m"]["tags"]["added"]
    assert sorted(Tag.objects.filter(pk__in=added).values_list("name", flat=True)) == ["pii", "prod"]


def test_audit_events_are_append_only(admin_user):
    event = audit.record("test.action", actor=admin_user)
    event.action = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.action"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_database_refuses_updates_and_deletes_of_audit_rows(admin_user):
    event = audit.record("test.action", actor=admin_user)
    for sql in (
        "UPDATE governance_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM governance_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "test.action"


def test_admin_cannot_change_or_delete_audit_events(admin_client, admin_user):
    event = audit.record("test.action", actor=admin_user)
    assert admin_client.get(reverse("admin:governance_auditevent_changelist")).status_code == 200
    assert (
        admin_client.post(
            reverse("admin:governance_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    response = admin_client.post(
        reverse("admin:governance_auditevent_change", args=[event.pk]), {"action": "x"}
    )
    assert response.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk, action="test.action").exists()


def test_deleting_a_user_keeps_their_audit_trail(admin_user, django_user_model):
    user = django_user_model.objects.create(username="leaver")
    audit.record("test.action", actor=user)
    user.delete()
    event = AuditEvent.objects.get(action="test.action")
    assert event.actor_repr == "leaver"


def test_record_many_keeps_details_as_record_does(db):
    """Many events at once (COPY on PostgreSQL) store details under the same JSON rule as one event."""
    import datetime

    details = {"on": datetime.date(2026, 12, 1), datetime.date(2026, 12, 2): "a date as a key", "n": (1, 2)}
    assert audit.record_many([{"action": "test.many", "details": details}]) == 1
    one = audit.record("test.one", details=details)
    many = AuditEvent.objects.get(action="test.many")
    assert many.details == AuditEvent.objects.get(pk=one.pk).details
    assert many.details == {"on": "2026-12-01", "2026-12-02": "a date as a key", "n": [1, 2]}


@pytest.mark.parametrize("value", ["abc", "²", "1.5", "9" * 30])
def test_admin_autocomplete_fields_refuse_a_value_that_is_no_id_without_a_500(
    admin_client, admin_user, value
):
    integration = services.integration_create(
        actor=admin_user, application="demo", name="Directory", connection_config=dict(DEMO_CONFIG)
    )
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    data = admin_form_data(admin_client.get(url))
    data["owner"] = value
    page = admin_client.post(url, data)
    assert page.status_code == 200 and "Select a valid choice" in page.content.decode()
    resource = Resource.objects.create(integration=integration, external_id="r", name="r")
    url = reverse("admin:integrations_resource_change", args=[resource.pk])
    data = admin_form_data(admin_client.get(url))
    data["tags"] = [value]
    page = admin_client.post(url, data)
    assert page.status_code == 200, page.status_code
