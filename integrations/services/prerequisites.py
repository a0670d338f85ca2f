"""Prerequisite permissions: access to an integration, resource or role first requires one of some roles.

A prerequisite's roles belong to the same integration as what requires them, and the person adding
it must manage each of them (``rights.prerequisite_roles``): a prerequisite is granted with the
request that needs it, through that request's integration, connector, owner and workflow, so a
role of another integration would be granted past its own owner and workflow. Cross-integration
prerequisites are therefore refused; request the other integration's role on its own. Within the
integration, a prerequisite under another approval workflow adds that workflow's steps to the request
(``access.services.requests._prerequisite_steps``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from governance.audit import audit_context

from ..models import PrerequisitePermission, Role
from ..rights import prerequisite_roles


def prerequisite_add(*, actor, alternatives: Iterable[Role], integration=None, resource=None, role=None):
    """Require one of ``alternatives`` (any one satisfies) before access to the scope is granted."""
    alternatives = list(alternatives)
    if not alternatives:
        raise ValidationError({"alternatives": "Choose at least one role."})
    if role is not None and any(r.pk == role.pk for r in alternatives):
        raise ValidationError({"alternatives": "A role cannot be its own prerequisite."})
    scope = role or resource or integration
    if scope is None:
        raise ValidationError("A prerequisite is required by an integration, a resource or a role.")
    integration_id = scope.pk if scope is integration else scope.integration_id
    foreign = [r for r in alternatives if r.integration_id != integration_id]
    if foreign:
        raise ValidationError(
            {
                "alternatives": f"{foreign[0]} belongs to another integration: a prerequisite is granted "
                "through the integration that requires it, so it must be one of its roles."
            }
        )
    if actor is not None:
        allowed = set(
            prerequisite_roles(actor, scope)
            .filter(pk__in=[r.pk for r in alternatives])
            .values_list("pk", flat=True)
        )
        if any(r.pk not in allowed for r in alternatives):
            raise ValidationError({"alternatives": "Choose only roles you manage."})
    prerequisite = PrerequisitePermission(integration=integration, resource=resource, role=role)
    prerequisite.full_clean()
    with audit_context(actor=actor), transaction.atomic():
        prerequisite.save()
        prerequisite.alternatives.set(alternatives)
    return prerequisite


def prerequisite_remove(*, actor, prerequisite: PrerequisitePermission) -> None:
    with audit_context(actor=actor), transaction.atomic():
        prerequisite.delete()
