"""Identity sources: an integration's accounts create and update people.

- **Apply** (:func:`identity_source_apply`): reads the source integration's live accounts (what its last
  sync found), maps each through the source's ``mapping`` and matches it to a person by the key field
  (``employee_id``, else ``username``). Set-based: a handful of batched reads, then bulk writes, whatever
  the number of people. It creates the people it does not know (``people.person_build``: a user with an
  unusable password and their person), updates what changed, records the source on each person
  (``Person.source``) and links each account to its person (``Account.user``). People the source fed
  before and no longer lists become terminated.
- **Precedence**: when several enabled sources feed one person, each field takes the value of the source
  with the lowest ``position`` that gives a non-empty one (read from the accounts each source linked);
  a field no source gives a value for is emptied.
- **Managers** are resolved in a second pass, once every person of the run exists, so a manager listed
  after their report is found. A reference that points to nobody, or managers that would make a cycle,
  is one message naming the people, and nothing of the run is kept (one transaction; run from a sync, the
  sync fails with it).
- **Mass-leaver guard**: a run that would terminate more than ``leaver_limit_percent`` of the source's
  active people (an empty file, a wrong LDAP base, a broken filter) applies nothing: the source records the
  run as pending, the integration's owner (else the admins) is alerted, and an admin confirms it
  (:func:`identity_source_confirm`, the run again with the guard waived once) or discards it
  (:func:`identity_source_discard`).

Every change is audited: one ``person.create`` / ``person.update`` event per person (written at once) and
one ``identity_source.apply`` event with the counts.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from governance import audit, notifications
from governance.audit import audit_context
from integrations.models import Account
from integrations.rights import is_admin

from ..models import IdentitySource, Person
from ..validators import SOURCE_FIELDS
from .people import PERSON_FIELDS, USER_FIELDS, person_build

__all__ = [
    "identity_source_apply",
    "identity_source_confirm",
    "identity_source_discard",
    "identity_source_save",
]

# Person fields kept on the user besides USER_FIELDS.
_USER_ONLY = ("username",)
_DATES = ("start_date", "end_date")
# How many names a pending run's summary lists.
SUMMARY_NAMES = 10


def identity_source_save(*, actor, source: IdentitySource) -> IdentitySource:
    """Create or change an identity source (admins only), validated whole, audited."""
    if not is_admin(actor):
        raise PermissionDenied("Only admins change identity sources.")
    source.full_clean()
    with audit_context(actor=actor), transaction.atomic():
        source.save()
    return source


# -- reading the accounts -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, bool):  # JSON's true / false, as the status words name them
        return "true" if value else "false"
    return "" if value is None else str(value).strip()


def _status(source: IdentitySource, raw: str) -> str:
    if not raw:
        return ""
    word = raw.lower()
    for status in ("terminated", "leave", "active"):
        if word == status or word in {str(v).strip().lower() for v in source.status_values.get(status) or []}:
            return status
    return "active"


def _values(
    source: IdentitySource, attributes: dict, label: str, bad_emails: list[str] | None = None
) -> dict[str, Any]:
    """The person fields an account gives (non-empty ones only), normalised; the manager stays a reference.
    An email that is not a valid address is left out (the person keeps the one they have) and its account
    named in ``bad_emails``: one bad address in an HR export does not hold up everybody's changes."""
    out: dict[str, Any] = {}
    for field, attribute in source.mapping.items():
        if not attribute or field not in SOURCE_FIELDS:
            continue
        raw = _text(attributes.get(attribute))
        if not raw:
            continue
        if field == "status":
            out[field] = _status(source, raw)
        elif field == "email":
            try:
                validate_email(raw)
            except ValidationError:
                if bad_emails is not None:
                    bad_emails.append(label)
                continue
            out[field] = raw
        elif field in _DATES:
            try:
                out[field] = datetime.date.fromisoformat(raw[:10])
            except ValueError:
                raise ValidationError(
                    f"{source.integration.name}: {label} has {attribute} {raw!r}, which is not a date "
                    "(YYYY-MM-DD)."
                ) from None
        else:
            out[field] = raw
    return out


def _accounts(source: IdentitySource, user_ids=None):
    qs = Account.objects.filter(integration_id=source.integration_id, removed_at__isnull=True)
    if user_ids is not None:
        qs = qs.filter(user_id__in=user_ids)
    return qs.values_list("pk", "external_id", "attributes", "user_id").iterator(chunk_size=5000)


