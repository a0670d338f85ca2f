"""Celery tasks: thin wrappers that take ids and call one service."""

from celery import shared_task

from .models import Integration
from .services.sync import sync_integration


@shared_task(name="integrations.sync_integration")
def sync_integration_task(integration_id: int, full: bool | None = None) -> dict:
    integration = Integration.objects.get(pk=integration_id)
    return sync_integration(actor=None, integration=integration, full=full).counts


def queue_for(integration: Integration) -> str:
    """Connector work of an integration saved on an agent runs on that agent's queue."""
    return integration.agent.queue if integration.agent_id else "default"


def sync_now(integration: Integration, *, full: bool | None = None):
    return sync_integration_task.apply_async(args=[integration.pk, full], queue=queue_for(integration))
