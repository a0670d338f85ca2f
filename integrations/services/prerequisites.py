"""Prerequisite permissions: access to an integration, resource or role first requires one of some roles."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from governance.audit import audit_context

from ..models import PrerequisitePermission, Role


def prerequisite_add(*, actor, alternatives: Iterable[Role], integration=None, resource=None, role=None):
    """Require one of ``alternatives`` (any one satisfies) before access to the scope is granted."""
    alternatives = list(alternatives)
    if not alternatives:
        raise ValidationError({"alternatives": "Choose at least one role."})
    if role is not None and any(r.pk == role.pk for r in alternatives):
        raise ValidationError({"alternatives": "A role cannot be its own prerequisite."})
    prerequisite = PrerequisitePermission(integration=integration, resource=resource, role=role)
    prerequisite.full_clean()
    with audit_context(actor=actor), transaction.atomic():
        prerequisite.save()
        prerequisite.alternatives.set(alternatives)
    return prerequisite


def prerequisite_remove(*, actor, prerequisite: PrerequisitePermission) -> None:
    with audit_context(actor=actor), transaction.atomic():
        prerequisite.delete()