# -- the run ------------------------------------------------------------------------------------------


def identity_source_apply(*, source: IdentitySource, actor=None, waive_guard: bool = False) -> dict:
    """Bring people in line with the source's accounts (see the module's docstring); returns the summary.

    Raises ``ValidationError`` (nothing kept) for a manager reference to nobody, a manager cycle, a bad
    value or a key given twice. A held run returns ``{"pending": True, ...}`` and changes no person.
    """
    if actor is not None and not is_admin(actor):
        raise PermissionDenied("Only admins apply identity sources.")
    with audit_context(actor=actor), transaction.atomic():
        source = IdentitySource.objects.select_for_update().select_related("integration").get(pk=source.pk)
        if not source.enabled:
            return {"skipped": "disabled"}
        return _Run(source).apply(waive_guard=waive_guard)


class _Run:
    def __init__(self, source: IdentitySource) -> None:
        self.source = source
        self.integration = source.integration
        self.key_field = source.key_field
        self.User = get_user_model()

    def apply(self, *, waive_guard: bool) -> dict:
        source, key_field = self.source, self.key_field
        if key_field is None:
            raise ValidationError(f"The identity source {self.integration.name} maps no key field.")
        # 1. The source's accounts, by key.
        by_key: dict[str, dict] = {}
        accounts: dict[str, int] = {}  # key -> account id
        skipped = 0
        bad_emails: list[str] = []
        for account_id, external_id, attributes, _user in _accounts(source):
            values = _values(source, attributes or {}, f"account {external_id!r}", bad_emails)
            key = values.get(key_field)
            if not key:
                skipped += 1
                continue
            if key in by_key:
                raise ValidationError(
                    f"{self.integration.name}: two accounts give the {key_field} {key!r} "
                    f"({external_id!r} is the second)."
                )
            by_key[key] = values
            accounts[key] = account_id
        # 2. Who they are: the people matched by key, and those this source fed before.
        if key_field == "employee_id":
            matched = dict(
                Person.objects.filter(employee_id__in=list(by_key)).values_list("employee_id", "pk")
            )
        else:
            matched = dict(self.User.objects.filter(username__in=list(by_key)).values_list("username", "pk"))
        gone = list(
            Person.objects.filter(source_id=self.integration.pk)
            .exclude(pk__in=list(matched.values()))
            .values_list("pk", flat=True)
        )
        existing_ids = [*matched.values(), *gone]
        people = {p.pk: p for p in Person.objects.select_related("user").filter(pk__in=existing_ids)}
        # 3. What the other sources say of the same people (precedence).
        others = self._other_values(existing_ids)
        desired: dict[int | str, dict] = {}  # user id (existing) or key (new) -> winning values
        for key, values in by_key.items():
            pk = matched.get(key)
            desired[pk if pk is not None else key] = self._winner(values, others.get(pk, []))
        for pk in gone:
            desired[pk] = self._winner({"status": "terminated"}, others.get(pk, []), own_fields=("status",))
        # 4. The guard against mass leavers.
        active_ids = set(
            Person.objects.filter(source_id=self.integration.pk, status=Person.Status.ACTIVE).values_list(
                "pk", flat=True
            )
        )
        leavers = [
            people[pk]
            for pk in active_ids
            if pk in people and desired.get(pk, {}).get("status") == Person.Status.TERMINATED
        ]
        limit = source.leaver_limit_percent
        if not waive_guard and leavers and len(leavers) * 100 > limit * len(active_ids):
            return self._hold(leavers, len(active_ids), len(by_key))
        # 5. Write: new people, changed people, account links; then managers.
        created = self._create([k for k in by_key if k not in matched], desired)
        for key, pk in created.items():
            desired[pk] = desired.pop(key)
            matched[key] = pk
        updates = self._update(people, desired)
        self._link({accounts[key]: matched[key] for key in by_key if key in accounts})
        managers = self._managers(desired)
        Person.objects.filter(pk__in=list(desired)).exclude(source_id=self.integration.pk).update(
            source_id=self.integration.pk
        )
        self._audit(created, updates, managers)
        summary = {
            "accounts": len(by_key),
            "skipped": skipped,
            "created": len(created),
            # People this run created are "created" only, though it also set their managers.
            "updated": len({*updates, *managers} - set(created.values())),
            "terminated": len(leavers),
            "bad_emails": len(bad_emails),
            "bad_email_accounts": bad_emails[:20],
        }
        IdentitySource.objects.filter(pk=source.pk).update(
            last_applied_at=timezone.now(), last_summary=summary, pending_since=None, pending_summary={}
        )
        audit.record("identity_source.apply", obj=source, details={"counts": summary})
        return summary

    # -- precedence -------------------------------------------------------------------------------------

    def _link(self, holders: dict[int, int]) -> None:
        """Link each source account to its person, as a sync's correlation does: never an account linked
        by hand or by a grant, nor a service account (a person decided those)."""
        ids = list(holders)
        for start in range(0, len(ids), 5000):
            batch = ids[start : start + 5000]
            free = Account.objects.filter(
                pk__in=batch,
                service_account=False,
                link_source__in=[Account.LinkSource.NONE, Account.LinkSource.CORRELATION],
            ).values_list("pk", flat=True)
            links = [
                Account(pk=pk, user_id=holders[pk], link_source=Account.LinkSource.CORRELATION) for pk in free
            ]
            Account.objects.bulk_update(links, ["user", "link_source"], batch_size=2000)

    def _other_values(self, user_ids: list[int]) -> dict[int, list[tuple[tuple, IdentitySource, dict]]]:
        """For each person, what every other enabled source's linked account gives: (rank, source, values)."""
        out: dict[int, list] = defaultdict(list)
        if not user_ids:
            return out
        sources = IdentitySource.objects.select_related("integration").filter(enabled=True)
        for other in sources.exclude(pk=self.source.pk):
            for _id, external_id, attributes, user_id in _accounts(other, user_ids):
                values = _values(other, attributes or {}, f"account {external_id!r}")
                out[user_id].append(((other.position, other.pk), other, values))
        return out

    def _winner(self, own: dict, others: list, own_fields=None) -> dict:
        """Each field this source maps: the value of the lowest-positioned source that gives one, else empty.
        The manager stays a reference, with the source that gave it (to be resolved by that source's key)."""
        fields = own_fields or [f for f, a in self.source.mapping.items() if a]
        ranked = sorted(
            [((self.source.position, self.source.pk), self.source, own), *others], key=lambda r: r[0]
        )
        out: dict[str, Any] = {}
        for field in fields:
            for _rank, source, values in ranked:
                if values.get(field) not in (None, ""):
                    out[field] = (source, values[field]) if field == "manager" else values[field]
                    break
            else:
                if field != "status":  # a status nobody gives stays as it is (a new person is active)
                    out[field] = None if field in (*_DATES, "manager") else ""
        return out

    # -- writes -----------------------------------------------------------------------------------------

    def _create(self, keys: list[str], desired: dict) -> dict[str, int]:
        """Create the people of ``keys`` at once; their user ids by key."""
        if not keys:
            return {}
        wanted = {}
        for key in keys:
            values = desired[key]
            wanted[key] = values.get("username") or values.get("email") or key
        taken = set(
            self.User.objects.filter(username__in=list(wanted.values())).values_list("username", flat=True)
        )
        users, persons = [], []
        for key in keys:
            values = {f: v for f, v in desired[key].items() if f not in ("manager", "username")}
            username = wanted[key] if wanted[key] not in taken else f"{wanted[key]}-{key}"
            taken.add(username)
            fields = {f: v for f, v in values.items() if f in USER_FIELDS or f in PERSON_FIELDS}
            if self.key_field == "employee_id":
                fields["employee_id"] = key
            fields["source"] = self.integration
            user, person = person_build(username=username, **fields)
            self._clean(user, person, key)
            users.append(user)
            persons.append(person)
        self.User.objects.bulk_create(users, batch_size=2000)
        for user, person in zip(users, persons, strict=True):
            person.user = user
        Person.objects.bulk_create(persons, batch_size=2000)
        return {key: user.pk for key, user in zip(keys, users, strict=True)}

    def _clean(self, user, person, label: str) -> None:
        """Each field's own validation (no query: uniqueness and the manager are checked set-based)."""
        try:
            user.clean_fields(exclude=["password", "last_login", "manager", "username"])
            person.clean_fields(exclude=["user", "source", "attributes"])
        except ValidationError as exc:
            problems = "; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items())
            raise ValidationError(f"{self.integration.name}: {label}: {problems}") from None
        if person.start_date and person.end_date and person.end_date < person.start_date:
            raise ValidationError(
                f"{self.integration.name}: {label}: the end date ({person.end_date}) is before the start "
                f"date ({person.start_date})."
            )

    def _update(self, people: dict[int, Person], desired: dict) -> dict[int, dict]:
        """Write what changed on existing people (bulk); their changes by user id."""
        changes: dict[int, dict] = {}
        users, persons = [], []
        user_fields, person_fields = set(), set()
        for pk, person in people.items():
            values = desired.get(pk)
            if values is None:
                continue
            user = person.user
            changed: dict[str, dict] = {}
            for field, value in values.items():
                if field in ("manager", self.key_field):
                    continue
                target = user if field in USER_FIELDS or field in _USER_ONLY else person
                if field == "username":
                    continue  # a person's username is not renamed by a source
                if getattr(target, field) != value:
                    changed[field] = {"before": _plain(getattr(target, field)), "after": _plain(value)}
                    setattr(target, field, value)
                    (user_fields if target is user else person_fields).add(field)
            if changed:
                person.updated_at = timezone.now()
                self._clean(user, person, str(person))
                changes[pk] = changed
                users.append(user)
                persons.append(person)
        if user_fields:
            self.User.objects.bulk_update(users, sorted(user_fields), batch_size=2000)
        if person_fields:
            Person.objects.bulk_update(persons, [*sorted(person_fields), "updated_at"], batch_size=2000)
        return changes

    # -- managers ---------------------------------------------------------------------------------------

    def _managers(self, desired: dict[int, dict]) -> dict[int, dict]:
        """Resolve and set managers, once everybody exists; refuse references to nobody and cycles."""
        if "manager" not in self.source.mapping or not self.source.mapping["manager"]:
            return {}
        refs: dict[IdentitySource, set[str]] = defaultdict(set)
        for values in desired.values():
            if values.get("manager"):
                source, ref = values["manager"]
                refs[source].add(ref)
        lookups = {source: self._lookup(source, wanted) for source, wanted in refs.items()}
        current = dict(self.User.objects.values_list("pk", "manager_id"))
        names = {}
        wanted_manager: dict[int, int | None] = {}
        dangling = []
        for pk, values in desired.items():
            if "manager" not in values:
                continue
            if values["manager"] is None:
                wanted_manager[pk] = None
                continue
            source, ref = values["manager"]
            target = lookups[source].get(ref.lower())
            if target is None:
                dangling.append((pk, ref, source))
            else:
                wanted_manager[pk] = target
        if dangling:
            names = self._names([pk for pk, _r, _s in dangling])
            raise ValidationError(
                "Managers that point to nobody: "
                + "; ".join(
                    f"{names[pk]} → {source.get_manager_key_display().lower()} {ref!r} ({source.integration.name})"
                    for pk, ref, source in dangling[:20]
                )
                + (f" and {len(dangling) - 20} more" if len(dangling) > 20 else "")
                + ". Nothing was applied."
            )
        graph = {**current, **wanted_manager}
        cycle = _cycle(
            graph, [pk for pk, m in wanted_manager.items() if m is not None and m != current.get(pk)]
        )
        if cycle:
            names = self._names(cycle)
            raise ValidationError(
                "This would make a cycle of managers: "
                + " → ".join(names[pk] for pk in cycle)
                + ". Nothing was applied."
            )
        changed = {pk: m for pk, m in wanted_manager.items() if current.get(pk) != m}
        self.User.objects.bulk_update(
            [self.User(pk=pk, manager_id=m) for pk, m in changed.items()], ["manager"], batch_size=2000
        )
        return {pk: {"manager": {"before": current.get(pk), "after": m}} for pk, m in changed.items()}

    def _lookup(self, source: IdentitySource, refs: set[str]) -> dict[str, int]:
        """Reference (lower-case) → user id, in one query, by the source's manager key."""
        refs_lower = {r.lower() for r in refs}
        key = source.manager_key
        if key == IdentitySource.ManagerKey.ACCOUNT:
            rows = Account.objects.filter(
                integration_id=source.integration_id, removed_at__isnull=True, user_id__isnull=False
            ).values_list("external_id", "user_id")
        elif key == IdentitySource.ManagerKey.EMPLOYEE_ID:
            rows = Person.objects.filter(employee_id__in=refs).values_list("employee_id", "pk")
        else:
            rows = self.User.objects.filter(**{f"{key}__in": list(refs | refs_lower)}).values_list(key, "pk")
        return {str(ref).lower(): pk for ref, pk in rows if str(ref).lower() in refs_lower}

    def _names(self, pks) -> dict[int, str]:
        rows = Person.objects.select_related("user").filter(pk__in=list(pks))
        out = {}
        for p in rows:
            ident = p.employee_id or p.user.get_username()
            out[p.pk] = f"{p.name} ({ident})"
        return out

    # -- audit and the guard ----------------------------------------------------------------------------

    def _audit(self, created: dict[str, int], updates: dict[int, dict], managers: dict[int, dict]) -> None:
        events = []
        for key, pk in created.items():
            events.append(
                {"action": "person.create", "object_type": Person, "object_id": pk, "object_repr": key,
                 "details": {"source": self.integration.name}}
            )  # fmt: skip
        for pk in {*updates, *managers} - set(created.values()):
            changes = {**updates.get(pk, {}), **managers.get(pk, {})}
            events.append(
                {"action": "person.update", "object_type": Person, "object_id": pk,
                 "details": {"source": self.integration.name, "changes": changes}}
            )  # fmt: skip
        audit.record_many(events)

    def _hold(self, leavers: list[Person], active: int, accounts: int) -> dict:
        source = self.source
        names = sorted(p.name for p in leavers)
        summary = {
            "pending": True,
            "accounts": accounts,
            "active": active,
            "terminated": len(leavers),
            "limit_percent": source.leaver_limit_percent,
            "names": names[:SUMMARY_NAMES],
        }
        now = timezone.now()
        IdentitySource.objects.filter(pk=source.pk).update(pending_since=now, pending_summary=summary)
        source.pending_since, source.pending_summary = now, summary
        audit.record("identity_source.held", obj=source, details=summary)
        integration = self.integration
        text = (
            f"Applying the identity source {integration.name} would terminate {len(leavers)} of its "
            f"{active} active people (more than {source.leaver_limit_percent}%): "
            + ", ".join(names[:SUMMARY_NAMES])
            + ("…" if len(names) > SUMMARY_NAMES else "")
            + ". Nothing was applied; an admin confirms or discards the run on the identity source's page."
        )
        recipients = [u for u in [integration.owner] if u is not None] or list(notifications.admins())
        transaction.on_commit(
            lambda: notifications.notify(
                subject=f"Identity source held: {integration.name}",
                text=text,
                recipients=recipients,
                webhooks=[integration.notification_webhook_url],
            )
        )
        return summary


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date) else value


