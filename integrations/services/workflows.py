"""Writes to approval workflows: ordered rules, each with ordered steps and each step's approvers.

A workflow's rules are always written whole: ``rules`` is the complete ordered list
``[{"max_duration": "1w"|"", "requester_groups": [Group], "steps": [...]}]`` where ``steps`` is
``[{"mode": "any"|"all", "approvers": [{"kind": ..., "user": User|None, "group": Group|None}]}]``;
positions follow the list order. ``steps=`` alone is shorthand for one catch-all rule.
Validated fully before anything is written; one transaction; audited under the actor.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from governance.audit import audit_context

from ..durations import Duration
from ..models import ApprovalRule, ApprovalStep, ApprovalWorkflow, Approver
from ..selectors import workflow_usage
from .changes import apply_changes

__all__ = ["workflow_create", "workflow_update", "workflow_delete"]

REFUSE = object()  # workflow_delete's default: refuse to delete a workflow still in use


def _build_rules(rules: Sequence[dict]) -> list[tuple[ApprovalRule, list, list]]:
    """Unsaved rules (with their groups and built steps); errors keyed ``rules.<i>.steps.<j>...``."""
    if not isinstance(rules, (list, tuple)):
        raise ValidationError({"rules": "A list of rules."})
    errors: dict[str, list[str]] = {}
    built = []
    for i, spec in enumerate(rules):
        rule = ApprovalRule(position=i + 1, max_duration=spec.get("max_duration") or "")
        if rule.max_duration and rule.max_duration not in Duration.values:
            errors[f"rules.{i}.max_duration"] = [f"One of: {', '.join(Duration.values)}."]
        try:
            steps = _build_steps(spec.get("steps") or [])
            if not steps:
                errors[f"rules.{i}.steps"] = ["A rule needs at least one step."]
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(f"rules.{i}.{key}", []).extend(messages)
            steps = []
        built.append((rule, list(spec.get("requester_groups") or []), steps))
    if errors:
        raise ValidationError(errors)
    return built


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


def _save_rules(workflow: ApprovalWorkflow, built) -> None:
    workflow.rules.all().delete()
    for rule, groups, steps in built:
        rule.workflow = workflow
        rule.save()
        if groups:
            rule.requester_groups.set(groups)
        for step, approvers in steps:
            step.rule = rule
            step.save()
            for approver in approvers:
                approver.step = step
                approver.save()


def _built(rules, steps):
    """The built rules, or None to keep them; ``steps`` alone make one catch-all rule."""
    if rules is not None and steps is not None:
        raise ValidationError({"steps": "Give either steps (one catch-all rule) or rules, not both."})
    if steps is not None:
        built_steps = _build_steps(list(steps))
        return [(ApprovalRule(position=1), [], built_steps)] if built_steps else []
    return _build_rules(list(rules)) if rules is not None else None


def workflow_create(
    *,
    actor,
    name: str,
    description: str = "",
    steps: Sequence[dict] | None = None,
    rules: Sequence[dict] | None = None,
) -> ApprovalWorkflow:
    workflow = ApprovalWorkflow(name=name, description=description or "")
    workflow.full_clean()
    built = _built(rules, steps) or []
    with audit_context(actor=actor), transaction.atomic():
        workflow.save()
        _save_rules(workflow, built)
    return workflow


def workflow_update(
    *,
    actor,
    workflow: ApprovalWorkflow,
    steps: Sequence[dict] | None = None,
    rules: Sequence[dict] | None = None,
    **fields,
) -> ApprovalWorkflow:
    for key, value in fields.items():
        if key not in ("name", "description"):
            raise ValidationError({key: "Unknown field."})
        setattr(workflow, key, value)
    workflow.full_clean()
    built = _built(rules, steps)
    with audit_context(actor=actor), transaction.atomic():
        workflow.save()
        if built is not None:
            _save_rules(workflow, built)
    return workflow


def workflow_delete(*, actor, workflow: ApprovalWorkflow, move_to=REFUSE) -> dict[str, int]:
    """Delete a workflow; returns how many integrations, resources and roles were moved off it.

    One still in use is refused, naming its users, unless ``move_to`` says where they go: another
    workflow, or ``None`` (they then inherit theirs from the level above; integrations get none).
    Requests already filed keep the steps they were filed with.
    """
    if move_to is not REFUSE and move_to is not None and move_to.pk == workflow.pk:
        raise ValidationError({"move_to": "Choose another workflow than the one being deleted."})
    moved = {"integrations": 0, "resources": 0, "roles": 0}
    try:
        with audit_context(actor=actor), transaction.atomic():
            if move_to is not REFUSE:
                usage = workflow_usage(workflow)
                for target in moved:
                    moved[target] = apply_changes(
                        target=target,
                        ids=usage[target],
                        changes={"workflow": move_to.pk if move_to else None},
                        via=f"deleting workflow {workflow.name}",
                    )
            workflow.delete()
    except ProtectedError as exc:
        users = sorted({str(o) for o in exc.protected_objects})[:5]
        raise ValidationError(
            f"The workflow is still used by {len(exc.protected_objects)} object(s), e.g. {', '.join(users)}."
        ) from None
    return moved
