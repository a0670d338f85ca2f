"""Sync: read an integration's application through its connector into the inventory.

The connector streams objects; they are written in batches with set-based statements keyed
on (integration, external id), never one query per object, so memory stays flat however
large the source. The whole run is one transaction: a run that fails or is cancelled leaves
the inventory and the saved delta state exactly as they were, and running it again is safe.

- A **full** run marks what it did not see as removed (and ends the permissions that
  vanished) only once the whole read succeeded.
- A **delta** (stateful) run hands the connector the last committed state, applies
  ``deleted: true``, and saves the new state in the same transaction as its last batch.

The connector runs in a thread of its own and hands over batches already mapped to rows, so
reading the application overlaps with writing. On an integration's first sync that thread
also formats the rows as COPY text, with ids drawn from the sequences through a connection of
its own (sequences are not transactional); the writing thread then only streams them.

Two writers share one shape. On PostgreSQL:

- an integration's first sync COPies resources, roles, implications, accounts and permissions
  straight into their tables (a key sent twice trips the table's unique key);
- later syncs COPy each batch into a temporary table and merge it with ``INSERT … ON CONFLICT
  DO UPDATE … WHERE … IS DISTINCT FROM …`` (unchanged rows are not rewritten; what a full run
  saw is kept in temporary tables and removals are an anti-join);
- permissions of accounts created by the run are COPied straight in (a new account holds
  nothing yet); those of existing accounts are compared with what they hold, read with one
  indexed query per batch, and only the differences are written;
- after a phase that changed a table by more than a tenth, its lookup columns are ANALYZEd, so
  the planner does not keep planning for the integration it believed empty.

On the embedded SQLite default the ORM's bulk upserts do the same job.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import queue
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from psycopg import errors as psycopg_errors

from connectors.sdk import Cancelled, ConnectorError
from governance import audit, notifications
from governance.jobs import JobRun, job_send, job_start
from governance.models import Job

from ..catalogue import check_targets, runtime_config, secret_environ
from ..models import Account, Integration, Maintainer, Permission, Resource, Role, RoleImplication

log = logging.getLogger(__name__)

BATCH_SIZE = 2000  # objects per batch: statements stay large, memory in flight (about four batches) small
ENTITLEMENT_LIST = "std:entitlement:list"
ACCOUNT_LIST = "std:account:list"
EXTERNAL_EVENTS_LIMIT = 10_000  # per run: beyond this, external changes are summarised, not itemised


class SyncError(Exception):
    """A sync failed; the message names the integration and what went wrong."""


class SyncCancelled(SyncError):
    """A sync was cancelled; nothing it read was written."""


@dataclass
class SyncResult:
    full: bool
    counts: dict[str, int] = field(default_factory=dict)
    new_resource_ids: list[int] = field(default_factory=list)
    new_role_ids: list[int] = field(default_factory=list)
    external_grants: list[tuple[int, int]] = field(default_factory=list)  # (account id, role id)
    external_revokes: list[tuple[int, int]] = field(default_factory=list)

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


def _json_text(value) -> str:
    """JSON text of a connector's attributes: orjson (several times faster), or the standard library for
    what orjson refuses (keys that are not strings, integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _first(value):
    if isinstance(value, list):
        return value[0] if value else None
    return value


class DuplicateObject(ConnectorError):
    pass


# -------------------------------------------------------------------------------------------------
# Reading: the connector runs in a thread of its own


class _Reader:
    """Runs one list command in a thread of its own and hands its output over in batches, mapped to rows.

    Reading the application (its network round trips, the connector's and the SDK's work, the
    mapping to rows) then overlaps with writing the inventory, which waits on the database. At most ``READ_AHEAD``
    batches wait in between, so memory stays bounded. Connectors never touch the database; the
    mapping may (to draw ids) through the thread's own connection, closed when it ends, and a
    failure of its own is reported as the sync's, not the connector's. Cancellation is checked
    here, between batches and while waiting, and reaches the connector through an event it polls.
    """

    READ_AHEAD = 2
    POLL_SECONDS = 0.5
    JOIN_SECONDS = 60
    # While a reading thread runs, the interpreter hands the GIL over within this many seconds
    # (instead of 5 ms). The writing thread wakes hundreds of times a run, each time the database
    # has taken its data; with the reading thread busy, every wake-up would otherwise wait up
    # to 5 ms, and the database, having nothing to do, with it.
    SWITCH_INTERVAL = 0.0005
    _running = 0  # reading threads of this process
    _running_lock = threading.Lock()
    _saved_interval = 0.005

    def __init__(self, connector, command: str, config, input_: dict, should_cancel, prepare: Callable):
        self.connector, self.command, self.config, self.input = connector, command, config, input_
        self.should_cancel, self.prepare = should_cancel, prepare
        self.outcome = None
        self._failure: Exception | None = None  # raised by prepare
        self._queue: queue.Queue = queue.Queue(maxsize=self.READ_AHEAD)
        self._stop = threading.Event()

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=self.POLL_SECONDS)
                return
            except queue.Full:
                continue
        raise Cancelled(f"{self.command} stopped")

    def _prepare(self, buffer: list[dict]):
        try:
            return self.prepare(buffer)
        except Exception as exc:  # the sync's own failure, not the connector's: stop it, then report this
            self._failure = exc
            raise Cancelled(f"{self.command} stopped") from exc

    def _produce(self) -> None:
        buffer: list[dict] = []

        def emit(kind: str, data) -> None:
            nonlocal buffer
            if kind == "output":
                buffer.append(data)
                if len(buffer) >= BATCH_SIZE:
                    self._put(self._prepare(buffer))
                    buffer = []

        try:
            outcome = self.connector.execute(
                self.command,
                self.config,
                self.input,
                emit=emit,
                should_cancel=self._stop.is_set,
                environ=secret_environ(),
            )
            if buffer:
                self._put(self._prepare(buffer))
            self._put(("done", outcome))
        except BaseException as exc:  # handed to the writing thread, which raises it
            if not self._stop.is_set():
                self._put(("failed", self._failure or exc))
        finally:
            connections.close_all()  # this thread's own (see _PgIngest.draw_ids), never the sync's

    def _cancelled(self) -> bool:
        return self.should_cancel is not None and self.should_cancel()

    @classmethod
    @contextlib.contextmanager
    def _prompt_handover(cls):
        with cls._running_lock:
            if not cls._running:
                cls._saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(cls._saved_interval, cls.SWITCH_INTERVAL))
            cls._running += 1
        try:
            yield
        finally:
            with cls._running_lock:
                cls._running -= 1
                if not cls._running:
                    sys.setswitchinterval(cls._saved_interval)

    def batches(self):
        thread = threading.Thread(target=self._produce, name=f"sync {self.command}", daemon=True)
        with self._prompt_handover():
            yield from self._follow(thread)

    def _follow(self, thread: threading.Thread):
        thread.start()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.POLL_SECONDS)
                except queue.Empty:
                    if self._cancelled():
                        raise Cancelled(f"{self.command} cancelled") from None
                    continue
                if type(item) is tuple:
                    kind, value = item
                    if kind == "failed":
                        raise value
                    self.outcome = value
                    return
                yield item
                if self._cancelled():
                    raise Cancelled(f"{self.command} cancelled")
        finally:
            self._stop.set()
            thread.join(timeout=self.JOIN_SECONDS)
            if thread.is_alive():  # blocked in the application; it stops at its next object
                log.warning("%s: the connector did not stop within %s s", self.command, self.JOIN_SECONDS)