def _cycle(graph: dict[int, int | None], starts: list[int]) -> list[int]:
    """A cycle of managers through one of ``starts`` (the person first and last), else []."""
    for start in starts:
        seen = [start]
        current = graph.get(start)
        while current is not None and len(seen) <= len(graph):
            if current == start:
                return [*seen, start]
            if current in seen:
                break
            seen.append(current)
            current = graph.get(current)
    return []


# -- the pending run ----------------------------------------------------------------------------------


def identity_source_confirm(*, actor, source: IdentitySource) -> dict:
    """Apply the held run with the guard waived once (admins only)."""
    if not is_admin(actor):
        raise PermissionDenied("Only admins confirm an identity source's held run.")
    if source.pending_since is None:
        raise ValidationError("This identity source has no held run to confirm.")
    with audit_context(actor=actor), transaction.atomic():
        audit.record("identity_source.confirm", obj=source, details=source.pending_summary)
        return identity_source_apply(source=source, actor=actor, waive_guard=True)


def identity_source_discard(*, actor, source: IdentitySource) -> None:
    """Drop the held run: people stay as they are (admins only)."""
    if not is_admin(actor):
        raise PermissionDenied("Only admins discard an identity source's held run.")
    with audit_context(actor=actor), transaction.atomic():
        source = IdentitySource.objects.select_for_update().get(pk=source.pk)
        if source.pending_since is None:
            raise ValidationError("This identity source has no held run to discard.")
        audit.record("identity_source.discard", obj=source, details=source.pending_summary)
        IdentitySource.objects.filter(pk=source.pk).update(pending_since=None, pending_summary={})
        source.pending_since, source.pending_summary = None, {}
