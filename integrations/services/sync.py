"""Sync: read an integration's application through its connector into the inventory.

The connector streams objects; they are written in batches with set-based upserts keyed
on (integration, external id), never one query per object, so memory stays flat. The
whole run is one transaction: a run that fails leaves the inventory and the saved delta
state exactly as they were. A full run marks what it did not see as removed only at the
end; a delta (stateful) run applies ``deleted: true`` and saves the connector's new state
with its last batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from connectors.sdk import ConnectorError
from governance import audit

from ..catalogue import runtime_config
from ..models import Account, Integration, Permission, Resource, Role, RoleImplication

BATCH_SIZE = 2000
ENTITLEMENT_LIST = "std:entitlement:list"
ACCOUNT_LIST = "std:account:list"


class SyncError(Exception):
    """A sync failed; the message names the integration and what went wrong."""


@dataclass
class SyncResult:
    full: bool
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int) -> None:
        if n:
            self.counts[key] = self.counts.get(key, 0) + n


def _key_id(obj: dict) -> str:
    key = obj.get("key") or {}
    if "simple" in key:
        return str(key["simple"]["id"])
    if "compound" in key:
        return str(key["compound"]["uniqueId"])
    return str(obj["identity"])


class _Ingest:
    def __init__(
        self, integration: Integration, result: SyncResult, now, progress: Callable[[dict], None] | None
    ):
        self.integration = integration
        self.spec = integration.connector.spec
        self.result = result
        self.now = now
        self.progress = progress or (lambda counts: None)
        self.role_ids: dict[str, int] = {}  # entitlement identity -> role id, grows as roles are written
        self.implications: list[tuple[str, list[str]]] = []
        self.buffer: list[dict] = []

    # -- buffering ------------------------------------------------------------------------------
    def collector(self, flush: Callable[[list[dict]], None]) -> Callable[[str, object], None]:
        def emit(kind: str, data) -> None:
            if kind != "output":
                return
            self.buffer.append(data)
            if len(self.buffer) >= BATCH_SIZE:
                self.drain(flush)

        return emit

    def drain(self, flush: Callable[[list[dict]], None]) -> None:
        if self.buffer:
            batch, self.buffer = self.buffer, []
            flush(batch)
            self.result.add("read", len(batch))
            self.progress(self.result.counts)

    # -- entitlements ---------------------------------------------------------------------------
    def entitlements(self, batch: list[dict]) -> None:
        integration, now = self.integration, self.now
        resources: dict[str, Resource] = {}
        roles: list[tuple[dict, object]] = []
        deleted: list[str] = []
        for obj in batch:
            identity = str(obj["identity"])
            if obj.get("deleted"):
                deleted.append(identity)
                continue
            m = self.spec.map_entitlement(obj)
            resources.setdefault(
                m.resource_id,
                Resource(
                    integration=integration,
                    external_id=m.resource_id,
                    name=m.resource_name,
                    kind=m.resource_kind,
                    requestable=integration.requestable_by_default,
                    attributes=obj.get("attributes") or {} if m.resource_id == identity else {},
                    first_seen_at=now,
                    last_seen_at=now,
                ),
            )
            roles.append((obj, m))
            if m.implies:
                self.implications.append((identity, m.implies))
        if resources:
            before = Resource.objects.filter(integration=integration, external_id__in=list(resources)).count()
            Resource.objects.bulk_create(
                list(resources.values()),
                update_conflicts=True,
                unique_fields=["integration", "external_id"],
                update_fields=["name", "kind", "last_seen_at", "removed_at"],
                batch_size=BATCH_SIZE,
            )
            self.result.add("resources_created", len(resources) - before)
        resource_ids = dict(
            Resource.objects.filter(integration=integration, external_id__in=list(resources)).values_list(
                "external_id", "id"
            )
        )
        if roles:
            role_rows = [
                Role(
                    integration=integration,
                    resource_id=resource_ids[m.resource_id],
                    external_id=str(obj["identity"]),
                    name=m.role_name,
                    attributes=obj.get("attributes") or {},
                    first_seen_at=now,
                    last_seen_at=now,
                )
                for obj, m in roles
            ]
            identities = [r.external_id for r in role_rows]
            before = Role.objects.filter(integration=integration, external_id__in=identities).count()
            Role.objects.bulk_create(
                role_rows,
                update_conflicts=True,
                unique_fields=["integration", "external_id"],
                update_fields=["resource", "name", "attributes", "last_seen_at", "removed_at"],
                batch_size=BATCH_SIZE,
            )
            self.result.add("roles_created", len(set(identities)) - before)
            self.role_ids.update(
                Role.objects.filter(integration=integration, external_id__in=identities).values_list(
                    "external_id", "id"
                )
            )
        if deleted:
            n = Role.objects.filter(integration=integration, external_id__in=deleted, removed_at=None).update(
                removed_at=now
            )
            self.result.add("roles_removed", n)
            Permission.objects.filter(
                integration=integration, role__external_id__in=deleted, ended_at=None
            ).update(ended_at=now)

    def link_implications(self) -> None:
        if not self.implications:
            return
        missing = {i for _, implied in self.implications for i in implied} - self.role_ids.keys()
        if missing:
            self.role_ids.update(
                Role.objects.filter(integration=self.integration, external_id__in=missing).values_list(
                    "external_id", "id"
                )
            )
        seen_roles = [
            self.role_ids[identity] for identity, _ in self.implications if identity in self.role_ids
        ]
        RoleImplication.objects.filter(role_id__in=seen_roles).delete()
        RoleImplication.objects.bulk_create(
            [
                RoleImplication(role_id=self.role_ids[identity], implied_role_id=self.role_ids[i])
                for identity, implied in self.implications
                for i in implied
                if identity in self.role_ids
                and i in self.role_ids
                and self.role_ids[i] != self.role_ids[identity]
            ],
            ignore_conflicts=True,
            batch_size=BATCH_SIZE,
        )

    # -- accounts and their permissions ---------------------------------------------------------
    def accounts(self, batch: list[dict]) -> None:
        integration, now = self.integration, self.now
        rows: dict[str, Account] = {}
        held: dict[str, set[int]] = {}
        deleted: list[str] = []
        emails = set()
        for obj in batch:
            external_id = _key_id(obj)
            if obj.get("deleted"):
                deleted.append(external_id)
                continue
            attrs = obj.get("attributes") or {}
            email = attrs.get("email") or attrs.get("mail") or ""
            if isinstance(email, list):
                email = email[0] if email else ""
            emails.add(str(email).lower())
            rows[external_id] = Account(
                integration=integration,
                external_id=external_id,
                identity=str(obj["identity"]),
                email=str(email)[:254],
                attributes=attrs,
                enabled=not obj.get("disabled", False),
                first_seen_at=now,
                last_seen_at=now,
            )
            held[external_id] = {
                self.role_ids[i] for i in self.spec.account_entitlements(obj) if i in self.role_ids
            }
        if rows:
            users = dict(
                get_user_model()
                .objects.annotate(e=Lower("email"))
                .filter(e__in=emails - {""})
                .values_list("e", "id")
            )
            for account in rows.values():
                account.user_id = users.get(account.email.lower())
            before = Account.objects.filter(integration=integration, external_id__in=list(rows)).count()
            Account.objects.bulk_create(
                list(rows.values()),
                update_conflicts=True,
                unique_fields=["integration", "external_id"],
                update_fields=[
                    "identity",
                    "email",
                    "attributes",
                    "enabled",
                    "last_seen_at",
                    "removed_at",
                    "user",
                ],
                batch_size=BATCH_SIZE,
            )
            self.result.add("accounts_created", len(rows) - before)
            account_ids = dict(
                Account.objects.filter(integration=integration, external_id__in=list(rows)).values_list(
                    "external_id", "id"
                )
            )
            self.permissions({account_ids[k]: v for k, v in held.items()})
        if deleted:
            removed = Account.objects.filter(
                integration=integration, external_id__in=deleted, removed_at=None
            )
            self.result.add("accounts_removed", removed.update(removed_at=now))
            self.result.add(
                "permissions_ended",
                Permission.objects.filter(
                    integration=integration, account__external_id__in=deleted, ended_at=None
                ).update(ended_at=now),
            )

    def permissions(self, desired: dict[int, set[int]]) -> None:
        """Make the active permissions of these accounts exactly ``desired`` (one batch, set-based)."""
        now = self.now
        existing: dict[tuple[int, int], int] = {
            (a, r): pk
            for pk, a, r in Permission.objects.filter(
                account_id__in=list(desired), ended_at=None
            ).values_list("id", "account_id", "role_id")
        }
        wanted = {(a, r) for a, roles in desired.items() for r in roles}
        new = wanted - existing.keys()
        gone = [pk for key, pk in existing.items() if key not in wanted]
        kept = [pk for key, pk in existing.items() if key in wanted]
        Permission.objects.bulk_create(
            [
                Permission(
                    integration=self.integration,
                    account_id=a,
                    role_id=r,
                    source=Permission.Source.EXTERNAL,
                    granted_at=now,
                    last_seen_at=now,
                )
                for a, r in new
            ],
            batch_size=BATCH_SIZE,
        )
        for i in range(0, len(kept), BATCH_SIZE):
            Permission.objects.filter(id__in=kept[i : i + BATCH_SIZE]).update(last_seen_at=now)
        for i in range(0, len(gone), BATCH_SIZE):
            Permission.objects.filter(id__in=gone[i : i + BATCH_SIZE]).update(ended_at=now)
        self.result.add("permissions_created", len(new))
        self.result.add("permissions_ended", len(gone))

    def mark_unseen_removed(self) -> None:
        integration, now = self.integration, self.now
        for model, key in (
            (Resource, "resources_removed"),
            (Role, "roles_removed"),
            (Account, "accounts_removed"),
        ):
            n = model.objects.filter(integration=integration, removed_at=None, last_seen_at__lt=now).update(
                removed_at=now
            )
            self.result.add(key, n)
        n = Permission.objects.filter(integration=integration, ended_at=None, last_seen_at__lt=now).update(
            ended_at=now
        )
        self.result.add("permissions_ended", n)


def sync_integration(
    *,
    actor,
    integration: Integration,
    full: bool | None = None,
    progress: Callable[[dict], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> SyncResult:
    """Run the integration's list commands and bring the inventory in line, in one transaction.

    ``full=None`` runs a delta when the integration enables stateful syncs and has a saved
    state, else a full run. Raises :class:`SyncError`; on error nothing is written but the
    integration's failed status and an error audit event.
    """
    connector = integration.connector
    stateful = bool(integration.connector_attributes.get("stateful")) and connector.spec.supports_stateful
    if full is None:
        full = not (stateful and integration.sync_state)
    config = runtime_config(integration)
    now = timezone.now()
    result = SyncResult(full=full)
    ingest = _Ingest(integration, result, now, progress)
    new_state: dict = {}

    def run(command: str, flush) -> None:
        if not connector.spec.supports(command):
            return
        input_ = (
            {"stateful": True, "state": integration.sync_state.get(command)} if stateful and not full else {}
        )
        if stateful and full:
            input_ = {"stateful": True, "state": None}
        outcome = connector.execute(
            command, config, input_, emit=ingest.collector(flush), should_cancel=should_cancel
        )
        ingest.drain(flush)
        result.add("filtered", outcome.filtered)
        if outcome.state is not None:
            new_state[command] = outcome.state

    with audit.audit_context(actor=actor):
        try:
            with transaction.atomic():
                run(ENTITLEMENT_LIST, ingest.entitlements)
                ingest.link_implications()
                run(ACCOUNT_LIST, ingest.accounts)
                if full:
                    ingest.mark_unseen_removed()
                integration.sync_state = {**integration.sync_state, **new_state} if stateful else {}
                integration.last_synced_at = integration.resources_last_synced_at = now
                integration.permissions_last_synced_at = now
                integration.last_sync_status = Integration.SyncStatus.SUCCEEDED
                integration.last_sync_error = ""
                Integration.objects.filter(pk=integration.pk).update(
                    sync_state=integration.sync_state,
                    last_synced_at=now,
                    resources_last_synced_at=now,
                    permissions_last_synced_at=now,
                    last_sync_status=integration.last_sync_status,
                    last_sync_error="",
                )
                audit.record(
                    "integration.sync",
                    obj=integration,
                    details={"full": full, "counts": result.counts},
                )
        except ConnectorError as exc:
            message = f"Sync of {integration.name} failed: {exc}"
            Integration.objects.filter(pk=integration.pk).update(
                last_sync_status=Integration.SyncStatus.FAILED, last_sync_error=message
            )
            integration.last_sync_status = Integration.SyncStatus.FAILED
            integration.last_sync_error = message
            audit.record(
                "integration.sync",
                obj=integration,
                status="error",
                details={"full": full, "error": str(exc), "counts": result.counts},
            )
            raise SyncError(message) from exc
    return result