# -------------------------------------------------------------------------------------------------
# Rows: what the connector's objects become


@dataclass
class _Copy:
    """New rows of one inventory table in COPY's text format, formatted by the reading thread."""

    table: str
    columns: str
    data: bytes
    what: str  # the kind of object, named when a key was sent twice
    counter: str | None  # the count the rows add to
    rows: int
    ids: list[int] = field(default_factory=list)


@dataclass
class _EntitlementRows:
    count: int  # objects read
    resources: dict[str, dict]  # resource external id -> fields
    roles: list[dict]  # one per entitlement
    deleted: list[str]  # entitlement identities
    recommended: dict[str, tuple[str | None, list[str]]]  # resource id -> (owner, maintainers)
    implications: list[tuple[str, list[str]]]  # entitlement identity -> the identities it implies
    copies: list[_Copy] = field(default_factory=list)  # the new rows, when formatted already


@dataclass
class _AccountRows:
    count: int
    accounts: list[dict]
    held: dict[str, list[str]]  # account external id -> entitlement identities (those still to write)
    deleted: list[str]
    copies: list[_Copy] = field(default_factory=list)
    created: dict[str, int] = field(default_factory=dict)  # external id -> id of the accounts in ``copies``


def _copy_text(value: str) -> str:
    """A value as a field of COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _Ingest:
    """Maps connector objects to rows and writes them with the ORM (every database)."""

    def __init__(
        self, integration: Integration, result: SyncResult, now, progress: Callable[[dict, str], None]
    ):
        self.integration = integration
        self.spec = integration.connector.spec
        self.result = result
        self.now = now
        self.progress = progress
        self.implications: list[tuple[str, list[str]]] = []
        self.recommended: dict[str, tuple[str | None, list[str]]] = {}  # resource id -> (owner, maintainers)
        self.first_sync = integration.last_synced_at is None
        self.phase = ""
        self._email_users: dict[str, int] | None = None

    def write(self, flush: Callable, rows: _EntitlementRows | _AccountRows) -> None:
        flush(rows)
        self.result.add("read", rows.count)
        self.progress(self.result.counts, self.phase)

    # -- mapping (pure: runs in the reading thread) -------------------------------------------
    ENCODE_ATTRIBUTES = False  # also give each row its attributes as JSON text ("attributes_json")

    def map_entitlements(self, batch: list[dict]) -> _EntitlementRows:
        resources: dict[str, dict] = {}
        roles, deleted, implications = [], [], []
        recommended: dict[str, tuple[str | None, list[str]]] = {}
        for obj in batch:
            identity = str(obj["identity"])
            if obj.get("deleted"):
                deleted.append(identity)
                continue
            m = self.spec.map_entitlement(obj)
            attributes = obj.get("attributes") or {}
            resources.setdefault(
                m.resource_id,
                {"external_id": m.resource_id, "name": m.resource_name[:512], "kind": m.resource_kind[:64]},
            )
            owner, maintainers = _first(attributes.get("owner")), attributes.get("maintainers") or []
            if owner or maintainers:
                recommended.setdefault(
                    m.resource_id, (str(owner) if owner else None, [str(x) for x in maintainers if x])
                )
            role = {"external_id": identity, "resource": m.resource_id, "name": m.role_name[:512]}
            role["attributes"] = attributes
            if self.ENCODE_ATTRIBUTES:
                role["attributes_json"] = _json_text(attributes)
            roles.append(role)
            if m.implies:
                implications.append((identity, m.implies))
        return _EntitlementRows(len(batch), resources, roles, deleted, recommended, implications)

    def map_accounts(self, batch: list[dict]) -> _AccountRows:
        accounts, held, deleted = [], {}, []
        for obj in batch:
            external_id = _key_id(obj)
            if obj.get("deleted"):
                deleted.append(external_id)
                continue
            attrs = obj.get("attributes") or {}
            email = _first(attrs.get("email") or attrs.get("mail")) or ""
            account = {
                "external_id": external_id,
                "identity": str(obj["identity"])[:512],
                "email": str(email)[:254],
                "attributes": attrs,
                "enabled": not obj.get("disabled", False) and attrs.get("enabled", True) is not False,
            }
            if self.ENCODE_ATTRIBUTES:
                account["attributes_json"] = _json_text(attrs)
            accounts.append(account)
            held[external_id] = self.spec.account_entitlements(obj)
        return _AccountRows(len(batch), accounts, held, deleted)

    def _remember(self, rows: _EntitlementRows) -> None:
        for resource_id, recommendation in rows.recommended.items():
            self.recommended.setdefault(resource_id, recommendation)

    def _users_by_email(self) -> dict[str, int]:
        """Portal users by lower-cased email, read once per run (accounts are linked to them)."""
        if self._email_users is None:
            self._email_users = dict(
                get_user_model().objects.exclude(email="").annotate(e=Lower("email")).values_list("e", "id")
            )
        return self._email_users

    # -- writing (ORM) --------------------------------------------------------------------------
    def begin(self) -> None:
        pass

    def entitlements(self, rows: _EntitlementRows) -> None:
        self._remember(rows)
        self.implications += rows.implications
        integration, now = self.integration, self.now
        if rows.resources:
            keys = list(rows.resources)
            existing = set(
                Resource.objects.filter(integration=integration, external_id__in=keys).values_list(
                    "external_id", flat=True
                )
            )
            Resource.objects.bulk_create(
                [
                    Resource(
                        integration=integration,
                        requestable=integration.requestable_by_default,
                        first_seen_at=now,
                        last_seen_at=now,
                        **r,
                    )
                    for r in rows.resources.values()
                ],
                update_conflicts=True,
                unique_fields=["integration", "external_id"],
                update_fields=["name", "kind", "last_seen_at", "removed_at"],
            )
            new = [k for k in keys if k not in existing]
            self.result.add("resources_created", len(new))
            if new:
                self.result.new_resource_ids += list(
                    Resource.objects.filter(integration=integration, external_id__in=new).values_list(
                        "id", flat=True
                    )
                )
        if rows.roles:
            resource_ids = dict(
                Resource.objects.filter(
                    integration=integration, external_id__in=list(rows.resources)
                ).values_list("external_id", "id")
            )
            keys = [r["external_id"] for r in rows.roles]
            self._check_duplicates(keys, Role, "entitlement")
            existing = set(
                Role.objects.filter(integration=integration, external_id__in=keys).values_list(
                    "external_id", flat=True
                )
            )
            Role.objects.bulk_create(
                [
                    Role(
                        integration=integration,
                        resource_id=resource_ids[r["resource"]],
                        external_id=r["external_id"],
                        name=r["name"],
                        attributes=r["attributes"],
                        first_seen_at=now,
                        last_seen_at=now,
                    )
                    for r in rows.roles
                ],
                update_conflicts=True,
                unique_fields=["integration", "external_id"],
                update_fields=["resource", "name", "attributes", "last_seen_at", "removed_at"],
            )
            new = [k for k in keys if k not in existing]
            self.result.add("roles_created", len(new))
            if new:
                self.result.new_role_ids += list(
                    Role.objects.filter(integration=integration, external_id__in=new).values_list(
                        "id", flat=True
                    )
                )
        if rows.deleted:
            self.remove_roles(rows.deleted)

    def _check_duplicates(self, keys: list[str], model, what: str) -> None:
        """A key twice in one run (in this batch, or seen by an earlier batch of this run) is an error."""
        seen: set[str] = set()
        for k in keys:
            if k in seen:
                raise DuplicateObject(f"the connector sent the {what} {k!r} twice in one run")
            seen.add(k)
        again = (
            model.objects.filter(integration=self.integration, external_id__in=keys, last_seen_at=self.now)
            .values_list("external_id", flat=True)
            .first()
        )
        if again is not None:
            raise DuplicateObject(f"the connector sent the {what} {again!r} twice in one run")

    def remove_roles(self, identities: list[str]) -> None:
        n = Role.objects.filter(
            integration=self.integration, external_id__in=identities, removed_at=None
        ).update(removed_at=self.now)
        self.result.add("roles_removed", n)
        self._end(
            Permission.objects.filter(
                integration=self.integration, role__external_id__in=identities, ended_at=None
            )
        )

    def _end(self, permissions) -> None:
        """End these active permissions, recording them as external revokes."""
        pairs = list(permissions.values_list("account_id", "role_id"))
        if pairs:
            permissions.update(ended_at=self.now)
            self.result.add("permissions_ended", len(pairs))
            self._external(revoked=pairs)

    def _external(self, granted=(), revoked=(), count: int | None = None) -> None:
        """Record permission changes made outside the portal (see :func:`_record_external`);
        a first sync records none."""
        if self.first_sync:
            return
        _record_external(self.result, granted, revoked, count)

    def link_implications(self) -> None:
        """Make the implied roles of the listed roles exactly what the application says (a set difference)."""
        if not self.implications:
            return
        identities = {i for identity, implied in self.implications for i in [identity, *implied]}
        ids = dict(
            Role.objects.filter(integration=self.integration, external_id__in=identities).values_list(
                "external_id", "id"
            )
        )
        wanted = {
            (ids[identity], ids[i])
            for identity, implied in self.implications
            for i in implied
            if identity in ids and i in ids and ids[i] != ids[identity]
        }
        listed = [ids[i] for i, _ in self.implications if i in ids]
        existing = {
            (r, i): pk
            for pk, r, i in RoleImplication.objects.filter(role_id__in=listed).values_list(
                "id", "role_id", "implied_role_id"
            )
        }
        gone = [pk for pair, pk in existing.items() if pair not in wanted]
        if gone:  # set-based: the sync's audit event summarises it
            with connection.cursor() as c:
                c.execute(
                    f"DELETE FROM {RoleImplication._meta.db_table} WHERE id IN ({', '.join(['%s'] * len(gone))})",
                    gone,
                )
        RoleImplication.objects.bulk_create(
            [RoleImplication(role_id=r, implied_role_id=i) for r, i in wanted - existing.keys()],
            ignore_conflicts=True,
            batch_size=BATCH_SIZE,
        )

    def accounts(self, rows: _AccountRows) -> None:
        integration, now = self.integration, self.now
        if rows.accounts:
            keys = [a["external_id"] for a in rows.accounts]
            self._check_duplicates(keys, Account, "account")
            users = self._users_by_email()
            existing = set(
                Account.objects.filter(integration=integration, external_id__in=keys).values_list(
                    "external_id", flat=True
                )
            )
            Account.objects.bulk_create(
                [
                    Account(
                        integration=integration,
                        user_id=users.get(a["email"].lower()),
                        first_seen_at=now,
                        last_seen_at=now,
                        **a,
                    )
                    for a in rows.accounts
                ],
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
            )
            self.result.add("accounts_created", len(set(keys) - existing))
            account_ids = dict(
                Account.objects.filter(integration=integration, external_id__in=keys).values_list(
                    "external_id", "id"
                )
            )
            wanted_identities = {i for ids in rows.held.values() for i in ids}
            role_ids = dict(
                Role.objects.filter(integration=integration, external_id__in=wanted_identities).values_list(
                    "external_id", "id"
                )
            )
            self.permissions(
                {account_ids[k]: {role_ids[i] for i in ids if i in role_ids} for k, ids in rows.held.items()}
            )
        if rows.deleted:
            self.remove_accounts(rows.deleted)

    def remove_accounts(self, external_ids: list[str]) -> None:
        removed = Account.objects.filter(
            integration=self.integration, external_id__in=external_ids, removed_at=None
        )
        self.result.add("accounts_removed", removed.update(removed_at=self.now))
        self._end(
            Permission.objects.filter(
                integration=self.integration, account__external_id__in=external_ids, ended_at=None
            )
        )

    def permissions(self, desired: dict[int, set[int]]) -> None:
        """Make the active permissions of these accounts exactly ``desired``."""
        existing = {
            (a, r): pk
            for pk, a, r in Permission.objects.filter(
                account_id__in=list(desired), ended_at=None
            ).values_list("id", "account_id", "role_id")
        }
        wanted = {(a, r) for a, roles in desired.items() for r in roles}
        new = sorted(wanted - existing.keys())
        gone = [pk for key, pk in existing.items() if key not in wanted]
        Permission.objects.bulk_create(
            [
                Permission(
                    integration=self.integration,
                    account_id=a,
                    role_id=r,
                    source=Permission.Source.EXTERNAL,
                    granted_at=self.now,
                    last_seen_at=self.now,
                )
                for a, r in new
            ],
            batch_size=BATCH_SIZE,
        )
        self.result.add("permissions_created", len(new))
        self._external(granted=new)
        if gone:
            self._end(Permission.objects.filter(id__in=gone))

    def mark_unseen_removed(self) -> None:
        integration, now = self.integration, self.now
        for model, key in (
            (Resource, "resources_removed"),
            (Role, "roles_removed"),
            (Account, "accounts_removed"),
        ):
            self.result.add(
                key,
                model.objects.filter(integration=integration, removed_at=None, last_seen_at__lt=now).update(
                    removed_at=now
                ),
            )
        self._end_of_removed()

    def _end_of_removed(self) -> None:
        """End the permissions of the accounts and roles this run removed."""
        if not (self.result.counts.get("accounts_removed") or self.result.counts.get("roles_removed")):
            return
        self._end(
            Permission.objects.filter(integration=self.integration, ended_at=None).filter(
                Q(account__removed_at=self.now) | Q(role__removed_at=self.now)
            )
        )

    def refresh_statistics(self) -> None:
        """Keep the planner's statistics in step with large changes (PostgreSQL)."""

    def between_listings(self) -> None:
        """After the entitlements, before the accounts: statistics for the account listing's lookups."""
        self.refresh_statistics()

    # -- after ingest ---------------------------------------------------------------------------
    def apply_recommendations(self) -> None:
        integration = self.integration
        if not self.recommended or not (
            integration.auto_assign_recommended_owners or integration.auto_assign_recommended_maintainers
        ):
            return
        names = {n.lower() for owner, maint in self.recommended.values() for n in [owner, *maint] if n}
        User = get_user_model()
        users = {}
        for uid, username, email in User.objects.filter(
            Q(username__in=names) | Q(email__in=names) | Q(username__iregex=r"^$")
        ).values_list("id", "username", "email"):
            users[username.lower()] = uid
            if email:
                users[email.lower()] = uid
        if integration.auto_assign_recommended_owners:
            by_owner: dict[int, list[str]] = {}
            for resource_id, (owner, _) in self.recommended.items():
                if owner and owner.lower() in users:
                    by_owner.setdefault(users[owner.lower()], []).append(resource_id)
            for user_id, resource_ids in by_owner.items():
                n = Resource.objects.filter(
                    integration=integration, external_id__in=resource_ids, owner=None
                ).update(owner_id=user_id)
                self.result.add("owners_assigned", n)
        if integration.auto_assign_recommended_maintainers:
            ids = dict(
                Resource.objects.filter(
                    integration=integration, external_id__in=list(self.recommended)
                ).values_list("external_id", "id")
            )
            rows = [
                Maintainer(resource_id=ids[rid], user_id=users[m.lower()])
                for rid, (_, maint) in self.recommended.items()
                for m in maint
                if rid in ids and m.lower() in users
            ]
            created = Maintainer.objects.bulk_create(rows, ignore_conflicts=True)
            self.result.add("maintainers_assigned", len(created))


