"""Deleting an integration and everything that refers to it: set-based, in batches.

The ORM's ``Integration.delete()`` and the deletion job (``services/deletion.py``) both run this.

The inventory of one integration may hold millions of rows. Deleting it through the ORM's
cascade would load every object, send a signal per object (an audit row each) and hold one
transaction for all of it. Instead:

1. The integration is locked ``FOR UPDATE`` — which waits for every sync and grant holding it
   (``IntegrationManager.hold``) — and marked as being deleted (``deletion_started_at``), in one
   short transaction: from then on no sync or grant may hold it, so nothing new is written into it.
2. What refers to it is deleted leaves first, ``BATCH_SIZE`` rows per transaction, found through
   indexed lookups; references from elsewhere that are ``SET_NULL`` are cleared the same way. What
   to delete is read from the models' relations the way Django's cascade reads them, so a model
   that later refers to the inventory is included without changing this module.
3. A last transaction sweeps once more (anything added meanwhile by an edit that holds nothing),
   deletes the integration and writes one audit event with the counts per model.

A deletion that stops half-way (its worker lost) leaves the integration marked and locked against
syncs; deleting it again finishes the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models, router, transaction
from django.db.models.deletion import get_candidate_relations_to_delete
from django.utils import timezone

from governance import audit

from .models import Account, Integration, Permission, Resource, Role

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000  # rows per transaction: short locks, bounded memory, one indexed lookup each


@dataclass(frozen=True)
class _Step:
    """Delete (or, for ``clear``, set to NULL) the rows of ``model`` that reach the integration by ``lookup``."""

    model: type[models.Model]
    lookup: str  # e.g. "role__resource__integration"
    clear: models.Field | None = None  # SET_NULL: the field to clear instead of deleting
    protect: bool = False  # PROTECT / RESTRICT: any row refuses the deletion

    @property
    def label(self) -> str:
        return self.model._meta.label + (f".{self.clear.name}" if self.clear is not None else "")


def deletion_plan() -> list[_Step]:
    """Every step deleting an integration takes, leaves first (a row is deleted before what it refers
    to), the most direct lookup of each model first."""
    steps: dict[type[models.Model], list[_Step]] = {}
    children: dict[type[models.Model], set[type[models.Model]]] = {}

    def walk(model: type[models.Model], lookup: str, path: tuple) -> None:
        for rel in get_candidate_relations_to_delete(model._meta):
            child, field, on_delete = rel.related_model, rel.field, rel.on_delete
            child_lookup = f"{field.name}__{lookup}" if lookup else field.name
            if on_delete is models.DO_NOTHING or child in path:
                continue
            if on_delete is models.CASCADE:
                steps.setdefault(child, []).append(_Step(child, child_lookup))
                children.setdefault(model, set()).add(child)
                walk(child, child_lookup, (*path, child))
            elif on_delete is models.SET_NULL:
                steps.setdefault(child, []).append(_Step(child, child_lookup, clear=field))
                children.setdefault(model, set()).add(child)
            elif on_delete in (models.PROTECT, models.RESTRICT):
                steps.setdefault(child, []).append(_Step(child, child_lookup, protect=True))
            else:  # SET_DEFAULT, SET(...): not used by the inventory; refuse rather than guess
                raise ImproperlyConfigured(
                    f"Deleting an integration: {child._meta.label}.{field.name} is {on_delete}"
                )

    walk(Integration, "", (Integration,))
    # Leaves first: a model comes after every model that refers to it (Kahn's order, reversed).
    order: list[type[models.Model]] = []
    done: set[type[models.Model]] = set()

    def visit(model: type[models.Model], seen: tuple) -> None:
        if model in done or model in seen:
            return
        for child in sorted(children.get(model, ()), key=lambda m: m._meta.label):
            visit(child, (*seen, model))
        done.add(model)
        order.append(model)

    visit(Integration, ())
    plan = []
    for model in order:
        # Deleting first, the most direct lookup first; then clearing what other integrations' rows refer to.
        plan.extend(sorted(steps.get(model, []), key=lambda s: (s.clear is not None, s.lookup.count("__"))))
    return plan


def _rows(step: _Step, integration_id: int) -> models.QuerySet:
    return step.model._base_manager.filter(**{step.lookup: integration_id})


def _run_step(
    step: _Step, integration_id: int, on_batch: Callable[[int], None], *, atomic: bool = True
) -> int:
    """Delete (or clear) the step's rows, BATCH_SIZE per transaction; returns how many."""
    total = 0
    manager = step.model._base_manager
    db = router.db_for_write(step.model)
    while True:
        with transaction.atomic(using=db) if atomic else nullcontext():
            ids = list(_rows(step, integration_id).values_list("pk", flat=True)[:BATCH_SIZE])
            if not ids:
                return total
            if step.clear is not None:
                n = manager.filter(pk__in=ids).update(**{step.clear.attname: None})
            else:
                n = manager.filter(pk__in=ids)._raw_delete(db)
        total += n
        on_batch(n)
        if len(ids) < BATCH_SIZE:
            return total


