"""Scheduled syncs: bounded intervals, and one integration's error never stops the others."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from governance.models import AuditEvent, Job
from integrations import services
from integrations.models import Integration
from integrations.tasks import due_integrations, tick


@pytest.mark.parametrize(
    "value",
    [
        timedelta(days=999999999),
        timedelta(days=91),
        timedelta(0),
        timedelta(minutes=-5),
        timedelta(minutes=4),
    ],
)
def test_the_service_refuses_intervals_out_of_bounds(integration, value):
    for field in ("permissions_sync_interval", "resources_sync_interval"):
        with pytest.raises(ValidationError) as raised:
            services.integration_update(actor=None, integration=integration, **{field: value})
        assert field in raised.value.message_dict
        integration.refresh_from_db()


@pytest.mark.parametrize(
    "value, status",
    [
        ("999999999 00:00:00", 400),
        ("1000000000 00:00:00", 400),
        ("-1 00:00:00", 400),
        ("0", 400),
        ("00:04:59", 400),
        ("00:05:00", 200),
        ("90 00:00:00", 200),
        ("90 00:00:01", 400),
    ],
)
def test_the_api_answers_400_for_intervals_out_of_bounds(integration, admin_user, value, status):
    client = APIClient()
    client.force_authenticate(admin_user)
    for field in ("permissions_sync_interval", "resources_sync_interval"):
        response = client.patch(f"/api/integrations/{integration.pk}/", {field: value}, format="json")
        assert response.status_code == status, response.content
        if status == 400:
            assert field in response.json()["error"]["fields"]


@pytest.mark.django_db(transaction=True, databases=["default", "jobs"])
def test_one_integrations_broken_schedule_does_not_stop_the_others(make_integration):
    """An interval saved before intervals were bounded (here written straight to the table) used to make
    the tick's query raise for every integration."""
    broken, good = make_integration(name="Broken"), make_integration(name="Good")
    Integration.objects.filter(pk=broken.pk).update(
        permissions_sync_interval=timedelta(days=999999999),
        resources_sync_interval=timedelta(days=999999999),
        permissions_last_synced_at="2026-01-01T00:00:00Z",
        resources_last_synced_at="2026-01-01T00:00:00Z",
    )
    errors = []
    assert [(i.name, full) for i, full in due_integrations(errors=errors)] == [("Good", True)]
    assert [i.name for i, _ in errors] == ["Broken"]
    assert tick() == 1
    assert Job.objects.get(kind="sync", integration_id=good.pk).status == Job.Status.SUCCEEDED
    assert not Job.objects.filter(kind="sync", integration_id=broken.pk).exists()
    (event,) = AuditEvent.objects.filter(action="integration.schedule", integration_id=broken.pk)
    assert event.status == "error" and "OverflowError" in event.details["error"]
    tick()  # a minute later, the same error: logged, not audited again
    assert AuditEvent.objects.filter(action="integration.schedule", integration_id=broken.pk).count() == 1