class _PgIngest(_Ingest):
    """PostgreSQL: COPY each batch into a temporary table and merge it with one statement per table.

    Permissions of accounts this run creates are COPied straight into the permission table (a new
    account holds nothing yet); those of existing accounts are compared with what they hold, read
    with one indexed query per batch. Role ids come from a bounded cache filled by the role upserts
    and, for roles unchanged since the last run, by one lookup per batch.

    Rows that are new to an empty integration (its first sync) are formatted as COPY text by the
    reading thread, ids included, so this thread only streams them: the database never waits
    for Python between two statements, and the two threads' work overlaps.
    """

    TEMP_TABLES = (
        "sync_seen_resources",
        "sync_seen_roles",
        "sync_seen_accounts",
        "sync_b_resources",
        "sync_b_roles",
        "sync_b_accounts",
        "sync_implies",
    )
    ROLE_CACHE_LIMIT = 200_000  # external id -> id entries kept; beyond, the cache starts again
    ENCODE_ATTRIBUTES = True  # COPY takes JSON text; encoding it in the reading thread overlaps the writes

    def begin(self) -> None:
        self.role_ids: dict[str, int] = {}
        self.analyzed_at_counts: dict[str, int] = {}
        with connection.cursor() as c:
            c.execute(
                "SELECT EXISTS (SELECT 1 FROM integrations_account WHERE integration_id = %s)",
                [self.integration.pk],
            )
            self.fresh_accounts = not c.fetchone()[0]
            c.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM integrations_resource WHERE integration_id = %s)"
                " AND NOT EXISTS (SELECT 1 FROM integrations_role WHERE integration_id = %s)",
                [self.integration.pk, self.integration.pk],
            )
            self.fresh_inventory = c.fetchone()[0]
            self.resource_ids: dict[str, int] = {}  # of a fresh inventory: external id -> id
            self.roles_known = self.fresh_inventory  # role_ids holds every role (all are this run's)
            self.role_lines: dict[str, str] | None = None
            self.timestamp = self.now.isoformat()
            self.durations = _copy_text(json.dumps(_all_durations()))
            # Dropped at commit; also dropped here in case an enclosing transaction kept them.
            c.execute(f"DROP TABLE IF EXISTS {', '.join(self.TEMP_TABLES)}")
            c.execute(
                """
                CREATE TEMP TABLE sync_seen_resources (external_id text PRIMARY KEY) ON COMMIT DROP;
                CREATE TEMP TABLE sync_seen_roles (external_id text PRIMARY KEY) ON COMMIT DROP;
                CREATE TEMP TABLE sync_seen_accounts (external_id text PRIMARY KEY) ON COMMIT DROP;
                CREATE TEMP TABLE sync_b_resources (external_id text, name text, kind text) ON COMMIT DROP;
                CREATE TEMP TABLE sync_b_roles (external_id text, resource text, name text, attributes jsonb)
                    ON COMMIT DROP;
                CREATE TEMP TABLE sync_b_accounts (external_id text, identity text, email text, attributes jsonb,
                    enabled boolean, user_id bigint) ON COMMIT DROP;
                CREATE TEMP TABLE sync_implies (role text, implied text) ON COMMIT DROP;
                """
            )
        if self.fresh_accounts:  # read in the sync's transaction: the reading thread formats the accounts
            self._users_by_email()

    @staticmethod
    def _copy(cursor, table: str, columns: tuple[str, ...], rows, truncate: bool = True) -> None:
        if truncate:
            cursor.execute(f"TRUNCATE {table}")
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _seen(self, cursor, kind: str, batch_table: str, what: str) -> None:
        """Record this batch's keys as seen; a key sent twice in this run is an error naming it."""
        cursor.execute(
            f"SELECT b.external_id FROM {batch_table} b JOIN sync_seen_{kind} s ON s.external_id = b.external_id LIMIT 1"
        )
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"SELECT external_id FROM {batch_table} GROUP BY external_id HAVING count(*) > 1 LIMIT 1"
            )
            row = cursor.fetchone()
        if row is not None:
            raise DuplicateObject(f"the connector sent the {what} {row[0]!r} twice in one run")
        cursor.execute(f"INSERT INTO sync_seen_{kind} SELECT external_id FROM {batch_table}")

    def _cache_roles(self, pairs) -> None:
        if len(self.role_ids) > self.ROLE_CACHE_LIMIT:
            self.role_ids = {}
        self.role_ids.update(pairs)

    def _role_ids_of(self, cursor, held: list[list[str]]) -> dict[str, int]:
        """A mapping from role identity to id holding every role named in ``held`` that exists."""
        ids = self.role_ids
        missing = {r for roles in held for r in roles if r not in ids}
        if not missing:
            return ids
        cursor.execute(
            "SELECT external_id, id FROM integrations_role WHERE integration_id = %s AND external_id = ANY(%s)",
            [self.integration.pk, list(missing)],
        )
        found = cursor.fetchall()
        if len(ids) + len(found) > self.ROLE_CACHE_LIMIT:  # start again from this batch's roles
            ids = {r: ids[r] for roles in held for r in roles if r in ids}
            self.role_ids = ids
        ids.update(found)
        return ids

    # -- formatting new rows (runs in the reading thread) ---------------------------------------
    RESOURCE_COLUMNS = (
        "id, integration_id, external_id, name, kind, description, requestable, override_allowed_durations,"
        " allowed_durations, attributes, first_seen_at, last_seen_at, created_at, updated_at"
    )
    ROLE_COLUMNS = (
        "id, integration_id, resource_id, external_id, name, description, requestable, override_allowed_durations,"
        " allowed_durations, attributes, first_seen_at, last_seen_at, created_at, updated_at"
    )
    ACCOUNT_COLUMNS = (
        "id, integration_id, external_id, identity, email, attributes, enabled, user_id, first_seen_at,"
        " last_seen_at, created_at, updated_at"
    )
    PERMISSION_COLUMNS = "integration_id, account_id, role_id, source, granted_at, last_seen_at"

    @staticmethod
    def draw_ids(table: str, n: int) -> list[int]:
        """``n`` ids from the table's sequence, through the reading thread's own connection: sequences
        are not transactional, so the ids need not come from the sync's transaction."""
        with connections[DEFAULT_DB_ALIAS].cursor() as c:
            c.execute(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)", [n]
            )
            return [pk for (pk,) in c.fetchall()]

    def map_entitlements(self, batch: list[dict]) -> _EntitlementRows:
        rows = super().map_entitlements(batch)
        if self.fresh_inventory:
            rows.copies = self._format_entitlements(rows)
        return rows

    def _format_entitlements(self, rows: _EntitlementRows) -> list[_Copy]:
        iid, at, durations, copies = self.integration.pk, self.timestamp, self.durations, []
        new = [r for external_id, r in rows.resources.items() if external_id not in self.resource_ids]
        if new:
            ids = self.draw_ids("integrations_resource", len(new))
            requestable = "t" if self.integration.requestable_by_default else "f"
            data = "".join(
                f"{pk}\t{iid}\t{_copy_text(r['external_id'])}\t{_copy_text(r['name'])}\t{_copy_text(r['kind'])}"
                f"\t\t{requestable}\tf\t{durations}\t{{}}\t{at}\t{at}\t{at}\t{at}\n"
                for pk, r in zip(ids, new, strict=True)
            )
            self.resource_ids.update(zip((r["external_id"] for r in new), ids, strict=True))
            copies.append(
                _Copy("integrations_resource", self.RESOURCE_COLUMNS, data.encode(), "resource", "resources_created",
                      len(ids), ids)
            )  # fmt: skip
        if rows.roles:
            ids = self.draw_ids("integrations_role", len(rows.roles))
            resource_ids = self.resource_ids
            data = "".join(
                f"{pk}\t{iid}\t{resource_ids[r['resource']]}\t{_copy_text(r['external_id'])}\t{_copy_text(r['name'])}"
                f"\t\tt\tf\t{durations}\t{_copy_text(r['attributes_json'])}\t{at}\t{at}\t{at}\t{at}\n"
                for pk, r in zip(ids, rows.roles, strict=True)
            )
            copies.append(
                _Copy("integrations_role", self.ROLE_COLUMNS, data.encode(), "entitlement", "roles_created",
                      len(ids), ids)
            )  # fmt: skip
            if self.roles_known:
                self.role_ids.update(zip((r["external_id"] for r in rows.roles), ids, strict=True))
                if len(self.role_ids) > self.ROLE_CACHE_LIMIT:  # too many to keep: looked up per batch
                    self.roles_known, self.role_ids = False, {}
        if rows.implications and self.roles_known:
            copies += self._format_implications(rows)
        return copies

    def _format_implications(self, rows: _EntitlementRows) -> list[_Copy]:
        """Implications between roles whose ids are known (this batch's or earlier ones); the others,
        on roles listed later, are left in ``rows`` to be linked at the end of the listing."""
        role_ids, pairs, later = self.role_ids, [], []
        for identity, implied in rows.implications:
            pk = role_ids[identity]
            unknown = []
            for other in set(implied):
                if other not in role_ids:
                    unknown.append(other)
                elif role_ids[other] != pk:
                    pairs.append(f"{pk}\t{role_ids[other]}\n")
            if unknown:
                later.append((identity, unknown))
        rows.implications = later
        if not pairs:
            return []
        ids = self.draw_ids("integrations_roleimplication", len(pairs))
        data = "".join(f"{pk}\t{pair}" for pk, pair in zip(ids, pairs, strict=True))
        return [
            _Copy("integrations_roleimplication", "id, role_id, implied_role_id", data.encode(), "implication",
                  None, len(ids))
        ]  # fmt: skip

    def map_accounts(self, batch: list[dict]) -> _AccountRows:
        rows = super().map_accounts(batch)
        if self.fresh_accounts and rows.accounts:
            self._format_accounts(rows)
        return rows

    def _format_accounts(self, rows: _AccountRows) -> None:
        """The new accounts, and when every role id is known (a first sync), the permissions they hold."""
        iid, at, NULL = self.integration.pk, self.timestamp, "\\N"
        users = self._users_by_email()
        ids = self.draw_ids("integrations_account", len(rows.accounts))
        data = "".join(
            f"{pk}\t{iid}\t{_copy_text(a['external_id'])}\t{_copy_text(a['identity'])}\t{_copy_text(a['email'])}"
            f"\t{_copy_text(a['attributes_json'])}\t{'t' if a['enabled'] else 'f'}"
            f"\t{users.get(a['email'].lower(), NULL)}\t{at}\t{at}\t{at}\t{at}\n"
            for pk, a in zip(ids, rows.accounts, strict=True)
        )
        rows.copies.append(
            _Copy("integrations_account", self.ACCOUNT_COLUMNS, data.encode(), "account", "accounts_created", len(ids))
        )  # fmt: skip
        rows.created = dict(zip((a["external_id"] for a in rows.accounts), ids, strict=True))
        if not (self.roles_known and self.first_sync):  # else their ids are looked up, and grants recorded
            return
        if self.role_lines is None:  # each role's part of a permission line, formatted once per run
            rest = f"\texternal\t{at}\t{at}\n"
            self.role_lines = {r: f"{pk}{rest}" for r, pk in self.role_ids.items()}
            self.role_ids = {}  # the permissions of this first sync are formatted from role_lines
        role_lines, created, parts, n = self.role_lines, rows.created, [], 0
        for e, held in rows.held.items():
            mine = [role_lines[r] for r in set(held) if r in role_lines]
            if mine:
                prefix = f"{iid}\t{created[e]}\t"
                parts.append(prefix + prefix.join(mine))
                n += len(mine)
        rows.copies.append(
            _Copy("integrations_permission", self.PERMISSION_COLUMNS, "".join(parts).encode(), "permission",
                  "permissions_created", n)
        )  # fmt: skip
        rows.held = {}

    # -- writing ----------------------------------------------------------------------------------
    def _write_copies(self, c, copies: list[_Copy]) -> None:
        """Stream rows the reading thread formatted; a key sent twice trips the table's unique key."""
        for copy in copies:
            try:
                with c.cursor.copy(f"COPY {copy.table} ({copy.columns}) FROM STDIN") as stream:
                    stream.write(copy.data)
            except psycopg_errors.UniqueViolation as exc:
                key = re.search(r"=\(\d+, (.*)\) already exists", exc.diag.message_detail or "")
                raise DuplicateObject(
                    f"the connector sent the {copy.what} {key.group(1) if key else '?'!r} twice in one run"
                ) from None
            if copy.counter:
                self.result.add(copy.counter, copy.rows)
            if copy.table == "integrations_resource":
                self.result.new_resource_ids += copy.ids
            elif copy.table == "integrations_role":
                self.result.new_role_ids += copy.ids

    def entitlements(self, rows: _EntitlementRows) -> None:
        self._remember(rows)
        with connection.cursor() as c:
            if self.fresh_inventory:
                self._write_copies(c, rows.copies)
            else:
                self._upsert_entitlements(c, rows)
            if rows.implications:  # kept in the database, not in memory, until the end of the listing
                self._copy(
                    c,
                    "sync_implies",
                    ("role", "implied"),
                    ((role, i) for role, implied in rows.implications for i in implied),
                    truncate=False,
                )
        if rows.deleted:
            self.remove_roles(rows.deleted)

    def _upsert_entitlements(self, c, rows: _EntitlementRows) -> None:
        iid, now = self.integration.pk, self.now
        if rows.resources:
            self._copy(
                c,
                "sync_b_resources",
                ("external_id", "name", "kind"),
                ((r["external_id"], r["name"], r["kind"]) for r in rows.resources.values()),
            )
            c.execute(
                "INSERT INTO sync_seen_resources SELECT external_id FROM sync_b_resources ON CONFLICT DO NOTHING"
            )
            c.execute(
                """
                INSERT INTO integrations_resource AS t (integration_id, external_id, name, kind, description,
                    requestable, override_allowed_durations, allowed_durations, attributes,
                    first_seen_at, last_seen_at, removed_at, created_at, updated_at)
                SELECT %s, b.external_id, b.name, b.kind, '', %s, false, %s::jsonb, '{}'::jsonb, %s, %s, NULL, %s, %s
                FROM sync_b_resources b
                ON CONFLICT (integration_id, external_id) DO UPDATE
                SET name = EXCLUDED.name, kind = EXCLUDED.kind, removed_at = NULL,
                    last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at
                WHERE (t.name, t.kind, t.removed_at IS NULL) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, true)
                RETURNING id, (xmax = 0)
                """,
                [
                    iid,
                    self.integration.requestable_by_default,
                    json.dumps(_all_durations()),
                    now,
                    now,
                    now,
                    now,
                ],
            )
            new = [pk for pk, inserted in c.fetchall() if inserted]
            self.result.add("resources_created", len(new))
            self.result.new_resource_ids += new
        if rows.roles:
            self._copy(
                c,
                "sync_b_roles",
                ("external_id", "resource", "name", "attributes"),
                ((r["external_id"], r["resource"], r["name"], r["attributes_json"]) for r in rows.roles),
            )
            self._seen(c, "roles", "sync_b_roles", "entitlement")
            c.execute(
                """
                INSERT INTO integrations_role AS t (integration_id, resource_id, external_id, name, description,
                    requestable, override_allowed_durations, allowed_durations, attributes,
                    first_seen_at, last_seen_at, removed_at, created_at, updated_at)
                SELECT %s, r.id, b.external_id, b.name, '', true, false, %s::jsonb, b.attributes, %s, %s, NULL, %s, %s
                FROM sync_b_roles b
                JOIN integrations_resource r ON r.integration_id = %s AND r.external_id = b.resource
                ON CONFLICT (integration_id, external_id) DO UPDATE
                SET resource_id = EXCLUDED.resource_id, name = EXCLUDED.name, attributes = EXCLUDED.attributes,
                    removed_at = NULL, last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at
                WHERE (t.resource_id, t.name, t.attributes, t.removed_at IS NULL)
                    IS DISTINCT FROM (EXCLUDED.resource_id, EXCLUDED.name, EXCLUDED.attributes, true)
                RETURNING id, external_id, (xmax = 0)
                """,
                [iid, json.dumps(_all_durations()), now, now, now, now, iid],
            )
            returned = c.fetchall()
            self._cache_roles((external_id, pk) for pk, external_id, _ in returned)
            new = [pk for pk, _, inserted in returned if inserted]
            self.result.add("roles_created", len(new))
            self.result.new_role_ids += new

    def link_implications(self) -> None:
        """Make the implied roles of the listed roles exactly what the application says (set-based)."""
        with connection.cursor() as c:
            c.execute("SELECT EXISTS (SELECT 1 FROM sync_implies)")
            if not c.fetchone()[0]:
                return
            params = {"iid": self.integration.pk}
            if self.fresh_inventory:  # nothing to compare with: one insert
                c.execute(
                    """
                    INSERT INTO integrations_roleimplication (role_id, implied_role_id)
                        SELECT DISTINCT r.id, i.id
                        FROM sync_implies b
                        JOIN integrations_role r ON r.integration_id = %(iid)s AND r.external_id = b.role
                        JOIN integrations_role i ON i.integration_id = %(iid)s AND i.external_id = b.implied
                        WHERE r.id <> i.id
                    """,
                    params,
                )
                return
            c.execute(
                """
                ANALYZE sync_implies;
                CREATE TEMP TABLE sync_implied ON COMMIT DROP AS
                    SELECT DISTINCT r.id AS role_id, i.id AS implied_role_id
                    FROM sync_implies b
                    JOIN integrations_role r ON r.integration_id = %(iid)s AND r.external_id = b.role
                    JOIN integrations_role i ON i.integration_id = %(iid)s AND i.external_id = b.implied
                    WHERE r.id <> i.id;
                DELETE FROM integrations_roleimplication t
                USING (SELECT DISTINCT r.id FROM sync_implies b
                       JOIN integrations_role r ON r.integration_id = %(iid)s AND r.external_id = b.role) listed
                WHERE t.role_id = listed.id
                  AND NOT EXISTS (SELECT 1 FROM sync_implied w
                                  WHERE w.role_id = t.role_id AND w.implied_role_id = t.implied_role_id);
                INSERT INTO integrations_roleimplication (role_id, implied_role_id)
                    SELECT w.role_id, w.implied_role_id FROM sync_implied w
                    WHERE NOT EXISTS (SELECT 1 FROM integrations_roleimplication t
                                      WHERE t.role_id = w.role_id AND t.implied_role_id = w.implied_role_id);
                DROP TABLE sync_implied;
                """,
                params,
            )

    def accounts(self, rows: _AccountRows) -> None:
        with connection.cursor() as c:
            if rows.accounts:
                if self.fresh_accounts:
                    self._write_copies(c, rows.copies)
                    account_ids = inserted = rows.created
                else:
                    users = self._users_by_email()
                    account_ids, inserted = self._upsert_accounts(c, rows.accounts, users)
                    self.result.add("accounts_created", len(inserted))
                role_ids = self._role_ids_of(c, list(rows.held.values()))
                new = [(account_ids[e], held) for e, held in rows.held.items() if e in inserted]
                desired = {  # existing accounts: account id -> the role ids they hold now
                    account_ids[e]: {role_ids[r] for r in held if r in role_ids}
                    for e, held in rows.held.items()
                    if e not in inserted
                }
                gained = self._permission_changes(c, desired) if desired else []
                self._grant(c, new, role_ids, gained)
        if rows.deleted:
            self.remove_accounts(rows.deleted)

    def _upsert_accounts(
        self, c, accounts: list[dict], users: dict[str, int]
    ) -> tuple[dict[str, int], set[str]]:
        """Merge the batch into the accounts; return every account's id and the external ids it created."""
        iid, now = self.integration.pk, self.now
        self._copy(
            c,
            "sync_b_accounts",
            ("external_id", "identity", "email", "attributes", "enabled", "user_id"),
            (
                (a["external_id"], a["identity"], a["email"], a["attributes_json"], a["enabled"],
                 users.get(a["email"].lower()))
                for a in accounts
            ),
        )  # fmt: skip
        self._seen(c, "accounts", "sync_b_accounts", "account")
        c.execute(
            """
            INSERT INTO integrations_account AS t (integration_id, external_id, identity, email, attributes,
                enabled, user_id, first_seen_at, last_seen_at, removed_at, created_at, updated_at)
            SELECT %s, b.external_id, b.identity, b.email, b.attributes, b.enabled, b.user_id,
                %s, %s, NULL, %s, %s
            FROM sync_b_accounts b
            ON CONFLICT (integration_id, external_id) DO UPDATE
            SET identity = EXCLUDED.identity, email = EXCLUDED.email, attributes = EXCLUDED.attributes,
                enabled = EXCLUDED.enabled, user_id = COALESCE(EXCLUDED.user_id, t.user_id), removed_at = NULL,
                last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at
            WHERE (t.identity, t.email, t.attributes, t.enabled, t.removed_at IS NULL,
                   COALESCE(EXCLUDED.user_id, t.user_id))
                IS DISTINCT FROM (EXCLUDED.identity, EXCLUDED.email, EXCLUDED.attributes, EXCLUDED.enabled,
                   true, t.user_id)
            RETURNING external_id, id, (xmax = 0)
            """,
            [iid, now, now, now, now],
        )
        returned = c.fetchall()
        inserted = {external_id for external_id, _, new in returned if new}
        if len(returned) == len(accounts):
            return {external_id: pk for external_id, pk, _ in returned}, inserted
        c.execute(  # unchanged accounts are not returned by the upsert
            "SELECT a.external_id, a.id FROM sync_b_accounts b JOIN integrations_account a"
            " ON a.integration_id = %s AND a.external_id = b.external_id",
            [iid],
        )
        return dict(c.fetchall()), inserted

    def _permission_changes(self, c, desired: dict[int, set[int]]) -> list[tuple[int, set[int]]]:
        """End what these existing accounts no longer hold; return the roles each one gained."""
        c.execute(
            "SELECT id, account_id, role_id FROM integrations_permission"
            " WHERE account_id = ANY(%s) AND ended_at IS NULL",
            [list(desired)],
        )
        gone, gained = [], {a: set(roles) for a, roles in desired.items()}
        for pk, account_id, role_id in c.fetchall():
            if role_id in desired[account_id]:
                gained[account_id].discard(role_id)
            else:
                gone.append(pk)
        if gone:
            self._end_where(c, "id", gone)
        return [(a, roles) for a, roles in gained.items() if roles]

    COPY_CHUNK = 4096  # lines per write: PostgreSQL inserts one chunk while the next is formatted

    def _grant(
        self,
        c,
        new: list[tuple[int, list[str]]],
        role_ids: dict[str, int],
        gained: list[tuple[int, set[int]]],
    ) -> None:
        """COPY new external permissions straight into the permission table (ids only: no escaping needed):
        every role ``new`` accounts hold (by identity), and the role ids existing accounts ``gained``."""
        if not (new or gained):
            return
        iid, at = self.integration.pk, self.now.isoformat()
        rest = f"\texternal\t{at}\t{at}\n"
        granted: list[tuple[int, set[int]]] = []
        n = 0
        with c.cursor.copy(
            "COPY integrations_permission (integration_id, account_id, role_id, source, granted_at, last_seen_at)"
            " FROM STDIN"
        ) as copy:
            lines: list[str] = []
            for account_id, held in itertools.chain(
                ((a, {role_ids[r] for r in held if r in role_ids}) for a, held in new), gained
            ):
                lines += [f"{iid}\t{account_id}\t{r}{rest}" for r in held]
                if not self.first_sync:
                    granted.append((account_id, held))
                if len(lines) >= self.COPY_CHUNK:
                    copy.write("".join(lines))
                    n += len(lines)
                    lines = []
            if lines:
                copy.write("".join(lines))
                n += len(lines)
        self.result.add("permissions_created", n)
        if granted:
            self._external(
                granted=itertools.islice(
                    ((a, r) for a, roles in granted for r in roles), EXTERNAL_EVENTS_LIMIT
                ),
                count=n,
            )

    def _end_where(self, c, column: str, ids: list[int]) -> None:
        """End these active permissions, or those of these accounts or roles (``column``: id, account_id
        or role_id), recording them as external revokes."""
        c.execute(
            f"UPDATE integrations_permission SET ended_at = %s WHERE {column} = ANY(%s) AND ended_at IS NULL"
            " RETURNING account_id, role_id",
            [self.now, ids],
        )
        ended = c.fetchall()
        self.result.add("permissions_ended", len(ended))
        self._external(revoked=ended)

    def _remove(self, table: str, counter: str, external_ids: list[str]) -> list[int]:
        """Mark these objects removed (those not removed yet are counted); return the ids of all of them."""
        with connection.cursor() as c:
            c.execute(
                f"""
                WITH hit AS (SELECT id, removed_at FROM integrations_{table}
                             WHERE integration_id = %s AND external_id = ANY(%s)),
                     marked AS (UPDATE integrations_{table} t SET removed_at = %s FROM hit
                                WHERE t.id = hit.id AND hit.removed_at IS NULL RETURNING t.id)
                SELECT hit.id, EXISTS (SELECT 1 FROM marked WHERE marked.id = hit.id) FROM hit
                """,
                [self.integration.pk, external_ids, self.now],
            )
            hits = c.fetchall()
        self.result.add(counter, sum(1 for _, marked in hits if marked))
        return [pk for pk, _ in hits]

    def remove_roles(self, identities: list[str]) -> None:
        ids = self._remove("role", "roles_removed", identities)
        if ids:
            with connection.cursor() as c:
                self._end_where(c, "role_id", ids)

    def remove_accounts(self, external_ids: list[str]) -> None:
        ids = self._remove("account", "accounts_removed", external_ids)
        if ids:
            with connection.cursor() as c:
                self._end_where(c, "account_id", ids)

    STATISTICS = {  # table: (the counts of this run's changes to it, the columns its lookups filter on)
        "resource": (("resources_created", "resources_removed"), "integration_id, external_id, removed_at"),
        "role": (("roles_created", "roles_removed"), "integration_id, external_id, resource_id, removed_at"),
        "account": (("accounts_created", "accounts_removed"), "integration_id, external_id, removed_at"),
        "permission": (
            ("permissions_created", "permissions_ended"),
            "integration_id, account_id, role_id, ended_at",
        ),
    }

    def refresh_statistics(self) -> None:
        """ANALYZE the tables this run changed by more than a tenth since the last look (or never analysed).

        Autovacuum would get there later; until then a bulk load leaves the planner estimating
        from the tables it saw before — an integration it believes empty — and the next phase,
        delta run or list screen picks plans that read the whole integration once per row.
        ANALYZE samples a fixed number of rows (this transaction's own included), so it costs a
        fraction of a second however large the table, and its figures commit with the sync."""
        counts, before = self.result.counts, self.analyzed_at_counts
        changed = {
            t: sum(counts.get(k, 0) - before.get(k, 0) for k in keys)
            for t, (keys, _) in self.STATISTICS.items()
        }
        changed = {t: n for t, n in changed.items() if n}
        self.analyzed_at_counts = dict(counts)
        if not changed:
            return
        with connection.cursor() as c:
            c.execute(
                "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)",
                [[f"integrations_{t}" for t in changed]],
            )
            estimates = dict(c.fetchall())
            for table, n in changed.items():
                estimate = estimates.get(f"integrations_{table}", -1)
                if (
                    estimate < 0 or n > 0.1 * estimate + 1000
                ):  # the lookup columns only: autovacuum does the rest
                    c.execute(f"ANALYZE integrations_{table} ({self.STATISTICS[table][1]})")

    def between_listings(self) -> None:
        if not (self.fresh_accounts and self.roles_known):  # else the account listing looks nothing up
            self.refresh_statistics()

    def mark_unseen_removed(self) -> None:
        iid, now = self.integration.pk, self.now
        with connection.cursor() as c:
            for table, kind in (("resource", "resources"), ("role", "roles"), ("account", "accounts")):
                if self.fresh_accounts if kind == "accounts" else self.fresh_inventory:
                    continue  # every one there is came from this run
                c.execute(
                    f"""
                    UPDATE integrations_{table} t SET removed_at = %s
                    WHERE t.integration_id = %s AND t.removed_at IS NULL
                      AND NOT EXISTS (SELECT 1 FROM sync_seen_{kind} s WHERE s.external_id = t.external_id)
                    """,
                    [now, iid],
                )
                self.result.add(f"{kind}_removed", c.rowcount)
        self._end_of_removed()