def integration_inventory_size(integration_id: int) -> int:
    """About how many rows deleting the integration deletes: its resources, roles, accounts, permissions."""
    return sum(
        m._base_manager.filter(integration_id=integration_id).count()
        for m in (Resource, Role, Account, Permission)
    )


def integration_delete(
    *, actor, integration: Integration, progress: Callable[[dict, int], None] | None = None
) -> dict[str, int]:
    """Delete an integration and everything that refers to it; returns how many rows of each model were
    deleted (``<app>.<Model>``) or cleared (``<app>.<Model>.<field>``). Waits for the syncs and grants
    holding it. Writes one audit event, ``integration.delete``, with the counts."""
    pk = integration.pk
    plan = deletion_plan()
    counts: dict[str, int] = {}
    done = 0

    def count(step: _Step) -> Callable[[int], None]:
        def on_batch(n: int) -> None:
            nonlocal done
            counts[step.label] = counts.get(step.label, 0) + n
            done += n
            if progress is not None:
                progress(counts, done)

        return on_batch

    with audit.audit_context(actor=actor):
        with transaction.atomic():
            # FOR UPDATE waits for every sync and grant holding the integration (FOR KEY SHARE).
            locked = Integration.objects.select_for_update().filter(pk=pk).first()
            if locked is None:
                return counts
            for step in plan:
                if step.protect and _rows(step, pk).exists():
                    raise ValidationError(
                        f"{integration} cannot be deleted: {step.model._meta.verbose_name_plural} refer to it."
                    )
            if locked.deletion_started_at is None:
                Integration.objects.filter(pk=pk).update(deletion_started_at=timezone.now())
        for step in plan:
            if not step.protect:
                _run_step(step, pk, count(step))
        with transaction.atomic():
            locked = Integration.objects.select_for_update().filter(pk=pk).first()
            if locked is None:  # another deletion finished first
                return counts
            for step in plan:  # rows added meanwhile by edits that hold nothing
                if not step.protect:
                    _run_step(step, pk, count(step), atomic=False)
            before = audit.snapshot(locked)
            Integration._base_manager.filter(pk=pk)._raw_delete(router.db_for_write(Integration))
            counts[Integration._meta.label] = 1
            audit.record(
                "integration.delete",
                object_type=Integration,
                object_id=pk,
                object_repr=str(locked),
                integration_id=pk,
                details={
                    "before": before,
                    "counts": dict(sorted(counts.items())),
                    "total": sum(counts.values()),
                },
            )
    return counts


def _readable(counts: dict[str, int]) -> dict[str, int]:
    """The counts by model label as the job screen shows them: "Permissions", "Permissions: request cleared"."""
    from django.apps import apps

    out = {}
    for label, n in counts.items():
        app, model, *field = label.split(".")
        name = str(apps.get_model(app, model)._meta.verbose_name_plural)
        out[name[:1].upper() + name[1:] + (f": {field[0]} cleared" if field else "")] = n
    return out
