"""Audit by construction.

Every create, update and delete of a registered model writes an :class:`AuditEvent`,
whoever makes it: a service, a screen, the Django admin, a task. Who acts and under
which correlation id comes from the current *audit context*: the middleware opens one
per HTTP request (the signed-in user, the ``X-Request-ID`` header or a new id), a Celery
task runs in one named after its task id, and services open one with
:func:`audit_context` for their actor. Set-based writes that bypass model signals
(bulk upserts of a sync) call :func:`record` or :func:`record_many` themselves.

The domain registers its models with :func:`register` from its ``AppConfig.ready``;
this module imports nothing from the domain.
"""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.utils import timezone

from .fields import EncryptedJSONField
from .models import AuditEvent

SECRET_MARK = "<secret>"
# The columns of the audit log's CSV export, on the screen and in the API.
CSV_COLUMNS = [
    "occurred_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "object",
    "integration",
    "status",
    "correlation_id",
    "details",
]


@dataclass(frozen=True)
class AuditContext:
    actor: Any = None
    correlation_id: str = field(default_factory=lambda: uuid.uuid4().hex)


_context: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar("audit_context", default=None)


def current_context() -> AuditContext:
    return _context.get() or AuditContext(correlation_id="")


@contextmanager
def audit_context(*, actor=None, correlation_id: str | None = None):
    """Attribute the writes inside the block to ``actor`` under one correlation id.

    An inner context keeps the outer correlation id unless given a new one, and the
    outer actor unless given one.
    """
    outer = _context.get()
    ctx = AuditContext(
        actor=actor if actor is not None else (outer.actor if outer else None),
        correlation_id=correlation_id or (outer.correlation_id if outer else uuid.uuid4().hex),
    )
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


@dataclass
class _Registration:
    integration: Callable[[models.Model], int | None] | None
    exclude: frozenset[str]


_registry: dict[type[models.Model], _Registration] = {}


def register(
    model: type[models.Model],
    *,
    integration: Callable[[models.Model], int | None] | None = None,
    exclude: Iterable[str] = (),
) -> None:
    """Audit every write of ``model``. ``integration`` tells which integration an object belongs to."""
    _registry[model] = _Registration(integration=integration, exclude=frozenset(exclude))
    uid = f"audit:{model._meta.label}"
    pre_save.connect(_before_save, sender=model, dispatch_uid=uid + ":pre")
    post_save.connect(_after_save, sender=model, dispatch_uid=uid + ":post")
    post_delete.connect(_after_delete, sender=model, dispatch_uid=uid + ":delete")
    for m2m in model._meta.many_to_many:
        m2m_changed.connect(_m2m_changed, sender=m2m.remote_field.through, dispatch_uid=f"{uid}:{m2m.name}")


def is_registered(model: type[models.Model]) -> bool:
    return model in _registry


def _json(value: Any) -> Any:
    """A JSON-safe copy of a field value."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    return DjangoJSONEncoder().default(value) if not isinstance(value, models.Model) else value.pk


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The audited state of an object: concrete fields by attname, secrets masked."""
    reg = _registry.get(type(instance))
    exclude = reg.exclude if reg else frozenset()
    data: dict[str, Any] = {}
    for f in instance._meta.concrete_fields:
        if f.name in exclude or f.attname in exclude:
            continue
        value = getattr(instance, f.attname)
        if isinstance(f, EncryptedJSONField):
            # Only which secret items are set, never their values.
            data[f.attname] = {k: SECRET_MARK for k in sorted(value or {})}
        else:
            data[f.attname] = _json(value)
    return data


def _diff(before: dict, after: dict) -> dict[str, dict[str, Any]]:
    return {k: {"from": before.get(k), "to": after.get(k)} for k in after if before.get(k) != after.get(k)}


def _integration_of(instance: models.Model) -> int | None:
    reg = _registry.get(type(instance))
    if reg and reg.integration:
        try:
            return reg.integration(instance)
        except Exception:  # an object half-deleted may no longer reach its integration
            return None
    return None


def _actor_fields(actor) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor": None, "actor_repr": ""}
    return {"actor_id": actor.pk, "actor_repr": actor.get_username()}


def record(
    action: str,
    *,
    obj: models.Model | None = None,
    object_type: type[models.Model] | None = None,
    object_id: Any = None,
    object_repr: str = "",
    integration_id: int | None = None,
    status: str = AuditEvent.Status.OK,
    details: dict | None = None,
    actor=None,
) -> AuditEvent:
    """Write one audit event in the current context (actor and correlation id)."""
    ctx = current_context()
    model = type(obj) if obj is not None else object_type
    event = AuditEvent(
        action=action,
        object_type=ContentType.objects.get_for_model(model) if model is not None else None,
        object_id=str(obj.pk if obj is not None else (object_id if object_id is not None else "")),
        object_repr=(str(obj) if obj is not None else object_repr)[:300],
        integration_id=integration_id
        if integration_id is not None
        else (_integration_of(obj) if obj else None),
        status=status,
        details=_json(details or {}),
        correlation_id=ctx.correlation_id,
        **_actor_fields(actor if actor is not None else ctx.actor),
    )
    event.save()
    return event