def _all_durations() -> list[str]:
    from ..durations import ALL_DURATIONS

    return list(ALL_DURATIONS)


# -------------------------------------------------------------------------------------------------
# The service


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
            reason = str(exc) if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
            message = f"Sync of {integration.name} failed: {reason}"
            _record_failure(integration, message, full, result)
            raise SyncError(message) from exc
    _notify_external_changes(integration, result)
    return result


def _after_ingest(integration: Integration, result: SyncResult) -> None:
    """Rules run on what this run discovered."""
    try:
        from .rules import rules_apply_to_new
    except ImportError:  # rules arrive with the Manage Rules screen
        return
    if result.new_resource_ids or result.new_role_ids:
        result.add(
            "rule_changes",
            rules_apply_to_new(
                integration=integration, resource_ids=result.new_resource_ids, role_ids=result.new_role_ids
            )
            or 0,
        )


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


def _record_external(result: SyncResult, granted=(), revoked=(), count: int | None = None) -> None:
    """Record permission changes made outside the portal (itemised up to the run's limit).
    ``count``: how many grants ``granted`` stands for, when it is a capped iterator."""
    granted, revoked = list(granted), list(revoked)
    room = EXTERNAL_EVENTS_LIMIT - len(result.external_grants) - len(result.external_revokes)
    result.external_grants += granted[: max(room, 0)]
    room -= len(granted)
    result.external_revokes += revoked[: max(room, 0)]
    result.add("external_grants", len(granted) if count is None else count)
    result.add("external_revokes", len(revoked))


