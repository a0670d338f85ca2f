"""The sync service: :func:`sync_integration` runs an integration's list commands into the inventory.

Owns one run from end to end: the choice of full or delta run and of writer, the order of the
stages (entitlements, then accounts, then implications, removals, recommendations and rules) in
one transaction that holds the integration, the saved delta state, the success or failure
recorded on the integration (with its audit event and the owner's alert), and cancellation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from connectors.sdk import Cancelled, ConnectorError
from governance import audit, notifications

from .. import hooks
from ..catalogue import check_targets, runtime_config
from ..models import Integration
from ..services.rules import rules_apply_to_new
from .events import _notify_external_changes
from .ingest import _Ingest
from .postgres import _PgIngest
from .reader import _Reader
from .result import SyncCancelled, SyncError, SyncResult

log = logging.getLogger(__name__)

ENTITLEMENT_LIST = "std:entitlement:list"
ACCOUNT_LIST = "std:account:list"


def sync_integration(
    *,
    actor,
    integration: Integration,
    full: bool | None = None,
    progress: Callable[[dict, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> SyncResult:
    """Run the integration's list commands and bring the inventory in line, in one transaction.

    ``full=None`` runs a delta when the integration enables stateful syncs and has a saved
    state, else a full run. Raises :class:`SyncCancelled` or :class:`SyncError`; then nothing
    is written but the integration's failed status, an error audit event and the owner's alert.
    """
    connector = integration.connector
    stateful = bool(integration.connector_attributes.get("stateful")) and connector.spec.supports_stateful
    if full is None:
        full = not (stateful and integration.sync_state)
    config = runtime_config(integration)
    now = timezone.now()
    result = SyncResult(full=full)
    writer = _PgIngest if connection.vendor == "postgresql" else _Ingest
    ingest = writer(integration, result, now, progress or (lambda counts, phase: None))
    new_state: dict = {}

    def run(command: str, prepare, flush, phase: str) -> None:
        if not connector.supports(command):
            return
        ingest.phase = phase
        ingest.progress(result.counts, phase)
        input_ = (
            {"stateful": True, "state": None if full else integration.sync_state.get(command)}
            if stateful
            else {}
        )
        reader = _Reader(connector, command, config, input_, should_cancel, prepare)
        with contextlib.closing(reader.batches()) as batches:  # an error here stops the reading thread
            for batch in batches:
                ingest.write(flush, batch)
        outcome = reader.outcome
        result.add("filtered", outcome.filtered)
        if outcome.state is not None:
            new_state[command] = outcome.state

    with audit.audit_context(actor=actor):
        try:
            check_targets(connector, config)  # name lookups: before the transaction and its hold
            with transaction.atomic():
                if not Integration.objects.hold(integration.pk):
                    raise SyncError("the integration was deleted")
                ingest.begin()
                run(ENTITLEMENT_LIST, ingest.map_entitlements, ingest.entitlements, "resources and roles")
                ingest.between_listings()
                run(ACCOUNT_LIST, ingest.map_accounts, ingest.accounts, "accounts and permissions")
                ingest.phase = "finishing"
                ingest.progress(result.counts, ingest.phase)
                ingest.refresh_statistics()
                ingest.link_implications()
                if full:
                    ingest.mark_unseen_removed()
                ingest.apply_recommendations()
                _after_ingest(integration, result)
                integration.sync_state = {**integration.sync_state, **new_state} if stateful else {}
                fields = {
                    "sync_state": integration.sync_state,
                    "last_synced_at": now,
                    "resources_last_synced_at": now,
                    "last_sync_status": Integration.SyncStatus.SUCCEEDED,
                    "last_sync_error": "",
                }
                if full:
                    fields["permissions_last_synced_at"] = now
                Integration.objects.filter(pk=integration.pk).update(**fields)
                for key, value in fields.items():
                    setattr(integration, key, value)
                audit.record(
                    "integration.sync", obj=integration, details={"full": full, "counts": result.counts}
                )
        except Cancelled:
            audit.record("integration.sync_cancelled", obj=integration, details={"full": full})
            raise SyncCancelled(f"Sync of {integration.name} was cancelled; nothing was changed.") from None
        except Exception as exc:
            if isinstance(exc, ConnectorError):
                reason = str(exc)
            elif isinstance(exc, ValidationError):  # a hook's refusal (an identity source): its own words
                reason = " ".join(exc.messages)
            else:
                reason = f"{type(exc).__name__}: {exc}"
            message = f"Sync of {integration.name} failed: {reason}"
            _record_failure(integration, message, full, result)
            raise SyncError(message) from exc
    _notify_external_changes(integration, result)
    return result


def _after_ingest(integration: Integration, result: SyncResult) -> None:
    """Rules run on what this run discovered; then the apps' ``after_sync`` hooks (an identity source
    updates its people), inside the sync's transaction: their failure fails the sync."""
    if result.new_resource_ids or result.new_role_ids:
        result.add(
            "rule_changes",
            rules_apply_to_new(
                integration=integration, resource_ids=result.new_resource_ids, role_ids=result.new_role_ids
            )
            or 0,
        )
    hooks.after_sync(integration, result)


def _record_failure(integration: Integration, message: str, full: bool, result: SyncResult) -> None:
    """The failed status, an error audit event and the owner's alert — even after a lost connection."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                Integration.objects.filter(pk=integration.pk).update(
                    last_sync_status=Integration.SyncStatus.FAILED, last_sync_error=message
                )
                audit.record(
                    "integration.sync",
                    obj=integration,
                    status="error",
                    details={"full": full, "error": message},
                )
            break
        except DatabaseError:
            if attempt == 2:
                log.exception("could not record the failure of %s", integration)
                break
            connection.close()  # a lost connection: reconnect once
    integration.last_sync_status = Integration.SyncStatus.FAILED
    integration.last_sync_error = message
    recipients = [u for u in [integration.owner] if u is not None] or list(notifications.admins())
    notifications.notify(
        subject=f"Sync failed: {integration.name}",
        text=message,
        recipients=recipients,
        webhooks=[integration.notification_webhook_url],
    )
