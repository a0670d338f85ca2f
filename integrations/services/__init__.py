"""Writes to the inventory and its policy.

Every service is ``<entity>_<action>(*, actor, ...)``, validates fully before writing,
runs in one transaction and is audited (model writes through the audit signals, under
the actor's audit context).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import contextmanager

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from connectors.sdk.spec import CONNECTION_OPTION_KEY
from governance.audit import audit_context

from ..catalogue import env_reference, get_connector, split_secrets
from ..models import Integration, Maintainer, Resource, Role, RoleImplication, Tag
from ..rights import can_cancel_job, can_change_policy, is_admin, policy_changes
from ..validators import implication_cycle

__all__ = [
    "integration_create",
    "integration_update",
    "integration_set_connection",
    "job_stop",
    "connection_merge",
    "integration_delete",
    "integration_delete_start",
    "resource_update",
    "role_update",
    "role_set_implied_roles",
    "maintainer_add",
    "maintainer_remove",
    "tags_for",
    "integration_test_connection",
]


@contextmanager
def _write(actor):
    with audit_context(actor=actor), transaction.atomic():
        yield


def check_policy_change(actor, obj, fields: dict) -> None:
    """Refuse a change of ``obj``'s owner or approval workflow by someone the access rule does not
    allow (``actor`` None: the portal itself, e.g. a rule an admin wrote, applied by a sync)."""
    if actor is None:
        return
    changed = policy_changes(obj, fields)
    if changed and not can_change_policy(actor, obj):
        what = " and ".join(name.replace("_", " ") for name in changed)
        raise PermissionDenied(
            f"Only admins and the integration's owner may change the {what} of {obj}; "
            "an integration's own owner and maintainers, and a resource's owner, may not."
        )


def _apply(obj, fields: dict) -> None:
    for name, value in fields.items():
        if not hasattr(obj, name):
            raise ValidationError({name: "Unknown field."})
        setattr(obj, name, value)


def connection_merge(*, actor, integration: Integration, config, agent_changed: bool = False) -> None:
    """Set (unsaved) the connection config; secret items left out or empty keep their stored value — unless the
    connection now goes somewhere else (an address item of the spec changed, or the agent running it):
    then the stored secrets are cleared, and only secrets given in the same change are kept. Environment
    references (``{"$env": NAME}``) may be set by admins only."""
    if not isinstance(config, dict):
        raise ValidationError({"connection_config": "The connection config must be a JSON object."})
    connector = get_connector(integration.application)
    plain, secret = split_secrets(connector, config)
    given = {k: v for k, v in secret.items() if v not in ("", None)}
    stored = integration.connection_secrets or {}
    before = integration.connection_config or {}
    moved = [k for k in connector.spec.address_keys if _as_text(before.get(k)) != _as_text(plain.get(k))]
    if connector.spec.connection_options and _option(connector, before) != _option(connector, plain):
        moved.append(CONNECTION_OPTION_KEY)  # the option decides the TLS mode and the default port
    going_elsewhere = integration.pk is not None and bool(moved or agent_changed)
    if actor is not None and not is_admin(actor):  # None: the portal itself (the demo, a migration)
        for key, value in given.items():
            # Giving the stored reference again with a new address would send its value there.
            if env_reference(value) is not None and (value != stored.get(key) or going_elsewhere):
                raise ValidationError(
                    {"connection_config": f"config item {key!r}: only admins may set environment references."}
                )
    if not going_elsewhere:
        kept = {k: v for k, v in stored.items() if k not in given}
    else:
        kept = {}
        cleared = sorted(k for k in stored if k not in given)
        if cleared:
            integration._secrets_cleared_because = (cleared, moved or ["agent"])
    integration.connection_config = plain
    integration.connection_secrets = {**kept, **given}


def _option(connector, config: dict) -> str:
    """The connection option a config chooses; none named is the spec's first (the connectors' default)."""
    return _as_text(config.get(CONNECTION_OPTION_KEY)) or connector.spec.connection_options[0].key


def _as_text(value) -> str:
    """A config value as compared for a change of address: 5432 and "5432" are the same, "" is unset."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value, sort_keys=True)


def integration_create(
    *, actor, application: str, name: str, connection_config=None, **fields
) -> Integration:
    integration = Integration(application=application, name=name)
    get_connector(application)  # unknown application: a clear error before anything else
    connection_merge(actor=actor, integration=integration, config=connection_config or {})
    _apply(integration, fields)
    integration.full_clean()
    with _write(actor):
        integration.save()
    return integration