def _notify_external_changes(integration: Integration, result: SyncResult) -> None:
    """Audit permission changes made outside the portal, and alert when the integration asks for it."""
    granted, revoked = result.counts.get("external_grants", 0), result.counts.get("external_revokes", 0)
    if not (granted or revoked):
        return
    pairs = [("permission.external_grant", p) for p in result.external_grants] + [
        ("permission.external_revoke", p) for p in result.external_revokes
    ]
    accounts = dict(Account.objects.filter(pk__in={a for _, (a, _) in pairs}).values_list("id", "identity"))
    roles = {  # as Role.__str__ names them, without loading whole roles
        pk: f"{resource} · {name}"
        for pk, resource, name in Role.objects.filter(pk__in={r for _, (_, r) in pairs}).values_list(
            "pk", "resource__name", "name"
        )
    }
    audit.record_many(
        {
            "action": action,
            "object_type": Permission,
            "object_id": f"{account_id}:{role_id}",
            "object_repr": f"{accounts.get(account_id, account_id)} → {roles.get(role_id, role_id)}",
            "integration_id": integration.pk,
            "details": {"account_id": account_id, "role_id": role_id},
        }
        for action, (account_id, role_id) in pairs
    )
    if not integration.notify_external_permission_changes:
        return
    lines = [
        f"{'+' if action.endswith('grant') else '−'} {accounts.get(a, a)} → {roles.get(r, r)}"
        for action, (a, r) in pairs[:20]
    ]
    more = granted + revoked - len(lines)
    text = (
        f"{granted} permission(s) granted and {revoked} revoked in {integration.name} outside the portal.\n"
        + "\n".join(lines)
        + (f"\n… and {more} more." if more > 0 else "")
    )
    recipients = {u.pk: u for u in [integration.owner, *notifications.admins()] if u is not None}
    notifications.notify(
        subject=f"External permission changes in {integration.name}",
        text=text,
        recipients=recipients.values(),
        webhooks=[integration.notification_webhook_url],
        link=_absolute(reverse("admin:integrations_integration_change", args=[integration.pk])),
    )


