"""Writes to approval workflows: a workflow with its ordered steps and each step's approvers.

A workflow's steps are always written whole: ``steps`` is the complete ordered list
``[{"mode": "any"|"all", "approvers": [{"kind": ..., "user": User|None, "group": Group|None}]}]``;
positions follow the list order. Validated fully before anything is written; one
transaction; audited under the actor.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from governance.audit import audit_context

from ..models import ApprovalStep, ApprovalWorkflow, Approver

__all__ = ["workflow_create", "workflow_update", "workflow_delete"]


def _build_steps(steps: Sequence[dict]) -> list[tuple[ApprovalStep, list[Approver]]]:
    """Unsaved steps and approvers, each validated; errors keyed ``steps.<i>.approvers.<j>.<field>``."""
    if not isinstance(steps, (list, tuple)):
        raise ValidationError({"steps": "A list of steps."})
    errors: dict[str, list[str]] = {}
    built = []
    for i, spec in enumerate(steps):
        step = ApprovalStep(position=i + 1, mode=spec.get("mode") or ApprovalStep.Mode.ANY)
        if step.mode not in ApprovalStep.Mode.values:
            errors[f"steps.{i}.mode"] = [f"One of: {', '.join(ApprovalStep.Mode.values)}."]
        approvers = []
        specs = spec.get("approvers") or []
        if not specs:
            errors[f"steps.{i}.approvers"] = ["A step needs at least one approver."]
        for j, a in enumerate(specs):
            approver = Approver(kind=a.get("kind"), user=a.get("user"), group=a.get("group"))
            try:
                approver.full_clean(exclude=["step"])
            except ValidationError as exc:
                for key, messages in exc.message_dict.items():
                    name = f"steps.{i}.approvers.{j}" + ("" if key == "__all__" else f".{key}")
                    errors.setdefault(name, []).extend(messages)
            approvers.append(approver)
        built.append((step, approvers))
    if errors:
        raise ValidationError(errors)
    return built


def _save_steps(workflow: ApprovalWorkflow, built) -> None:
    workflow.steps.all().delete()
    for step, approvers in built:
        step.workflow = workflow
        step.save()
        for approver in approvers:
            approver.step = step
            approver.save()


def workflow_create(
    *, actor, name: str, description: str = "", steps: Sequence[dict] = ()
) -> ApprovalWorkflow:
    workflow = ApprovalWorkflow(name=name, description=description or "")
    workflow.full_clean()
    built = _build_steps(list(steps))
    with audit_context(actor=actor), transaction.atomic():
        workflow.save()
        _save_steps(workflow, built)
    return workflow


def workflow_update(
    *, actor, workflow: ApprovalWorkflow, steps: Sequence[dict] | None = None, **fields
) -> ApprovalWorkflow:
    for key, value in fields.items():
        if key not in ("name", "description"):
            raise ValidationError({key: "Unknown field."})
        setattr(workflow, key, value)
    workflow.full_clean()
    built = _build_steps(list(steps)) if steps is not None else None
    with audit_context(actor=actor), transaction.atomic():
        workflow.save()
        if built is not None:
            _save_steps(workflow, built)
    return workflow


def workflow_delete(*, actor, workflow: ApprovalWorkflow) -> None:
    """Delete a workflow that nothing uses; one still in use is refused, naming the users."""
    try:
        with audit_context(actor=actor), transaction.atomic():
            workflow.delete()
    except ProtectedError as exc:
        users = sorted({str(o) for o in exc.protected_objects})[:5]
        raise ValidationError(
            f"The workflow is still used by {len(exc.protected_objects)} object(s), e.g. {', '.join(users)}."
        ) from None