def record_many(events: Iterable[dict[str, Any]], *, batch_size: int = 5000) -> int:
    """Write many audit events at once (set-based writes), streamed: on PostgreSQL with one COPY
    per chunk, elsewhere in batches. Each dict holds record()'s keywords."""
    ctx = current_context()
    actor = _actor_fields(ctx.actor)
    actor_id, actor_repr = actor.get("actor_id"), actor["actor_repr"]
    now = timezone.now()
    content_types: dict[Any, int | None] = {}
    connection = connections[AuditEvent.objects.db]
    copy = connection.vendor == "postgresql"

    def row(e: dict) -> tuple:
        model = e.get("object_type")
        if model not in content_types:
            content_types[model] = ContentType.objects.get_for_model(model).pk if model is not None else None
        details = e.get("details") or {}
        return (
            now, actor_id, actor_repr, e["action"], content_types[model], str(e.get("object_id", "")),
            str(e.get("object_repr", ""))[:300], e.get("integration_id"), e.get("status", AuditEvent.Status.OK),
            json.dumps(_json(details)) if copy else _json(details), ctx.correlation_id,
        )  # fmt: skip

    columns = ("occurred_at", "actor_id", "actor_repr", "action", "object_type_id", "object_id", "object_repr",
               "integration_id", "status", "details", "correlation_id")  # fmt: skip
    n = 0
    # Rows are built a chunk at a time, outside any COPY: building them (and the caller's generator) may query.
    for chunk in _chunks(events, batch_size):
        rows = [row(e) for e in chunk]
        if copy:
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(
                    f"COPY {AuditEvent._meta.db_table} ({', '.join(columns)}) FROM STDIN"
                ) as out,
            ):
                for r in rows:
                    out.write_row(r)
        else:
            AuditEvent.objects.bulk_create(AuditEvent(**dict(zip(columns, r, strict=True))) for r in rows)
        n += len(rows)
    return n


def _chunks(items: Iterable, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _label(instance: models.Model) -> str:
    return instance._meta.model_name


def _before_save(sender, instance, raw=False, **kwargs):
    if raw or instance._state.adding or instance.pk is None:
        instance._audit_before = None
        return
    old = sender._default_manager.filter(pk=instance.pk).first()
    instance._audit_before = snapshot(old) if old is not None else None
    # The stored secrets, in memory only, to tell which were set, replaced or cleared (never their values).
    instance._audit_secrets_before = {
        f.attname: dict(getattr(old, f.attname) or {})
        for f in sender._meta.concrete_fields
        if isinstance(f, EncryptedJSONField) and old is not None
    }


def _after_save(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    after = snapshot(instance)
    before = getattr(instance, "_audit_before", None)
    if created or before is None:
        record(f"{_label(instance)}.create", obj=instance, details={"after": after})
        return
    changes = _diff(before, after)
    secrets = _secret_changes(instance, getattr(instance, "_audit_secrets_before", {}))
    if changes or secrets:
        details = {"changes": changes, **({"secrets": secrets} if secrets else {})}
        record(f"{_label(instance)}.update", obj=instance, details=details)


def _secret_changes(instance: models.Model, before: dict[str, dict]) -> dict[str, str]:
    """``{item: "set" | "replaced" | "cleared"}`` over the encrypted fields of ``instance``, by item name."""
    out: dict[str, str] = {}
    for attname, old in before.items():
        new = getattr(instance, attname) or {}
        for key in sorted({*old, *new}):
            if key not in new:
                out[key] = "cleared"
            elif key not in old:
                out[key] = "set"
            elif old[key] != new[key]:
                out[key] = "replaced"
    return out


def _after_delete(sender, instance, **kwargs):
    record(f"{_label(instance)}.delete", obj=instance, details={"before": snapshot(instance)})


def _m2m_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action not in {"post_add", "post_remove", "post_clear"} or reverse:
        return
    if type(instance) not in _registry:
        return
    field_name = next(
        (f.name for f in type(instance)._meta.many_to_many if f.remote_field.through is sender),
        sender.__name__,
    )
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    record(
        f"{_label(instance)}.update",
        obj=instance,
        details={"m2m": {field_name: {verb: sorted(pk_set or [])}}},
    )


class AuditMiddleware:
    """Opens an audit context per request: the signed-in user and a correlation id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        correlation_id = (request.headers.get("X-Request-ID") or "")[:64] or uuid.uuid4().hex
        user = getattr(request, "user", None)
        with audit_context(actor=user, correlation_id=correlation_id):
            response = self.get_response(request)
        response["X-Request-ID"] = correlation_id
        return response