def _absolute(path: str) -> str:
    base = getattr(settings, "PORTAL_URL", "").rstrip("/")
    return f"{base}{path}" if base else path


# -------------------------------------------------------------------------------------------------
# Jobs: queue a sync, run it as a job with progress


def sync_start(*, actor, integration: Integration, full: bool | None = None) -> Job:
    """Queue a sync of ``integration``. Another sync already queued or running: the returned job is ``skipped``."""
    from ..tasks import queue_for, run_sync_job

    job = job_start(
        actor=actor, kind="sync", integration_id=integration.pk, subject=integration, params={"full": full}
    )
    if job.status == Job.Status.QUEUED:
        job_send(job, run_sync_job, queue=queue_for(integration))
        job.refresh_from_db()  # sent (or run, without a broker), or failed to send
    return job


def sync_run(*, job_id) -> Job:
    """Run a queued sync job (the task calls this). Safe to call again for the same job: a finished
    job is left alone, a job whose worker died is run again from the start."""
    job = Job.objects.get(pk=job_id)
    if job.is_finished:
        return job
    with JobRun(job) as run:
        return _sync_run(job, run)


def _sync_run(job: Job, run: JobRun) -> Job:
    if job.cancel_requested:
        return run.finish(Job.Status.CANCELLED, message="Cancelled before it started.")
    integration = Integration.objects.filter(pk=job.integration_id, deletion_started_at=None).first()
    if integration is None:
        return run.finish(Job.Status.FAILED, error="The integration was deleted.")
    run.start(phase="connecting")

    def progress(counts: dict, phase: str) -> None:
        run.progress(counts=counts, done=counts.get("read", 0), phase=phase)

    full = job.params.get("full")
    try:
        result = sync_integration(
            actor=job.created_by,
            integration=integration,
            full=full,
            progress=progress,
            should_cancel=run.should_cancel,
        )
    except SyncCancelled as exc:
        return run.finish(Job.Status.CANCELLED, message=str(exc))
    except SyncError as exc:
        return run.finish(Job.Status.FAILED, error=str(exc), message=str(exc))
    run.progress(counts=result.counts, done=result.counts.get("read", 0), phase="done", force=True)
    summary = (
        ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(result.counts.items())) or "no changes"
    )
    return run.finish(
        Job.Status.SUCCEEDED, message=f"{'Full' if result.full else 'Delta'} sync done: {summary}."
    )