def integration_update(*, actor, integration: Integration, **fields) -> Integration:
    check_policy_change(actor, integration, fields)
    agent_changed = "agent" in fields and _pk(fields["agent"]) != integration.agent_id
    if "connection_config" in fields or agent_changed:
        config = fields.pop("connection_config", None)
        if config is None:  # the agent alone changed: the stored config, without its secrets
            config = dict(integration.connection_config)
        connection_merge(actor=actor, integration=integration, config=config, agent_changed=agent_changed)
    _apply(integration, fields)
    integration.full_clean()
    with _write(actor):
        integration.save()
    return integration


def _pk(value):
    return getattr(value, "pk", value)


def integration_set_connection(*, actor, integration: Integration, config) -> Integration:
    return integration_update(actor=actor, integration=integration, connection_config=config)


def integration_delete(*, actor, integration: Integration, progress=None) -> dict[str, int]:
    """Delete an integration and its inventory now, set-based in batches; returns what was deleted, by
    model. The screens and the API start :func:`integration_delete_start` (a job) instead."""
    from ..cascade import integration_delete as delete

    return delete(actor=actor, integration=integration, progress=progress)


def integration_delete_start(*, actor, integration: Integration):
    """Queue the deletion of an integration as a job with progress; returns the job."""
    from .deletion import integration_delete_start as start

    return start(actor=actor, integration=integration)


def job_stop(*, actor, job):
    """Ask a job to stop, by the one rule of who may (``rights.can_cancel_job``): a queued job, or one whose
    worker is gone, is cancelled at once; a running one at its next check."""
    from governance.jobs import job_cancel

    if not can_cancel_job(actor, job):
        raise PermissionDenied(
            "Only admins, whoever started it, and for a sync its integration's managers may stop a job."
        )
    return job_cancel(actor=actor, job=job)


def tags_for(names: Iterable[str]) -> list[Tag]:
    names = sorted({n.strip() for n in names if n and n.strip()})
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    Tag.objects.bulk_create(missing, ignore_conflicts=True)
    return list(Tag.objects.filter(name__in=names))


def _update_with_tags(actor, obj, fields: dict):
    check_policy_change(actor, obj, fields)
    tags = fields.pop("tags", None)
    _apply(obj, fields)
    obj.full_clean()
    with _write(actor):
        obj.save()
        if tags is not None:
            obj.tags.set(tags_for(tags))
    return obj


def resource_update(*, actor, resource: Resource, **fields) -> Resource:
    return _update_with_tags(actor, resource, fields)


def role_update(*, actor, role: Role, **fields) -> Role:
    return _update_with_tags(actor, role, fields)


def role_set_implied_roles(*, actor, role: Role, implied: Iterable[Role]) -> None:
    """Make holding ``role`` give exactly ``implied``; refuses cycles and other integrations."""
    implied = list(implied)
    wanted = {r.pk for r in implied}
    with _write(actor):
        current = set(role.implications.values_list("implied_role_id", flat=True))
        for r in implied:
            if r.integration_id != role.integration_id:
                raise ValidationError({"implies": f"{r} belongs to another integration."})
        RoleImplication.objects.filter(role=role).exclude(implied_role_id__in=wanted).delete()
        for r in implied:
            if r.pk in current:
                continue
            cycle = implication_cycle(role.pk, r.pk)
            if cycle:
                raise ValidationError(
                    {"implies": "This would make a cycle of implied roles: " + " ⇒ ".join(cycle)}
                )
            RoleImplication.objects.create(role=role, implied_role=r)


def maintainer_add(*, actor, integration=None, resource=None, user=None, group=None) -> Maintainer:
    maintainer = Maintainer(integration=integration, resource=resource, user=user, group=group)
    maintainer.full_clean()
    with _write(actor):
        maintainer.save()
    return maintainer


def maintainer_remove(*, actor, maintainer: Maintainer) -> None:
    with _write(actor):
        maintainer.delete()


def integration_test_connection(*, actor, integration: Integration) -> tuple[bool, str]:
    """Test an integration's saved connection; the outcome is audited."""
    from governance import audit

    from ..catalogue import runtime_config, test_connection

    ok, message = test_connection(integration.application, runtime_config(integration))
    with audit_context(actor=actor):
        audit.record(
            "integration.test_connection",
            obj=integration,
            status="ok" if ok else "error",
            details={"message": message},
        )
    return ok, message
