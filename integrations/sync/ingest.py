"""Ingest: what the connector's objects become, and the writer every database can run.

Owns the rows' shapes, the mapping of connector objects to rows (pure: it runs in the reading
thread), and :class:`_Ingest`, the shape both writers share (the sync calls the same steps on
either), which writes with the ORM's bulk upserts: the writer of the embedded SQLite default.
The PostgreSQL writer (:mod:`.postgres`) overrides its writing steps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case, Q, Value, When

from connectors.sdk import ConnectorError

from ..models import Account, Integration, Maintainer, Permission, Resource, Role, RoleImplication
from . import reader
from .events import _record_external
from .result import SyncResult


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


def _correlation_link(user_id: int | None) -> str:
    """The link source of an account the correlation linked to ``user_id`` (None: to nobody)."""
    return Account.LinkSource.NONE if user_id is None else Account.LinkSource.CORRELATION


def _first(value):
    if isinstance(value, list):
        return value[0] if value else None
    return value


class DuplicateObject(ConnectorError):
    pass


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
        """Portal users by lower-cased email, read once per run: the correlation accounts are linked by.
        Lowered here, not in SQL (SQLite's LOWER knows only ASCII); an email two users share correlates
        to nobody, for a person to decide."""
        if self._email_users is None:
            users: dict[str, int] = {}
            shared: set[str] = set()
            for email, pk in get_user_model().objects.exclude(email="").values_list("email", "id"):
                key = email.lower()
                if key in users:
                    shared.add(key)
                users[key] = pk
            self._email_users = {key: pk for key, pk in users.items() if key not in shared}
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
        """Record permission changes made outside the portal (see :func:`.events._record_external`);
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
            batch_size=reader.BATCH_SIZE,
        )

    def accounts(self, rows: _AccountRows) -> None:
        integration, now = self.integration, self.now
        if rows.accounts:
            keys = [a["external_id"] for a in rows.accounts]
            self._check_duplicates(keys, Account, "account")
            users = self._users_by_email()
            correlated = {a["external_id"]: users.get(a["email"].lower()) for a in rows.accounts}
            existing = {
                external_id: (pk, link)
                for external_id, pk, *link in Account.objects.filter(
                    integration=integration, external_id__in=keys
                ).values_list("external_id", "id", "user_id", "link_source", "service_account")
            }
            Account.objects.bulk_create(
                [
                    Account(
                        integration=integration,
                        user_id=correlated[a["external_id"]],
                        link_source=_correlation_link(correlated[a["external_id"]]),
                        first_seen_at=now,
                        last_seen_at=now,
                        **a,
                    )
                    for a in rows.accounts
                ],
                update_conflicts=True,
                unique_fields=["integration", "external_id"],
                # Not the link: an existing account's is the sync's to change only if the sync made it.
                update_fields=["identity", "email", "attributes", "enabled", "last_seen_at", "removed_at"],
            )
            self._correlate(existing, correlated)
            self.result.add("accounts_created", len(set(keys) - existing.keys()))
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

    CORRELATE_CHUNK = 500  # accounts per UPDATE of links (two parameters each, within SQLite's limit)

    def _correlate(self, existing: dict[str, tuple[int, list]], correlated: dict[str, int | None]) -> None:
        """Bring the links of this batch's existing accounts in line with their correlation, set-based: one
        UPDATE clears the links whose correlation found nobody any more, one per chunk sets the others
        (a CASE over the ids). Only links the sync may change: none yet or its own, not a service account's
        (:data:`Account.SYNC_MANAGED`, also checked by the statements)."""
        clear, link = [], {}
        for external_id, (pk, (user_id, source, service)) in existing.items():
            if service or source not in Account.SYNC_MANAGED:
                continue
            wanted = correlated[external_id]
            if (user_id, source) == (wanted, _correlation_link(wanted)):
                continue
            if wanted is None:
                clear.append(pk)
            else:
                link[pk] = wanted
        managed = Account.objects.filter(link_source__in=Account.SYNC_MANAGED, service_account=False)
        if clear:
            managed.filter(pk__in=clear).update(user=None, link_source=Account.LinkSource.NONE)
        ids = list(link)
        for start in range(0, len(ids), self.CORRELATE_CHUNK):
            chunk = ids[start : start + self.CORRELATE_CHUNK]
            managed.filter(pk__in=chunk).update(
                user_id=Case(*(When(pk=pk, then=Value(link[pk])) for pk in chunk)),
                link_source=Account.LinkSource.CORRELATION,
            )

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
            batch_size=reader.BATCH_SIZE,
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
