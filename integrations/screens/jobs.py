"""Starting syncs and reading their jobs, for the screens."""

from __future__ import annotations

from governance.models import Job

from ..models import Integration


def start_sync(*, actor, integration: Integration) -> Job:
    """Queue a sync of the integration (a job; "skipped" when one is already queued or running)."""
    from ..sync import sync_start

    return sync_start(actor=actor, integration=integration)


def latest_sync(integration: Integration) -> Job | None:
    return Job.objects.filter(kind="sync", integration_id=integration.pk).order_by("-created_at").first()
